import Foundation
import Hummingbird
import Identity
import PetrelHTTP

extension KeystoneSchemas {
    // MARK: endpoint groups (keystone/catalog/schema.py)

    /// Keystone's schema lets `enabled` and other keys through; the handler then refuses every
    /// key but `interface`, `service_id` and `region_id`, as Keystone does.
    static let endpointGroupFilters = Schema(types: [.object], properties: [
        ("interface", .choice(["admin", "internal", "public"], types: [.string])), ("service_id", .string()),
        ("region_id", nullableString), ("enabled", .boolean),
    ])
    static let endpointGroupProperties: [(String, Schema)] = [
        ("description", nullableString), ("filters", endpointGroupFilters), ("name", name(maxLength: 255)),
    ]
    static let endpointGroupCreate = wrapped("endpoint_group", .object(endpointGroupProperties, required: ["name", "filters"]))
    static let endpointGroupUpdate = wrapped("endpoint_group", .object(endpointGroupProperties, minProperties: 1))
    /// Closed, as Keystone's.
    static let endpointGroupsQuery = QuerySchema(.object([("name", name(maxLength: 255))]), reading: .firstValues)
}

/// OS-EP-FILTER: endpoint groups, and the endpoints and endpoint groups given to projects (a
/// project given any sees only those in its tokens' catalogs).
extension KeystoneAPI {
    func endpointGroupJSON(_ row: EndpointGroup) -> JSON {
        let filters = IdentityService.EndpointFilters(stored: row.filters).values
        return ["id": .string(row.id), "name": .string(row.name), "description": row.description.map(JSON.string) ?? nil,
                "filters": .object(filters.mapValues { $0.map(JSON.string) ?? .null }),
                "links": ["self": link("/v3/OS-EP-FILTER/endpoint_groups/\(row.id)")]]
    }

    /// A request's `filters`: only Keystone's three keys (400 otherwise).
    func endpointFilters(_ object: [String: JSON]) throws -> IdentityService.EndpointFilters {
        let keys = IdentityService.EndpointFilters.keys
        guard object.keys.allSatisfy(keys.contains) else {
            throw IdentityError.badRequest("Expecting to find \(keys.joined(separator: " or ")) in endpoint_group. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
        }
        // The schema made each a string (the region also null).
        return IdentityService.EndpointFilters(object.mapValues { $0.stringValue })
    }

    /// The catalog a token shows: for a project given endpoints (OS-EP-FILTER), only those.
    func encodedCatalog(for info: TokenInfo) async throws -> JSON {
        guard let project = info.project, let allowed = try await service.catalogFilter(project: project.id) else {
            return try await encodedCatalog()
        }
        return catalogJSON(IdentityService.filter(try await service.catalog(), to: allowed))
    }

    func registerEndpointFilter(on router: APIRoutes) {
        // MARK: endpoint groups
        let groups = "/v3/OS-EP-FILTER/endpoint_groups"
        router.get(RouterPath(groups), query: KeystoneSchemas.endpointGroupsQuery) { request, context in
            try context.enforce("identity:list_endpoint_groups")
            var filters: [(String, any Encodable & Sendable)] = []
            if let name = request.query("name") { filters.append(("name", name)) }
            let rows = try await service.endpointGroups.list(where: filters, orderBy: "created_at")
            return respond(.ok, ["endpoint_groups": .array(rows.map(endpointGroupJSON)), "links": listLinks(request)])
        }
        router.post(RouterPath(groups), body: .json(KeystoneSchemas.endpointGroupCreate, style: .nova)) { request, context in
            try context.enforce("identity:create_endpoint_group")
            let fields = try await resource(request, context, "endpoint_group")
            guard let given = fields.object["filters"]?.objectValue, !given.isEmpty else {
                throw IdentityError.badRequest("filters field is required and cannot be empty")
            }
            let row = EndpointGroup(id: IdentityService.makeID(), name: fields.object["name"]?.stringValue ?? "",
                                    description: fields.object["description"]?.stringValue, filters: try endpointFilters(given).stored,
                                    createdAt: IdentityService.timestamp())
            try await service.endpointGroups.create(row)
            return respond(.created, ["endpoint_group": endpointGroupJSON(row)])
        }
        router.get(RouterPath(groups + "/:group_id")) { _, context in
            try context.enforce("identity:get_endpoint_group")
            return respond(.ok, ["endpoint_group": endpointGroupJSON(try await service.endpointGroups.get(try context.parameters.require("group_id")))])
        }
        router.patch(RouterPath(groups + "/:group_id"), body: .json(KeystoneSchemas.endpointGroupUpdate, style: .nova)) { request, context in
            try context.enforce("identity:update_endpoint_group")
            let fields = try await resource(request, context, "endpoint_group")
            let filters = try fields.object["filters"]?.objectValue.map(endpointFilters)
            var row = try await service.endpointGroups.get(try context.parameters.require("group_id"))
            if let name = fields.object["name"]?.stringValue { row.name = name }
            if let description = fields.object["description"] { row.description = description.stringValue }
            if let filters { row.filters = filters.stored }
            let updated = row
            try await service.endpointGroups.update(updated, id: updated.id)
            return respond(.ok, ["endpoint_group": endpointGroupJSON(updated)])
        }
        router.delete(RouterPath(groups + "/:group_id")) { _, context in
            try context.enforce("identity:delete_endpoint_group")
            try await service.deleteEndpointGroup(try context.parameters.require("group_id"))
            return noContent()
        }
        router.get(RouterPath(groups + "/:group_id/endpoints")) { request, context in
            try context.enforce("identity:list_endpoints_associated_with_endpoint_group")
            let endpoints = try await service.endpoints(inGroup: try context.parameters.require("group_id"))
            return respond(.ok, ["endpoints": .array(endpoints.map(endpointJSON)), "links": listLinks(request)])
        }
        router.get(RouterPath(groups + "/:group_id/projects")) { request, context in
            try context.enforce("identity:list_projects_associated_with_endpoint_group")
            let projects = try await service.projects(forEndpointGroup: try context.parameters.require("group_id"))
            return respond(.ok, ["projects": .array(projects.map(projectJSON)), "links": listLinks(request)])
        }

        // MARK: endpoint groups of projects
        let groupProject = groups + "/:group_id/projects/:project_id"
        router.put(RouterPath(groupProject), body: .none) { _, context in
            try context.enforce("identity:add_endpoint_group_to_project")
            try await service.addEndpointGroup(try context.parameters.require("group_id"), toProject: try context.parameters.require("project_id"))
            return noContent()
        }
        router.get(RouterPath(groupProject)) { _, context in
            try context.enforce("identity:get_endpoint_group_in_project")
            let (group, project) = (try context.parameters.require("group_id"), try context.parameters.require("project_id"))
            try await service.checkEndpointGroup(group, inProject: project)
            return respond(.ok, ["project_endpoint_group": [
                "endpoint_group_id": .string(group), "project_id": .string(project),
                "links": ["self": link("/v3/OS-EP-FILTER/endpoint_groups/\(group)/projects/\(project)")],
            ]])
        }
        router.delete(RouterPath(groupProject)) { _, context in
            try context.enforce("identity:remove_endpoint_group_from_project")
            try await service.removeEndpointGroup(try context.parameters.require("group_id"),
                                                  fromProject: try context.parameters.require("project_id"))
            return noContent()
        }
        router.get("/v3/OS-EP-FILTER/projects/:project_id/endpoint_groups") { request, context in
            try context.enforce("identity:list_endpoint_groups_for_project")
            let rows = try await service.endpointGroups(forProject: try context.parameters.require("project_id"))
            return respond(.ok, ["endpoint_groups": .array(rows.map(endpointGroupJSON)), "links": listLinks(request)])
        }

        // MARK: endpoints of projects
        let projectEndpoint = "/v3/OS-EP-FILTER/projects/:project_id/endpoints/:endpoint_id"
        router.put(RouterPath(projectEndpoint), body: .none) { _, context in
            try context.enforce("identity:add_endpoint_to_project")
            try await service.addEndpoint(try context.parameters.require("endpoint_id"), toProject: try context.parameters.require("project_id"))
            return noContent()
        }
        router.get(RouterPath(projectEndpoint)) { _, context in
            try context.enforce("identity:check_endpoint_in_project")
            try await service.checkEndpoint(try context.parameters.require("endpoint_id"), inProject: try context.parameters.require("project_id"))
            return noContent()
        }
        router.delete(RouterPath(projectEndpoint)) { _, context in
            try context.enforce("identity:remove_endpoint_from_project")
            try await service.removeEndpoint(try context.parameters.require("endpoint_id"),
                                             fromProject: try context.parameters.require("project_id"))
            return noContent()
        }
        router.get("/v3/OS-EP-FILTER/projects/:project_id/endpoints") { request, context in
            try context.enforce("identity:list_endpoints_for_project")
            let endpoints = try await service.endpoints(forProject: try context.parameters.require("project_id"))
            return respond(.ok, ["endpoints": .array(endpoints.map(endpointJSON)), "links": listLinks(request)])
        }
        router.get("/v3/OS-EP-FILTER/endpoints/:endpoint_id/projects") { request, context in
            try context.enforce("identity:list_projects_for_endpoint")
            let projects = try await service.projects(forEndpoint: try context.parameters.require("endpoint_id"))
            return respond(.ok, ["projects": .array(projects.map(projectJSON)), "links": listLinks(request)])
        }
    }
}
