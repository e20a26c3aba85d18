import Foundation
import PetrelCore
import SQLKit
import Store

/// A Neutron security group: the rules a port's traffic must match, per direction.
public struct SecurityGroup: Sendable, Equatable {
    public var id: String
    public var projectID: String
    public var name: String
    public var description: String
    /// Stateless groups are enforced without connection tracking: replies need rules too.
    public var stateful: Bool
    public var tags: [String]
    public var revision: Int
    public var createdAt: Int64
    public var updatedAt: Int64
    /// Filled by the reads that return groups.
    public var rules: [SecurityGroupRule] = []
}

public struct SecurityGroupRule: Sendable, Equatable {
    public var id: String
    public var securityGroupID: String
    public var projectID: String
    public var description: String
    /// `ingress` or `egress`.
    public var direction: String
    /// `IPv4` or `IPv6`.
    public var ethertype: String
    /// As the user gave it (a name or a number); nil: any protocol.
    public var `protocol`: String?
    public var portRangeMin: Int?
    public var portRangeMax: Int?
    public var remoteIPPrefix: String?
    public var remoteGroupID: String?
    public var remoteAddressGroupID: String?
    public var revision: Int
    public var createdAt: Int64
    public var updatedAt: Int64
    /// The rule is in a project's default group (filled by the reads).
    public var belongsToDefaultGroup = false

    /// The prefix's network (`10.0.0.5/24` → `10.0.0.0/24`), as Neutron's `normalized_cidr`.
    public var normalizedCIDR: String? { remoteIPPrefix.flatMap { IPNetwork($0, strict: false)?.description } }
}

/// A named list of networks security group rules may name as their remote end.
public struct AddressGroup: Sendable, Equatable {
    public var id: String
    public var projectID: String
    public var name: String
    public var description: String
    public var addresses: [String]
    public var revision: Int
    public var createdAt: Int64
    public var updatedAt: Int64
}

struct SecurityGroupRow: Codable, Sendable {
    var id: String
    var projectId: String
    var name: String
    var description: String
    var stateful: Bool
    var tags: String
    var revisionNumber: Int
    var createdAt: Int64
    var updatedAt: Int64

    init(_ group: SecurityGroup) {
        id = group.id; projectId = group.projectID; name = group.name; description = group.description; stateful = group.stateful
        tags = Column.encode(group.tags); revisionNumber = group.revision; createdAt = group.createdAt; updatedAt = group.updatedAt
    }

    var value: SecurityGroup {
        SecurityGroup(id: id, projectID: projectId, name: name, description: description, stateful: stateful,
                      tags: Column.decode([String].self, tags, default: []), revision: revisionNumber, createdAt: createdAt, updatedAt: updatedAt)
    }
}

/// Absent values are stored as '' and -1, so the uniqueness key of a rule has no NULLs.
struct SecurityGroupRuleRow: Codable, Sendable {
    var id: String
    var securityGroupId: String
    var projectId: String
    var description: String
    var direction: String
    var ethertype: String
    var `protocol`: String
    var portRangeMin: Int
    var portRangeMax: Int
    var remoteIpPrefix: String
    var remoteGroupId: String
    var remoteAddressGroupId: String
    var revisionNumber: Int
    var createdAt: Int64
    var updatedAt: Int64

    init(_ rule: SecurityGroupRule) {
        id = rule.id; securityGroupId = rule.securityGroupID; projectId = rule.projectID; description = rule.description
        direction = rule.direction; ethertype = rule.ethertype; self.protocol = rule.protocol ?? ""
        portRangeMin = rule.portRangeMin ?? -1; portRangeMax = rule.portRangeMax ?? -1
        remoteIpPrefix = rule.remoteIPPrefix ?? ""; remoteGroupId = rule.remoteGroupID ?? ""
        remoteAddressGroupId = rule.remoteAddressGroupID ?? ""
        revisionNumber = rule.revision; createdAt = rule.createdAt; updatedAt = rule.updatedAt
    }

    var value: SecurityGroupRule {
        func text(_ value: String) -> String? { value.isEmpty ? nil : value }
        return SecurityGroupRule(id: id, securityGroupID: securityGroupId, projectID: projectId, description: description, direction: direction,
                                 ethertype: ethertype, protocol: text(self.protocol), portRangeMin: portRangeMin < 0 ? nil : portRangeMin,
                                 portRangeMax: portRangeMax < 0 ? nil : portRangeMax, remoteIPPrefix: text(remoteIpPrefix),
                                 remoteGroupID: text(remoteGroupId), remoteAddressGroupID: text(remoteAddressGroupId),
                                 revision: revisionNumber, createdAt: createdAt, updatedAt: updatedAt)
    }
}

struct AddressGroupRow: Codable, Sendable {
    var id: String
    var projectId: String
    var name: String
    var description: String
    var addresses: String
    var revisionNumber: Int
    var createdAt: Int64
    var updatedAt: Int64

    init(_ group: AddressGroup) {
        id = group.id; projectId = group.projectID; name = group.name; description = group.description
        addresses = Column.encode(group.addresses); revisionNumber = group.revision; createdAt = group.createdAt; updatedAt = group.updatedAt
    }

    var value: AddressGroup {
        AddressGroup(id: id, projectID: projectId, name: name, description: description,
                     addresses: Column.decode([String].self, addresses, default: []), revision: revisionNumber, createdAt: createdAt,
                     updatedAt: updatedAt)
    }
}

struct DefaultGroupRow: Codable, Sendable {
    var projectId: String
    var securityGroupId: String
}

extension Tables {
    static let securityGroups = Table<SecurityGroupRow>("security_groups")
    static let securityGroupRules = Table<SecurityGroupRuleRow>("security_group_rules")
    static let addressGroups = Table<AddressGroupRow>("address_groups")
    static let defaultGroups = Table<DefaultGroupRow>("default_security_groups")
}

extension NetworkingFailure {
    public static func securityGroupNotFound(_ id: String) -> NetworkingFailure {
        NetworkingFailure(404, "SecurityGroupNotFound", "Security group \(id) does not exist")
    }
    public static func ruleNotFound(_ id: String) -> NetworkingFailure {
        NetworkingFailure(404, "SecurityGroupRuleNotFound", "Security group rule \(id) does not exist")
    }
    public static func addressGroupNotFound(_ id: String) -> NetworkingFailure {
        NetworkingFailure(404, "AddressGroupNotFound", "Address group \(id) could not be found.")
    }
}

/// Security groups, their rules and address groups (Neutron's `security-group`,
/// `stateful-security-group` and `address-group` extensions). Each change is one transaction,
/// after which the nodes hear that their firewalls may have to change.
extension NetworkService {
    public static let defaultGroupName = "default"

    /// IP protocols by the names Neutron takes (`ipv6-icmp` and `icmpv6` are one).
    public static let protocolNumbers: [String: Int] = [
        "icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6-encap": 41, "ipv6-route": 43, "ipv6-frag": 44,
        "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ospf": 89,
        "pgm": 113, "vrrp": 112, "l2tp": 115, "sctp": 132, "udplite": 136, "dccp": 33,
    ]
    /// Protocols whose rules take a port range.
    static let portProtocols: Set<Int> = [6, 17, 33, 132, 136]

    /// The number of a rule's protocol; nil: any.
    public static func protocolNumber(_ text: String?) -> Int? {
        guard let text, !text.isEmpty, text != "any" else { return nil }
        return protocolNumbers[text.lowercased()] ?? Int(text)
    }

    public struct RuleCreate: Sendable {
        public var securityGroupID: String
        public var projectID: String
        public var description = ""
        public var direction = ""
        public var ethertype = "IPv4"
        public var `protocol`: String?
        public var portRangeMin: Int?
        public var portRangeMax: Int?
        public var remoteIPPrefix: String?
        public var remoteGroupID: String?
        public var remoteAddressGroupID: String?
        public init(securityGroupID: String, projectID: String) { self.securityGroupID = securityGroupID; self.projectID = projectID }
    }

    func firewallsChanged() async { await onFirewallChange?() }

    // MARK: groups

    /// The groups `viewer` may see (an administrator all, others their project's), with their
    /// rules. A project's default group is made first when it has none yet.
    public func securityGroups(visibleTo viewer: Viewer, ids: [String]? = nil) async throws -> [SecurityGroup] {
        if let project = viewer.projectID { _ = try await defaultSecurityGroup(project: project) }
        return try await database.withConnection { sql in
            var conditions: [Table<SecurityGroupRow>.Condition] = []
            if !viewer.isAdmin { conditions.append(.equals("project_id", viewer.projectID ?? "")) }
            if let ids { conditions.append(.inList("id", ids)) }
            let groups = try await Tables.securityGroups.all(sql, where: conditions, orderBy: "created_at").map(\.value)
            let rules = try await Tables.securityGroupRules.all(sql, where: [.inList("security_group_id", groups.map(\.id))], orderBy: "created_at")
            let byGroup = Dictionary(grouping: try await Self.marked(rules, sql), by: \.securityGroupID)
            return groups.map { group in
                var group = group
                group.rules = byGroup[group.id] ?? []
                return group
            }
        }
    }

    /// Rules as read, each marked when its group is a project's default group.
    static func marked(_ rows: [SecurityGroupRuleRow], _ sql: any SQLDatabase) async throws -> [SecurityGroupRule] {
        let defaults = Set(try await Tables.defaultGroups.all(sql).map(\.securityGroupId))
        return rows.map { row in
            var rule = row.value
            rule.belongsToDefaultGroup = defaults.contains(rule.securityGroupID)
            return rule
        }
    }

    public func securityGroup(_ id: String, visibleTo viewer: Viewer) async throws -> SecurityGroup {
        guard let group = try await securityGroups(visibleTo: viewer, ids: [id]).first else { throw NetworkingFailure.securityGroupNotFound(id) }
        return group
    }

    /// The id of `project`'s default group, made (with Neutron's default rules) on first use.
    /// Two controllers asking at once make one: the `default_security_groups` key decides.
    @discardableResult
    public func defaultSecurityGroup(project: String) async throws -> String {
        if let known = try await database.withConnection({ sql in
            try await Tables.defaultGroups.first(sql, where: [.equals("project_id", project)])?.securityGroupId
        }) {
            return known
        }
        do {
            return try await database.transaction { sql in
                let group = try await insertGroup(sql, projectID: project, name: Self.defaultGroupName, description: "Default security group",
                                                  stateful: true, tags: [], isDefault: true)
                try await Tables.defaultGroups.insert(sql, DefaultGroupRow(projectId: project, securityGroupId: group.id))
                return group.id
            }
        } catch where DatabaseError.isUniqueViolation(error) || error is DuplicateRowError {
            return try await database.withConnection { sql in
                try await Tables.defaultGroups.first(sql, where: [.equals("project_id", project)])!.securityGroupId
            }
        }
    }

    /// A new group with Neutron's starting rules: every group lets all traffic out (IPv4 and
    /// IPv6); the default group also lets in what comes from its own members.
    func insertGroup(_ sql: any SQLDatabase, projectID: String, name: String, description: String, stateful: Bool, tags: [String],
                     isDefault: Bool) async throws -> SecurityGroup {
        let time = now()
        var group = SecurityGroup(id: UUID().uuidString.lowercased(), projectID: projectID, name: name, description: description,
                                  stateful: stateful, tags: tags, revision: 1, createdAt: time, updatedAt: time)
        try await Tables.securityGroups.insert(sql, SecurityGroupRow(group))
        for ethertype in ["IPv4", "IPv6"] {
            for direction in isDefault ? ["egress", "ingress"] : ["egress"] {
                let rule = SecurityGroupRule(id: UUID().uuidString.lowercased(), securityGroupID: group.id, projectID: projectID, description: "",
                                             direction: direction, ethertype: ethertype, protocol: nil, portRangeMin: nil, portRangeMax: nil,
                                             remoteIPPrefix: nil, remoteGroupID: direction == "ingress" ? group.id : nil,
                                             remoteAddressGroupID: nil, revision: 1, createdAt: time, updatedAt: time,
                                             belongsToDefaultGroup: isDefault)
                try await Tables.securityGroupRules.insert(sql, SecurityGroupRuleRow(rule))
                group.rules.append(rule)
            }
        }
        return group
    }

    public func createSecurityGroup(projectID: String, name: String, description: String, stateful: Bool, tags: [String]) async throws -> SecurityGroup {
        if name == Self.defaultGroupName {
            throw NetworkingFailure(409, "SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
        }
        try await defaultSecurityGroup(project: projectID)
        return try await database.transaction { sql in
            try await checkQuota(sql, "security_group", project: projectID, adding: 1)
            try await checkQuota(sql, "security_group_rule", project: projectID, adding: 2)
            return try await insertGroup(sql, projectID: projectID, name: name, description: description, stateful: stateful, tags: tags,
                                         isDefault: false)
        }
    }

    public func updateSecurityGroup(_ id: String, name: String?, description: String?, stateful: Bool?) async throws -> SecurityGroup {
        let updated = try await database.transaction { sql in
            guard var group = try await Tables.securityGroups.lockedGet(sql, id: id)?.value else { throw NetworkingFailure.securityGroupNotFound(id) }
            let isDefault = try await Tables.defaultGroups.first(sql, where: [.equals("security_group_id", id)]) != nil
            if isDefault, let name, name != group.name {
                throw NetworkingFailure(409, "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
            }
            if !isDefault, name == Self.defaultGroupName {
                throw NetworkingFailure(409, "SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
            }
            group.name = name ?? group.name
            group.description = description ?? group.description
            group.stateful = stateful ?? group.stateful
            group.revision += 1
            group.updatedAt = now()
            try await Tables.securityGroups.update(sql, id: id, SecurityGroupRow(group))
            return group
        }
        if stateful != nil { await firewallsChanged() }
        return try await securityGroup(updated.id, visibleTo: Viewer(projectID: nil, isAdmin: true))
    }

    /// Deletes a group no port uses; a project's default group only by an administrator.
    public func deleteSecurityGroup(_ id: String, byAdmin: Bool) async throws {
        try await database.transaction { sql in
            guard try await Tables.securityGroups.lockedGet(sql, id: id) != nil else { throw NetworkingFailure.securityGroupNotFound(id) }
            if try await Tables.defaultGroups.first(sql, where: [.equals("security_group_id", id)]) != nil {
                guard byAdmin else {
                    throw NetworkingFailure(409, "SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
                }
            }
            let pattern = "%\"\(id)\"%"
            let users = try await sql.raw("SELECT COUNT(*) AS n FROM ports WHERE security_groups LIKE \(bind: pattern)").first()!
                .decode(column: "n", as: Int.self)
            if users > 0 {
                throw NetworkingFailure(409, "SecurityGroupInUse", "Security Group \(id) in use.")
            }
            let referring = try await Tables.securityGroupRules.all(sql, where: [.equals("remote_group_id", id)])
                .filter { $0.securityGroupId != id }
            if let rule = referring.first {
                throw NetworkingFailure(409, "SecurityGroupInUse", "Security Group \(id) in use by the rule \(rule.id) of group \(rule.securityGroupId).")
            }
            try await Tables.securityGroupRules.delete(sql, where: [.equals("security_group_id", id)])
            try await Tables.defaultGroups.delete(sql, where: [.equals("security_group_id", id)])
            try await Tables.securityGroups.delete(sql, where: [.equals("id", id)])
        }
        await firewallsChanged()
    }

    /// The ids of groups named by id or (in `project`) by name; a name that fits several
    /// groups is a 409, an unknown one a 404.
    public func resolveSecurityGroups(_ references: [String], project: String) async throws -> [String] {
        guard !references.isEmpty else { return [] }
        let groups = try await securityGroups(visibleTo: Viewer(projectID: project, isAdmin: false))
        var ids: [String] = []
        for reference in references {
            if groups.contains(where: { $0.id == reference }) {
                ids.append(reference)
            } else {
                let named = groups.filter { $0.name == reference }
                guard !named.isEmpty else { throw NetworkingFailure.securityGroupNotFound(reference) }
                guard named.count == 1 else {
                    throw NetworkingFailure(409, "DuplicateSecurityGroupName", "Multiple security_group matches found for name '\(reference)', use an ID to be more specific.")
                }
                ids.append(named[0].id)
            }
        }
        var seen = Set<String>()
        return ids.filter { seen.insert($0).inserted }
    }

    /// Checks that every group a port names exists and belongs to the port's project
    /// (or the caller is an administrator, who may use any).
    func checkPortGroups(_ sql: any SQLDatabase, _ ids: [String], project: String) async throws {
        let found = try await Tables.securityGroups.all(sql, where: [.inList("id", ids)])
        for id in ids {
            guard let group = found.first(where: { $0.id == id }) else { throw NetworkingFailure.securityGroupNotFound(id) }
            guard group.projectId == project else { throw NetworkingFailure.securityGroupNotFound(id) }
        }
    }

    // MARK: rules

    public func securityGroupRules(visibleTo viewer: Viewer, ids: [String]? = nil) async throws -> [SecurityGroupRule] {
        if let project = viewer.projectID { _ = try await defaultSecurityGroup(project: project) }
        return try await database.withConnection { sql in
            var condition: SQLQueryString = viewer.isAdmin ? "1 = 1" : """
                (project_id = \(bind: viewer.projectID ?? "") OR security_group_id IN (SELECT id FROM security_groups WHERE project_id = \(bind: viewer.projectID ?? "")))
                """
            if let ids {
                guard !ids.isEmpty else { return [] }
                condition = condition + " AND id IN (\(binds: ids))"
            }
            return try await Self.marked(try await Tables.securityGroupRules.all(sql, where: condition, orderBy: "created_at, id"), sql)
        }
    }

    public func securityGroupRule(_ id: String, visibleTo viewer: Viewer) async throws -> SecurityGroupRule {
        guard let rule = try await securityGroupRules(visibleTo: viewer, ids: [id]).first else { throw NetworkingFailure.ruleNotFound(id) }
        return rule
    }

    /// Checks a rule as Neutron does and returns it in the form it is stored.
    func validated(_ request: RuleCreate) throws -> RuleCreate {
        var rule = request
        guard ["ingress", "egress"].contains(rule.direction) else {
            throw NetworkingFailure.invalid("Invalid input for direction. Reason: '\(rule.direction)' is not in ['ingress', 'egress'].")
        }
        switch rule.ethertype.lowercased() {
        case "ipv4": rule.ethertype = "IPv4"
        case "ipv6": rule.ethertype = "IPv6"
        default:
            throw NetworkingFailure.invalid("Invalid input for ethertype. Reason: '\(rule.ethertype)' is not in ['IPv4', 'IPv6'].")
        }
        if let text = rule.protocol, text.isEmpty || text == "any" { rule.protocol = nil }
        let number: Int?
        if let text = rule.protocol {
            if let named = Self.protocolNumbers[text.lowercased()] {
                number = named
                rule.protocol = text.lowercased()
            } else if let value = Int(text), (0...255).contains(value) {
                number = value
            } else {
                let names = (Self.protocolNumbers.keys.sorted() + ["any"]).map { "'\($0)'" }.joined(separator: ", ")
                throw NetworkingFailure(400, "SecurityGroupRuleInvalidProtocol",
                                        "Security group rule protocol \(text) not supported. Only protocol values [None, \(names)] and integer representations [0 to 255] are supported.")
            }
        } else {
            number = nil
        }
        if number == 1 && rule.ethertype == "IPv6" || number == 58 && rule.ethertype == "IPv4" {
            throw NetworkingFailure(400, "SecurityGroupEthertypeConflictWithProtocol",
                                    "Invalid ethertype \(rule.ethertype) for protocol \(rule.protocol!).")
        }
        if rule.portRangeMin != nil || rule.portRangeMax != nil {
            guard let number else {
                throw NetworkingFailure(400, "SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol if port range is given.")
            }
            if number == 1 || number == 58 {
                for (name, value) in [("type", rule.portRangeMin), ("code", rule.portRangeMax)] {
                    if let value, !(0...255).contains(value) {
                        throw NetworkingFailure(400, "SecurityGroupInvalidIcmpValue",
                                                "Invalid value for ICMP \(name) (port-range-\(name == "type" ? "min" : "max")) \(value). It must be 0 to 255.")
                    }
                }
                if rule.portRangeMin == nil, let code = rule.portRangeMax {
                    throw NetworkingFailure(400, "SecurityGroupMissingIcmpType",
                                            "ICMP code (port-range-max) \(code) is provided but ICMP type (port-range-min) is missing.")
                }
            } else if Self.portProtocols.contains(number) {
                for value in [rule.portRangeMin, rule.portRangeMax].compactMap({ $0 }) where !(1...65535).contains(value) {
                    throw NetworkingFailure(400, "SecurityGroupInvalidPortValue", "Invalid value for port \(value).")
                }
                let low = rule.portRangeMin ?? 1, high = rule.portRangeMax ?? 65535
                guard low <= high else {
                    throw NetworkingFailure(400, "SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max")
                }
                rule.portRangeMin = low
                rule.portRangeMax = high
            } else {
                throw NetworkingFailure(400, "SecurityGroupInvalidProtocolForPort",
                                        "Invalid protocol \(rule.protocol!) for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP.")
            }
        }
        let remotes = [rule.remoteIPPrefix, rule.remoteGroupID, rule.remoteAddressGroupID].compactMap { $0 }
        if remotes.count > 1 {
            throw NetworkingFailure(400, "SecurityGroupMultipleRemoteParameters",
                                    "Only remote_ip_prefix, remote_group_id or remote_address_group_id may be provided.")
        }
        if let prefix = rule.remoteIPPrefix {
            let network = IPNetwork(prefix, strict: false) ?? IPAddress(prefix).map { IPNetwork(address: $0, prefixLength: $0.bits) }
            guard let network else { throw NetworkingFailure.invalid("Invalid input for remote_ip_prefix. Reason: '\(prefix)' is not a valid IP prefix.") }
            guard (network.version == 4) == (rule.ethertype == "IPv4") else {
                throw NetworkingFailure(400, "SecurityGroupRuleParameterConflict", "Conflicting value ethertype \(rule.ethertype) for CIDR \(prefix)")
            }
            rule.remoteIPPrefix = prefix.contains("/") ? prefix : network.description
        }
        return rule
    }

    /// Two rules mean the same when their numbers, ranges and remote ends are the same
    /// (`tcp` = `6`; `0.0.0.0/0` = no prefix; `10.0.0.5/24` = `10.0.0.0/24`).
    static func meaning(_ rule: SecurityGroupRule) -> String {
        let wholeSpace = rule.ethertype == "IPv4" ? "0.0.0.0/0" : "::/0"
        let prefix = rule.normalizedCIDR.flatMap { $0 == wholeSpace ? nil : $0 } ?? ""
        return [rule.direction, rule.ethertype, protocolNumber(rule.protocol).map(String.init) ?? "",
                rule.portRangeMin.map(String.init) ?? "", rule.portRangeMax.map(String.init) ?? "", prefix,
                rule.remoteGroupID ?? "", rule.remoteAddressGroupID ?? ""].joined(separator: " ")
    }

    /// Adds rules to groups, all or none (Neutron's bulk create): a duplicate of an existing
    /// rule (or of another in the request) is a 409.
    public func createSecurityGroupRules(_ requests: [RuleCreate], byAdmin: Bool) async throws -> [SecurityGroupRule] {
        let checked = try requests.map(validated)
        let created = try await database.transaction { sql in
            var made: [SecurityGroupRule] = []
            for request in checked {
                guard let group = try await Tables.securityGroups.lockedGet(sql, id: request.securityGroupID)?.value else {
                    throw NetworkingFailure.securityGroupNotFound(request.securityGroupID)
                }
                if !byAdmin, group.projectID != request.projectID { throw NetworkingFailure.securityGroupNotFound(request.securityGroupID) }
                if let remote = request.remoteGroupID, try await Tables.securityGroups.get(sql, id: remote) == nil {
                    throw NetworkingFailure.securityGroupNotFound(remote)
                }
                if let remote = request.remoteAddressGroupID, try await Tables.addressGroups.get(sql, id: remote) == nil {
                    throw NetworkingFailure.addressGroupNotFound(remote)
                }
                try await checkQuota(sql, "security_group_rule", project: group.projectID, adding: 1)
                let time = now()
                let rule = SecurityGroupRule(id: UUID().uuidString.lowercased(), securityGroupID: group.id, projectID: group.projectID,
                                             description: request.description, direction: request.direction, ethertype: request.ethertype,
                                             protocol: request.protocol, portRangeMin: request.portRangeMin, portRangeMax: request.portRangeMax,
                                             remoteIPPrefix: request.remoteIPPrefix, remoteGroupID: request.remoteGroupID,
                                             remoteAddressGroupID: request.remoteAddressGroupID, revision: 1, createdAt: time, updatedAt: time,
                                             belongsToDefaultGroup: try await Tables.defaultGroups.first(sql, where: [.equals("security_group_id", group.id)]) != nil)
                let existing = try await Tables.securityGroupRules.all(sql, where: [.equals("security_group_id", group.id)]).map(\.value)
                if let same = existing.first(where: { Self.meaning($0) == Self.meaning(rule) }) {
                    throw NetworkingFailure(409, "SecurityGroupRuleExists", "Security group rule already exists. Rule id is \(same.id).")
                }
                do {
                    try await Tables.securityGroupRules.insert(sql, SecurityGroupRuleRow(rule))
                } catch is DuplicateRowError {
                    throw NetworkingFailure(409, "SecurityGroupRuleExists", "Security group rule already exists.")
                }
                try await bumpGroup(sql, group.id)
                made.append(rule)
            }
            return made
        }
        await firewallsChanged()
        return created
    }

    func bumpGroup(_ sql: any SQLDatabase, _ id: String) async throws {
        try await sql.raw("UPDATE security_groups SET revision_number = revision_number + 1, updated_at = \(bind: now()) WHERE id = \(bind: id)").run()
    }

    public func deleteSecurityGroupRule(_ id: String) async throws {
        try await database.transaction { sql in
            guard let rule = try await Tables.securityGroupRules.get(sql, id: id) else { throw NetworkingFailure.ruleNotFound(id) }
            try await Tables.securityGroupRules.delete(sql, where: [.equals("id", id)])
            try await bumpGroup(sql, rule.securityGroupId)
        }
        await firewallsChanged()
    }

    // MARK: address groups

    public func addressGroups(visibleTo viewer: Viewer, ids: [String]? = nil) async throws -> [AddressGroup] {
        try await database.withConnection { sql in
            var conditions: [Table<AddressGroupRow>.Condition] = []
            if !viewer.isAdmin { conditions.append(.equals("project_id", viewer.projectID ?? "")) }
            if let ids { conditions.append(.inList("id", ids)) }
            return try await Tables.addressGroups.all(sql, where: conditions, orderBy: "created_at").map(\.value)
        }
    }

    public func addressGroup(_ id: String, visibleTo viewer: Viewer) async throws -> AddressGroup {
        guard let group = try await addressGroups(visibleTo: viewer, ids: [id]).first else { throw NetworkingFailure.addressGroupNotFound(id) }
        return group
    }

    /// Addresses as Neutron keeps them: networks in CIDR form (`10.0.0.1` → `10.0.0.1/32`).
    static func normalizedAddresses(_ addresses: [String]) throws -> [String] {
        try addresses.map { text in
            if let network = IPNetwork(text, strict: false) { return network.description }
            if let address = IPAddress(text) { return IPNetwork(address: address, prefixLength: address.bits).description }
            throw NetworkingFailure.invalid("Invalid input for addresses. Reason: '\(text)' is not a valid IP subnet.")
        }
    }

    public func createAddressGroup(projectID: String, name: String, description: String, addresses: [String]) async throws -> AddressGroup {
        let addresses = try Self.normalizedAddresses(addresses)
        let time = now()
        let group = AddressGroup(id: UUID().uuidString.lowercased(), projectID: projectID, name: name, description: description,
                                 addresses: Array(Set(addresses)).sorted(), revision: 1, createdAt: time, updatedAt: time)
        try await database.transaction { sql in try await Tables.addressGroups.insert(sql, AddressGroupRow(group)) }
        return group
    }

    /// Changes a group's name or description, or adds or removes addresses (removing one it
    /// does not have is a 400, as Neutron's).
    public func updateAddressGroup(_ id: String, name: String? = nil, description: String? = nil, adding: [String] = [],
                                   removing: [String] = []) async throws -> AddressGroup {
        let adding = try Self.normalizedAddresses(adding), removing = try Self.normalizedAddresses(removing)
        let group = try await database.transaction { sql in
            guard var group = try await Tables.addressGroups.lockedGet(sql, id: id)?.value else { throw NetworkingFailure.addressGroupNotFound(id) }
            if let missing = removing.first(where: { !group.addresses.contains($0) }) {
                throw NetworkingFailure(400, "AddressesNotFound", "Addresses ['\(missing)'] not found in the address group \(id).")
            }
            group.name = name ?? group.name
            group.description = description ?? group.description
            group.addresses = Array(Set(group.addresses).union(adding).subtracting(removing)).sorted()
            group.revision += 1
            group.updatedAt = now()
            try await Tables.addressGroups.update(sql, id: id, AddressGroupRow(group))
            return group
        }
        if !adding.isEmpty || !removing.isEmpty { await firewallsChanged() }
        return group
    }

    public func deleteAddressGroup(_ id: String) async throws {
        try await database.transaction { sql in
            guard try await Tables.addressGroups.get(sql, id: id) != nil else { throw NetworkingFailure.addressGroupNotFound(id) }
            if let rule = try await Tables.securityGroupRules.first(sql, where: [.equals("remote_address_group_id", id)]) {
                throw NetworkingFailure(409, "AddressGroupInUse", "Address group \(id) is in use on one or more security group rules (\(rule.id)).")
            }
            try await Tables.addressGroups.delete(sql, where: [.equals("id", id)])
        }
    }
}
