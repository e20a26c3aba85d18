import Foundation
import HTTPTypes
import Hummingbird
import PetrelCore
import PetrelHTTP
import Volumes

/// `/attachments` (3.27+): create (reserve, or reserve and connect with a connector), list
/// (summary and detail), show, update with a connector, `os-complete` (3.44), delete; and the
/// legacy `os-volume_actions` a volume consumer drives (`os-reserve`, `os-unreserve`,
/// `os-initialize_connection`, `os-attach`, `os-begin_detaching`, `os-roll_detaching`,
/// `os-detach`, `os-terminate_connection`).
extension VolumeAPI {
    static let attachmentsMinimum = Microversion(3, 27)

    static let attachmentPolicies: [PolicyDefault] = [
        PolicyDefault("volume:attachment_create", member, "Create an attachment (reserve a volume, connect it with a connector).",
                      ["POST /volume/v3/attachments"]),
        PolicyDefault("volume:attachment_update", member, "Connect an attachment with a connector.", ["PUT /volume/v3/attachments/{id}"]),
        PolicyDefault("volume:attachment_delete", member, "Delete an attachment.", ["DELETE /volume/v3/attachments/{id}"]),
        PolicyDefault("volume:attachment_complete", member, "Mark an attachment attached.",
                      ["POST /volume/v3/attachments/{id}/action (os-complete)"]),
    ] + ["reserve", "unreserve", "initialize_connection", "attach", "begin_detaching", "roll_detaching", "detach", "terminate_connection"].map {
        PolicyDefault("volume_extension:volume_actions:\($0)", member, "The legacy volume action os-\($0).",
                      ["POST /volume/v3/volumes/{id}/action (os-\($0))"])
    }

    func registerAttachments(on v3: APIRoutes, prefix: String) {
        v3.get(RouterPath(prefix + "attachments")) { request, context in try await listAttachments(request, context, detail: false) }
        v3.get(RouterPath(prefix + "attachments/detail")) { request, context in try await listAttachments(request, context, detail: true) }
        v3.get(RouterPath(prefix + "attachments/:id")) { request, context in
            let (attachment, version) = try await attachmentTarget(request, context, "volume:get")
            return ok(["attachment": attachmentJSON(attachment, detail: true)], version)
        }
        v3.post(RouterPath(prefix + "attachments"), body: .json(style: .nova) { request in
            AttachmentSchemas.create(Self.requestedVersion(request))
        }) { request, context in try await createAttachment(request, context) }
        v3.put(RouterPath(prefix + "attachments/:id"), body: .json(AttachmentSchemas.update, style: .nova)) { request, context in
            let (attachment, version) = try await attachmentTarget(request, context, "volume:attachment_update")
            let body = try await environment.body(request, context)
            let connector = body["attachment"]?["connector"]
            let (updated, info) = try await volumes.updateAttachment(attachment.id, projectID: nil, connectorHost: connector?["host"]?.stringValue,
                                                                     mode: connector?["mode"]?.stringValue)
            return ok(["attachment": attachmentJSON(updated, detail: true, connection: info)], version)
        }
        v3.delete(RouterPath(prefix + "attachments/:id")) { request, context in
            let (attachment, version) = try await attachmentTarget(request, context, "volume:attachment_delete")
            try await volumes.deleteAttachment(attachment.id, projectID: nil)
            return ok(["attachments": []], version)
        }
        v3.post(RouterPath(prefix + "attachments/:id/action"), body: .json(AttachmentSchemas.action, style: .nova)) { request, context in
            let (attachment, version) = try await attachmentTarget(request, context, "volume:attachment_complete")
            let body = try await environment.body(request, context)
            guard version >= Microversion(3, 44), body.keys.sorted() == ["os-complete"] else {
                throw APIFault(.badRequest, "There is no such action: \(body.keys.sorted().first ?? "") (os-complete needs 3.44)")
            }
            try await volumes.completeAttachment(attachment.id, projectID: nil)
            return Response(status: .noContent, headers: version.headers(service: "volume", legacyHeader: nil))
        }
    }

    /// The attachment of the path, as the caller may see it, after the version and policy checks.
    func attachmentTarget(_ request: Request, _ context: APIRequestContext, _ action: String) async throws -> (VolumeAttachment, Microversion) {
        let version = try attachmentsVersion(request)
        let attachment = try await volumes.attachment(try context.parameters.require("id"), projectID: try scope(context))
        let volume = try await volumes.volume(attachment.volumeID, projectID: nil)
        try context.enforce(action, target: ["project_id": volume.projectID])
        return (attachment, version)
    }

    func attachmentsVersion(_ request: Request) throws -> Microversion {
        let version = try microversion(request)
        guard version >= Self.attachmentsMinimum else {
            throw APIFault(.notFound, "The resource could not be found. (attachments need volume API 3.27 or later)")
        }
        return version
    }

    func attachmentJSON(_ attachment: VolumeAttachment, detail: Bool, connection: VolumeService.ConnectionInfo? = nil) -> JSON {
        var object: [String: JSON] = [
            "id": .string(attachment.id), "volume_id": .string(attachment.volumeID),
            "instance": attachment.instanceID.isEmpty ? .null : .string(attachment.instanceID), "status": .string(attachment.status),
        ]
        if detail {
            object["attach_mode"] = .string(attachment.mode)
            object["attached_at"] = attachment.status == "attached" ? Self.time(attachment.createdAt) : .null
            object["detached_at"] = .null
            object["connection_info"] = connection.map(Self.connectionJSON)
                ?? (attachment.path.isEmpty && attachment.iscsi == nil ? .null : Self.connectionJSON(
                    VolumeService.ConnectionInfo(devicePath: attachment.path, block: attachment.block, mode: attachment.mode, iscsi: attachment.iscsi)))
        }
        return .object(object)
    }

    /// Cinder's `connection_info`: os-brick's `local` connector for a volume reached on its own
    /// node; its `iscsi` one (portal, IQN, LUN, CHAP) for a connector elsewhere.
    static func connectionJSON(_ info: VolumeService.ConnectionInfo) -> JSON {
        guard let iscsi = info.iscsi else {
            return ["driver_volume_type": .string(info.driverVolumeType),
                    "data": ["device_path": .string(info.devicePath), "access_mode": .string(info.mode), "block": .bool(info.block)]]
        }
        return ["driver_volume_type": .string(info.driverVolumeType),
                "data": ["target_portal": .string(iscsi.portal), "target_iqn": .string(iscsi.iqn), "target_lun": .number(Double(iscsi.lun)),
                         "target_discovered": false, "auth_method": "CHAP", "auth_username": .string(iscsi.username),
                         "auth_password": .string(iscsi.password), "access_mode": .string(info.mode), "encrypted": false]]
    }

    func listAttachments(_ request: Request, _ context: APIRequestContext, detail: Bool) async throws -> Response {
        let version = try attachmentsVersion(request)
        try context.enforce("volume:get_all")
        var list = try await volumes.attachments(projectID: try listScope(request, context, filters: ["all_tenants", "project_id", "volume_id",
                                                                                                         "instance_id", "status", "limit", "marker", "offset"]))
        if let volume = request.query("volume_id") { list = list.filter { $0.volumeID == volume } }
        if let instance = request.query("instance_id") { list = list.filter { $0.instanceID == instance } }
        if let status = request.query("status") { list = list.filter { $0.status == status } }
        list = try Self.after(list, marker: request.query("marker"), id: \.id)
        if let offset = try request.intQuery("offset", invalid: APIFault(.badRequest, "Invalid input received: offset must be an integer")) {
            list = Array(list.dropFirst(offset))
        }
        if let limit = try request.intQuery("limit", invalid: APIFault(.badRequest, "Invalid input received: limit must be an integer")) {
            list = Array(list.prefix(limit))
        }
        return ok(["attachments": .array(list.map { attachmentJSON($0, detail: detail) })], version)
    }

    func createAttachment(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try attachmentsVersion(request)
        let body = try await environment.body(request, context)
        let fields = body["attachment"]?.objectValue ?? [:]
        let volumeID = fields["volume_uuid"]?.stringValue ?? ""
        let volume = try await volumes.volume(volumeID, projectID: try scope(context))
        try context.enforce("volume:attachment_create", target: ["project_id": volume.projectID])
        // An empty connector (what the CLI sends without --connect) is none, as in Cinder.
        let connector = fields["connector"].flatMap { ($0.objectValue ?? [:]).isEmpty ? nil : $0 }
        let mode = fields["mode"]?.stringValue ?? connector?["mode"]?.stringValue ?? "rw"
        let (attachment, info) = try await volumes.createAttachment(volumeID: volume.id, projectID: nil, instanceID: fields["instance_uuid"]?.stringValue,
                                                                    connectorHost: connector?["host"]?.stringValue, connected: connector != nil,
                                                                    mode: mode)
        return ok(["attachment": attachmentJSON(attachment, detail: true, connection: info)], version)
    }

    /// The legacy attach and detach actions of `POST /volumes/{id}/action`; nil when `name` is
    /// not one of them.
    func legacyAttachAction(_ name: String, _ argument: JSON, _ volume: Volume, _ version: Microversion,
                            _ context: APIRequestContext) async throws -> Response? {
        let actions = ["os-reserve", "os-unreserve", "os-initialize_connection", "os-attach", "os-begin_detaching", "os-roll_detaching",
                       "os-detach", "os-terminate_connection"]
        guard actions.contains(name) else { return nil }
        try context.enforce("volume_extension:volume_actions:" + name.dropFirst(3), target: ["project_id": volume.projectID])
        let accepted = Response(status: .accepted, headers: version.headers(service: "volume", legacyHeader: nil))
        let mode = argument["mode"]?.stringValue ?? argument["connector"]?["mode"]?.stringValue ?? "rw"
        guard ["rw", "ro"].contains(mode) else { throw APIFault(.badRequest, "Invalid input received: Invalid attach mode '\(mode)'") }
        switch name {
        case "os-reserve": try await volumes.legacyReserve(volume.id)
        case "os-unreserve": try await volumes.legacyUnreserve(volume.id)
        case "os-initialize_connection":
            guard let connector = argument["connector"]?.objectValue else {
                throw APIFault(.badRequest, "Invalid input received: Must specify 'connector'")
            }
            let info = try await volumes.legacyInitializeConnection(volume.id, connectorHost: connector["host"]?.stringValue, mode: mode)
            return ok(["connection_info": Self.connectionJSON(info)], version)
        case "os-attach":
            let instance = argument["instance_uuid"]?.stringValue, host = argument["host_name"]?.stringValue
            guard instance != nil || host != nil else {
                throw APIFault(.badRequest, "Invalid request to attach volume to an invalid target")
            }
            guard let mountpoint = argument["mountpoint"]?.stringValue else {
                throw APIFault(.badRequest, "Invalid input received: Must specify 'mountpoint'")
            }
            try await volumes.legacyAttach(volume.id, instanceID: instance, hostName: host, mountpoint: mountpoint, mode: mode)
        case "os-begin_detaching": try await volumes.legacyDetaching(volume.id, begin: true)
        case "os-roll_detaching": try await volumes.legacyDetaching(volume.id, begin: false)
        case "os-detach": try await volumes.legacyDetach(volume.id, attachmentID: argument["attachment_id"]?.stringValue)
        default:  // os-terminate_connection: nothing was exported, so nothing to take down
            guard argument["connector"]?.objectValue != nil else {
                throw APIFault(.badRequest, "Invalid input received: Must specify 'connector'")
            }
        }
        return accepted
    }
}
