import Foundation
import SQLKit
import Store

/// A flavor, with its extra specs decoded. Its database row stays inside Compute.
public struct Flavor: Sendable, Equatable {
    var row: FlavorRow
    public var extraSpecs: [String: String]

    public var id: String { row.id }
    public var name: String { row.name }
    public var description: String? {
        get { row.description }
        set { row.description = newValue }
    }
    public var memoryMB: Int { row.memoryMB }
    public var vcpus: Int { row.vcpus }
    public var rootGB: Int { row.rootGB }
    public var ephemeralGB: Int { row.ephemeralGB }
    public var swap: Int { row.swap }
    public var rxtxFactor: Double { row.rxtxFactor }
    public var isPublic: Bool { row.isPublic }
    public var disabled: Bool { row.disabled }
    /// Unix milliseconds.
    public var createdAt: Int64 { row.createdAt }

    init(row: FlavorRow, extraSpecs: [String: String] = [:]) {
        self.row = row
        self.extraSpecs = extraSpecs
    }

    /// A new flavor, created now.
    public init(id: String, name: String, memoryMB: Int, vcpus: Int, rootGB: Int, ephemeralGB: Int, swap: Int, rxtxFactor: Double,
                isPublic: Bool, description: String?) {
        self.init(row: FlavorRow(id: id, name: name, memoryMB: memoryMB, vcpus: vcpus, rootGB: rootGB, ephemeralGB: ephemeralGB, swap: swap,
                                 rxtxFactor: rxtxFactor, isPublic: isPublic, description: description,
                                 createdAt: Int64(Date().timeIntervalSince1970 * 1000)))
    }
}

/// What `GET /flavors` asks for: Nova's filters, one sort key and a page.
public struct FlavorListQuery: Sendable {
    /// nil: public and private alike (an admin's `is_public=none`).
    public var isPublic: Bool?
    public var minRAM: Int?
    public var minDisk: Int?
    public var sortKey = "flavorid"
    public var descending = false
    public var marker: String?
    public var limit: Int?

    public init() {}
}

/// Nova's flavors: sizes of servers, public or shared with chosen projects, with extra specs.
public struct Flavors: Sendable {
    public enum Failure: Error, Equatable {
        case notFound(String)
        case duplicate(String)
        case publicFlavor(String)
        case accessExists(flavor: String, project: String)
        case accessMissing(flavor: String, project: String)
        case specMissing(flavor: String, key: String)
        /// A list query Nova refuses, in Nova's words.
        case badQuery(String)
    }

    let database: Database

    public init(database: Database) { self.database = database }

    static func decode(_ row: FlavorRow) -> Flavor {
        Flavor(row: row, extraSpecs: JSONColumn.decode(row.extraSpecs, fallback: [:]))
    }

    static func encoded(_ flavor: Flavor) -> FlavorRow {
        var row = flavor.row
        row.extraSpecs = JSONColumn.encode(flavor.extraSpecs, fallback: "{}")
        return row
    }

    public func create(_ flavor: Flavor) async throws -> Flavor {
        do {
            try await database.transaction { sql in
                if try await ComputeTables.flavors.get(sql, id: flavor.id) != nil { throw Failure.duplicate("Flavor with ID \(flavor.id) already exists.") }
                try await ComputeTables.flavors.insert(sql, Self.encoded(flavor))
            }
        } catch is DuplicateRowError {
            throw Failure.duplicate("Flavor with name \(flavor.row.name) already exists.")
        }
        return flavor
    }

    public func get(_ id: String) async throws -> Flavor {
        guard let row = try await database.withConnection({ sql in try await ComputeTables.flavors.get(sql, id: id) }) else {
            throw Failure.notFound(id)
        }
        return Self.decode(row)
    }

    /// The flavors `project` may use (every one when `project` is nil: an admin's view).
    func list(visibleTo project: String?) async throws -> [Flavor] {
        try await database.withConnection { sql in
            let all = try await ComputeTables.flavors.all(sql, orderBy: "id").map(Self.decode)
            guard let project else { return all }
            let shared = Set(try await ComputeTables.flavorProjects.all(sql, where: [.equals("project_id", project)]).map(\.flavorID))
            return all.filter { $0.row.isPublic || shared.contains($0.id) }
        }
    }

    /// The flavors `project` may use (all when nil) that `query` selects, sorted and paged
    /// as Nova does. Flavors are few: they are filtered here, not in SQL.
    public func page(_ query: FlavorListQuery, visibleTo project: String?) async throws -> [Flavor] {
        var list = try await list(visibleTo: project)
        if let isPublic = query.isPublic { list = list.filter { $0.isPublic == isPublic } }
        if let minimum = query.minRAM { list = list.filter { $0.memoryMB >= minimum } }
        if let minimum = query.minDisk { list = list.filter { $0.rootGB >= minimum } }
        let keyed: (Flavor) -> String
        switch query.sortKey {
        case "flavorid", "id": keyed = { $0.id }
        case "name": keyed = { $0.name }
        case "memory_mb": keyed = { String(format: "%020ld", $0.memoryMB) }
        case "vcpus": keyed = { String(format: "%020ld", $0.vcpus) }
        case "root_gb": keyed = { String(format: "%020ld", $0.rootGB) }
        case "created_at": keyed = { String(format: "%020lld", $0.createdAt) }
        default: throw Failure.badQuery("Invalid input for query parameters sort_key. Value: \(query.sortKey).")
        }
        list.sort { query.descending ? keyed($0) > keyed($1) : keyed($0) < keyed($1) }
        if let marker = query.marker {
            guard let index = list.firstIndex(where: { $0.id == marker }) else { throw Failure.badQuery("marker [\(marker)] not found") }
            list = Array(list[(index + 1)...])
        }
        if let limit = query.limit { list = Array(list.prefix(limit)) }
        return list
    }

    /// The flavor, if `project` may see it (any flavor when `project` is nil: an admin).
    public func get(_ id: String, visibleTo project: String?) async throws -> Flavor {
        try await database.withConnection { sql in
            guard let row = try await ComputeTables.flavors.get(sql, id: id) else { throw Failure.notFound(id) }
            if !row.isPublic, let project,
               try await ComputeTables.flavorProjects.all(sql, where: [.equals("flavor_id", id), .equals("project_id", project)]).isEmpty {
                throw Failure.notFound(id)
            }
            return Self.decode(row)
        }
    }

    public func change(_ id: String, _ body: @escaping @Sendable (inout Flavor) throws -> Void) async throws -> Flavor {
        try await database.transaction { sql in
            guard let row = try await ComputeTables.flavors.get(sql, id: id) else { throw Failure.notFound(id) }
            var flavor = Self.decode(row)
            try body(&flavor)
            try await ComputeTables.flavors.update(sql, id: id, Self.encoded(flavor))
            return flavor
        }
    }

    public func delete(_ id: String) async throws {
        try await database.transaction { sql in
            guard try await ComputeTables.flavors.delete(sql, where: [.equals("id", id)]) > 0 else { throw Failure.notFound(id) }
        }
    }

    public func projects(of id: String) async throws -> [String] {
        _ = try await get(id)
        return try await database.withConnection { sql in
            try await ComputeTables.flavorProjects.all(sql, where: [.equals("flavor_id", id)], orderBy: "project_id").map(\.projectID)
        }
    }

    /// Shares a private flavor with a project (or stops sharing it).
    public func setAccess(_ id: String, project: String, granted: Bool) async throws -> [String] {
        try await database.transaction { sql in
            guard let row = try await ComputeTables.flavors.get(sql, id: id) else { throw Failure.notFound(id) }
            if row.isPublic { throw Failure.publicFlavor(id) }
            let exists = try await ComputeTables.flavorProjects.first(sql, where: [.equals("flavor_id", id), .equals("project_id", project)]) != nil
            if granted {
                if exists { throw Failure.accessExists(flavor: id, project: project) }
                try await ComputeTables.flavorProjects.insert(sql, FlavorProjectRow(flavorID: id, projectID: project))
            } else {
                if !exists { throw Failure.accessMissing(flavor: id, project: project) }
                try await ComputeTables.flavorProjects.delete(sql, where: [.equals("flavor_id", id), .equals("project_id", project)])
            }
            return try await ComputeTables.flavorProjects.all(sql, where: [.equals("flavor_id", id)], orderBy: "project_id").map(\.projectID)
        }
    }
}
