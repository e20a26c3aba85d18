import Contracts
import Foundation
import Store

/// A Cinder volume as the controller keeps it.
public struct Volume: Sendable, Equatable {
    public var id: String
    public var projectID: String
    public var userID: String
    public var name: String?
    public var description: String?
    public var size: Int
    public var status: String
    /// The node whose volume service holds it ('' until scheduled).
    public var host: String
    /// The backend (configuration section) on that node.
    public var backend: String
    /// The backend's `volume_backend_name`, Cinder's pool (filled by the reads).
    public var pool: String = ""
    public var volumeTypeID: String
    public var availabilityZone: String
    public var bootable: Bool
    public var metadata: [String: String]
    public var imageMetadata: [String: String]
    public var sourceVolID: String?
    public var snapshotID: String?
    public var imageID: String?
    /// Why the volume is in an error status.
    public var fault: String?
    public var createdAt: Int64
    public var updatedAt: Int64
    /// The status to go back to after an upload to image.
    public var previousStatus: String? = nil
    /// The image an `uploading` volume fills.
    public var upload: VolumeImageUpload? = nil

    /// Cinder's `os-vol-host-attr:host`: `<node>@<backend>#<pool>`, nil until scheduled.
    public var cinderHost: String? {
        host.isEmpty ? nil : "\(host)@\(backend)#\(pool.isEmpty ? backend : pool)"
    }
}

/// A volume type: which backend its volumes go to (`volume_backend_name`), and who sees it.
public struct VolumeType: Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String?
    public var isPublic: Bool
    public var extraSpecs: [String: String]
    public var createdAt: Int64
    public var updatedAt: Int64
}

/// A backend of a node's volume service, as last reported, and whether that service is alive.
public struct VolumeBackend: Sendable, Equatable {
    public var host: String
    public var name: String
    public var backendName: String
    public var driver: String
    public var thin: Bool
    public var totalBytes: Int64
    public var freeBytes: Int64
    public var reservedPercentage: Int
    public var maxOverSubscriptionRatio: Double
    public var updatedAt: Int64
    /// The sum of the sizes (GB) of the volumes placed on it.
    public var provisionedGB: Int = 0

    public var totalGB: Double { Double(totalBytes) / 1_073_741_824 }
    public var freeGB: Double { Double(freeBytes) / 1_073_741_824 }
}

/// A refusal in Cinder's terms: the HTTP status and Cinder's message.
public struct VolumeFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: Int
    public let message: String

    public init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status): \(message)" }

    public static func invalid(_ message: String) -> VolumeFailure { VolumeFailure(400, message) }
    public static func volumeNotFound(_ id: String) -> VolumeFailure { VolumeFailure(404, "Volume \(id) could not be found.") }
    public static func typeNotFound(_ id: String) -> VolumeFailure { VolumeFailure(404, "Volume type \(id) could not be found.") }
    public static func invalidVolume(_ reason: String) -> VolumeFailure { VolumeFailure(400, "Invalid volume: \(reason)") }
}

/// Statuses a volume is in while a node works on it.
public enum VolumeStatus {
    public static let creating = "creating", available = "available", inUse = "in-use", deleting = "deleting", uploading = "uploading"
    public static let extending = "extending", error = "error", errorDeleting = "error_deleting", errorExtending = "error_extending"
    /// What an administrator may set with `os-reset_status`.
    public static let resettable: Set<String> = ["available", "error", "creating", "deleting", "in-use", "attaching", "detaching",
                                                 "error_deleting", "maintenance", "error_extending", "extending", "reserved"]
}

struct VolumeRow: Codable, Sendable {
    var id: String
    var projectId: String
    var userId: String
    var name: String?
    var description: String?
    var size: Int
    var status: String
    var previousStatus: String?
    var host: String
    var backend: String
    var volumeTypeId: String
    var availabilityZone: String
    var bootable: Bool
    var metadata: String
    var imageMetadata: String
    var sourceVolid: String?
    var snapshotId: String?
    var imageId: String?
    var fault: String?
    var createdAt: Int64
    var updatedAt: Int64
    var upload: String?

    init(_ volume: Volume) {
        id = volume.id; projectId = volume.projectID; userId = volume.userID; name = volume.name; description = volume.description
        size = volume.size; status = volume.status; previousStatus = volume.previousStatus; host = volume.host; backend = volume.backend
        upload = volume.upload.flatMap { try? String(decoding: JSONEncoder().encode($0), as: UTF8.self) }
        volumeTypeId = volume.volumeTypeID; availabilityZone = volume.availabilityZone; bootable = volume.bootable
        metadata = Self.encode(volume.metadata); imageMetadata = Self.encode(volume.imageMetadata); sourceVolid = volume.sourceVolID
        snapshotId = volume.snapshotID; imageId = volume.imageID; fault = volume.fault; createdAt = volume.createdAt
        updatedAt = volume.updatedAt
    }

    var value: Volume {
        Volume(id: id, projectID: projectId, userID: userId, name: name, description: description, size: size, status: status,
               host: host, backend: backend, volumeTypeID: volumeTypeId, availabilityZone: availabilityZone, bootable: bootable,
               metadata: Self.decode(metadata), imageMetadata: Self.decode(imageMetadata), sourceVolID: sourceVolid,
               snapshotID: snapshotId, imageID: imageId, fault: fault, createdAt: createdAt, updatedAt: updatedAt,
               previousStatus: previousStatus, upload: upload.flatMap { try? JSONDecoder().decode(VolumeImageUpload.self, from: Data($0.utf8)) })
    }

    static func encode(_ map: [String: String]) -> String { JSONColumn.encode(map, fallback: "{}") }
    static func decode(_ text: String) -> [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))) ?? [:]
    }
}

struct VolumeTypeRow: Codable, Sendable {
    var id: String
    var name: String
    var description: String?
    var isPublic: Bool
    var extraSpecs: String
    var createdAt: Int64
    var updatedAt: Int64

    init(_ type: VolumeType) {
        id = type.id; name = type.name; description = type.description; isPublic = type.isPublic
        extraSpecs = VolumeRow.encode(type.extraSpecs); createdAt = type.createdAt; updatedAt = type.updatedAt
    }

    var value: VolumeType {
        VolumeType(id: id, name: name, description: description, isPublic: isPublic, extraSpecs: VolumeRow.decode(extraSpecs),
                   createdAt: createdAt, updatedAt: updatedAt)
    }
}

struct VolumeBackendRow: Codable, Sendable {
    var host: String
    var backend: String
    var backendName: String
    var driver: String
    var thin: Bool
    var totalBytes: Int64
    var freeBytes: Int64
    var reservedPercentage: Int
    var maxOverSubscriptionRatio: Double
    var updatedAt: Int64

    var value: VolumeBackend {
        VolumeBackend(host: host, name: backend, backendName: backendName, driver: driver, thin: thin, totalBytes: totalBytes,
                      freeBytes: freeBytes, reservedPercentage: reservedPercentage, maxOverSubscriptionRatio: maxOverSubscriptionRatio,
                      updatedAt: updatedAt)
    }
}

enum Tables {
    static let volumes = Table<VolumeRow>("volumes")
    static let types = Table<VolumeTypeRow>("volume_types")
    static let backends = Table<VolumeBackendRow>("volume_backends")
}

/// Timestamps in milliseconds since 1970, as the other services keep them.
func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
