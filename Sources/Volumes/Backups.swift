import Contracts
import Foundation
import SQLKit
import Store

/// A volume backup, kept by the node that holds the volume (in its `[backup] directory`).
public struct Backup: Sendable, Equatable {
    public var id: String
    public var volumeID: String
    public var projectID: String
    public var userID: String
    public var name: String?
    public var description: String?
    public var size: Int
    /// creating, available, restoring, deleting, error, error_deleting.
    public var status: String
    public var host: String
    public var backend: String
    /// The backup an incremental one builds on.
    public var parentID: String?
    public var objectCount: Int
    /// The volume a restore under way writes.
    public var restoreVolumeID: String?
    public var metadata: [String: String]
    public var failReason: String?
    public var availabilityZone: String
    public var createdAt: Int64
    public var updatedAt: Int64
    /// When the data was taken (the creation, as no backup here is taken from a snapshot).
    public var dataTimestamp: Int64
}

struct BackupRow: Codable, Sendable {
    var id: String
    var volumeId: String
    var projectId: String
    var userId: String
    var name: String?
    var description: String?
    var size: Int
    var status: String
    var host: String
    var backend: String
    var parentId: String?
    var objectCount: Int
    var restoreVolumeId: String?
    var metadata: String
    var failReason: String?
    var availabilityZone: String
    var createdAt: Int64
    var updatedAt: Int64
    var dataTimestamp: Int64

    init(_ b: Backup) {
        id = b.id; volumeId = b.volumeID; projectId = b.projectID; userId = b.userID; name = b.name; description = b.description
        size = b.size; status = b.status; host = b.host; backend = b.backend; parentId = b.parentID; objectCount = b.objectCount
        restoreVolumeId = b.restoreVolumeID; metadata = VolumeRow.encode(b.metadata); failReason = b.failReason
        availabilityZone = b.availabilityZone; createdAt = b.createdAt; updatedAt = b.updatedAt; dataTimestamp = b.dataTimestamp
    }

    var value: Backup {
        Backup(id: id, volumeID: volumeId, projectID: projectId, userID: userId, name: name, description: description, size: size,
               status: status, host: host, backend: backend, parentID: parentId, objectCount: objectCount, restoreVolumeID: restoreVolumeId,
               metadata: VolumeRow.decode(metadata), failReason: failReason, availabilityZone: availabilityZone, createdAt: createdAt,
               updatedAt: updatedAt, dataTimestamp: dataTimestamp)
    }
}

extension Tables {
    static let backups = Table<BackupRow>("backups")
}

extension VolumeFailure {
    public static func backupNotFound(_ id: String) -> VolumeFailure { VolumeFailure(404, "Backup \(id) could not be found.") }
}

/// Backups (Cinder's `/backups`): made by the node holding the volume, full or incremental (only
/// the chunks changed since the volume's latest backup), restored into a new volume on the same
/// backend or into an existing one there; counted in the `backups` and `backup_gigabytes` quotas.
extension VolumeService {
    public static let backupBinary = "cinder-backup"

    public struct BackupCreate: Sendable {
        public var volumeID: String
        public var projectID: String?
        public var userID: String
        public var name: String?
        public var description: String?
        public var incremental = false
        public var force = false
        public var metadata: [String: String] = [:]
        public init(volumeID: String, projectID: String?, userID: String) {
            self.volumeID = volumeID
            self.projectID = projectID
            self.userID = userID
        }
    }

    public func createBackup(_ request: BackupCreate) async throws -> Backup {
        let live = try await hosts.services { $0.binary == Self.backupBinary }.filter { $0.up && $0.enabled }.map(\.host)
        let backup: Backup = try await database.transaction { sql in
            var volume = try await self.volume(sql, request.volumeID, projectID: request.projectID, locked: true)
            guard volume.status == VolumeStatus.available || volume.status == VolumeStatus.inUse else {
                throw VolumeFailure.invalidVolume("Volume to be backed up must be available or in-use, but the current status is \"\(volume.status)\".")
            }
            guard volume.status == VolumeStatus.available || request.force else {
                throw VolumeFailure.invalidVolume("Backing up an in-use volume must use the force flag.")
            }
            guard live.contains(volume.host) else {
                throw VolumeFailure(503, "Service cinder-backup could not be found.")
            }
            try await checkBackupQuota(sql, project: volume.projectID, gigabytes: volume.size)
            var parent: String?
            if request.incremental {
                parent = try await Tables.backups.all(sql, where: "volume_id = \(bind: volume.id) AND status = 'available'",
                                                      orderBy: "data_timestamp DESC, id DESC").first?.id
                guard parent != nil else {
                    throw VolumeFailure(400, "Invalid backup: No backups available to do an incremental backup.")
                }
            }
            let time = now()
            let backup = Backup(id: UUID().uuidString.lowercased(), volumeID: volume.id, projectID: volume.projectID, userID: request.userID,
                                name: request.name, description: request.description, size: volume.size, status: "creating",
                                host: volume.host, backend: volume.backend, parentID: parent, objectCount: 0, restoreVolumeID: nil,
                                metadata: request.metadata, failReason: nil, availabilityZone: volume.availabilityZone, createdAt: time,
                                updatedAt: time, dataTimestamp: time)
            try await Tables.backups.insert(sql, BackupRow(backup))
            volume.previousStatus = volume.status
            volume.status = "backing-up"
            volume.updatedAt = time
            try await Tables.volumes.update(sql, id: volume.id, VolumeRow(volume))
            return backup
        }
        return try await dispatchBackup(backup)
    }

    func checkBackupQuota(_ sql: any SQLDatabase, project: String, gigabytes: Int) async throws {
        let limits = try await limits(sql, project: project)
        let used = try await usage(sql, project: project)
        if let limit = limits["backups"], limit >= 0, (used["backups"] ?? 0) + 1 > limit {
            throw VolumeFailure(413, "BackupLimitExceeded: Maximum number of backups allowed (\(limit)) exceeded")
        }
        if let limit = limits["backup_gigabytes"], limit >= 0, (used["backup_gigabytes"] ?? 0) + gigabytes > limit {
            throw VolumeFailure(413, "VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes quota. Requested \(gigabytes)G, quota is \(limit)G and \(used["backup_gigabytes"] ?? 0)G has been consumed.")
        }
    }

    func backupSpec(_ sql: any SQLDatabase, _ backup: Backup) async throws -> BackupSpec {
        var spec = BackupSpec(id: backup.id, volumeID: backup.volumeID, backend: backup.backend, sizeGB: backup.size, status: backup.status,
                              parentID: backup.parentID)
        if let target = backup.restoreVolumeID, let volume = try await Tables.volumes.get(sql, id: target) {
            spec.restoreVolumeID = target
            spec.restoreBackend = volume.backend
            spec.restoreSizeGB = volume.size
        }
        return spec
    }

    func dispatchBackup(_ backup: Backup) async throws -> Backup {
        do {
            let spec = try await database.withConnection { sql in try await backupSpec(sql, backup) }
            try await sendBackup(backup.host, spec)
            return backup
        } catch {
            let failed = backup.status == "deleting" ? "error_deleting" : backup.status == "restoring" ? "restore_failed" : "error"
            try await applyBackup(.init(backupID: backup.id, host: backup.host, from: backup.status, outcome: failed,
                                        reason: "the volume service of \(backup.host) could not be reached: \(error)"))
            return try await self.backup(backup.id, projectID: nil)
        }
    }

    public func backups(projectID: String?) async throws -> [Backup] {
        try await ownedRows(Tables.backups, projectID: projectID).map(\.value)
    }

    public func backup(_ id: String, projectID: String?) async throws -> Backup {
        try await ownedRow(Tables.backups, id, projectID: projectID, owner: \.projectId, missing: .backupNotFound(id)).value
    }

    /// The ids of the backups other backups build on.
    public func backupParents(_ ids: [String]) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        return try await database.withConnection { sql in
            Set(try await Tables.backups.all(sql, where: [.inList("parent_id", ids)]).compactMap(\.parentId))
        }
    }

    public func deleteBackup(_ id: String, projectID: String?, force: Bool = false) async throws {
        let backup: Backup = try await database.transaction { sql in
            guard var backup = try await Tables.backups.lockedGet(sql, id: id)?.value, projectID == nil || backup.projectID == projectID else {
                throw VolumeFailure.backupNotFound(id)
            }
            guard force || ["available", "error", "error_deleting"].contains(backup.status) else {
                throw VolumeFailure(400, "Invalid backup: Backup status must be available or error")
            }
            guard try await Tables.backups.first(sql, where: [.equals("parent_id", id)]) == nil else {
                throw VolumeFailure(400, "Invalid backup: Incremental backups exist for this backup.")
            }
            backup.status = "deleting"
            backup.updatedAt = now()
            try await Tables.backups.update(sql, id: id, BackupRow(backup))
            return backup
        }
        _ = try await dispatchBackup(backup)
    }

    /// Restores a backup (Cinder's `restore`): into `volumeID` (available, large enough, on the
    /// backup's node, whose directory holds the backup), or into a new volume made on the
    /// backup's backend. Returns the backup and the volume written.
    public func restoreBackup(_ id: String, projectID: String?, userID: String, volumeID: String?, name: String?) async throws -> (Backup, Volume) {
        let (backup, volume): (Backup, Volume) = try await database.transaction { sql in
            guard var backup = try await Tables.backups.lockedGet(sql, id: id)?.value, projectID == nil || backup.projectID == projectID else {
                throw VolumeFailure.backupNotFound(id)
            }
            guard backup.status == "available" else {
                throw VolumeFailure(400, "Invalid backup: Backup status must be available")
            }
            let time = now()
            var volume: Volume
            if let volumeID {
                volume = try await self.volume(sql, volumeID, projectID: projectID, locked: true)
                guard volume.status == VolumeStatus.available else {
                    throw VolumeFailure.invalidVolume("Volume to be restored to must be available")
                }
                guard volume.size >= backup.size else {
                    throw VolumeFailure.invalidVolume("volume size \(volume.size) is too small to restore backup of size \(backup.size).")
                }
                guard volume.host == backup.host else {
                    throw VolumeFailure.invalidVolume("volume \(volume.id) is on \(volume.host.isEmpty ? "no host" : volume.host), but backup \(id) is kept by \(backup.host): restore it into a new volume")
                }
                volume.status = "restoring-backup"
                volume.updatedAt = time
                try await Tables.volumes.update(sql, id: volume.id, VolumeRow(volume))
            } else {
                let source = try await Tables.volumes.get(sql, id: backup.volumeID)?.value
                let typeID: String
                if let source {
                    typeID = source.volumeTypeID
                } else {
                    typeID = try await volumeType(sql, settings.defaultTypeName, projectID: nil).id
                }
                let type = try await Tables.types.get(sql, id: typeID)?.name ?? ""
                try await checkQuota(sql, project: backup.projectID, type: type, volumes: 1, gigabytes: backup.size)
                volume = Volume(id: UUID().uuidString.lowercased(), projectID: backup.projectID, userID: userID,
                                name: name ?? "restore_backup_\(id)", description: nil, size: backup.size, status: "restoring-backup",
                                host: backup.host, backend: backup.backend, volumeTypeID: typeID, availabilityZone: backup.availabilityZone,
                                bootable: source?.bootable ?? false, metadata: [:], imageMetadata: source?.imageMetadata ?? [:], sourceVolID: nil,
                                snapshotID: nil, imageID: nil, fault: nil, createdAt: time, updatedAt: time)
                try await Tables.volumes.insert(sql, VolumeRow(volume))
            }
            backup.status = "restoring"
            backup.restoreVolumeID = volume.id
            backup.updatedAt = time
            try await Tables.backups.update(sql, id: id, BackupRow(backup))
            return (backup, volume)
        }
        return (try await dispatchBackup(backup), volume)
    }

    public func updateBackup(_ id: String, projectID: String?, name: String??, description: String??, metadata: [String: String]?) async throws -> Backup {
        try await database.transaction { sql in
            guard var backup = try await Tables.backups.lockedGet(sql, id: id)?.value, projectID == nil || backup.projectID == projectID else {
                throw VolumeFailure.backupNotFound(id)
            }
            if let name { backup.name = name }
            if let description { backup.description = description }
            if let metadata { backup.metadata = metadata }
            backup.updatedAt = now()
            try await Tables.backups.update(sql, id: id, BackupRow(backup))
            return backup
        }
    }

    /// Sets a backup's status (an administrator's `os-reset_status`): `available` or `error`.
    public func resetBackupStatus(_ id: String, status: String) async throws {
        try await database.transaction { sql in
            guard var backup = try await Tables.backups.lockedGet(sql, id: id)?.value else { throw VolumeFailure.backupNotFound(id) }
            backup.status = status
            backup.updatedAt = now()
            try await Tables.backups.update(sql, id: id, BackupRow(backup))
        }
    }

    /// A node's news about a backup: the backup's status, and its volume's (back from
    /// `backing-up`, or the restored one from `restoring-backup`).
    @discardableResult
    public func applyBackup(_ update: BackupUpdate.Arguments, requestID: String? = nil) async throws -> Bool {
        try await database.transaction { sql in
            guard var backup = try await Tables.backups.lockedGet(sql, id: update.backupID)?.value, backup.status == update.from,
                  backup.host == update.host else { return false }
            let failure: (MessageAction, MessageDetail)? = switch (update.from, update.outcome) {
            case ("creating", "error"): (.backupCreate, .backupCreateDriverError)
            case ("deleting", "error_deleting"): (.backupDelete, .backupDeleteDriverError)
            case ("restoring", let outcome) where outcome != "restored": (.backupRestore, .backupRestoreError)
            default: nil
            }
            if let (action, detail) = failure {
                try await recordMessage(sql, projectID: backup.projectID, resourceType: "VOLUME_BACKUP", resourceID: backup.id, action: action,
                                        detail: detail, requestID: requestID)
            }
            let time = now()
            switch (update.from, update.outcome) {
            case (_, "deleted"):
                _ = try await Tables.backups.delete(sql, where: [.equals("id", backup.id)])
                return true
            case ("creating", _):
                if var volume = try await Tables.volumes.lockedGet(sql, id: backup.volumeID)?.value, volume.status == "backing-up" {
                    volume.status = volume.previousStatus ?? VolumeStatus.available
                    volume.previousStatus = nil
                    volume.updatedAt = time
                    try await Tables.volumes.update(sql, id: volume.id, VolumeRow(volume))
                }
                backup.status = update.outcome
                backup.objectCount = update.objectCount ?? backup.objectCount
            case ("restoring", _):
                if let target = backup.restoreVolumeID, var volume = try await Tables.volumes.lockedGet(sql, id: target)?.value,
                   volume.status == "restoring-backup" {
                    volume.status = update.outcome == "restored" ? VolumeStatus.available : "error_restoring"
                    volume.fault = update.reason
                    volume.updatedAt = time
                    try await Tables.volumes.update(sql, id: volume.id, VolumeRow(volume))
                }
                backup.status = "available"
                backup.restoreVolumeID = nil
            default:
                backup.status = update.outcome
            }
            backup.failReason = update.reason
            backup.updatedAt = time
            try await Tables.backups.update(sql, id: backup.id, BackupRow(backup))
            return true
        }
    }

    /// The backups a host keeps (or those of `ids`), for its node's reconcile.
    public func backupSpecs(host: String, ids: [String]? = nil) async throws -> [BackupSpec] {
        try await database.withConnection { sql in
            var specs: [BackupSpec] = []
            for row in try await Tables.backups.all(sql, where: [.equals("host", host)] + (ids.map { [.inList("id", $0)] } ?? [])) {
                specs.append(try await backupSpec(sql, row.value))
            }
            return specs
        }
    }
}
