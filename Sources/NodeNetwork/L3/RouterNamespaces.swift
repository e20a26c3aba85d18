import Contracts
import Foundation
import IptablesDriver
import Logging
import NetlinkDriver
import PetrelCore
import ProcessDriver

/// The node's L3 agent: for each router scheduled here, the namespace `qrouter-<router id>`
/// with IP forwarding on; each router port as a veth pair (`tap<port[:11]>` on the network's
/// bridge, `qr-<port[:11]>` or `qg-<port[:11]>` inside with the port's MAC and addresses);
/// the default route through the external subnet's gateway and the extra routes; and the
/// NAT table in one `iptables-restore` per change (diffed against the kernel's): DNAT and
/// SNAT per floating IP, port forwardings, SNAT of the internal subnets through the gateway
/// address, and the metadata redirect to the in-daemon proxy listening in the namespace.
public struct RouterNamespaces: Sendable {
    static let namespacePrefix = "qrouter-"
    /// Where guests' metadata requests to 169.254.169.254:80 are redirected inside the namespace.
    static let metadataPort: UInt16 = 9697

    let netlink: Netlink
    let logger: Logger
    /// Netlink and namespace work blocks: it runs off the cooperative pool, one at a time.
    let executor = BlockingExecutor(label: "l3", serial: true)

    /// `hostNamespace`: where the networks' bridges are (nil: this process's namespace).
    public init(logger: Logger, hostNamespace: NetworkNamespace? = nil) throws {
        netlink = try Netlink(namespace: hostNamespace)
        self.logger = logger
    }

    static func insideName(_ port: RouterPortState, gateway: Bool) -> String { (gateway ? "qg-" : "qr-") + port.port.id.prefix(11) }

    /// What changed for the router's neighbours, so the caller can announce it.
    public struct Outcome: Sendable {
        public var addedFloating: [String] = []
        public var changedFloating: [String] = []
        public var rulesRewritten = false
    }

    /// Makes the router's namespace what `state` says; `bridge` names each network's bridge.
    public func ensure(_ state: RouterState, bridge: @escaping @Sendable (NetworkWiring) -> String, previous: RouterState?) async throws -> Outcome {
        let netlink = self.netlink
        let name = state.namespaceName
        var outcome = Outcome()
        let namespace: NetworkNamespace = try await executor.run {
            let namespace = try NetworkNamespace(existing: name) ?? NetworkNamespace.create(name)
            let inside = try Netlink(namespace: namespace)
            try inside.setUp("lo")
            try namespace.setSysctl("net/ipv4/ip_forward", "1")
            try? namespace.setSysctl("net/ipv6/conf/all/forwarding", "1")
            var ports: [(RouterPortState, Bool)] = state.interfaces.map { ($0, false) }
            if let gateway = state.gateway { ports.append((gateway, true)) }
            let wantedDevices = Set(ports.map { Self.insideName($0.0, gateway: $0.1) })
            // Ports the router no longer has: their veth goes (both ends).
            for link in try inside.links() where (link.name.hasPrefix("qr-") || link.name.hasPrefix("qg-")) && !wantedDevices.contains(link.name) {
                try inside.deleteLink(link.name)
            }
            for (port, isGateway) in ports {
                let host = port.port.tapName, peer = Self.insideName(port, gateway: isGateway)
                if try inside.link(named: peer) == nil {
                    if try netlink.link(named: host) != nil { try netlink.deleteLink(host) }  // half-made before a crash
                    try netlink.createVeth(host, peer: peer)
                    try netlink.move(peer, to: namespace)
                }
                try netlink.setMTU(host, UInt32(port.network.mtu))
                try netlink.setMaster(host, bridge: bridge(port.network))
                try netlink.setUp(host)
                if try inside.link(named: peer)?.mac != port.port.macAddress { try inside.setMAC(peer, port.port.macAddress) }
                try inside.setMTU(peer, UInt32(port.network.mtu))
                let prefixes = Dictionary(uniqueKeysWithValues: port.subnets.compactMap { subnet in
                    IPNetwork(subnet.cidr).map { (subnet.id, $0.prefixLength) }
                })
                var wanted = Set(port.port.fixedIPs.compactMap { fixed in prefixes[fixed.subnetID].map { "\(fixed.address)/\($0)" } })
                if isGateway { for fip in state.floatingIPs { wanted.insert(fip.address + "/32") } }
                for forwarding in state.portForwardings where isGateway { wanted.insert(forwarding.floatingAddress + "/32") }
                let present = Set(try inside.addresses(of: peer).filter { !$0.hasPrefix("fe80:") }
                    .map { $0.contains("/") ? $0 : $0 + ($0.contains(":") ? "/128" : "/32") })
                for address in wanted.subtracting(present) { try inside.addAddress(address, to: peer) }
                for address in present.subtracting(wanted) { try inside.removeAddress(address, from: peer) }
                try inside.setUp(peer, state.adminStateUp)
            }
            // Routes: the default through the external subnet's gateway, then the extra routes.
            var wantedRoutes: Set<String> = []
            if let gateway = state.gateway,
               let hop = gateway.subnets.first(where: { $0.ipVersion == 4 && $0.gatewayIP != nil })?.gatewayIP {
                wantedRoutes.insert("default via \(hop)")
            }
            for route in state.routes where !route.destination.contains(":") {
                let destination = IPNetwork(route.destination, strict: false).map { $0.prefixLength == 0 ? "default" : $0.description } ?? route.destination
                wantedRoutes.insert("\(destination) via \(route.nexthop)")
            }
            let presentRoutes = Set(try inside.routes(family: .ipv4).compactMap { route in route.gateway.map { "\(route.destination) via \($0)" } })
            for route in presentRoutes.subtracting(wantedRoutes) {
                let parts = route.components(separatedBy: " via ")
                try inside.removeRoute(parts[0], via: parts[1])
            }
            // Routes whose next hop is not (yet) reachable are refused by the kernel: logged, tried at the next sync.
            for route in wantedRoutes.subtracting(presentRoutes).sorted() {
                let parts = route.components(separatedBy: " via ")
                do { try inside.addRoute(parts[0], via: parts[1]) } catch {
                    logger.warning("a router's route could not be installed", metadata: ["router": "\(state.id)", "route": "\(route)", "error": "\(error)"])
                }
            }
            return namespace
        }
        let rules = Self.natRules(state)
        let iptables = Iptables(family: .ipv4, prefix: "petrel-", namespace: namespace)
        let current = try await iptables.read(table: "nat")
        if current != rules {
            try await iptables.apply(rules, over: current, table: "nat")
            outcome.rulesRewritten = true
        }
        let before = Dictionary((previous?.floatingIPs ?? []).map { ($0.address, $0.fixedAddress) }) { first, _ in first }
        for fip in state.floatingIPs {
            if let old = before[fip.address] {
                if old != fip.fixedAddress { outcome.changedFloating.append(fip.address) }
            } else {
                outcome.addedFloating.append(fip.address)
            }
        }
        let now = Set(state.floatingIPs.map(\.address))
        outcome.changedFloating += before.keys.filter { !now.contains($0) }
        // Flows of a floating IP that moved or went keep their old translation in conntrack: cleared.
        for address in outcome.changedFloating {
            _ = try? await Command.run("conntrack", ["-D", "-d", address], namespace: namespace)
        }
        if let gateway = state.gateway {
            let device = Self.insideName(gateway, gateway: true)
            let announced = outcome.addedFloating + outcome.changedFloating.filter(now.contains)
                + (previous?.gateway == nil ? gateway.port.fixedIPs.map(\.address).filter { !$0.contains(":") } : [])
            try await executor.run {
                do {
                    let unsent = try namespace.announce(addresses: announced, mac: gateway.port.macAddress, device: device)
                    if !unsent.isEmpty { logger.warning("gratuitous ARP not sent", metadata: ["addresses": "\(unsent)"]) }
                } catch {
                    logger.warning("gratuitous ARP not sent", metadata: ["addresses": "\(announced)", "error": "\(error)"])
                }
            }
        }
        return outcome
    }

    /// The router's NAT table, in `iptables-save`'s own spelling (so an unchanged table reads
    /// back equal and nothing is rewritten).
    static func natRules(_ state: RouterState) -> OwnedRules {
        var prerouting: [String] = []
        var postrouting: [String] = []
        if !state.interfaces.isEmpty {
            prerouting.append("-d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports \(metadataPort)")
        }
        if let gateway = state.gateway {
            let outside = insideName(gateway, gateway: true)
            for fip in state.floatingIPs.sorted(by: { $0.address < $1.address }) {
                prerouting.append("-d \(fip.address)/32 -j DNAT --to-destination \(fip.fixedAddress)")
            }
            for forwarding in state.portForwardings.sorted(by: { ($0.floatingAddress, $0.protocol, $0.externalPort) < ($1.floatingAddress, $1.protocol, $1.externalPort) }) {
                prerouting.append("-d \(forwarding.floatingAddress)/32 -p \(forwarding.protocol) -m \(forwarding.protocol) --dport \(forwarding.externalPort) -j DNAT --to-destination \(forwarding.internalAddress):\(forwarding.internalPort)")
            }
            for fip in state.floatingIPs.sorted(by: { $0.address < $1.address }) {
                postrouting.append("-s \(fip.fixedAddress)/32 -o \(outside) -j SNAT --to-source \(fip.address)")
            }
            if state.enableSNAT, let address = gateway.port.fixedIPs.first(where: { !$0.address.contains(":") })?.address {
                for subnet in state.interfaces.flatMap(\.subnets) where subnet.ipVersion == 4 {
                    let cidr = IPNetwork(subnet.cidr, strict: false)?.description ?? subnet.cidr
                    postrouting.append("-s \(cidr) -o \(outside) -j SNAT --to-source \(address)")
                }
            }
        }
        var chains: [String: [String]] = [:]
        var jumps: Set<Jump> = []
        if !prerouting.isEmpty {
            chains["petrel-PREROUTING"] = prerouting
            jumps.insert(Jump(from: "PREROUTING", to: "petrel-PREROUTING"))
        }
        if !postrouting.isEmpty {
            chains["petrel-POSTROUTING"] = postrouting
            jumps.insert(Jump(from: "POSTROUTING", to: "petrel-POSTROUTING"))
        }
        return OwnedRules(chains: chains, jumps: jumps)
    }

    /// A listening socket on 0.0.0.0:9697 inside the router's namespace (for the metadata proxy).
    func metadataSocket(router id: String) async throws -> Int32 {
        try await executor.run {
            guard let namespace = NetworkNamespace(existing: Self.namespacePrefix + id) else {
                throw L2Error("no namespace \(Self.namespacePrefix + id) to serve metadata in")
            }
            return try namespace.listenTCP(address: "0.0.0.0", port: Self.metadataPort)
        }
    }

    /// Removes the router's namespace; its veths (both ends) go with it.
    public func remove(router id: String) async throws {
        try await executor.run {
            guard let namespace = NetworkNamespace(existing: Self.namespacePrefix + id) else { return }
            let inside = try Netlink(namespace: namespace)
            // Deleting the devices first takes their host sides off the bridges at once
            // (a namespace's devices otherwise go only when its last user lets go).
            for link in try inside.links() where link.name.hasPrefix("qr-") || link.name.hasPrefix("qg-") {
                try? inside.deleteLink(link.name)
            }
            try namespace.delete()
        }
    }
}
