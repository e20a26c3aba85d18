import ArgumentParser
import Contracts
import Foundation
import NetlinkDriver
import NodeCompute
import NodeNetwork
import NodeVolume
import NodeCore
import Logging
import PetrelCore
import PetrelHTTP
import ProcessDriver
import RPC
import ServiceLifecycle
import Synchronization

@main
struct PetrelNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "petrel-node",
        abstract: "Petrel's per-host daemon: compute (libvirt), L2/L3/DHCP/metadata networking and volumes.",
        version: PetrelVersion.current)

    @OptionGroup var options: ConfigFileOptions

    /// Two malloc arenas serve a node's small work, set before any thread of ours starts:
    /// ~0.8 MB less RSS with 50 ports (46.0 → 45.2 MB in a release build).
    static func main() async {
        ProcessMemory.limitMallocArenas(2)
        // The node's own mask, whatever it inherited: a parent running liblvm2cmd (which sets
        // 0077 while a command runs) may have spawned it with 0077, and directories made then
        // were closed to dnsmasq once it dropped to nobody (guests got no DHCP lease).
        umask(0o022)
        await main(nil)
    }

    func run() async throws {
        let config = try options.load()
        let logger = PetrelProgram.prepare("petrel-node", config: config)
        logger.info("starting", metadata: [
            "version": "\(PetrelVersion.current)", "services": "\(config.nodeServices.joined(separator: ","))",
            "metrics": "\(config.nodeMetricsListen)",
        ])
        // The controller's HTTPS certificate is verified against [service_user] cafile: a bundle
        // that cannot be read stops the node here rather than at its first image download.
        do {
            _ = try ControllerHTTPClient.shared(cafile: config.serviceCAFile)
        } catch {
            logger.critical("cannot set up HTTPS to the controller: \(error)")
            throw ExitCode.failure
        }
        let metrics = PetrelHTTPListener.application(router: PetrelHTTPListener.observabilityRouter(),
                                                     address: config.nodeMetricsListen, serverName: "petrel-node",
                                                     logger: logger)
        let link = BrokerLink(transport: config.transportURL, name: "node", logger: logger)
        let client = RPCClient(link: link, logger: logger)
        let context = NodeServiceContext(host: config.host, link: link, client: client, logger: logger)
        let running = RunningServices()
        let shared = Mutex<(any VIFPlugging)?>(nil)
        var services: [any Service] = [metrics, StateReporter(client: client, running: running, config: config, logger: logger)]
        // The network service first: compute plugs guests' ports through it.
        let ordered = config.nodeServices.sorted { ($0 == "network" ? 0 : 1) < ($1 == "network" ? 0 : 1) }
        // The L3 agent is part of the network service (it plugs router ports through its L2 driver).
        for name in ordered where name != "l3" {
            guard let make = Self.registry[name] else {
                // The configuration accepts only `NodeServiceNames.all`; this is the registry missing one.
                logger.critical("no such node service in this build", metadata: ["service": "\(name)"])
                throw ExitCode.failure
            }
            do {
                let service = try await make(config, shared.withLock { $0 }.map { context.with(vifs: $0) } ?? context)
                if let plugging = service as? any VIFPlugging { shared.withLock { $0 = plugging } }
                services.append(NodeServiceRunner(service, running: running, logger: logger))
            } catch {
                logger.critical("cannot set up a node service", metadata: ["service": "\(name)", "error": "\(error)"])
                throw ExitCode.failure
            }
        }
        try await PetrelProgram.run(services, logger: logger)
        await link.close()
    }

    /// The node services by their `[node] services` name.
    static let registry: [String: @Sendable (PetrelConfig, NodeServiceContext) async throws -> any NodeService] = [
        "compute": { config, context in try await compute(config, context) },
        "network": { config, context in try network(config, context) },
        "volume": { config, context in try volume(config, context) },
    ]

    static func volume(_ config: PetrelConfig, _ context: NodeServiceContext) throws -> any NodeService {
        let backends = try config.volumeBackends.map { settings in
            VolumeRole.Backend(settings: settings, driver: try VolumeDrivers.make(settings))
        }
        context.logger.info("starting the volume service", metadata: [
            "backends": "\(config.volumeBackends.map { "\($0.name) (\($0.driver))" }.joined(separator: ", "))",
        ])
        let images = try config.serviceUser.map { CloudClient(user: $0, http: try ControllerHTTPClient.shared(cafile: config.serviceCAFile), logger: context.logger) }
        if images == nil {
            context.logger.warning("no [service_user]: this node cannot make volumes from images nor upload volumes to images")
        }
        return VolumeRole(context: context, backends: backends, images: images,
                          scratchDirectory: config.statePath + "/volume-transfers", backupDirectory: config.backupDirectory,
                          nodeAddress: ownAddress(config))
    }

    /// This host's address as other hosts reach it: `[DEFAULT] my_ip`, else the address of the
    /// interface of the default route.
    static func ownAddress(_ config: PetrelConfig) -> String? { config.myIP ?? (try? Netlink().defaultRouteAddress() ?? nil) }

    static func network(_ config: PetrelConfig, _ context: NodeServiceContext) throws -> any NodeService {
        let tunnelIP = config.networking.localIP ?? ownAddress(config)
        let l2 = try L2Drivers.make(config.networking.mechanismDriver,
                                    settings: .init(tunnelIP: tunnelIP, interfaceMappings: config.networking.interfaceMappings))
        context.logger.info("starting the network service", metadata: [
            "l2_driver": "\(l2.info.name)", "firewall_driver": "\(config.networking.firewallDriver)", "tunnel_ip": "\(tunnelIP ?? "none")",
            "mappings": "\(config.networking.interfaceMappings)",
        ])
        var metadata: NetworkRole.MetadataSettings?
        if let secret = config.metadataSharedSecret, let url = config.metadataURL {
            metadata = .init(controllerURL: url, sharedSecret: secret, cafile: config.serviceCAFile)
        } else {
            context.logger.warning("no metadata proxy: [metadata] shared_secret and a controller URL ([metadata] nova_metadata_url or [service_user] auth_url) are needed")
        }
        let firewall = config.networking.firewallDriver == "noop" ? nil : try FirewallDrivers.make(config.networking.firewallDriver)
        return try NetworkRole(context: context, l2: l2, tunnelIP: tunnelIP, stateDirectory: config.statePath,
                               leaseDuration: config.networking.leaseDuration, metadata: metadata, firewall: firewall,
                               l3: config.nodeServices.contains("l3"))
    }

    static func compute(_ config: PetrelConfig, _ context: NodeServiceContext) async throws -> any NodeService {
        let hypervisor = try HypervisorDrivers.make(config.computeDriver,
                                                    settings: .init(uri: config.libvirtURI, virtType: config.virtType))
        let host = try await hypervisor.host()
        context.logger.info("starting the compute service", metadata: [
            "compute_driver": "\(hypervisor.info.name)", "libvirt_uri": "\(config.libvirtURI)", "hypervisor": "\(host.type)",
            "domain_type": "\(hypervisor.info.domainType)", "cpus": "\(host.cpus)", "memory_mib": "\(host.memoryMiB)",
        ])
        let cloud = try config.serviceUser.map { CloudClient(user: $0, http: try ControllerHTTPClient.shared(cafile: config.serviceCAFile), logger: context.logger) }
        if cloud == nil {
            context.logger.warning("no [service_user]: this node cannot download images, so it cannot build servers")
        }
        let compute = ComputeService(settings: computeSettings(config, info: hypervisor.info), hypervisor: hypervisor,
                                     controller: RPCComputeController(client: context.client), cloud: cloud, vifs: context.vifs,
                                     logger: context.logger)
        return ComputeRole(compute: compute, context: context, facts: .init(statePath: config.statePath, myIP: config.myIP))
    }

    static func computeSettings(_ config: PetrelConfig, info: HypervisorInfo) -> ComputeService.Settings {
        ComputeService.Settings(
            host: config.host, instancesPath: config.compute.instancesPath,
            domain: InstanceDomain(info: info, cpuMode: config.cpuMode, vncListen: config.compute.vncListen).with(consoles: consoleOptions(config)),
            shutdownTimeout: .seconds(config.compute.shutdownTimeout), softRebootWait: .seconds(config.compute.softRebootWait),
            syncInterval: .seconds(config.compute.syncPowerStateInterval), unusedImageAge: TimeInterval(config.compute.unusedImageAge),
            imageCacheInterval: .seconds(config.compute.imageCacheInterval))
    }
}

/// The node's part of `[vnc]` and `[serial_console]`.
func consoleOptions(_ config: PetrelConfig) -> ConsoleOptions {
    var options = ConsoleOptions()
    options.vncProxyClientAddress = config.consoles.vncProxyClientAddress
    options.serialEnabled = config.consoles.serialEnabled
    options.serialListen = config.consoles.serialProxyClientAddress
    options.serialPorts = config.consoles.serialPorts
    return options
}

/// Tells the controller, at start and every `report_interval`, which services this host
/// runs (only those running now) and what they know of the host. A report that cannot be
/// delivered (broker away) is logged and the next one tries again.
struct StateReporter: Service {
    let client: RPCClient
    let running: RunningServices
    let config: PetrelConfig
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let seen = await running.generation
                do {
                    try await client.cast(ReportState.self, await report(), topic: ReportState.topic,
                                          patience: .seconds(config.reportInterval))
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("state report not delivered", metadata: ["error": "\(error)"])
                }
                // The next report is due after `report_interval`, or at once when a service
                // started or stopped.
                let due = ContinuousClock.now + .seconds(config.reportInterval)
                while !Task.isCancelled, ContinuousClock.now < due, await running.generation == seen {
                    try? await Task.sleep(for: min(.milliseconds(250), due - ContinuousClock.now))
                }
            }
        }
    }

    func report() async -> ReportState.Arguments {
        var report = ReportState.Arguments(host: config.host, version: PetrelVersion.current, services: [], hypervisor: nil)
        for service in await running.services {
            report.services += service.reports
            await service.contribute(to: &report)
        }
        return report
    }
}
