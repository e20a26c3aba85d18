import Compute
import Foundation
import Hosts
import Logging
import Placement
import SQLKit
import Store
import TestSupport
import Testing

/// The scheduler claims through Placement allocations, on both databases: the claim is the
/// instance's allocation, free capacity is inventory less allocations (reserved and ratios
/// included), `PlacementStore.release` gives it back, and an upgraded cloud's placed
/// instances get their allocations.
@Suite struct PlacementClaimTests {
    func withHosts(_ backend: TestDatabase, _ body: @Sendable (Database, Scheduler) async throws -> Void) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let database = try Database(url, logger: Logger(label: "placement-claims"))
        try await withCleanup {
            try await Migrator().migrate(database)
            for name in ["host-0", "host-1"] {
                try await ServiceStore(database).record(host: name, version: "1", services: [("nova-compute", "compute")],
                                                        hypervisor: HypervisorRecord(type: "QEMU", version: 1, cpuModel: "x86_64", vcpus: 4,
                                                                                     memoryMB: 2048, localGB: 20))
            }
            var options = SchedulerOptions()
            options.cpuAllocationRatio = 2.0
            options.ramAllocationRatio = 1.0
            try await body(database, Scheduler(hosts: HostInventory(database: database, serviceDownTime: 300), options: options))
        } cleanup: {
            await database.shutdown()
            await drop()
        }
    }

    func instance(_ database: Database, memoryMB: Int = 512, host: String? = nil) async throws -> InstanceRow {
        var row = InstanceRow(id: UUID().uuidString.lowercased(), name: "vm", projectID: "p", userID: "u", flavorID: "f", vcpus: 1,
                              memoryMB: memoryMB, rootGB: 2, ephemeralGB: 1, swap: 512, imageID: nil, availabilityZone: nil,
                              createdAt: Int64(Date().timeIntervalSince1970 * 1000))
        row.host = host
        let frozen = row
        try await database.withConnection { sql in try await ComputeTables.instances.insert(sql, frozen) }
        return row
    }

    func held(_ database: Database, _ consumer: String) async throws -> [String: [String: Int]] {
        try await database.withConnection { sql in
            var result: [String: [String: Int]] = [:]
            for row in try await PlacementStore.allocations(sql, consumer: consumer) { result[row.providerUUID, default: [:]][row.resourceClass] = row.used }
            return result
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func claimsAreAllocations(backend: TestDatabase) async throws {
        try await withHosts(backend) { database, scheduler in
            let providers = try await database.transaction { sql in
                try await PlacementStore.syncComputeProviders(sql, ratios: scheduler.options.inventoryRatios)
            }
            let first = try await instance(database)
            let host = try await scheduler.schedule(instanceID: first.id)
            // Root + ephemeral + swap rounded up to a GB, as Nova asks Placement.
            #expect(try await held(database, first.id) == [providers[host]!: ["VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 4]])
            // Scheduling again changes nothing.
            #expect(try await scheduler.schedule(instanceID: first.id) == host)
            #expect(try await held(database, first.id).count == 1)

            // Capacity is inventory less allocations: 2048 MB per host at ratio 1.
            for _ in 0..<7 { _ = try await scheduler.schedule(instanceID: try await instance(database).id) }
            await #expect(throws: Scheduler.Failure.noValidHost("There are not enough hosts available.")) {
                try await scheduler.schedule(instanceID: try await instance(database).id)
            }
            // Releasing one allocation frees its room at once.
            let freed = try await database.transaction { sql in try await PlacementStore.release(sql, consumer: first.id) }
            #expect(freed)
            #expect(try await held(database, first.id).isEmpty)
            let next = try await instance(database)
            #expect(try await scheduler.schedule(instanceID: next.id) == host)

            // Reserved memory in the inventory counts too: with two of its servers' allocations
            // released, the other host has 1024 MB free; an operator reserving 1000 MB of it leaves 24.
            let otherHost = providers.keys.first { $0 != host }!, other = providers[otherHost]!
            let onOther = try await database.withConnection { sql in
                try await ComputeTables.instances.all(sql, where: [.equals("host", otherHost)]).map(\.id)
            }
            #expect(onOther.count == 4)
            try await database.transaction { sql in
                for id in onOther.prefix(2) { _ = try await PlacementStore.release(sql, consumer: id) }
            }
            let placement = PlacementService(database: database, ratios: scheduler.options.inventoryRatios)
            let (generation, inventory) = try await placement.inventories(other)
            var memory = try #require(inventory["MEMORY_MB"])
            memory.reserved = 1000
            _ = try await placement.setInventory(memory, generation: generation, create: false, reservedMayEqualTotal: true)
            await #expect(throws: Scheduler.Failure.self) { try await scheduler.schedule(instanceID: try await instance(database, memoryMB: 100).id) }
            #expect(try await scheduler.schedule(instanceID: try await instance(database, memoryMB: 20).id) == otherHost)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func upgradedCloudGetsAllocations(backend: TestDatabase) async throws {
        try await withHosts(backend) { database, scheduler in
            // Instances placed before Placement existed: a host, no allocation.
            let old = try await instance(database, host: "host-1")
            let unplaced = try await instance(database)
            let ratios = scheduler.options.inventoryRatios
            let result = try await database.transaction { sql in try await PlacementStore.reconcileInstances(sql, ratios: ratios) }
            #expect(result.created == 1 && result.released == 0)
            #expect(try await held(database, old.id).values.first == ["VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 4])
            #expect(try await held(database, unplaced.id).isEmpty)
            // Idempotent.
            let again = try await database.transaction { sql in try await PlacementStore.reconcileInstances(sql, ratios: ratios) }
            #expect(again.created == 0 && again.released == 0)
            // An instance row that went without its allocation going: the allocation is released.
            try await database.withConnection { sql in _ = try await ComputeTables.instances.delete(sql, where: [.equals("id", old.id)]) }
            let cleaned = try await database.transaction { sql in try await PlacementStore.reconcileInstances(sql, ratios: ratios) }
            #expect(cleaned.released == 1)
            #expect(try await held(database, old.id).isEmpty)
        }
    }
}
