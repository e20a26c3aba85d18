import Foundation
import HTTPTypes
import Hummingbird
import PetrelCore
import PetrelHTTP
import Volumes

/// `/snapshots`: create, list (summary and detail), show, update, delete, metadata.
extension VolumeAPI {
    func registerSnapshots(on v3: APIRoutes, prefix: String) {
        v3.get(RouterPath(prefix + "snapshots")) { request, context in try await listSnapshots(request, context, detail: false) }
        v3.get(RouterPath(prefix + "snapshots/detail")) { request, context in try await listSnapshots(request, context, detail: true) }
        v3.post(RouterPath(prefix + "snapshots"), body: .json(Self.snapshotCreateSchema, style: .nova)) { request, context in try await createSnapshot(request, context) }
        v3.get(RouterPath(prefix + "snapshots/:id")) { request, context in
            let (snapshot, version) = try await snapshotTarget(request, context, "volume:get_snapshot")
            return ok(["snapshot": snapshotJSON(snapshot, version)], version)
        }
        v3.put(RouterPath(prefix + "snapshots/:id"), body: .json(Self.snapshotUpdateSchema, style: .nova)) { request, context in try await updateSnapshot(request, context) }
        v3.delete(RouterPath(prefix + "snapshots/:id")) { request, context in
            let (snapshot, version) = try await snapshotTarget(request, context, "volume:delete_snapshot")
            try await volumes.deleteSnapshot(snapshot.id, projectID: nil)
            return Response(status: .accepted, headers: version.headers(service: "volume", legacyHeader: nil))
        }
        v3.get(RouterPath(prefix + "snapshots/:id/metadata")) { request, context in
            let (snapshot, version) = try await snapshotTarget(request, context, "volume:get_snapshot")
            return ok(["metadata": .object(snapshot.metadata.mapValues(JSON.string))], version)
        }
        for (method, replace) in [(HTTPRequest.Method.put, true), (.post, false)] {
            v3.on(RouterPath(prefix + "snapshots/:id/metadata"), method: method, body: .json(Self.metadataBody, style: .nova)) { request, context in
                let (snapshot, version) = try await snapshotTarget(request, context, "volume:update_snapshot")
                let body = try await environment.body(request, context)
                let given = Self.metadata(body["metadata"]) ?? [:]
                let updated = try await volumes.updateSnapshot(snapshot.id, projectID: nil, name: nil, description: nil,
                                                               metadata: replace ? given : snapshot.metadata.merging(given) { $1 })
                return ok(["metadata": .object((replace ? given : updated.metadata).mapValues(JSON.string))], version)
            }
        }
    }

    func snapshotJSON(_ snapshot: Snapshot, _ version: Microversion) -> JSON {
        var object: [String: JSON] = [
            "id": .string(snapshot.id), "volume_id": .string(snapshot.volumeID), "name": snapshot.name.map(JSON.string) ?? .null,
            "description": snapshot.description.map(JSON.string) ?? .null, "size": .number(Double(snapshot.size)),
            "status": .string(snapshot.status), "metadata": .object(snapshot.metadata.mapValues(JSON.string)),
            "created_at": Self.time(snapshot.createdAt), "updated_at": snapshot.updatedAt == snapshot.createdAt ? nil : Self.time(snapshot.updatedAt),
            "os-extended-snapshot-attributes:progress": snapshot.status == "available" ? "100%" : "0%",
            "os-extended-snapshot-attributes:project_id": .string(snapshot.projectID),
        ]
        if version >= Microversion(3, 14) { object["group_snapshot_id"] = nil }
        if version >= Microversion(3, 41) { object["user_id"] = .string(snapshot.userID) }
        if version >= Microversion(3, 65) { object["consumes_quota"] = true }
        return .object(object)
    }

    func snapshotTarget(_ request: Request, _ context: APIRequestContext, _ action: String) async throws -> (Snapshot, Microversion) {
        let version = try microversion(request)
        let snapshot = try await volumes.snapshot(try context.parameters.require("id"), projectID: try scope(context))
        try context.enforce(action, target: ["project_id": snapshot.projectID])
        return (snapshot, version)
    }

    static let snapshotFilters: Set<String> = ["name", "status", "volume_id", "all_tenants", "project_id", "limit", "marker", "offset",
                                               "with_count", "sort", "sort_key", "sort_dir", "metadata"]

    func listSnapshots(_ request: Request, _ context: APIRequestContext, detail: Bool) async throws -> Response {
        let version = try await begin(request, context, "volume:get_all_snapshots")
        var list = try await volumes.snapshots(projectID: try listScope(request, context, filters: Self.snapshotFilters))
        if let name = request.query("name") { list = list.filter { $0.name == name } }
        if let status = request.query("status") { list = list.filter { $0.status == status } }
        if let volume = request.query("volume_id") { list = list.filter { $0.volumeID == volume } }
        let count = list.count
        list = try Self.after(list, marker: request.query("marker"), id: \.id)
        if let limit = try request.intQuery("limit", invalid: APIFault(.badRequest, "Invalid input received: limit must be an integer")) {
            list = Array(list.prefix(limit))
        }
        var body: [String: JSON] = ["snapshots": .array(list.map { snapshot in
            detail ? snapshotJSON(snapshot, version)
                : ["id": .string(snapshot.id), "name": snapshot.name.map(JSON.string) ?? .null, "volume_id": .string(snapshot.volumeID),
                   "status": .string(snapshot.status), "size": .number(Double(snapshot.size))]
        })]
        if version >= Microversion(3, 45), request.boolQuery("with_count") ?? false { body["count"] = .number(Double(count)) }
        return ok(.object(body), version)
    }

    static let snapshotCreateSchema = Schema.object([("snapshot", Schema(types: [.object], properties: [
        ("volume_id", .string(format: .uuid)), ("name", nullableText), ("description", nullableText), ("display_name", nullableText),
        ("display_description", nullableText), ("force", Schema(types: [.boolean, .string, .null])), ("metadata", metadataSchema),
    ], required: ["volume_id"], additional: .some(nil)))], required: ["snapshot"])

    func createSnapshot(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let project = try project(context)
        let version = try await begin(request, context, "volume:create_snapshot", target: ["project_id": project])
        let body = try await environment.body(request, context)
        let fields = body["snapshot"]?.objectValue ?? [:]
        var create = VolumeService.SnapshotCreate(volumeID: fields["volume_id"]?.stringValue ?? "", projectID: try scope(context),
                                                  userID: try context.caller().userID)
        create.name = Self.text(fields["name"]) ?? Self.text(fields["display_name"])
        create.description = Self.text(fields["description"]) ?? Self.text(fields["display_description"])
        create.metadata = Self.metadata(fields["metadata"]) ?? [:]
        switch fields["force"] {
        case .bool(let flag)?: create.force = flag
        case .string(let text)?:
            guard let flag = ["true": true, "false": false, "1": true, "0": false, "yes": true, "no": false][text.lowercased()] else {
                throw APIFault(.badRequest, "Invalid input received: Invalid value '\(text)' for force.")
            }
            create.force = flag
        default: break
        }
        let snapshot = try await volumes.createSnapshot(create)
        return ok(["snapshot": snapshotJSON(snapshot, version)], version, status: .accepted)
    }

    static let snapshotUpdateSchema = Schema.object([("snapshot", Schema(types: [.object], properties: [
        ("name", nullableText), ("description", nullableText), ("display_name", nullableText), ("display_description", nullableText),
    ], additional: .some(nil)))], required: ["snapshot"])

    func updateSnapshot(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (snapshot, version) = try await snapshotTarget(request, context, "volume:update_snapshot")
        let body = try await environment.body(request, context)
        let fields = body["snapshot"]?.objectValue ?? [:]
        guard !fields.isEmpty else { throw APIFault(.badRequest, "Missing required element 'snapshot' in request body.") }
        let name: String?? = (fields["name"] ?? fields["display_name"]).map { Self.text($0) }
        let description: String?? = (fields["description"] ?? fields["display_description"]).map { Self.text($0) }
        let updated = try await volumes.updateSnapshot(snapshot.id, projectID: nil, name: name, description: description, metadata: nil)
        return ok(["snapshot": snapshotJSON(updated, version)], version)
    }
}
