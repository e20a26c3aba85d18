import Contracts
import Foundation
import Logging
import NetlinkDriver
import NodeCore
import PetrelCore
import RPC

/// The node's network service: the L2 agent (one `L2Driver`), the DHCP agent, the L3 agent
/// (routers and floating IPs, with `[node] services` naming `l3`), and the port status they
/// feed back. Event-driven: the controller's `NetworksChanged` fanout and the
/// kernel's link events start work; nothing polls. Every sync asks the controller for the
/// whole truth of the networks concerned and converges, so a lost or repeated message costs
/// nothing but a later sync.
public final class NetworkRole: NodeService, VIFPlugging, @unchecked Sendable {
    public let name = "network"
    public var reports: [ServiceReport] {
        [ServiceReport(binary: l2.info.agentBinary, topic: "N/A"), ServiceReport(binary: "neutron-dhcp-agent", topic: "dhcp_agent")]
            + (metadata == nil ? [] : [ServiceReport(binary: "neutron-metadata-agent", topic: "N/A")])
            + (routers == nil ? [] : [ServiceReport(binary: "neutron-l3-agent", topic: "l3_agent")])
    }

    let host: String
    let l2: any L2Driver
    let dhcp: DHCPServers
    let client: RPCClient
    let server: RPCServer
    let tunnelIP: String?
    let logger: Logger
    let agent: Agent
    /// The networks this node has wired, kept in its state directory across restarts.
    let wired: WiredRecord
    /// The in-daemon metadata proxy; nil without `[metadata] shared_secret` and a controller URL.
    let metadata: MetadataProxy?
    /// The security groups of the ports bound here; nil with `[securitygroup] firewall_driver = noop`.
    let firewall: (any FirewallDriver)?
    let firewallSyncs = Coalescer()
    /// The routers scheduled here; nil without the L3 role.
    let routers: RouterNamespaces?
    /// The routers this node made, kept in its state directory across restarts.
    let routerRecord: WiredRecord
    let routerSyncs = Coalescer()
    let routerFailure = FailureBox()
    /// How the last firewall sync ended (what a caller that waited for it learns).
    let firewallFailure = FailureBox()
    /// One sync at a time: a later answer of the controller is never overtaken by an earlier one.
    let syncs = KeyedLocks()
    private let lock = NSLock()
    private var monitor: LinkMonitor?

    public struct MetadataSettings: Sendable {
        public var controllerURL: String
        public var sharedSecret: String
        /// `[service_user] cafile`: what an https controller URL is verified against (nil: the system's trust store).
        public var cafile: String?
        public init(controllerURL: String, sharedSecret: String, cafile: String? = nil) {
            self.controllerURL = controllerURL; self.sharedSecret = sharedSecret; self.cafile = cafile
        }
    }

    public init(context: NodeServiceContext, l2: any L2Driver, tunnelIP: String?, stateDirectory: String, leaseDuration: Int,
                metadata: MetadataSettings?, firewall: (any FirewallDriver)?, l3: Bool = false) throws {
        self.firewall = firewall
        routers = l3 ? try RouterNamespaces(logger: context.logger) : nil
        routerRecord = WiredRecord(path: stateDirectory + "/network/routers")
        wired = WiredRecord(path: stateDirectory + "/network/wired")
        let dhcpStateDirectory = stateDirectory + "/dhcp"
        self.metadata = try metadata.map {
            try MetadataProxy(controllerURL: $0.controllerURL, secret: $0.sharedSecret, cafile: $0.cafile, logger: context.logger)
        }
        host = context.host
        self.l2 = l2
        dhcp = try DHCPServers(stateDirectory: dhcpStateDirectory, leaseDuration: leaseDuration, logger: context.logger)
        client = context.client
        server = RPCServer(link: context.link, topic: NetworksChanged.topic, host: context.host, logger: context.logger)
        self.tunnelIP = tunnelIP
        logger = context.logger
        agent = Agent()
    }

    /// What the service knows of each network it wires: the controller's last answer.
    actor Agent {
        var states: [String: NetworkState] = [:]
        /// The routers as last converged.
        var routers: [String: RouterState] = [:]
        /// The ports last reported, so a report goes out only on a change.
        var reported: [String: String] = [:]

        func set(_ state: NetworkState) { states[state.network.id] = state }
        func forget(_ id: String) { states[id] = nil }
        func setRouter(_ id: String, _ state: RouterState?) { routers[id] = state }
        func port(tap: String) -> (PortWiring, NetworkWiring)? {
            for state in states.values {
                if let port = state.localPorts.first(where: { $0.tapName == tap }) { return (port, state.network) }
            }
            return nil
        }
        func changes(_ statuses: [String: String]) -> [String: String] {
            let changed = statuses.filter { reported[$0.key] != $0.value }
            reported.merge(changed) { $1 }
            return changed
        }
        func forgetReports(_ ids: [String]) { for id in ids { reported[id] = nil } }
    }

    public func start() async throws {
        client.start()
        server.register(NetworksChanged.self) { [self] request, _ in
            try await sync(request.networkIDs)
            return Nothing()
        }
        server.register(FirewallChanged.self) { [self] _, _ in
            await syncFirewall()
            return Nothing()
        }
        if routers != nil {
            server.register(RoutersChanged.self) { [self] _, _ in
                await syncRouters()
                return Nothing()
            }
        }
        let monitor = try LinkMonitor()
        lock.withLock { self.monitor = monitor }
    }

    public func stop() async {
        lock.withLock { monitor }?.stop()
        await metadata?.shutdown()
    }

    /// At start: the whole truth for this host, then Petrel's leftovers removed (bridges,
    /// tunnels and DHCP namespaces of networks this host no longer has). Guests' taps are
    /// never touched: libvirt owns them.
    public func reconcile() async throws {
        // The firewall first: ports bound here are filtered before anything else is wired.
        try await syncFirewallOrThrow()
        let result = try await ask(networkIDs: nil)
        let wanted = Set(result.networks.map { String($0.network.id.prefix(11)) })
        // Only what this node made (its record), never another node's devices on a shared host.
        for prefix in wired.prefixes() where !wanted.contains(prefix) {
            logger.info("removing a network no port of this host needs", metadata: ["bridge": "brq\(prefix)"])
            try await l2.remove(networkPrefix: prefix)
            wired.forget(prefix)
        }
        let serving = Set(result.networks.filter { $0.dhcpPort != nil }.map(\.network.id))
        for network in dhcp.served() where !serving.contains(network) {
            logger.info("removing a DHCP service this host no longer has", metadata: ["network": "\(network)"])
            await metadata?.stop(network: network)
            try await dhcp.remove(network: network)
        }
        // Routers last: their ports' bridges exist by now; leftovers of routers gone are removed.
        try await syncRoutersOrThrow()
    }

    public func run() async throws {
        guard let monitor = lock.withLock({ monitor }) else { throw L2Error("the link monitor did not start") }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.server.run() }
            group.addTask {
                for await event in monitor.events where event.link.name.hasPrefix("tap") {
                    await self.linkChanged(event)
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    func ask(networkIDs: [String]?) async throws -> HostNetworks.Result {
        try await syncs.with("sync") { try await self.askNow(networkIDs: networkIDs) }
    }

    private func askNow(networkIDs: [String]?) async throws -> HostNetworks.Result {
        let result = try await client.call(HostNetworks.self, HostNetworks.Arguments(host: host, networkIDs: networkIDs, tunnelIP: tunnelIP,
                                                                                      servesDHCP: true),
                                           topic: HostNetworks.topic, timeout: .seconds(30))
        for state in result.networks { try await converge(state) }
        for id in result.gone { try await removeNetwork(id) }
        return result
    }

    /// Syncs the networks named (those this host has nothing of come back as gone).
    func sync(_ networkIDs: [String]) async throws {
        _ = try await ask(networkIDs: networkIDs)
    }

    func converge(_ state: NetworkState) async throws {
        let started = ContinuousClock.now
        wired.remember(String(state.network.id.prefix(11)))
        try await l2.ensure(state.network, endpoints: state.remoteEndpoints)
        if state.dhcpPort != nil {
            try await dhcp.ensure(state, bridge: l2.attachmentPoint(state.network), metadata: metadata != nil)
            if let metadata {
                var guests: [String: MetadataProxy.Guest] = [:]
                for port in state.allPorts where port.deviceOwner.hasPrefix("compute:") && !port.deviceID.isEmpty {
                    for fixed in port.fixedIPs { guests[fixed.address] = MetadataProxy.Guest(instanceID: port.deviceID, projectID: port.projectID) }
                }
                metadata.setGuests(state.network.id, guests)
                if !metadata.serving.contains(state.network.id) {
                    try await metadata.serve(network: state.network.id, socket: try await dhcp.metadataSocket(network: state.network.id))
                }
            }
        } else if dhcp.served().contains(state.network.id) {
            await metadata?.stop(network: state.network.id)
            try await dhcp.remove(network: state.network.id)
        }
        await agent.set(state)
        var statuses: [String: String] = [:]
        for port in state.localPorts {
            let device = port.deviceOwner == "network:dhcp" ? DHCPServers.hostSide(port) : port.tapName
            statuses[port.id] = try await l2.isAttached(device, to: state.network) ? "ACTIVE" : "DOWN"
        }
        try await report(statuses)
        logger.debug("network converged", metadata: ["network": "\(state.network.id)", "ports": "\(state.localPorts.count)",
                                                     "took": "\(ContinuousClock.now - started)"])
    }

    func removeNetwork(_ id: String) async throws {
        if let state = await agent.states[id] { await agent.forgetReports(state.localPorts.map(\.id)) }
        await agent.forget(id)
        await metadata?.stop(network: id)
        if dhcp.served().contains(id) { try await dhcp.remove(network: id) }
        let prefix = String(id.prefix(11))
        try await l2.remove(networkPrefix: prefix)  // idempotent: nothing to do when it is gone
        wired.forget(prefix)
    }

    /// Wires the networks a guest is about to be plugged into (its bridges exist afterwards),
    /// with its ports' firewall in place before its taps appear.
    public func plug(networks: [String]) async throws {
        try await syncFirewallOrThrow()
        let result = try await ask(networkIDs: networks)
        for id in networks where !(try await l2.isWired(networkPrefix: String(id.prefix(11)))) {
            let reason = result.gone.contains(id) ? "the controller has no port of this host on it" : "it could not be wired"
            throw L2Error("network \(id) is not wired on this host: \(reason)")
        }
    }

    /// A tap came, went or joined a bridge: its port's status follows at once. Under the sync
    /// lock, so a sync that looked before the tap joined cannot report after it.
    func linkChanged(_ event: LinkEvent) async {
        await syncs.with("sync") { await self.linkChangedNow(event) }
    }

    private func linkChangedNow(_ event: LinkEvent) async {
        guard let (port, network) = await agent.port(tap: event.link.name) else { return }
        // The event says something changed; the kernel says what is true now. (A monitor that
        // relisted links after an overflow may report a removal that did not happen.)
        let attached = (try? await l2.isAttached(port.tapName, to: network)) ?? false
        logger.debug("tap changed", metadata: ["tap": "\(event.link.name)", "change": "\(event.change)", "attached": "\(attached)"])
        do {
            try await report([port.id: attached ? "ACTIVE" : "DOWN"])
        } catch {
            logger.warning("could not report a port's status", metadata: ["port": "\(port.id)", "error": "\(error)"])
        }
    }

    /// Makes the host's firewall what the controller says it should be now. Notices that
    /// arrive during a sync fold into one more sync.
    func syncFirewall() async {
        do { try await syncFirewallOrThrow() } catch {
            logger.error("the firewall could not be applied; the previous one stays in force", metadata: ["error": "\(error)"])
        }
    }

    func syncFirewallOrThrow() async throws {
        guard let firewall else { return }
        let failure = firewallFailure
        await firewallSyncs.run { [self] in
            do {
                let started = ContinuousClock.now
                let state = try await client.call(HostFirewall.self, HostFirewall.Arguments(host: host), topic: HostFirewall.topic,
                                                  timeout: .seconds(30))
                let asked = ContinuousClock.now
                let report = try await firewall.apply(state)
                failure.set(nil)
                if report.chainsRewritten > 0 || report.setsChanged > 0 {
                    logger.info("firewall applied", metadata: [
                        "ports": "\(report.ports)", "rules": "\(report.rules)", "chains_rewritten": "\(report.chainsRewritten)",
                        "set_members_changed": "\(report.setsChanged)", "asked": "\(asked - started)", "applied": "\(ContinuousClock.now - asked)",
                    ])
                }
            } catch {
                failure.set(error)
            }
        }
        if let error = failure.get() { throw error }
    }

    func report(_ statuses: [String: String]) async throws {
        let changed = await agent.changes(statuses)
        guard !changed.isEmpty else { return }
        let active = changed.filter { $0.value == "ACTIVE" }.map(\.key).sorted()
        let down = changed.filter { $0.value == "DOWN" }.map(\.key).sorted()
        do {
            try await client.cast(PortsStatus.self, PortsStatus.Arguments(host: host, active: active, down: down), topic: PortsStatus.topic)
        } catch {
            await agent.forgetReports(active + down)  // tried again at the next change or sync
            throw error
        }
        logger.info("ports wired", metadata: ["active": "\(active)", "down": "\(down)"])
    }
}

/// The network-id prefixes whose bridges this node made, one per line in a file of its state
/// directory: reconciliation removes only those, so nodes sharing a host (tests, or a second
/// libvirtd in a namespace) never remove each other's networks. Written before the devices
/// are made, so a crash in between leaves a record, not an orphan.
final class WiredRecord: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var entries: Set<String>

    init(path: String) {
        self.path = path
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        entries = Set(text.split(separator: "\n").map(String.init).filter { !$0.isEmpty })
    }

    func prefixes() -> Set<String> { lock.withLock { entries } }

    func remember(_ prefix: String) { update { $0.insert(prefix).inserted } }

    func forget(_ prefix: String) { update { $0.remove(prefix) != nil } }

    private func update(_ change: (inout Set<String>) -> Bool) {
        lock.withLock {
            guard change(&entries) else { return }
            try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try? (entries.sorted().joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        }
    }
}

/// The outcome of the sync a caller waited for (the last one run).
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: (any Error)?
    func set(_ error: (any Error)?) { lock.withLock { self.error = error } }
    func get() -> (any Error)? { lock.withLock { error } }
}

// MARK: the L3 agent

extension NetworkRole {
    /// Makes the routers scheduled here what the controller says now. Notices that arrive
    /// during a sync fold into one more sync.
    func syncRouters() async {
        do { try await syncRoutersOrThrow() } catch {
            logger.error("routers could not be synced; the previous state stays in force", metadata: ["error": "\(error)"])
        }
    }

    func syncRoutersOrThrow() async throws {
        guard let routers else { return }
        let failure = routerFailure
        await routerSyncs.run { [self] in
            do {
                let started = ContinuousClock.now
                let result = try await client.call(HostRouters.self, HostRouters.Arguments(host: host), topic: HostRouters.topic, timeout: .seconds(30))
                // The bridges of the routers' networks first (their ports are bound here).
                let networks = Set(result.routers.flatMap { router in router.interfaces.map(\.network.id) + (router.gateway.map { [$0.network.id] } ?? []) })
                if !networks.isEmpty { _ = try await ask(networkIDs: networks.sorted()) }
                var active: [String] = []
                var errors: [String] = []
                for state in result.routers {
                    do {
                        routerRecord.remember(state.id)
                        let previous = await agent.routers[state.id]
                        let l2 = self.l2
                        let outcome = try await routers.ensure(state, bridge: { l2.attachmentPoint($0) }, previous: previous)
                        await agent.setRouter(state.id, state)
                        try await serveMetadata(state)
                        active += state.floatingIPs.map(\.id)
                        if outcome.rulesRewritten || !outcome.addedFloating.isEmpty || !outcome.changedFloating.isEmpty {
                            logger.info("router converged", metadata: [
                                "router": "\(state.id)", "interfaces": "\(state.interfaces.count)", "floating_ips": "\(state.floatingIPs.count)",
                                "took": "\(ContinuousClock.now - started)",
                            ])
                        }
                    } catch {
                        errors.append("router \(state.id): \(error)")
                    }
                }
                let wanted = Set(result.routers.map(\.id))
                for id in routerRecord.prefixes() where !wanted.contains(id) {
                    logger.info("removing a router no longer scheduled here", metadata: ["router": "\(id)"])
                    await metadata?.stop(network: "router:" + id)
                    try await routers.remove(router: id)
                    await agent.setRouter(id, nil)
                    routerRecord.forget(id)
                }
                if !active.isEmpty {
                    try await client.cast(FloatingIPsStatus.self, FloatingIPsStatus.Arguments(host: host, active: active.sorted(), down: []),
                                          topic: FloatingIPsStatus.topic)
                }
                failure.set(errors.isEmpty ? nil : L2Error(errors.joined(separator: "; ")))
            } catch {
                failure.set(error)
            }
        }
        if let error = failure.get() { throw error }
    }

    /// The in-daemon metadata proxy answers in the router's namespace for the guests behind it.
    func serveMetadata(_ state: RouterState) async throws {
        guard let metadata, let routers else { return }
        let key = "router:" + state.id
        guard !state.interfaces.isEmpty else {
            await metadata.stop(network: key)
            return
        }
        var guests: [String: MetadataProxy.Guest] = [:]
        for guest in state.guests { guests[guest.address] = MetadataProxy.Guest(instanceID: guest.instanceID, projectID: guest.projectID) }
        metadata.setGuests(key, guests)
        if !metadata.serving.contains(key) {
            try await metadata.serve(network: key, socket: try await routers.metadataSocket(router: state.id))
        }
    }
}
