import Contracts
import Foundation
import Hosts
import PetrelCore
import SQLKit
import Store

/// What the nodes' network services learn from the controller: the state of the networks
/// they wire or serve DHCP for, the ports' status they report back, and the DHCP duties the
/// controller hands out (`[dhcp] agents_per_network` nodes per network with a DHCP subnet).
extension NetworkService {
    public static let dhcpAgent = "neutron-dhcp-agent"
    public static let dhcpOwner = "network:dhcp"

    func wiring(_ network: Network) -> NetworkWiring {
        NetworkWiring(id: network.id, networkType: network.networkType, physicalNetwork: network.physicalNetwork,
                      segmentationID: network.segmentationID, mtu: network.mtu, adminStateUp: network.adminStateUp)
    }

    static func wiring(_ port: Port) -> PortWiring {
        PortWiring(id: port.id, networkID: port.networkID, projectID: port.projectID, macAddress: port.macAddress,
                   fixedIPs: port.fixedIPs.map { FixedAddress(subnetID: $0.subnetID, address: $0.ipAddress) },
                   deviceOwner: port.deviceOwner, deviceID: port.deviceID, host: port.host, adminStateUp: port.adminStateUp,
                   status: port.status, dnsName: port.dnsName,
                   extraDHCPOptions: port.extraDHCPOpts.map { ExtraDHCPOption(name: $0.name, value: $0.value, ipVersion: $0.ipVersion) })
    }

    static func wiring(_ subnet: Subnet) -> SubnetWiring {
        SubnetWiring(id: subnet.id, cidr: subnet.cidr, ipVersion: subnet.ipVersion, gatewayIP: subnet.gatewayIP, enableDHCP: subnet.enableDHCP,
                     dnsNameservers: subnet.dnsNameservers,
                     hostRoutes: subnet.hostRoutes.map { SubnetWiring.Route(destination: $0.destination, nexthop: $0.nexthop) },
                     ipv6AddressMode: subnet.ipv6AddressMode, ipv6RAMode: subnet.ipv6RAMode)
    }

    /// The desired state of `host` for the networks named (nil: every network it has a port
    /// on), recording the node's tunnel endpoint first.
    public func hostNetworks(host: String, networkIDs: [String]?, tunnelIP: String?) async throws -> HostNetworks.Result {
        if let tunnelIP {
            try await database.withConnection { sql in
                try await sql.raw("""
                    INSERT INTO network_hosts (host, tunnel_ip, updated_at) VALUES (\(bind: host), \(bind: tunnelIP), \(bind: now()))
                    ON CONFLICT (host) DO UPDATE SET tunnel_ip = excluded.tunnel_ip, updated_at = excluded.updated_at
                    """).run()
            }
        }
        let admin = Viewer(projectID: nil, isAdmin: true)
        let wanted: [String]
        if let networkIDs {
            wanted = networkIDs
        } else {
            wanted = Array(Set(try await ports(visibleTo: admin, host: host).map(\.networkID))).sorted()
        }
        let networks = try await self.networks(visibleTo: admin, ids: wanted)
        let ports = try await self.ports(visibleTo: admin, networkIDs: networks.map(\.id))
        let subnets = try await self.subnets(visibleTo: admin, networkIDs: networks.map(\.id))
        let endpoints = try await database.withConnection { sql in
            try await sql.raw("SELECT host, tunnel_ip FROM network_hosts").all().reduce(into: [String: String]()) { map, row in
                map[try row.decode(column: "host", as: String.self)] = try row.decode(column: "tunnel_ip", as: String.self)
            }
        }
        var states: [NetworkState] = []
        var gone = wanted.filter { id in !networks.contains { $0.id == id } }
        for network in networks {
            let onNetwork = ports.filter { $0.networkID == network.id }
            let local = onNetwork.filter { $0.host == host }
            guard !local.isEmpty else { gone.append(network.id); continue }
            let dhcp = local.first { $0.deviceOwner == Self.dhcpOwner }
            let remote = Set(onNetwork.filter { !$0.host.isEmpty && $0.host != host }.compactMap { endpoints[$0.host] })
                .subtracting([endpoints[host] ?? ""]).sorted()
            states.append(NetworkState(
                network: wiring(network), localPorts: local.map(Self.wiring), remoteEndpoints: remote,
                dhcpPort: dhcp.map(Self.wiring), subnets: dhcp == nil ? [] : subnets.filter { $0.networkID == network.id }.map(Self.wiring),
                allPorts: dhcp == nil ? [] : onNetwork.map(Self.wiring),
                dnsDomain: network.dnsDomain.isEmpty ? settings.dnsDomain : network.dnsDomain))
        }
        return HostNetworks.Result(networks: states, gone: gone.sorted())
    }

    /// The node's word on its ports: ACTIVE once wired, DOWN when their device went away.
    /// Ports bound elsewhere are left alone. Returns the networks whose ports changed.
    @discardableResult
    public func portsStatus(host: String, active: [String], down: [String]) async throws -> [String] {
        var changed: Set<String> = []
        for (ids, status) in [(active, "ACTIVE"), (down, "DOWN")] {
            for id in ids {
                if let port = try await setPortStatus(id, status, host: host) { changed.insert(port.networkID) }
            }
        }
        return changed.sorted()
    }

    /// Gives every network with a DHCP-enabled subnet its DHCP ports on up to
    /// `agents_per_network` of `hosts` (the nodes whose DHCP agent is alive), and takes the
    /// duty from hosts whose agent is gone when another can take it. Returns the networks
    /// whose DHCP changed.
    public func scheduleDHCP(hosts alive: [String]) async throws -> [String] {
        try await dhcpScheduling.run { try await scheduleDHCPNow(hosts: alive) }
    }

    func scheduleDHCPNow(hosts alive: [String]) async throws -> [String] {
        let admin = Viewer(projectID: nil, isAdmin: true)
        let subnets = try await self.subnets(visibleTo: admin).filter(\.enableDHCP)
        let needing = Set(subnets.map(\.networkID))
        var dhcpPorts = try await ports(visibleTo: admin).filter { $0.deviceOwner == Self.dhcpOwner }
        var changed: Set<String> = []
        for port in dhcpPorts where !needing.contains(port.networkID) {
            // No DHCP subnet left on the network: its DHCP ports go.
            try await deleteUnlessGone(port.id)
            changed.insert(port.networkID)
        }
        // One DHCP port per network and host: two controllers scheduling at once may each have
        // made one; every controller keeps the same (the oldest) and removes the others.
        let byHost = Dictionary(grouping: dhcpPorts.filter { needing.contains($0.networkID) }) { "\($0.networkID) \($0.host)" }
        for (_, group) in byHost where group.count > 1 {
            for extra in group.sorted(by: { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }).dropFirst() {
                try await deleteUnlessGone(extra.id)
                dhcpPorts.removeAll { $0.id == extra.id }
                changed.insert(extra.networkID)
            }
        }
        guard !alive.isEmpty else { return changed.sorted() }
        // Spread the duties: the hosts serving fewest networks first.
        var load = Dictionary(uniqueKeysWithValues: alive.map { ($0, 0) })
        for port in dhcpPorts where load[port.host] != nil { load[port.host]! += 1 }
        for networkID in needing.sorted() {
            let serving = dhcpPorts.filter { $0.networkID == networkID && needing.contains($0.networkID) }
            let live = serving.filter { alive.contains($0.host) }
            var missing = min(settings.agentsPerNetwork, alive.count) - live.count
            for stale in serving where !alive.contains(stale.host) && missing > 0 {
                // Move the duty of a dead agent: its port is rebound, keeping its address.
                guard let host = load.filter({ candidate in !live.contains { $0.host == candidate.key } })
                    .min(by: { ($0.value, $0.key) < ($1.value, $1.key) })?.key else { break }
                var update = PortUpdate()
                update.host = host
                update.deviceID = "dhcp-\(host)"
                _ = try await updatePort(stale.id, update)
                load[host]! += 1
                missing -= 1
                changed.insert(networkID)
            }
            while missing > 0 {
                let taken = Set(try await ports(visibleTo: admin, networkIDs: [networkID]).filter { $0.deviceOwner == Self.dhcpOwner }.map(\.host))
                guard let host = load.filter({ !taken.contains($0.key) }).min(by: { ($0.value, $0.key) < ($1.value, $1.key) })?.key else { break }
                guard let network = try await networks(visibleTo: admin, ids: [networkID]).first else { break }
                var create = PortCreate(networkID: networkID, projectID: network.projectID)
                create.deviceOwner = Self.dhcpOwner
                create.deviceID = "dhcp-\(host)"
                create.host = host
                let onSubnets = subnets.filter { $0.networkID == networkID && !Self.autoAddressed($0) }
                create.fixedIPs = onSubnets.map { FixedIPRequest(subnetID: $0.id) }
                _ = try await createPort(create)
                load[host]! += 1
                missing -= 1
                changed.insert(networkID)
            }
        }
        return changed.sorted()
    }

    /// Deletes a port another controller may have deleted first.
    func deleteUnlessGone(_ id: String) async throws {
        do { _ = try await deletePort(id) } catch let failure as NetworkingFailure where failure.type == "PortNotFound" {}
    }

    /// The hosts whose DHCP agent is alive now.
    public func aliveDHCPHosts() async throws -> [String] {
        try await hosts.services { $0.binary == Self.dhcpAgent }.filter(\.up).map(\.host).sorted()
    }
}
