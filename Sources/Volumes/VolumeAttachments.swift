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
    /// The iSCSI target the volume was exported on for this attachment (a server on another
    /// host than the volume).
    public var iscsi: ISCSITarget?

    /// Plugged into its server's guest by the compute service.
    public var isPlugged: Bool { !external && (status == "attached" || status == "detaching") }

    public var disk: VolumeDisk { VolumeDisk(volumeID: volumeID, path: path, block: block, device: device, iscsi: iscsi) }
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
    /// The CHAP account made for the attachment when its volume is exported over iSCSI.
    var chapUser: String?
    var chapSecret: String?
    /// The target it was exported on (JSON of `ISCSITarget`).
    var target: String?

    var value: VolumeAttachment {
        VolumeAttachment(id: id, volumeID: volumeId, instanceID: instanceId, host: host, device: device, path: path, block: block,
                         status: status, createdAt: createdAt, deleteOnTermination: deleteOnTermination, external: external, mode: attachMode,
                         iscsi: target.flatMap { JSONColumn.decode($0, as: ISCSITarget?.self, fallback: nil) })
    }
}

extension Tables {
    static let attachments = Table<AttachmentRow>("volume_attachments")
}

/// Attaching volumes to servers (the Cinder side of Nova's os-volume_attachments): reserve,
/// connect, finish or undo; detach the same way. A guest on the volume's own node gets its file
/// or device; a guest on another host gets an iSCSI export with a CHAP account of its own.
extension VolumeService {
    /// Reserves an available volume for `instanceID` on `host` (the volume goes `attaching`).
    public func reserve(_ volumeID: String, projectID: String?, instanceID: String, host: String,
                        deleteOnTermination: Bool = false) async throws -> (Volume, VolumeAttachment) {
        try await database.transaction { sql in
            var volume = try await self.volume(sql, volumeID, projectID: projectID, locked: true)
            guard volume.status == VolumeStatus.available else {
                throw VolumeFailure.invalidVolume("volume \(volumeID) status must be available to reserve, but the status is \(volume.status).")
            }
            guard !volume.host.isEmpty else {
                throw VolumeFailure.invalidVolume("volume \(volumeID) is on no host.")
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

    /// The disk a guest on `host` gets for the volume of `attachment`: the volume's file or
    /// device when it is on that host; otherwise the volume exported over iSCSI by its node,
    /// with a CHAP account made for this attachment (recorded before the node is asked, so a
    /// crash in between leaves an account the node's reconcile knows about).
    public func disk(for volume: Volume, attachment: VolumeAttachment, host: String) async throws -> VolumeDisk {
        if volume.host == host {
            let connection = try await connection(volume)
            return VolumeDisk(volumeID: volume.id, path: connection.path, block: connection.block)
        }
        return VolumeDisk(volumeID: volume.id, path: "", block: false, iscsi: try await exportVolume(volume, attachmentID: attachment.id))
    }

    /// Exports the volume for one attachment (its account made once and kept).
    func exportVolume(_ volume: Volume, attachmentID: String) async throws -> ISCSITarget {
        guard let export else { throw VolumeFailure.invalidVolume("volume \(volume.id) is on \(volume.host): this cloud exports no volumes to other hosts.") }
        let account: (user: String, secret: String) = try await database.transaction { sql in
            guard var row = try await Tables.attachments.lockedGet(sql, id: attachmentID) else {
                throw VolumeFailure(404, "Attachment \(attachmentID) could not be found.")
            }
            if let user = row.chapUser, let secret = row.chapSecret { return (user, secret) }
            row.chapUser = Self.chapUser(attachmentID)
            row.chapSecret = Self.chapSecret()
            try await Tables.attachments.update(sql, id: attachmentID, row)
            return (row.chapUser!, row.chapSecret!)
        }
        let target = try await export(volume.host, VolumeExport(volume: Self.spec(volume), attachmentID: attachmentID,
                                                               username: account.user, password: account.secret))
        try await database.transaction { sql in
            guard var row = try await Tables.attachments.lockedGet(sql, id: attachmentID) else { return }
            row.target = JSONColumn.encode(target, fallback: "")
            try await Tables.attachments.update(sql, id: attachmentID, row)
        }
        return target
    }

    /// A CHAP user name per attachment (tgtd's accounts are shared by all its targets).
    static func chapUser(_ attachmentID: String) -> String { "petrel-" + attachmentID.replacingOccurrences(of: "-", with: "").prefix(24) }

    /// 20 random letters and digits, as Cinder's generated CHAP secrets.
    static func chapSecret() -> String {
        let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }

    /// The attach is done: the volume is `in-use`, the attachment holds the disk the guest got.
    public func finishAttachment(_ id: String, disk: VolumeDisk) async throws {
        try await database.transaction { sql in
            guard var row = try await Tables.attachments.lockedGet(sql, id: id) else { return }
            row.status = "attached"; row.device = disk.device; row.path = disk.path; row.block = disk.block
            if let iscsi = disk.iscsi { row.target = JSONColumn.encode(iscsi, fallback: "") }
            try await Tables.attachments.update(sql, id: id, row)
            try await setStatus(sql, row.volumeId, "in-use")
        }
    }

    /// An attach that failed (or a detach that finished): the attachment goes, the volume is
    /// available, and its iSCSI account (if any) is removed from the volume's node.
    public func dropAttachment(_ id: String) async throws {
        let dropped: AttachmentRow? = try await database.transaction { sql in
            guard let row = try await Tables.attachments.lockedGet(sql, id: id) else { return nil }
            _ = try await Tables.attachments.delete(sql, where: [.equals("id", id)])
            try await setStatus(sql, row.volumeId, VolumeStatus.available)
            return row
        }
        if let dropped { await unexport([dropped]) }
    }

    /// Ends the iSCSI access of attachments that are gone. A node that cannot be reached now
    /// removes the account at its next reconcile, which no longer lists it.
    func unexport(_ rows: [AttachmentRow]) async {
        guard let unexport else { return }
        for row in rows {
            guard let user = row.chapUser, let secret = row.chapSecret,
                  let volume = try? await database.withConnection({ sql in try await Tables.volumes.get(sql, id: row.volumeId) })?.value else { continue }
            try? await unexport(volume.host, VolumeExport(volume: Self.spec(volume), attachmentID: row.id, username: user, password: secret))
        }
    }

    /// The iSCSI exports the volumes of `host` should have: one per attachment given an account.
    public func exports(host: String) async throws -> [VolumeExport] {
        try await database.withConnection { sql in
            let volumes = Dictionary(try await Tables.volumes.all(sql, where: [.equals("host", host)]).map { ($0.id, $0.value) }) { a, _ in a }
            guard !volumes.isEmpty else { return [] }
            return try await Tables.attachments.all(sql, where: [.inList("volume_id", Array(volumes.keys))], orderBy: "created_at").compactMap { row in
                guard let user = row.chapUser, let secret = row.chapSecret, let volume = volumes[row.volumeId] else { return nil }
                return VolumeExport(volume: Self.spec(volume), attachmentID: row.id, username: user, password: secret)
            }
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

    /// Sets whether the attached volume goes with its server (Nova 2.85's attachment update).
    public func setDeleteOnTermination(_ volumeID: String, instanceID: String, _ value: Bool) async throws {
        try await database.transaction { sql in
            guard var row = try await Tables.attachments.first(sql, where: [.equals("volume_id", volumeID), .equals("instance_id", instanceID)]),
                  !row.external, row.status == "attached" || row.status == "detaching" else {
                throw VolumeFailure(404, "Volume \(volumeID) is not attached to server \(instanceID).")
            }
            row.deleteOnTermination = value
            try await Tables.attachments.update(sql, id: row.id, row)
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
        let (doomed, released): ([String], [AttachmentRow]) = try await database.transaction { sql in
            var doomed: [String] = [], released: [AttachmentRow] = []
            for row in try await Tables.attachments.all(sql, where: [.equals("instance_id", instanceID)]) where !row.external {
                _ = try await Tables.attachments.delete(sql, where: [.equals("id", row.id)])
                try await setStatus(sql, row.volumeId, VolumeStatus.available)
                if row.deleteOnTermination { doomed.append(row.volumeId) }
                released.append(row)
            }
            return (doomed, released)
        }
        await unexport(released)
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
/// connection it gets is where the volume is on its node (`local`, a file or a block device)
/// for a connector on that node, and an iSCSI export with a CHAP account of the attachment for
/// a connector elsewhere (the legacy actions connect only on the volume's node).
extension VolumeService {
    /// What a connector is told: Cinder's `connection_info`.
    public struct ConnectionInfo: Sendable, Equatable {
        /// `local` (a file or device on the volume's node) or `iscsi`.
        public var driverVolumeType: String { iscsi == nil ? "local" : "iscsi" }
        public var devicePath: String
        public var block: Bool
        public var mode: String
        /// The export a connector on another host logs in to.
        public var iscsi: ISCSITarget?

        public init(devicePath: String, block: Bool, mode: String, iscsi: ISCSITarget? = nil) {
            self.devicePath = devicePath; self.block = block; self.mode = mode; self.iscsi = iscsi
        }
    }

    /// The connection to `volume` for a consumer on `connectorHost`: its path when the consumer is
    /// on the volume's node; otherwise an iSCSI export with a CHAP account of the attachment
    /// (`attachmentID`; without one, as for the legacy `os-initialize_connection`, only the
    /// volume's own node can connect).
    func connectionInfo(_ volume: Volume, connectorHost: String?, mode: String, attachmentID: String? = nil) async throws -> ConnectionInfo {
        if let connectorHost, connectorHost != volume.host {
            guard let attachmentID else {
                throw VolumeFailure.invalidVolume("volume \(volume.id) is on \(volume.host) and the connector on \(connectorHost): os-initialize_connection connects a volume only on its own node; use the attachments API (3.27+), which exports it over iSCSI.")
            }
            return ConnectionInfo(devicePath: "", block: false, mode: mode, iscsi: try await exportVolume(volume, attachmentID: attachmentID))
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
        let info = try await connectionInfo(volume, connectorHost: connectorHost, mode: mode, attachmentID: id)
        let (row, exported) = try await database.transaction { sql -> (AttachmentRow, AttachmentRow?) in
            var row = try await self.attachment(sql, id, projectID: projectID, locked: true)
            let before = row
            row.status = "attaching"; row.path = info.devicePath; row.block = info.block; row.attachMode = mode
            if let connectorHost { row.host = connectorHost }
            // Connected on the volume's node now: an export made for an earlier connector goes.
            let stale = info.iscsi == nil && before.chapUser != nil ? before : nil
            if stale != nil { row.chapUser = nil; row.chapSecret = nil; row.target = nil }
            try await Tables.attachments.update(sql, id: id, row)
            try await setStatus(sql, row.volumeId, "attaching")
            return (row, stale)
        }
        if let exported { await unexport([exported]) }
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
