import Contracts
import Foundation
import SQLKit
import Store

/// A volume snapshot, kept on its volume's backend.
public struct Snapshot: Sendable, Equatable {
    public var id: String
    public var volumeID: String
    public var projectID: String
    public var userID: String
    public var name: String?
    public var description: String?
    public var size: Int
    public var status: String
    public var host: String
    public var backend: String
    public var volumeTypeID: String
    public var metadata: [String: String]
    public var fault: String?
    public var createdAt: Int64
    public var updatedAt: Int64
}

struct SnapshotRow: Codable, Sendable {
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
    var volumeTypeId: String
    var metadata: String
    var fault: String?
    var createdAt: Int64
    var updatedAt: Int64

    init(_ s: Snapshot) {
        id = s.id; volumeId = s.volumeID; projectId = s.projectID; userId = s.userID; name = s.name; description = s.description
        size = s.size; status = s.status; host = s.host; backend = s.backend; volumeTypeId = s.volumeTypeID
        metadata = VolumeRow.encode(s.metadata); fault = s.fault; createdAt = s.createdAt; updatedAt = s.updatedAt
    }

    var value: Snapshot {
        Snapshot(id: id, volumeID: volumeId, projectID: projectId, userID: userId, name: name, description: description, size: size,
                 status: status, host: host, backend: backend, volumeTypeID: volumeTypeId, metadata: VolumeRow.decode(metadata), fault: fault,
                 createdAt: createdAt, updatedAt: updatedAt)
    }

    var spec: SnapshotSpec { SnapshotSpec(id: id, volumeID: volumeId, backend: backend, sizeGB: size, status: status) }
}

extension Tables {
    static let snapshots = Table<SnapshotRow>("snapshots")
}

extension VolumeFailure {
    public static func snapshotNotFound(_ id: String) -> VolumeFailure { VolumeFailure(404, "Snapshot \(id) could not be found.") }
}

/// Snapshots (Cinder's `/snapshots`): taken by the volume's node on the volume's backend, counted
/// in the `snapshots` and `gigabytes` quotas; a volume with snapshots is not deleted.
extension VolumeService {
    public struct SnapshotCreate: Sendable {
        public var volumeID: String
        public var projectID: String?
        public var userID: String
        public var name: String?
        public var description: String?
        public var force = false
        public var metadata: [String: String] = [:]
        public init(volumeID: String, projectID: String?, userID: String) {
            self.volumeID = volumeID
            self.projectID = projectID
            self.userID = userID
        }
    }

    public func createSnapshot(_ request: SnapshotCreate) async throws -> Snapshot {
        let snapshot: Snapshot = try await database.transaction { sql in
            let volume = try await self.volume(sql, request.volumeID, projectID: request.projectID, locked: true)
            guard volume.status == VolumeStatus.available || (request.force && volume.status == VolumeStatus.inUse) else {
                throw VolumeFailure.invalidVolume("Volume \(volume.id) status must be available, but current status is: \(volume.status).")
            }
            let type = try await Tables.types.get(sql, id: volume.volumeTypeID)?.name ?? ""
            try await checkQuota(sql, project: volume.projectID, type: type, volumes: 0, gigabytes: volume.size, snapshots: 1)
            let time = now()
            let snapshot = Snapshot(id: UUID().uuidString.lowercased(), volumeID: volume.id, projectID: volume.projectID, userID: request.userID,
                                    name: request.name, description: request.description, size: volume.size, status: "creating",
                                    host: volume.host, backend: volume.backend, volumeTypeID: volume.volumeTypeID, metadata: request.metadata,
                                    fault: nil, createdAt: time, updatedAt: time)
            try await Tables.snapshots.insert(sql, SnapshotRow(snapshot))
            return snapshot
        }
        return try await dispatchSnapshot(snapshot)
    }

    func dispatchSnapshot(_ snapshot: Snapshot) async throws -> Snapshot {
        do {
            try await sendSnapshot(snapshot.host, SnapshotRow(snapshot).spec)
            return snapshot
        } catch {
            let failed = snapshot.status == "deleting" ? "error_deleting" : "error"
            try await applySnapshot(.init(snapshotID: snapshot.id, host: snapshot.host, from: snapshot.status, outcome: failed,
                                          reason: "the volume service of \(snapshot.host) could not be reached: \(error)"))
            return try await self.snapshot(snapshot.id, projectID: nil)
        }
    }

    public func snapshots(projectID: String?) async throws -> [Snapshot] {
        try await ownedRows(Tables.snapshots, projectID: projectID).map(\.value)
    }

    public func snapshot(_ id: String, projectID: String?) async throws -> Snapshot {
        try await ownedRow(Tables.snapshots, id, projectID: projectID, owner: \.projectId, missing: .snapshotNotFound(id)).value
    }

    /// A table's rows of `projectID` (all of them when nil), newest first.
    func ownedRows<Row>(_ table: Table<Row>, projectID: String?) async throws -> [Row] {
        try await database.withConnection { sql in
            let condition: SQLQueryString = projectID.map { "project_id = \(bind: $0)" } ?? "1 = 1"
            return try await table.all(sql, where: condition, orderBy: "created_at DESC, id DESC")
        }
    }

    /// One row of `projectID` (of any project when nil); another project's is `missing`.
    func ownedRow<Row>(_ table: Table<Row>, _ id: String, projectID: String?, owner: KeyPath<Row, String> & Sendable,
                       missing: VolumeFailure) async throws -> Row {
        try await database.withConnection { sql in
            guard let row = try await table.get(sql, id: id), projectID == nil || row[keyPath: owner] == projectID else { throw missing }
            return row
        }
    }

    public func updateSnapshot(_ id: String, projectID: String?, name: String??, description: String??, metadata: [String: String]?) async throws -> Snapshot {
        try await database.transaction { sql in
            guard var snapshot = try await Tables.snapshots.lockedGet(sql, id: id)?.value, projectID == nil || snapshot.projectID == projectID else {
                throw VolumeFailure.snapshotNotFound(id)
            }
            if let name { snapshot.name = name }
            if let description { snapshot.description = description }
            if let metadata { snapshot.metadata = metadata }
            snapshot.updatedAt = now()
            try await Tables.snapshots.update(sql, id: id, SnapshotRow(snapshot))
            return snapshot
        }
    }

    public func deleteSnapshot(_ id: String, projectID: String?) async throws {
        let snapshot: Snapshot = try await database.transaction { sql in
            guard var snapshot = try await Tables.snapshots.lockedGet(sql, id: id)?.value, projectID == nil || snapshot.projectID == projectID else {
                throw VolumeFailure.snapshotNotFound(id)
            }
            guard ["available", "error", "error_deleting"].contains(snapshot.status) else {
                throw VolumeFailure(400, "Invalid snapshot: Snapshot status must be available or error and must not be part of a group.")
            }
            snapshot.status = "deleting"
            snapshot.updatedAt = now()
            try await Tables.snapshots.update(sql, id: id, SnapshotRow(snapshot))
            return snapshot
        }
        _ = try await dispatchSnapshot(snapshot)
    }

    @discardableResult
    public func applySnapshot(_ update: SnapshotUpdate.Arguments, requestID: String? = nil) async throws -> Bool {
        try await database.transaction { sql in
            guard var snapshot = try await Tables.snapshots.lockedGet(sql, id: update.snapshotID)?.value, snapshot.status == update.from,
                  snapshot.host == update.host else { return false }
            switch (update.from, update.outcome) {
            case ("creating", "error"):
                try await recordMessage(sql, projectID: snapshot.projectID, resourceType: "VOLUME_SNAPSHOT", resourceID: snapshot.id,
                                        action: .snapshotCreate, detail: .snapshotCreateError, requestID: requestID)
            case ("deleting", "error_deleting"):
                try await recordMessage(sql, projectID: snapshot.projectID, resourceType: "VOLUME_SNAPSHOT", resourceID: snapshot.id,
                                        action: .snapshotDelete, detail: .snapshotDeleteError, requestID: requestID)
            default: break
            }
            if update.outcome == "deleted" {
                _ = try await Tables.snapshots.delete(sql, where: [.equals("id", snapshot.id)])
                return true
            }
            snapshot.status = update.outcome
            snapshot.fault = update.reason
            snapshot.updatedAt = now()
            try await Tables.snapshots.update(sql, id: snapshot.id, SnapshotRow(snapshot))
            return true
        }
    }

    public func snapshotSpecs(host: String, ids: [String]? = nil) async throws -> [SnapshotSpec] {
        try await database.withConnection { sql in
            try await Tables.snapshots.all(sql, where: [.equals("host", host)] + (ids.map { [.inList("id", $0)] } ?? [])).map(\.spec)
        }
    }

    func snapshotCount(_ sql: any SQLDatabase, volumeID: String) async throws -> Int {
        try await sql.raw("SELECT COUNT(*) AS n FROM snapshots WHERE volume_id = \(bind: volumeID)").first()!.decode(column: "n", as: Int.self)
    }
}
