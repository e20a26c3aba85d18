import Foundation
import Hosts
import Placement
import SQLKit
import Store

/// `[scheduler]` settings, as Nova's.
public struct SchedulerOptions: Sendable {
    public var cpuAllocationRatio = 16.0
    public var ramAllocationRatio = 1.5
    public var diskAllocationRatio = 1.0
    /// Positive spreads instances to the hosts with the most free RAM; negative stacks them.
    public var ramWeightMultiplier = 1.0
    /// Whether a resize or cold migration may stay on the server's host (Nova's
    /// `allow_resize_to_same_host`; Petrel has no other host to move it to yet).
    public var allowResizeToSameHost = false
    /// The availability zone of hosts in no aggregate with one.
    public var defaultAvailabilityZone = "nova"

    public init() {}

    /// The allocation ratios the compute nodes' Placement inventories carry.
    public var inventoryRatios: InventoryRatios {
        InventoryRatios(cpu: cpuAllocationRatio, ram: ramAllocationRatio, disk: diskAllocationRatio)
    }
}

/// Picks a host for an instance and claims its resources through Placement, in one
/// transaction: two requests (or two controllers) never overbook a host. Filters as Nova's:
/// the compute service is enabled and up, the availability zone matches, vCPUs, RAM and disk
/// fit the host's Placement inventory (with its allocation ratios) after the allocations
/// already there, the image's `hw_architecture` and `hypervisor_type` match; the free-RAM
/// weigher picks among the rest. The claim is the instance's allocation (consumer = its
/// uuid) written with its `host`; `PlacementStore.release` gives it back.
public struct Scheduler: Sendable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case instanceNotFound(String)
        /// Nova's message, with what each filter left.
        case noValidHost(String)

        public var description: String {
            switch self {
            case .instanceNotFound(let id): return "Instance \(id) could not be found."
            case .noValidHost(let why): return "No valid host was found. \(why)"
            }
        }
    }

    public let hosts: HostInventory
    public let options: SchedulerOptions

    public init(hosts: HostInventory, options: SchedulerOptions) {
        self.hosts = hosts
        self.options = options
    }

    /// A host the scheduler considered, with what is left of it.
    public struct Candidate: Sendable, Equatable {
        public let host: String
        /// The uuid of the host's resource provider in Placement.
        public let provider: String
        public let freeVCPUs: Double
        public let freeRAMMB: Double
        public let freeDiskGB: Double
    }

    /// Claims a host for `instanceID` (sets its `host`) and returns the host. Idempotent: an
    /// instance that already holds a host not in `excluding` keeps it.
    public func schedule(instanceID: String, imageProperties: [String: String] = [:], excluding: Set<String> = []) async throws -> String {
        let database = hosts.store.database
        return try await database.transaction { sql in
            if database.backend == .postgresql {
                // One scheduler at a time across every controller sharing the database.
                try await sql.raw("SELECT pg_advisory_xact_lock(7201)").run()
            }
            guard var instance = try await ComputeTables.instances.lockedGet(sql, id: instanceID) else {
                throw Failure.instanceNotFound(instanceID)
            }
            if let host = instance.host, !excluding.contains(host) {
                // Placed already (or forced onto a host by an admin): its allocation is there too.
                if try await PlacementStore.allocations(sql, consumer: instance.id).isEmpty,
                   let provider = try await PlacementStore.syncComputeProviders(sql, ratios: options.inventoryRatios)[host] {
                    try await PlacementStore.claim(sql, instance: instance, providerUUID: provider)
                }
                return host
            }
            var candidates = try await self.candidates(sql, for: instance, imageProperties: imageProperties, excluding: excluding)
            // Its server group's filter, then its weigher before the free-RAM one.
            let group = try await GroupPlacement.of(sql, instanceID: instance.id)
            if let group {
                let fitting = !candidates.isEmpty
                candidates = candidates.filter { group.allows($0.host) }
                if fitting && candidates.isEmpty { throw Failure.noValidHost(group.refusal) }
            }
            guard let best = candidates.max(by: { left, right in
                let groupLeft = group?.weight(left.host) ?? 0, groupRight = group?.weight(right.host) ?? 0
                if groupLeft != groupRight { return groupLeft < groupRight }
                let a = left.freeRAMMB * options.ramWeightMultiplier, b = right.freeRAMMB * options.ramWeightMultiplier
                return a != b ? a < b : left.host > right.host
            }) else { throw Failure.noValidHost("There are not enough hosts available.") }
            instance.host = best.host
            instance.updatedAt = Int64(Date().timeIntervalSince1970 * 1000)
            try await ComputeTables.instances.update(sql, id: instance.id, instance)
            try await PlacementStore.claim(sql, instance: instance, providerUUID: best.provider)
            return best.host
        }
    }

    /// The hosts that pass every filter for `instance`, read on `sql`: what is free of each is
    /// its provider's inventory less the allocations on it (the instance's own left out).
    public func candidates(_ sql: any SQLDatabase, for instance: InstanceRow, imageProperties: [String: String] = [:],
                           excluding: Set<String> = []) async throws -> [Candidate] {
        let now = Date()
        let services = try await sql.raw("\(ServiceStore.serviceColumns) WHERE service_binary = 'nova-compute'").all()
            .map(ServiceStore.serviceRecord).map { hosts.status($0, now: now) }
        let architecture = imageProperties["hw_architecture"] ?? imageProperties["architecture"], hypervisorType = imageProperties["hypervisor_type"]
        // The hypervisors themselves only for the image filters (Placement knows their resources).
        let hypervisors = architecture == nil && hypervisorType == nil ? [:]
            : Dictionary(try await ServiceStore.hypervisors(sql).map { ($0.host, $0) }, uniquingKeysWith: { first, _ in first })
        let aggregates = try await AggregateTables.aggregates.all(sql).map(Aggregates.decode)
        // A node that reported for the first time gets its provider now; the reports keep the rest current.
        if try await PlacementStore.providersMissing(sql) {
            try await PlacementStore.syncComputeProviders(sql, ratios: options.inventoryRatios)
        }
        let room = try await PlacementStore.room(sql, for: PlacementStore.resources(of: instance), excluding: instance.id)
        var result: [Candidate] = []
        for service in services where service.up && service.enabled && !excluding.contains(service.host) {
            guard let room = room[service.host], room.fits else { continue }
            if let zone = instance.availabilityZone {
                let zones = aggregates.filter { $0.hosts.contains(service.host) }.compactMap(\.availabilityZone)
                guard (zones.isEmpty ? [options.defaultAvailabilityZone] : zones).contains(zone) else { continue }
            }
            if let architecture, architecture.lowercased() != hypervisors[service.host]?.resources.cpuModel.lowercased() { continue }
            if let hypervisorType, hypervisorType.lowercased() != hypervisors[service.host]?.resources.type.lowercased() { continue }
            // Placement's capacity check passed (`room.fits`): each class asked for fits its
            // inventory's units and what is left of it.
            func free(_ resourceClass: String) -> Double { Double(room.free[resourceClass] ?? 0) }
            result.append(Candidate(host: service.host, provider: room.provider, freeVCPUs: free("VCPU"), freeRAMMB: free("MEMORY_MB"),
                                    freeDiskGB: free("DISK_GB")))
        }
        return result
    }
}
