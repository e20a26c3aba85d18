import Foundation
import SQLKit
import Store

/// Nova's quotas: limits per project (configured defaults, overridden per project) and what
/// the project uses now (its instances, cores, RAM; a user's key pairs).
public struct Quotas: Sendable {
    /// The resources, in Nova's names.
    public static let resources = ["instances", "cores", "ram", "key_pairs", "metadata_items", "server_groups", "server_group_members"]
    /// Nova's defaults for the resources a configuration may leave out.
    public static let builtInDefaults = ["server_groups": 10, "server_group_members": 10]

    let database: Database
    public let defaults: [String: Int]

    public init(database: Database, defaults: [String: Int]) {
        self.database = database
        self.defaults = Self.builtInDefaults.merging(defaults) { _, given in given }
    }

    /// The limits of `project`: its own where set, else the `default` quota class's, else the
    /// configured defaults (-1: unlimited), as Nova's DbQuotaDriver.
    public func limits(project: String) async throws -> [String: Int] {
        var limits = defaults
        let rows = try await database.withConnection { sql in
            try await sql.raw("SELECT resource, hard_limit FROM quota_classes WHERE class_name = \(bind: Self.defaultClass)").all()
                + sql.raw("SELECT resource, hard_limit FROM quotas WHERE project_id = \(bind: project)").all()
        }
        for row in rows {
            limits[try row.decode(column: "resource", as: String.self)] = try row.decode(column: "hard_limit", as: Int.self)
        }
        return limits
    }

    /// Sets some limits of a project; returns all of them.
    public func set(project: String, _ changes: [String: Int]) async throws -> [String: Int] {
        try await database.transaction { sql in
            for (resource, limit) in changes {
                try await sql.raw("""
                    INSERT INTO quotas (project_id, resource, hard_limit) VALUES (\(bind: project), \(bind: resource), \(bind: limit))
                    ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit
                    """).run()
            }
        }
        return try await limits(project: project)
    }

    /// The quota class whose limits every project without its own gets (Nova's only class that matters).
    public static let defaultClass = "default"

    /// The limits of the quota class `name`: the configured defaults, with what was set for the class.
    public func classLimits(_ name: String) async throws -> [String: Int] {
        var limits = defaults
        let rows = try await database.withConnection { sql in
            try await sql.raw("SELECT resource, hard_limit FROM quota_classes WHERE class_name = \(bind: name)").all()
        }
        for row in rows {
            limits[try row.decode(column: "resource", as: String.self)] = try row.decode(column: "hard_limit", as: Int.self)
        }
        return limits
    }

    /// What a project without limits of its own gets: the `default` class's limits.
    public func effectiveDefaults() async throws -> [String: Int] { try await classLimits(Self.defaultClass) }

    /// Sets some limits of the quota class `name`; returns all of them.
    public func setClass(_ name: String, _ changes: [String: Int]) async throws -> [String: Int] {
        try await database.transaction { sql in
            for (resource, limit) in changes {
                try await sql.raw("""
                    INSERT INTO quota_classes (class_name, resource, hard_limit) VALUES (\(bind: name), \(bind: resource), \(bind: limit))
                    ON CONFLICT (class_name, resource) DO UPDATE SET hard_limit = excluded.hard_limit
                    """).run()
            }
        }
        return try await classLimits(name)
    }

    /// Back to the defaults.
    public func reset(project: String) async throws {
        try await database.withConnection { sql in try await sql.raw("DELETE FROM quotas WHERE project_id = \(bind: project)").run() }
    }

    /// What `project` (and, for key pairs, `user`) uses now.
    public func usage(project: String, user: String?) async throws -> [String: Int] {
        try await database.withConnection { sql in
            var usage = try await Self.instanceUsage(sql, project: project)
            usage["metadata_items"] = 0
            usage["key_pairs"] = 0
            // (Members are limited per group, so the project uses none of that quota as such.)
            usage["server_group_members"] = 0
            usage["server_groups"] = try await sql.raw("SELECT COUNT(*) AS n FROM server_groups WHERE project_id = \(bind: project)").first()!
                .decode(column: "n", as: Int.self)
            if let user {
                usage["key_pairs"] = try await sql.raw("SELECT COUNT(*) AS n FROM key_pairs WHERE user_id = \(bind: user)").first()!
                    .decode(column: "n", as: Int.self)
            }
            return usage
        }
    }

    /// The instances, cores and RAM of `project`'s servers, read on `sql` (creation counts
    /// them in the transaction that records new servers). Soft-deleted servers count for
    /// nothing, as in Nova: restoring one checks the quota again.
    static func instanceUsage(_ sql: any SQLDatabase, project: String) async throws -> [String: Int] {
        let row = try await sql.raw("""
            SELECT COUNT(*) AS instances, COALESCE(SUM(vcpus), 0) AS cores, COALESCE(SUM(memory_mb), 0) AS ram FROM instances
            WHERE project_id = \(bind: project) AND vm_state <> 'soft-delete'
            """).first()!
        return ["instances": try row.decode(column: "instances", as: Int.self), "cores": try row.decode(column: "cores", as: Int.self),
                "ram": try row.decode(column: "ram", as: Int.self)]
    }
}
