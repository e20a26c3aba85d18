import ArgumentParser
import Contracts
import Foundation
import LibvirtDriver
import NetlinkDriver
import NodeCompute
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
        let client = RPCClient(link: link, logger: logger)
        let reporter = StateReporter(client: client, hypervisor: hypervisor, config: config, logger: logger)
        var services: [any Service] = [metrics, reporter]
        if config.nodeServices.contains("compute") {
            let cloud = config.serviceUser.map { CloudClient(user: $0, logger: logger) }
            if cloud == nil {
                logger.warning("no [service_user]: this node cannot download images, so it cannot build servers")
            }
            let compute = ComputeService(settings: Self.computeSettings(config, hypervisorType: host.hypervisorType), hypervisor: hypervisor,
                                         client: client, cloud: cloud, logger: logger)
            let server = RPCServer(link: link, topic: ComputeTopic.name, host: config.host, logger: logger)
            compute.register(on: server)
            services.append(BackgroundTask { await server.run() })
            services.append(BackgroundTask {
                // Without events the node would not see guests change: it stops, and its service
                // manager starts it again (reconciling at start).
                do { try await compute.followEvents() } catch {
                    logger.error("libvirt events unavailable; stopping", metadata: ["error": "\(error)"])
                }
            })
            services.append(BackgroundTask {
                // Reconcile once the controller answers, then keep the periodic safety net.
                await server.ready()
                while !Task.isCancelled {
                    do {
                        try await compute.reconcile()
                        logger.info("reconciled with the controller")
                        break
                    } catch {
                        logger.warning("reconciliation failed; retrying", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: .seconds(5))
                    }
                }
                await compute.runPeriodicTasks()
            })
        } else {
            services.append(DomainEventLog(connection: hypervisor, logger: logger))
        }
        try await PetrelProgram.run(services, logger: logger)
        await link.close()
    }

    static func computeSettings(_ config: PetrelConfig, hypervisorType: String) -> ComputeService.Settings {
        let domainType = hypervisorType.lowercased() == "test" ? "test" : config.virtType
        let emulator = ["/usr/bin/qemu-system-x86_64", "/usr/libexec/qemu-kvm"].first { FileManager.default.isExecutableFile(atPath: $0) }
        return ComputeService.Settings(
            host: config.host, instancesPath: config.compute.instancesPath,
            domain: DomainXML(domainType: domainType, cpuMode: config.cpuMode, vncListen: config.compute.vncListen,
                              emulator: domainType == "test" ? nil : emulator),
            shutdownTimeout: .seconds(config.compute.shutdownTimeout), softRebootWait: .seconds(config.compute.softRebootWait),
            syncInterval: .seconds(config.compute.syncPowerStateInterval), unusedImageAge: TimeInterval(config.compute.unusedImageAge),
            imageCacheInterval: .seconds(config.compute.imageCacheInterval))
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
            services: Self.services(config.nodeServices),
            hypervisor: HypervisorReport(type: host.hypervisorType, version: Int(host.hypervisorVersion), cpuModel: host.cpuModel,
                                         vcpus: host.cpus, memoryMB: Int(host.memoryKiB / 1024),
                                         localGB: Self.localGigabytes(config.statePath),
                                         hostIP: config.myIP ?? Self.defaultRouteAddress(), uptime: Self.uptime(),
                                         runningVMs: ((try? hypervisor.listDomains()) ?? [])
                                             .filter { DomainNaming.isInstance($0.name) && $0.state == .running }.count))
    }

    /// "16:40:01 up 3 days,  2:05,  load average: 0.10, 0.20, 0.30", from /proc, as `uptime` prints it.
    static func uptime(now: Date = Date()) -> String? {
        guard let uptime = try? String(contentsOfFile: "/proc/uptime", encoding: .utf8),
              let seconds = Double(uptime.split(separator: " ").first ?? ""),
              let loadavg = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
        let loads = loadavg.split(separator: " ").prefix(3).joined(separator: ", ")
        var clock = time_t(now.timeIntervalSince1970)
        var parts = tm()
        localtime_r(&clock, &parts)
        let total = Int(seconds) / 60, days = total / 1440, hours = (total % 1440) / 60, minutes = total % 60
        let up = (days > 0 ? "\(days) day\(days == 1 ? "" : "s"), " : "") + String(format: "%2d:%02d", hours, minutes)
        return String(format: " %02d:%02d:%02d up ", parts.tm_hour, parts.tm_min, parts.tm_sec) + up + ",  load average: " + loads
    }

    /// The services of `[node] services`, by OpenStack's binary names.
    static func services(_ kinds: [String]) -> [ServiceReport] {
        var reports: [ServiceReport] = []
        for kind in kinds {
            switch kind {
            case "compute": reports.append(ServiceReport(binary: "nova-compute", topic: "compute"))
            case "network":
                for binary in ["neutron-linuxbridge-agent", "neutron-dhcp-agent", "neutron-l3-agent", "neutron-metadata-agent"] {
                    reports.append(ServiceReport(binary: binary, topic: "network"))
                }
            case "volume": reports.append(ServiceReport(binary: "cinder-volume", topic: "volume"))
            default: break
            }
        }
        return reports
    }

    /// The IPv4 address of the interface the default route leaves through (Nova's my_ip default).
    static func defaultRouteAddress() -> String? {
        guard let netlink = try? Netlink(),
              let route = try? netlink.routes(family: .ipv4).first(where: { $0.destination == "default" }),
              let index = route.deviceIndex,
              let link = try? netlink.links().first(where: { $0.index == index }),
              let address = try? netlink.addresses(of: link.name).first(where: { !$0.contains(":") })
        else { return nil }
        return String(address.prefix { $0 != "/" })
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
