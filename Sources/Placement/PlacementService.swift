import Foundation
import SQLKit
import Store

/// A resource provider with its place in its tree.
public struct Provider: Sendable, Equatable {
    public let uuid: String
    public let name: String
    public let generation: Int
    public let parentUUID: String?
    public let rootUUID: String
    public let updatedAt: Int64

    init(_ row: ResourceProviderRow) {
        uuid = row.uuid; name = row.name; generation = row.generation; parentUUID = row.parentUUID; rootUUID = row.rootUUID
        updatedAt = row.updatedAt
    }
}

/// Which providers `GET /resource_providers` lists.
public struct ProviderFilter: Sendable {
    public var name: String?
    public var uuid: String?
    /// Each entry: the provider is in at least one of these aggregates (all entries must hold).
    public var memberOf: [Set<String>] = []
    /// In none of these aggregates (1.32).
    public var forbiddenAggregates: Set<String> = []
    /// Capacity left for each of these amounts.
    public var resources: [String: Int] = [:]
    /// In the tree of this provider.
    public var inTree: String?
    /// Each entry: at least one of these traits (1.39's `in:`); every entry must hold.
    public var required: [Set<String>] = []
    public var forbidden: Set<String> = []

    public init() {}
}

/// What a consumer holds: per provider, that provider's generation and the amounts.
public struct ConsumerAllocations: Sendable, Equatable {
    public var allocations: [String: (generation: Int, resources: [String: Int])]
    public var projectID: String?
    public var userID: String?
    public var generation: Int?
    /// The consumer's type (1.38); nil for consumers written without one (Placement's `unknown`).
    public var consumerType: String?

    public static func == (left: Self, right: Self) -> Bool {
        left.projectID == right.projectID && left.userID == right.userID && left.generation == right.generation
            && left.consumerType == right.consumerType
            && left.allocations.mapValues { "\($0.generation)\($0.resources.sorted { $0.key < $1.key })" }
            == right.allocations.mapValues { "\($0.generation)\($0.resources.sorted { $0.key < $1.key })" }
    }
}

/// A write of one consumer's allocations (`PUT /allocations/{consumer}` or one entry of `POST /allocations`).
public struct AllocationWrite: Sendable {
    public var allocations: [String: [String: Int]]
    public var projectID: String
    public var userID: String
    /// From 1.28: nil when the client does not send it (older microversions); `.some(nil)`:
    /// the client expects a new consumer; `.some(n)`: the consumer's current generation.
    public var consumerGeneration: Int??
    /// From 1.38: the consumer's type (`INSTANCE`, `MIGRATION`, …); nil keeps the type it has.
    public var consumerType: String?

    public init(allocations: [String: [String: Int]], projectID: String, userID: String, consumerGeneration: Int?? = nil,
                consumerType: String? = nil) {
        self.allocations = allocations; self.projectID = projectID; self.userID = userID; self.consumerGeneration = consumerGeneration
        self.consumerType = consumerType
    }
}

/// Placement's operations for its API, each in one transaction on the controller's database.
public struct PlacementService: Sendable {
    public let database: Database
    public let ratios: InventoryRatios
    /// Placement's `incomplete_consumer_project_id` / `_user_id`: allocations written before 1.8 without them.
    public static let incompleteConsumer = "00000000-0000-0000-0000-000000000000"
    /// The advisory lock the scheduler holds while it claims (PostgreSQL): allocation writes
    /// take it too, so capacity is checked against every concurrent claim.
    static let claimLock = 7201

    public init(database: Database, ratios: InventoryRatios) {
        self.database = database
        self.ratios = ratios
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await database.withConnection(body)
    }

    func write<T: Sendable>(claims: Bool = false, _ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let backend = database.backend
        return try await database.transaction { sql in
            if claims && backend == .postgresql { try await sql.raw("SELECT pg_advisory_xact_lock(\(literal: Self.claimLock))").run() }
            return try await body(sql)
        }
    }

    /// The compute nodes' providers made current with their hypervisors and `[scheduler]`
    /// ratios, and every placed instance's allocation in place (at start and before reads).
    public func reconcile() async throws -> (created: Int, released: Int) {
        let ratios = ratios
        return try await write(claims: true) { sql in try await PlacementStore.reconcileInstances(sql, ratios: ratios) }
    }

    /// Brings the compute nodes' providers in step with what their nodes last reported.
    public func syncComputeNodes() async throws {
        let ratios = ratios
        try await write(claims: true) { sql in _ = try await PlacementStore.syncComputeProviders(sql, ratios: ratios) }
    }

    /// A node reported its standard traits: its compute node's provider gets them.
    public func recordReportedTraits(host: String, traits: [String]) async throws {
        let ratios = ratios
        try await write(claims: true) { sql in
            _ = try await PlacementStore.syncComputeProviders(sql, ratios: ratios, hosts: [host])
            try await PlacementStore.syncReportedTraits(sql, host: host, traits: Set(traits))
        }
    }

    // MARK: names

    static let customName = try! NSRegularExpression(pattern: "^CUSTOM_[A-Z0-9_]+$")

    public static func isCustom(_ name: String) -> Bool {
        customName.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
    }

    static func customClasses(_ sql: any SQLDatabase) async throws -> [String] {
        try await sql.raw("SELECT name FROM placement_resource_classes ORDER BY name").all().map { try $0.decode(column: "name", as: String.self) }
    }

    static func customTraits(_ sql: any SQLDatabase) async throws -> [String] {
        try await sql.raw("SELECT name FROM placement_traits ORDER BY name").all().map { try $0.decode(column: "name", as: String.self) }
    }

    static func classExists(_ sql: any SQLDatabase, _ name: String) async throws -> Bool {
        if StandardResourceClasses.names.contains(name) { return true }
        return try await sql.raw("SELECT name FROM placement_resource_classes WHERE name = \(bind: name)").first() != nil
    }

    /// The traits in `names` that do not exist (standard ones always do).
    static func unknownTraits(_ sql: any SQLDatabase, _ names: Set<String>) async throws -> [String] {
        let custom = Set(try await customTraits(sql))
        return names.filter { !StandardTraits.names.contains($0) && !custom.contains($0) }.sorted()
    }

    /// Refuses unknown resource classes (400, as Placement words it).
    public func checkClasses(_ names: Set<String>) async throws {
        try await read { sql in
            for name in names.sorted() where !(try await Self.classExists(sql, name)) {
                throw PlacementFailure.badRequest("Invalid resource class in resources parameter: No such resource class \(name).")
            }
        }
    }

    /// Refuses unknown traits (400).
    public func checkTraits(_ names: Set<String>) async throws {
        let unknown = try await read { sql in try await Self.unknownTraits(sql, names) }
        if !unknown.isEmpty { throw PlacementFailure.badRequest("No such trait(s): \(unknown.joined(separator: ", ")).") }
    }

    // MARK: resource providers

    static func providerOrFail(_ sql: any SQLDatabase, _ uuid: String) async throws -> ResourceProviderRow {
        guard let row = try await PlacementStore.provider(sql, uuid: uuid) else {
            throw PlacementFailure.notFound("No resource provider with uuid \(uuid) found")
        }
        return row
    }

    static func traitsByProvider(_ sql: any SQLDatabase) async throws -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        for row in try await sql.raw("SELECT provider_uuid, trait FROM placement_provider_traits").all() {
            result[try row.decode(column: "provider_uuid", as: String.self), default: []].insert(try row.decode(column: "trait", as: String.self))
        }
        return result
    }

    static func aggregatesByProvider(_ sql: any SQLDatabase) async throws -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        for row in try await sql.raw("SELECT provider_uuid, aggregate_uuid FROM placement_provider_aggregates").all() {
            result[try row.decode(column: "provider_uuid", as: String.self), default: []].insert(try row.decode(column: "aggregate_uuid", as: String.self))
        }
        return result
    }

    public func providers(_ filter: ProviderFilter) async throws -> [Provider] {
        try await read { sql in
            let all = try await PlacementStore.providers(sql)
            var rows = all
            if let name = filter.name { rows = rows.filter { $0.name == name } }
            if let uuid = filter.uuid { rows = rows.filter { $0.uuid == uuid } }
            if let tree = filter.inTree {
                let found = all.first(where: { $0.uuid == tree })
                guard let anchor = found else {
                    throw PlacementFailure.badRequest("failed to find resource provider with uuid \(tree)")
                }
                rows = rows.filter { $0.rootUUID == anchor.rootUUID }
            }
            if !filter.memberOf.isEmpty || !filter.forbiddenAggregates.isEmpty {
                let aggregates = try await Self.aggregatesByProvider(sql)
                rows = rows.filter { row in
                    let have = aggregates[row.uuid] ?? []
                    return filter.memberOf.allSatisfy { !$0.isDisjoint(with: have) } && filter.forbiddenAggregates.isDisjoint(with: have)
                }
            }
            if !filter.required.isEmpty || !filter.forbidden.isEmpty {
                let traits = try await Self.traitsByProvider(sql)
                rows = rows.filter { row in
                    let have = traits[row.uuid] ?? []
                    return filter.required.allSatisfy { !$0.isDisjoint(with: have) } && filter.forbidden.isDisjoint(with: have)
                }
            }
            if !filter.resources.isEmpty {
                let inventories = try await PlacementStore.inventories(sql)
                let usages = try await PlacementStore.usages(sql)
                rows = rows.filter { row in
                    filter.resources.allSatisfy { resourceClass, amount in
                        guard let inventory = inventories[row.uuid]?[resourceClass] else { return false }
                        return (usages[row.uuid]?[resourceClass] ?? 0) + amount <= inventory.capacity
                    }
                }
            }
            return rows.map(Provider.init)
        }
    }

    public func provider(_ uuid: String) async throws -> Provider {
        try await read { sql in Provider(try await Self.providerOrFail(sql, uuid)) }
    }

    public func createProvider(name: String, uuid: String?, parent: String?) async throws -> Provider {
        try await write { sql in
            let uuid = uuid ?? UUID().uuidString.lowercased()
            if try await PlacementStore.provider(sql, uuid: uuid) != nil {
                throw PlacementFailure.conflict("Conflicting resource provider uuid: \(uuid) already exists.", code: "placement.duplicate_uuid")
            }
            if try await PlacementTables.providers.first(sql, where: [.equals("name", name)]) != nil {
                throw PlacementFailure.conflict("Conflicting resource provider name: \(name) already exists.", code: "placement.duplicate_name")
            }
            var root = uuid
            if let parent {
                guard let parentRow = try await PlacementStore.provider(sql, uuid: parent) else {
                    throw PlacementFailure.badRequest("parent provider UUID \(parent) does not exist.")
                }
                root = parentRow.rootUUID
            }
            let now = Self.now()
            let row = ResourceProviderRow(uuid: uuid, name: name, parentUUID: parent, rootUUID: root, createdAt: now, updatedAt: now)
            try await PlacementTables.providers.insert(sql, row)
            return Provider(row)
        }
    }

    /// Renames a provider and (from 1.14) sets its parent: a provider without one may get one;
    /// changing or removing a parent is refused unless `reparent` (1.37). A new parent may not
    /// be the provider or one of its descendants; the moved subtree takes its new root.
    public func updateProvider(_ uuid: String, name: String, parent: String??, reparent: Bool = false) async throws -> Provider {
        try await write { sql in
            var row = try await Self.providerOrFail(sql, uuid)
            if name != row.name, try await PlacementTables.providers.first(sql, where: [.equals("name", name)]) != nil {
                throw PlacementFailure.conflict("Conflicting resource provider name: \(name) already exists.", code: "placement.duplicate_name")
            }
            row.name = name
            var subtree: [String] = []
            if case .some(let newParent) = parent, newParent != row.parentUUID {
                let all = try await PlacementStore.providers(sql)
                subtree = Self.subtree(of: uuid, in: all)
                if let newParent {
                    guard let parentRow = all.first(where: { $0.uuid == newParent }) else {
                        throw PlacementFailure.badRequest("Unable to save resource provider \(uuid): parent provider UUID does not exist.")
                    }
                    if row.parentUUID != nil && !reparent {
                        throw PlacementFailure.badRequest("Unable to save resource provider \(uuid): re-parenting a provider is not currently allowed.")
                    }
                    if subtree.contains(newParent) {
                        throw PlacementFailure.badRequest("Unable to save resource provider \(uuid): creating loop in the provider tree is not allowed.")
                    }
                    row.parentUUID = newParent
                    row.rootUUID = parentRow.rootUUID
                } else {
                    if !reparent {
                        throw PlacementFailure.badRequest("Unable to save resource provider \(uuid): un-parenting a provider is not currently allowed.")
                    }
                    row.parentUUID = nil
                    row.rootUUID = row.uuid
                }
            }
            row.generation += 1
            row.updatedAt = Self.now()
            try await PlacementTables.providers.update(sql, whereColumn: "uuid", equals: uuid, row)
            // The provider's descendants move with it.
            for descendant in subtree where descendant != uuid {
                try await sql.raw("UPDATE resource_providers SET root_uuid = \(bind: row.rootUUID) WHERE uuid = \(bind: descendant)").run()
            }
            return Provider(row)
        }
    }

    /// `uuid` and every provider below it.
    static func subtree(of uuid: String, in providers: [ResourceProviderRow]) -> [String] {
        var children: [String: [String]] = [:]
        for provider in providers { if let parent = provider.parentUUID { children[parent, default: []].append(provider.uuid) } }
        var result = [uuid], index = 0
        while index < result.count {
            result += children[result[index]] ?? []
            index += 1
        }
        return result
    }

    public func deleteProvider(_ uuid: String) async throws {
        try await write { sql in
            _ = try await Self.providerOrFail(sql, uuid)
            if try await sql.raw("SELECT consumer_uuid FROM placement_allocations WHERE provider_uuid = \(bind: uuid) LIMIT 1").first() != nil {
                throw PlacementFailure.conflict("Unable to delete resource provider \(uuid): Resource provider has allocations.",
                                                code: "placement.resource_provider.inuse")
            }
            if try await PlacementTables.providers.first(sql, where: [.equals("parent_uuid", uuid)]) != nil {
                throw PlacementFailure.conflict("Unable to delete parent resource provider \(uuid): It has child resource providers.",
                                                code: "placement.resource_provider.cannot_delete_parent")
            }
            try await PlacementTables.providers.delete(sql, where: [.equals("uuid", uuid)])
        }
    }

    // MARK: inventories

    public func inventories(_ uuid: String) async throws -> (generation: Int, inventories: [String: InventoryRow]) {
        try await read { sql in
            let row = try await Self.providerOrFail(sql, uuid)
            return (row.generation, try await PlacementStore.inventories(sql, provider: uuid)[uuid] ?? [:])
        }
    }

    static func validate(_ inventory: InventoryRow, reservedMayEqualTotal: Bool, _ sql: any SQLDatabase) async throws {
        guard try await classExists(sql, inventory.resourceClass) else {
            throw PlacementFailure.badRequest("Unknown resource class in inventory for resource provider \(inventory.providerUUID): \(inventory.resourceClass)")
        }
        if inventory.reserved > inventory.total || (!reservedMayEqualTotal && inventory.reserved == inventory.total) {
            throw PlacementFailure.badRequest("Unable to update inventory for resource provider \(inventory.providerUUID): Invalid inventory for "
                                              + "'\(inventory.resourceClass)' on resource provider '\(inventory.providerUUID)'. The reserved value is "
                                              + "greater than or equal to total.")
        }
        if inventory.minUnit > inventory.maxUnit {
            throw PlacementFailure.badRequest("Unable to update inventory for resource provider \(inventory.providerUUID): min_unit is greater than max_unit.")
        }
    }

    static func inUse(_ sql: any SQLDatabase, provider: String, classes: Set<String>) async throws {
        guard !classes.isEmpty else { return }
        for resourceClass in classes.sorted() {
            if try await sql.raw("""
                SELECT consumer_uuid FROM placement_allocations WHERE provider_uuid = \(bind: provider) AND resource_class = \(bind: resourceClass) LIMIT 1
                """).first() != nil {
                throw PlacementFailure.conflict("Inventory for '\(resourceClass)' on resource provider '\(provider)' in use.",
                                                code: "placement.inventory.inuse")
            }
        }
    }

    /// Replaces a provider's whole inventory at `generation`.
    public func setInventories(_ uuid: String, generation: Int, _ inventories: [InventoryRow], reservedMayEqualTotal: Bool) async throws
        -> (generation: Int, inventories: [String: InventoryRow]) {
        try await write(claims: true) { sql in
            _ = try await Self.providerOrFail(sql, uuid)
            for inventory in inventories { try await Self.validate(inventory, reservedMayEqualTotal: reservedMayEqualTotal, sql) }
            let current = try await PlacementStore.inventories(sql, provider: uuid)[uuid] ?? [:]
            let generation = try await PlacementStore.advance(sql, provider: uuid, from: generation)
            try await Self.inUse(sql, provider: uuid, classes: Set(current.keys).subtracting(inventories.map(\.resourceClass)))
            try await PlacementTables.inventories.delete(sql, where: [.equals("provider_uuid", uuid)])
            for inventory in inventories { try await PlacementStore.upsert(sql, inventory) }
            return (generation, try await PlacementStore.inventories(sql, provider: uuid)[uuid] ?? [:])
        }
    }

    /// Adds (`create`) or replaces one class of a provider's inventory at `generation`.
    public func setInventory(_ inventory: InventoryRow, generation: Int, create: Bool, reservedMayEqualTotal: Bool) async throws
        -> (generation: Int, inventory: InventoryRow) {
        try await write(claims: true) { sql in
            let uuid = inventory.providerUUID
            _ = try await Self.providerOrFail(sql, uuid)
            try await Self.validate(inventory, reservedMayEqualTotal: reservedMayEqualTotal, sql)
            let current = try await PlacementStore.inventories(sql, provider: uuid)[uuid] ?? [:]
            if create, current[inventory.resourceClass] != nil {
                throw PlacementFailure.conflict("Update conflict: Inventory for requested resource class \(inventory.resourceClass) already exists")
            }
            if !create, current[inventory.resourceClass] == nil {
                throw PlacementFailure.badRequest("No inventory record with resource class for resource provider \(uuid)")
            }
            let generation = try await PlacementStore.advance(sql, provider: uuid, from: generation)
            try await PlacementStore.upsert(sql, inventory)
            return (generation, inventory)
        }
    }

    public func deleteInventory(_ uuid: String, resourceClass: String) async throws {
        try await write(claims: true) { sql in
            _ = try await Self.providerOrFail(sql, uuid)
            guard (try await PlacementStore.inventories(sql, provider: uuid)[uuid] ?? [:])[resourceClass] != nil else {
                throw PlacementFailure.notFound("No inventory of class \(resourceClass) found for delete")
            }
            try await Self.inUse(sql, provider: uuid, classes: [resourceClass])
            try await PlacementTables.inventories.delete(sql, where: [.equals("provider_uuid", uuid), .equals("resource_class", resourceClass)])
            try await PlacementStore.bump(sql, providers: [uuid])
        }
    }

    public func deleteInventories(_ uuid: String) async throws {
        try await write(claims: true) { sql in
            _ = try await Self.providerOrFail(sql, uuid)
            let current = try await PlacementStore.inventories(sql, provider: uuid)[uuid] ?? [:]
            try await Self.inUse(sql, provider: uuid, classes: Set(current.keys))
            try await PlacementTables.inventories.delete(sql, where: [.equals("provider_uuid", uuid)])
            try await PlacementStore.bump(sql, providers: [uuid])
        }
    }

    // MARK: usages

    public func providerUsages(_ uuid: String) async throws -> (generation: Int, usages: [String: Int]) {
        try await read { sql in
            let row = try await Self.providerOrFail(sql, uuid)
            var usages = try await PlacementStore.usages(sql)[uuid] ?? [:]
            // Every class of its inventory appears, unused ones as 0.
            for resourceClass in (try await PlacementStore.inventories(sql, provider: uuid)[uuid] ?? [:]).keys where usages[resourceClass] == nil {
                usages[resourceClass] = 0
            }
            return (row.generation, usages)
        }
    }

    /// What a project (and one of its users) holds in all.
    public func totalUsages(projectID: String, userID: String?) async throws -> [String: Int] {
        try await usageRows(projectID: projectID, userID: userID).reduce(into: [:]) { $0[$1.resourceClass, default: 0] += $1.used }
    }

    /// One group of `GET /usages` from 1.38: what the consumers of one type hold, and how many they are.
    public struct TypedUsage: Sendable, Equatable {
        public var usages: [String: Int] = [:]
        public var consumerCount = 0
    }

    /// The name Placement gives consumers written without a type.
    public static let unknownConsumerType = "unknown"

    /// What a project (and one of its users) holds by consumer type (1.38): every type, or only
    /// `consumerType`; `all` puts every consumer in one group, `unknown` the untyped ones.
    public func typedUsages(projectID: String, userID: String?, consumerType: String?) async throws -> [String: TypedUsage] {
        let rows = try await usageRows(projectID: projectID, userID: userID)
        var result: [String: TypedUsage] = [:]
        var consumers: [String: Set<String>] = [:]
        for row in rows {
            let type = row.consumerType ?? Self.unknownConsumerType
            let group: String
            switch consumerType {
            case nil: group = type
            case "all"?: group = "all"
            case "unknown"?:
                guard row.consumerType == nil else { continue }
                group = Self.unknownConsumerType
            case let wanted?:
                guard row.consumerType == wanted else { continue }
                group = wanted
            }
            result[group, default: TypedUsage()].usages[row.resourceClass, default: 0] += row.used
            consumers[group, default: []].insert(row.consumer)
        }
        for (group, members) in consumers { result[group]?.consumerCount = members.count }
        return result
    }

    /// Every allocation of a project's (and user's) consumers, with the consumer's type.
    func usageRows(projectID: String, userID: String?) async throws
        -> [(consumer: String, consumerType: String?, resourceClass: String, used: Int)] {
        try await read { sql in
            var query: SQLQueryString = """
                SELECT a.consumer_uuid, c.consumer_type, a.resource_class, a.used FROM placement_allocations a
                JOIN placement_consumers c ON c.uuid = a.consumer_uuid WHERE c.project_id = \(bind: projectID)
                """
            if let userID { query = query + " AND c.user_id = \(bind: userID)" }
            return try await sql.raw(query).all().map { row in
                (try row.decode(column: "consumer_uuid", as: String.self), try row.decode(column: "consumer_type", as: String?.self),
                 try row.decode(column: "resource_class", as: String.self), try row.decode(column: "used", as: Int.self))
            }
        }
    }

    // MARK: allocations

    public func allocations(consumer: String) async throws -> ConsumerAllocations {
        try await read { sql in
            let rows = try await PlacementStore.allocations(sql, consumer: consumer)
            var result = ConsumerAllocations(allocations: [:])
            for row in rows {
                if result.allocations[row.providerUUID] == nil {
                    let generation = try await PlacementStore.provider(sql, uuid: row.providerUUID)?.generation ?? 0
                    result.allocations[row.providerUUID] = (generation, [:])
                }
                result.allocations[row.providerUUID]!.resources[row.resourceClass] = row.used
            }
            if let consumer = try await PlacementStore.consumer(sql, uuid: consumer), !rows.isEmpty {
                result.projectID = consumer.projectID
                result.userID = consumer.userID
                result.generation = consumer.generation
                result.consumerType = consumer.consumerType
            }
            return result
        }
    }

    /// The allocations on a provider, by consumer, with the provider's generation.
    public func providerAllocations(_ uuid: String) async throws -> (generation: Int, allocations: [String: [String: Int]]) {
        try await read { sql in
            let provider = try await Self.providerOrFail(sql, uuid)
            var result: [String: [String: Int]] = [:]
            for row in try await PlacementTables.allocations.all(sql, where: [.equals("provider_uuid", uuid)]) {
                result[row.consumerUUID, default: [:]][row.resourceClass] = row.used
            }
            return (provider.generation, result)
        }
    }

    /// Writes the allocations of several consumers at once, all or nothing.
    public func writeAllocations(_ writes: [String: AllocationWrite]) async throws {
        try await write(claims: true) { sql in try await Self.replaceAllocations(sql, writes) }
    }

    /// Replaces the allocations of every consumer of `writes` in the caller's transaction:
    /// each consumer's generation checked (from 1.28), its classes known, and the new
    /// allocations checked together against the inventories with the old ones of these
    /// consumers no longer counting.
    static func replaceAllocations(_ sql: any SQLDatabase, _ writes: [String: AllocationWrite]) async throws {
        for (consumer, write) in writes.sorted(by: { $0.key < $1.key }) {
            let current = try await PlacementStore.consumer(sql, uuid: consumer)
            if case .some(let expected) = write.consumerGeneration {
                if expected != current?.generation {
                    throw PlacementFailure.concurrentUpdate(current == nil
                        ? "consumer generation conflict - expected null but got \(expected.map(String.init) ?? "null")"
                        : "consumer generation conflict - expected \(expected.map(String.init) ?? "null") but got \(current!.generation)")
                }
            }
            for (_, resources) in write.allocations {
                for resourceClass in resources.keys.sorted() where !(try await Self.classExists(sql, resourceClass)) {
                    throw PlacementFailure.badRequest("Unable to allocate inventory: No such resource class \(resourceClass).")
                }
            }
        }
        let inventory = try await PlacementStore.inventories(sql)
        var used = try await PlacementStore.usages(sql, excluding: Set(writes.keys))
        for (_, write) in writes.sorted(by: { $0.key < $1.key }) {
            for (provider, resources) in write.allocations.sorted(by: { $0.key < $1.key }) {
                guard try await PlacementStore.provider(sql, uuid: provider) != nil else {
                    throw PlacementFailure.badRequest("Allocation for resource provider '\(provider)' that does not exist.")
                }
                for (resourceClass, amount) in resources.sorted(by: { $0.key < $1.key }) {
                    if let failure = PlacementStore.misfit(amount, of: resourceClass, on: provider, inventory: inventory[provider]?[resourceClass],
                                                           used: used[provider]?[resourceClass] ?? 0) { throw failure }
                    used[provider, default: [:]][resourceClass, default: 0] += amount
                }
            }
        }
        for (consumer, write) in writes.sorted(by: { $0.key < $1.key }) {
            try await PlacementStore.replaceAllocations(sql, consumer: consumer, projectID: write.projectID, userID: write.userID,
                                                        consumerType: write.consumerType, allocations: write.allocations, check: false)
        }
    }

    /// `POST /reshaper` (1.30): in one transaction, providers' inventories replaced and
    /// consumers' allocations moved. Each provider's generation must be the one given; the
    /// inventories go first as the union of old and new (so allocations can leave old classes
    /// and reach new ones), then the allocations are replaced and checked, then the inventories
    /// become exactly the new ones (a class still allocated cannot go).
    public func reshape(inventories: [String: (generation: Int, inventories: [InventoryRow])], allocations: [String: AllocationWrite],
                        reservedMayEqualTotal: Bool = true) async throws {
        try await write(claims: true) { sql in
            for (uuid, entry) in inventories.sorted(by: { $0.key < $1.key }) {
                guard let provider = try await PlacementStore.provider(sql, uuid: uuid) else {
                    throw PlacementFailure.badRequest("Resource provider \(uuid) in inventories not found: No resource provider with uuid \(uuid) found",
                                                      code: "placement.resource_provider.not_found")
                }
                if entry.generation != provider.generation {
                    throw PlacementFailure.concurrentUpdate("resource provider generation conflict for provider \(uuid): actual: "
                                                            + "\(provider.generation), given: \(entry.generation)")
                }
                for row in entry.inventories {
                    do {
                        try await Self.validate(row, reservedMayEqualTotal: reservedMayEqualTotal, sql)
                    } catch let failure as PlacementFailure {
                        throw PlacementFailure.badRequest("malformed reshaper data: \(failure.message)")
                    }
                }
            }
            // The interim inventories: what there was, with the new classes over it.
            for (uuid, entry) in inventories.sorted(by: { $0.key < $1.key }) where !entry.inventories.isEmpty {
                for row in entry.inventories { try await PlacementStore.upsert(sql, row) }
                try await PlacementStore.bump(sql, providers: [uuid])
            }
            try await Self.replaceAllocations(sql, allocations)
            // The final inventories: exactly the new ones.
            for (uuid, entry) in inventories.sorted(by: { $0.key < $1.key }) {
                let current = try await PlacementStore.inventories(sql, provider: uuid)[uuid] ?? [:]
                let gone = Set(current.keys).subtracting(entry.inventories.map(\.resourceClass))
                try await Self.inUse(sql, provider: uuid, classes: gone)
                for resourceClass in gone.sorted() {
                    try await PlacementTables.inventories.delete(sql, where: [.equals("provider_uuid", uuid), .equals("resource_class", resourceClass)])
                }
                for row in entry.inventories { try await PlacementStore.upsert(sql, row) }
                try await PlacementStore.bump(sql, providers: [uuid])
            }
        }
    }

    public func deleteAllocations(consumer: String) async throws {
        try await write(claims: true) { sql in
            guard try await PlacementStore.release(sql, consumer: consumer) else {
                throw PlacementFailure.notFound("No allocations for consumer '\(consumer)'")
            }
        }
    }

    // MARK: traits

    public func traits(nameIn: Set<String>?, startsWith: String?, associated: Bool?) async throws -> [String] {
        try await read { sql in
            var names = StandardTraits.names.union(try await Self.customTraits(sql))
            if let nameIn { names.formIntersection(nameIn) }
            if let startsWith { names = names.filter { $0.hasPrefix(startsWith) } }
            if let associated {
                let used = Set(try await sql.raw("SELECT DISTINCT trait FROM placement_provider_traits").all()
                    .map { try $0.decode(column: "trait", as: String.self) })
                names = names.filter { used.contains($0) == associated }
            }
            return names.sorted()
        }
    }

    public func traitExists(_ name: String) async throws -> Bool {
        try await read { sql in try await Self.unknownTraits(sql, [name]).isEmpty }
    }

    /// Creates a custom trait; false when it existed.
    public func createTrait(_ name: String) async throws -> Bool {
        guard Self.isCustom(name) else {
            throw PlacementFailure.badRequest("The trait is invalid. A valid trait must be no longer than 255 characters, start with the prefix "
                                              + "\"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" and \"_\"")
        }
        return try await write { sql in
            if try await sql.raw("SELECT name FROM placement_traits WHERE name = \(bind: name)").first() != nil { return false }
            let now = Self.now()
            try await sql.raw("INSERT INTO placement_traits (name, created_at, updated_at) VALUES (\(bind: name), \(bind: now), \(bind: now))").run()
            return true
        }
    }

    public func deleteTrait(_ name: String) async throws {
        try await write { sql in
            if StandardTraits.names.contains(name) { throw PlacementFailure.badRequest("Cannot delete standard trait \(name).") }
            guard try await sql.raw("SELECT name FROM placement_traits WHERE name = \(bind: name)").first() != nil else {
                throw PlacementFailure.notFound("No such trait(s): \(name)")
            }
            if try await sql.raw("SELECT trait FROM placement_provider_traits WHERE trait = \(bind: name) LIMIT 1").first() != nil {
                throw PlacementFailure.conflict("The trait \(name) is in use by a resource provider.")
            }
            try await sql.raw("DELETE FROM placement_traits WHERE name = \(bind: name)").run()
        }
    }

    public func providerTraits(_ uuid: String) async throws -> (generation: Int, traits: [String]) {
        try await read { sql in
            let row = try await Self.providerOrFail(sql, uuid)
            return (row.generation, (try await Self.traitsByProvider(sql)[uuid] ?? []).sorted())
        }
    }

    public func setProviderTraits(_ uuid: String, generation: Int, traits: Set<String>) async throws -> (generation: Int, traits: [String]) {
        try await write { sql in
            _ = try await Self.providerOrFail(sql, uuid)
            let unknown = try await Self.unknownTraits(sql, traits)
            if !unknown.isEmpty { throw PlacementFailure.badRequest("No such trait(s): \(unknown.joined(separator: ", ")).") }
            let next = try await PlacementStore.advance(sql, provider: uuid, from: generation)
            try await sql.raw("DELETE FROM placement_provider_traits WHERE provider_uuid = \(bind: uuid)").run()
            for trait in traits.sorted() {
                try await sql.raw("INSERT INTO placement_provider_traits (provider_uuid, trait) VALUES (\(bind: uuid), \(bind: trait))").run()
            }
            return (next, traits.sorted())
        }
    }

    public func deleteProviderTraits(_ uuid: String) async throws {
        try await write { sql in
            _ = try await Self.providerOrFail(sql, uuid)
            try await sql.raw("DELETE FROM placement_provider_traits WHERE provider_uuid = \(bind: uuid)").run()
            try await PlacementStore.bump(sql, providers: [uuid])
        }
    }

    // MARK: aggregates

    public func providerAggregates(_ uuid: String) async throws -> (generation: Int, aggregates: [String]) {
        try await read { sql in
            let row = try await Self.providerOrFail(sql, uuid)
            return (row.generation, (try await Self.aggregatesByProvider(sql)[uuid] ?? []).sorted())
        }
    }

    /// Replaces a provider's aggregates; from 1.19 only at `generation`.
    public func setProviderAggregates(_ uuid: String, generation: Int?, aggregates: Set<String>) async throws -> (generation: Int, aggregates: [String]) {
        try await write { sql in
            let row = try await Self.providerOrFail(sql, uuid)
            let next = try await PlacementStore.advance(sql, provider: uuid, from: generation ?? row.generation)
            try await sql.raw("DELETE FROM placement_provider_aggregates WHERE provider_uuid = \(bind: uuid)").run()
            for aggregate in aggregates.sorted() {
                try await sql.raw("INSERT INTO placement_provider_aggregates (provider_uuid, aggregate_uuid) VALUES (\(bind: uuid), \(bind: aggregate))").run()
            }
            return (next, aggregates.sorted())
        }
    }

    // MARK: resource classes

    public func resourceClasses() async throws -> [String] {
        try await read { sql in StandardResourceClasses.names + (try await Self.customClasses(sql)) }
    }

    public func resourceClassExists(_ name: String) async throws -> Bool {
        try await read { sql in try await Self.classExists(sql, name) }
    }

    static let classNameRule = "A valid name must start with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" and \"_\""

    /// Creates a custom class; false when it existed.
    public func createResourceClass(_ name: String) async throws -> Bool {
        guard Self.isCustom(name) else { throw PlacementFailure.badRequest("JSON does not validate: \(name) is not valid. \(Self.classNameRule)") }
        return try await write { sql in
            if try await Self.classExists(sql, name) { return false }
            let now = Self.now()
            try await sql.raw("INSERT INTO placement_resource_classes (name, created_at, updated_at) VALUES (\(bind: name), \(bind: now), \(bind: now))").run()
            return true
        }
    }

    /// Renames a custom class (1.2–1.6).
    public func renameResourceClass(_ name: String, to newName: String) async throws {
        guard Self.isCustom(newName) else { throw PlacementFailure.badRequest("JSON does not validate: \(newName) is not valid. \(Self.classNameRule)") }
        try await write { sql in
            if StandardResourceClasses.names.contains(name) { throw PlacementFailure.badRequest("Cannot update standard resource class \(name)") }
            guard try await Self.classExists(sql, name) else { throw PlacementFailure.notFound("No such resource class \(name).") }
            if try await Self.classExists(sql, newName) {
                throw PlacementFailure.conflict("Resource class already exists: \(newName)")
            }
            try await sql.raw("UPDATE placement_resource_classes SET name = \(bind: newName), updated_at = \(bind: Self.now()) WHERE name = \(bind: name)").run()
        }
    }

    public func deleteResourceClass(_ name: String) async throws {
        try await write { sql in
            if StandardResourceClasses.names.contains(name) { throw PlacementFailure.badRequest("Cannot delete standard resource class \(name).") }
            guard try await Self.classExists(sql, name) else { throw PlacementFailure.notFound("No such resource class \(name).") }
            if try await sql.raw("SELECT resource_class FROM placement_inventories WHERE resource_class = \(bind: name) LIMIT 1").first() != nil {
                throw PlacementFailure.conflict("Unable to delete resource class \(name). Class is in use in inventory.")
            }
            try await sql.raw("DELETE FROM placement_resource_classes WHERE name = \(bind: name)").run()
        }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

/// One resource class of a provider's inventory, as the API reads and writes it.
public typealias Inventory = InventoryRow
