import Foundation
import HTTPTypes
import Hummingbird
import PetrelCore
import PetrelHTTP
import Volumes

/// `/types`: volume types, their extra specs, the default type and private types' access.
extension VolumeAPI {
    func registerTypes(on v3: APIRoutes, prefix: String) {
        v3.get(RouterPath(prefix + "types")) { request, context in try await listTypes(request, context) }
        v3.post(RouterPath(prefix + "types"), body: .json(Self.createTypeSchema, style: .nova)) { request, context in try await createType(request, context) }
        v3.get(RouterPath(prefix + "types/:type")) { request, context in try await showType(request, context) }
        v3.put(RouterPath(prefix + "types/:type"), body: .json(Self.updateTypeSchema, style: .nova)) { request, context in try await updateType(request, context) }
        v3.delete(RouterPath(prefix + "types/:type")) { request, context in try await deleteType(request, context) }
        v3.get(RouterPath(prefix + "types/:type/extra_specs")) { request, context in try await extraSpecs(request, context) }
        v3.post(RouterPath(prefix + "types/:type/extra_specs"), body: .json(Schema.object([("extra_specs", Self.specs)], required: ["extra_specs"]), style: .nova)) { request, context in try await setExtraSpecs(request, context) }
        v3.get(RouterPath(prefix + "types/:type/extra_specs/:key")) { request, context in try await extraSpec(request, context) }
        v3.put(RouterPath(prefix + "types/:type/extra_specs/:key"), body: .json(Self.specs, style: .nova)) { request, context in try await setExtraSpec(request, context) }
        v3.delete(RouterPath(prefix + "types/:type/extra_specs/:key")) { request, context in try await deleteExtraSpec(request, context) }
        v3.get(RouterPath(prefix + "types/:type/os-volume-type-access")) { request, context in try await typeAccess(request, context) }
        v3.post(RouterPath(prefix + "types/:type/action"), body: .json(TypeActionSchemas.action, style: .nova)) { request, context in
            try await typeAction(request, context)
        }
    }

    func typeJSON(_ type: VolumeType, admin: Bool) -> JSON {
        var object: [String: JSON] = [
            "id": .string(type.id), "name": .string(type.name), "description": type.description.map(JSON.string) ?? .null,
            "is_public": .bool(type.isPublic), "os-volume-type-access:is_public": .bool(type.isPublic), "qos_specs_id": nil,
        ]
        // Extra specs say which backend a type lands on: administrators' knowledge, as in Cinder.
        if admin { object["extra_specs"] = .object(type.extraSpecs.mapValues(JSON.string)) }
        return .object(object)
    }

    /// The types the caller may see: all for an administrator, else public ones and private ones shared with its project.
    func typeScope(_ context: APIRequestContext) throws -> String? {
        try context.allows("volume_extension:types_manage") ? nil : try context.caller().projectID ?? ""
    }

    func listTypes(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:type_get")
        let scope = try typeScope(context)
        var isPublic: Bool? = true
        if scope == nil, let asked = request.query("is_public") {
            isPublic = asked.lowercased() == "none" ? nil : !["false", "0", "no", "off"].contains(asked.lowercased())
        } else if scope != nil {
            isPublic = nil
        }
        let types = try await volumes.volumeTypes(projectID: scope, isPublic: isPublic)
        return ok(["volume_types": .array(types.map { typeJSON($0, admin: scope == nil) })], version)
    }

    func showType(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:type_get")
        let reference = try context.parameters.require("type")
        let scope = try typeScope(context)
        let type = reference == "default" ? try await volumes.defaultVolumeType() : try await volumes.volumeType(reference, projectID: scope)
        return ok(["volume_type": typeJSON(type, admin: scope == nil)], version)
    }

    static let typeName = Schema.string(minLength: 1, maxLength: 255)
    static let typeDescription = Schema(types: [.string, .null], maxLength: 255)
    static let publicFlag = Schema(types: [.boolean, .string])
    static let specs = Schema(types: [.object], keyRule: (Schema.Rule("^[\\w.:-]{1,255}$") { key in
        !key.isEmpty && key.count <= 255 && key.allSatisfy { $0.isLetter || $0.isNumber || "_.-:".contains($0) }
    }, .string(maxLength: 255)))
    static let createTypeSchema = Schema.object([("volume_type", .object([
        ("name", typeName), ("description", typeDescription), ("os-volume-type-access:is_public", publicFlag), ("is_public", publicFlag),
        ("extra_specs", specs),
    ], required: ["name"]))], required: ["volume_type"])
    static let updateTypeSchema = Schema.object([("volume_type", .object([
        ("name", Schema(types: [.string, .null], minLength: 1, maxLength: 255)), ("description", typeDescription), ("is_public", publicFlag),
    ]))], required: ["volume_type"])

    static func flag(_ value: JSON?) throws -> Bool? {
        switch value {
        case nil, .null?: return nil
        case .bool(let flag)?: return flag
        case .string(let text)? where ["true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n"].contains(text.lowercased()):
            return ["true", "1", "yes", "on", "t", "y"].contains(text.lowercased())
        case let other?: throw APIFault(.badRequest, "Invalid input received: Invalid value '\(other.pythonStr)' for is_public. Accepted values: True or False.")
        }
    }

    func createType(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:types_manage")
        let body = try await environment.body(request, context)
        let fields = body["volume_type"]?.objectValue ?? [:]
        let isPublic = try Self.flag(fields["os-volume-type-access:is_public"]) ?? Self.flag(fields["is_public"]) ?? true
        let type = try await volumes.createVolumeType(name: fields["name"]?.stringValue ?? "", description: fields["description"]?.stringValue,
                                                      isPublic: isPublic, extraSpecs: fields["extra_specs"]?.objectValue?.compactMapValues { $0.stringValue } ?? [:])
        return ok(["volume_type": typeJSON(type, admin: true)], version)
    }

    func updateType(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:types_manage")
        let id = try context.parameters.require("type")
        let body = try await environment.body(request, context)
        let fields = body["volume_type"]?.objectValue ?? [:]
        let name = fields["name"]?.stringValue, isPublic = try Self.flag(fields["is_public"])
        let description: String?? = fields["description"].map { $0.stringValue }
        guard name != nil || description != nil || isPublic != nil else {
            throw APIFault(.badRequest, "Invalid input received: Specify volume type name, description, is_public or a combination thereof.")
        }
        let type = try await volumes.updateVolumeType(id, name: name, description: description, isPublic: isPublic)
        return ok(["volume_type": typeJSON(type, admin: true)], version)
    }

    func deleteType(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:types_manage")
        try await volumes.deleteVolumeType(try context.parameters.require("type"))
        return Response(status: .accepted, headers: version.headers(service: "volume", legacyHeader: nil))
    }

    func extraSpecs(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:types_extra_specs:index")
        let type = try await volumes.volumeType(try context.parameters.require("type"), projectID: try typeScope(context))
        return ok(["extra_specs": .object(type.extraSpecs.mapValues(JSON.string))], version)
    }

    func setExtraSpecs(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:types_manage")
        let body = try await environment.body(request, context)
        let given = body["extra_specs"]?.objectValue?.compactMapValues { $0.stringValue } ?? [:]
        _ = try await volumes.editExtraSpecs(try context.parameters.require("type"), set: given)
        return ok(["extra_specs": .object(given.mapValues(JSON.string))], version)
    }

    func extraSpec(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:types_extra_specs:index")
        let id = try context.parameters.require("type"), key = try context.parameters.require("key")
        let type = try await volumes.volumeType(id, projectID: try typeScope(context))
        guard let value = type.extraSpecs[key] else { throw APIFault(.notFound, "Volume Type \(id) has no extra specs with key \(key).") }
        return ok([key: .string(value)], version)
    }

    func setExtraSpec(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:types_manage")
        let id = try context.parameters.require("type"), key = try context.parameters.require("key")
        let body = try await environment.body(request, context)
        guard body.count == 1, let value = body[key]?.stringValue, value.count <= 255 else {
            throw APIFault(.badRequest, body.count == 1 && body[key] == nil ? "Request body and URI mismatch"
                                                                           : "Request body contains too many items.")
        }
        _ = try await volumes.editExtraSpecs(id, set: [key: value])
        return ok([key: .string(value)], version)
    }

    func deleteExtraSpec(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:types_manage")
        _ = try await volumes.editExtraSpecs(try context.parameters.require("type"), remove: try context.parameters.require("key"))
        return Response(status: .accepted, headers: version.headers(service: "volume", legacyHeader: nil))
    }

    func typeAccess(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:volume_type_access")
        let id = try context.parameters.require("type")
        let projects = try await volumes.typeAccess(id)
        return ok(["volume_type_access": .array(projects.map { ["volume_type_id": .string(id), "project_id": .string($0)] })], version)
    }

    func typeAction(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try microversion(request)
        let id = try context.parameters.require("type")
        let body = try await environment.body(request, context)
        guard body.count == 1, let (name, argument) = body.first, ["addProjectAccess", "removeProjectAccess"].contains(name) else {
            throw APIFault(.badRequest, "There is no such action: \(body.keys.sorted().joined(separator: ","))")
        }
        try context.enforce("volume_extension:volume_type_access:\(name)")
        guard let project = argument["project"]?.stringValue, !project.isEmpty else {
            throw APIFault(.badRequest, "Missing required element 'project' in request body.")
        }
        try await volumes.editTypeAccess(id, project: project, add: name == "addProjectAccess")
        return Response(status: .accepted, headers: version.headers(service: "volume", legacyHeader: nil))
    }
}
