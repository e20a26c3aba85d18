import Foundation
import Hummingbird
import Identity
import PetrelCore
import PetrelHTTP

extension KeystoneAPI {
    static let interfaces: Set<String> = ["public", "internal", "admin"]

    func registerCatalog(on router: APIRoutes) {
        // MARK: regions
        router.get("/v3/regions", query: KeystoneSchemas.regionsQuery) { request, context in
            try context.enforce("identity:list_regions")
            var filters: [(String, any Encodable & Sendable)] = []
            if let parent = request.query("parent_region_id") { filters.append(("parent_region_id", parent)) }
            let rows = try await service.regions.list(where: filters, orderBy: "id")
            return respond(.ok, ["regions": .array(rows.map(regionJSON)), "links": listLinks(request)])
        }
        @Sendable func createRegion(_ request: Request, _ context: APIRequestContext, id: String?) async throws -> Response {
            try context.enforce("identity:create_region")
            let fields = try await resource(request, context, "region")
            if let id, let bodyID = try fields.string("id"), bodyID != id {
                throw IdentityError.badRequest("Conflicting region IDs specified: \"\(id)\" and \"\(bodyID)\".")
            }
            let parent = try fields.string("parent_region_id", nullable: true)
            let row = Region(id: try id ?? fields.string("id") ?? IdentityService.makeID(),
                             description: try fields.string("description", maxLength: 65_535, nullable: true) ?? "",
                             parentRegionID: parent, createdAt: IdentityService.timestamp())
            try await service.createRegion(row)
            return respond(.created, ["region": regionJSON(row)])
        }
        router.post("/v3/regions", body: .json(KeystoneSchemas.regionCreate, style: .nova)) { request, context in try await createRegion(request, context, id: nil) }
        router.put("/v3/regions/:region_id", body: .json(KeystoneSchemas.regionCreate, style: .nova)) { request, context in
            try await createRegion(request, context, id: try context.parameters.require("region_id"))
        }
        router.get("/v3/regions/:region_id") { request, context in
            try context.enforce("identity:get_region")
            return respond(.ok, ["region": regionJSON(try await service.regions.get(try context.parameters.require("region_id")))])
        }
        router.patch("/v3/regions/:region_id", body: .json(KeystoneSchemas.regionUpdate, style: .nova)) { request, context in
            try context.enforce("identity:update_region")
            var row = try await service.regions.get(try context.parameters.require("region_id"))
            let fields = try await resource(request, context, "region")
            try fields.refuseIDChange(row.id)
            if fields.has("description") { row.description = try fields.string("description", maxLength: 65_535, nullable: true) ?? "" }
            if fields.has("parent_region_id") {
                row.parentRegionID = try fields.string("parent_region_id", nullable: true)
                if row.parentRegionID == row.id { throw IdentityError.badRequest("A region cannot be its own parent.") }
            }
            let updated = row
            try await service.updateRegion(updated)
            return respond(.ok, ["region": regionJSON(row)])
        }
        router.delete("/v3/regions/:region_id") { request, context in
            try context.enforce("identity:delete_region")
            let row = try await service.regions.get(try context.parameters.require("region_id"))
            try await service.deleteRegion(row.id)
            return noContent()
        }

        // MARK: services
        router.get("/v3/services", query: KeystoneSchemas.servicesQuery) { request, context in
            try context.enforce("identity:list_services")
            var filters: [(String, any Encodable & Sendable)] = []
            if let type = request.query("type") { filters.append(("type", type)) }
            if let name = request.query("name") { filters.append(("name", name)) }
            let rows = try await service.catalogServices.list(where: filters, orderBy: "type")
            return respond(.ok, ["services": .array(rows.map(serviceJSON)), "links": listLinks(request)])
        }
        router.post("/v3/services", body: .json(KeystoneSchemas.serviceCreate, style: .nova)) { request, context in
            try context.enforce("identity:create_service")
            let fields = try await resource(request, context, "service")
            let row = CatalogService(id: IdentityService.makeID(), type: try fields.string("type", required: true)!,
                                     name: try fields.string("name", nullable: true) ?? "",
                                     description: try fields.string("description", maxLength: 65_535, nullable: true) ?? "",
                                     enabled: try fields.bool("enabled") ?? true, createdAt: IdentityService.timestamp())
            try await service.catalogServices.create(row)
            return respond(.created, ["service": serviceJSON(row)])
        }
        router.get("/v3/services/:service_id") { request, context in
            try context.enforce("identity:get_service")
            return respond(.ok, ["service": serviceJSON(try await service.catalogServices.get(try context.parameters.require("service_id")))])
        }
        router.patch("/v3/services/:service_id", body: .json(KeystoneSchemas.serviceUpdate, style: .nova)) { request, context in
            try context.enforce("identity:update_service")
            var row = try await service.catalogServices.get(try context.parameters.require("service_id"))
            let fields = try await resource(request, context, "service")
            try fields.refuseIDChange(row.id)
            if fields.has("type") { row.type = try fields.string("type", required: true)! }
            if fields.has("name") { row.name = try fields.string("name", nullable: true) ?? "" }
            if fields.has("description") { row.description = try fields.string("description", maxLength: 65_535, nullable: true) ?? "" }
            if let enabled = try fields.bool("enabled") { row.enabled = enabled }
            let updated = row
            try await service.catalogServices.update(updated, id: updated.id)
            return respond(.ok, ["service": serviceJSON(row)])
        }
        router.delete("/v3/services/:service_id") { request, context in
            try context.enforce("identity:delete_service")
            let row = try await service.catalogServices.get(try context.parameters.require("service_id"))
            try await service.deleteCatalogService(row.id)
            return noContent()
        }

        // MARK: endpoints
        router.get("/v3/endpoints", query: KeystoneSchemas.endpointsQuery) { request, context in
            try context.enforce("identity:list_endpoints")
            var filters: [(String, any Encodable & Sendable)] = []
            if let interface = request.query("interface") { filters.append(("interface", interface)) }
            if let service = request.query("service_id") { filters.append(("service_id", service)) }
            if let region = request.query("region_id") { filters.append(("region_id", region)) }
            let rows = try await service.endpoints.list(where: filters, orderBy: "url")
            return respond(.ok, ["endpoints": .array(rows.map(endpointJSON)), "links": listLinks(request)])
        }
        @Sendable func checkEndpoint(_ fields: Fields, _ row: inout Endpoint) throws {
            if fields.has("interface") {
                let interface = try fields.string("interface", required: true)!
                guard Self.interfaces.contains(interface) else {
                    throw Fields.invalid("interface", "'\(interface)' is not one of ['admin', 'internal', 'public'].")
                }
                row.interface = interface
            }
            if fields.has("url") {
                let url = try fields.string("url", required: true, maxLength: 225)!
                guard let parsed = URL(string: url), parsed.scheme != nil, parsed.host != nil else {
                    throw Fields.invalid("url", "'\(url)' is not a valid URL.")
                }
                row.url = url
            }
            if fields.has("service_id") { row.serviceID = try fields.string("service_id", required: true)! }
            if fields.has("region_id") || fields.has("region") {
                row.regionID = try fields.string("region_id", nullable: true) ?? fields.string("region", nullable: true)
            }
            if let enabled = try fields.bool("enabled") { row.enabled = enabled }
        }
        router.post("/v3/endpoints", body: .json(KeystoneSchemas.endpointCreate, style: .nova)) { request, context in
            try context.enforce("identity:create_endpoint")
            let fields = try await resource(request, context, "endpoint")
            for required in ["interface", "url", "service_id"] where !fields.has(required) {
                throw Fields.invalid(required, "'\(required)' is a required property.")
            }
            var row = Endpoint(id: IdentityService.makeID(), serviceID: "", interface: "", url: "", regionID: nil,
                               createdAt: IdentityService.timestamp())
            try checkEndpoint(fields, &row)
            try await service.saveEndpoint(row, create: true)
            return respond(.created, ["endpoint": endpointJSON(row)])
        }
        router.get("/v3/endpoints/:endpoint_id") { request, context in
            try context.enforce("identity:get_endpoint")
            return respond(.ok, ["endpoint": endpointJSON(try await service.endpoints.get(try context.parameters.require("endpoint_id")))])
        }
        router.patch("/v3/endpoints/:endpoint_id", body: .json(KeystoneSchemas.endpointUpdate, style: .nova)) { request, context in
            try context.enforce("identity:update_endpoint")
            var row = try await service.endpoints.get(try context.parameters.require("endpoint_id"))
            let fields = try await resource(request, context, "endpoint")
            try fields.refuseIDChange(row.id)
            try checkEndpoint(fields, &row)
            try await service.saveEndpoint(row, create: false)
            return respond(.ok, ["endpoint": endpointJSON(row)])
        }
        router.delete("/v3/endpoints/:endpoint_id") { request, context in
            try context.enforce("identity:delete_endpoint")
            let row = try await service.endpoints.get(try context.parameters.require("endpoint_id"))
            try await service.deleteEndpoint(row.id)
            return noContent()
        }
    }

    // MARK: application credentials

    func registerApplicationCredentials(on router: APIRoutes) {
        let base = "/v3/users/:user_id/application_credentials"
        router.get(RouterPath(base)) { request, context in
            let userID = try context.parameters.require("user_id")
            try context.enforce("identity:list_application_credentials", target: ["user_id": userID])
            var filters: [(String, any Encodable & Sendable)] = [("user_id", userID)]
            if let name = request.query("name") { filters.append(("name", name)) }
            let rows = try await service.applicationCredentials.list(where: filters, orderBy: "name")
            var list: [JSON] = []
            for row in rows {
                list.append(applicationCredentialJSON(row, roles: try await service.applicationCredentialRoles(row.id),
                                                      accessRules: try await service.applicationCredentialAccessRules(row.id)))
            }
            return respond(.ok, ["application_credentials": .array(list), "links": listLinks(request)])
        }
        router.post(RouterPath(base), body: .json(KeystoneSchemas.applicationCredentialCreate, style: .nova)) { request, context in
            let caller = try authenticate(context)
            // Keystone checks the body before the caller's rights.
            let fields = try await resource(request, context, "application_credential")
            let userID = try context.parameters.require("user_id")
            try context.enforce("identity:create_application_credential", target: ["user_id": userID])
            guard caller.user.id == userID, let project = caller.project else {
                throw IdentityError.forbidden("An application credential is created with a project-scoped token of its own user.")
            }
            if caller.applicationCredential?.restricted == true {
                throw IdentityError.forbidden("A restricted application credential cannot create application credentials.")
            }
            var expiresAt: Int64?
            if let text = try fields.string("expires_at", nullable: true) {
                guard let date = UTCTime.parse(text) else { throw Fields.invalid("expires_at", "'\(text)' is not a timestamp.") }
                expiresAt = milliseconds(date)
            }
            var roleIDs: [String]?
            if let roles = fields.object["roles"], !roles.isNull {
                guard let list = roles.arrayValue else { throw Fields.invalid("roles", "expected a list of roles.") }
                roleIDs = []
                for entry in list {
                    if let id = entry["id"]?.stringValue {
                        roleIDs!.append(id)
                    } else if let name = entry["name"]?.stringValue {
                        let role = try await service.globalRole(named: name)
                        guard let role else { throw IdentityError.notFound(kind: "role", id: name) }
                        roleIDs!.append(role.id)
                    } else {
                        throw Fields.invalid("roles", "each role needs an id or a name.")
                    }
                }
            } else {
                roleIDs = caller.roles.map(\.id)
            }
            let accessRules: [IdentityService.AccessRuleRequest] = (fields.object["access_rules"]?.arrayValue ?? []).compactMap { rule in
                if let service = rule["service"]?.stringValue, let path = rule["path"]?.stringValue, let method = rule["method"]?.stringValue {
                    return .rule(service: service, path: path, method: method)
                }
                return rule["id"]?.stringValue.map { .id($0) }
            }
            let (row, roles, rules, secret) = try await service.createApplicationCredential(
                userID: userID, projectID: project.id, name: try fields.string("name", required: true)!,
                secret: try self.password(fields, "secret", nullable: true),
                description: try fields.string("description", maxLength: 65_535, nullable: true) ?? "",
                expiresAt: expiresAt, unrestricted: try fields.bool("unrestricted") ?? false, roleIDs: roleIDs,
                accessRules: accessRules)
            return respond(.created, ["application_credential": applicationCredentialJSON(row, roles: roles, accessRules: rules,
                                                                                          secret: secret)])
        }
        router.get(RouterPath(base + "/:credential_id")) { request, context in
            let userID = try context.parameters.require("user_id")
            try context.enforce("identity:get_application_credential", target: ["user_id": userID])
            let id = try context.parameters.require("credential_id")
            let row = try await service.applicationCredentials.get(id)
            guard row.userID == userID else { throw IdentityError.notFound(kind: "application credential", id: id) }
            return respond(.ok, ["application_credential": applicationCredentialJSON(
                row, roles: try await service.applicationCredentialRoles(id), accessRules: try await service.applicationCredentialAccessRules(id))])
        }
        router.delete(RouterPath(base + "/:credential_id")) { request, context in
            let caller = try authenticate(context)
            let userID = try context.parameters.require("user_id")
            try context.enforce("identity:delete_application_credential", target: ["user_id": userID])
            if caller.applicationCredential?.restricted == true {
                throw IdentityError.forbidden("A restricted application credential cannot delete application credentials.")
            }
            try await service.deleteApplicationCredential(userID: userID, id: try context.parameters.require("credential_id"))
            return noContent()
        }
    }
}
