import Foundation
import Hummingbird
import Identity
import PetrelCore
import PetrelHTTP
import Store

extension KeystoneAPI {
    static let interfaces: Set<String> = ["public", "internal", "admin"]

    func registerCatalog(on router: Router<APIRequestContext>) {
        // MARK: regions
        router.get("/v3/regions") { request, context in
            try context.enforce("identity:list_regions")
            var conditions: [Table<RegionRow>.Condition] = []
            if let parent = request.query("parent_region_id") { conditions.append(.equals("parent_region_id", parent)) }
            let rows = try await service.read { [conditions] sql in try await IdentityTables.regions.all(sql, where: conditions, orderBy: "id") }
            return respond(.ok, ["regions": .array(rows.map(regionJSON)), "links": listLinks(request)])
        }
        @Sendable func createRegion(_ request: Request, _ context: APIRequestContext, id: String?) async throws -> Response {
            try context.enforce("identity:create_region")
            let fields = try await resource(request, "region")
            if let id, let bodyID = try fields.string("id"), bodyID != id {
                throw IdentityError.badRequest("Conflicting region IDs specified: \"\(id)\" and \"\(bodyID)\".")
            }
            let parent = try fields.string("parent_region_id", nullable: true)
            let row = RegionRow(id: try id ?? fields.string("id") ?? IdentityService.makeID(),
                                description: try fields.string("description", maxLength: 65_535, nullable: true) ?? "",
                                parentRegionID: parent, createdAt: IdentityService.timestamp())
            try await service.write { sql in
                if let parent, try await IdentityTables.regions.get(sql, id: parent) == nil {
                    throw IdentityError.notFound(kind: "region", id: parent)
                }
                try await IdentityTables.regions.insert(sql, row)
            }
            return respond(.created, ["region": regionJSON(row)])
        }
        router.post("/v3/regions") { request, context in try await createRegion(request, context, id: nil) }
        router.put("/v3/regions/:region_id") { request, context in
            try await createRegion(request, context, id: try context.parameters.require("region_id"))
        }
        router.get("/v3/regions/:region_id") { request, context in
            try context.enforce("identity:get_region")
            return respond(.ok, ["region": regionJSON(try await existing(IdentityTables.regions, try context.parameters.require("region_id"), "region"))])
        }
        router.patch("/v3/regions/:region_id") { request, context in
            try context.enforce("identity:update_region")
            var row = try await existing(IdentityTables.regions, try context.parameters.require("region_id"), "region")
            let fields = try await resource(request, "region")
            if fields.has("description") { row.description = try fields.string("description", maxLength: 65_535, nullable: true) ?? "" }
            if fields.has("parent_region_id") {
                row.parentRegionID = try fields.string("parent_region_id", nullable: true)
                if row.parentRegionID == row.id { throw IdentityError.badRequest("A region cannot be its own parent.") }
            }
            let updated = row
            try await service.write { sql in
                if let parent = updated.parentRegionID, try await IdentityTables.regions.get(sql, id: parent) == nil {
                    throw IdentityError.notFound(kind: "region", id: parent)
                }
                try await IdentityTables.regions.update(sql, id: updated.id, updated)
            }
            return respond(.ok, ["region": regionJSON(row)])
        }
        router.delete("/v3/regions/:region_id") { request, context in
            try context.enforce("identity:delete_region")
            let row = try await existing(IdentityTables.regions, try context.parameters.require("region_id"), "region")
            try await service.write { sql in
                if try await IdentityTables.regions.first(sql, where: [.equals("parent_region_id", row.id)]) != nil {
                    throw IdentityError.forbidden("Unable to delete region \(row.id) because it or its child regions have associated endpoints.")
                }
                if try await IdentityTables.endpoints.first(sql, where: [.equals("region_id", row.id)]) != nil {
                    throw IdentityError.forbidden("Unable to delete region \(row.id) because it or its child regions have associated endpoints.")
                }
                try await IdentityTables.regions.delete(sql, where: [.equals("id", row.id)])
            }
            return noContent()
        }

        // MARK: services
        router.get("/v3/services") { request, context in
            try context.enforce("identity:list_services")
            var conditions: [Table<CatalogServiceRow>.Condition] = []
            if let type = request.query("type") { conditions.append(.equals("type", type)) }
            if let name = request.query("name") { conditions.append(.equals("name", name)) }
            let rows = try await service.read { [conditions] sql in try await IdentityTables.services.all(sql, where: conditions, orderBy: "type") }
            return respond(.ok, ["services": .array(rows.map(serviceJSON)), "links": listLinks(request)])
        }
        router.post("/v3/services") { request, context in
            try context.enforce("identity:create_service")
            let fields = try await resource(request, "service")
            let row = CatalogServiceRow(id: IdentityService.makeID(), type: try fields.string("type", required: true)!,
                                        name: try fields.string("name", nullable: true) ?? "",
                                        description: try fields.string("description", maxLength: 65_535, nullable: true) ?? "",
                                        enabled: try fields.bool("enabled") ?? true, createdAt: IdentityService.timestamp())
            try await service.write { sql in try await IdentityTables.services.insert(sql, row) }
            return respond(.created, ["service": serviceJSON(row)])
        }
        router.get("/v3/services/:service_id") { request, context in
            try context.enforce("identity:get_service")
            return respond(.ok, ["service": serviceJSON(try await existing(IdentityTables.services, try context.parameters.require("service_id"), "service"))])
        }
        router.patch("/v3/services/:service_id") { request, context in
            try context.enforce("identity:update_service")
            var row = try await existing(IdentityTables.services, try context.parameters.require("service_id"), "service")
            let fields = try await resource(request, "service")
            if fields.has("type") { row.type = try fields.string("type", required: true)! }
            if fields.has("name") { row.name = try fields.string("name", nullable: true) ?? "" }
            if fields.has("description") { row.description = try fields.string("description", maxLength: 65_535, nullable: true) ?? "" }
            if let enabled = try fields.bool("enabled") { row.enabled = enabled }
            let updated = row
            try await service.write { sql in try await IdentityTables.services.update(sql, id: updated.id, updated) }
            return respond(.ok, ["service": serviceJSON(row)])
        }
        router.delete("/v3/services/:service_id") { request, context in
            try context.enforce("identity:delete_service")
            let row = try await existing(IdentityTables.services, try context.parameters.require("service_id"), "service")
            try await service.write { sql in
                try await IdentityTables.endpoints.delete(sql, where: [.equals("service_id", row.id)])
                try await IdentityTables.services.delete(sql, where: [.equals("id", row.id)])
            }
            return noContent()
        }

        // MARK: endpoints
        router.get("/v3/endpoints") { request, context in
            try context.enforce("identity:list_endpoints")
            var conditions: [Table<EndpointRow>.Condition] = []
            if let interface = request.query("interface") { conditions.append(.equals("interface", interface)) }
            if let service = request.query("service_id") { conditions.append(.equals("service_id", service)) }
            if let region = request.query("region_id") { conditions.append(.equals("region_id", region)) }
            let rows = try await service.read { [conditions] sql in try await IdentityTables.endpoints.all(sql, where: conditions, orderBy: "url") }
            return respond(.ok, ["endpoints": .array(rows.map(endpointJSON)), "links": listLinks(request)])
        }
        @Sendable func checkEndpoint(_ fields: Fields, _ row: inout EndpointRow) throws {
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
        @Sendable func storeEndpoint(_ row: EndpointRow, create: Bool) async throws {
            try await service.write { sql in
                guard try await IdentityTables.services.get(sql, id: row.serviceID) != nil else {
                    throw IdentityError.notFound(kind: "service", id: row.serviceID)
                }
                if let region = row.regionID, try await IdentityTables.regions.get(sql, id: region) == nil {
                    throw IdentityError.notFound(kind: "region", id: region)
                }
                if create {
                    try await IdentityTables.endpoints.insert(sql, row)
                } else {
                    try await IdentityTables.endpoints.update(sql, id: row.id, row)
                }
            }
        }
        router.post("/v3/endpoints") { request, context in
            try context.enforce("identity:create_endpoint")
            let fields = try await resource(request, "endpoint")
            for required in ["interface", "url", "service_id"] where !fields.has(required) {
                throw Fields.invalid(required, "'\(required)' is a required property.")
            }
            var row = EndpointRow(id: IdentityService.makeID(), serviceID: "", interface: "", url: "", regionID: nil,
                                  createdAt: IdentityService.timestamp())
            try checkEndpoint(fields, &row)
            try await storeEndpoint(row, create: true)
            return respond(.created, ["endpoint": endpointJSON(row)])
        }
        router.get("/v3/endpoints/:endpoint_id") { request, context in
            try context.enforce("identity:get_endpoint")
            return respond(.ok, ["endpoint": endpointJSON(try await existing(IdentityTables.endpoints, try context.parameters.require("endpoint_id"), "endpoint"))])
        }
        router.patch("/v3/endpoints/:endpoint_id") { request, context in
            try context.enforce("identity:update_endpoint")
            var row = try await existing(IdentityTables.endpoints, try context.parameters.require("endpoint_id"), "endpoint")
            try checkEndpoint(try await resource(request, "endpoint"), &row)
            try await storeEndpoint(row, create: false)
            return respond(.ok, ["endpoint": endpointJSON(row)])
        }
        router.delete("/v3/endpoints/:endpoint_id") { request, context in
            try context.enforce("identity:delete_endpoint")
            let row = try await existing(IdentityTables.endpoints, try context.parameters.require("endpoint_id"), "endpoint")
            try await service.write { sql in try await IdentityTables.endpoints.delete(sql, where: [.equals("id", row.id)]) }
            return noContent()
        }
    }

    // MARK: application credentials

    func registerApplicationCredentials(on router: Router<APIRequestContext>) {
        let base = "/v3/users/:user_id/application_credentials"
        router.get(RouterPath(base)) { request, context in
            let userID = try context.parameters.require("user_id")
            try context.enforce("identity:list_application_credentials", target: ["user_id": userID])
            var conditions: [Table<ApplicationCredentialRow>.Condition] = [.equals("user_id", userID)]
            if let name = request.query("name") { conditions.append(.equals("name", name)) }
            let rows = try await service.read { [conditions] sql in
                try await IdentityTables.applicationCredentials.all(sql, where: conditions, orderBy: "name")
            }
            var list: [JSON] = []
            for row in rows { list.append(applicationCredentialJSON(row, roles: try await service.applicationCredentialRoles(row.id))) }
            return respond(.ok, ["application_credentials": .array(list), "links": listLinks(request)])
        }
        router.post(RouterPath(base)) { request, context in
            let caller = try authenticate(context)
            let userID = try context.parameters.require("user_id")
            try context.enforce("identity:create_application_credential", target: ["user_id": userID])
            guard caller.user.id == userID, let project = caller.project else {
                throw IdentityError.forbidden("An application credential is created with a project-scoped token of its own user.")
            }
            if caller.applicationCredential?.restricted == true {
                throw IdentityError.forbidden("A restricted application credential cannot create application credentials.")
            }
            let fields = try await resource(request, "application_credential")
            var expiresAt: Int64?
            if let text = try fields.string("expires_at", nullable: true) {
                guard let date = UTCTime.parse(text) else { throw Fields.invalid("expires_at", "'\(text)' is not a timestamp.") }
                expiresAt = Int64(date.timeIntervalSince1970 * 1000)
            }
            var roleIDs: [String]?
            if let roles = fields.object["roles"], !roles.isNull {
                guard let list = roles.arrayValue else { throw Fields.invalid("roles", "expected a list of roles.") }
                roleIDs = []
                for entry in list {
                    if let id = entry["id"]?.stringValue {
                        roleIDs!.append(id)
                    } else if let name = entry["name"]?.stringValue {
                        let role = try await service.read { sql in
                            try await IdentityTables.roles.first(sql, where: [.equals("name", name), .equals("domain_id", "")])
                        }
                        guard let role else { throw IdentityError.notFound(kind: "role", id: name) }
                        roleIDs!.append(role.id)
                    } else {
                        throw Fields.invalid("roles", "each role needs an id or a name.")
                    }
                }
            } else {
                roleIDs = caller.roles.map(\.id)
            }
            if fields.has("access_rules"), fields.object["access_rules"]?.arrayValue?.isEmpty == false {
                throw IdentityError.badRequest("Access rules are not supported.")
            }
            let (row, roles, secret) = try await service.createApplicationCredential(
                userID: userID, projectID: project.id, name: try fields.string("name", required: true)!,
                secret: try KeystoneAPI.password(fields, "secret", nullable: true),
                description: try fields.string("description", maxLength: 65_535, nullable: true) ?? "",
                expiresAt: expiresAt, unrestricted: try fields.bool("unrestricted") ?? false, roleIDs: roleIDs)
            return respond(.created, ["application_credential": applicationCredentialJSON(row, roles: roles, secret: secret)])
        }
        router.get(RouterPath(base + "/:credential_id")) { request, context in
            let userID = try context.parameters.require("user_id")
            try context.enforce("identity:get_application_credential", target: ["user_id": userID])
            let id = try context.parameters.require("credential_id")
            let row = try await existing(IdentityTables.applicationCredentials, id, "application credential")
            guard row.userID == userID else { throw IdentityError.notFound(kind: "application credential", id: id) }
            return respond(.ok, ["application_credential": applicationCredentialJSON(row, roles: try await service.applicationCredentialRoles(id))])
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
