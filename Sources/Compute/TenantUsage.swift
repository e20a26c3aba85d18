import Foundation
import SQLKit
import Store

/// Nova's simple tenant usage: for a period, each project's servers with the hours they ran in
/// it and the vCPU, RAM and disk hours that makes.
///
/// Petrel removes an instance's row when the server is deleted (there is no soft-deleted row,
/// no `terminated_at`), so a deleted server's hours are gone with it: the usage counts the
/// servers that exist now, each from its launch (`launched_at`) up to the period's end. Nova
/// reports a server it still has a deleted row of as `terminated`; Petrel never does.
public struct TenantUsage: Sendable {
    /// One server's part (Nova's `server_usages` entry).
    public struct ServerUsage: Sendable, Equatable {
        public var instanceID: String
        public var name: String
        public var projectID: String
        public var flavor: String
        public var hours: Double
        public var vcpus: Int
        public var memoryMB: Int
        public var localGB: Int
        /// Microseconds since 1970 (Nova keeps microseconds).
        public var startedAt: Int64
        public var state: String
        public var uptime: Int
    }

    /// One project's sums over the period.
    public struct ProjectUsage: Sendable, Equatable {
        public var projectID: String
        /// The period, in microseconds.
        public var periodStart: Int64
        public var periodStop: Int64
        public var servers: [ServerUsage] = []
        public var totalHours = 0.0
        public var totalVCPUsUsage = 0.0
        public var totalMemoryMBUsage = 0.0
        public var totalLocalGBUsage = 0.0
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// 400 in Nova (its DB's MarkerNotFound).
        case markerNotFound(String)

        public var description: String {
            switch self {
            case .markerNotFound(let marker): return "Marker \(marker) could not be found."
            }
        }
    }

    /// Nova's `[api] max_limit`: the most servers one answer holds.
    public static let maxLimit = 1000

    let database: Database

    public init(database: Database) { self.database = database }

    /// The usage of `project` (or of all projects) in [start, stop), times in microseconds:
    /// the servers launched before `stop`, ordered by project and id as Nova pages them,
    /// `limit` of them after the server `marker`. Returns the projects in that order and the
    /// servers of the page (for the next link).
    public func usages(start: Int64, stop: Int64, now: Int64, project: String?, limit: Int, marker: String?) async throws
        -> (projects: [ProjectUsage], servers: [ServerUsage]) {
        let rows = try await database.withConnection { sql -> [InstanceRow] in
            var after: (project: String, id: String)?
            if let marker {
                guard let row = try await ComputeTables.instances.first(sql, where: [.equals("id", marker)]) else {
                    throw Failure.markerNotFound(marker)
                }
                after = (row.projectID, row.id)
            }
            // Launched before the period's end (a server that never launched has no hours,
            // and Nova's `launched_at < end` leaves it out too).
            let stopMilliseconds = stop / 1000 + (stop % 1000 == 0 ? 0 : 1)
            var condition: SQLQueryString = "launched_at IS NOT NULL AND launched_at < \(bind: stopMilliseconds)"
            if let project { condition += " AND project_id = \(bind: project)" }
            if let after {
                condition += " AND (project_id > \(bind: after.project) OR (project_id = \(bind: after.project) AND id > \(bind: after.id)))"
            }
            return try await ComputeTables.instances.all(sql, where: condition, orderBy: "project_id, id", limit: max(limit, 0))
        }
        var projects: [ProjectUsage] = []
        var index: [String: Int] = [:]
        var servers: [ServerUsage] = []
        for row in rows {
            guard let launched = row.launchedAt.map({ $0 * 1000 }) else { continue }
            // Nova's `_hours_for`: from the launch (or the period's start, if later) to the
            // period's end; nothing for a server launched after the period.
            let from = max(launched, start)
            let hours = launched > stop ? 0 : Double(stop - from) / 3_600_000_000
            let server = ServerUsage(instanceID: row.id, name: row.name, projectID: row.projectID, flavor: row.flavorName ?? "",
                                     hours: hours, vcpus: row.vcpus, memoryMB: row.memoryMB, localGB: row.rootGB + row.ephemeralGB,
                                     startedAt: launched, state: row.vmState, uptime: Int((now - launched) / 1_000_000))
            if index[row.projectID] == nil {
                index[row.projectID] = projects.count
                projects.append(ProjectUsage(projectID: row.projectID, periodStart: start, periodStop: stop))
            }
            let at = index[row.projectID]!
            projects[at].servers.append(server)
            projects[at].totalHours += hours
            projects[at].totalVCPUsUsage += Double(server.vcpus) * hours
            projects[at].totalMemoryMBUsage += Double(server.memoryMB) * hours
            projects[at].totalLocalGBUsage += Double(server.localGB) * hours
            servers.append(server)
        }
        return (projects, servers)
    }
}
