import Foundation
import Hosts
import PetrelCore
import SQLKit
import Store

extension NetworkService {
    public static let vnicTypes = ["normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder",
                                   "smart-nic", "vdpa", "remote-managed"]
    /// The L2 agents a port can be bound through, with the VIF type Nova plugs for each.
    static let l2Agents = ["neutron-linuxbridge-agent": "bridge"]

    /// One entry of a port's requested `fixed_ips`: a subnet, an address, or both.
    public struct FixedIPRequest: Sendable, Equatable {
        public var subnetID: String?
        public var ipAddress: String?
        public init(subnetID: String? = nil, ipAddress: String? = nil) { self.subnetID = subnetID; self.ipAddress = ipAddress }
    }

    public struct PortCreate: Sendable {
        public var networkID: String
        public var projectID: String
        public var name = ""
        public var description = ""
        public var adminStateUp = true
        public var macAddress: String?
        /// nil: one address of each kind the network's subnets offer.
        public var fixedIPs: [FixedIPRequest]?
        public var deviceOwner = ""
        public var deviceID = ""
        public var host = ""
        public var vnicType = "normal"
        public var profile = "{}"
        public var allowedAddressPairs: [AddressPair] = []
        public var extraDHCPOpts: [DHCPOption] = []
        public var dnsName = ""
        /// nil: the network's setting.
        public var portSecurityEnabled: Bool?
        /// nil: the project's default group (none for the network's own ports or without port security).
        public var securityGroups: [String]?
        public var tags: [String] = []

        public init(networkID: String, projectID: String) { self.networkID = networkID; self.projectID = projectID }
    }

    public struct PortUpdate: Sendable {
        public var name: String?
        public var description: String?
        public var adminStateUp: Bool?
        public var macAddress: String?
        public var fixedIPs: [FixedIPRequest]?
        public var deviceOwner: String?
        public var deviceID: String?
        public var host: String?
        public var vnicType: String?
        public var profile: String?
        public var allowedAddressPairs: [AddressPair]?
        public var extraDHCPOpts: [DHCPOption]?
        public var dnsName: String?
        public var portSecurityEnabled: Bool?
        public var securityGroups: [String]?
        public init() {}
    }

    /// A MAC address in Neutron's form (lower-case, colon-separated), or nil when malformed
    /// or not a unicast address.
    public static func normalizedMAC(_ text: String) -> String? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6, parts.allSatisfy({ $0.count == 2 }) else { return nil }
        let bytes = parts.compactMap { UInt8($0, radix: 16) }
        guard bytes.count == 6, bytes[0] & 1 == 0, bytes != [0, 0, 0, 0, 0, 0] else { return nil }
        return bytes.map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    func generatedMAC() -> String {
        var bytes = settings.macPrefix
        while bytes.count < 6 { bytes.append(UInt8.random(in: 0...255)) }
        return bytes.map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    /// The EUI-64 address a MAC gets on a SLAAC or DHCPv6-stateless subnet.
    static func eui64(_ subnet: Subnet, mac: String) -> IPAddress {
        let bytes = mac.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        let interface: [UInt8] = [bytes[0] ^ 0x02, bytes[1], bytes[2], 0xFF, 0xFE, bytes[3], bytes[4], bytes[5]]
        let low = interface.reduce(UInt128(0)) { $0 << 8 | UInt128($1) }
        return IPAddress(version: 6, value: subnet.network.address.value | low)
    }

    /// How a port on `host` is bound: the VIF type and details of the L2 agent alive there,
    /// `unbound` without a host, `binding_failed` when nothing there can wire it.
    func binding(host: String, vnicType: String, networkID: String) async throws -> (type: String, details: String) {
        guard !host.isEmpty else { return ("unbound", "{}") }
        guard vnicType == "normal" else { return ("binding_failed", "{}") }
        let agents = try await hosts.services { $0.host == host && Self.l2Agents[$0.binary] != nil }
        guard let agent = agents.first(where: \.up), let type = Self.l2Agents[agent.binary] else { return ("binding_failed", "{}") }
        let bridge = "brq" + networkID.prefix(11)
        return (type, #"{"bridge_name":"\#(bridge)","connectivity":"l2","port_filter":true}"#)
    }

    static let dnsLabel = try! NSRegularExpression(pattern: "^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")

    func validate(dnsName: String) throws {
        guard dnsName.isEmpty || dnsName.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ label in
            let text = String(label)
            return Self.dnsLabel.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        }) else {
            throw NetworkingFailure.invalid("'\(dnsName)' not a valid PQDN or FQDN. Reason: labels are letters, digits and hyphens, 1 to 63 of them, not starting or ending with a hyphen")
        }
    }

    func validate(pairs: [AddressPair], extraDHCPOpts: [DHCPOption]) throws -> [AddressPair] {
        let pairs = try pairs.map { pair in
            guard IPAddress(pair.ipAddress) != nil || IPNetwork(pair.ipAddress, strict: false) != nil else {
                throw NetworkingFailure.invalid("'\(pair.ipAddress)' is not a valid IP address or CIDR")
            }
            guard pair.macAddress.isEmpty || Self.normalizedMAC(pair.macAddress) != nil else {
                throw NetworkingFailure.invalid("'\(pair.macAddress)' is not a valid MAC address")
            }
            return AddressPair(ipAddress: pair.ipAddress, macAddress: Self.normalizedMAC(pair.macAddress) ?? "")
        }
        for option in extraDHCPOpts where option.name.isEmpty || ![4, 6].contains(option.ipVersion) {
            throw NetworkingFailure.invalid("Invalid extra DHCP option \(option.name)")
        }
        return pairs
    }

    public func createPort(_ request: PortCreate) async throws -> Port {
        if let mac = request.macAddress, Self.normalizedMAC(mac) == nil {
            throw NetworkingFailure.invalid("'\(mac)' is not a valid MAC address")
        }
        guard Self.vnicTypes.contains(request.vnicType) else {
            throw NetworkingFailure.invalid("binding:vnic_type '\(request.vnicType)' is not in \(Self.vnicTypes)")
        }
        try validate(dnsName: request.dnsName)
        let pairs = try validate(pairs: request.allowedAddressPairs, extraDHCPOpts: request.extraDHCPOpts)
        let binding = try await binding(host: request.host, vnicType: request.vnicType, networkID: request.networkID)
        let defaultGroup = request.securityGroups == nil && !request.deviceOwner.hasPrefix("network:")
            ? try await defaultSecurityGroup(project: request.projectID) : nil
        let port = try await retryingUniqueness {
            try await database.transaction { sql in
                guard let network = try await Tables.networks.first(sql, where: [.equals("id", request.networkID)])?.value else {
                    throw NetworkingFailure.networkNotFound(request.networkID)
                }
                try await lockNetwork(sql, network.id)
                if !request.deviceOwner.hasPrefix("network:") {
                    try await checkQuota(sql, "port", project: request.projectID, adding: 1)
                }
                let portSecurity = request.portSecurityEnabled ?? network.portSecurityEnabled
                if !portSecurity, !(request.securityGroups ?? []).isEmpty || !pairs.isEmpty {
                    throw NetworkingFailure(409, "PortSecurityAndIPRequiredForSecurityGroups",
                                            "Port security must be enabled and port must have an IP address in order to use security groups or allowed address pairs.")
                }
                let groups = portSecurity ? request.securityGroups ?? defaultGroup.map { [$0] } ?? [] : []
                try await checkPortGroups(sql, groups, project: request.projectID)
                var mac = request.macAddress.flatMap(Self.normalizedMAC) ?? generatedMAC()
                while try await Tables.ports.first(sql, where: [.equals("network_id", network.id), .equals("mac_address", mac)]) != nil {
                    guard request.macAddress == nil else {
                        throw NetworkingFailure(409, "MacAddressInUse", "Unable to complete operation for network \(network.id). The mac address \(mac) is in use.")
                    }
                    mac = generatedMAC()
                }
                let time = now()
                var port = Port(id: UUID().uuidString.lowercased(), networkID: network.id, projectID: request.projectID, name: request.name,
                                description: request.description, adminStateUp: request.adminStateUp, macAddress: mac,
                                deviceOwner: request.deviceOwner, deviceID: request.deviceID, status: "DOWN", host: request.host,
                                vifType: binding.type, vifDetails: binding.details, vnicType: request.vnicType, profile: request.profile,
                                fixedIPs: [], allowedAddressPairs: pairs, extraDHCPOpts: request.extraDHCPOpts,
                                dnsName: request.dnsName, portSecurityEnabled: portSecurity, securityGroups: groups,
                                tags: request.tags, revision: 1, createdAt: time, updatedAt: time)
                try await Tables.ports.insert(sql, PortRow(port))
                port.fixedIPs = try await allocate(sql, port: port, requests: request.fixedIPs, keeping: [])
                return port
            }
        }
        await changed([port.networkID])
        await firewallsChanged()
        return port
    }

    /// Gives `port` the addresses `requests` ask for (the default set when nil), besides the
    /// ones it keeps, in the caller's transaction. Each allocation is a row whose primary key
    /// (subnet, address) no second port can take: a request for a held address is a 409, and
    /// a full subnet a 409 IpAddressGenerationFailure with nothing written.
    func allocate(_ sql: any SQLDatabase, port: Port, requests: [FixedIPRequest]?, keeping kept: [FixedIP]) async throws -> [FixedIP] {
        let subnets = try await Tables.subnets.all(sql, where: [.equals("network_id", port.networkID)], orderBy: "created_at").map(\.value)
        var taken: [String: Set<IPAddress>] = [:]
        func held(_ subnet: Subnet) async throws -> Set<IPAddress> {
            if let known = taken[subnet.id] { return known }
            let rows = try await sql.raw("SELECT ip_address FROM ip_allocations WHERE subnet_id = \(bind: subnet.id)").all()
            let set = Set(try rows.compactMap { IPAddress(try $0.decode(column: "ip_address", as: String.self)) })
            taken[subnet.id] = set
            return set
        }
        func free(_ subnet: Subnet) async throws -> IPAddress? {
            if Self.autoAddressed(subnet) { return Self.eui64(subnet, mac: port.macAddress) }
            let used = try await held(subnet)
            let gateway = subnet.gatewayIP.flatMap { IPAddress($0) }
            for pool in subnet.allocationPools {
                guard let start = IPAddress(pool.start), let end = IPAddress(pool.end) else { continue }
                var candidate = start
                while candidate <= end {
                    if !used.contains(candidate) && candidate != gateway { return candidate }
                    if candidate == end { break }
                    candidate = candidate.advanced(by: 1)
                }
            }
            return nil
        }
        func exhausted() -> NetworkingFailure {
            NetworkingFailure(409, "IpAddressGenerationFailure", "No more IP addresses available on network \(port.networkID).")
        }
        var chosen: [(Subnet, IPAddress)] = []
        if let requests {
            for request in requests {
                var subnet: Subnet?
                if let id = request.subnetID {
                    guard let found = subnets.first(where: { $0.id == id }) else {
                        throw NetworkingFailure.invalid("Failed to create port on network \(port.networkID), because fixed_ips included invalid subnet \(id)")
                    }
                    subnet = found
                }
                if let text = request.ipAddress {
                    guard let address = IPAddress(text) else { throw NetworkingFailure.invalid("'\(text)' is not a valid IP address") }
                    if let known = subnet {
                        guard known.network.contains(address) else {
                            throw NetworkingFailure.invalid("IP address \(text) is not a valid IP for the specified subnet.")
                        }
                    } else {
                        guard let found = subnets.first(where: { $0.network.contains(address) }) else {
                            throw NetworkingFailure.invalid("IP address \(text) is not a valid IP for any of the subnets on the specified network.")
                        }
                        subnet = found
                    }
                    let target = subnet!
                    if kept.contains(FixedIP(subnetID: target.id, ipAddress: address.description)) { continue }
                    if target.ipVersion == 4, address == target.network.first || address == target.network.last {
                        throw NetworkingFailure.invalid("IP address \(address) is not a valid IP for the specified subnet.")
                    }
                    if target.gatewayIP == address.description, !port.deviceOwner.hasPrefix("network:router") {
                        throw NetworkingFailure(409, "IpAddressAlreadyAllocated", "IP address \(address) already allocated in subnet \(target.id)")
                    }
                    if try await held(target).contains(address) || chosen.contains(where: { $0.1 == address }) {
                        throw NetworkingFailure(409, "IpAddressAlreadyAllocated", "IP address \(address) already allocated in subnet \(target.id)")
                    }
                    chosen.append((target, address))
                    taken[target.id]?.insert(address)
                } else if let target = subnet {
                    guard let address = try await free(target) else { throw exhausted() }
                    chosen.append((target, address))
                    taken[target.id]?.insert(address)
                }
            }
        } else {
            // Neutron's default: one IPv4 address, one stateful IPv6 address, and the EUI-64
            // address of every auto-addressed IPv6 subnet.
            for version in [4, 6] {
                let candidates = subnets.filter { $0.ipVersion == version && !Self.autoAddressed($0) }
                guard !candidates.isEmpty else { continue }
                var found = false
                for subnet in candidates {
                    if let address = try await free(subnet) {
                        chosen.append((subnet, address))
                        found = true
                        break
                    }
                }
                if !found { throw exhausted() }
            }
            for subnet in subnets where Self.autoAddressed(subnet) {
                chosen.append((subnet, Self.eui64(subnet, mac: port.macAddress)))
            }
        }
        // Auto-addressed subnets give every port (but a router's) its EUI-64 address, asked for or not.
        if requests != nil, !port.deviceOwner.hasPrefix("network:router") {
            for subnet in subnets where Self.autoAddressed(subnet)
                && !kept.contains(where: { $0.subnetID == subnet.id }) && !chosen.contains(where: { $0.0.id == subnet.id }) {
                chosen.append((subnet, Self.eui64(subnet, mac: port.macAddress)))
            }
        }
        var result = kept
        for (subnet, address) in chosen {
            let fixed = FixedIP(subnetID: subnet.id, ipAddress: address.description)
            do {
                try await Tables.allocations.insert(sql, AllocationRow(subnetId: subnet.id, ipAddress: fixed.ipAddress, portId: port.id,
                                                                       networkId: port.networkID, position: result.count))
            } catch is DuplicateRowError where requests?.contains(where: { $0.ipAddress != nil }) ?? false {
                throw NetworkingFailure(409, "IpAddressAlreadyAllocated", "IP address \(address) already allocated in subnet \(subnet.id)")
            }
            result.append(fixed)
        }
        return result
    }

    /// The ports `viewer` may see (its project's, and those on its networks), optionally narrowed.
    public func ports(visibleTo viewer: Viewer, networkIDs: [String]? = nil, deviceIDs: [String]? = nil, ids: [String]? = nil,
                      host: String? = nil) async throws -> [Port] {
        try await database.withConnection { sql in
            var condition: SQLQueryString = viewer.isAdmin ? "1 = 1" : """
                (project_id = \(bind: viewer.projectID ?? "") OR network_id IN (SELECT id FROM networks WHERE project_id = \(bind: viewer.projectID ?? "")))
                """
            for (column, values) in [("network_id", networkIDs), ("device_id", deviceIDs), ("id", ids)] {
                guard let values else { continue }
                guard !values.isEmpty else { return [] }
                condition = condition + " AND \(ident: column) IN (\(binds: values))"
            }
            if let host { condition = condition + " AND host = \(bind: host)" }
            let rows = try await Tables.ports.all(sql, where: condition, orderBy: "created_at, id")
            guard !rows.isEmpty else { return [] }
            let allocations = try await sql.raw("""
                SELECT * FROM ip_allocations WHERE port_id IN (SELECT id FROM ports WHERE \(condition)) ORDER BY port_id, position
                """).all(decoding: AllocationRow.self, with: SQLRowDecoder(keyDecodingStrategy: .convertFromSnakeCase))
            var byPort: [String: [FixedIP]] = [:]
            for row in allocations { byPort[row.portId, default: []].append(FixedIP(subnetID: row.subnetId, ipAddress: row.ipAddress)) }
            return rows.map { $0.value(fixedIPs: byPort[$0.id] ?? []) }
        }
    }

    public func port(_ id: String, visibleTo viewer: Viewer) async throws -> Port {
        guard let port = try await ports(visibleTo: viewer, ids: [id]).first else { throw NetworkingFailure.portNotFound(id) }
        return port
    }

    func fixedIPs(_ sql: any SQLDatabase, port id: String) async throws -> [FixedIP] {
        try await Tables.allocations.all(sql, where: [.equals("port_id", id)], orderBy: "position")
            .map { FixedIP(subnetID: $0.subnetId, ipAddress: $0.ipAddress) }
    }

    public func updatePort(_ id: String, _ update: PortUpdate) async throws -> Port {
        if let mac = update.macAddress, Self.normalizedMAC(mac) == nil { throw NetworkingFailure.invalid("'\(mac)' is not a valid MAC address") }
        if let type = update.vnicType, !Self.vnicTypes.contains(type) {
            throw NetworkingFailure.invalid("binding:vnic_type '\(type)' is not in \(Self.vnicTypes)")
        }
        if let name = update.dnsName { try validate(dnsName: name) }
        let pairs = try update.allowedAddressPairs.map { try validate(pairs: $0, extraDHCPOpts: update.extraDHCPOpts ?? []) }
        let current = try await port(id, visibleTo: Viewer(projectID: nil, isAdmin: true))
        let host = update.host ?? current.host
        let vnicType = update.vnicType ?? current.vnicType
        let binding = (host, vnicType) == (current.host, current.vnicType) ? (current.vifType, current.vifDetails)
            : try await binding(host: host, vnicType: vnicType, networkID: current.networkID)
        let updated = try await retryingUniqueness {
            try await database.transaction { sql in
                guard let row = try await Tables.ports.first(sql, where: [.equals("id", id)]) else { throw NetworkingFailure.portNotFound(id) }
                try await lockNetwork(sql, row.networkId)
                var port = row.value(fixedIPs: try await fixedIPs(sql, port: id))
                if let mac = update.macAddress.flatMap(Self.normalizedMAC), mac != port.macAddress {
                    guard port.host.isEmpty || port.vifType == "unbound" else {
                        throw NetworkingFailure(409, "PortBound", "Unable to complete operation on port \(id), port is already bound, port type: \(port.vifType), old_mac \(port.macAddress), new_mac \(mac).")
                    }
                    if try await Tables.ports.first(sql, where: [.equals("network_id", port.networkID), .equals("mac_address", mac)]) != nil {
                        throw NetworkingFailure(409, "MacAddressInUse", "Unable to complete operation for network \(port.networkID). The mac address \(mac) is in use.")
                    }
                    port.macAddress = mac
                }
                port.name = update.name ?? port.name
                port.description = update.description ?? port.description
                port.adminStateUp = update.adminStateUp ?? port.adminStateUp
                port.deviceOwner = update.deviceOwner ?? port.deviceOwner
                port.deviceID = update.deviceID ?? port.deviceID
                if host != port.host {
                    // A port moved to another host (or unbound) is down until that host wires it.
                    port.status = "DOWN"
                }
                port.host = host
                port.vnicType = vnicType
                (port.vifType, port.vifDetails) = binding
                port.profile = update.profile ?? port.profile
                port.allowedAddressPairs = pairs ?? port.allowedAddressPairs
                port.extraDHCPOpts = update.extraDHCPOpts ?? port.extraDHCPOpts
                port.dnsName = update.dnsName ?? port.dnsName
                port.portSecurityEnabled = update.portSecurityEnabled ?? port.portSecurityEnabled
                if let groups = update.securityGroups {
                    try await checkPortGroups(sql, groups, project: port.projectID)
                    port.securityGroups = groups
                }
                if !port.portSecurityEnabled, !port.securityGroups.isEmpty || !port.allowedAddressPairs.isEmpty {
                    throw NetworkingFailure(409, "PortSecurityAndIPRequiredForSecurityGroups",
                                            "Port security must be enabled and port must have an IP address in order to use security groups or allowed address pairs.")
                }
                if let requests = update.fixedIPs {
                    // Addresses still asked for stay; the others are released; new ones allocated.
                    let kept = port.fixedIPs.filter { fixed in
                        requests.contains { $0.ipAddress.flatMap { IPAddress($0)?.description } == fixed.ipAddress && ($0.subnetID == nil || $0.subnetID == fixed.subnetID) }
                    }
                    for released in port.fixedIPs where !kept.contains(released) {
                        try await Tables.allocations.delete(sql, where: [.equals("subnet_id", released.subnetID), .equals("ip_address", released.ipAddress)])
                    }
                    // Renumber what is kept, then add the rest after it.
                    for (index, fixed) in kept.enumerated() {
                        try await sql.raw("""
                            UPDATE ip_allocations SET position = \(bind: index) WHERE subnet_id = \(bind: fixed.subnetID) AND ip_address = \(bind: fixed.ipAddress)
                            """).run()
                    }
                    let added = requests.filter { request in
                        !kept.contains { fixed in request.ipAddress.flatMap { IPAddress($0)?.description } == fixed.ipAddress }
                    }
                    port.fixedIPs = try await allocate(sql, port: port, requests: added, keeping: kept)
                }
                port.revision += 1
                port.updatedAt = now()
                try await Tables.ports.update(sql, id: id, PortRow(port))
                return port
            }
        }
        await changed([updated.networkID])
        await firewallsChanged()
        return updated
    }

    /// Sets a port's status (the node that wired it says ACTIVE); nil when the port is gone.
    @discardableResult
    public func setPortStatus(_ id: String, _ status: String, host: String) async throws -> Port? {
        try await database.transaction { sql in
            guard let row = try await Tables.ports.first(sql, where: [.equals("id", id)]), row.host == host else { return nil }
            var port = row.value(fixedIPs: try await fixedIPs(sql, port: id))
            guard port.status != status else { return port }
            port.status = status
            port.revision += 1
            port.updatedAt = now()
            try await Tables.ports.update(sql, id: id, PortRow(port))
            return port
        }
    }

    /// Deletes a port and frees its addresses; returns what it was.
    public func deletePort(_ id: String) async throws -> Port {
        let (port, routers) = try await database.transaction { sql in
            guard let row = try await Tables.ports.first(sql, where: [.equals("id", id)]) else { throw NetworkingFailure.portNotFound(id) }
            let port = row.value(fixedIPs: try await fixedIPs(sql, port: id))
            try await Tables.allocations.delete(sql, where: [.equals("port_id", id)])
            try await Tables.ports.delete(sql, where: [.equals("id", id)])
            return (port, try await releaseFloatingIPs(sql, port: id))
        }
        await routersChanged(routers)
        await changed([port.networkID])
        await firewallsChanged()
        return port
    }
}
