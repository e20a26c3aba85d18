import Foundation
import SQLKit
import Store

/// Nova's server groups: servers created into a group are placed by its policy (affinity:
/// one host; anti-affinity: different hosts, at most `max_server_per_host` on one; the soft
/// forms as preferences of the weigher, never refusals).
public struct ServerGroup: Sendable, Equatable {
    public var row: ServerGroupRow
    public var members: [String]

    public var id: String { row.id }
    public var policy: String { row.policy }
    /// `max_server_per_host` (anti-affinity, 2.64); nil when not set.
    public var maxServerPerHost: Int? { JSONColumn.decode(row.rules, as: [String: Int].self, fallback: [:])["max_server_per_host"] }
}

public struct ServerGroups: Sendable {
    public static let policies = ["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case notFound(String)
        case quota(String)
        case badRequest(String)

        public var description: String {
            switch self {
            case .notFound(let id): "Server group \(id) could not be found."
            case .quota(let message), .badRequest(let message): message
            }
        }
    }

    let database: Database
    let quotas: Quotas

    public init(database: Database, quotas: Quotas) {
        self.database = database
        self.quotas = quotas
    }

    public func create(name: String, policy: String, maxServerPerHost: Int?, by caller: ServerCaller) async throws -> ServerGroup {
        let limit = try await quotas.limits(project: caller.projectID)["server_groups"] ?? -1
        let rules = maxServerPerHost.map { ["max_server_per_host": $0] } ?? [:]
        let row = ServerGroupRow(id: UUID().uuidString.lowercased(), name: name, projectID: caller.projectID, userID: caller.userID,
                                 policy: policy, rules: JSONColumn.encode(rules, fallback: "{}"), createdAt: Servers.now())
        try await database.transaction { sql in
            if limit >= 0 {
                let used = try await ComputeTables.serverGroups.all(sql, where: [.equals("project_id", caller.projectID)]).count
                guard used < limit else {
                    throw Failure.quota("Quota exceeded, too many server groups.")
                }
            }
            try await ComputeTables.serverGroups.insert(sql, row)
        }
        return ServerGroup(row: row, members: [])
    }

    /// The groups the caller sees: its project's (`allProjects`: every project's, for admins).
    public func list(by caller: ServerCaller, allProjects: Bool) async throws -> [ServerGroup] {
        try await database.withConnection { sql in
            let rows = caller.isAdmin && allProjects
                ? try await ComputeTables.serverGroups.all(sql, orderBy: "created_at")
                : try await ComputeTables.serverGroups.all(sql, where: [.equals("project_id", caller.projectID)], orderBy: "created_at")
            var groups: [ServerGroup] = []
            for row in rows { groups.append(ServerGroup(row: row, members: try await Self.members(sql, of: row.id))) }
            return groups
        }
    }

    public func get(_ id: String, by caller: ServerCaller) async throws -> ServerGroup {
        try await database.withConnection { sql in
            guard let row = try await ComputeTables.serverGroups.get(sql, id: id), caller.isAdmin || row.projectID == caller.projectID else {
                throw Failure.notFound(id)
            }
            return ServerGroup(row: row, members: try await Self.members(sql, of: id))
        }
    }

    public func delete(_ id: String, by caller: ServerCaller) async throws {
        _ = try await get(id, by: caller)
        try await database.transaction { sql in
            _ = try await ComputeTables.serverGroupMembers.delete(sql, where: [.equals("group_id", id)])
            _ = try await ComputeTables.serverGroups.delete(sql, where: [.equals("id", id)])
        }
    }

    static func members(_ sql: any SQLDatabase, of group: String) async throws -> [String] {
        try await ComputeTables.serverGroupMembers.all(sql, where: [.equals("group_id", group)]).map(\.instanceID).sorted()
    }

    /// The groups a server is in (Nova shows them from 2.71).
    public func groups(of instanceID: String) async throws -> [String] {
        try await database.withConnection { sql in
            try await ComputeTables.serverGroupMembers.all(sql, where: [.equals("instance_id", instanceID)]).map(\.groupID)
        }
    }

    /// Adds new servers to a group (the `group` scheduler hint), on `sql`, within the group's
    /// `server_group_members` quota.
    static func join(_ sql: any SQLDatabase, group: ServerGroupRow, instances: [String], limit: Int) async throws {
        let present = try await members(sql, of: group.id)
        if limit >= 0, present.count + instances.count > limit {
            throw Failure.quota("Quota exceeded, too many servers in group")
        }
        for id in instances { try await ComputeTables.serverGroupMembers.insert(sql, ServerGroupMemberRow(groupID: group.id, instanceID: id)) }
    }

    /// Removes a deleted server from its groups, on `sql`.
    static func leave(_ sql: any SQLDatabase, instanceID: String) async throws {
        _ = try await ComputeTables.serverGroupMembers.delete(sql, where: [.equals("instance_id", instanceID)])
    }
}

/// What a server's group asks of the scheduler for it: the policy, and how many of the
/// group's other servers each host holds.
public struct GroupPlacement: Sendable {
    public let policy: String
    public let maxPerHost: Int
    /// Members other than the one being placed, by the host they hold.
    public let membersOnHost: [String: Int]

    /// The placement `instanceID`'s group asks for, read on `sql` (nil: in no group).
    public static func of(_ sql: any SQLDatabase, instanceID: String) async throws -> GroupPlacement? {
        guard let membership = try await ComputeTables.serverGroupMembers.first(sql, where: [.equals("instance_id", instanceID)]),
              let row = try await ComputeTables.serverGroups.get(sql, id: membership.groupID) else { return nil }
        let group = ServerGroup(row: row, members: try await ServerGroups.members(sql, of: row.id))
        var onHost: [String: Int] = [:]
        let others = group.members.filter { $0 != instanceID }
        for row in try await ComputeTables.instances.all(sql, where: [.inList("id", others)]) {
            if let host = row.host { onHost[host, default: 0] += 1 }
        }
        return GroupPlacement(policy: row.policy, maxPerHost: group.maxServerPerHost ?? 1, membersOnHost: onHost)
    }

    /// Whether `host` passes the group's filter (the soft policies filter nothing).
    public func allows(_ host: String) -> Bool {
        let here = membersOnHost[host, default: 0]
        switch policy {
        case "affinity": return membersOnHost.isEmpty || here > 0
        case "anti-affinity": return here < maxPerHost
        default: return true
        }
    }

    /// The soft policies' weight of a host: more of the group's servers (soft-affinity) or
    /// fewer (soft-anti-affinity) weigh more; 0 for the others.
    public func weight(_ host: String) -> Int {
        switch policy {
        case "soft-affinity": membersOnHost[host, default: 0]
        case "soft-anti-affinity": -membersOnHost[host, default: 0]
        default: 0
        }
    }

    /// Nova's words when the filter left no host.
    public var refusal: String {
        policy == "affinity" ? "ServerGroupAffinityFilter: the group's servers are on a host that cannot take this one."
            : "ServerGroupAntiAffinityFilter: every host already has \(maxPerHost) of the group's servers."
    }
}
