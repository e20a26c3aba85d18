import Contracts
import Foundation
import Images
import Store

/// Nova's `createBackup`: a snapshot marked as a backup of a type (`daily`, `weekly`, …); once
/// it is uploaded, the oldest backups of that type of the server beyond `rotation` are deleted.
extension Servers {
    struct PendingBackup: Codable {
        var image: String
        var type: String
        var rotation: Int
    }

    /// Starts a backup: the `image_backup` task and the (queued) image the node uploads the disk
    /// into. Returns the image and the host.
    public func beginBackup(_ id: String, name: String, type: String, rotation: Int, properties: [String: String],
                            by caller: ServerCaller) async throws -> (imageID: String, host: String) {
        if try await get(id, by: caller).row.rootOnVolume {
            throw Failure.badRequest("Backup is not supported for volume-backed instances.")
        }
        let imageID = UUID().uuidString.lowercased()
        let pending = JSONColumn.encode(PendingBackup(image: imageID, type: type, rotation: rotation), fallback: "null")
        let (server, host, _) = try await begin("createBackup", on: id, by: caller) { server in server.row.pendingBackup = pending }
        var image = Self.snapshotImage(imageID, name: name, of: server, properties: properties.merging(["backup_type": type]) { $1 },
                                       by: caller)
        image.properties["image_type"] = "backup"
        do {
            return (try await images.create(image).id, host)
        } catch {
            try? await change(id, by: Self.system) { server in
                server.row.pendingBackup = nil
                if server.row.task == .imageBackup { server.row.taskState = nil }
            }
            throw error
        }
    }

    /// After a backup's upload: deletes the server's oldest backups of its type beyond the
    /// rotation (Nova's `_rotate_backups`). Returns the images deleted.
    @discardableResult
    func rotateBackups(of row: InstanceRow, _ pending: PendingBackup) async throws -> [String] {
        var query = ImageListQuery(isAdmin: true, projectID: nil, limit: 1000)
        query.visibility = "all"
        query.oneOf = ["owner": [row.projectID]]
        let backups = try await images.page(query).images.filter {
            $0.properties["image_type"] == "backup" && $0.properties["backup_type"] == pending.type && $0.properties["instance_uuid"] == row.id
        }
        // Newest first: those past the rotation go.
        var deleted: [String] = []
        for image in backups.dropFirst(max(0, pending.rotation)) {
            do {
                try await images.delete(image.id)
                deleted.append(image.id)
            } catch {
                continue  // as Nova: one that cannot be deleted does not stop the rest
            }
        }
        return deleted
    }
}
