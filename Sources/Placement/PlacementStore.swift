import Foundation
import SQLKit
import Store

/// A request Placement refuses: its HTTP status, its words, and Placement's error code
/// (`placement.concurrent_update`, …; nil for `placement.undefined_code`).
public struct PlacementFailure: Error, Equatable, CustomStringConvertible {
    public let status: Int
    public let message: String
    public let code: String?

    public init(_ status: Int, _ message: String, code: String? = nil) {
        self.status = status; self.message = message; self.code = code
    }

    public static func badRequest(_ message: String, code: String? = nil) -> Self { .init(400, message, code: code) }
    public static func notFound(_ message: String) -> Self { .init(404, message) }
    public static func conflict(_ message: String, code: String? = nil) -> Self { .init(409, message, code: code) }
    /// Someone else changed the provider or consumer since the caller read its generation.
    public static func concurrentUpdate(_ message: String) -> Self { .init(409, message, code: "placement.concurrent_update") }

    public var description: String { "\(status) \(message)" }
}

/// `[scheduler] cpu_allocation_ratio`, `ram_allocation_ratio`, `disk_allocation_ratio`: the
/// allocation ratios of the compute nodes' inventories.
public struct InventoryRatios: Sendable, Equatable {
    public var cpu: Double
    public var ram: Double
    public var disk: Double

    public init(cpu: Double = 16.0, ram: Double = 1.5, disk: Double = 1.0) {
        self.cpu = cpu; self.ram = ram; self.disk = disk
    }
}

/// Placement's state in SQL, read and written inside the caller's transaction: the compute
/// nodes' providers kept in step with their hypervisors, the capacity left on each provider,
/// and the allocations that claim it. The scheduler and the Placement API share these, so
/// allocations are the one record of what is taken.
public enum PlacementStore {
    /// The consumer type of the allocations the scheduler makes for instances.
    public static let instanceConsumerType = "INSTANCE"
    /// The classes a compute node's provider gets from its hypervisor.
    public static let computeClasses: Set<String> = ["VCPU", "MEMORY_MB", "DISK_GB"]

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: reading

    public static func providers(_ sql: any SQLDatabase) async throws -> [ResourceProviderRow] {
        try await PlacementTables.providers.all(sql, where: [], orderBy: "name")
    }

    public static func provider(_ sql: any SQLDatabase, uuid: String) async throws -> ResourceProviderRow? {
        try await PlacementTables.providers.first(sql, where: [.equals("uuid", uuid)])
    }

    /// Every inventory (of one provider, if given), by provider and class.
    public static func inventories(_ sql: any SQLDatabase, provider: String? = nil) async throws -> [String: [String: InventoryRow]] {
        var result: [String: [String: InventoryRow]] = [:]
        for row in try await PlacementTables.inventories.all(sql, where: provider.map { [.equals("provider_uuid", $0)] } ?? []) {
            result[row.providerUUID, default: [:]][row.resourceClass] = row
        }
        return result
    }

    /// What is allocated of each class of each provider, leaving out `excluding`'s allocations.
    public static func usages(_ sql: any SQLDatabase, excluding: Set<String> = []) async throws -> [String: [String: Int]] {
        var result: [String: [String: Int]] = [:]
        if excluding.isEmpty {
            for row in try await sql.raw("""
                SELECT provider_uuid, resource_class, SUM(used) AS used FROM placement_allocations GROUP BY provider_uuid, resource_class
                """).all() {
                result[try row.decode(column: "provider_uuid", as: String.self), default: [:]][try row.decode(column: "resource_class", as: String.self)] =
                    try row.decode(column: "used", as: Int.self)
            }
            return result
        }
        for row in try await PlacementTables.allocations.all(sql) where !excluding.contains(row.consumerUUID) {
            result[row.providerUUID, default: [:]][row.resourceClass, default: 0] += row.used
        }
        return result
    }

    public static func allocations(_ sql: any SQLDatabase, consumer: String) async throws -> [AllocationRow] {
        try await PlacementTables.allocations.all(sql, where: [.equals("consumer_uuid", consumer)])
    }

    public static func consumer(_ sql: any SQLDatabase, uuid: String) async throws -> ConsumerRow? {
        try await PlacementTables.consumers.first(sql, where: [.equals("uuid", uuid)])
    }

    /// Adds one to each provider's generation (its allocations or inventory changed).
    public static func bump(_ sql: any SQLDatabase, providers: Set<String>) async throws {
        guard !providers.isEmpty else { return }
        let list = providers.sorted().map { "\(bind: $0)" as SQLQueryString }
        try await sql.raw("UPDATE resource_providers SET generation = generation + 1, updated_at = \(bind: now()) WHERE uuid IN ("
                          + list.dropFirst().reduce(list[0]) { $0 + ", " + $1 } + ")").run()
    }

    /// Moves a provider from `generation` to the next one; a provider someone else changed since
    /// (another generation) is a 409 `placement.concurrent_update`.
    public static func advance(_ sql: any SQLDatabase, provider uuid: String, from generation: Int) async throws -> Int {
        let rows = try await sql.raw("""
            UPDATE resource_providers SET generation = generation + 1, updated_at = \(bind: now())
            WHERE uuid = \(bind: uuid) AND generation = \(bind: generation) RETURNING generation
            """).all()
        guard let row = rows.first else {
            throw PlacementFailure.concurrentUpdate(
                "resource provider generation conflict: the resource provider \(uuid) was updated by another request; reload it and try again.")
        }
        return try row.decode(column: "generation", as: Int.self)
    }

    // MARK: compute nodes

    /// The inventory a compute node's provider gets from what its node reports, with the
    /// configured allocation ratios (classes the host has none of are left out, as Nova does).
    public static func computeInventory(_ hypervisor: HypervisorRecord, provider: String, ratios: InventoryRatios) -> [String: InventoryRow] {
        var result: [String: InventoryRow] = [:]
        for (resourceClass, total, ratio) in [("VCPU", hypervisor.vcpus, ratios.cpu), ("MEMORY_MB", hypervisor.memoryMB, ratios.ram),
                                              ("DISK_GB", hypervisor.localGB, ratios.disk)] where total > 0 {
            result[resourceClass] = InventoryRow(providerUUID: provider, resourceClass: resourceClass, total: total, maxUnit: total,
                                                 allocationRatio: ratio)
        }
        return result
    }

    /// Keeps one provider per compute node (named after the host; uuid the hypervisor's id,
    /// and stable once made) with the inventory its node last reported, the `COMPUTE_NODE`
    /// trait, and the Nova host aggregates of the host as provider aggregates. Writes only what
    /// differs (bumping the generation of what it changes). Returns each host's provider uuid.
    @discardableResult
    public static func syncComputeProviders(_ sql: any SQLDatabase, ratios: InventoryRatios, hosts: Set<String>? = nil) async throws -> [String: String] {
        let hypervisors = try await ServiceStore.hypervisors(sql).filter { hosts?.contains($0.host) ?? true }
        var byName = Dictionary(try await providers(sql).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let inventory = try await inventories(sql)
        let novaAggregates = try await AggregateTables.aggregates.all(sql)
        var aggregateHosts: [String: Set<String>] = [:]  // aggregate uuid → hosts
        for aggregate in novaAggregates {
            aggregateHosts[aggregate.uuid] = Set((try? JSONDecoder().decode([String].self, from: Data(aggregate.hosts.utf8))) ?? [])
        }
        var providerAggregates: [String: Set<String>] = [:]
        if !novaAggregates.isEmpty {
            for row in try await sql.raw("SELECT provider_uuid, aggregate_uuid FROM placement_provider_aggregates").all() {
                providerAggregates[try row.decode(column: "provider_uuid", as: String.self), default: []]
                    .insert(try row.decode(column: "aggregate_uuid", as: String.self))
            }
        }
        let now = now()
        var result: [String: String] = [:]
        for hypervisor in hypervisors {
            let provider: ResourceProviderRow
            if let existing = byName[hypervisor.host] {
                provider = existing
            } else {
                // Another controller (or report) may be making it at this moment: the first one wins.
                try await sql.raw("""
                    INSERT INTO resource_providers (uuid, name, generation, root_uuid, created_at, updated_at)
                    VALUES (\(bind: hypervisor.id), \(bind: hypervisor.host), 0, \(bind: hypervisor.id), \(bind: now), \(bind: now))
                    ON CONFLICT DO NOTHING
                    """).run()
                guard let made = try await PlacementTables.providers.first(sql, where: [.equals("name", hypervisor.host)]) else { continue }
                provider = made
                try await sql.raw("""
                    INSERT INTO placement_provider_traits (provider_uuid, trait) VALUES (\(bind: provider.uuid), 'COMPUTE_NODE')
                    ON CONFLICT DO NOTHING
                    """).run()
                byName[hypervisor.host] = provider
            }
            result[hypervisor.host] = provider.uuid
            var changed = false
            let desired = computeInventory(hypervisor.resources, provider: provider.uuid, ratios: ratios)
            let current = (inventory[provider.uuid] ?? [:]).filter { computeClasses.contains($0.key) }
            if desired != current {
                for (resourceClass, _) in current where desired[resourceClass] == nil {
                    try await PlacementTables.inventories.delete(sql, where: [.equals("provider_uuid", provider.uuid), .equals("resource_class", resourceClass)])
                }
                for (_, row) in desired where current[row.resourceClass] != row {
                    try await upsert(sql, row)
                }
                changed = true
            }
            // Nova's host aggregates the host is in are aggregates of its provider (and no others of Nova's).
            if !novaAggregates.isEmpty {
                let have = providerAggregates[provider.uuid] ?? []
                let want = Set(aggregateHosts.filter { $0.value.contains(hypervisor.host) }.keys)
                for uuid in want.subtracting(have) {
                    try await sql.raw("""
                        INSERT INTO placement_provider_aggregates (provider_uuid, aggregate_uuid) VALUES (\(bind: provider.uuid), \(bind: uuid))
                        ON CONFLICT DO NOTHING
                        """).run()
                    changed = true
                }
                for uuid in have.intersection(aggregateHosts.keys).subtracting(want) {
                    try await sql.raw("DELETE FROM placement_provider_aggregates WHERE provider_uuid = \(bind: provider.uuid) AND aggregate_uuid = \(bind: uuid)").run()
                    changed = true
                }
            }
            if changed { try await bump(sql, providers: [provider.uuid]) }
        }
        return result
    }

    static func upsert(_ sql: any SQLDatabase, _ row: InventoryRow) async throws {
        try await sql.raw("""
            INSERT INTO placement_inventories (provider_uuid, resource_class, total, reserved, min_unit, max_unit, step_size, allocation_ratio)
            VALUES (\(bind: row.providerUUID), \(bind: row.resourceClass), \(bind: row.total), \(bind: row.reserved), \(bind: row.minUnit),
                    \(bind: row.maxUnit), \(bind: row.stepSize), \(bind: row.allocationRatio))
            ON CONFLICT (provider_uuid, resource_class) DO UPDATE SET total = excluded.total, reserved = excluded.reserved,
                min_unit = excluded.min_unit, max_unit = excluded.max_unit, step_size = excluded.step_size,
                allocation_ratio = excluded.allocation_ratio
            """).run()
    }

    /// Replaces the traits a node reports for its compute node's provider (standard traits
    /// only: CPU flags and what Petrel's driver supports), as Nova's resource tracker does:
    /// the node owns the standard `HW_CPU_*` and `COMPUTE_*` traits; `CUSTOM_*` ones are the users'.
    public static func syncReportedTraits(_ sql: any SQLDatabase, host: String, traits: Set<String>) async throws {
        guard let provider = try await PlacementTables.providers.first(sql, where: [.equals("name", host)]) else { return }
        let have = Set(try await sql.raw("SELECT trait FROM placement_provider_traits WHERE provider_uuid = \(bind: provider.uuid)").all()
            .map { try $0.decode(column: "trait", as: String.self) })
        let want = traits.filter(StandardTraits.names.contains).union(["COMPUTE_NODE"])
        let add = want.subtracting(have)
        let drop = have.subtracting(want).filter { $0.hasPrefix("HW_CPU_") || $0.hasPrefix("COMPUTE_") }
        guard !add.isEmpty || !drop.isEmpty else { return }
        for trait in add.sorted() {
            try await sql.raw("INSERT INTO placement_provider_traits (provider_uuid, trait) VALUES (\(bind: provider.uuid), \(bind: trait)) ON CONFLICT DO NOTHING").run()
        }
        for trait in drop.sorted() {
            try await sql.raw("DELETE FROM placement_provider_traits WHERE provider_uuid = \(bind: provider.uuid) AND trait = \(bind: trait)").run()
        }
        try await bump(sql, providers: [provider.uuid])
    }

    /// Whether some hypervisor has no resource provider yet (a new node): then the scheduler
    /// syncs before it reads capacity; otherwise the nodes' reports keep the providers current.
    public static func providersMissing(_ sql: any SQLDatabase) async throws -> Bool {
        try await sql.raw("""
            SELECT h.host FROM hypervisors h WHERE NOT EXISTS (SELECT 1 FROM resource_providers p WHERE p.name = h.host) LIMIT 1
            """).first() != nil
    }

    /// What the scheduler reads for one claim, in one statement: for every provider with an
    /// inventory of the classes of `resources`, what is free of each (capacity less every
    /// allocation but `excluding`'s) and whether the amount asked fits it (Placement's checks:
    /// min/max unit, step size, capacity). Keyed by provider name (the host of a compute node).
    public static func room(_ sql: any SQLDatabase, for resources: [String: Int], excluding: String)
        async throws -> [String: (provider: String, free: [String: Int], fits: Bool)] {
        let classes = ["VCPU", "MEMORY_MB", "DISK_GB"]
        let amounts = classes.map { resources[$0] ?? 0 }
        // (total − reserved) × ratio, rounded down as Placement does, in each dialect.
        let capacity: SQLQueryString = sql.dialect.name == "postgresql"
            ? "FLOOR((i.total - i.reserved) * i.allocation_ratio)::BIGINT" : "CAST((i.total - i.reserved) * i.allocation_ratio AS INTEGER)"
        let amount: SQLQueryString = """
            (CASE i.resource_class WHEN 'VCPU' THEN \(bind: amounts[0]) WHEN 'MEMORY_MB' THEN \(bind: amounts[1]) ELSE \(bind: amounts[2]) END)
            """
        let rows = try await sql.raw("""
            SELECT p.name, p.uuid, i.resource_class, \(capacity) - COALESCE(u.used, 0) AS free,
                   CASE WHEN \(amount) >= i.min_unit AND \(amount) <= i.max_unit AND \(amount) % i.step_size = 0
                             AND COALESCE(u.used, 0) + \(amount) <= \(capacity) THEN 1 ELSE 0 END AS fits
            FROM resource_providers p JOIN placement_inventories i ON i.provider_uuid = p.uuid
            LEFT JOIN (SELECT provider_uuid, resource_class, SUM(used) AS used FROM placement_allocations
                       WHERE consumer_uuid <> \(bind: excluding) GROUP BY provider_uuid, resource_class) u
                   ON u.provider_uuid = i.provider_uuid AND u.resource_class = i.resource_class
            WHERE i.resource_class IN ('VCPU', 'MEMORY_MB', 'DISK_GB')
            """).all()
        var result: [String: (provider: String, free: [String: Int], fits: Bool)] = [:]
        var fitting: [String: Set<String>] = [:]
        for row in rows {
            let name = try row.decode(column: "name", as: String.self), resourceClass = try row.decode(column: "resource_class", as: String.self)
            if result[name] == nil { result[name] = (try row.decode(column: "uuid", as: String.self), [:], false) }
            result[name]!.free[resourceClass] = try row.decode(column: "free", as: Int.self)
            if try row.decode(column: "fits", as: Int.self) == 1 { fitting[name, default: []].insert(resourceClass) }
        }
        let wanted = Set(resources.filter { $0.value > 0 }.keys)
        for name in result.keys { result[name]!.fits = wanted.isSubset(of: fitting[name] ?? []) }
        return result
    }

    // MARK: allocations

    /// What an instance claims of its host, as Nova asks Placement for it: its vCPUs, RAM, and
    /// local disk (root unless it boots from a volume, ephemeral, swap rounded up to GB).
    public static func resources(of instance: InstanceRow) -> [String: Int] {
        let disk = (instance.rootOnVolume ? 0 : instance.rootGB) + instance.ephemeralGB + (instance.swap + 1023) / 1024
        return ["VCPU": instance.vcpus, "MEMORY_MB": instance.memoryMB, "DISK_GB": disk].filter { $0.value > 0 }
    }

    /// Why `amount` of `resourceClass` does not fit `inventory` with `used` already taken, or nil.
    public static func misfit(_ amount: Int, of resourceClass: String, on provider: String, inventory: InventoryRow?, used: Int) -> PlacementFailure? {
        guard let inventory else {
            return .conflict("Inventory for '\(resourceClass)' on resource provider '\(provider)' invalid.")
        }
        if amount < inventory.minUnit || amount > inventory.maxUnit || amount % inventory.stepSize != 0 {
            return .badRequest("Unable to allocate inventory: Unable to create allocation for '\(resourceClass)' on resource provider '\(provider)'. "
                               + "The requested amount would violate inventory constraints.")
        }
        if used + amount > inventory.capacity {
            return .conflict("Unable to allocate inventory: Unable to create allocation for '\(resourceClass)' on resource provider '\(provider)'. "
                             + "The requested amount would exceed the capacity.")
        }
        return nil
    }

    /// Replaces every allocation of `consumer` with `allocations` (provider → class → amount),
    /// in the caller's transaction: checks each against the providers' inventories (the
    /// consumer's old allocations no longer count) unless `force`, moves the consumer's
    /// generation on (creating the consumer), and bumps the generation of every provider whose
    /// allocations change. Empty `allocations` releases the consumer.
    public static func replaceAllocations(_ sql: any SQLDatabase, consumer: String, projectID: String, userID: String,
                                          consumerType: String? = nil, allocations: [String: [String: Int]],
                                          check: Bool = true) async throws {
        if allocations.values.allSatisfy(\.isEmpty) {
            _ = try await release(sql, consumer: consumer)
            return
        }
        if check {
            let inventory = try await inventories(sql)
            let used = try await usages(sql, excluding: [consumer])
            for (provider, resources) in allocations.sorted(by: { $0.key < $1.key }) {
                guard try await self.provider(sql, uuid: provider) != nil else {
                    throw PlacementFailure.badRequest("Allocation for resource provider '\(provider)' that does not exist.")
                }
                for (resourceClass, amount) in resources.sorted(by: { $0.key < $1.key }) {
                    if let failure = misfit(amount, of: resourceClass, on: provider, inventory: inventory[provider]?[resourceClass],
                                            used: used[provider]?[resourceClass] ?? 0) { throw failure }
                }
            }
        }
        let now = now()
        // The old allocations go (their providers noted), the new ones go in with one statement.
        let old = try await sql.raw("DELETE FROM placement_allocations WHERE consumer_uuid = \(bind: consumer) RETURNING provider_uuid").all()
            .map { try $0.decode(column: "provider_uuid", as: String.self) }
        var values: [SQLQueryString] = []
        for (provider, resources) in allocations.sorted(by: { $0.key < $1.key }) {
            for (resourceClass, amount) in resources.sorted(by: { $0.key < $1.key }) {
                values.append("(\(bind: provider), \(bind: consumer), \(bind: resourceClass), \(bind: amount), \(bind: now))")
            }
        }
        let rows = values.dropFirst().reduce(values[0]) { $0 + ", " + $1 }
        try await sql.raw("INSERT INTO placement_allocations (provider_uuid, consumer_uuid, resource_class, used, created_at) VALUES " + rows).run()
        // The consumer: made at generation 1, or moved to its next generation.
        try await sql.raw("""
            INSERT INTO placement_consumers (uuid, project_id, user_id, generation, consumer_type, created_at, updated_at)
            VALUES (\(bind: consumer), \(bind: projectID), \(bind: userID), 1, \(bind: consumerType), \(bind: now), \(bind: now))
            ON CONFLICT (uuid) DO UPDATE SET generation = placement_consumers.generation + 1, project_id = excluded.project_id,
                user_id = excluded.user_id, consumer_type = COALESCE(excluded.consumer_type, placement_consumers.consumer_type),
                updated_at = excluded.updated_at
            """).run()
        try await bump(sql, providers: Set(old).union(allocations.keys))
    }

    /// Releases everything `consumer` holds: its allocations go (the capacity is free again
    /// for the scheduler and every Placement client), with the consumer record, and the
    /// generation of each provider it held moves on. Returns whether it held anything.
    ///
    /// Call it, in the same transaction, wherever an instance stops holding its host: it is
    /// deleted, its build fails there and it is rescheduled, it is shelved off, it moves.
    @discardableResult
    public static func release(_ sql: any SQLDatabase, consumer: String) async throws -> Bool {
        let old = try await allocations(sql, consumer: consumer)
        try await PlacementTables.allocations.delete(sql, where: [.equals("consumer_uuid", consumer)])
        try await PlacementTables.consumers.delete(sql, where: [.equals("uuid", consumer)])
        if !old.isEmpty { try await bump(sql, providers: Set(old.map(\.providerUUID))) }
        return !old.isEmpty
    }

    /// Claims `instance`'s resources on `host`'s provider as its allocation (consumer = the
    /// instance's uuid), unchecked: the scheduler has checked them in the same transaction,
    /// or an admin forced the host.
    public static func claim(_ sql: any SQLDatabase, instance: InstanceRow, providerUUID: String) async throws {
        try await replaceAllocations(sql, consumer: instance.id, projectID: instance.projectID, userID: instance.userID,
                                     consumerType: instanceConsumerType, allocations: [providerUUID: resources(of: instance)], check: false)
    }

    /// Brings allocations in line with the instances after an upgrade or a crash: every
    /// instance placed on a host gets its allocation there if it has none, and allocations the
    /// scheduler made for instances that are gone (or hold no host any more) are released.
    /// Returns how many it (created, released).
    @discardableResult
    public static func reconcileInstances(_ sql: any SQLDatabase, ratios: InventoryRatios) async throws -> (created: Int, released: Int) {
        let hostProviders = try await syncComputeProviders(sql, ratios: ratios)
        let instances = try await ComputeTables.instances.all(sql, where: "host IS NOT NULL")
        let holding = Set(try await sql.raw("SELECT DISTINCT consumer_uuid FROM placement_allocations").all()
            .map { try $0.decode(column: "consumer_uuid", as: String.self) })
        var created = 0
        for instance in instances where !holding.contains(instance.id) {
            guard let host = instance.host, let provider = hostProviders[host] else { continue }
            try await claim(sql, instance: instance, providerUUID: provider)
            created += 1
        }
        let placed = Set(instances.map(\.id))
        var released = 0
        for consumer in try await PlacementTables.consumers.all(sql, where: [.equals("consumer_type", instanceConsumerType)])
        where !placed.contains(consumer.uuid) {
            if try await release(sql, consumer: consumer.uuid) { released += 1 }
        }
        // What a resize kept for its revert (consumer = the migration) goes once the migration is over.
        let open = Set(try await sql.raw("""
            SELECT uuid FROM migrations WHERE status IN ('pre-migrating', 'migrating', 'finished', 'confirming', 'reverting')
            """).all().map { try $0.decode(column: "uuid", as: String.self) })
        for consumer in try await PlacementTables.consumers.all(sql, where: [.equals("consumer_type", "MIGRATION")])
        where !open.contains(consumer.uuid) {
            if try await release(sql, consumer: consumer.uuid) { released += 1 }
        }
        return (created, released)
    }
}
