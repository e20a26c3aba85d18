import Foundation
import HTTPTypes
import Hummingbird
import PetrelCore
import PetrelHTTP
import Volumes

/// `/volumes`: create, list (summary and detail, filtered, sorted, paged), show, update,
/// delete, the actions (`os-extend`, `os-reset_status`, `os-set_bootable`, `os-force_delete`, `os-volume_upload_image`)
/// and metadata.
extension VolumeAPI {
    func registerVolumes(on v3: APIRoutes, prefix: String) {
        v3.get(RouterPath(prefix + "volumes")) { request, context in try await list(request, context, detail: false) }
        v3.get(RouterPath(prefix + "volumes/detail")) { request, context in try await list(request, context, detail: true) }
        v3.post(RouterPath(prefix + "volumes"), body: .json(Self.createSchema, style: .nova)) { request, context in try await create(request, context) }
        v3.get(RouterPath(prefix + "volumes/:id")) { request, context in try await show(request, context) }
        v3.put(RouterPath(prefix + "volumes/:id"), body: .json(Self.updateSchema, style: .nova)) { request, context in try await updateVolume(request, context) }
        v3.delete(RouterPath(prefix + "volumes/:id")) { request, context in try await deleteVolume(request, context) }
        v3.post(RouterPath(prefix + "volumes/:id/action"), body: .json(style: .nova) { VolumeActionSchemas.action(Self.requestedVersion($0)) }) { request, context in
            try await action(request, context)
        }
        v3.get(RouterPath(prefix + "volumes/:id/metadata")) { request, context in try await metadata(request, context) }
        v3.post(RouterPath(prefix + "volumes/:id/metadata"), body: .json(Self.metadataBody, style: .nova)) { request, context in try await setMetadata(request, context, replace: false) }
        v3.put(RouterPath(prefix + "volumes/:id/metadata"), body: .json(Self.metadataBody, style: .nova)) { request, context in try await setMetadata(request, context, replace: true) }
        v3.get(RouterPath(prefix + "volumes/:id/metadata/:key")) { request, context in try await metadataItem(request, context) }
        v3.put(RouterPath(prefix + "volumes/:id/metadata/:key"), body: .json(Self.metadataItemBody, style: .nova)) { request, context in try await setMetadataItem(request, context) }
        v3.delete(RouterPath(prefix + "volumes/:id/metadata/:key")) { request, context in try await deleteMetadataItem(request, context) }
    }

    // MARK: Bodies

    static let nullableText = Schema(types: [.string, .null], maxLength: 255)
    static let nullableID = Schema(types: [.string, .null])
    static let sizeSchema = Schema(types: [.integer, .string, .null], pattern: Schema.Rule(regex: "^[0-9]+$"), minimum: 1,
                                   maximum: 2_147_483_647)
    /// Cinder's metadata: keys of 1 to 255 characters, string values of at most 255.
    static let metadataKey = Schema.Rule("^.{1,255}$") { !$0.isEmpty && $0.count <= 255 }
    static let metadataSchema = Schema(types: [.object, .null], keyRule: (metadataKey, .string(maxLength: 255)))
    static let createSchema = Schema.object([
        ("volume", Schema(types: [.object], properties: [
            ("name", nullableText), ("description", nullableText), ("display_name", nullableText), ("display_description", nullableText),
            ("size", sizeSchema), ("volume_type", nullableID), ("availability_zone", nullableID), ("metadata", metadataSchema),
            ("snapshot_id", nullableID), ("source_volid", nullableID), ("imageRef", nullableID), ("backup_id", nullableID),
            ("consistencygroup_id", nullableID), ("group_id", nullableID), ("multiattach", Schema(types: [.boolean, .null])),
        ])),
        ("OS-SCH-HNT:scheduler_hints", Schema(types: [.object, .null])),
    ], required: ["volume"])
    static let updateSchema = Schema.object([
        ("volume", Schema(types: [.object], properties: [
            ("name", nullableText), ("description", nullableText), ("display_name", nullableText), ("display_description", nullableText),
            ("metadata", metadataSchema),
        ], additional: .some(nil))),
    ], required: ["volume"])

    static func integer(_ value: JSON?) -> Int? {
        switch value {
        case .number(let number)?: return number.rounded() == number ? Int(exactly: number) : nil
        case .string(let text)?: return Int(text)
        default: return nil
        }
    }

    static func text(_ value: JSON?) -> String? { value?.stringValue }

    static func metadata(_ value: JSON?) -> [String: String]? {
        value?.objectValue.map { $0.compactMapValues { $0.stringValue } }
    }

    // MARK: Rendering

    func links(_ project: String, _ id: String, collection: String = "volumes") -> JSON {
        [["rel": "self", "href": .string("\(environment.publicURL)/volume/v3/\(project)/\(collection)/\(id)")],
         ["rel": "bookmark", "href": .string("\(environment.publicURL)/volume/\(project)/\(collection)/\(id)")]]
    }

    func volumeJSON(_ volume: Volume, _ version: Microversion, typeNames: [String: String], admin: Bool,
                    attachments: [VolumeAttachment] = []) -> JSON {
        var object: [String: JSON] = [
            "id": .string(volume.id), "links": links(volume.projectID, volume.id), "name": volume.name.map(JSON.string) ?? .null,
            "description": volume.description.map(JSON.string) ?? .null, "size": .number(Double(volume.size)),
            "status": .string(volume.status), "availability_zone": .string(volume.availabilityZone),
            "bootable": volume.bootable ? "true" : "false", "encrypted": false, "multiattach": false,
            "attachments": .array(attachments.filter { $0.status == "attached" || $0.status == "detaching" }.map { attachment in
                ["id": .string(attachment.volumeID), "attachment_id": .string(attachment.id), "volume_id": .string(attachment.volumeID),
                 "server_id": .string(attachment.instanceID), "host_name": .string(attachment.host),
                 "device": attachment.device.map { .string("/dev/" + $0) } ?? .null, "attached_at": Self.time(attachment.createdAt)]
            }),
            "metadata": .object(volume.metadata.mapValues(JSON.string)),
            "volume_type": typeNames[volume.volumeTypeID].map(JSON.string) ?? .null,
            "snapshot_id": volume.snapshotID.map(JSON.string) ?? .null, "source_volid": volume.sourceVolID.map(JSON.string) ?? .null,
            "consistencygroup_id": nil, "replication_status": nil, "migration_status": nil,
            "user_id": .string(volume.userID), "os-vol-tenant-attr:tenant_id": .string(volume.projectID),
            "created_at": Self.time(volume.createdAt), "updated_at": volume.updatedAt == volume.createdAt ? nil : Self.time(volume.updatedAt),
        ]
        if !volume.imageMetadata.isEmpty { object["volume_image_metadata"] = .object(volume.imageMetadata.mapValues(JSON.string)) }
        if admin {
            object["os-vol-host-attr:host"] = volume.cinderHost.map(JSON.string) ?? .null
            object["os-vol-mig-status-attr:migstat"] = nil
            object["os-vol-mig-status-attr:name_id"] = nil
        }
        if version >= Microversion(3, 13) { object["group_id"] = nil }
        if version >= Microversion(3, 21), admin { object["provider_id"] = nil }
        if version >= Microversion(3, 48) {
            object["service_uuid"] = nil
            object["shared_targets"] = false
        }
        if version >= Microversion(3, 61), admin { object["cluster_name"] = nil }
        if version >= Microversion(3, 63) { object["volume_type_id"] = .string(volume.volumeTypeID) }
        if version >= Microversion(3, 65) { object["consumes_quota"] = true }
        return .object(object)
    }

    func typeNames() async throws -> [String: String] {
        Dictionary(try await volumes.volumeTypes(projectID: nil).map { ($0.id, $0.name) }) { a, _ in a }
    }

    /// The project whose volumes a caller sees: nil (all) for an administrator.
    func scope(_ context: APIRequestContext) throws -> String? {
        try context.allows("volume:get_all_tenants") ? nil : try project(context)
    }

    /// The volume of the path, as the caller may see it, after the policy check of `action`.
    func target(_ request: Request, _ context: APIRequestContext, _ action: String) async throws -> (Volume, Microversion) {
        let version = try microversion(request)
        let id = try context.parameters.require("id")
        let volume = try await volumes.volume(id, projectID: try scope(context))
        try context.enforce(action, target: ["project_id": volume.projectID])
        return (volume, version)
    }

    // MARK: Routes

    static let listFilters: Set<String> = ["name", "status", "bootable", "availability_zone", "metadata", "all_tenants", "project_id",
                                           "limit", "marker", "sort", "sort_key", "sort_dir", "with_count", "offset", "user_id",
                                           "volume_type"]

    func list(_ request: Request, _ context: APIRequestContext, detail: Bool) async throws -> Response {
        let version = try await begin(request, context, "volume:get_all")
        let projectID = try listScope(request, context, filters: Self.listFilters)
        let admin = try context.allows("volume:get_all_tenants")
        var list = try await volumes.volumes(projectID: projectID)
        let types = try await typeNames()
        if let name = request.query("name") { list = list.filter { $0.name == name } }
        if let status = request.query("status") { list = list.filter { $0.status == status } }
        if let zone = request.query("availability_zone") { list = list.filter { $0.availabilityZone == zone } }
        if let user = request.query("user_id") { list = list.filter { $0.userID == user } }
        if let bootable = request.boolQuery("bootable") { list = list.filter { $0.bootable == bootable } }
        if let type = request.query("volume_type") { list = list.filter { $0.volumeTypeID == type || types[$0.volumeTypeID] == type } }
        if let text = request.query("metadata") {
            guard let wanted = JSON.parse(Array(text.utf8))?.objectValue?.compactMapValues({ $0.stringValue }) else {
                throw APIFault(.badRequest, "Invalid input received: metadata must be a JSON object of strings")
            }
            list = list.filter { volume in wanted.allSatisfy { volume.metadata[$0.key] == $0.value } }
        }
        list = try sorted(list, request)
        let count = list.count
        var body: [String: JSON] = [:]
        (list, body["volumes_links"]) = try page(list, request, id: \.id, path: "\(projectID ?? "")/volumes\(detail ? "/detail" : "")")
        let attachments = detail ? Dictionary(grouping: try await volumes.attachments(volumeIDs: list.map(\.id)), by: \.volumeID) : [:]
        body["volumes"] = .array(list.map { volume in
            detail ? volumeJSON(volume, version, typeNames: types, admin: admin, attachments: attachments[volume.id] ?? [])
                : ["id": .string(volume.id), "name": volume.name.map(JSON.string) ?? .null, "links": links(volume.projectID, volume.id)]
        })
        if version >= Microversion(3, 45), request.boolQuery("with_count") ?? false { body["count"] = .number(Double(count)) }
        return ok(.object(body), version)
    }

    /// The project a listing shows (nil: every project, for an administrator asking
    /// `all_tenants`), after refusing the query parameters it does not take, as Cinder does.
    func listScope(_ request: Request, _ context: APIRequestContext, filters: Set<String>) throws -> String? {
        let names = (request.uri.query ?? "").split(separator: "&").map { String($0.split(separator: "=", maxSplits: 1)[0]).removingPercentEncoding ?? "" }
        let unknown = names.filter { !filters.contains($0) }
        if !unknown.isEmpty { throw APIFault(.badRequest, "Invalid filters \(unknown.joined(separator: ",")) are found in query options.") }
        let admin = try context.allows("volume:get_all_tenants")
        if admin, let asked = request.query("project_id") { return asked }
        return admin && (request.boolQuery("all_tenants") ?? false) ? nil : try project(context)
    }

    /// One page of a sorted listing: after `marker`, past `offset`, at most `limit`; with the
    /// link to the next page (`<path>?limit=…&marker=…` under the volume API) when more follow.
    func page<T>(_ list: [T], _ request: Request, id: (T) -> String, path: String) throws -> ([T], JSON?) {
        var list = try Self.after(list, marker: request.query("marker"), id: id)
        if let offset = try request.intQuery("offset", invalid: APIFault(.badRequest, "Invalid input received: offset must be an integer")) {
            list = Array(list.dropFirst(offset))
        }
        guard let limit = try request.intQuery("limit", invalid: APIFault(.badRequest, "Invalid input received: limit must be an integer")) else {
            return (list, nil)
        }
        let next: JSON? = list.count > limit ? list.prefix(limit).last.map {
            [["rel": "next", "href": .string("\(environment.publicURL)/volume/v3/\(path)?limit=\(limit)&marker=\(id($0))")]]
        } : nil
        return (Array(list.prefix(limit)), next)
    }

    /// What follows `marker` in a listing (all of it without one).
    static func after<T>(_ list: [T], marker: String?, id: (T) -> String) throws -> [T] {
        guard let marker else { return list }
        guard let index = list.firstIndex(where: { id($0) == marker }) else {
            throw APIFault(.badRequest, "Invalid input received: marker [\(marker)] not found")
        }
        return Array(list[(index + 1)...])
    }

    /// `sort=key[:dir],…` or `sort_key`/`sort_dir`; newest first by default, as Cinder.
    func sorted(_ list: [Volume], _ request: Request) throws -> [Volume] {
        var keys: [(String, Bool)] = []
        if let sort = request.query("sort") {
            for part in sort.split(separator: ",") {
                let pieces = part.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
                let direction = pieces.count > 1 ? pieces[1].lowercased() : "desc"
                guard ["asc", "desc"].contains(direction) else { throw APIFault(.badRequest, "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'") }
                keys.append((pieces[0], direction == "asc"))
            }
        } else if let key = request.query("sort_key") {
            keys.append((key, (request.query("sort_dir") ?? "desc").lowercased() == "asc"))
        }
        if keys.isEmpty { return list }
        let valid = ["created_at", "updated_at", "id", "name", "size", "status", "availability_zone", "bootable"]
        for (key, _) in keys where !valid.contains(key) {
            throw APIFault(.badRequest, "Invalid input received: Invalid sort key \(key)")
        }
        func value(_ volume: Volume, _ key: String) -> String {
            switch key {
            case "created_at": return String(format: "%020lld", volume.createdAt)
            case "updated_at": return String(format: "%020lld", volume.updatedAt)
            case "name": return volume.name ?? ""
            case "size": return String(format: "%020d", volume.size)
            case "status": return volume.status
            case "availability_zone": return volume.availabilityZone
            case "bootable": return volume.bootable ? "1" : "0"
            default: return volume.id
            }
        }
        return list.sorted { a, b in
            for (key, ascending) in keys {
                let x = value(a, key), y = value(b, key)
                if x != y { return ascending ? x < y : x > y }
            }
            return a.id < b.id
        }
    }

    func create(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let project = try project(context)
        let version = try await begin(request, context, "volume:create", target: ["project_id": project])
        let body = try await environment.body(request, context)
        let volume = body["volume"]?.objectValue ?? [:]
        for (key, what) in [("backup_id", "a backup"), ("consistencygroup_id", "a consistency group"), ("group_id", "a group")]
        where volume[key] != nil && volume[key] != .null {
            throw APIFault(.badRequest, "Invalid input received: creating a volume from \(what) (\(key)) is not supported by this cloud yet")
        }
        if volume["multiattach"] == .bool(true) {
            throw APIFault(.badRequest, "Invalid input received: multiattach volumes are not supported by this cloud")
        }
        guard let size = Self.integer(volume["size"]) else {
            throw APIFault(.badRequest, "Invalid input received: Volume size '\(volume["size"]?.pythonStr ?? "None")' must be an integer and greater than 0")
        }
        var create = VolumeService.VolumeCreate(projectID: project, userID: try context.caller().userID, size: size)
        create.requestID = APIRequest.id
        create.name = Self.text(volume["name"]) ?? Self.text(volume["display_name"])
        create.description = Self.text(volume["description"]) ?? Self.text(volume["display_description"])
        create.type = Self.text(volume["volume_type"])
        create.availabilityZone = Self.text(volume["availability_zone"])
        create.metadata = Self.metadata(volume["metadata"]) ?? [:]
        create.snapshotID = Self.text(volume["snapshot_id"])
        create.sourceVolumeID = Self.text(volume["source_volid"])
        // An image by its id or a URL ending in it, as Cinder takes `imageRef`.
        create.imageID = Self.text(volume["imageRef"]).flatMap { $0.split(separator: "/").last.map(String.init) }
        create.isAdmin = try context.allows("volume:get_all_tenants")
        if [create.snapshotID, create.sourceVolumeID, create.imageID].compactMap({ $0 }).count > 1 {
            throw APIFault(.badRequest, "Invalid input received: only one of snapshot_id, source_volid and imageRef may be given")
        }
        let created = try await volumes.create(create)
        return ok(["volume": volumeJSON(created, version, typeNames: try await typeNames(), admin: false)], version, status: .accepted)
    }

    func show(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (volume, version) = try await target(request, context, "volume:get")
        let admin = try context.allows("volume_extension:volume_host_attribute")
        let attachments = try await volumes.attachments(volumeIDs: [volume.id])
        return ok(["volume": volumeJSON(volume, version, typeNames: try await typeNames(), admin: admin, attachments: attachments)], version)
    }

    func updateVolume(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (volume, version) = try await target(request, context, "volume:update")
        let body = try await environment.body(request, context)
        let fields = body["volume"]?.objectValue ?? [:]
        guard !fields.isEmpty else { throw APIFault(.badRequest, "Missing required element 'volume' in request body.") }
        var change = VolumeService.VolumeChange()
        if let name = fields["name"] ?? fields["display_name"] { change.name = .some(Self.text(name)) }
        if let description = fields["description"] ?? fields["display_description"] { change.description = .some(Self.text(description)) }
        if let metadata = fields["metadata"] { change.metadata = Self.metadata(metadata) ?? [:] }
        let updated = try await volumes.update(volume.id, projectID: nil, change)
        let admin = try context.allows("volume_extension:volume_host_attribute")
        return ok(["volume": volumeJSON(updated, version, typeNames: try await typeNames(), admin: admin)], version)
    }

    func deleteVolume(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (volume, version) = try await target(request, context, "volume:delete")
        if request.boolQuery("cascade") == true || request.boolQuery("force") == true {
            // Nothing to cascade to yet (no snapshots); force is an administrator's.
            if request.boolQuery("force") == true { try context.enforce("volume_extension:volume_admin_actions:force_delete") }
        }
        try await volumes.delete(volume.id, projectID: nil, force: request.boolQuery("force") == true)
        return Response(status: .accepted, headers: version.headers(service: "volume", legacyHeader: nil))
    }

    func action(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try microversion(request)
        let body = try await environment.body(request, context)
        guard body.count == 1, let (name, argument) = body.first else {
            throw APIFault(.badRequest, "Malformed request body: exactly one action is expected")
        }
        let id = try context.parameters.require("id")
        let volume = try await volumes.volume(id, projectID: try scope(context))
        let target = ["project_id": volume.projectID]
        let accepted = Response(status: .accepted, headers: version.headers(service: "volume", legacyHeader: nil))
        switch name {
        case "os-extend":
            try context.enforce("volume:extend", target: target)
            guard let size = Self.integer(argument["new_size"]) else {
                throw APIFault(.badRequest, "Invalid input for field/attribute new_size. Value: \(argument["new_size"]?.pythonRepr ?? "None"). 'new_size' is a required property")
            }
            try await volumes.extend(volume.id, projectID: nil, newSize: size, inUse: version >= Microversion(3, 42))
            return accepted
        case "os-reset_status":
            try context.enforce("volume_extension:volume_admin_actions:reset_status", target: target)
            // Cinder also takes attach_status or migration_status alone; only a status is acted on here.
            guard let status = argument["status"]?.stringValue, !status.isEmpty else {
                throw APIFault(.badRequest, "Invalid input received: Must specify 'status'")
            }
            try await volumes.resetStatus(volume.id, status: status.lowercased())
            return accepted
        case "os-force_delete":
            try context.enforce("volume_extension:volume_admin_actions:force_delete", target: target)
            try await volumes.delete(volume.id, projectID: nil, force: true)
            return accepted
        case "os-set_bootable":
            try context.enforce("volume_extension:volume_actions:update_bootable", target: target)
            // The schema took a boolean or one of its spellings (`y`, `t`, … too, as Cinder's strutils reads them).
            var change = VolumeService.VolumeChange()
            change.bootable = try Self.flag(argument["bootable"], "bootable")
            _ = try await volumes.update(volume.id, projectID: nil, change)
            return Response(status: .ok, headers: version.headers(service: "volume", legacyHeader: nil))
        case "os-volume_upload_image":
            try context.enforce("volume_extension:volume_actions:upload_image", target: target)
            return try await uploadToImage(volume, argument, version, context)
        default:
            if let response = try await legacyAttachAction(name, argument, volume, version, context) { return response }
            throw APIFault(.badRequest, "There is no such action: \(name)")
        }
    }

    /// `os-volume_upload_image`: the volume's bytes into a new image (Cinder's answer: the
    /// volume now `uploading` and the image's id).
    func uploadToImage(_ volume: Volume, _ argument: JSON, _ version: Microversion, _ context: APIRequestContext) async throws -> Response {
        guard let name = argument["image_name"]?.stringValue, !name.isEmpty else {
            throw APIFault(.badRequest, "No image_name was specified in request.")
        }
        var upload = VolumeService.ImageUpload(imageName: name)
        upload.force = try Self.flag(argument["force"], "force")
        upload.protected = try Self.flag(argument["protected"], "protected")
        upload.diskFormat = argument["disk_format"]?.stringValue ?? "raw"
        upload.containerFormat = argument["container_format"]?.stringValue ?? "bare"
        upload.visibility = argument["visibility"]?.stringValue ?? "private"
        if upload.visibility == "public" {
            try context.enforce("volume_extension:volume_actions:upload_public", target: ["project_id": volume.projectID])
        }
        let (uploading, image) = try await volumes.uploadToImage(volume.id, projectID: nil, upload)
        return ok(["os-volume_upload_image": [
            "id": .string(uploading.id), "updated_at": Self.time(uploading.updatedAt), "status": .string(uploading.status),
            "display_description": uploading.description.map(JSON.string) ?? .null, "size": .number(Double(uploading.size)),
            "volume_type": try await volumes.volumeTypes(projectID: nil).first { $0.id == uploading.volumeTypeID }
                .map { typeJSON($0, admin: try context.allows("volume_extension:types_manage")) } ?? .null,
            "image_id": .string(image.id), "container_format": .string(upload.containerFormat), "disk_format": .string(upload.diskFormat),
            "image_name": .string(name), "protected": .bool(upload.protected), "visibility": .string(upload.visibility),
        ]], version, status: .accepted)
    }

    // MARK: Metadata

    func metadata(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (volume, version) = try await target(request, context, "volume:get_volume_metadata")
        return ok(["metadata": .object(volume.metadata.mapValues(JSON.string))], version)
    }

    static let metadataMap = Schema(types: [.object], keyRule: (metadataKey, .string(maxLength: 255)))
    static let metadataBody = Schema.object([("metadata", metadataMap)], required: ["metadata"])
    static let metadataItemBody = Schema.object([("meta", metadataMap)], required: ["meta"])

    func setMetadata(_ request: Request, _ context: APIRequestContext, replace: Bool) async throws -> Response {
        let (volume, version) = try await target(request, context, "volume:update_volume_metadata")
        let body = try await environment.body(request, context)
        let given = Self.metadata(body["metadata"]) ?? [:]
        var change = VolumeService.VolumeChange()
        change.metadata = replace ? given : volume.metadata.merging(given) { $1 }
        let updated = try await volumes.update(volume.id, projectID: nil, change)
        return ok(["metadata": .object((replace ? given : updated.metadata).mapValues(JSON.string))], version)
    }

    func metadataItem(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (volume, version) = try await target(request, context, "volume:get_volume_metadata")
        let key = try context.parameters.require("key")
        guard let value = volume.metadata[key] else { throw APIFault(.notFound, "Volume \(volume.id) has no metadata with key \(key).") }
        return ok(["meta": [key: .string(value)]], version)
    }

    func setMetadataItem(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (volume, version) = try await target(request, context, "volume:update_volume_metadata")
        let key = try context.parameters.require("key")
        let body = try await environment.body(request, context)
        guard let meta = body["meta"]?.objectValue, meta.count == 1, let (given, value) = meta.first, let text = value.stringValue,
              text.count <= 255 else {
            throw APIFault(.badRequest, "Malformed request body: 'meta' must hold one key and its string value")
        }
        guard given == key else { throw APIFault(.badRequest, "Request body and URI mismatch") }
        var change = VolumeService.VolumeChange()
        change.metadata = volume.metadata.merging([key: text]) { $1 }
        _ = try await volumes.update(volume.id, projectID: nil, change)
        return ok(["meta": [key: .string(text)]], version)
    }

    func deleteMetadataItem(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (volume, version) = try await target(request, context, "volume:update_volume_metadata")
        let key = try context.parameters.require("key")
        guard volume.metadata[key] != nil else { throw APIFault(.notFound, "Volume \(volume.id) has no metadata with key \(key).") }
        var change = VolumeService.VolumeChange()
        change.metadata = volume.metadata.filter { $0.key != key }
        _ = try await volumes.update(volume.id, projectID: nil, change)
        return Response(status: .ok, headers: version.headers(service: "volume", legacyHeader: nil))
    }
}
