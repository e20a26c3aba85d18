import Contracts
import Foundation
import Networking
import SQLKit
import Store

/// One entry of a server's `networks`: a network (a port is made for it), or a port the
/// user made; `created` marks the ports Nova made, which go with the server.
public struct RequestedNetwork: Codable, Sendable, Equatable {
    public var networkID: String?
    public var portID: String?
    public var fixedIP: String?
    public var created: Bool
    /// The security groups (ids) of a port Nova makes; nil: the project's default group.
    public var securityGroups: [String]?

    public init(networkID: String? = nil, portID: String? = nil, fixedIP: String? = nil, created: Bool = false, securityGroups: [String]? = nil) {
        self.networkID = networkID; self.portID = portID; self.fixedIP = fixedIP; self.created = created; self.securityGroups = securityGroups
    }
}

/// A server's addresses as Nova shows them: by network name, each with its MAC.
public struct ServerAddress: Sendable, Equatable {
    public var networkName: String
    public var address: String
    public var version: Int
    public var macAddress: String
    /// `fixed`, or `floating` for a floating IP translated to one of the server's addresses.
    public var type = "fixed"
}

extension Servers {
    static let admin = Viewer(projectID: nil, isAdmin: true)

    func requested(_ row: InstanceRow) -> [RequestedNetwork] {
        JSONColumn.decode(row.requestedNetworks, fallback: [RequestedNetwork]())
    }

    /// Binds the server's ports to `host` before its build: makes the ports of the networks it
    /// asked for (once: a rebuild on another host rebinds them) and binds the user's ports.
    /// A port that cannot be made (no address left) fails the build with Neutron's reason.
    public func bindPorts(_ id: String, host: String) async throws {
        guard let networking else { return }
        guard let row = try await database.withConnection({ sql in try await ComputeTables.instances.get(sql, id: id) }) else { return }
        var requested = requested(row)
        guard !requested.isEmpty else { return }
        let owner = "compute:" + (row.availabilityZone ?? defaultAvailabilityZone)
        for index in requested.indices {
            var entry = requested[index]
            if let portID = entry.portID {
                var update = NetworkService.PortUpdate()
                update.host = host
                update.deviceID = id
                update.deviceOwner = owner
                _ = try await networking.updatePort(portID, update)
            } else if let networkID = entry.networkID {
                var create = NetworkService.PortCreate(networkID: networkID, projectID: row.projectID)
                create.deviceID = id
                create.deviceOwner = owner
                create.host = host
                create.fixedIPs = entry.fixedIP.map { [NetworkService.FixedIPRequest(ipAddress: $0)] }
                create.securityGroups = entry.securityGroups
                entry.portID = try await networking.createPort(create).id
                entry.created = true
                requested[index] = entry
                let text = JSONColumn.encode(requested, fallback: "[]")
                try await database.withConnection { sql in
                    try await sql.raw("UPDATE instances SET requested_networks = \(bind: text) WHERE id = \(bind: id)").run()
                }
            }
        }
    }

    /// Frees a deleted server's ports: those Nova made are deleted, the user's unbound.
    func releasePorts(_ row: InstanceRow) async {
        guard let networking else { return }
        let requested = requested(row)
        let ports = (try? await networking.ports(visibleTo: Self.admin, deviceIDs: [row.id])) ?? []
        for port in ports {
            let userPort = requested.contains { $0.portID == port.id && !$0.created }
            do {
                if userPort {
                    var update = NetworkService.PortUpdate()
                    update.host = ""
                    update.deviceID = ""
                    update.deviceOwner = ""
                    _ = try await networking.updatePort(port.id, update)
                } else {
                    _ = try await networking.deletePort(port.id)
                }
            } catch {
                // Left for an operator: the port stays with the server's id as its device.
                continue
            }
        }
    }

    /// The interfaces a node plugs for the server: its ports bound to the host, in the order asked.
    func nics(_ row: InstanceRow) async throws -> [InstanceSpec.NIC] {
        guard let networking, let host = row.host else { return [] }
        let ports = try await orderedPorts(row).filter { $0.host == host }
        guard !ports.isEmpty else { return [] }
        var mtus: [String: Int] = [:]
        for network in try await networking.networks(visibleTo: Self.admin, ids: Array(Set(ports.map(\.networkID)))) { mtus[network.id] = network.mtu }
        return ports.map { port in
            InstanceSpec.NIC(portID: port.id, networkID: port.networkID, macAddress: port.macAddress,
                             mtu: mtus[port.networkID] ?? 1500, vifType: port.vifType)
        }
    }

    /// The server's NICs as its guest is told of them (`network_data.json`, the config drive):
    /// each port with its network's MTU and its addresses' subnets.
    public func guestInterfaces(_ server: Server) async throws -> [GuestInterface] {
        guard let networking else { return [] }
        let ports = try await orderedPorts(server.row)
        guard !ports.isEmpty else { return [] }
        let networkIDs = Array(Set(ports.map(\.networkID)))
        var mtus: [String: Int] = [:]
        for network in try await networking.networks(visibleTo: Self.admin, ids: networkIDs) { mtus[network.id] = network.mtu }
        var subnets: [String: Networking.Subnet] = [:]
        for subnet in try await networking.subnets(visibleTo: Self.admin, networkIDs: networkIDs) { subnets[subnet.id] = subnet }
        let groups = try await networking.securityGroups(visibleTo: Self.admin, ids: Array(Set(ports.flatMap(\.securityGroups))).sorted())
        let groupNames = Dictionary(uniqueKeysWithValues: groups.map { ($0.id, $0.name) })
        return ports.map { port in
            var seen: [String] = []
            for fixed in port.fixedIPs where !seen.contains(fixed.subnetID) { seen.append(fixed.subnetID) }
            let nicSubnets = seen.compactMap { id -> GuestInterface.Subnet? in
                guard let subnet = subnets[id] else { return nil }
                // DHCPv6-stateful and IPv4 with DHCP: the guest asks; SLAAC and static: it is told.
                let dhcp = subnet.enableDHCP && (subnet.ipVersion == 4 || subnet.ipv6AddressMode == "dhcpv6-stateful")
                return GuestInterface.Subnet(cidr: subnet.cidr, ipVersion: subnet.ipVersion,
                                             addresses: port.fixedIPs.filter { $0.subnetID == id }.map(\.ipAddress),
                                             gateway: subnet.gatewayIP, dnsServers: subnet.dnsNameservers, dhcp: dhcp,
                                             routes: subnet.hostRoutes.map { (cidr: $0.destination, gateway: $0.nexthop) })
            }
            return GuestInterface(portID: port.id, macAddress: port.macAddress, networkID: port.networkID, deviceName: "tap" + port.id.prefix(11),
                                  vifType: port.vifType, mtu: mtus[port.networkID], subnets: nicSubnets,
                                  securityGroups: port.securityGroups.map { groupNames[$0] ?? $0 })
        }
    }

    /// The addresses of servers, by server id, as Nova's `addresses` shows them.
    public func addresses(_ ids: [String]) async throws -> [String: [ServerAddress]] {
        guard let networking, !ids.isEmpty else { return [:] }
        let ports = try await networking.ports(visibleTo: Self.admin, deviceIDs: ids)
        guard !ports.isEmpty else { return [:] }
        var names: [String: String] = [:]
        for network in try await networking.networks(visibleTo: Self.admin, ids: Array(Set(ports.map(\.networkID)))) {
            names[network.id] = network.name.isEmpty ? network.id : network.name
        }
        // Floating IPs are listed after the fixed address they translate to, as Nova does.
        let floating = Dictionary(grouping: try await networking.floatingIPs(visibleTo: Self.admin, portIDs: ports.map(\.id))) {
            "\($0.portID!) \($0.fixedIPAddress ?? "")"
        }
        var out: [String: [ServerAddress]] = [:]
        for port in ports {
            for fixed in port.fixedIPs {
                let name = names[port.networkID] ?? port.networkID
                out[port.deviceID, default: []].append(ServerAddress(networkName: name, address: fixed.ipAddress,
                                                                     version: fixed.ipAddress.contains(":") ? 6 : 4, macAddress: port.macAddress))
                for fip in floating["\(port.id) \(fixed.ipAddress)"] ?? [] {
                    out[port.deviceID, default: []].append(ServerAddress(networkName: name, address: fip.floatingIPAddress, version: 4,
                                                                         macAddress: port.macAddress, type: "floating"))
                }
            }
        }
        return out
    }

    /// The names of the security groups of each server's ports (Nova's `security_groups`).
    public func securityGroupNames(_ ids: [String]) async throws -> [String: [String]] {
        guard let networking, !ids.isEmpty else { return [:] }
        let ports = try await networking.ports(visibleTo: Self.admin, deviceIDs: ids)
        let groups = try await networking.securityGroups(visibleTo: Self.admin, ids: Array(Set(ports.flatMap(\.securityGroups))).sorted())
        let names = Dictionary(uniqueKeysWithValues: groups.map { ($0.id, $0.name) })
        var out: [String: [String]] = [:]
        for port in ports {
            for id in port.securityGroups {
                let name = names[id] ?? id
                if !(out[port.deviceID] ?? []).contains(name) { out[port.deviceID, default: []].append(name) }
            }
        }
        return out
    }

    /// Adds a security group (by name or id, in the server's project) to all of its ports, or
    /// removes it from them, as Nova's `addSecurityGroup`/`removeSecurityGroup` actions.
    public func changeSecurityGroup(_ reference: String, of server: Server, adding: Bool) async throws {
        guard let networking else { throw Failure.badRequest("Networking is not available.") }
        let group: String
        do {
            group = try await networking.resolveSecurityGroups([reference], project: server.projectID)[0]
        } catch let failure as NetworkingFailure where failure.status == 404 {
            throw NetworkingFailure(404, "SecurityGroupNotFound", "Security group \(reference) not found for project \(server.projectID).")
        }
        let ports = try await networking.ports(visibleTo: Self.admin, deviceIDs: [server.id])
        guard !ports.isEmpty else { throw Failure.badRequest("Server \(server.id) has no network port to put in a security group.") }
        if !adding, !ports.contains(where: { $0.securityGroups.contains(group) }) {
            throw Failure.badRequest("Security group \(reference) not associated with the instance \(server.id)")
        }
        for port in ports {
            var update = NetworkService.PortUpdate()
            if adding {
                guard port.portSecurityEnabled, !port.securityGroups.contains(group) else { continue }
                update.securityGroups = port.securityGroups + [group]
            } else {
                guard port.securityGroups.contains(group) else { continue }
                update.securityGroups = port.securityGroups.filter { $0 != group }
            }
            _ = try await networking.updatePort(port.id, update)
        }
    }

    /// The security groups of the server's ports, each once.
    public func securityGroups(of server: Server) async throws -> [SecurityGroup] {
        guard let networking else { return [] }
        let ports = try await networking.ports(visibleTo: Self.admin, deviceIDs: [server.id])
        var ids: [String] = []
        for id in ports.flatMap(\.securityGroups) where !ids.contains(id) { ids.append(id) }
        let groups = try await networking.securityGroups(visibleTo: Self.admin, ids: ids)
        return ids.compactMap { id in groups.first { $0.id == id } }
    }
}
