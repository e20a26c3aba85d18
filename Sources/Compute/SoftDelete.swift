import Contracts
import Foundation
import Store

/// Nova's deferred delete: with `reclaim_instance_interval` > 0 a deleted server is only
/// powered off (SOFT_DELETED), keeps its host's resources and can be restored; it is reclaimed
/// (deleted for good) once the interval has passed, or at once with `forceDelete`.
extension Servers {
    /// What a DELETE of a server does when deleted servers are kept.
    public enum SoftDeleteRoute: Sendable, Equatable {
        /// Marked soft-deleting: ask `host` to power it off.
        case soft(host: String)
        /// A delete is under way already (Nova ignores the second one).
        case underWay
        /// Delete it for good, as without the interval: it never ran (Nova's `must_have_launched`),
        /// its host is down or it has none (Nova's local delete destroys it), or it is in the
        /// middle of something.
        case hard
    }

    /// The states a server may be soft-deleted from: where its host can power it off and on
    /// again. (A server waiting for a resize's confirmation, rescued or shelved is deleted for good.)
    static let softDeletable: Set<VMState> = [.active, .stopped, .paused, .suspended, .softDeleted]

    /// Marks `server` soft-deleting when it can be (see `SoftDeleteRoute`). Its lock is checked
    /// as for any delete.
    public func beginSoftDelete(_ server: Server, by caller: ServerCaller,
                                hostIsUp: @escaping @Sendable (String) async throws -> Bool) async throws -> SoftDeleteRoute {
        try Self.checkLock(server.row, caller)
        if server.row.task == .softDeleting || server.row.task == .deleting { return .underWay }
        guard let host = server.row.host, server.row.launchedAt != nil, server.row.task == nil,
              let state = server.row.vm, Self.softDeletable.contains(state), try await hostIsUp(host) else { return .hard }
        let now = Self.now()
        do {
            _ = try await change(server.id, by: caller) { current in
                // Checked again under the row's lock: a task may have begun since it was read.
                guard current.row.task == nil, current.row.host == host, let state = current.row.vm, Self.softDeletable.contains(state) else {
                    throw NotSoftDeletable(underWay: current.row.task == .softDeleting || current.row.task == .deleting)
                }
                current.row.set(task: .softDeleting)
                current.row.deletedAt = now
            }
        } catch let refusal as NotSoftDeletable {
            return refusal.underWay ? .underWay : .hard
        }
        return .soft(host: host)
    }

    private struct NotSoftDeletable: Error { let underWay: Bool }

    /// Starts a restore: the quota must have room for the server again, and it must be
    /// soft-deleted (409 in Nova's words otherwise).
    public func beginRestore(_ server: Server, by caller: ServerCaller) async throws -> (Server, String, InstanceAction.Action) {
        // The state first, as Nova's decorator checks it before the quota.
        if server.row.vm != .softDeleted || server.row.task != nil { throw Self.stateConflict("restore", server.row) }
        try await checkRestoreQuota(server)
        return try await begin("restore", on: server.id, by: caller) { $0.row.deletedAt = nil }
    }

    /// Room in the project's quota for a soft-deleted server to count again (Nova's restore
    /// checks instances, cores and RAM as for one new server).
    func checkRestoreQuota(_ server: Server) async throws {
        let limits = try await quotas.limits(project: server.row.projectID)
        let used = try await database.withConnection { sql in try await Quotas.instanceUsage(sql, project: server.row.projectID) }
        for (resource, amount) in [("instances", 1), ("cores", server.row.vcpus), ("ram", server.row.memoryMB)] {
            guard let limit = limits[resource], limit >= 0, used[resource, default: 0] + amount > limit else { continue }
            throw Failure.quota("Quota exceeded for \(resource): Requested \(amount), but already used \(used[resource, default: 0]) of \(limit) \(resource)")
        }
    }

    /// Soft-deleted servers whose time is up: deleted `interval` seconds ago or earlier, no
    /// task running.
    public func reclaimable(interval: Int) async throws -> [InstanceRow] {
        let cutoff = Self.now() - Int64(interval) * 1000
        return try await database.withConnection { sql in
            try await ComputeTables.instances.all(sql, where: """
                vm_state = \(bind: VMState.softDeleted.rawValue) AND task_state IS NULL AND deleted_at IS NOT NULL AND deleted_at <= \(bind: cutoff)
                """)
        }
    }
}

extension Conductor {
    /// Nova's `_reclaim_queued_deletes`: every `interval` seconds (at most a minute apart),
    /// the soft-deleted servers older than `interval` are deleted for good, on their host
    /// or, with the host down, here (the node removes what is left when it reconciles).
    public func reclaimSoftDeleted(interval: Int) async {
        guard interval > 0 else { return }
        let period = Duration.seconds(max(1, min(60, interval)))
        let system = ServerCaller(projectID: "", userID: "", isAdmin: true)
        while !Task.isCancelled {
            try? await Task.sleep(for: period)
            if Task.isCancelled { return }
            do {
                for row in try await servers.reclaimable(interval: interval) {
                    let context = RequestContext()
                    let route = try await servers.beginDelete(Server(row), by: system) { host in
                        try await self.scheduler.hosts.services { $0.host == host && $0.binary == "nova-compute" }.contains { $0.up }
                    }
                    logger.info("reclaiming a soft-deleted server", metadata: ["instance": "\(row.id)", "request_id": "\(context.requestID)"])
                    if case .host(let host) = route { try await delete(row.id, on: host, context: context) }
                }
            } catch {
                logger.warning("reclaiming soft-deleted servers failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
