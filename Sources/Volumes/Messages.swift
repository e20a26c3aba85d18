import Foundation
import SQLKit
import Store

/// Cinder's user messages (`/messages`, 3.3+): what went wrong with a user's volume, snapshot
/// or backup, in words a user can act on, kept for `[DEFAULT] message_ttl` seconds. Each is
/// an action (what was being done) and a detail (what failed), numbered as Cinder numbers
/// them, so `event_id` reads the same as on Cinder: `VOLUME_<resource>_<action>_<detail>`.
public struct UserMessage: Sendable, Equatable {
    public var id: String
    public var projectID: String
    public var requestID: String
    /// `VOLUME`, `VOLUME_SNAPSHOT`, `VOLUME_BACKUP`.
    public var resourceType: String
    public var resourceID: String?
    public var eventID: String
    public var userMessage: String
    /// `ERROR`.
    public var level: String
    public var createdAt: Int64
    public var expiresAt: Int64
}

/// What was being done, as Cinder's `message_field.Action`.
public enum MessageAction: String, Sendable {
    case scheduleAllocateVolume = "001", attachVolume = "002", copyVolumeToImage = "003", copyImageToVolume = "005",
         extendVolume = "007", createVolumeFromBackend = "008", snapshotCreate = "009", snapshotDelete = "010",
         backupCreate = "013", backupDelete = "014", backupRestore = "015"

    var text: String {
        switch self {
        case .scheduleAllocateVolume: "schedule allocate volume"
        case .attachVolume: "attach volume"
        case .copyVolumeToImage: "copy volume to image"
        case .copyImageToVolume: "copy image to volume"
        case .extendVolume: "extend volume"
        case .createVolumeFromBackend: "create volume from backend storage"
        case .snapshotCreate: "create snapshot"
        case .snapshotDelete: "delete snapshot"
        case .backupCreate: "create backup"
        case .backupDelete: "delete backup"
        case .backupRestore: "restore backup"
        }
    }
}

/// What failed, as Cinder's `message_field.Detail`.
public enum MessageDetail: String, Sendable {
    case unknownError = "001", noBackendAvailable = "003", failedToUploadVolume = "004", driverFailedExtend = "010",
         driverFailedCreate = "012", snapshotCreateError = "013", snapshotDeleteError = "016", backupCreateDriverError = "020",
         attachError = "021", backupDeleteDriverError = "025", backupRestoreError = "026"

    var text: String {
        switch self {
        case .unknownError: "An unknown error occurred."
        case .noBackendAvailable: "Could not find any available weighted backend."
        case .failedToUploadVolume: "Failed to upload volume to image at backend."
        case .driverFailedExtend: "Volume Driver failed to extend volume."
        case .driverFailedCreate: "Driver failed to create the volume."
        case .snapshotCreateError: "Snapshot failed to create."
        case .snapshotDeleteError: "Snapshot failed to delete."
        case .backupCreateDriverError: "Backup driver failed to create backup."
        case .attachError: "Failed to attach volume."
        case .backupDeleteDriverError: "Backup driver failed to delete backup."
        case .backupRestoreError: "Backup driver failed to restore backup."
        }
    }
}

struct MessageRow: Codable, Sendable {
    var id: String
    var projectId: String
    var requestId: String
    var resourceType: String
    var resourceUuid: String?
    var eventId: String
    var messageLevel: String
    var userMessage: String
    var createdAt: Int64
    var expiresAt: Int64

    var value: UserMessage {
        UserMessage(id: id, projectID: projectId, requestID: requestId, resourceType: resourceType, resourceID: resourceUuid, eventID: eventId,
                    userMessage: userMessage, level: messageLevel, createdAt: createdAt, expiresAt: expiresAt)
    }
}

extension Tables {
    static let messages = Table<MessageRow>("volume_messages")
}

extension VolumeService {
    /// Records a message for the project, in the caller's transaction (expired ones go at the same time).
    func recordMessage(_ sql: any SQLDatabase, projectID: String, resourceType: String = "VOLUME", resourceID: String?,
                       action: MessageAction, detail: MessageDetail, requestID: String?) async throws {
        let time = now()
        try await sql.raw("DELETE FROM volume_messages WHERE expires_at <= \(bind: time)").run()
        try await Tables.messages.insert(sql, MessageRow(
            id: UUID().uuidString.lowercased(), projectId: projectID, requestId: requestID ?? ("req-" + UUID().uuidString.lowercased()),
            resourceType: resourceType, resourceUuid: resourceID, eventId: "VOLUME_\(resourceType)_\(action.rawValue)_\(detail.rawValue)",
            messageLevel: "ERROR", userMessage: "\(action.text): \(detail.text)", createdAt: time,
            expiresAt: time + Int64(settings.messageTTL) * 1000))
    }

    /// Records a message in a transaction of its own (a failure seen outside one).
    public func recordMessage(projectID: String, resourceType: String = "VOLUME", resourceID: String?, action: MessageAction,
                              detail: MessageDetail, requestID: String?) async throws {
        try await database.transaction { sql in
            try await recordMessage(sql, projectID: projectID, resourceType: resourceType, resourceID: resourceID, action: action,
                                    detail: detail, requestID: requestID)
        }
    }

    /// The messages not yet expired, of one project (nil: of all), oldest first.
    public func messages(projectID: String?) async throws -> [UserMessage] {
        let time = now()
        return try await database.withConnection { sql in
            try await Tables.messages.all(sql, where: projectID.map { [.equals("project_id", $0)] } ?? [], orderBy: "created_at")
                .filter { $0.expiresAt > time }.map(\.value)
        }
    }

    public func message(_ id: String, projectID: String?) async throws -> UserMessage {
        guard let row = try await database.withConnection({ sql in try await Tables.messages.get(sql, id: id) }),
              row.expiresAt > now(), projectID == nil || row.projectId == projectID else {
            throw VolumeFailure(404, "Message \(id) could not be found.")
        }
        return row.value
    }

    public func deleteMessage(_ id: String, projectID: String?) async throws {
        _ = try await message(id, projectID: projectID)
        try await database.withConnection { sql in _ = try await Tables.messages.delete(sql, where: [.equals("id", id)]) }
    }
}
