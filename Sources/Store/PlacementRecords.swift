import Foundation
import SQLKit

/// A row of `resource_providers` (Placement). A compute node's provider is named after its
/// host and has the hypervisor's id as uuid; `rootUUID` is its own uuid unless it has a parent.
public struct ResourceProviderRow: Codable, Sendable, Equatable {
    public var uuid: String
    public var name: String
    public var generation: Int
    public var parentUUID: String?
    public var rootUUID: String
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(uuid: String, name: String, generation: Int = 0, parentUUID: String? = nil, rootUUID: String, createdAt: Int64,
                updatedAt: Int64) {
        self.uuid = uuid; self.name = name; self.generation = generation; self.parentUUID = parentUUID; self.rootUUID = rootUUID
        self.createdAt = createdAt; self.updatedAt = updatedAt
    }
}

/// A row of `placement_inventories`: how much of one resource class a provider has.
public struct InventoryRow: Codable, Sendable, Equatable {
    public var providerUUID: String
    public var resourceClass: String
    public var total: Int
    public var reserved: Int
    public var minUnit: Int
    public var maxUnit: Int
    public var stepSize: Int
    public var allocationRatio: Double

    public init(providerUUID: String, resourceClass: String, total: Int, reserved: Int = 0, minUnit: Int = 1, maxUnit: Int,
                stepSize: Int = 1, allocationRatio: Double = 1.0) {
        self.providerUUID = providerUUID; self.resourceClass = resourceClass; self.total = total; self.reserved = reserved
        self.minUnit = minUnit; self.maxUnit = maxUnit; self.stepSize = stepSize; self.allocationRatio = allocationRatio
    }

    /// What may be allocated in all: (total − reserved) × allocation_ratio, as Placement rounds it.
    public var capacity: Int { Int((Double(total - reserved) * allocationRatio).rounded(.down)) }
}

/// A row of `placement_consumers`: who holds allocations (an instance, a migration, …).
public struct ConsumerRow: Codable, Sendable, Equatable {
    public var uuid: String
    public var projectID: String
    public var userID: String
    public var generation: Int
    public var consumerType: String?
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(uuid: String, projectID: String, userID: String, generation: Int = 0, consumerType: String? = nil, createdAt: Int64,
                updatedAt: Int64) {
        self.uuid = uuid; self.projectID = projectID; self.userID = userID; self.generation = generation
        self.consumerType = consumerType; self.createdAt = createdAt; self.updatedAt = updatedAt
    }
}

/// A row of `placement_allocations`: `used` units of one class of one provider held by a consumer.
public struct AllocationRow: Codable, Sendable, Equatable {
    public var providerUUID: String
    public var consumerUUID: String
    public var resourceClass: String
    public var used: Int
    public var createdAt: Int64

    public init(providerUUID: String, consumerUUID: String, resourceClass: String, used: Int, createdAt: Int64) {
        self.providerUUID = providerUUID; self.consumerUUID = consumerUUID; self.resourceClass = resourceClass; self.used = used
        self.createdAt = createdAt
    }
}

public enum PlacementTables {
    public static let providers = Table<ResourceProviderRow>("resource_providers")
    public static let inventories = Table<InventoryRow>("placement_inventories")
    public static let consumers = Table<ConsumerRow>("placement_consumers")
    public static let allocations = Table<AllocationRow>("placement_allocations")
}
