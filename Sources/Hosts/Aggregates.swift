import Foundation
import SQLKit
import Store

/// Nova's host aggregates: named groups of compute hosts with metadata, an availability zone
/// among it. The scheduler will read them; admins manage them through os-aggregates.
public struct Aggregates: Sendable {
    public enum Failure: Error, Equatable {
        case notFound(String)
        case duplicateName(String)
        case unknownHost(String)
        case hostAlreadyMember(host: String, aggregate: Int)
        case hostNotMember(host: String, aggregate: Int)
        case notEmpty(Int)
    }

    /// An aggregate, decoded.
    public struct Aggregate: Sendable, Equatable {
        public var id: Int
        public var uuid: String
        public var name: String
        public var metadata: [String: String]
        public var hosts: [String]
        public var createdAt: Int64
        public var updatedAt: Int64?

        public var availabilityZone: String? { metadata["availability_zone"] }
    }

    let database: Database

    public init(database: Database) { self.database = database }

    public static func decode(_ row: AggregateRow) -> Aggregate {
        let metadata = JSONColumn.decode(row.metadata, fallback: [String: String]())
        let hosts = JSONColumn.decode(row.hosts, fallback: [String]())
        return Aggregate(id: row.id, uuid: row.uuid, name: row.name, metadata: metadata, hosts: hosts, createdAt: row.createdAt,
                         updatedAt: row.updatedAt)
    }

    static func encode(_ aggregate: Aggregate) -> AggregateRow {
        AggregateRow(id: aggregate.id, uuid: aggregate.uuid, name: aggregate.name,
                            metadata: JSONColumn.encode(aggregate.metadata, fallback: "{}"),
                            hosts: JSONColumn.encode(aggregate.hosts, fallback: "[]"),
                            createdAt: aggregate.createdAt, updatedAt: aggregate.updatedAt)
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    public func list() async throws -> [Aggregate] {
        try await database.withConnection { sql in
            try await AggregateTables.aggregates.all(sql, orderBy: "id").map(Self.decode)
        }
    }

    public func get(_ id: Int) async throws -> Aggregate {
        let row = try await database.withConnection { sql in
            try await AggregateTables.aggregates.first(sql, where: [.equals("id", id)])
        }
        guard let row else { throw Failure.notFound("\(id)") }
        return Self.decode(row)
    }

    public func create(name: String, availabilityZone: String?) async throws -> Aggregate {
        // Ids are MAX(id)+1: a concurrent creation may take the same one; then try the next.
        for _ in 0..<10 {
            do {
                return try await database.transaction { sql in
                    var aggregate = Aggregate(id: try await AggregateTables.aggregates.nextIntegerID(sql), uuid: UUID().uuidString.lowercased(), name: name,
                                              metadata: [:], hosts: [], createdAt: Self.now(), updatedAt: nil)
                    if let availabilityZone { aggregate.metadata["availability_zone"] = availabilityZone }
                    try await AggregateTables.aggregates.insert(sql, Self.encode(aggregate))
                    return aggregate
                }
            } catch is DuplicateRowError {
                let taken = try await database.withConnection { sql in
                    try await AggregateTables.aggregates.first(sql, where: [.equals("name", name)])
                }
                if taken != nil { throw Failure.duplicateName(name) }
            }
        }
        throw Failure.duplicateName(name)
    }

    /// Reads, changes and writes one aggregate in a transaction.
    public func change(_ id: Int, _ body: @escaping @Sendable (inout Aggregate, any SQLDatabase) async throws -> Void) async throws -> Aggregate {
        do {
            return try await database.transaction { sql in
                guard let row = try await AggregateTables.aggregates.first(sql, where: [.equals("id", id)]) else {
                    throw Failure.notFound("\(id)")
                }
                var aggregate = Self.decode(row)
                try await body(&aggregate, sql)
                aggregate.updatedAt = Self.now()
                do {
                    try await AggregateTables.aggregates.update(sql, whereColumn: "id", equals: id, Self.encode(aggregate))
                } catch is DuplicateRowError {
                    throw Failure.duplicateName(aggregate.name)
                }
                return aggregate
            }
        }
    }

    public func addHost(_ host: String, to id: Int) async throws -> Aggregate {
        try await change(id) { aggregate, sql in
            let known = try await sql.raw("SELECT host FROM services WHERE host = \(bind: host) AND service_binary = 'nova-compute'").first()
            guard known != nil else { throw Failure.unknownHost(host) }
            guard !aggregate.hosts.contains(host) else { throw Failure.hostAlreadyMember(host: host, aggregate: id) }
            aggregate.hosts.append(host)
        }
    }

    public func removeHost(_ host: String, from id: Int) async throws -> Aggregate {
        try await change(id) { aggregate, _ in
            guard aggregate.hosts.contains(host) else { throw Failure.hostNotMember(host: host, aggregate: id) }
            aggregate.hosts.removeAll { $0 == host }
        }
    }

    public func delete(_ id: Int) async throws {
        try await database.transaction { sql in
            guard let row = try await AggregateTables.aggregates.first(sql, where: [.equals("id", id)]) else {
                throw Failure.notFound("\(id)")
            }
            guard Self.decode(row).hosts.isEmpty else { throw Failure.notEmpty(id) }
            try await AggregateTables.aggregates.delete(sql, where: [.equals("id", id)])
        }
    }
}
