import ArgumentParser
import Contracts
import Foundation
import LibvirtDriver
import Logging
import PetrelCore
import PetrelHTTP
import RPC
import ServiceLifecycle

@main
struct PetrelNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "petrel-node",
        abstract: "Petrel's per-host daemon: compute (libvirt), L2/L3/DHCP/metadata networking and volumes.",
        version: PetrelVersion.current)

    @OptionGroup var options: ConfigFileOptions

    func run() async throws {
        let config = try options.load()
        let logger = PetrelProgram.prepare("petrel-node", config: config)
        let hypervisor: LibvirtConnection
        do {
            hypervisor = try LibvirtConnection(uri: config.libvirtURI)
        } catch {
            logger.critical("cannot connect to the hypervisor", metadata: ["uri": "\(config.libvirtURI)", "error": "\(error)"])
            throw ExitCode.failure
        }
        let host = try hypervisor.hostInfo()
        logger.info("starting", metadata: [
            "version": "\(PetrelVersion.current)", "libvirt_uri": "\(config.libvirtURI)",
            "hypervisor": "\(host.hypervisorType)", "cpus": "\(host.cpus)", "memory_mib": "\(host.memoryKiB / 1024)",
            "metrics": "\(config.nodeMetricsListen)",
        ])
        let metrics = PetrelHTTPListener.application(router: PetrelHTTPListener.observabilityRouter(),
                                                     address: config.nodeMetricsListen, serverName: "petrel-node",
                                                     logger: logger)
        let link = BrokerLink(transport: config.transportURL, name: "node", logger: logger)
        let reporter = StateReporter(client: RPCClient(link: link, logger: logger), hypervisor: hypervisor, config: config,
                                     logger: logger)
        try await PetrelProgram.run([metrics, DomainEventLog(connection: hypervisor, logger: logger), reporter], logger: logger)
        await link.close()
    }
}

/// Tells the controller, at start and every `report_interval`, which services this host
/// runs and what its hypervisor offers. A report that cannot be delivered (broker away) is
/// logged and the next one tries again.
struct StateReporter: Service {
    let client: RPCClient
    let hypervisor: LibvirtConnection
    let config: PetrelConfig
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await client.cast(ReportState.self, try report(), topic: ReportState.topic,
                                          patience: .seconds(config.reportInterval))
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("state report not delivered", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(config.reportInterval))
            }
        }
    }

    func report() throws -> ReportState.Arguments {
        let host = try hypervisor.hostInfo()
        return ReportState.Arguments(
            host: config.host, version: PetrelVersion.current,
            services: [ServiceReport(binary: "nova-compute", topic: "compute")],
            hypervisor: HypervisorReport(type: host.hypervisorType, version: Int(host.hypervisorVersion), cpuModel: host.cpuModel,
                                         vcpus: host.cpus, memoryMB: Int(host.memoryKiB / 1024),
                                         localGB: Self.localGigabytes(config.statePath)))
    }

    /// Size of the file system holding the instances (the nearest existing directory of
    /// `state_path`), in GiB.
    static func localGigabytes(_ path: String) -> Int {
        var directory = path
        while !FileManager.default.fileExists(atPath: directory), directory != "/" {
            directory = (directory as NSString).deletingLastPathComponent
        }
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return 0 }
        return Int(UInt64(info.f_blocks) * UInt64(info.f_frsize) / (1 << 30))
    }
}

/// Follows libvirt's lifecycle events and logs each one; the compute service will act on them.
struct DomainEventLog: Service {
    let connection: LibvirtConnection
    let logger: Logger

    func run() async throws {
        let events = try connection.lifecycleEvents()
        for await event in events.cancelOnGracefulShutdown() {
            logger.info("domain event", metadata: ["domain": "\(event.domainName)", "uuid": "\(event.uuid)",
                                                   "event": "\(event.kind.rawValue)", "detail": "\(event.detail)"])
        }
    }
}
