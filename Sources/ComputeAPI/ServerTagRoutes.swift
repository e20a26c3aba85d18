import Compute
import Foundation
import HTTPTypes
import Hummingbird
import PetrelHTTP

/// Server tags (`/servers/{id}/tags`, microversion 2.26 on), as Nova's `server_tags`.
extension ComputeAPI {
    static let tagsBody = Schema.object([("tags", .array(NovaTypes.tag, maxItems: Servers.maximumTags))], required: ["tags"])

    func registerServerTags(on v21: APIRoutes) {
        /// The server, once the caller passed the policy, at 2.26 or later.
        @Sendable func tagged(_ request: Request, _ context: APIRequestContext, _ policy: String) async throws
            -> (Server, Microversion, ServerCaller) {
            let id = try context.parameters.require("server_id")
            let (server, _, version, who) = try await authorizedServer(request, context, id, "os_compute_api:os-server-tags:" + policy)
            guard version >= Microversion(2, 26) else { throw APIFault(.notFound, "The resource could not be found.") }
            return (server, version, who)
        }
        @Sendable func noContent(_ version: Microversion) -> Response {
            Response(status: .noContent, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }
        /// A tag in the path, checked as Nova checks it.
        @Sendable func pathTag(_ context: APIRequestContext) throws -> String {
            let tag = try context.parameters.require("tag")
            if let problem = Self.tagProblem(tag) {
                throw APIFault(.badRequest, "Tag '\(tag)' is invalid. It must be a non empty string without characters '/' and ','. Validation error message: \(problem)")
            }
            return tag
        }

        v21.get("servers/:server_id/tags", query: NovaQuerySchemas.open) { request, context in
            let (server, version, _) = try await tagged(request, context, "index")
            return answer(.ok, ["tags": .array(server.tags.map(JSON.string))], version)
        }
        v21.put("servers/:server_id/tags", body: .json(Self.tagsBody, style: .nova)) { request, context in
            let (server, version, who) = try await tagged(request, context, "update_all")
            let tags = try await environment.body(request, context)["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let changed = try await serverCall { try await servers.setTags(server.id, tags, replace: true, by: who) }
            return answer(.ok, ["tags": .array(changed.tags.map(JSON.string))], version)
        }
        v21.delete("servers/:server_id/tags") { request, context in
            let (server, version, who) = try await tagged(request, context, "delete_all")
            try await serverCall { try await servers.removeTag(server.id, nil, by: who) }
            return noContent(version)
        }
        v21.get("servers/:server_id/tags/:tag", query: NovaQuerySchemas.open) { request, context in
            let (server, version, _) = try await tagged(request, context, "show")
            let tag = try context.parameters.require("tag")
            guard server.tags.contains(tag) else { throw APIFault(.notFound, "Instance \(server.id) has no tag '\(tag)'") }
            return noContent(version)
        }
        // Adding a tag has no body; Nova answers 201 with a Location for a new tag, 204 for one already there.
        v21.put("servers/:server_id/tags/:tag", body: .none) { request, context in
            let (server, version, who) = try await tagged(request, context, "update")
            let tag = try pathTag(context)
            if server.tags.contains(tag) { return noContent(version) }
            try await serverCall { _ = try await servers.setTags(server.id, [tag], replace: false, by: who) }
            var headers = version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version")
            headers[.location] = base + "/v2.1/servers/" + server.id + "/tags/" + tag
            return Response(status: .created, headers: headers)
        }
        v21.delete("servers/:server_id/tags/:tag") { request, context in
            let (server, version, who) = try await tagged(request, context, "delete")
            let tag = try context.parameters.require("tag")
            guard try await serverCall({ try await servers.removeTag(server.id, tag, by: who) }) else {
                throw APIFault(.notFound, "Instance \(server.id) has no tag '\(tag)'")
            }
            return noContent(version)
        }
    }

    /// Why a tag is not one (jsonschema's words), or nil.
    static func tagProblem(_ tag: String) -> String? {
        if tag.isEmpty { return "'' should be non-empty" }
        if tag.unicodeScalars.count > 60 { return "'\(tag)' is too long" }
        if tag.contains(",") || tag.contains("/") { return "'\(tag)' does not match '^[^,/]*$'" }
        return nil
    }
}
