import Contracts
import DnsmasqDriver
import Foundation
import Logging
import NetlinkDriver
import PetrelCore

/// The node's DHCP agent: for each network whose DHCP duty is this node's, the namespace
/// `qdhcp-<network id>`, the DHCP port as a veth pair (`tap<port[:11]>` on the network's
/// bridge, `ns-<port[:11]>` inside with the port's MAC and addresses) and one dnsmasq with a
/// static entry per port. A port change rewrites dnsmasq's files and signals it; dnsmasq
/// survives a restart of the node, which adopts it.
struct DHCPServers: Sendable {
    static let namespacePrefix = "qdhcp-"
    let dnsmasq: DnsmasqDriver
    let netlink: Netlink
    let leaseDuration: Int
    let executor = BlockingExecutor(label: "dhcp", serial: true)

    init(stateDirectory: String, leaseDuration: Int, logger: Logger) throws {
        dnsmasq = DnsmasqDriver(stateDirectory: stateDirectory, logger: logger)
        netlink = try Netlink()
        self.leaseDuration = leaseDuration
    }

    static func hostSide(_ port: PortWiring) -> String { port.tapName }
    static func namespaceSide(_ port: PortWiring) -> String { "ns-" + port.id.prefix(11) }

    /// A listening socket on 169.254.169.254:80 inside the network's namespace (for the metadata proxy).
    func metadataSocket(network id: String) async throws -> Int32 {
        try await executor.run {
            guard let namespace = NetworkNamespace(existing: Self.namespacePrefix + id) else {
                throw L2Error("no namespace \(Self.namespacePrefix + id) to serve metadata in")
            }
            return try namespace.listenTCP(address: MetadataProxy.address, port: 80)
        }
    }

    /// Makes the network's DHCP service what `state` says (its DHCP port must be set). With
    /// `metadata`, the namespace also holds 169.254.169.254 and guests get a route to it
    /// through the DHCP port.
    func ensure(_ state: NetworkState, bridge: String, metadata: Bool) async throws {
        guard let port = state.dhcpPort else { return }
        let netlink = self.netlink
        let prefixes = Dictionary(uniqueKeysWithValues: state.subnets.compactMap { subnet in
            IPNetwork(subnet.cidr).map { (subnet.id, $0.prefixLength) }
        })
        let namespaceName = Self.namespacePrefix + state.network.id
        let directory = dnsmasq.paths(network: state.network.id).directory
        try await executor.run {
            try DnsmasqDriver.makeDirectory(directory)
            let namespace = try NetworkNamespace(existing: namespaceName) ?? NetworkNamespace.create(namespaceName)
            let inside = try Netlink(namespace: namespace)
            let host = Self.hostSide(port), peer = Self.namespaceSide(port)
            if try inside.link(named: peer) == nil {
                if try netlink.link(named: host) != nil { try netlink.deleteLink(host) }  // half-made before a crash
                try netlink.createVeth(host, peer: peer)
                try netlink.move(peer, to: namespace)
            }
            try netlink.setMTU(host, UInt32(state.network.mtu))
            try netlink.setMaster(host, bridge: bridge)
            try netlink.setUp(host)
            try inside.setUp("lo")
            if try inside.link(named: peer)?.mac != port.macAddress { try inside.setMAC(peer, port.macAddress) }
            try inside.setMTU(peer, UInt32(state.network.mtu))
            var wanted = Set(port.fixedIPs.compactMap { fixed in prefixes[fixed.subnetID].map { "\(fixed.address)/\($0)" } })
            if metadata { wanted.insert(MetadataProxy.address + "/32") }
            // libnl prints a host address without its /32 (/128): compare in one form.
            let present = Set(try inside.addresses(of: peer).filter { !$0.hasPrefix("fe80:") }
                .map { $0.contains("/") ? $0 : $0 + ($0.contains(":") ? "/128" : "/32") })
            for address in wanted.subtracting(present) { try inside.addAddress(address, to: peer) }
            for address in present.subtracting(wanted) { try inside.removeAddress(address, from: peer) }
            try inside.setUp(peer)
        }
        _ = try await dnsmasq.update(configuration(state, port: port, metadata: metadata))
    }

    /// What dnsmasq serves: every subnet with DHCP, a static entry per port of the network.
    func configuration(_ state: NetworkState, port: PortWiring, metadata: Bool) -> DHCPNetwork {
        let subnets = state.subnets.filter(\.enableDHCP).map { subnet in
            let nextHop = metadata && subnet.ipVersion == 4 ? port.fixedIPs.first { $0.subnetID == subnet.id }?.address : nil
            return
            DHCPSubnet(id: subnet.id, cidr: subnet.cidr, gateway: subnet.gatewayIP, dhcpEnabled: subnet.enableDHCP,
                       ipv6AddressMode: subnet.ipv6AddressMode.flatMap(IPv6Mode.init(rawValue:)),
                       ipv6RAMode: subnet.ipv6RAMode.flatMap(IPv6Mode.init(rawValue:)),
                       dnsNameservers: subnet.dnsNameservers,
                       hostRoutes: subnet.hostRoutes.map { HostRoute(destination: $0.destination, nexthop: $0.nexthop) },
                       metadataNextHop: nextHop)
        }
        let hosts = state.allPorts.filter { $0.id != port.id && $0.deviceOwner != "network:dhcp" && !$0.fixedIPs.isEmpty }.map { other in
            DHCPHost(portID: other.id, mac: other.macAddress,
                     fixedIPs: other.fixedIPs.map { FixedIP(subnetID: $0.subnetID, address: $0.address) },
                     hostname: Self.hostname(other),
                     extraOptions: other.extraDHCPOptions.map { DHCPOption(name: $0.name, value: $0.value, ipVersion: $0.ipVersion) })
        }
        return DHCPNetwork(id: state.network.id, interface: Self.namespaceSide(port), subnets: subnets, hosts: hosts,
                           mtu: state.network.mtu, leaseDuration: leaseDuration, domain: state.dnsDomain)
    }

    /// The host name a port's guest gets: its DNS name, or Neutron's `host-<address>`.
    static func hostname(_ port: PortWiring) -> String {
        if !port.dnsName.isEmpty { return port.dnsName }
        let address = port.fixedIPs.first?.address ?? port.id
        return "host-" + address.replacingOccurrences(of: ".", with: "-").replacingOccurrences(of: ":", with: "-")
    }

    /// Stops the network's dnsmasq and removes its namespace and veth.
    func remove(network id: String) async throws {
        try await dnsmasq.stop(network: id)
        try await executor.run {
            if let namespace = NetworkNamespace(existing: Self.namespacePrefix + id) {
                // The veth's namespace side goes with the namespace, and its host side with it.
                try namespace.delete()
            }
        }
    }

    /// The networks this node serves DHCP for now: those with a directory in its own state
    /// directory (made before their namespace), never another node's on a shared host.
    func served() -> Set<String> { Set(dnsmasq.networks()) }
}
