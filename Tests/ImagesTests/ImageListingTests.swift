import Foundation
@testable import Images
import Logging
import Store
import TestSupport
import Testing

/// Glance's image list filters, sorts and pages in SQL: the same images in the same order as
/// a sort in memory, about a page of rows read per page.
@Suite struct ImageListingTests {
    @Test(arguments: TestDatabase.allCases)
    func pagesWalkTheVisibleImagesInOrder(backend: TestDatabase) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let database = try Database(url, logger: Logger(label: "image-listing-test"))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestNames.unique("images")).path
        try await withCleanup {
            try await Migrator().migrate(database)
            let service = try ImageService(database: database, directory: directory, sizeCap: 1 << 30)
            let visibilities = ["private", "public", "community", "shared"]
            var all: [Image] = []
            for index in 0..<600 {
                var image = Image.queued(id: UUID().uuidString.lowercased(), owner: index % 3 == 0 ? "other" : "p")
                image.row.name = index % 7 == 0 ? nil : "image-\(index % 50)"
                image.row.visibility = visibilities[index % 4]
                image.row.size = index % 5 == 0 ? nil : Int64(index % 40) * 1000
                image.row.createdAt = 1_780_000_000_000 + Int64(index / 3)
                image.tags = index % 2 == 0 ? ["even"] : ["odd", "x\"y"]
                all.append(try await service.create(image))
            }
            // What the caller (project p, not admin) sees by default, sorted by name then size
            // ascending, ties newest first then by id.
            let visible = all.filter { ($0.row.owner == "p" || ["public", "community"].contains($0.row.visibility)) &&
                ($0.row.visibility != "community" || $0.row.owner == "p") && $0.tags.contains("even") }
            let expected = visible.sorted { a, b in
                let keys: [(String, String, Bool)] = [
                    (a.row.name ?? "", b.row.name ?? "", false),
                    (String(format: "%020lld", a.row.size ?? 0), String(format: "%020lld", b.row.size ?? 0), true),
                    (String(format: "%020lld", a.row.createdAt), String(format: "%020lld", b.row.createdAt), true), (a.id, b.id, true)]
                for (x, y, descending) in keys where x != y { return descending ? x > y : x < y }
                return false
            }.map(\.id)
            var query = ImageListQuery(isAdmin: false, projectID: "p", limit: 40)
            query.tags = ["even"]
            query.sort = [(.name, false), (.size, true), (.createdAt, true)]
            var walked: [String] = []
            while true {
                let page = try await service.page(query)
                walked += page.images.map(\.id)
                #expect(page.rowsRead <= 42)
                guard page.more, let last = page.images.last else { break }
                query.marker = last.id
            }
            #expect(walked == expected)

            var tagged = ImageListQuery(isAdmin: true, projectID: nil, limit: 1000)
            tagged.visibility = "all"
            tagged.tags = ["x\"y"]
            tagged.sizeMin = 10_000
            tagged.oneOf = ["owner": ["other"]]
            #expect(Set(try await service.page(tagged).images.map(\.id))
                    == Set(all.filter { $0.tags.contains("x\"y") && ($0.row.size ?? -1) >= 10_000 && $0.row.owner == "other" }.map(\.id)))
            // `?name=in:` names no value: nothing matches, on PostgreSQL too (no `IN ()`).
            tagged.oneOf = ["name": []]
            #expect(try await service.page(tagged).images.isEmpty)
        } cleanup: {
            await database.shutdown()
            try? FileManager.default.removeItem(atPath: directory)
            await drop()
        }
    }
}
