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
    /// `reserved`, `attaching`, `attached`, `detaching`.
    public var status: String
    public var createdAt: Int64
    /// The volume is deleted with its server (Nova's `delete_on_termination`).
    public var deleteOnTermination: Bool = false
    /// Made through the volume API (Cinder's attachments API or its legacy actions) for a
    /// consumer that connects the volume itself, not plugged into a guest by the compute service.
    public var external: Bool = false
    /// `rw` or `ro`.
    public var mode: String = "rw"

    /// Plugged into its server's guest by the compute service.
    public var isPlugged: Bool { !external && (status == "attached" || status == "detaching") }

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
    var deleteOnTermination: Bool = false
    var external: Bool = false
    var attachMode: String = "rw"

    var value: VolumeAttachment {
        VolumeAttachment(id: id, volumeID: volumeId, instanceID: instanceId, host: host, device: device, path: path, block: block,
                         status: status, createdAt: createdAt, deleteOnTermination: deleteOnTermination, external: external, mode: attachMode)
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
    public func reserve(_ volumeID: String, projectID: String?, instanceID: String, host: String,
                        deleteOnTermination: Bool = false) async throws -> (Volume, VolumeAttachment) {
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
                                    path: "", block: false, status: "attaching", createdAt: now(), deleteOnTermination: deleteOnTermination)
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

    /// A server is gone: its volumes are available again, and those marked
    /// `delete_on_termination` are deleted. Returns the volumes whose delete could not start
    /// (they stay available, with the reason logged by the caller).
    @discardableResult
    public func releaseAll(instanceID: String) async throws -> [(volumeID: String, error: any Error)] {
        let doomed: [String] = try await database.transaction { sql in
            var doomed: [String] = []
            for row in try await Tables.attachments.all(sql, where: [.equals("instance_id", instanceID)]) where !row.external {
                _ = try await Tables.attachments.delete(sql, where: [.equals("id", row.id)])
                try await setStatus(sql, row.volumeId, VolumeStatus.available)
                if row.deleteOnTermination { doomed.append(row.volumeId) }
            }
            return doomed
        }
        var failed: [(volumeID: String, error: any Error)] = []
        for id in doomed {
            do { try await delete(id, projectID: nil) } catch { failed.append((id, error)) }
        }
        return failed
    }

    func setStatus(_ sql: any SQLDatabase, _ volumeID: String, _ status: String) async throws {
        guard var volume = try await Tables.volumes.lockedGet(sql, id: volumeID)?.value else { return }
        volume.status = status
        volume.updatedAt = now()
        try await Tables.volumes.update(sql, id: volumeID, VolumeRow(volume))
    }
}

/// Cinder's attachments API (3.27+) and the legacy `os-volume_actions` (reserve,
/// initialize_connection, attach, begin/roll detaching, detach, unreserve): the bookkeeping a
/// consumer that connects volumes itself (another Nova, a bare-metal service) drives. The
/// connection it gets is where the volume is on its node (`local`, a file or a block device);
/// only a consumer on that node can use it until an export (iSCSI) exists.
extension VolumeService {
    /// What a connector is told: Cinder's `connection_info`.
    public struct ConnectionInfo: Sendable, Equatable {
        public var driverVolumeType = "local"
        public var devicePath: String
        public var block: Bool
        public var mode: String

        public init(devicePath: String, block: Bool, mode: String) {
            self.devicePath = devicePath; self.block = block; self.mode = mode
        }
    }

    /// The connection to `volume` for a consumer on `connectorHost`, asked of the volume's node.
    func connectionInfo(_ volume: Volume, connectorHost: String?, mode: String) async throws -> ConnectionInfo {
        if let connectorHost, connectorHost != volume.host {
            throw VolumeFailure.invalidVolume("volume \(volume.id) is on \(volume.host) and the connector on \(connectorHost): this cloud connects a volume only on its own node (no iSCSI export yet).")
        }
        let result = try await connection(volume)
        return ConnectionInfo(devicePath: result.path, block: result.block, mode: mode)
    }

    func attachment(_ sql: any SQLDatabase, _ id: String, projectID: String?, locked: Bool = false) async throws -> AttachmentRow {
        let row = locked ? try await Tables.attachments.lockedGet(sql, id: id) : try await Tables.attachments.get(sql, id: id)
        guard let row, (try? await volume(sql, row.volumeId, projectID: projectID)) != nil else {
            throw VolumeFailure(404, "Volume attachment \(id) could not be found.")
        }
        return row
    }

    /// One attachment, if the caller's project owns its volume (nil: any project).
    public func attachment(_ id: String, projectID: String?) async throws -> VolumeAttachment {
        try await database.withConnection { sql in try await self.attachment(sql, id, projectID: projectID).value }
    }

    /// The attachments of the volumes of `projectID` (nil: every project), oldest first.
    public func attachments(projectID: String?) async throws -> [VolumeAttachment] {
        try await database.withConnection { sql in
            let rows = try await Tables.attachments.all(sql, orderBy: "created_at")
            guard let projectID else { return rows.map(\.value) }
            let owned = Set(try await Tables.volumes.all(sql, where: [.equals("project_id", projectID)]).map(\.id))
            return rows.filter { owned.contains($0.volumeId) }.map(\.value)
        }
    }

    /// `POST /attachments`: reserves an available volume for `instanceID` (attachment and volume
    /// `reserved`); with a connector also connects it (both `attaching`) and says how.
    public func createAttachment(volumeID: String, projectID: String?, instanceID: String?, connectorHost: String?, connected: Bool,
                                 mode: String) async throws -> (VolumeAttachment, ConnectionInfo?) {
        let (volume, row) = try await hold(volumeID, projectID: projectID, instanceID: instanceID, host: connectorHost, mode: mode,
                                           volumeStatus: "reserved")
        guard connected else { return (row.value, nil) }
        do {
            return try await connectAttachment(row.id, projectID: projectID, connectorHost: connectorHost, mode: mode, volume: volume)
        } catch {
            try? await dropAttachment(row.id)
            throw error
        }
    }

    /// Holds an available volume for an external consumer: a `reserved` attachment, and the
    /// volume in `volumeStatus` (`reserved` for the attachments API, `attaching` for
    /// `os-reserve`), in one transaction.
    private func hold(_ volumeID: String, projectID: String?, instanceID: String?, host: String?, mode: String,
                      volumeStatus: String) async throws -> (Volume, AttachmentRow) {
        try await database.transaction { sql -> (Volume, AttachmentRow) in
            var volume = try await self.volume(sql, volumeID, projectID: projectID, locked: true)
            guard volume.status == VolumeStatus.available else {
                throw VolumeFailure.invalidVolume("Volume \(volumeID) status must be available or downloading to reserve, but the current status is \(volume.status).")
            }
            volume.status = volumeStatus
            volume.updatedAt = now()
            try await Tables.volumes.update(sql, id: volume.id, VolumeRow(volume))
            let row = AttachmentRow(id: UUID().uuidString.lowercased(), volumeId: volume.id, instanceId: instanceID ?? "",
                                    host: host ?? "", device: nil, path: "", block: false, status: "reserved", createdAt: now(),
                                    external: true, attachMode: mode)
            try await Tables.attachments.insert(sql, row)
            return (volume, row)
        }
    }

    /// `PUT /attachments/{id}` with a connector: the volume connected for it (`attaching`).
    public func updateAttachment(_ id: String, projectID: String?, connectorHost: String?, mode: String?) async throws
        -> (VolumeAttachment, ConnectionInfo?) {
        let row = try await database.withConnection { sql in try await self.attachment(sql, id, projectID: projectID) }
        guard row.external else { throw Self.pluggedByCompute(row) }
        guard row.status == "reserved" || row.status == "attaching" else {
            throw VolumeFailure.invalidVolume("Volume attachment \(id) status must be reserved or attaching to connect it, but it is \(row.status).")
        }
        let volume = try await self.volume(row.volumeId, projectID: nil)
        return try await connectAttachment(id, projectID: projectID, connectorHost: connectorHost, mode: mode ?? row.attachMode, volume: volume)
    }

    private func connectAttachment(_ id: String, projectID: String?, connectorHost: String?, mode: String, volume: Volume) async throws
        -> (VolumeAttachment, ConnectionInfo?) {
        let info = try await connectionInfo(volume, connectorHost: connectorHost, mode: mode)
        let row = try await database.transaction { sql -> AttachmentRow in
            var row = try await self.attachment(sql, id, projectID: projectID, locked: true)
            row.status = "attaching"; row.path = info.devicePath; row.block = info.block; row.attachMode = mode
            if let connectorHost { row.host = connectorHost }
            try await Tables.attachments.update(sql, id: id, row)
            try await setStatus(sql, row.volumeId, "attaching")
            return row
        }
        return (row.value, info)
    }

    /// `os-complete` (3.44): the consumer connected the volume; the attachment is `attached`
    /// and the volume `in-use`.
    public func completeAttachment(_ id: String, projectID: String?) async throws {
        try await database.transaction { sql in
            var row = try await self.attachment(sql, id, projectID: projectID, locked: true)
            guard row.external else { throw Self.pluggedByCompute(row) }
            guard row.status == "attaching" || row.status == "attached" else {
                throw VolumeFailure.invalidVolume("Volume attachment \(id) has no connection to complete (status \(row.status)): update it with a connector first.")
            }
            row.status = "attached"
            try await Tables.attachments.update(sql, id: id, row)
            try await setStatus(sql, row.volumeId, VolumeStatus.inUse)
        }
    }

    /// `DELETE /attachments/{id}`: the attachment goes and the volume is available again.
    public func deleteAttachment(_ id: String, projectID: String?) async throws {
        let row = try await database.withConnection { sql in try await self.attachment(sql, id, projectID: projectID) }
        guard row.external else { throw Self.pluggedByCompute(row) }
        try await dropAttachment(id)
    }

    static func pluggedByCompute(_ row: AttachmentRow) -> VolumeFailure {
        VolumeFailure(400, "Invalid volume: volume \(row.volumeId) is attached to server \(row.instanceId) by the compute service; detach it there (openstack server remove volume).")
    }

    // MARK: the legacy actions

    /// `os-reserve`: an available volume is held for an attach (`attaching`).
    public func legacyReserve(_ volumeID: String) async throws {
        _ = try await hold(volumeID, projectID: nil, instanceID: nil, host: nil, mode: "rw", volumeStatus: "attaching")
    }

    /// `os-unreserve`: the hold of `os-reserve` is let go (available again).
    public func legacyUnreserve(_ volumeID: String) async throws {
        try await database.transaction { sql in
            let volume = try await self.volume(sql, volumeID, projectID: nil, locked: true)
            guard let row = try await Tables.attachments.first(sql, where: [.equals("volume_id", volumeID)]) else {
                guard volume.status == "attaching" else { return }
                try await setStatus(sql, volumeID, VolumeStatus.available)
                return
            }
            guard row.external, row.status == "reserved" else {
                throw VolumeFailure.invalidVolume("Volume \(volumeID) status must be attaching to unreserve, but the current status is \(volume.status).")
            }
            _ = try await Tables.attachments.delete(sql, where: [.equals("id", row.id)])
            try await setStatus(sql, volumeID, VolumeStatus.available)
        }
    }

    /// `os-initialize_connection`: how a consumer on `connectorHost` reaches the volume.
    public func legacyInitializeConnection(_ volumeID: String, connectorHost: String?, mode: String) async throws -> ConnectionInfo {
        let volume = try await self.volume(volumeID, projectID: nil)
        guard ["attaching", "reserved", VolumeStatus.inUse, VolumeStatus.available].contains(volume.status) else {
            throw VolumeFailure.invalidVolume("Volume \(volumeID) status must be attaching or in-use to connect, but the current status is \(volume.status).")
        }
        return try await connectionInfo(volume, connectorHost: connectorHost, mode: mode)
    }

    /// `os-attach`: the consumer attached the volume (`in-use`), to a server or a host.
    public func legacyAttach(_ volumeID: String, instanceID: String?, hostName: String?, mountpoint: String?, mode: String) async throws {
        try await database.transaction { sql in
            let volume = try await self.volume(sql, volumeID, projectID: nil, locked: true)
            let row = try await Tables.attachments.first(sql, where: [.equals("volume_id", volumeID)])
            if let existing = row, !existing.external { throw Self.pluggedByCompute(existing) }
            guard volume.status == "attaching" || (row == nil && volume.status == VolumeStatus.available) else {
                throw VolumeFailure.invalidVolume("Volume \(volumeID) status must be attaching or available to attach, but the current status is \(volume.status).")
            }
            let device = mountpoint.map { $0.hasPrefix("/dev/") ? String($0.dropFirst(5)) : $0 }
            if var existing = row {
                existing.status = "attached"; existing.instanceId = instanceID ?? existing.instanceId
                existing.host = hostName ?? existing.host; existing.device = device; existing.attachMode = mode
                try await Tables.attachments.update(sql, id: existing.id, existing)
            } else {
                try await Tables.attachments.insert(sql, AttachmentRow(
                    id: UUID().uuidString.lowercased(), volumeId: volumeID, instanceId: instanceID ?? "", host: hostName ?? "", device: device,
                    path: "", block: false, status: "attached", createdAt: now(), external: true, attachMode: mode))
            }
            try await setStatus(sql, volumeID, VolumeStatus.inUse)
        }
    }

    /// `os-begin_detaching` (in-use → detaching) and `os-roll_detaching` (back to in-use).
    public func legacyDetaching(_ volumeID: String, begin: Bool) async throws {
        try await database.transaction { sql in
            let volume = try await self.volume(sql, volumeID, projectID: nil, locked: true)
            if let row = try await Tables.attachments.first(sql, where: [.equals("volume_id", volumeID)]), !row.external {
                throw Self.pluggedByCompute(row)
            }
            let (from, to) = begin ? (VolumeStatus.inUse, "detaching") : ("detaching", VolumeStatus.inUse)
            guard volume.status == from else {
                if !begin { return }  // Cinder rolls back only a volume that is detaching
                throw VolumeFailure.invalidVolume("Volume \(volumeID) status must be in-use to begin detaching, but the current status is \(volume.status).")
            }
            try await setStatus(sql, volumeID, to)
        }
    }

    /// `os-detach`: the consumer let go of the volume; its attachment goes, the volume is available.
    public func legacyDetach(_ volumeID: String, attachmentID: String?) async throws {
        try await database.transaction { sql in
            _ = try await self.volume(sql, volumeID, projectID: nil, locked: true)
            guard let row = try await Tables.attachments.first(sql, where: [.equals("volume_id", volumeID)]),
                  attachmentID == nil || attachmentID == row.id else {
                throw VolumeFailure.invalidVolume("Volume \(volumeID) is not attached\(attachmentID.map { " as \($0)" } ?? "").")
            }
            guard row.external else { throw Self.pluggedByCompute(row) }
            _ = try await Tables.attachments.delete(sql, where: [.equals("id", row.id)])
            try await setStatus(sql, volumeID, VolumeStatus.available)
        }
    }
}
