import Foundation
import SQLKit

/// A row of `aggregates`: Nova's host aggregate.
public struct AggregateRow: Codable, Sendable, Equatable {
    public var id: Int
    public var uuid: String
    public var name: String
    /// A JSON object of strings; `availability_zone` among them.
    public var metadata: String
    /// A JSON array of host names.
    public var hosts: String
    public var createdAt: Int64
    public var updatedAt: Int64?

    public init(id: Int, uuid: String, name: String, metadata: String, hosts: String, createdAt: Int64, updatedAt: Int64?) {
        self.id = id; self.uuid = uuid; self.name = name; self.metadata = metadata; self.hosts = hosts
        self.createdAt = createdAt; self.updatedAt = updatedAt
    }
}

public enum AggregateTables {
    public static let aggregates = Table<AggregateRow>("aggregates")
}
