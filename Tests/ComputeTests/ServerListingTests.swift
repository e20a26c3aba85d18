import Compute
import Foundation
import Images
import Logging
import Store
import TestSupport
import Testing

/// The servers listing filters, sorts and pages in SQL: a page of 50 out of 5,000 reads about
/// 50 rows, in the same order a full in-memory sort would give.
@Suite struct ServerListingTests {
    static let base: Int64 = 1_780_000_000_000

    func withServers(_ backend: TestDatabase, _ body: @Sendable (Servers, [InstanceRow]) async throws -> Void) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let database = try Database(url, logger: Logger(label: "listing-test"))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestNames.unique("images")).path
        try await withCleanup {
            try await Migrator().migrate(database)
            let states: [(String, String?)] = [("active", nil), ("active", "rebooting"), ("stopped", nil), ("stopped", "rebuilding"),
                                               ("building", "scheduling"), ("error", nil), ("paused", nil), ("active", "rebuilding")]
            var rows: [InstanceRow] = []
            for index in 0..<5_000 {
                // Names repeat (sorting by name needs the tie-breakers), creation times too.
                var row = InstanceRow(id: UUID().uuidString.lowercased(), name: "vm-\(index % 700)", projectID: index % 10 == 9 ? "other" : "p",
                                      userID: "u", flavorID: "f\(index % 3)", vcpus: 1, memoryMB: 256, rootGB: 1, imageID: nil,
                                      availabilityZone: nil, createdAt: Self.base + Int64(index / 2) * 1000)
                (row.vmState, row.taskState) = states[index % states.count]
                row.updatedAt = row.createdAt + Int64(index % 17)
                row.host = index % 4 == 0 ? nil : "host-\(index % 3)"
                rows.append(row)
            }
            let all = rows
            try await database.transaction { sql in
                for row in all { try await ComputeTables.instances.insert(sql, row) }
            }
            let images = try ImageService(database: database, directory: directory, sizeCap: 1 << 30)
            try await body(Servers(database: database, images: images, quotas: Quotas(database: database, defaults: [:])), rows)
        } cleanup: {
            await database.shutdown()
            try? FileManager.default.removeItem(atPath: directory)
            await drop()
        }
    }

    /// Newest first, then by id (descending): the listing's order without a sort key.
    static func newestFirst(_ a: InstanceRow, _ b: InstanceRow) -> Bool {
        a.createdAt != b.createdAt ? a.createdAt > b.createdAt : a.id > b.id
    }

    @Test(arguments: TestDatabase.allCases)
    func aPageAfterAMarkerReadsAboutAPage(backend: TestDatabase) async throws {
        try await withServers(backend) { servers, rows in
            let expected = rows.filter { $0.projectID == "p" }.sorted(by: Self.newestFirst)
            #expect(expected.count == 4_500)
            var query = ServerListQuery(projectID: "p")
            query.marker = expected[99].id
            query.limit = 50
            let page = try await servers.page(query)
            #expect(page.servers.map(\.id) == expected[100..<150].map(\.id))
            #expect(page.more)
            // The 50, one more to know a next page exists, and the marker.
            #expect(page.rowsRead <= 52, "read \(page.rowsRead) rows for a page of 50")

            // The last page says no more follow.
            query.marker = expected[4_489].id
            let last = try await servers.page(query)
            #expect(last.servers.map(\.id) == expected[4_490...].map(\.id))
            #expect(!last.more)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func pagesSortedByANameWalkEveryServerOnce(backend: TestDatabase) async throws {
        try await withServers(backend) { servers, rows in
            // A stable sort of the newest-first list by name, ascending: what the API did in memory.
            let expected = rows.sorted(by: Self.newestFirst).enumerated()
                .sorted { $0.element.name != $1.element.name ? $0.element.name < $1.element.name : $0.offset < $1.offset }
                .map(\.element.id)
            var query = ServerListQuery(projectID: nil)
            query.sortKey = .name
            query.ascending = true
            query.limit = 700
            var walked: [String] = []
            while true {
                let page = try await servers.page(query)
                walked += page.servers.map(\.id)
                #expect(page.rowsRead <= 702)
                guard page.more, let last = page.servers.last else { break }
                query.marker = last.id
            }
            #expect(walked == expected)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func filtersMatchTheServersTheyName(backend: TestDatabase) async throws {
        try await withServers(backend) { servers, rows in
            let everything = try await servers.page(ServerListQuery(projectID: "p")).servers
            #expect(everything.map(\.id) == rows.filter { $0.projectID == "p" }.sorted(by: Self.newestFirst).map(\.id))
            for status in ["ACTIVE", "REBOOT", "SHUTOFF", "REBUILD", "BUILD", "ERROR", "PAUSED", "SUSPENDED", "NOPE"] {
                var query = ServerListQuery(projectID: "p")
                query.status = status
                #expect(try await servers.page(query).servers.map(\.id) == everything.filter { $0.status == status }.map(\.id), "\(status)")
            }
            var query = ServerListQuery(projectID: "p")
            query.host = "host-1"
            query.flavorID = "f2"
            query.changedSince = Self.base + 1_000_000
            query.name = "^vm-1[0-9]$"
            query.limit = 5
            let expected = everything.filter {
                $0.host == "host-1" && $0.flavorID == "f2" && $0.updatedAt >= Self.base + 1_000_000
                    && $0.name.range(of: "^vm-1[0-9]$", options: .regularExpression) != nil
            }
            // The largest limit a client can send lists everything (no overflow asking one row more).
            var unbounded = ServerListQuery(projectID: "p")
            unbounded.limit = .max
            #expect(try await servers.page(unbounded).servers.map(\.id) == everything.map(\.id))
            let page = try await servers.page(query)
            #expect(page.servers.map(\.id) == Array(expected.prefix(5)).map(\.id))
            #expect(page.more == (expected.count > 5))
            query.marker = "no-such-server"
            await #expect(throws: Servers.Failure.badRequest("marker [no-such-server] not found")) { try await servers.page(query) }
            // A marker that exists but is not listed is not found either, even when nothing is listed.
            var unlisted = ServerListQuery(projectID: "p")
            unlisted.marker = everything[0].id
            for status in ["PAUSED", "NOPE"] {
                unlisted.status = status
                if everything[0].status != status {
                    await #expect(throws: Servers.Failure.badRequest("marker [\(everything[0].id)] not found")) { try await servers.page(unlisted) }
                }
            }
        }
    }
}
