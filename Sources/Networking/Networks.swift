import Foundation
import Hosts
import PetrelCore
import SQLKit
import Store

/// Neutron's core on the controller: networks and their segments, subnets, ports and the
/// addresses they hold. The database is the only truth; every change is one transaction.
public struct NetworkService: Sendable {
    let database: Database
    public let settings: NetworkingSettings
    public let quotaDefaults: [String: Int]
    /// Which agents run where: a port is bound only to a host whose L2 agent is alive.
    let hosts: HostInventory
    /// Told which networks changed after each change is committed (the controller fans it
    /// out to the nodes); also after DHCP duties moved.
    let onChange: (@Sendable ([String]) async -> Void)?
    /// Told after a change that may alter any node's firewall (groups, rules, address groups,
    /// ports with their addresses and groups): every node recomputes its own.
    let onFirewallChange: (@Sendable () async -> Void)?
    /// Told which routers changed (their ports, gateway, routes, floating IPs) after each change
    /// is committed: the node running each syncs it.
    let onRouterChange: (@Sendable ([String]) async -> Void)?
    /// DHCP duties are handed out one scheduling at a time (a subnet change and a node's
    /// report at once would otherwise both give a network a port on the same host).
    let dhcpScheduling = SerialRunner()
    let routerScheduling = SerialRunner()

    public init(database: Database, settings: NetworkingSettings, quotaDefaults: [String: Int], hosts: HostInventory,
                onChange: (@Sendable ([String]) async -> Void)? = nil, onFirewallChange: (@Sendable () async -> Void)? = nil,
                onRouterChange: (@Sendable ([String]) async -> Void)? = nil) {
        self.database = database
        self.settings = settings
        self.quotaDefaults = quotaDefaults
        self.hosts = hosts
        self.onChange = onChange
        self.onFirewallChange = onFirewallChange
        self.onRouterChange = onRouterChange
    }

    func changed(_ networks: [String]) async {
        guard !networks.isEmpty else { return }
        await onChange?(Array(Set(networks)).sorted())
    }

    /// After a subnet change: DHCP duties follow the subnets, then the nodes hear of it.
    func subnetsChanged(_ network: String) async throws {
        let moved = try await scheduleDHCP(hosts: try await aliveDHCPHosts())
        await changed([network] + moved)
    }

    /// The types a network may have.
    public static let networkTypes = ["flat", "vlan", "vxlan"]
    /// Bytes VXLAN adds to every frame (outer Ethernet, IP, UDP, VXLAN headers).
    static let vxlanOverhead = 50

    public struct NetworkCreate: Sendable {
        public var projectID: String
        public var name = ""
        public var description = ""
        public var adminStateUp = true
        public var shared = false
        public var external = false
        public var portSecurityEnabled = true
        public var mtu: Int?
        public var availabilityZoneHints: [String] = []
        /// The provider attributes; nil: a project network with a segment from the tenant ranges.
        public var networkType: String?
        public var physicalNetwork: String?
        public var segmentationID: Int?
        public var dnsDomain = ""
        public var tags: [String] = []

        public init(projectID: String) { self.projectID = projectID }
    }

    public struct NetworkUpdate: Sendable {
        public var name: String?
        public var description: String?
        public var adminStateUp: Bool?
        public var shared: Bool?
        public var external: Bool?
        public var portSecurityEnabled: Bool?
        public var mtu: Int?
        public var dnsDomain: String?
        public init() {}
    }

    func retryingUniqueness<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do { return try await body() } catch where attempt < 20 && (DatabaseError.isUniqueViolation(error) || error is DuplicateRowError) {
                // Another controller took the same segment or address between our read and our write.
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...(5 + attempt * 5))))
            }
        }
    }

    /// The largest MTU a network of this type can have on this underlay.
    func maximumMTU(_ type: String) -> Int {
        type == "vxlan" ? settings.physnetMTU - Self.vxlanOverhead : settings.physnetMTU
    }

    public func createNetwork(_ request: NetworkCreate) async throws -> Network {
        let requested = try validateSegment(type: request.networkType, physicalNetwork: request.physicalNetwork,
                                            segmentationID: request.segmentationID)
        let network = try await retryingUniqueness {
            try await database.transaction { sql in
                try await checkQuota(sql, "network", project: request.projectID, adding: 1)
                let id = UUID().uuidString.lowercased()
                let segment = try await allocateSegment(sql, requested, networkID: id)
                let maximum = maximumMTU(segment.networkType)
                if let mtu = request.mtu {
                    guard mtu >= 68 else { throw NetworkingFailure.invalid("Requested MTU \(mtu) is too small, minimum is 68.") }
                    guard mtu <= maximum else { throw NetworkingFailure.invalid("Requested MTU is too big, maximum is \(maximum).") }
                }
                let time = now()
                let network = Network(
                    id: id, projectID: request.projectID, name: request.name, description: request.description,
                    adminStateUp: request.adminStateUp, shared: request.shared, external: request.external,
                    mtu: request.mtu ?? maximum, portSecurityEnabled: request.portSecurityEnabled,
                    availabilityZoneHints: request.availabilityZoneHints, networkType: segment.networkType,
                    physicalNetwork: segment.physicalNetwork.isEmpty ? nil : segment.physicalNetwork,
                    segmentationID: segment.networkType == "flat" ? nil : segment.segmentationId, dnsDomain: request.dnsDomain,
                    tags: request.tags, revision: 1, createdAt: time, updatedAt: time)
                try await Tables.networks.insert(sql, NetworkRow(network))
                return network
            }
        }
        return network
    }

    /// The provider attributes checked against the configuration: the segment to claim, with
    /// a segmentation id of nil when one is to be allocated; nil when the caller gave none.
    func validateSegment(type: String?, physicalNetwork: String?, segmentationID: Int?) throws -> SegmentRow? {
        guard let type else {
            if physicalNetwork != nil || segmentationID != nil {
                throw NetworkingFailure.invalid("provider:network_type required")
            }
            return nil
        }
        switch type {
        case "flat":
            guard let physicalNetwork, !physicalNetwork.isEmpty else { throw NetworkingFailure.invalid("physical_network required for flat provider network") }
            guard segmentationID == nil else { throw NetworkingFailure.invalid("segmentation_id specified for flat provider network") }
            if let allowed = settings.flatNetworks, !allowed.contains(physicalNetwork) {
                throw NetworkingFailure.invalid("physical_network '\(physicalNetwork)' unknown for flat provider network")
            }
            return SegmentRow(networkType: "flat", physicalNetwork: physicalNetwork, segmentationId: 0, networkId: "")
        case "vlan":
            guard let physicalNetwork, !physicalNetwork.isEmpty else { throw NetworkingFailure.invalid("physical_network required for VLAN provider network") }
            guard settings.vlanRanges.contains(where: { $0.physicalNetwork == physicalNetwork }) else {
                throw NetworkingFailure.invalid("physical_network '\(physicalNetwork)' unknown for VLAN provider network")
            }
            if let segmentationID, !(1...4094).contains(segmentationID) {
                throw NetworkingFailure.invalid("segmentation_id out of range (1 through 4094)")
            }
            return SegmentRow(networkType: "vlan", physicalNetwork: physicalNetwork, segmentationId: segmentationID ?? -1, networkId: "")
        case "vxlan":
            guard physicalNetwork == nil else { throw NetworkingFailure.invalid("provider:physical_network specified for vxlan network") }
            if let segmentationID, !(1...16_777_215).contains(segmentationID) {
                throw NetworkingFailure.invalid("segmentation_id out of range (1 through 16777215)")
            }
            return SegmentRow(networkType: "vxlan", physicalNetwork: "", segmentationId: segmentationID ?? -1, networkId: "")
        default:
            throw NetworkingFailure.invalid("network_type value '\(type)' not supported")
        }
    }

    /// Claims a segment in the caller's transaction: the one asked for (409 when taken) or the
    /// lowest free one of the tenant ranges (503 when none is left). The primary key of
    /// `network_segments` makes a second claim of the same segment fail on both databases.
    func allocateSegment(_ sql: any SQLDatabase, _ requested: SegmentRow?, networkID: String) async throws -> SegmentRow {
        func taken(_ type: String, _ physnet: String) async throws -> Set<Int> {
            Set(try await Tables.segments.all(sql, where: [.equals("network_type", type), .equals("physical_network", physnet)])
                .map(\.segmentationId))
        }
        func claim(_ segment: SegmentRow) async throws -> SegmentRow {
            var segment = segment
            segment.networkId = networkID
            try await Tables.segments.insert(sql, segment)
            return segment
        }
        if var segment = requested {
            if segment.segmentationId >= 0 {
                do {
                    return try await claim(segment)
                } catch is DuplicateRowError {
                    switch segment.networkType {
                    case "flat":
                        throw NetworkingFailure(409, "FlatNetworkInUse", "Unable to create the flat network. Physical network \(segment.physicalNetwork) is in use.")
                    case "vlan":
                        throw NetworkingFailure(409, "VlanIdInUse", "Unable to create the network. The VLAN \(segment.segmentationId) on physical network \(segment.physicalNetwork) is in use.")
                    default:
                        throw NetworkingFailure(409, "TunnelIdInUse", "Unable to create the network. The tunnel ID \(segment.segmentationId) is in use.")
                    }
                }
            }
            let ranges = segment.networkType == "vxlan" ? settings.vniRanges
                : settings.vlanRanges.filter { $0.physicalNetwork == segment.physicalNetwork }.compactMap(\.ids)
            let used = try await taken(segment.networkType, segment.physicalNetwork)
            guard let free = ranges.lazy.compactMap({ $0.first { !used.contains($0) } }).first else {
                throw NetworkingFailure(503, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
            }
            segment.segmentationId = free
            return try await claim(segment)
        }
        for type in settings.tenantNetworkTypes {
            switch type {
            case "vxlan":
                let used = try await taken("vxlan", "")
                if let free = settings.vniRanges.lazy.compactMap({ $0.first { !used.contains($0) } }).first {
                    return try await claim(SegmentRow(networkType: "vxlan", physicalNetwork: "", segmentationId: free, networkId: ""))
                }
            case "vlan":
                for range in settings.vlanRanges {
                    guard let ids = range.ids else { continue }
                    let used = try await taken("vlan", range.physicalNetwork)
                    if let free = ids.first(where: { !used.contains($0) }) {
                        return try await claim(SegmentRow(networkType: "vlan", physicalNetwork: range.physicalNetwork, segmentationId: free, networkId: ""))
                    }
                }
            default:
                continue  // flat networks are provider networks only
            }
        }
        throw NetworkingFailure(503, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
    }

    /// The networks `viewer` may see: an admin all, others their project's, the shared and the external ones.
    public func networks(visibleTo viewer: Viewer, ids: [String]? = nil) async throws -> [Network] {
        try await database.withConnection { sql in
            var condition: SQLQueryString = viewer.isAdmin ? "1 = 1"
                : "(project_id = \(bind: viewer.projectID ?? "") OR shared = \(bind: true) OR external = \(bind: true))"
            if let ids {
                guard !ids.isEmpty else { return [] }
                condition = condition + " AND id IN (\(binds: ids))"
            }
            let rows = try await Tables.networks.all(sql, where: condition, orderBy: "created_at, id")
            // The subnet ids of the networks read, not of every network.
            var query: SQLQueryString = "SELECT id, network_id FROM subnets"
            if let ids { query = query + " WHERE network_id IN (\(binds: ids))" }
            let subnets = try await sql.raw(query + " ORDER BY created_at, id").all()
            var byNetwork: [String: [String]] = [:]
            for row in subnets {
                byNetwork[try row.decode(column: "network_id", as: String.self), default: []].append(try row.decode(column: "id", as: String.self))
            }
            return rows.map { row in
                var network = row.value
                network.subnets = byNetwork[network.id] ?? []
                return network
            }
        }
    }

    public func network(_ id: String, visibleTo viewer: Viewer) async throws -> Network {
        guard let network = try await networks(visibleTo: viewer, ids: [id]).first else { throw NetworkingFailure.networkNotFound(id) }
        return network
    }

    public func updateNetwork(_ id: String, _ update: NetworkUpdate) async throws -> Network {
        let network = try await database.transaction { sql in
            guard var network = try await Tables.networks.first(sql, where: [.equals("id", id)])?.value else {
                throw NetworkingFailure.networkNotFound(id)
            }
            if let mtu = update.mtu {
                let maximum = maximumMTU(network.networkType)
                guard mtu >= 68 else { throw NetworkingFailure.invalid("Requested MTU \(mtu) is too small, minimum is 68.") }
                guard mtu <= maximum else { throw NetworkingFailure.invalid("Requested MTU is too big, maximum is \(maximum).") }
                network.mtu = mtu
            }
            if let shared = update.shared, !shared, network.shared {
                // Neutron refuses to unshare a network other projects have ports on.
                let foreign = try await sql.raw("""
                    SELECT COUNT(*) AS n FROM ports WHERE network_id = \(bind: id) AND project_id <> \(bind: network.projectID)
                      AND device_owner NOT LIKE 'network:%'
                    """).first()!.decode(column: "n", as: Int.self)
                if foreign > 0 {
                    throw NetworkingFailure(409, "InvalidSharedSetting", "Unable to reconfigure sharing settings for network \(id). Multiple tenants are using it.")
                }
            }
            network.name = update.name ?? network.name
            network.description = update.description ?? network.description
            network.adminStateUp = update.adminStateUp ?? network.adminStateUp
            network.shared = update.shared ?? network.shared
            network.external = update.external ?? network.external
            network.portSecurityEnabled = update.portSecurityEnabled ?? network.portSecurityEnabled
            network.dnsDomain = update.dnsDomain ?? network.dnsDomain
            network.revision += 1
            network.updatedAt = now()
            try await Tables.networks.update(sql, id: id, NetworkRow(network))
            return network
        }
        await changed([id])
        return network
    }

    /// Deletes a network with its subnets and the ports the network itself owns (DHCP);
    /// 409 while any other port is on it.
    public func deleteNetwork(_ id: String) async throws -> [Port] {
        let ports = try await database.transaction { sql in
            guard try await Tables.networks.first(sql, where: [.equals("id", id)]) != nil else { throw NetworkingFailure.networkNotFound(id) }
            let ports = try await Tables.ports.all(sql, where: [.equals("network_id", id)])
            if ports.contains(where: { !$0.deviceOwner.hasPrefix("network:dhcp") }) {
                throw NetworkingFailure(409, "NetworkInUse", "Unable to complete operation on network \(id). There are one or more ports still in use on the network.")
            }
            try await Tables.allocations.delete(sql, where: [.equals("network_id", id)])
            try await Tables.ports.delete(sql, where: [.equals("network_id", id)])
            try await Tables.subnets.delete(sql, where: [.equals("network_id", id)])
            try await Tables.segments.delete(sql, where: [.equals("network_id", id)])
            try await Tables.networks.delete(sql, where: [.equals("id", id)])
            return ports.map { $0.value(fixedIPs: []) }
        }
        await changed([id])
        return ports
    }

    // MARK: tags (the same four operations on networks, subnets and ports)

    public enum TaggedKind: String, Sendable { case networks, subnets, ports, securityGroups = "security_groups", routers, floatingIPs = "floating_ips" }

    /// Changes a resource's tags with `edit` (which may refuse); bumps its revision. Returns the new tags.
    public func editTags(_ kind: TaggedKind, _ id: String, _ edit: @escaping @Sendable ([String]) throws -> [String]) async throws -> [String] {
        try await database.transaction { sql in
            guard let row = try await sql.raw("SELECT tags FROM \(ident: kind.rawValue) WHERE id = \(bind: id)").first() else {
                switch kind {
                case .networks: throw NetworkingFailure.networkNotFound(id)
                case .subnets: throw NetworkingFailure.subnetNotFound(id)
                case .ports: throw NetworkingFailure.portNotFound(id)
                case .securityGroups: throw NetworkingFailure.securityGroupNotFound(id)
                case .routers: throw NetworkingFailure.routerNotFound(id)
                case .floatingIPs: throw NetworkingFailure.floatingIPNotFound(id)
                }
            }
            let current = Column.decode([String].self, try row.decode(column: "tags", as: String.self), default: [])
            var updated: [String] = []
            for tag in try edit(current) where !updated.contains(tag) { updated.append(tag) }
            if updated != current {
                try await sql.raw("""
                    UPDATE \(ident: kind.rawValue) SET tags = \(bind: Column.encode(updated)), revision_number = revision_number + 1,
                      updated_at = \(bind: now()) WHERE id = \(bind: id)
                    """).run()
            }
            return updated
        }
    }

    // MARK: quotas

    public static let quotaResources = ["network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule"]

    /// The limits of `project` for Neutron's resources: its own where set, the defaults otherwise.
    public func quotaLimits(project: String) async throws -> [String: Int] {
        try await database.withConnection { sql in try await limits(sql, project: project) }
    }

    func limits(_ sql: any SQLDatabase, project: String) async throws -> [String: Int] {
        var limits = quotaDefaults.filter { Self.quotaResources.contains($0.key) }
        let rows = try await sql.raw("SELECT resource, hard_limit FROM quotas WHERE project_id = \(bind: project)").all()
        for row in rows {
            let resource = try row.decode(column: "resource", as: String.self)
            if Self.quotaResources.contains(resource) { limits[resource] = try row.decode(column: "hard_limit", as: Int.self) }
        }
        return limits
    }

    public func quotaUsage(project: String) async throws -> [String: Int] {
        try await database.withConnection { sql in try await usage(sql, project: project) }
    }

    func usage(_ sql: any SQLDatabase, project: String) async throws -> [String: Int] {
        var usage: [String: Int] = [:]
        for (resource, table) in [("network", "networks"), ("subnet", "subnets"), ("port", "ports"), ("security_group", "security_groups"), ("router", "routers"), ("floatingip", "floating_ips"),
                                  ("security_group_rule", "security_group_rules")] {
            usage[resource] = try await sql.raw("SELECT COUNT(*) AS n FROM \(ident: table) WHERE project_id = \(bind: project)")
                .first()!.decode(column: "n", as: Int.self)
        }
        return usage
    }

    public func setQuota(project: String, _ changes: [String: Int]) async throws -> [String: Int] {
        try await database.transaction { sql in
            for (resource, limit) in changes {
                try await sql.raw("""
                    INSERT INTO quotas (project_id, resource, hard_limit) VALUES (\(bind: project), \(bind: resource), \(bind: limit))
                    ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit
                    """).run()
            }
            return try await limits(sql, project: project)
        }
    }

    public func resetQuota(project: String) async throws {
        try await database.withConnection { sql in
            try await sql.raw("""
                DELETE FROM quotas WHERE project_id = \(bind: project) AND resource IN ('network', 'subnet', 'port', 'router', 'floatingip', 'security_group', 'security_group_rule')
                """).run()
        }
    }

    /// The projects that have limits of their own (Neutron lists them in `GET /quotas`).
    public func projectsWithQuotas() async throws -> [String: [String: Int]] {
        try await database.withConnection { sql in
            let rows = try await sql.raw("SELECT DISTINCT project_id FROM quotas WHERE resource IN ('network', 'subnet', 'port', 'router', 'floatingip', 'security_group', 'security_group_rule')").all()
            var out: [String: [String: Int]] = [:]
            for row in rows {
                let project = try row.decode(column: "project_id", as: String.self)
                out[project] = try await limits(sql, project: project)
            }
            return out
        }
    }

    /// Refuses (409 OverQuota) when `project` would have more of `resource` than its limit,
    /// read in the caller's transaction.
    func checkQuota(_ sql: any SQLDatabase, _ resource: String, project: String, adding count: Int) async throws {
        guard let limit = try await limits(sql, project: project)[resource], limit >= 0 else { return }
        let used = try await usage(sql, project: project)[resource] ?? 0
        if used + count > limit { throw NetworkingFailure.overQuota(resource) }
    }
}
