import Foundation
import Hosts
import SQLKit
import Store

/// `[scheduler]` settings, as Nova's.
public struct SchedulerOptions: Sendable {
    public var cpuAllocationRatio = 16.0
    public var ramAllocationRatio = 1.5
    public var diskAllocationRatio = 1.0
    /// Positive spreads instances to the hosts with the most free RAM; negative stacks them.
    public var ramWeightMultiplier = 1.0
    /// The availability zone of hosts in no aggregate with one.
    public var defaultAvailabilityZone = "nova"

    public init() {}
}

/// Picks a host for an instance and claims its resources, in one transaction: two requests
/// (or two controllers) never overbook a host. Filters as Nova's: the compute service is
/// enabled and up, the availability zone matches, vCPUs, RAM and disk fit after the
/// allocation ratios and the claims of the instances already there, the image's
/// `hw_architecture` and `hypervisor_type` match; the free-RAM weigher picks among the rest.
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
            if let host = instance.host, !excluding.contains(host) { return host }
            let candidates = try await self.candidates(sql, for: instance, imageProperties: imageProperties, excluding: excluding)
            guard let best = candidates.max(by: { left, right in
                let a = left.freeRAMMB * options.ramWeightMultiplier, b = right.freeRAMMB * options.ramWeightMultiplier
                return a != b ? a < b : left.host > right.host
            }) else { throw Failure.noValidHost("There are not enough hosts available.") }
            instance.host = best.host
            instance.updatedAt = Int64(Date().timeIntervalSince1970 * 1000)
            try await ComputeTables.instances.update(sql, id: instance.id, instance)
            return best.host
        }
    }

    /// The hosts that pass every filter for `instance`, read on `sql`.
    public func candidates(_ sql: any SQLDatabase, for instance: InstanceRow, imageProperties: [String: String] = [:],
                           excluding: Set<String> = []) async throws -> [Candidate] {
        let now = Date()
        let services = try await sql.raw("\(ServiceStore.serviceColumns) WHERE service_binary = 'nova-compute'").all()
            .map(ServiceStore.serviceRecord).map { hosts.status($0, now: now) }
        let hypervisors = Dictionary(try await ServiceStore.hypervisors(sql).map { ($0.host, $0) }, uniquingKeysWith: { first, _ in first })
        let aggregates = try await AggregateTables.aggregates.all(sql).map(Aggregates.decode)
        let used = try await ServiceStore.usage(sql, excluding: instance.id)
        var result: [Candidate] = []
        for service in services where service.up && service.enabled && !excluding.contains(service.host) {
            guard let hypervisor = hypervisors[service.host]?.resources else { continue }
            if let zone = instance.availabilityZone {
                let zones = aggregates.filter { $0.hosts.contains(service.host) }.compactMap(\.availabilityZone)
                guard (zones.isEmpty ? [options.defaultAvailabilityZone] : zones).contains(zone) else { continue }
            }
            if let architecture = imageProperties["hw_architecture"] ?? imageProperties["architecture"],
               architecture.lowercased() != hypervisor.cpuModel.lowercased() { continue }
            if let type = imageProperties["hypervisor_type"], type.lowercased() != hypervisor.type.lowercased() { continue }
            let taken = used[service.host] ?? ServiceStore.HostUsage()
            let candidate = Candidate(
                host: service.host,
                freeVCPUs: Double(hypervisor.vcpus) * options.cpuAllocationRatio - Double(taken.vcpus),
                freeRAMMB: Double(hypervisor.memoryMB) * options.ramAllocationRatio - Double(taken.memoryMB),
                freeDiskGB: Double(hypervisor.localGB) * options.diskAllocationRatio - Double(taken.diskGB))
            guard candidate.freeVCPUs >= Double(instance.vcpus), candidate.freeRAMMB >= Double(instance.memoryMB),
                  candidate.freeDiskGB >= Double((instance.rootOnVolume ? 0 : instance.rootGB) + instance.ephemeralGB) else { continue }
            result.append(candidate)
        }
        return result
    }
}
