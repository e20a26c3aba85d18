import Foundation
import SQLKit
import Store

/// Cinder's quotas: limits per project (the configured defaults unless the project has its
/// own), usage counted from the volumes themselves, checked inside the change's transaction.
extension VolumeService {
    /// The resources Cinder's quota sets show, in its names. Backups count what
    /// exists of them (none until those resources are served).
    public static let quotaResources = ["volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes", "per_volume_gigabytes"]

    public func quotaLimits(project: String) async throws -> [String: Int] {
        try await database.withConnection { sql in try await limits(sql, project: project) }
    }

    /// The limits, with the per-type ones (`volumes_<type>`, …: -1 unless set) for every type.
    func limits(_ sql: any SQLDatabase, project: String) async throws -> [String: Int] {
        var limits = settings.quotaDefaults.filter { Self.quotaResources.contains($0.key) }
        for type in try await Tables.types.all(sql) {
            for resource in ["volumes", "gigabytes", "snapshots"] { limits["\(resource)_\(type.name)"] = -1 }
        }
        let rows = try await sql.raw("SELECT resource, hard_limit FROM quotas WHERE project_id = \(bind: project)").all()
        for row in rows {
            let resource = try row.decode(column: "resource", as: String.self)
            if limits[resource] != nil { limits[resource] = try row.decode(column: "hard_limit", as: Int.self) }
        }
        return limits
    }

    public func quotaUsage(project: String) async throws -> [String: Int] {
        try await database.withConnection { sql in try await usage(sql, project: project) }
    }

    func usage(_ sql: any SQLDatabase, project: String) async throws -> [String: Int] {
        var usage: [String: Int] = ["backups": 0, "backup_gigabytes": 0, "per_volume_gigabytes": 0]
        let types = Dictionary(try await Tables.types.all(sql).map { ($0.id, $0.name) }) { a, _ in a }
        for name in types.values {
            usage["volumes_\(name)"] = 0; usage["gigabytes_\(name)"] = 0; usage["snapshots_\(name)"] = 0
        }
        var volumes = 0, gigabytes = 0
        let rows = try await sql.raw("""
            SELECT volume_type_id, COUNT(*) AS n, COALESCE(SUM(size), 0) AS g FROM volumes WHERE project_id = \(bind: project)
            GROUP BY volume_type_id
            """).all()
        for row in rows {
            let count = try row.decode(column: "n", as: Int.self), size = try row.decode(column: "g", as: Int.self)
            volumes += count
            gigabytes += size
            if let name = types[try row.decode(column: "volume_type_id", as: String.self)] {
                usage["volumes_\(name)"] = count
                usage["gigabytes_\(name)"] = size
            }
        }
        if let row = try await sql.raw("SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS g FROM backups WHERE project_id = \(bind: project)").first() {
            usage["backups"] = try row.decode(column: "n", as: Int.self)
            usage["backup_gigabytes"] = try row.decode(column: "g", as: Int.self)
        }
        let snapshots = try await sql.raw("""
            SELECT volume_type_id, COUNT(*) AS n, COALESCE(SUM(size), 0) AS g FROM snapshots WHERE project_id = \(bind: project)
            GROUP BY volume_type_id
            """).all()
        var snapshotCount = 0
        for row in snapshots {
            let count = try row.decode(column: "n", as: Int.self), size = try row.decode(column: "g", as: Int.self)
            snapshotCount += count
            gigabytes += size
            if let name = types[try row.decode(column: "volume_type_id", as: String.self)] {
                usage["snapshots_\(name)"] = count
                usage["gigabytes_\(name)", default: 0] += size
            }
        }
        usage["volumes"] = volumes
        usage["gigabytes"] = gigabytes
        usage["snapshots"] = snapshotCount
        return usage
    }

    /// Sets limits (unknown resources refused, as Cinder: "Bad key(s) in quota set").
    public func setQuota(project: String, _ changes: [String: Int]) async throws -> [String: Int] {
        try await database.transaction { sql in
            let known = try await limits(sql, project: project)
            let bad = changes.keys.filter { known[$0] == nil }.sorted()
            guard bad.isEmpty else { throw VolumeFailure.invalid("Bad key(s) in quota set: \(bad.joined(separator: ","))") }
            let used = try await usage(sql, project: project)
            for (resource, limit) in changes {
                guard limit >= -1 else {
                    throw VolumeFailure.invalid("Invalid input received: Quota limit \(limit) for \(resource) must be -1 or greater.")
                }
                if limit >= 0, resource != "per_volume_gigabytes", let inUse = used[resource], inUse > limit {
                    throw VolumeFailure.invalid("Invalid input received: Quota limit \(limit) for \(resource) must be greater than or equal to already used and reserved \(inUse).")
                }
                try await sql.raw("""
                    INSERT INTO quotas (project_id, resource, hard_limit) VALUES (\(bind: project), \(bind: resource), \(bind: limit))
                    ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit
                    """).run()
            }
            return try await limits(sql, project: project)
        }
    }

    /// Back to the defaults (Cinder's `DELETE os-quota-sets/{project}`).
    public func resetQuota(project: String) async throws {
        try await database.transaction { sql in
            let known = try await limits(sql, project: project).keys
            for resource in known {
                try await sql.raw("DELETE FROM quotas WHERE project_id = \(bind: project) AND resource = \(bind: resource)").run()
            }
        }
    }

    /// Refuses (413, in Cinder's words) what would take `project` past a limit, read in the
    /// caller's transaction.
    func checkQuota(_ sql: any SQLDatabase, project: String, type: String, volumes: Int, gigabytes: Int, perVolume: Int? = nil,
                    snapshots: Int = 0) async throws {
        let limits = try await limits(sql, project: project)
        let used = try await usage(sql, project: project)
        let size = perVolume ?? gigabytes
        if snapshots == 0, let limit = limits["per_volume_gigabytes"], limit >= 0, size > limit {
            throw VolumeFailure(413, "VolumeSizeExceedsLimit: Requested volume size \(size)G is larger than maximum allowed limit \(limit)G.")
        }
        if snapshots > 0, let limit = limits["snapshots"], limit >= 0, (used["snapshots"] ?? 0) + snapshots > limit {
            throw VolumeFailure(413, "SnapshotLimitExceeded: Maximum number of snapshots allowed (\(limit)) exceeded")
        }
        if volumes > 0, let limit = limits["volumes"], limit >= 0, (used["volumes"] ?? 0) + volumes > limit {
            throw VolumeFailure(413, "VolumeLimitExceeded: Maximum number of volumes allowed (\(limit)) exceeded for quota 'volumes'.")
        }
        if let limit = limits["gigabytes"], limit >= 0, (used["gigabytes"] ?? 0) + gigabytes > limit {
            throw VolumeFailure(413, "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested \(gigabytes)G, quota is \(limit)G and \(used["gigabytes"] ?? 0)G has been consumed.")
        }
        if volumes > 0, let limit = limits["volumes_\(type)"], limit >= 0, (used["volumes_\(type)"] ?? 0) + volumes > limit {
            throw VolumeFailure(413, "VolumeLimitExceeded: Maximum number of volumes allowed (\(limit)) exceeded for quota 'volumes_\(type)'.")
        }
        if let limit = limits["gigabytes_\(type)"], limit >= 0, (used["gigabytes_\(type)"] ?? 0) + gigabytes > limit {
            throw VolumeFailure(413, "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes_\(type) quota. Requested \(gigabytes)G, quota is \(limit)G and \(used["gigabytes_\(type)"] ?? 0)G has been consumed.")
        }
    }
}
