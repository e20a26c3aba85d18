import Contracts
import Foundation
import Placement
import SQLKit
import Store

/// The flavor an instance carries (its copy of the flavor's columns), as a migration keeps
/// the one before and the one after a resize.
struct FlavorColumns: Codable, Sendable, Equatable {
    var id: String
    var name: String?
    var vcpus: Int
    var memoryMB: Int
    var rootGB: Int
    var ephemeralGB: Int
    var swap: Int
    var extraSpecs: String

    init(_ row: InstanceRow) {
        id = row.flavorID; name = row.flavorName; vcpus = row.vcpus; memoryMB = row.memoryMB; rootGB = row.rootGB
        ephemeralGB = row.ephemeralGB; swap = row.swap; extraSpecs = row.flavorExtraSpecs
    }

    init(_ flavor: FlavorRow) {
        id = flavor.id; name = flavor.name; vcpus = flavor.vcpus; memoryMB = flavor.memoryMB; rootGB = flavor.rootGB
        ephemeralGB = flavor.ephemeralGB; swap = flavor.swap; extraSpecs = flavor.extraSpecs
    }

    func apply(to row: inout InstanceRow) {
        row.flavorID = id; row.flavorName = name; row.vcpus = vcpus; row.memoryMB = memoryMB; row.rootGB = rootGB
        row.ephemeralGB = ephemeralGB; row.swap = swap; row.flavorExtraSpecs = extraSpecs
    }

    var spec: InstanceSpec.Flavor {
        InstanceSpec.Flavor(id: id, name: name ?? id, vcpus: vcpus, memoryMB: memoryMB, rootGB: rootGB, ephemeralGB: ephemeralGB,
                            swapMB: swap, extraSpecs: JSONColumn.decode(extraSpecs, fallback: [:]))
    }
}

/// One of Nova's migrations: a resize (`resize`) or a cold migration (`migration`) of a server,
/// from its start to its confirmation, revert or failure.
public struct MigrationRecord: Sendable, Equatable {
    public var id: Int64
    public var uuid: String
    public var instanceID: String
    /// `resize` or `migration`, as Nova's `migration_type`.
    public var type: String
    /// Nova's statuses: pre-migrating, migrating, finished, confirming, confirmed, reverting,
    /// reverted, error.
    public var status: String
    public var sourceCompute: String?
    public var destCompute: String?
    public var sourceNode: String?
    public var destNode: String?
    public var destHost: String?
    var oldFlavor: FlavorColumns
    var newFlavor: FlavorColumns
    /// The VM state the server was in when it began (what a revert goes back to).
    public var oldVMState: String
    public var projectID: String
    public var userID: String
    /// Unix milliseconds.
    public var createdAt: Int64
    public var updatedAt: Int64

    public var oldFlavorID: String { oldFlavor.id }
    public var newFlavorID: String { newFlavor.id }

    /// Statuses in which the migration still holds resources (its consumer in Placement).
    static let holding = ["pre-migrating", "migrating", "finished", "confirming", "reverting"]

    static let columns = """
        SELECT id, uuid, instance_uuid, migration_type, status, source_compute, dest_compute, source_node, dest_node, dest_host,
               old_flavor, new_flavor, old_vm_state, project_id, user_id, created_at, updated_at FROM migrations
        """

    init(_ row: any SQLRow) throws {
        id = try row.decode(column: "id", as: Int64.self)
        uuid = try row.decode(column: "uuid", as: String.self)
        instanceID = try row.decode(column: "instance_uuid", as: String.self)
        type = try row.decode(column: "migration_type", as: String.self)
        status = try row.decode(column: "status", as: String.self)
        sourceCompute = try row.decode(column: "source_compute", as: String?.self)
        destCompute = try row.decode(column: "dest_compute", as: String?.self)
        sourceNode = try row.decode(column: "source_node", as: String?.self)
        destNode = try row.decode(column: "dest_node", as: String?.self)
        destHost = try row.decode(column: "dest_host", as: String?.self)
        let old = try row.decode(column: "old_flavor", as: String.self), new = try row.decode(column: "new_flavor", as: String.self)
        guard let oldFlavor = try? JSONDecoder().decode(FlavorColumns.self, from: Data(old.utf8)),
              let newFlavor = try? JSONDecoder().decode(FlavorColumns.self, from: Data(new.utf8)) else {
            throw Servers.Failure.internalError("migration \(uuid) has unreadable flavors")
        }
        self.oldFlavor = oldFlavor
        self.newFlavor = newFlavor
        oldVMState = try row.decode(column: "old_vm_state", as: String.self)
        projectID = try row.decode(column: "project_id", as: String.self)
        userID = try row.decode(column: "user_id", as: String.self)
        createdAt = try row.decode(column: "created_at", as: Int64.self)
        updatedAt = try row.decode(column: "updated_at", as: Int64.self)
    }

    /// The newest migration of an instance (in `statuses`, if given).
    static func latest(_ sql: any SQLDatabase, instanceID: String, statuses: [String]? = nil) async throws -> MigrationRecord? {
        let filter: SQLQueryString = statuses.map { " AND status IN (\(binds: $0))" } ?? ""
        return try await sql.raw("""
            \(unsafeRaw: columns) WHERE instance_uuid = \(bind: instanceID)\(filter) ORDER BY created_at DESC, id DESC LIMIT 1
            """).first().map(MigrationRecord.init)
    }

    static func setStatus(_ sql: any SQLDatabase, id: Int64, _ status: String) async throws {
        try await sql.raw("UPDATE migrations SET status = \(bind: status), updated_at = \(bind: Servers.now()) WHERE id = \(bind: id)").run()
    }

    /// Releases what the migrations of a deleted instance still held, and marks the unfinished
    /// ones as errors (Nova keeps migration records after the instance).
    static func forget(_ sql: any SQLDatabase, instanceID: String) async throws {
        let open = try await sql.raw("""
            \(unsafeRaw: columns) WHERE instance_uuid = \(bind: instanceID) AND status IN (\(binds: holding))
            """).all().map(MigrationRecord.init)
        for migration in open {
            try await PlacementStore.release(sql, consumer: migration.uuid)
            try await setStatus(sql, id: migration.id, "error")
        }
    }
}

/// Nova's `migrations` listing (`os-migrations`), with its filters.
public struct MigrationQuery: Sendable {
    public var host: String?
    public var status: String?
    public var instanceID: String?
    public var type: String?
    public var sourceCompute: String?
    public var projectID: String?
    public var userID: String?
    /// Unix milliseconds: `changes-since` (updated at or after) and `changes-before` (at or before).
    public var changesSince: Int64?
    public var changesBefore: Int64?
    public var limit: Int?
    /// The uuid of the last migration of the previous page.
    public var marker: String?

    public init() {}
}

extension Servers {
    public enum MigrationFailure: Error, Equatable {
        case markerNotFound(String)
    }

    /// Migrations, newest first (Nova orders by `created_at` descending, then `id`).
    public func migrations(_ query: MigrationQuery) async throws -> [MigrationRecord] {
        try await database.withConnection { sql in
            var conditions: [SQLQueryString] = []
            if let host = query.host { conditions.append("(source_compute = \(bind: host) OR dest_compute = \(bind: host))") }
            if let status = query.status { conditions.append("status = \(bind: status)") }
            if let id = query.instanceID { conditions.append("instance_uuid = \(bind: id)") }
            if let type = query.type { conditions.append("migration_type = \(bind: type)") }
            if let source = query.sourceCompute { conditions.append("source_compute = \(bind: source)") }
            if let project = query.projectID { conditions.append("project_id = \(bind: project)") }
            if let user = query.userID { conditions.append("user_id = \(bind: user)") }
            if let since = query.changesSince { conditions.append("updated_at >= \(bind: since)") }
            if let before = query.changesBefore { conditions.append("updated_at <= \(bind: before)") }
            if let marker = query.marker {
                guard let row = try await sql.raw("SELECT created_at, id FROM migrations WHERE uuid = \(bind: marker)").first() else {
                    throw MigrationFailure.markerNotFound(marker)
                }
                let created = try row.decode(column: "created_at", as: Int64.self), id = try row.decode(column: "id", as: Int64.self)
                conditions.append("(created_at < \(bind: created) OR (created_at = \(bind: created) AND id < \(bind: id)))")
            }
            var statement: SQLQueryString = "\(unsafeRaw: MigrationRecord.columns)"
            for (index, condition) in conditions.enumerated() { statement = statement + (index == 0 ? " WHERE " : " AND ") + condition }
            statement = statement + " ORDER BY created_at DESC, id DESC"
            if let limit = query.limit { statement = statement + " LIMIT \(bind: limit)" }
            return try await sql.raw(statement).all().map(MigrationRecord.init)
        }
    }

    /// Starts a resize (`flavorRef`) or a cold migration (nil; `host`: the one an admin named,
    /// 2.56): checks what Nova checks, sets `resize_prep` and records the migration
    /// (`pre-migrating`). The conductor then claims the resources and asks the host.
    public func beginResize(_ id: String, flavorRef: String?, host: String?, allowSameHost: Bool, by caller: ServerCaller) async throws
        -> MigrationRecord {
        let current = try await get(id, by: caller)
        var newFlavor = FlavorColumns(current.row)
        if let flavorRef {
            guard let flavor = try await visibleFlavor(flavorRef, to: caller) else {
                throw Failure.badRequest("Unable to locate requested flavor.")
            }
            guard flavor.id != current.row.flavorID else { throw Failure.badRequest("When resizing, instances must change flavor!") }
            if !current.row.rootOnVolume {
                if flavor.row.rootGB == 0 && current.row.rootGB != 0 {
                    throw Failure.badRequest("Server disk was unable to be resized because: Resize to zero disk flavor is not allowed.")
                }
                if flavor.row.ephemeralGB < current.row.ephemeralGB {
                    throw Failure.badRequest("Server disk was unable to be resized because: the flavor's ephemeral disk (\(flavor.row.ephemeralGB) GB) is smaller than the server's (\(current.row.ephemeralGB) GB).")
                }
                if flavor.row.rootGB < current.row.rootGB {
                    throw Failure.badRequest("Server disk was unable to be resized because: the flavor's root disk (\(flavor.row.rootGB) GB) is smaller than the server's (\(current.row.rootGB) GB).")
                }
            }
            newFlavor = FlavorColumns(flavor.row)
        }
        if let host {
            try await checkHost(host)
            if host == current.row.host && !allowSameHost {
                throw Failure.badRequest("The target host can't be the same one.")
            }
        }
        let limits = try await quotas.limits(project: current.row.projectID)
        let target = newFlavor
        return try await database.transaction { sql in
            guard var row = try await ComputeTables.instances.lockedGet(sql, id: id), caller.isAdmin || row.projectID == caller.projectID else {
                throw Failure.notFound(id)
            }
            try Self.checkLock(row, caller)
            let name = flavorRef == nil ? "migrate" : "resize"
            guard let state = row.vm, [.active, .stopped].contains(state), row.task == nil else { throw Self.stateConflict(name, row) }
            guard let source = row.host else {
                throw Failure.conflict("Cannot '\(name)' instance \(id) while it is in vm_state \(row.vmState)")
            }
            // Room in the quota for a bigger flavor (Nova's upsize check).
            if flavorRef != nil {
                let used = try await Quotas.instanceUsage(sql, project: row.projectID)
                for (resource, delta) in [("cores", target.vcpus - row.vcpus), ("ram", target.memoryMB - row.memoryMB)] where delta > 0 {
                    guard let limit = limits[resource], limit >= 0, used[resource]! + delta > limit else { continue }
                    throw Failure.quota("Quota exceeded for \(resource): Requested \(delta), but already used \(used[resource]!) of \(limit) \(resource)")
                }
            }
            let now = Self.now()
            if database.backend == .postgresql {
                // Integer ids, one writer at a time across controllers.
                try await sql.raw("SELECT pg_advisory_xact_lock(7202)").run()
            }
            let number = try await sql.raw("SELECT COALESCE(MAX(id), 0) + 1 AS n FROM migrations").first()!.decode(column: "n", as: Int64.self)
            let uuid = UUID().uuidString.lowercased()
            try await sql.raw("""
                INSERT INTO migrations (id, uuid, instance_uuid, migration_type, status, source_compute, dest_compute, source_node,
                                        dest_node, dest_host, old_flavor, new_flavor, old_vm_state, project_id, user_id, created_at, updated_at)
                VALUES (\(bind: number), \(bind: uuid), \(bind: id), \(bind: flavorRef == nil ? "migration" : "resize"), 'pre-migrating',
                        \(bind: source), \(bind: host), \(bind: source), \(bind: host), \(bind: host),
                        \(bind: JSONColumn.encode(FlavorColumns(row), fallback: "{}")), \(bind: JSONColumn.encode(target, fallback: "{}")),
                        \(bind: row.vmState), \(bind: row.projectID), \(bind: row.userID), \(bind: now), \(bind: now))
                """).run()
            row.set(task: .resizePrep)
            row.updatedAt = now
            try await ComputeTables.instances.update(sql, id: id, row)
            guard let migration = try await MigrationRecord.latest(sql, instanceID: id) else { throw Failure.internalError("migration lost") }
            return migration
        }
    }

    /// The host was chosen and its resources claimed: the migration runs there.
    static func markMigrating(_ sql: any SQLDatabase, _ migration: MigrationRecord, host: String) async throws {
        try await sql.raw("""
            UPDATE migrations SET status = 'migrating', dest_compute = \(bind: host), dest_node = \(bind: host), dest_host = \(bind: host),
                   updated_at = \(bind: Self.now()) WHERE id = \(bind: migration.id)
            """).run()
    }

    /// No host could take it: the server stays as it was, the migration ends in error and the
    /// action's event says why (Nova's conductor does the same; the API already answered 202).
    public func resizeUnscheduled(_ id: String, migrationID: Int64, reason: String) async throws {
        try await database.transaction { sql in
            try await MigrationRecord.setStatus(sql, id: migrationID, "error")
            guard var row = try await ComputeTables.instances.lockedGet(sql, id: id), row.task == .resizePrep else { return }
            row.set(task: nil)
            row.updatedAt = Self.now()
            try await ComputeTables.instances.update(sql, id: id, row)
            try await Self.finishEvents(sql, instanceID: id, succeeded: false, host: row.host, details: reason)
        }
    }

    /// Starts a confirm (`confirmResize`) or a revert (`revertResize`) of a resized server:
    /// its finished migration moves to `confirming` / `reverting` with the task, in one transaction.
    public func beginResizeEnd(_ key: String, on id: String, by caller: ServerCaller) async throws -> (Server, String, InstanceAction.Action) {
        guard let transition = Self.transitions[key] else { throw Failure.badRequest("Unknown action \(key).") }
        let server = try await database.transaction { sql in
            guard var row = try await ComputeTables.instances.lockedGet(sql, id: id), caller.isAdmin || row.projectID == caller.projectID else {
                throw Failure.notFound(id)
            }
            try Self.checkLock(row, caller)
            guard let state = row.vm, transition.allowed.contains(state), row.task == nil, row.host != nil else {
                throw Self.stateConflict(transition.name, row)
            }
            guard let migration = try await MigrationRecord.latest(sql, instanceID: id, statuses: ["finished"]) else {
                throw Failure.badRequest("Instance has not been resized.")
            }
            try await MigrationRecord.setStatus(sql, id: migration.id, transition.action == .confirmResize ? "confirming" : "reverting")
            row.set(task: transition.task)
            row.updatedAt = Self.now()
            try await ComputeTables.instances.update(sql, id: id, row)
            return Server(row)
        }
        return (server, server.row.host ?? "", transition.action)
    }

    /// A resize the host could not be asked to do: the server keeps its flavor and resources.
    public func resizeNotSent(_ id: String, reason: String) async throws {
        try await database.transaction { sql in
            guard var row = try await ComputeTables.instances.lockedGet(sql, id: id), row.task == .resizeMigrating else { return }
            if let migration = try await MigrationRecord.latest(sql, instanceID: id, statuses: ["migrating"]) {
                try await Self.giveBack(sql, migration, instanceID: id)
                try await MigrationRecord.setStatus(sql, id: migration.id, "error")
            }
            row.set(task: nil)
            row.updatedAt = Self.now()
            try await ComputeTables.instances.update(sql, id: id, row)
            try await Self.finishEvents(sql, instanceID: id, succeeded: false, host: row.host, details: reason)
        }
    }

    /// Resizes a controller left in `resize_prep` when it stopped (their migration pre-migrating).
    public func waitingResizes() async throws -> [String] {
        try await database.withConnection { sql in
            try await ComputeTables.instances.all(sql, where: [.equals("task_state", TaskState.resizePrep.rawValue)]).map(\.id)
        }
    }

    /// What a node needs to resize or revert: the flavor to define and whether the guest runs.
    func resizeSpec(_ sql: any SQLDatabase, _ row: InstanceRow) async throws -> InstanceSpec.Resize? {
        switch row.task {
        case .resizeMigrating?:
            guard let migration = try await MigrationRecord.latest(sql, instanceID: row.id, statuses: ["migrating"]) else { return nil }
            return InstanceSpec.Resize(flavor: migration.newFlavor.spec, powerOn: migration.oldVMState == VMState.active.rawValue)
        case .resizeReverting?:
            guard let migration = try await MigrationRecord.latest(sql, instanceID: row.id, statuses: ["reverting"]) else { return nil }
            return InstanceSpec.Resize(flavor: migration.oldFlavor.spec, powerOn: migration.oldVMState == VMState.active.rawValue)
        default:
            return nil
        }
    }

    /// Applies the end of a resize task a node reported, in the transaction of `apply`:
    /// the flavor, the migration's status and the allocations follow.
    static func finishResizeTask(_ sql: any SQLDatabase, _ task: TaskState, done: Bool, row: inout InstanceRow) async throws {
        switch task {
        case .resizeMigrating:
            guard let migration = try await MigrationRecord.latest(sql, instanceID: row.id, statuses: ["migrating"]) else { return }
            if done && row.vm == .resized {
                migration.newFlavor.apply(to: &row)
                try await MigrationRecord.setStatus(sql, id: migration.id, "finished")
            } else {
                // The node put the old disks and domain back: so go the resources.
                try await giveBack(sql, migration, instanceID: row.id)
                try await MigrationRecord.setStatus(sql, id: migration.id, "error")
            }
        case .resizeConfirming:
            guard let migration = try await MigrationRecord.latest(sql, instanceID: row.id, statuses: ["confirming"]) else { return }
            if done {
                try await PlacementStore.release(sql, consumer: migration.uuid)
                try await MigrationRecord.setStatus(sql, id: migration.id, "confirmed")
            } else {
                try await MigrationRecord.setStatus(sql, id: migration.id, "error")
            }
        case .resizeReverting:
            guard let migration = try await MigrationRecord.latest(sql, instanceID: row.id, statuses: ["reverting"]) else { return }
            if done {
                migration.oldFlavor.apply(to: &row)
                try await giveBack(sql, migration, instanceID: row.id)
                try await MigrationRecord.setStatus(sql, id: migration.id, "reverted")
            } else {
                try await MigrationRecord.setStatus(sql, id: migration.id, "error")
            }
        default:
            break
        }
    }

    /// The instance holds again what it held before the resize (the migration's allocations).
    static func giveBack(_ sql: any SQLDatabase, _ migration: MigrationRecord, instanceID: String) async throws {
        let held = try await PlacementStore.allocations(sql, consumer: migration.uuid)
        guard !held.isEmpty else { return }
        var allocations: [String: [String: Int]] = [:]
        for allocation in held { allocations[allocation.providerUUID, default: [:]][allocation.resourceClass] = allocation.used }
        try await PlacementStore.replaceAllocations(sql, consumer: instanceID, projectID: migration.projectID, userID: migration.userID,
                                                    consumerType: PlacementStore.instanceConsumerType, allocations: allocations,
                                                    check: false)
        try await PlacementStore.release(sql, consumer: migration.uuid)
    }
}

extension Scheduler {
    /// Claims a resize's (or cold migration's) resources, in one transaction: the server's
    /// present allocation moves to the migration (Nova's migration-based allocations, kept for
    /// a revert) and the server claims the new flavor. Petrel moves servers within their host
    /// only (moving disks between hosts comes with the multi-host work), so the one candidate
    /// is the server's own host, when `allow_resize_to_same_host` allows it. Returns the host,
    /// or nil when the server no longer waits for one.
    public func claimResize(instanceID: String, allowSameHost: Bool) async throws -> String? {
        let database = hosts.store.database
        return try await database.transaction { sql -> String? in
            if database.backend == .postgresql { try await sql.raw("SELECT pg_advisory_xact_lock(7201)").run() }
            guard var row = try await ComputeTables.instances.lockedGet(sql, id: instanceID), row.task == .resizePrep, let source = row.host,
                  let migration = try await MigrationRecord.latest(sql, instanceID: instanceID, statuses: ["pre-migrating"]) else { return nil }
            if let target = migration.destHost, target != source {
                throw Failure.noValidHost("No valid host was found. This cloud moves servers within their host only; \(target) is another host.")
            }
            guard allowSameHost else {
                throw Failure.noValidHost("No valid host was found. This cloud resizes and migrates servers within their host only, and allow_resize_to_same_host is False.")
            }
            // The server's host, if it is up and enabled and has room for the new flavor on top of
            // what the server holds now (a revert needs that back).
            let now = Date()
            let service = try await sql.raw("""
                \(ServiceStore.serviceColumns) WHERE service_binary = 'nova-compute' AND host = \(bind: source)
                """).all().map(ServiceStore.serviceRecord).map { hosts.status($0, now: now) }.first
            guard let service, service.up, service.enabled else { throw Failure.noValidHost("There are not enough hosts available.") }
            var resized = row
            migration.newFlavor.apply(to: &resized)
            let wanted = PlacementStore.resources(of: resized)
            guard let room = try await PlacementStore.room(sql, for: wanted, excluding: "")[source], room.fits else {
                throw Failure.noValidHost("There are not enough hosts available.")
            }
            let held = try await PlacementStore.allocations(sql, consumer: instanceID)
            var moved: [String: [String: Int]] = [:]
            for allocation in held { moved[allocation.providerUUID, default: [:]][allocation.resourceClass] = allocation.used }
            if !moved.isEmpty {
                try await PlacementStore.replaceAllocations(sql, consumer: migration.uuid, projectID: row.projectID, userID: row.userID,
                                                            consumerType: "MIGRATION", allocations: moved, check: false)
            }
            try await PlacementStore.replaceAllocations(sql, consumer: instanceID, projectID: row.projectID, userID: row.userID,
                                                        consumerType: PlacementStore.instanceConsumerType,
                                                        allocations: [room.provider: wanted], check: false)
            try await Servers.markMigrating(sql, migration, host: source)
            row.set(task: .resizeMigrating)
            row.updatedAt = Int64(now.timeIntervalSince1970 * 1000)
            try await ComputeTables.instances.update(sql, id: instanceID, row)
            return source
        }
    }
}
