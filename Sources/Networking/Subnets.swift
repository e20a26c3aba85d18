import Foundation
import PetrelCore
import SQLKit
import Store

extension NetworkService {
    public static let ipv6Modes = ["slaac", "dhcpv6-stateful", "dhcpv6-stateless"]

    public struct SubnetCreate: Sendable {
        public var networkID: String
        public var projectID: String
        public var ipVersion: Int
        public var cidr: String
        public var name = ""
        public var description = ""
        /// nil: the first address of the range; `.some(nil)`: no gateway.
        public var gatewayIP: String??
        public var allocationPools: [AllocationPool]?
        public var dnsNameservers: [String] = []
        public var hostRoutes: [HostRoute] = []
        public var enableDHCP = true
        public var ipv6AddressMode: String?
        public var ipv6RAMode: String?
        public var tags: [String] = []

        public init(networkID: String, projectID: String, ipVersion: Int, cidr: String) {
            self.networkID = networkID; self.projectID = projectID; self.ipVersion = ipVersion; self.cidr = cidr
        }
    }

    public struct SubnetUpdate: Sendable {
        public var name: String?
        public var description: String?
        public var gatewayIP: String??
        public var allocationPools: [AllocationPool]?
        public var dnsNameservers: [String]?
        public var hostRoutes: [HostRoute]?
        public var enableDHCP: Bool?
        public init() {}
    }

    /// Whether the subnet's addresses come from the MAC (EUI-64) rather than its pools.
    static func autoAddressed(_ subnet: Subnet) -> Bool {
        subnet.ipVersion == 6 && (subnet.ipv6AddressMode == "slaac" || subnet.ipv6AddressMode == "dhcpv6-stateless")
    }

    /// Checks a subnet's shape: its range, gateway, pools, name servers, routes and IPv6 modes.
    /// Returns the subnet with Neutron's defaults filled in (gateway, pools).
    func validated(_ subnet: Subnet, gateway: String??, pools: [AllocationPool]?) throws -> Subnet {
        var subnet = subnet
        guard [4, 6].contains(subnet.ipVersion) else { throw NetworkingFailure.invalid("\(subnet.ipVersion) is not in [4, 6]") }
        guard let range = IPNetwork(subnet.cidr, strict: false) else {
            throw NetworkingFailure.invalid("'\(subnet.cidr)' is not a valid IP subnet.")
        }
        guard IPNetwork(subnet.cidr) != nil else {
            throw NetworkingFailure.invalid("'\(subnet.cidr)' isn't a recommended CIDR, should be '\(range)'")
        }
        guard range.version == subnet.ipVersion else {
            throw NetworkingFailure.invalid("Cidr \(subnet.cidr) does not match the subnet's ip_version \(subnet.ipVersion).")
        }
        subnet.cidr = range.description
        let hostBits = range.address.bits - range.prefixLength
        if range.version == 4 && hostBits < 2 || range.version == 6 && hostBits < 1 {
            throw NetworkingFailure.invalid("The CIDR \(range) has no room for addresses.")
        }
        // IPv6 modes: only on IPv6 subnets, the two equal when both are set; SLAAC needs a /64.
        if subnet.ipVersion == 4, subnet.ipv6AddressMode != nil || subnet.ipv6RAMode != nil {
            throw NetworkingFailure.invalid("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False or ip_version is 4.")
        }
        for mode in [subnet.ipv6AddressMode, subnet.ipv6RAMode].compactMap({ $0 }) where !Self.ipv6Modes.contains(mode) {
            throw NetworkingFailure.invalid("'\(mode)' is not in \(Self.ipv6Modes)")
        }
        if let address = subnet.ipv6AddressMode, let ra = subnet.ipv6RAMode, address != ra {
            throw NetworkingFailure.invalid("ipv6_ra_mode set to '\(ra)' with ipv6_address_mode set to '\(address)' is not valid. If both attributes are set, they must be the same value")
        }
        if Self.autoAddressed(subnet) || subnet.ipv6RAMode == "slaac", range.prefixLength != 64 {
            throw NetworkingFailure.invalid("Invalid CIDR \(range) for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64")
        }
        // The gateway: the first host address unless given or refused.
        let defaultGateway = range.first.advanced(by: 1)
        switch gateway {
        case .none:
            subnet.gatewayIP = subnet.gatewayIP ?? defaultGateway.description
        case .some(.none):
            subnet.gatewayIP = nil
        case .some(.some(let text)):
            guard let address = IPAddress(text), address.version == subnet.ipVersion else {
                throw NetworkingFailure.invalid("'\(text)' is not a valid IP address")
            }
            if range.version == 4, range.contains(address), address == range.first || address == range.last {
                throw NetworkingFailure.invalid("Gateway is not valid on subnet")
            }
            subnet.gatewayIP = address.description
        }
        // The pools: given, or the whole range but the network and broadcast addresses and the gateway.
        let gatewayAddress = subnet.gatewayIP.flatMap { IPAddress($0) }
        if let pools {
            var parsed: [(IPAddress, IPAddress)] = []
            for pool in pools {
                guard let start = IPAddress(pool.start), let end = IPAddress(pool.end), start.version == range.version,
                      end.version == range.version else {
                    throw NetworkingFailure(400, "InvalidAllocationPool", "The allocation pool \(pool.start)-\(pool.end) is not valid.")
                }
                guard range.contains(start), range.contains(end) else {
                    throw NetworkingFailure(400, "OutOfBoundsAllocationPool", "The allocation pool \(pool.start)-\(pool.end) spans beyond the subnet cidr \(range).")
                }
                guard start <= end else {
                    throw NetworkingFailure(400, "InvalidAllocationPool", "The allocation pool \(pool.start)-\(pool.end) is not valid.")
                }
                if range.version == 4, start == range.first || end == range.last {
                    throw NetworkingFailure(400, "InvalidAllocationPool", "The allocation pool \(pool.start)-\(pool.end) is not valid.")
                }
                for (otherStart, otherEnd) in parsed where start <= otherEnd && otherStart <= end {
                    throw NetworkingFailure(409, "OverlappingAllocationPools",
                                            "Found overlapping allocation pools: \(otherStart)-\(otherEnd) and \(start)-\(end) for subnet \(range).")
                }
                if let gatewayAddress, start <= gatewayAddress, gatewayAddress <= end {
                    throw NetworkingFailure(409, "GatewayConflictWithAllocationPools",
                                            "Gateway ip \(gatewayAddress) conflicts with allocation pool \(start)-\(end)")
                }
                parsed.append((start, end))
            }
            subnet.allocationPools = parsed.sorted { $0.0 < $1.0 }.map { AllocationPool(start: $0.0.description, end: $0.1.description) }
        } else {
            let first = range.first.advanced(by: 1)
            let last = range.version == 4 ? range.last.advanced(by: UInt128.max) : range.last
            var pools: [AllocationPool] = []
            if let gatewayAddress, range.contains(gatewayAddress), first <= gatewayAddress, gatewayAddress <= last {
                if gatewayAddress > first { pools.append(AllocationPool(start: first.description, end: gatewayAddress.advanced(by: UInt128.max).description)) }
                if gatewayAddress < last { pools.append(AllocationPool(start: gatewayAddress.advanced(by: 1).description, end: last.description)) }
            } else if first <= last {
                pools.append(AllocationPool(start: first.description, end: last.description))
            }
            subnet.allocationPools = pools
        }
        var seen: Set<IPAddress> = []
        subnet.dnsNameservers = try subnet.dnsNameservers.map { text in
            guard let address = IPAddress(text) else { throw NetworkingFailure.invalid("'\(text)' is not a valid nameserver. '\(text)' is not a valid IP address") }
            guard seen.insert(address).inserted else { throw NetworkingFailure.invalid("Duplicate nameserver '\(text)'") }
            return address.description
        }
        subnet.hostRoutes = try subnet.hostRoutes.map { route in
            guard let destination = IPNetwork(route.destination, strict: false), let nexthop = IPAddress(route.nexthop),
                  destination.version == subnet.ipVersion, nexthop.version == subnet.ipVersion else {
                throw NetworkingFailure.invalid("Invalid data format for hostroute: '\(route.destination) via \(route.nexthop)'")
            }
            return HostRoute(destination: destination.description, nexthop: nexthop.description)
        }
        return subnet
    }

    public func createSubnet(_ request: SubnetCreate) async throws -> Subnet {
        let time = now()
        let draft = Subnet(id: UUID().uuidString.lowercased(), networkID: request.networkID, projectID: request.projectID,
                           name: request.name, description: request.description, ipVersion: request.ipVersion, cidr: request.cidr,
                           gatewayIP: nil, allocationPools: [], dnsNameservers: request.dnsNameservers, hostRoutes: request.hostRoutes,
                           enableDHCP: request.enableDHCP, ipv6AddressMode: request.ipv6AddressMode, ipv6RAMode: request.ipv6RAMode,
                           tags: request.tags, revision: 1, createdAt: time, updatedAt: time)
        let subnet = try validated(draft, gateway: request.gatewayIP, pools: request.allocationPools)
        let created = try await database.transaction { sql in
            guard try await Tables.networks.first(sql, where: [.equals("id", request.networkID)]) != nil else {
                throw NetworkingFailure.networkNotFound(request.networkID)
            }
            try await lockNetwork(sql, request.networkID)
            try await checkQuota(sql, "subnet", project: request.projectID, adding: 1)
            for other in try await Tables.subnets.all(sql, where: [.equals("network_id", request.networkID)]).map(\.value)
            where other.network.overlaps(subnet.network) {
                throw NetworkingFailure.invalid("Requested subnet with cidr: \(subnet.cidr) for network: \(request.networkID) overlaps with another subnet")
            }
            try await Tables.subnets.insert(sql, SubnetRow(subnet))
            if Self.autoAddressed(subnet) { try await addAutoAddresses(sql, subnet, at: time) }
            return subnet
        }
        try await subnetsChanged(created.networkID)
        return created
    }

    /// A new SLAAC or DHCPv6-stateless subnet gives every port already on the network (but
    /// a router's) its EUI-64 address there, as Neutron does: the DHCP port among them, whose
    /// address in the prefix is what lets dnsmasq advertise it.
    func addAutoAddresses(_ sql: any SQLDatabase, _ subnet: Subnet, at time: Int64) async throws {
        let ports = try await Tables.ports.all(sql, where: [.equals("network_id", subnet.networkID)])
            .filter { !$0.deviceOwner.hasPrefix("network:router") }
        guard !ports.isEmpty else { return }
        var positions: [String: Int] = [:]
        for row in try await Tables.allocations.all(sql, where: [.equals("network_id", subnet.networkID)]) {
            positions[row.portId] = max(positions[row.portId] ?? 0, row.position + 1)
        }
        for port in ports {
            try await Tables.allocations.insert(sql, AllocationRow(subnetId: subnet.id, ipAddress: Self.eui64(subnet, mac: port.macAddress).description,
                                                                   portId: port.id, networkId: port.networkId, position: positions[port.id] ?? 0))
        }
        try await sql.raw("""
            UPDATE ports SET revision_number = revision_number + 1, updated_at = \(bind: time) WHERE id IN (\(binds: ports.map(\.id)))
            """).run()
    }

    /// On PostgreSQL, takes the network's row lock for the caller's transaction, so address
    /// allocations and subnet changes on one network happen one after another across every
    /// controller (SQLite's `BEGIN IMMEDIATE` already serialises all writers).
    func lockNetwork(_ sql: any SQLDatabase, _ id: String) async throws {
        if database.backend == .postgresql {
            _ = try await sql.raw("SELECT id FROM networks WHERE id = \(bind: id) FOR UPDATE").all()
        }
    }

    public func subnets(visibleTo viewer: Viewer, networkIDs: [String]? = nil, ids: [String]? = nil) async throws -> [Subnet] {
        try await database.withConnection { sql in
            var condition: SQLQueryString = viewer.isAdmin ? "1 = 1" : """
                (project_id = \(bind: viewer.projectID ?? "") OR network_id IN (SELECT id FROM networks WHERE shared = \(bind: true) OR external = \(bind: true)))
                """
            if let networkIDs {
                guard !networkIDs.isEmpty else { return [] }
                condition = condition + " AND network_id IN (\(binds: networkIDs))"
            }
            if let ids {
                guard !ids.isEmpty else { return [] }
                condition = condition + " AND id IN (\(binds: ids))"
            }
            return try await Tables.subnets.all(sql, where: condition, orderBy: "created_at, id").map(\.value)
        }
    }

    public func subnet(_ id: String, visibleTo viewer: Viewer) async throws -> Subnet {
        guard let subnet = try await subnets(visibleTo: viewer, ids: [id]).first else { throw NetworkingFailure.subnetNotFound(id) }
        return subnet
    }

    public func updateSubnet(_ id: String, _ update: SubnetUpdate) async throws -> Subnet {
        let updated = try await database.transaction { sql in
            guard var subnet = try await Tables.subnets.first(sql, where: [.equals("id", id)])?.value else {
                throw NetworkingFailure.subnetNotFound(id)
            }
            try await lockNetwork(sql, subnet.networkID)
            subnet.name = update.name ?? subnet.name
            subnet.description = update.description ?? subnet.description
            subnet.dnsNameservers = update.dnsNameservers ?? subnet.dnsNameservers
            subnet.hostRoutes = update.hostRoutes ?? subnet.hostRoutes
            subnet.enableDHCP = update.enableDHCP ?? subnet.enableDHCP
            let gateway: String?? = update.gatewayIP ?? .some(subnet.gatewayIP)
            subnet = try validated(subnet, gateway: gateway, pools: update.allocationPools ?? subnet.allocationPools)
            // A new gateway must not be an address a port already holds.
            if case .some(.some) = update.gatewayIP, let gatewayIP = subnet.gatewayIP,
               try await Tables.allocations.first(sql, where: [.equals("subnet_id", id), .equals("ip_address", gatewayIP)]) != nil {
                throw NetworkingFailure(409, "IpAddressInUse", "Unable to complete operation for network \(subnet.networkID). The IP address \(gatewayIP) is in use.")
            }
            subnet.revision += 1
            subnet.updatedAt = now()
            try await Tables.subnets.update(sql, id: id, SubnetRow(subnet))
            return subnet
        }
        try await subnetsChanged(updated.networkID)
        return updated
    }

    /// Deletes a subnet; 409 while a port other than the network's own (DHCP) holds an address
    /// in it. On a SLAAC or DHCPv6-stateless subnet only a router's port counts: the EUI-64
    /// addresses every other port got with the subnet go with it, as in Neutron.
    public func deleteSubnet(_ id: String) async throws -> Subnet {
        let deleted = try await database.transaction { sql in
            guard let subnet = try await Tables.subnets.first(sql, where: [.equals("id", id)])?.value else {
                throw NetworkingFailure.subnetNotFound(id)
            }
            let owners: SQLQueryString = Self.autoAddressed(subnet) ? "p.device_owner LIKE 'network:router%'" : "p.device_owner NOT LIKE 'network:dhcp%'"
            let users = try await sql.raw("""
                SELECT COUNT(*) AS n FROM ip_allocations a JOIN ports p ON p.id = a.port_id
                WHERE a.subnet_id = \(bind: id) AND \(owners)
                """).first()!.decode(column: "n", as: Int.self)
            if users > 0 {
                throw NetworkingFailure(409, "SubnetInUse", "Unable to complete operation on subnet \(id): One or more ports have an IP allocation from this subnet.")
            }
            try await Tables.allocations.delete(sql, where: [.equals("subnet_id", id)])
            try await Tables.subnets.delete(sql, where: [.equals("id", id)])
            return subnet
        }
        try await subnetsChanged(deleted.networkID)
        return deleted
    }

    /// Addresses per subnet: how many the pools hold and how many ports use.
    public struct SubnetAvailability: Sendable {
        public var subnet: Subnet
        public var total: UInt128
        public var used: Int
    }

    public func availability(networkIDs: [String]) async throws -> [String: [SubnetAvailability]] {
        try await database.withConnection { sql in
            guard !networkIDs.isEmpty else { return [:] }
            let subnets = try await Tables.subnets.all(sql, where: "network_id IN (\(binds: networkIDs))", orderBy: "created_at, id").map(\.value)
            let counts = try await sql.raw("""
                SELECT subnet_id, COUNT(*) AS n FROM ip_allocations WHERE network_id IN (\(binds: networkIDs)) GROUP BY subnet_id
                """).all()
            var used: [String: Int] = [:]
            for row in counts { used[try row.decode(column: "subnet_id", as: String.self)] = try row.decode(column: "n", as: Int.self) }
            var out: [String: [SubnetAvailability]] = [:]
            for subnet in subnets {
                let total = subnet.allocationPools.reduce(UInt128(0)) { sum, pool in
                    guard let start = IPAddress(pool.start), let end = IPAddress(pool.end) else { return sum }
                    return sum &+ (end.value - start.value + 1)
                }
                out[subnet.networkID, default: []].append(SubnetAvailability(subnet: subnet, total: total, used: used[subnet.id] ?? 0))
            }
            return out
        }
    }
}
