import Foundation

/// A row of `images` (Glance v2). `properties` is a JSON object of strings, `tags` a JSON array.
public struct ImageRow: Codable, Sendable, Equatable {
    public var id: String
    public var name: String?
    /// queued, saving, active, killed, deleted, deactivated
    public var status: String
    /// private, shared, community, public
    public var visibility: String
    public var protected: Bool
    public var osHidden: Bool
    public var owner: String?
    public var diskFormat: String?
    public var containerFormat: String?
    public var size: Int64?
    public var virtualSize: Int64?
    public var checksum: String?
    public var osHashAlgo: String?
    public var osHashValue: String?
    public var minDisk: Int
    public var minRam: Int
    public var properties: String
    public var tags: String
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, name: String?, status: String, visibility: String, protected: Bool, osHidden: Bool, owner: String?,
                diskFormat: String?, containerFormat: String?, minDisk: Int, minRam: Int, properties: String, tags: String,
                createdAt: Int64) {
        self.id = id; self.name = name; self.status = status; self.visibility = visibility; self.protected = protected
        self.osHidden = osHidden; self.owner = owner; self.diskFormat = diskFormat; self.containerFormat = containerFormat
        self.size = nil; self.virtualSize = nil; self.checksum = nil; self.osHashAlgo = nil; self.osHashValue = nil
        self.minDisk = minDisk; self.minRam = minRam; self.properties = properties; self.tags = tags
        self.createdAt = createdAt; self.updatedAt = createdAt
    }
}

public enum ImageTables {
    public static let images = Table<ImageRow>("images")
}
