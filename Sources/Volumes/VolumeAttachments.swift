import Contracts
import Foundation
import SQLKit
import Store

/// A volume attached (or being attached) to a server.
public struct VolumeAttachment: Sendable, Equatable {
    public var id: String
    public var volumeID: String
    public var instanceID: String
    /// The server's host.
    public var host: String
    public var device: String?
    public var path: String
    public var block: Bool
    /// `attaching`, `attached`, `detaching`.
    public var status: String
    public var createdAt: Int64

    public var disk: VolumeDisk { VolumeDisk(volumeID: volumeID, path: path, block: block, device: device) }
}

struct AttachmentRow: Codable, Sendable {
    var id: String
    var volumeId: String
    var instanceId: String
    var host: String
    var device: String?
    var path: String
    var block: Bool
    var status: String
    var createdAt: Int64

    var value: VolumeAttachment {
        VolumeAttachment(id: id, volumeID: volumeId, instanceID: instanceId, host: host, device: device, path: path, block: block,
                         status: status, createdAt: createdAt)
    }
}

extension Tables {
    static let attachments = Table<AttachmentRow>("volume_attachments")
}

/// Attaching volumes to servers (the Cinder side of Nova's os-volume_attachments): reserve,
/// connect, finish or undo; detach the same way. A volume is reachable only by a guest on its
/// own node until an export (iSCSI) exists.
extension VolumeService {
    /// Reserves an available volume for `instanceID` on `host` (the volume goes `attaching`).
    public func reserve(_ volumeID: String, projectID: String?, instanceID: String, host: String) async throws -> (Volume, VolumeAttachment) {
        try await database.transaction { sql in
            var volume = try await self.volume(sql, volumeID, projectID: projectID, locked: true)
            guard volume.status == VolumeStatus.available else {
                throw VolumeFailure.invalidVolume("volume \(volumeID) status must be available to reserve, but the status is \(volume.status).")
            }
            guard volume.host == host else {
                throw VolumeFailure.invalidVolume("volume \(volumeID) is on \(volume.host.isEmpty ? "no host" : volume.host) and the server on \(host): this cloud attaches a volume only to a server on the volume's own node (no iSCSI export yet).")
            }
            volume.status = "attaching"
            volume.updatedAt = now()
            try await Tables.volumes.update(sql, id: volume.id, VolumeRow(volume))
            let row = AttachmentRow(id: UUID().uuidString.lowercased(), volumeId: volume.id, instanceId: instanceID, host: host, device: nil,
                                    path: "", block: false, status: "attaching", createdAt: now())
            try await Tables.attachments.insert(sql, row)
            return (volume, row.value)
        }
    }

    /// Where the volume is on its node (asked of the node's volume service).
    public func connection(_ volume: Volume) async throws -> VolumeConnection.Result {
        try await connect(volume.host, VolumeSpec(id: volume.id, backend: volume.backend, sizeGB: volume.size, status: volume.status))
    }

    /// The attach is done: the volume is `in-use`, the attachment holds the disk the guest got.
    public func finishAttachment(_ id: String, disk: VolumeDisk) async throws {
        try await database.transaction { sql in
            guard var row = try await Tables.attachments.lockedGet(sql, id: id) else { return }
            row.status = "attached"; row.device = disk.device; row.path = disk.path; row.block = disk.block
            try await Tables.attachments.update(sql, id: id, row)
            try await setStatus(sql, row.volumeId, "in-use")
        }
    }

    /// An attach that failed (or a detach that finished): the attachment goes, the volume is available.
    public func dropAttachment(_ id: String) async throws {
        try await database.transaction { sql in
            guard let row = try await Tables.attachments.lockedGet(sql, id: id) else { return }
            _ = try await Tables.attachments.delete(sql, where: [.equals("id", id)])
            try await setStatus(sql, row.volumeId, VolumeStatus.available)
        }
    }

    /// Begins detaching `volumeID` from `instanceID` (the volume goes `detaching`).
    public func beginDetach(_ volumeID: String, instanceID: String) async throws -> VolumeAttachment {
        try await database.transaction { sql in
            guard var row = try await Tables.attachments.first(sql, where: [.equals("volume_id", volumeID), .equals("instance_id", instanceID)]),
                  row.status == "attached" else {
                throw VolumeFailure(404, "Volume \(volumeID) is not attached to server \(instanceID).")
            }
            row.status = "detaching"
            try await Tables.attachments.update(sql, id: row.id, row)
            try await setStatus(sql, volumeID, "detaching")
            return row.value
        }
    }

    /// A detach the guest refused: the volume stays attached.
    public func rollDetach(_ id: String) async throws {
        try await database.transaction { sql in
            guard var row = try await Tables.attachments.lockedGet(sql, id: id) else { return }
            row.status = "attached"
            try await Tables.attachments.update(sql, id: id, row)
            try await setStatus(sql, row.volumeId, "in-use")
        }
    }

    /// The attachments of these servers (nil: of every server), oldest first.
    public func attachments(instanceIDs: [String]) async throws -> [VolumeAttachment] {
        try await database.withConnection { sql in
            try await Tables.attachments.all(sql, where: [.inList("instance_id", instanceIDs)], orderBy: "created_at").map(\.value)
        }
    }

    public func attachments(volumeIDs: [String]) async throws -> [VolumeAttachment] {
        try await database.withConnection { sql in
            try await Tables.attachments.all(sql, where: [.inList("volume_id", volumeIDs)], orderBy: "created_at").map(\.value)
        }
    }

    /// A server is gone: its volumes are available again.
    public func releaseAll(instanceID: String) async throws {
        try await database.transaction { sql in
            for row in try await Tables.attachments.all(sql, where: [.equals("instance_id", instanceID)]) {
                _ = try await Tables.attachments.delete(sql, where: [.equals("id", row.id)])
                try await setStatus(sql, row.volumeId, VolumeStatus.available)
            }
        }
    }

    func setStatus(_ sql: any SQLDatabase, _ volumeID: String, _ status: String) async throws {
        guard var volume = try await Tables.volumes.lockedGet(sql, id: volumeID)?.value else { return }
        volume.status = status
        volume.updatedAt = now()
        try await Tables.volumes.update(sql, id: volumeID, VolumeRow(volume))
    }
}
