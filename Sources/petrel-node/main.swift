import ArgumentParser
import Foundation
import LibvirtDriver
import Logging
import PetrelCore
import PetrelHTTP
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
        try await PetrelProgram.run([metrics, DomainEventLog(connection: hypervisor, logger: logger)], logger: logger)
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
