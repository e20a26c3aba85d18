import Compute
import Foundation
import Hosts
import Logging
import PetrelCore
import Store
import TestSupport
import Testing

/// The scheduler on a real database: spreading, capacity with allocation ratios, disabled and
/// down hosts, availability zones, image properties, and two controllers claiming at once.
@Suite struct SchedulerTests {
    func withHosts(_ backend: TestDatabase, count: Int = 3, vcpus: Int = 4, memoryMB: Int = 4096,
                   _ body: @Sendable (DatabaseURL, Database, HostInventory, [String]) async throws -> Void) async throws {
        let (url, drop) = try await backend.makeDatabase()
        // Thirty schedulers queue on a few pooled connections, each transaction waiting for the one
        // before it (every suite shares 2 cores in CI): they may wait longer than the default 30 s.
        let database = try Database(url, logger: Logger(label: "scheduler-test"), connectionWait: .seconds(180), busyBudget: .seconds(300))
        try await withCleanup {
            try await Migrator().migrate(database)
            let store = ServiceStore(database)
            let names = (0..<count).map { "host-\($0)" }
            for name in names {
                try await store.record(host: name, version: "1", services: [("nova-compute", "compute")],
                                       hypervisor: HypervisorRecord(type: "QEMU", version: 1, cpuModel: "x86_64", vcpus: vcpus,
                                                                    memoryMB: memoryMB, localGB: 100))
            }
            try await body(url, database, HostInventory(database: database, serviceDownTime: 300), names)
        } cleanup: {
            await database.shutdown()
            await drop()
        }
    }

    func newInstance(_ database: Database, vcpus: Int = 1, memoryMB: Int = 256, disk: Int = 1, zone: String? = nil) async throws -> String {
        let row = InstanceRow(id: UUID().uuidString.lowercased(), name: "vm", projectID: "p", userID: "u", flavorID: "f", vcpus: vcpus,
                              memoryMB: memoryMB, rootGB: disk, imageID: nil, availabilityZone: zone,
                              createdAt: Int64(Date().timeIntervalSince1970 * 1000))
        try await database.withConnection { sql in try await ComputeTables.instances.insert(sql, row) }
        return row.id
    }

    func placement(_ database: Database) async throws -> [String: Int] {
        try await database.withConnection { sql in
            var counts: [String: Int] = [:]
            for row in try await ComputeTables.instances.all(sql) { if let host = row.host { counts[host, default: 0] += 1 } }
            return counts
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func thirtyConcurrentBootsSpreadByFreeRAM(backend: TestDatabase) async throws {
        try await withHosts(backend) { _, database, hosts, names in
            var options = SchedulerOptions()
            options.ramAllocationRatio = 1.0
            let scheduler = Scheduler(hosts: hosts, options: options)
            var ids: [String] = []
            for _ in 0..<30 { ids.append(try await newInstance(database)) }
            let frozen = ids
            try await withThrowingTaskGroup(of: String.self) { group in
                for id in frozen { group.addTask { try await scheduler.schedule(instanceID: id) } }
                for try await host in group { #expect(names.contains(host)) }
            }
            #expect(try await placement(database) == ["host-0": 10, "host-1": 10, "host-2": 10], "the free-RAM weigher spreads evenly")
            // Scheduling again is idempotent.
            let again = try await scheduler.schedule(instanceID: ids[0])
            #expect(try await placement(database).values.reduce(0, +) == 30 && names.contains(again))
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func twoControllersNeverOverbook(backend: TestDatabase) async throws {
        // Capacity: 3 hosts × 4 vCPUs at ratio 1.0 = 12 instances of 1 vCPU.
        try await withHosts(backend) { url, database, hosts, _ in
            var options = SchedulerOptions()
            options.cpuAllocationRatio = 1.0
            let second = try Database(url, logger: Logger(label: "second-controller"), connectionWait: .seconds(180), busyBudget: .seconds(300))
            try await withCleanup {
                let schedulers = [Scheduler(hosts: hosts, options: options),
                                  Scheduler(hosts: HostInventory(database: second, serviceDownTime: 300), options: options)]
                var ids: [String] = []
                for _ in 0..<16 { ids.append(try await newInstance(database)) }
                let frozen = ids
                let outcomes = await withTaskGroup(of: Bool.self) { group -> [Bool] in
                    for (index, id) in frozen.enumerated() {
                        group.addTask { (try? await schedulers[index % 2].schedule(instanceID: id)) != nil }
                    }
                    var results: [Bool] = []
                    for await result in group { results.append(result) }
                    return results
                }
                #expect(outcomes.filter { $0 }.count == 12, "exactly the capacity is placed")
                let counts = try await placement(database)
                #expect(counts.values.allSatisfy { $0 == 4 }, "no host over its 4 vCPUs: \(counts)")
            } cleanup: {
                await second.shutdown()
            }
        }
    }

    @Test func filtersRefuseWhatDoesNotFit() async throws {
        try await withHosts(.sqlite) { _, database, hosts, _ in
            let scheduler = Scheduler(hosts: hosts, options: SchedulerOptions())
            let huge = try await newInstance(database, memoryMB: 1_000_000)
            await #expect(throws: Scheduler.Failure.noValidHost("There are not enough hosts available.")) {
                try await scheduler.schedule(instanceID: huge)
            }
            // Disabled host-0 and a host-1 silent for longer than service_down_time: only host-2 is left.
            let services = try await hosts.services()
            _ = try await hosts.setEnabled(id: services.first { $0.host == "host-0" }!.id, false, reason: "maintenance")
            try await ServiceStore(database).record(host: "host-1", version: "1", services: [("nova-compute", "compute")], hypervisor: nil,
                                                    at: Date().addingTimeInterval(-600))
            for _ in 0..<3 {
                #expect(try await scheduler.schedule(instanceID: try await newInstance(database)) == "host-2")
            }
            // Availability zones come from aggregates; other hosts are in the default zone.
            _ = try await hosts.setEnabled(id: services.first { $0.host == "host-0" }!.id, true)
            let aggregates = Aggregates(database: database)
            let zone = try await aggregates.create(name: "rack-a", availabilityZone: "az1")
            _ = try await aggregates.addHost("host-0", to: zone.id)
            #expect(try await scheduler.schedule(instanceID: try await newInstance(database, zone: "az1")) == "host-0")
            #expect(try await scheduler.schedule(instanceID: try await newInstance(database, zone: "nova")) == "host-2")
            await #expect(throws: Scheduler.Failure.self) {
                try await scheduler.schedule(instanceID: try await newInstance(database, zone: "elsewhere"))
            }
            // Image properties and retries elsewhere.
            let instance = try await newInstance(database)
            await #expect(throws: Scheduler.Failure.self) {
                try await scheduler.schedule(instanceID: instance, imageProperties: ["hw_architecture": "aarch64"])
            }
            let first = try await scheduler.schedule(instanceID: instance, imageProperties: ["hypervisor_type": "qemu"])
            // A failed build there: the retry goes elsewhere.
            let retried = try await scheduler.schedule(instanceID: instance, excluding: [first])
            #expect(retried != first && ["host-0", "host-2"].contains(retried))
        }
    }
}
