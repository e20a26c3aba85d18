import Foundation
import SQLKit
import Store

/// What `GET /v2/images` asks for: the caller's view, Glance's filters, sort keys and a page.
/// Filtering, sorting and paging happen in SQL.
public struct ImageListQuery: Sendable {
    public enum SortKey: String, Sendable, CaseIterable {
        case name, status, createdAt = "created_at", updatedAt = "updated_at", size, diskFormat = "disk_format"
        case containerFormat = "container_format", visibility, minDisk = "min_disk", minRam = "min_ram", id, owner
    }

    /// An admin sees every image; others their project's and the public and community ones.
    public var isAdmin: Bool
    public var projectID: String?
    /// nil: every visibility but community images of other projects; "all": every one.
    public var visibility: String?
    /// Column filters: the image's value must be one of these (`name`, `status`, `owner`,
    /// `disk_format`, `container_format`).
    public var oneOf: [String: Set<String>] = [:]
    public var protected: Bool?
    public var hidden = false
    public var tags: [String] = []
    public var sizeMin: Int64?
    public var sizeMax: Int64?
    /// Additional properties the image must have, with exactly these values (Glance's filter by
    /// any other query parameter, which Nova's image proxy uses for `server` and `type`).
    public var properties: [String: String] = [:]
    /// Only images updated at or after this time, Unix milliseconds (Glance's `updated_at=gte:`).
    public var updatedSince: Int64?
    /// `min_ram` and `min_disk` equal to these (Glance's filters on its columns).
    public var minRam: Int?
    public var minDisk: Int?
    /// (key, descending), in order; the id (descending) breaks ties.
    public var sort: [(key: SortKey, descending: Bool)] = [(.createdAt, true)]
    public var marker: String?
    public var limit: Int

    public init(isAdmin: Bool, projectID: String?, limit: Int) {
        self.isAdmin = isAdmin
        self.projectID = projectID
        self.limit = limit
    }
}

public struct ImagePage: Sendable {
    public var images: [Image]
    public var more: Bool
    /// Rows read from `images`: the page, one more to learn whether more follow, and the marker's.
    public var rowsRead: Int
}

extension ImageService {
    /// The images `query` asks for, in its order.
    public func page(_ query: ImageListQuery) async throws -> ImagePage {
        let listing = ImageListing(query: query, backend: database.backend)
        return try await database.withConnection { sql in
            let filters = listing.filters()
            var condition = filters
            var rowsRead = 0
            if let marker = query.marker {
                guard let found = try await ImageTables.images.all(sql, where: filters + " AND id = \(bind: marker)").first else {
                    throw Failure.invalid("Invalid marker. Image \(marker) could not be found.")
                }
                rowsRead += 1
                condition = filters + " AND " + listing.after(found)
            }
            let rows = try await ImageTables.images.all(sql, where: condition, orderBy: listing.order, limit: query.limit + 1)
            rowsRead += rows.count
            return ImagePage(images: rows.prefix(query.limit).map(Self.decode), more: rows.count > query.limit, rowsRead: rowsRead)
        }
    }
}

/// The SQL of an image listing.
struct ImageListing {
    let query: ImageListQuery
    let backend: Database.Backend

    var collate: String { backend == .postgresql ? " COLLATE \"C\"" : "" }

    func filters() -> SQLQueryString {
        var parts: [SQLQueryString] = ["status <> 'deleted'"]
        let owned: SQLQueryString = query.projectID.map { "owner = \(bind: $0)" } ?? "owner IS NULL"
        if !query.isAdmin {
            parts.append(query.projectID.map { "(owner = \(bind: $0) OR visibility IN ('public', 'community'))" }
                         ?? "visibility IN ('public', 'community')")
        }
        switch query.visibility {
        case nil: parts.append("(visibility <> 'community' OR " + owned + ")")
        case "all"?: break
        case let visibility?: parts.append("visibility = \(bind: visibility)")
        }
        for (column, values) in query.oneOf.sorted(by: { $0.key < $1.key }) {
            // An empty set matches nothing (`IN ()` is not SQL PostgreSQL accepts).
            parts.append(values.isEmpty ? "1 = 0" : "\(ident: column) IN (\(binds: values.sorted()))")
        }
        if let protected = query.protected { parts.append("protected = \(bind: protected)") }
        parts.append("os_hidden = \(bind: query.hidden)")
        for tag in query.tags {
            parts.append(backend == .postgresql
                ? "(tags::jsonb @> jsonb_build_array(\(bind: tag)::text))"
                : "EXISTS (SELECT 1 FROM json_each(images.tags) WHERE json_each.value = \(bind: tag))")
        }
        if let minimum = query.sizeMin { parts.append("COALESCE(size, -1) >= \(bind: minimum)") }
        if let maximum = query.sizeMax { parts.append("COALESCE(size, \(literal: Int64.max)) <= \(bind: maximum)") }
        for (key, value) in query.properties.sorted(by: { $0.key < $1.key }) {
            parts.append(backend == .postgresql
                ? "((properties::jsonb) ->> \(bind: key)) = \(bind: value)"
                : "EXISTS (SELECT 1 FROM json_each(images.properties) WHERE json_each.key = \(bind: key) AND json_each.value = \(bind: value))")
        }
        if let since = query.updatedSince { parts.append("updated_at >= \(bind: since)") }
        if let minRam = query.minRam { parts.append("min_ram = \(bind: minRam)") }
        if let minDisk = query.minDisk { parts.append("min_disk = \(bind: minDisk)") }
        return parts.joined(separator: " AND ")
    }

    /// A key's expression and whether it is text (absent values sort as "" or 0, as Glance's do).
    func expression(_ key: ImageListQuery.SortKey) -> (sql: String, text: Bool) {
        switch key {
        case .name: return ("COALESCE(name, '')", true)
        case .status: return ("status", true)
        case .createdAt: return ("created_at", false)
        case .updatedAt: return ("updated_at", false)
        case .size: return ("COALESCE(size, 0)", false)
        case .diskFormat: return ("COALESCE(disk_format, '')", true)
        case .containerFormat: return ("COALESCE(container_format, '')", true)
        case .visibility: return ("visibility", true)
        case .minDisk: return ("min_disk", false)
        case .minRam: return ("min_ram", false)
        case .id: return ("id", true)
        case .owner: return ("COALESCE(owner, '')", true)
        }
    }

    var keys: [(key: ImageListQuery.SortKey, descending: Bool)] { query.sort + [(.id, true)] }

    func column(_ key: ImageListQuery.SortKey) -> String {
        let (sql, text) = expression(key)
        return sql + (text ? collate : "")
    }

    var order: SQLQueryString {
        SQLQueryString(keys.map { column($0.key) + ($0.descending ? " DESC" : " ASC") }.joined(separator: ", "))
    }

    func value(_ key: ImageListQuery.SortKey, _ row: ImageRow) -> any Encodable & Sendable {
        switch key {
        case .name: return row.name ?? ""
        case .status: return row.status
        case .createdAt: return row.createdAt
        case .updatedAt: return row.updatedAt
        case .size: return row.size ?? 0
        case .diskFormat: return row.diskFormat ?? ""
        case .containerFormat: return row.containerFormat ?? ""
        case .visibility: return row.visibility
        case .minDisk: return row.minDisk
        case .minRam: return row.minRam
        case .id: return row.id
        case .owner: return row.owner ?? ""
        }
    }

    /// The rows after `marker` in `order`: for keys k1…kn, k1 after it, or k1 equal and k2
    /// after it, and so on.
    func after(_ marker: ImageRow) -> SQLQueryString {
        var alternatives: [SQLQueryString] = []
        var equalSoFar: [SQLQueryString] = []
        for (key, descending) in keys {
            let column = column(key), value = value(key, marker)
            let step: SQLQueryString = "\(unsafeRaw: column) \(unsafeRaw: descending ? "<" : ">") \(bind: value)"
            alternatives.append("(" + (equalSoFar + [step]).joined(separator: " AND ") + ")")
            equalSoFar.append("\(unsafeRaw: column) = \(bind: value)")
        }
        // The first key's bound in front lets an index start at the marker.
        guard let (first, descending) = keys.first else { return "(" + alternatives.joined(separator: " OR ") + ")" }
        let bound: SQLQueryString = "\(unsafeRaw: column(first)) \(unsafeRaw: descending ? "<=" : ">=") \(bind: value(first, marker))"
        return "(" + bound + " AND (" + alternatives.joined(separator: " OR ") + "))"
    }
}
