import Foundation
import HTTPTypes
import Hummingbird
import PetrelCore
import PetrelHTTP
import Volumes

/// `/backups`: create (full or incremental), list (summary and detail), show, update (3.9),
/// delete, restore, and the administrators' `os-reset_status` and `os-force_delete`.
extension VolumeAPI {
    func registerBackups(on v3: APIRoutes, prefix: String) {
        v3.get(RouterPath(prefix + "backups")) { request, context in try await listBackups(request, context, detail: false) }
        v3.get(RouterPath(prefix + "backups/detail")) { request, context in try await listBackups(request, context, detail: true) }
        v3.post(RouterPath(prefix + "backups"), body: .json(Self.backupCreateSchema, style: .nova)) { request, context in try await createBackup(request, context) }
        v3.get(RouterPath(prefix + "backups/:id")) { request, context in
            let (backup, version) = try await backupTarget(request, context, "backup:get")
            let parents = try await volumes.backupParents([backup.id])
            return ok(["backup": backupJSON(backup, version, dependents: parents, context: context)], version)
        }
        v3.put(RouterPath(prefix + "backups/:id"), body: .json(Self.backupUpdateSchema, style: .nova)) { request, context in try await updateBackup(request, context) }
        v3.delete(RouterPath(prefix + "backups/:id")) { request, context in
            let (backup, version) = try await backupTarget(request, context, "backup:delete")
            try await volumes.deleteBackup(backup.id, projectID: nil)
            return Response(status: .accepted, headers: version.headers(service: "volume", legacyHeader: nil))
        }
        v3.post(RouterPath(prefix + "backups/:id/restore"), body: .json(Self.restoreSchema, style: .nova)) { request, context in try await restoreBackup(request, context) }
        v3.post(RouterPath(prefix + "backups/:id/action"), body: .json(BackupActionSchemas.action, style: .nova)) { request, context in
            try await backupAction(request, context)
        }
    }

    func backupLinks(_ project: String, _ id: String) -> JSON {
        [["rel": "self", "href": .string("\(environment.publicURL)/volume/v3/\(project)/backups/\(id)")],
         ["rel": "bookmark", "href": .string("\(environment.publicURL)/volume/\(project)/backups/\(id)")]]
    }

    func backupJSON(_ backup: Backup, _ version: Microversion, dependents: Set<String>, context: APIRequestContext) -> JSON {
        var object: [String: JSON] = [
            "id": .string(backup.id), "links": backupLinks(backup.projectID, backup.id), "name": backup.name.map(JSON.string) ?? .null,
            "description": backup.description.map(JSON.string) ?? .null, "volume_id": .string(backup.volumeID),
            "size": .number(Double(backup.size)), "status": .string(backup.status), "object_count": .number(Double(backup.objectCount)),
            "availability_zone": .string(backup.availabilityZone), "container": .string(backup.id), "snapshot_id": .null,
            "is_incremental": .bool(backup.parentID != nil), "has_dependent_backups": .bool(dependents.contains(backup.id)),
            "fail_reason": backup.failReason.map(JSON.string) ?? .null, "created_at": Self.time(backup.createdAt),
            "updated_at": Self.time(backup.updatedAt), "data_timestamp": Self.time(backup.dataTimestamp),
        ]
        if version >= Microversion(3, 18), (try? context.allows("backup:backup_project_attribute")) == true {
            object["os-backup-project-attr:project_id"] = .string(backup.projectID)
        }
        if version >= Microversion(3, 43) { object["metadata"] = .object(backup.metadata.mapValues(JSON.string)) }
        if version >= Microversion(3, 56) { object["user_id"] = .string(backup.userID) }
        if version >= Microversion(3, 64) { object["encryption_key_id"] = .null }
        return .object(object)
    }

    func backupTarget(_ request: Request, _ context: APIRequestContext, _ action: String) async throws -> (Backup, Microversion) {
        let version = try microversion(request)
        let backup = try await volumes.backup(try context.parameters.require("id"), projectID: try scope(context))
        try context.enforce(action, target: ["project_id": backup.projectID])
        return (backup, version)
    }

    static let backupFilters: Set<String> = ["name", "status", "volume_id", "all_tenants", "project_id", "limit", "marker", "offset",
                                             "with_count", "sort", "sort_key", "sort_dir"]

    func listBackups(_ request: Request, _ context: APIRequestContext, detail: Bool) async throws -> Response {
        let version = try await begin(request, context, "backup:get_all")
        var list = try await volumes.backups(projectID: try listScope(request, context, filters: Self.backupFilters))
        if let name = request.query("name") { list = list.filter { $0.name == name } }
        if let status = request.query("status") { list = list.filter { $0.status == status } }
        if let volume = request.query("volume_id") { list = list.filter { $0.volumeID == volume } }
        let count = list.count
        list = try Self.after(list, marker: request.query("marker"), id: \.id)
        if let offset = try request.intQuery("offset", invalid: APIFault(.badRequest, "Invalid input received: offset must be an integer")) {
            list = Array(list.dropFirst(offset))
        }
        if let limit = try request.intQuery("limit", invalid: APIFault(.badRequest, "Invalid input received: limit must be an integer")) {
            list = Array(list.prefix(limit))
        }
        let parents = detail ? try await volumes.backupParents(list.map(\.id)) : []
        var body: [String: JSON] = ["backups": .array(list.map { backup in
            detail ? backupJSON(backup, version, dependents: parents, context: context)
                : ["id": .string(backup.id), "links": backupLinks(backup.projectID, backup.id), "name": backup.name.map(JSON.string) ?? .null]
        })]
        if version >= Microversion(3, 45), request.boolQuery("with_count") ?? false { body["count"] = .number(Double(count)) }
        return ok(.object(body), version)
    }

    static let flagSchema = Schema(types: [.boolean, .string, .null])
    static let backupCreateSchema = Schema.object([("backup", Schema(types: [.object], properties: [
        ("volume_id", .string(format: .uuid)), ("name", nullableText), ("description", nullableText), ("container", nullableText),
        ("incremental", flagSchema), ("force", flagSchema), ("snapshot_id", nullableID), ("metadata", metadataSchema),
        ("availability_zone", nullableID),
    ], required: ["volume_id"], additional: .some(nil)))], required: ["backup"])

    /// A boolean as Cinder takes one: true/false, or their usual spellings as strings.
    static func flag(_ value: JSON?, _ key: String) throws -> Bool {
        switch value {
        case nil, .null?: return false
        case .bool(let flag)?: return flag
        case .string(let text)?:
            guard let flag = ["true": true, "false": false, "1": true, "0": false, "yes": true, "no": false, "on": true, "off": false,
                              "y": true, "n": false, "t": true, "f": false][text.lowercased()] else {
                throw APIFault(.badRequest, "Invalid input received: Invalid value '\(text)' for \(key).")
            }
            return flag
        case let other?: throw APIFault(.badRequest, "Invalid input received: Invalid value '\(other.pythonStr)' for \(key).")
        }
    }

    func createBackup(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let project = try project(context)
        let version = try await begin(request, context, "backup:create", target: ["project_id": project])
        let body = try await environment.body(request, context)
        let fields = body["backup"]?.objectValue ?? [:]
        if let snapshot = Self.text(fields["snapshot_id"]) {
            throw APIFault(.badRequest, "Invalid input received: backups from a snapshot (\(snapshot)) are not supported by this cloud yet")
        }
        var create = VolumeService.BackupCreate(volumeID: fields["volume_id"]?.stringValue ?? "", projectID: try scope(context),
                                                userID: try context.caller().userID)
        create.name = Self.text(fields["name"])
        create.description = Self.text(fields["description"])
        create.incremental = try Self.flag(fields["incremental"], "incremental")
        create.force = try Self.flag(fields["force"], "force")
        if version >= Microversion(3, 43) { create.metadata = Self.metadata(fields["metadata"]) ?? [:] }
        let backup = try await volumes.createBackup(create)
        return ok(["backup": ["id": .string(backup.id), "links": backupLinks(backup.projectID, backup.id),
                              "name": backup.name.map(JSON.string) ?? .null]], version, status: .accepted)
    }

    static let backupUpdateSchema = Schema.object([("backup", Schema(types: [.object], properties: [
        ("name", nullableText), ("description", nullableText), ("metadata", metadataSchema),
    ], additional: .some(nil)))], required: ["backup"])

    func updateBackup(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (backup, version) = try await backupTarget(request, context, "backup:update")
        guard version >= Microversion(3, 9) else { throw APIFault(.notFound, "The resource could not be found.") }
        let body = try await environment.body(request, context)
        let fields = body["backup"]?.objectValue ?? [:]
        guard !fields.isEmpty else { throw APIFault(.badRequest, "Missing required element 'backup' in request body.") }
        let updated = try await volumes.updateBackup(
            backup.id, projectID: nil, name: fields["name"].map { Self.text($0) }, description: fields["description"].map { Self.text($0) },
            metadata: version >= Microversion(3, 43) ? fields["metadata"].map { Self.metadata($0) ?? [:] } : nil)
        let parents = try await volumes.backupParents([backup.id])
        return ok(["backup": backupJSON(updated, version, dependents: parents, context: context)], version)
    }

    static let restoreSchema = Schema.object([("restore", Schema(types: [.object, .null], properties: [
        ("volume_id", Schema(types: [.string, .null], format: .uuid)), ("name", nullableText),
    ], additional: .some(nil)))], required: ["restore"])

    func restoreBackup(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (backup, version) = try await backupTarget(request, context, "backup:restore")
        let body = try await environment.body(request, context)
        let fields = body["restore"]?.objectValue ?? [:]
        let volumeID = Self.text(fields["volume_id"]), name = Self.text(fields["name"])
        if volumeID != nil, name != nil {
            throw APIFault(.badRequest, "Invalid input received: name and volume_id cannot both be given to a restore")
        }
        let (_, volume) = try await volumes.restoreBackup(backup.id, projectID: try scope(context), userID: try context.caller().userID,
                                                          volumeID: volumeID, name: name)
        return ok(["restore": ["backup_id": .string(backup.id), "volume_id": .string(volume.id),
                               "volume_name": volume.name.map(JSON.string) ?? .null]], version, status: .accepted)
    }

    func backupAction(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try microversion(request)
        let body = try await environment.body(request, context)
        guard body.count == 1, let (name, argument) = body.first else {
            throw APIFault(.badRequest, "Malformed request body: exactly one action is expected")
        }
        let backup = try await volumes.backup(try context.parameters.require("id"), projectID: try scope(context))
        let target = ["project_id": backup.projectID]
        switch name {
        case "os-reset_status":
            try context.enforce("volume_extension:backup_admin_actions:reset_status", target: target)
            // The schema took available or error, in any case; Cinder stores it in lower case.
            guard let status = argument["status"]?.stringValue?.lowercased(), ["available", "error"].contains(status) else {
                throw APIFault(.badRequest, "Invalid input received: Must specify a valid status (available or error)")
            }
            try await volumes.resetBackupStatus(backup.id, status: status)
        case "os-force_delete":
            try context.enforce("volume_extension:backup_admin_actions:force_delete", target: target)
            try await volumes.deleteBackup(backup.id, projectID: nil, force: true)
        default:
            throw APIFault(.badRequest, "There is no such action: \(name)")
        }
        return Response(status: .accepted, headers: version.headers(service: "volume", legacyHeader: nil))
    }
}
