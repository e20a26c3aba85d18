import Foundation
import Logging
import PetrelCore
import ProcessDriver
import SQLKit
import Store
import TestSupport
import Testing

struct Explosion: Error {}

@Suite struct StoreTests {
    let logger = Logger(label: "store-test")

    @Test(arguments: TestDatabase.allCases)
    func migrationsAreVersionedAndIdempotent(backend: TestDatabase) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let database = try Database(url, logger: logger)
        try await withCleanup {
            let migrator = Migrator()
            #expect(try await migrator.currentVersion(database) == 0)
            await #expect(throws: StoreError.notMigrated(current: 0, latest: migrator.latest)) {
                try await migrator.requireCurrent(database)
            }
            // Two controllers syncing at once: each migration applies exactly once.
            let other = try Database(url, logger: logger)
            let applied = try await withCleanup {
                async let first = migrator.migrate(database)
                async let second = migrator.migrate(other)
                return try await first + second
            } cleanup: {
                await other.shutdown()
            }
            #expect(applied.sorted() == migrator.migrations.map(\.version).sorted())
            #expect(try await migrator.currentVersion(database) == migrator.latest)
            try await migrator.requireCurrent(database)
            #expect(try await migrator.migrate(database).isEmpty)

            // The schema is usable: a service row round-trips, and (host, binary) is unique.
            try await database.withConnection { sql in
                try await sql.raw("""
                    INSERT INTO services (id, host, service_binary, topic, version, created_at, updated_at)
                    VALUES ('s1', 'node-1', 'nova-compute', 'compute', '0.1.0', 1, 1)
                    """).run()
                let row = try await sql.raw("SELECT host, disabled, report_count FROM services WHERE id = 's1'").first()
                #expect(try row?.decode(column: "host", as: String.self) == "node-1")
                #expect(try row?.decode(column: "disabled", as: Bool.self) == false)
                #expect(try row?.decode(column: "report_count", as: Int.self) == 0)
            }
            await #expect(throws: (any Error).self) {
                try await database.withConnection { sql in
                    try await sql.raw("""
                        INSERT INTO services (id, host, service_binary, topic, version, created_at, updated_at)
                        VALUES ('s2', 'node-1', 'nova-compute', 'compute', '0.1.0', 1, 1)
                        """).run()
                }
            }

            // A database from a newer Petrel is refused, not touched.
            try await database.withConnection { sql in
                try await sql.raw("INSERT INTO petrel_schema (version, name, applied_at) VALUES (999, 'future', 0)").run()
            }
            await #expect(throws: StoreError.newerThanThisProgram(current: 999, latest: migrator.latest)) {
                try await migrator.requireCurrent(database)
            }
        } cleanup: {
            await database.shutdown()
            await drop()
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func transactionsCommitOrRollBack(backend: TestDatabase) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let database = try Database(url, logger: logger)
        try await withCleanup {
            try await Migrator().migrate(database)
            let insert: SQLQueryString = """
                INSERT INTO hypervisors (id, host, hypervisor_type, hypervisor_version, cpu_model, vcpus, memory_mb, local_gb, updated_at)
                VALUES ('h1', 'node-1', 'QEMU', 7002000, 'x86_64', 2, 4096, 40, 1)
                """
            await #expect(throws: Explosion.self) {
                try await database.transaction { sql in
                    try await sql.raw(insert).run()
                    throw Explosion()
                }
            }
            let count: SQLQueryString = "SELECT COUNT(*) AS n FROM hypervisors"
            #expect(try await database.withConnection { try await $0.raw(count).first()?.decode(column: "n", as: Int.self) } == 0)
            try await database.transaction { sql in try await sql.raw(insert).run() }
            #expect(try await database.withConnection { try await $0.raw(count).first()?.decode(column: "n", as: Int.self) } == 1)
        } cleanup: {
            await database.shutdown()
            await drop()
        }
    }
}

/// SQLite caches each connection's schema, and SQLiteNIO reads a statement's column names before
/// its first step — before SQLite notices a newer schema. A pooled connection that last ran
/// before a migration added a column then answered `SELECT *` without it (a CI failure:
/// "Key 'triedHosts' not found"). Every connection of the pool must see a migration at once.
@Suite struct SchemaChangeTests {
    @Test(arguments: TestDatabase.allCases)
    func everyPooledConnectionSeesAnAddedColumn(backend: TestDatabase) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let database = try Database(url, logger: Logger(label: "schema-test"))
        try await withCleanup {
            let first = Migration(version: 1, name: "gadgets", statements: [
                "CREATE TABLE gadgets (id TEXT PRIMARY KEY)", "INSERT INTO gadgets (id) VALUES ('g1')",
            ])
            let second = Migration(version: 2, name: "gadget colour", statements: [
                "ALTER TABLE gadgets ADD COLUMN colour TEXT NOT NULL DEFAULT 'blue'",
            ])
            try await Migrator([first]).migrate(database)
            // Open (and use) every connection the pool has, so each caches the old schema.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<32 {
                    group.addTask { _ = try await database.withConnection { try await $0.raw("SELECT * FROM gadgets").all() } }
                }
                try await group.waitForAll()
            }
            try await Migrator([first, second]).migrate(database)
            for _ in 0..<32 {
                let columns = try await database.withConnection { sql in
                    try await sql.raw("SELECT * FROM gadgets").first()?.allColumns ?? []
                }
                #expect(columns.sorted() == ["colour", "id"])
            }
        } cleanup: {
            await database.shutdown()
            await drop()
        }
    }

    /// Version 27 numbers the services a cloud already has (Nova's integer ids before 2.53) in
    /// the order they were created; a new service takes the next number, once.
    @Test(arguments: TestDatabase.allCases)
    func servicesGetIntegerIdsInCreationOrder(backend: TestDatabase) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let database = try Database(url, logger: Logger(label: "store-test"))
        try await withCleanup {
            try await Migrator(Schema.migrations.filter { $0.version < 27 }).migrate(database)
            for (host, created) in [("c-node", 300), ("a-node", 100), ("b-node", 200)] {
                try await database.withConnection { sql in
                    try await sql.raw("""
                        INSERT INTO services (id, host, service_binary, topic, version, report_count, last_seen_at, created_at, updated_at)
                        VALUES (\(bind: UUID().uuidString.lowercased()), \(bind: host), 'nova-compute', 'compute', '1', 1, 0, \(bind: created), 0)
                        """).run()
                }
            }
            try await Migrator().migrate(database)
            let store = ServiceStore(database)
            #expect(try await store.services().map { "\($0.host)=\($0.number)" } == ["a-node=1", "b-node=2", "c-node=3"])
            try await store.record(host: "d-node", version: "1", services: [("nova-compute", "compute")], hypervisor: nil)
            try await store.record(host: "d-node", version: "1", services: [("nova-compute", "compute")], hypervisor: nil)
            #expect(try await store.services().first { $0.host == "d-node" }?.number == 4, "a new service numbered once")
        } cleanup: {
            await database.shutdown()
            await drop()
        }
    }

    /// Version 13 drops the service rows older nodes reported for agents and cinder-volume
    /// whose code did not exist; nova-compute stays.
    @Test(arguments: TestDatabase.allCases)
    func servicesNoNodeRanAreDropped(backend: TestDatabase) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let database = try Database(url, logger: Logger(label: "store-test"))
        try await withCleanup {
            try await Migrator(Schema.migrations.filter { $0.version < 13 }).migrate(database)
            // Rows as a node of that time wrote them (today's store writes later columns too).
            @Sendable func binaries() async throws -> [String] {
                try await database.withConnection { sql in
                    try await sql.raw("SELECT service_binary FROM services ORDER BY service_binary").all()
                        .map { try $0.decode(column: "service_binary", as: String.self) }
                }
            }
            for (binary, topic) in [("nova-compute", "compute"), ("neutron-linuxbridge-agent", "network"), ("neutron-dhcp-agent", "network"),
                                    ("neutron-l3-agent", "network"), ("neutron-metadata-agent", "network"), ("cinder-volume", "volume")] {
                try await database.withConnection { sql in
                    try await sql.raw("""
                        INSERT INTO services (id, host, service_binary, topic, version, report_count, last_seen_at, created_at, updated_at)
                        VALUES (\(bind: UUID().uuidString.lowercased()), 'old-node', \(bind: binary), \(bind: topic), '1', 1, 0, 0, 0)
                        """).run()
                }
            }
            #expect(try await binaries().count == 6)
            #expect(try await Migrator(Schema.migrations.filter { $0.version <= 13 }).migrate(database) == [13])
            #expect(try await binaries() == ["nova-compute"])
        } cleanup: {
            await database.shutdown()
            await drop()
        }
    }
}
