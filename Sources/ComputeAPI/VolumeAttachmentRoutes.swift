import Crypto
import Compute
import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import PetrelCore
import PetrelHTTP
import Volumes

/// Nova's os-volume_attachments: `/servers/{id}/os-volume_attachments`, a server's volumes
/// listed, attached (`openstack server add volume`) and detached (`server remove volume`).
extension ComputeAPI {
    static let volumeAttachmentPolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:os-volumes-attachments:index", ownerReader, "List a server's volume attachments.",
                      ["GET /compute/v2.1/servers/{server_id}/os-volume_attachments"]),
        PolicyDefault("os_compute_api:os-volumes-attachments:show", ownerReader, "Show one volume attachment of a server.",
                      ["GET /compute/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}"]),
        PolicyDefault("os_compute_api:os-volumes-attachments:create", ownerMember, "Attach a volume to a server.",
                      ["POST /compute/v2.1/servers/{server_id}/os-volume_attachments"]),
        PolicyDefault("os_compute_api:os-volumes-attachments:update", ownerMember,
                      "Update a volume attachment (2.85: delete_on_termination). A request that also swaps the volume is checked against the swap policy only.",
                      ["PUT /compute/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}"]),
        PolicyDefault("os_compute_api:os-volumes-attachments:swap", "role:service",
                      "Swap an attached volume for another (a volumeId other than the one in the path): what the volume service's migration asks.",
                      ["PUT /compute/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}"]),
        PolicyDefault("os_compute_api:os-volumes-attachments:delete", ownerMember, "Detach a volume from a server.",
                      ["DELETE /compute/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}"]),
    ]

    static func attachSchema(_ version: Microversion) -> Schema {
        var fields: [(String, Schema)] = [("volumeId", .string(format: .uuid)),
                                          ("device", Schema(types: [.string, .null], pattern: Schema.Rule(regex: "^(/dev/[a-zA-Z0-9]+)?$")))]
        if version >= Microversion(2, 49) { fields.append(("tag", .string(minLength: 1, maxLength: 60))) }
        if version >= Microversion(2, 79) { fields.append(("delete_on_termination", NovaTypes.boolean)) }
        return .object([("volumeAttachment", .object(fields, required: ["volumeId"]))], required: ["volumeAttachment"])
    }

    /// PUT's body: before 2.85 only the volume to swap in; from 2.85 also the attachment's
    /// fields as GET shows them (only delete_on_termination may change).
    static func updateSchema(_ version: Microversion) -> Schema {
        var fields: [(String, Schema)] = [("volumeId", .string(format: .uuid))]
        if version >= Microversion(2, 85) {
            fields += [("device", Schema(types: [.string, .null], pattern: Schema.Rule(regex: "^(/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"))),
                       ("tag", .string(minLength: 1, maxLength: 60)), ("delete_on_termination", NovaTypes.boolean),
                       ("serverId", .string(format: .uuid)), ("id", .string(format: .uuid))]
        }
        return .object([("volumeAttachment", .object(fields, required: ["volumeId"]))], required: ["volumeAttachment"])
    }

    func registerVolumeAttachments(on v21: APIRoutes) {
        v21.put("servers/:server_id/os-volume_attachments/:volume_id", body: Self.body { Self.updateSchema($0) }) { request, context in
            let id = try context.parameters.require("server_id")
            let oldID = try context.parameters.require("volume_id").lowercased()
            let (caller, version) = try await authenticated(request, context)
            let who = try serverCaller(caller, context)
            let server = try await serverCall { try await servers.get(id, by: who) }
            let body = try await environment.body(request, context)
            let fields = body["volumeAttachment"]?.objectValue ?? [:]
            let newID = (fields["volumeId"]?.stringValue ?? "").lowercased()
            let swapOnly = version < Microversion(2, 85)
            let swapping = swapOnly || newID != oldID
            // As Nova: a request that swaps is checked against the swap policy alone.
            try context.enforce(swapping ? "os_compute_api:os-volumes-attachments:swap" : "os_compute_api:os-volumes-attachments:update",
                                target: swapping ? [:] : ["project_id": server.projectID])
            if !swapOnly {
                guard let current = (try await servers.attachedVolumes([id])[id] ?? []).first(where: { $0.volumeID == oldID }) else {
                    throw APIFault(.notFound, "Volume \(oldID) is not attached to server \(id).")
                }
                if let given = fields["id"]?.stringValue, given.lowercased() != oldID { throw APIFault(.badRequest, "The id property is not mutable") }
                if let given = fields["serverId"]?.stringValue, given.lowercased() != id { throw APIFault(.badRequest, "The serverId property is not mutable") }
                if let given = fields["device"], given != (current.device.map { .string("/dev/" + $0) } ?? .null) {
                    throw APIFault(.badRequest, "The device property is not mutable")
                }
                if fields["tag"] != nil { throw APIFault(.badRequest, "The tag property is not mutable") }
                if fields["delete_on_termination"] != nil {
                    let value = try Self.novaBoolean(fields["delete_on_termination"], field: "delete_on_termination")
                    try await volumeCall { try await servers.volumes?.setDeleteOnTermination(oldID, instanceID: id, value) }
                }
            }
            if swapping {
                try await volumeCall {
                    try await serverConductor.swapVolume(id, from: oldID, to: newID, by: who, context: rpcContext(caller, who))
                }
            }
            return Response(status: .accepted, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }
        v21.get("servers/:server_id/os-volume_attachments", query: NovaQuerySchemas.volumeAttachments) { request, context in
            let id = try context.parameters.require("server_id")
            let (_, _, version, _) = try await authorizedServer(request, context, id, "os_compute_api:os-volumes-attachments:index")
            let list = try await servers.attachedVolumes([id])[id] ?? []
            return answer(.ok, ["volumeAttachments": .array(list.map { attachmentJSON($0, version) })], version)
        }
        v21.get("servers/:server_id/os-volume_attachments/:volume_id", query: NovaQuerySchemas.open) { request, context in
            let id = try context.parameters.require("server_id")
            let volumeID = try context.parameters.require("volume_id")
            let (_, _, version, _) = try await authorizedServer(request, context, id, "os_compute_api:os-volumes-attachments:show")
            guard let attachment = (try await servers.attachedVolumes([id])[id] ?? []).first(where: { $0.volumeID == volumeID }) else {
                throw APIFault(.notFound, "Volume \(volumeID) is not attached to \(id)")
            }
            return answer(.ok, ["volumeAttachment": attachmentJSON(attachment, version)], version)
        }
        v21.post("servers/:server_id/os-volume_attachments", body: Self.body { Self.attachSchema($0) }) { request, context in
            let id = try context.parameters.require("server_id")
            let (_, caller, version, who) = try await authorizedServer(request, context, id, "os_compute_api:os-volumes-attachments:create")
            let body = try await environment.body(request, context)
            let fields = body["volumeAttachment"]?.objectValue ?? [:]
            if fields["tag"] != nil {
                throw APIFault(.badRequest, "Tagged volume attach is not supported by this hypervisor.")
            }
            let deleteOnTermination = try Self.novaBoolean(fields["delete_on_termination"], field: "delete_on_termination")
            let volumeID = (fields["volumeId"]?.stringValue ?? "").lowercased()
            let attachment = try await volumeCall {
                try await serverConductor.attachVolume(id, volumeID: volumeID, deleteOnTermination: deleteOnTermination, by: who,
                                                       context: rpcContext(caller, who))
            }
            return answer(.ok, ["volumeAttachment": attachmentJSON(attachment, version, read: false)], version)
        }
        v21.delete("servers/:server_id/os-volume_attachments/:volume_id") { request, context in
            let id = try context.parameters.require("server_id")
            let volumeID = try context.parameters.require("volume_id")
            let (_, caller, version, who) = try await authorizedServer(request, context, id, "os_compute_api:os-volumes-attachments:delete")
            try await volumeCall { try await serverConductor.detachVolume(id, volumeID: volumeID, by: who, context: rpcContext(caller, who)) }
            return Response(status: .accepted, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }
    }

    /// An attachment as Nova shows it. From 2.89 the reads (`listed`) drop the `id` (the
    /// volume's id again) and give the volume service's attachment id and the block device
    /// mapping's; an attach still answers in the older form, as Nova's does.
    func attachmentJSON(_ attachment: VolumeAttachment, _ version: Microversion, read: Bool = true) -> JSON {
        var object: [String: JSON] = [
            "id": .string(attachment.volumeID), "serverId": .string(attachment.instanceID), "volumeId": .string(attachment.volumeID),
            "device": attachment.device.map { .string("/dev/" + $0) } ?? .null,
        ]
        if version >= Microversion(2, 70) { object["tag"] = .null }
        if version >= Microversion(2, 79) { object["delete_on_termination"] = .bool(attachment.deleteOnTermination) }
        if read, version >= Microversion(2, 89) {
            object["id"] = nil
            object["attachment_id"] = .string(attachment.id)
            object["bdm_uuid"] = .string(Self.blockDeviceMappingID(attachment.id))
        }
        return .object(object)
    }

    /// Petrel keeps a volume's block device mapping in its attachment record, so the mapping's
    /// id is derived from the attachment's: stable, and distinct from it.
    static func blockDeviceMappingID(_ attachmentID: String) -> String {
        var bytes = Array(SHA256.hash(data: Data(("block-device-mapping:" + attachmentID).utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0f) | 0x50  // version 5 (name-based), variant RFC 4122
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let parts = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
        return parts.map(String.init).joined(separator: "-")
    }

    /// The volume service's refusals in Nova's words (a volume not found: 404; not available or
    /// on another host: 400).
    func volumeCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await serverCall(body)
        } catch let failure as VolumeFailure {
            throw APIFault(failure.status == 404 ? .notFound : .badRequest, failure.message)
        }
    }
}
