import Compute
import Contracts
import Foundation
import Hosts
import Images
import Logging
import Placement
import Store
import TestSupport
import Testing

/// Resizes on a real database: Nova's checks, the migration record through its statuses, and
/// Placement — the server's old allocation held by the migration until a confirm or revert,
/// the new flavor claimed on top of it (refused when the host has no room for both).
@Suite struct ResizeClaimTests {
    struct Rig {
        let database: Database
        let servers: Servers
        let scheduler: Scheduler
        let id: String
    }

    func withServer(_ backend: TestDatabase, _ body: @Sendable (Rig) async throws -> Void) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let database = try Database(url, logger: Logger(label: "resize-claims"))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-resize-\(UUID().uuidString)").path
        try await withCleanup {
            try await Migrator().migrate(database)
            try await ServiceStore(database).record(host: "host-0", version: "1", services: [("nova-compute", "compute")],
                                                    hypervisor: HypervisorRecord(type: "QEMU", version: 1, cpuModel: "x86_64", vcpus: 4,
                                                                                 memoryMB: 2048, localGB: 20))
            var options = SchedulerOptions()
            options.ramAllocationRatio = 1.0
            let scheduler = Scheduler(hosts: HostInventory(database: database, serviceDownTime: 300), options: options)
            let flavors = Flavors(database: database)
            for (id, ram, disk) in [("small", 512, 2), ("big", 1024, 4), ("huge", 1800, 4), ("thin", 512, 1)] {
                _ = try await flavors.create(Flavor(id: id, name: id, memoryMB: ram, vcpus: id == "small" || id == "thin" ? 1 : 2, rootGB: disk,
                                                    ephemeralGB: 0, swap: 0, rxtxFactor: 1, isPublic: true, description: nil))
            }
            var row = InstanceRow(id: UUID().uuidString.lowercased(), name: "vm", projectID: "p", userID: "u", flavorID: "small", vcpus: 1,
                                  memoryMB: 512, rootGB: 2, imageID: nil, availabilityZone: nil,
                                  createdAt: Int64(Date().timeIntervalSince1970 * 1000))
            row.host = "host-0"
            row.vmState = VMState.active.rawValue
            row.taskState = nil
            let placed = row, ratios = options.inventoryRatios
            try await database.transaction { sql in
                try await ComputeTables.instances.insert(sql, placed)
                let providers = try await PlacementStore.syncComputeProviders(sql, ratios: ratios)
                try await PlacementStore.claim(sql, instance: placed, providerUUID: providers["host-0"]!)
            }
            let images = try ImageService(database: database, directory: directory, sizeCap: 1 << 20)
            let servers = Servers(database: database, images: images, quotas: Quotas(database: database, defaults: [:]))
            try await body(Rig(database: database, servers: servers, scheduler: scheduler, id: row.id))
        } cleanup: {
            await database.shutdown()
            await drop()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    static let admin = ServerCaller(projectID: "admin", userID: "admin", isAdmin: true)
    static let owner = ServerCaller(projectID: "p", userID: "u", isAdmin: false)

    func held(_ rig: Rig, _ consumer: String) async throws -> [String: Int] {
        try await rig.database.withConnection { sql in
            var result: [String: Int] = [:]
            for row in try await PlacementStore.allocations(sql, consumer: consumer) { result[row.resourceClass, default: 0] += row.used }
            return result
        }
    }

    func report(_ rig: Rig, ends task: TaskState, _ state: VMState, failed: Bool = false) async throws {
        let stamp = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let applied = try await rig.servers.apply(.init(instanceID: rig.id, host: "host-0", kind: failed ? .taskFailed : .taskDone,
                                                        vmState: state, powerState: state == .stopped ? .shutdown : .running,
                                                        endsTask: task, stamp: stamp))
        #expect(applied)
    }

    @Test(arguments: TestDatabase.allCases)
    func resizeHoldsBothFlavorsUntilRevertOrConfirm(backend: TestDatabase) async throws {
        try await withServer(backend) { rig in
            // Nova's refusals, which change nothing.
            await #expect(throws: Servers.Failure.badRequest("When resizing, instances must change flavor!")) {
                try await rig.servers.beginResize(rig.id, flavorRef: "small", host: nil, allowSameHost: true, by: Self.owner)
            }
            await #expect(throws: Servers.Failure.badRequest("Unable to locate requested flavor.")) {
                try await rig.servers.beginResize(rig.id, flavorRef: "nope", host: nil, allowSameHost: true, by: Self.owner)
            }
            await #expect(throws: Servers.Failure.self) {
                try await rig.servers.beginResize(rig.id, flavorRef: "thin", host: nil, allowSameHost: true, by: Self.owner)
            }
            await #expect(throws: Servers.Failure.notFound(rig.id)) {
                try await rig.servers.beginResize(rig.id, flavorRef: "big", host: nil, allowSameHost: true,
                                                  by: ServerCaller(projectID: "other", userID: "x", isAdmin: false))
            }
            #expect(try await rig.servers.migrations(MigrationQuery()).isEmpty)

            let migration = try await rig.servers.beginResize(rig.id, flavorRef: "big", host: nil, allowSameHost: true, by: Self.owner)
            #expect(migration.status == "pre-migrating" && migration.type == "resize" && migration.id == 1)
            #expect(try await rig.servers.get(rig.id, by: Self.owner).status == "RESIZE")
            await #expect(throws: Servers.Failure.self, "a second resize while one runs") {
                try await rig.servers.beginResize(rig.id, flavorRef: "big", host: nil, allowSameHost: true, by: Self.owner)
            }
            #expect(try await rig.scheduler.claimResize(instanceID: rig.id, allowSameHost: true) == "host-0")
            #expect(try await held(rig, rig.id) == ["VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 4])
            #expect(try await held(rig, migration.uuid) == ["VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 2])
            // Claimed once: asked again (a controller restarted), nothing more happens.
            #expect(try await rig.scheduler.claimResize(instanceID: rig.id, allowSameHost: true) == nil)

            try await report(rig, ends: .resizeMigrating, .resized)
            var server = try await rig.servers.get(rig.id, by: Self.owner)
            #expect(server.status == "VERIFY_RESIZE" && server.flavorID == "big" && server.memoryMB == 1024)
            #expect(try await rig.servers.migrations(MigrationQuery()).first?.status == "finished")

            // Revert: the old flavor, and the migration's allocation back on the server.
            _ = try await rig.servers.beginResizeEnd("revertResize", on: rig.id, by: Self.owner)
            #expect(try await rig.servers.get(rig.id, by: Self.owner).status == "REVERT_RESIZE")
            try await report(rig, ends: .resizeReverting, .active)
            server = try await rig.servers.get(rig.id, by: Self.owner)
            #expect(server.status == "ACTIVE" && server.flavorID == "small" && server.memoryMB == 512)
            #expect(try await held(rig, rig.id) == ["VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 2])
            #expect(try await held(rig, migration.uuid).isEmpty)
            #expect(try await rig.servers.migrations(MigrationQuery()).first?.status == "reverted")
            await #expect(throws: Servers.Failure.conflict("Cannot 'confirmResize' instance \(rig.id) while it is in vm_state active")) {
                try await rig.servers.beginResizeEnd("confirmResize", on: rig.id, by: Self.owner)
            }

            // No room for both flavors (512 + 1800 MB of 2048): the server stays as it was.
            let refused = try await rig.servers.beginResize(rig.id, flavorRef: "huge", host: nil, allowSameHost: true, by: Self.owner)
            await #expect(throws: Scheduler.Failure.self) { try await rig.scheduler.claimResize(instanceID: rig.id, allowSameHost: true) }
            try await rig.servers.resizeUnscheduled(rig.id, migrationID: refused.id, reason: "No valid host was found.")
            #expect(try await rig.servers.get(rig.id, by: Self.owner).status == "ACTIVE")
            #expect(try await held(rig, rig.id) == ["VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 2])
            // Not allowed on the same host, and no other host here: refused too.
            _ = try await rig.servers.beginResize(rig.id, flavorRef: nil, host: nil, allowSameHost: false, by: Self.admin)
            await #expect(throws: Scheduler.Failure.self) { try await rig.scheduler.claimResize(instanceID: rig.id, allowSameHost: false) }

            // A cold migration, confirmed: the migration's allocation goes.
            var query = MigrationQuery()
            query.status = "pre-migrating"
            let cold = try #require(try await rig.servers.migrations(query).first)
            try await rig.servers.resizeUnscheduled(rig.id, migrationID: cold.id, reason: "no host")
            let migrate = try await rig.servers.beginResize(rig.id, flavorRef: nil, host: nil, allowSameHost: true, by: Self.admin)
            #expect(migrate.type == "migration" && migrate.newFlavorID == "small")
            #expect(try await rig.scheduler.claimResize(instanceID: rig.id, allowSameHost: true) == "host-0")
            try await report(rig, ends: .resizeMigrating, .resized)
            _ = try await rig.servers.beginResizeEnd("confirmResize", on: rig.id, by: Self.owner)
            try await report(rig, ends: .resizeConfirming, .active)
            #expect(try await held(rig, migrate.uuid).isEmpty)
            #expect(try await held(rig, rig.id) == ["VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 2])
            let all = try await rig.servers.migrations(MigrationQuery())
            let statuses = all.map(\.status)
            #expect(statuses == ["confirmed", "error", "error", "reverted"], "\(statuses)")
            query = MigrationQuery()
            query.limit = 2
            query.marker = all[1].uuid
            #expect(try await rig.servers.migrations(query).map(\.id) == [all[2].id, all[3].id])
        }
    }
}
