import Compute
import Foundation
import Hummingbird
import PetrelCore
import PetrelHTTP

extension ComputeAPI {
    static let flavorPolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:os-flavor-manage:create", "rule:context_is_admin", "Create a flavor.", ["POST /compute/v2.1/flavors"]),
        PolicyDefault("os_compute_api:os-flavor-manage:update", "rule:context_is_admin", "Change a flavor's description.",
                      ["PUT /compute/v2.1/flavors/{flavor_id}"]),
        PolicyDefault("os_compute_api:os-flavor-manage:delete", "rule:context_is_admin", "Delete a flavor.",
                      ["DELETE /compute/v2.1/flavors/{flavor_id}"]),
        PolicyDefault("os_compute_api:os-flavor-extra-specs:index", "rule:context_is_admin or role:reader",
                      "List a flavor's extra specs (and see them in flavor details).", ["GET /compute/v2.1/flavors/{flavor_id}/os-extra_specs"]),
        PolicyDefault("os_compute_api:os-flavor-extra-specs:show", "rule:context_is_admin or role:reader", "Show one extra spec.",
                      ["GET /compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}"]),
        PolicyDefault("os_compute_api:os-flavor-extra-specs:create", "rule:context_is_admin", "Add extra specs.",
                      ["POST /compute/v2.1/flavors/{flavor_id}/os-extra_specs"]),
        PolicyDefault("os_compute_api:os-flavor-extra-specs:update", "rule:context_is_admin", "Change an extra spec.",
                      ["PUT /compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}"]),
        PolicyDefault("os_compute_api:os-flavor-extra-specs:delete", "rule:context_is_admin", "Delete an extra spec.",
                      ["DELETE /compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}"]),
        PolicyDefault("os_compute_api:os-flavor-access", "rule:context_is_admin", "List the projects a private flavor is shared with.",
                      ["GET /compute/v2.1/flavors/{flavor_id}/os-flavor-access"]),
        PolicyDefault("os_compute_api:os-flavor-access:add_tenant_access", "rule:context_is_admin", "Share a private flavor with a project.",
                      ["POST /compute/v2.1/flavors/{flavor_id}/action (addTenantAccess)"]),
        PolicyDefault("os_compute_api:os-flavor-access:remove_tenant_access", "rule:context_is_admin", "Stop sharing a private flavor.",
                      ["POST /compute/v2.1/flavors/{flavor_id}/action (removeTenantAccess)"]),
    ]

    static func fault(_ failure: Flavors.Failure) -> APIFault {
        switch failure {
        case .notFound(let id): return APIFault(.notFound, "Flavor \(id) could not be found.")
        case .duplicate(let message): return APIFault(.conflict, message)
        case .publicFlavor(let id): return APIFault(.conflict, "Can not add access to a public flavor \(id).")
        case .accessExists(let flavor, let project): return APIFault(.conflict, "Flavor access already exists for flavor \(flavor) and project \(project) combination.")
        case .accessMissing(let flavor, let project): return APIFault(.notFound, "Flavor access not found for \(flavor) / \(project) combination.")
        case .specMissing(let flavor, let key): return APIFault(.notFound, "Flavor \(flavor) has no extra specs with key \(key).")
        case .badQuery(let message): return APIFault(.badRequest, message)
        }
    }

    func flavorLinks(_ id: String) -> JSON {
        [["rel": "self", "href": .string(base + "/v2.1/flavors/\(id)")], ["rel": "bookmark", "href": .string(base + "/flavors/\(id)")]]
    }

    func flavorJSON(_ flavor: Flavor, _ version: Microversion, detail: Bool, showSpecs: Bool) -> JSON {
        let row = flavor
        var object: [String: JSON] = ["id": .string(row.id), "name": .string(row.name), "links": flavorLinks(row.id)]
        if version >= Microversion(2, 55) { object["description"] = .string(row.description) }
        guard detail else { return .object(object) }
        object["ram"] = .number(Double(row.memoryMB))
        object["vcpus"] = .number(Double(row.vcpus))
        object["disk"] = .number(Double(row.rootGB))
        object["OS-FLV-EXT-DATA:ephemeral"] = .number(Double(row.ephemeralGB))
        object["OS-FLV-DISABLED:disabled"] = .bool(row.disabled)
        object["os-flavor-access:is_public"] = .bool(row.isPublic)
        object["swap"] = row.swap == 0 && version < Microversion(2, 75) ? "" : .number(Double(row.swap))
        object["rxtx_factor"] = .number(row.rxtxFactor)
        if version >= Microversion(2, 61), showSpecs { object["extra_specs"] = .object(flavor.extraSpecs.mapValues(JSON.string)) }
        return .object(object)
    }

    /// Nova's integer fields: a JSON integer, or a string holding one.
    static func integer(_ value: JSON?, _ field: String, minimum: Int) throws -> Int? {
        guard let value else { return nil }
        var number: Int?
        switch value {
        case .number(let double) where double.rounded() == double && abs(double) < 2_147_483_648: number = Int(double)
        case .string(let text): number = Int(text.trimmingCharacters(in: .whitespaces))
        default: number = nil
        }
        guard let number, number >= minimum, number < 2_147_483_648 else {
            throw APIFault(.badRequest, "Invalid input for field/attribute \(field). Value: \(String(decoding: value.encoded(), as: UTF8.self)). It must be an integer of at least \(minimum).")
        }
        return number
    }

    func registerFlavors(on v21: APIRoutes) {
        @Sendable func run<T>(_ body: () async throws -> T) async throws -> T {
            do { return try await body() } catch let failure as Flavors.Failure { throw Self.fault(failure) }
        }
        @Sendable func listed(_ request: Request, _ context: APIRequestContext, detail: Bool) async throws -> Response {
            let (caller, version) = try await authenticated(request, context)
            let isAdmin = caller.hasRole("admin")
            var query = FlavorListQuery()
            if isAdmin {
                switch request.query("is_public")?.lowercased() {
                case nil, "true", "t", "1", "yes": query.isPublic = true
                case "false", "f", "0", "no": query.isPublic = false
                default: query.isPublic = nil  // "none" / "all": every flavor
                }
            } else {
                query.isPublic = nil  // what the project may use: public ones and those shared with it
            }
            if let text = request.query("minRam") {
                guard let minimum = Int(text) else { throw APIFault(.badRequest, "Invalid minRam filter [\(text)]") }
                query.minRAM = minimum
            }
            if let text = request.query("minDisk") {
                guard let minimum = Int(text) else { throw APIFault(.badRequest, "Invalid minDisk filter [\(text)]") }
                query.minDisk = minimum
            }
            query.sortKey = request.query("sort_key") ?? "flavorid"
            query.descending = request.query("sort_dir") == "desc"
            query.marker = request.query("marker")
            // A bad limit is reported after a bad sort key or marker, as Nova (and Petrel before) did.
            let limit = Result { try Paging.novaLimit(request) }
            query.limit = (try? limit.get()) ?? nil
            let list = try await run { try await flavors.page(query, visibleTo: isAdmin ? nil : caller.project?.id ?? "") }
            _ = try limit.get()
            let showSpecs = try context.allows("os_compute_api:os-flavor-extra-specs:index")
            return answer(.ok, ["flavors": .array(list.map { flavorJSON($0, version, detail: detail, showSpecs: showSpecs) })], version)
        }
        v21.get("flavors", query: NovaQuerySchemas.flavors) { request, context in try await listed(request, context, detail: false) }
        v21.get("flavors/detail", query: NovaQuerySchemas.flavors) { request, context in try await listed(request, context, detail: true) }

        @Sendable func visible(_ id: String, _ caller: Caller) async throws -> Flavor {
            try await run { try await flavors.get(id, visibleTo: caller.hasRole("admin") ? nil : caller.project?.id ?? "") }
        }
        v21.get("flavors/:flavor_id", query: NovaQuerySchemas.open) { request, context in
            let (caller, version) = try await authenticated(request, context)
            let flavor = try await visible(try context.parameters.require("flavor_id"), caller)
            let showSpecs = try context.allows("os_compute_api:os-flavor-extra-specs:index")
            return answer(.ok, ["flavor": flavorJSON(flavor, version, detail: true, showSpecs: showSpecs)], version)
        }
        v21.post("flavors", body: Self.body { FlavorSchemas.create($0) }) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-flavor-manage:create")
            guard let fields = try await environment.body(request, context)["flavor"]?.objectValue else {
                throw APIFault(.badRequest, "Invalid input for field/attribute flavor. 'flavor' is a required property.")
            }
            guard let name = fields["name"]?.stringValue, !name.trimmingCharacters(in: .whitespaces).isEmpty, name.count <= 255 else {
                throw APIFault(.badRequest, "Invalid input for field/attribute name. It must be a string of 1 to 255 characters.")
            }
            // Flavor names appear in paths and in CLI tables: letters, digits, '.', '-', '_' and spaces.
            guard name.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || "._- ".unicodeScalars.contains($0) }) else {
                throw APIFault(.badRequest, "Invalid input received: Flavor names can only contain alphanumeric characters, periods, dashes, underscores and spaces.")
            }
            var id = UUID().uuidString.lowercased()
            if let given = fields["id"], !given.isNull, given.stringValue != "auto" {
                let text: String? = switch given {
                case .string(let string): string
                case .number(let number): Int(exactly: number).map(String.init)
                default: nil
                }
                let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "._- "))
                guard let text, !text.isEmpty, text.count <= 255, text.unicodeScalars.allSatisfy(allowed.contains) else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute id: letters, digits, '.', '_', '-' and spaces, at most 255.")
                }
                id = text
            }
            for required in ["ram", "vcpus", "disk"] where fields[required] == nil {
                throw APIFault(.badRequest, "Invalid input for field/attribute flavor. '\(required)' is a required property.")
            }
            var swap = 0
            if let value = fields["swap"], value != "" { swap = try Self.integer(value, "swap", minimum: 0) ?? 0 }
            var rxtx = 1.0
            if let value = fields["rxtx_factor"] {
                let given: Double? = switch value {
                case .number(let number): number
                case .string(let text): Double(text)
                default: nil
                }
                guard let number = given, number > 0 else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute rxtx_factor. It must be a positive number.")
                }
                rxtx = number
            }
            var isPublic = true
            if let value = fields["os-flavor-access:is_public"] {
                isPublic = try Self.novaBoolean(value, field: "os-flavor-access:is_public")
            }
            var description: String?
            if let value = fields["description"], !value.isNull {
                guard version >= Microversion(2, 55) else { throw APIFault(.badRequest, "Additional properties are not allowed ('description' was unexpected)") }
                guard let text = value.stringValue, text.count <= 65_535 else { throw APIFault(.badRequest, "Invalid input for field/attribute description.") }
                description = text
            }
            let flavor = Flavor(id: id, name: name, memoryMB: try Self.integer(fields["ram"], "ram", minimum: 1)!,
                                vcpus: try Self.integer(fields["vcpus"], "vcpus", minimum: 1)!, rootGB: try Self.integer(fields["disk"], "disk", minimum: 0)!,
                                ephemeralGB: try Self.integer(fields["OS-FLV-EXT-DATA:ephemeral"], "OS-FLV-EXT-DATA:ephemeral", minimum: 0) ?? 0,
                                swap: swap, rxtxFactor: rxtx, isPublic: isPublic, description: description)
            let created = try await run { try await flavors.create(flavor) }
            return answer(.ok, ["flavor": flavorJSON(created, version, detail: true, showSpecs: true)], version)
        }
        v21.put("flavors/:flavor_id", body: .json(FlavorSchemas.update, style: .nova)) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-flavor-manage:update")
            guard version >= Microversion(2, 55) else { throw APIFault(.notFound, "Updating a flavor needs microversion 2.55 or later.") }
            guard let fields = try await environment.body(request, context)["flavor"]?.objectValue,
                  fields.keys.sorted() == ["description"] else {
                throw APIFault(.badRequest, "Invalid input for field/attribute flavor: only 'description' can be updated.")
            }
            let description = fields["description"]?.stringValue
            if let description, description.count > 65_535 { throw APIFault(.badRequest, "Invalid input for field/attribute description.") }
            let updated = try await run { try await flavors.change(try context.parameters.require("flavor_id")) { $0.description = description } }
            return answer(.ok, ["flavor": flavorJSON(updated, version, detail: true, showSpecs: true)], version)
        }
        v21.delete("flavors/:flavor_id") { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-flavor-manage:delete")
            try await run { try await flavors.delete(try context.parameters.require("flavor_id")) }
            return Response(status: .accepted, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }

        // MARK: extra specs
        v21.get("flavors/:flavor_id/os-extra_specs", query: NovaQuerySchemas.open) { request, context in
            let (caller, version) = try await begin(request, context, "os_compute_api:os-flavor-extra-specs:index")
            let flavor = try await visible(try context.parameters.require("flavor_id"), caller)
            return answer(.ok, ["extra_specs": .object(flavor.extraSpecs.mapValues(JSON.string))], version)
        }
        v21.post("flavors/:flavor_id/os-extra_specs", body: .json(FlavorExtraSpecSchemas.create, style: .nova)) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-flavor-extra-specs:create")
            guard let specs = try await environment.body(request, context)["extra_specs"]?.objectValue else {
                throw APIFault(.badRequest, "Invalid input for field/attribute extra_specs. 'extra_specs' is a required property.")
            }
            // The schema holds keys to Nova's pattern and strings to 255 characters; a number
            // is held to 255 once written out, as Nova checks it.
            var values: [String: String] = [:]
            for (key, value) in specs {
                guard let text = NovaExtraSpecs.text(of: value) else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute extra_specs value of '\(key)'.")
                }
                guard text.count <= 255 else {
                    throw APIFault(.badRequest, "extra_specs value has \(text.count) characters, more than 255.")
                }
                values[key] = text
            }
            // From 2.86 Nova holds each spec to its registry, before it looks the flavor up.
            if version >= Microversion(2, 86), let message = NovaExtraSpecs.refusal(values) { throw APIFault(.badRequest, message) }
            let frozen = values
            _ = try await run {
                try await flavors.change(try context.parameters.require("flavor_id")) { flavor in
                    for (key, value) in frozen { flavor.extraSpecs[key] = value }
                }
            }
            // Nova answers with the specs of the request, as they were given.
            return answer(.ok, ["extra_specs": .object(specs)], version)
        }
        v21.get("flavors/:flavor_id/os-extra_specs/:key", query: NovaQuerySchemas.open) { request, context in
            let (caller, version) = try await begin(request, context, "os_compute_api:os-flavor-extra-specs:show")
            let id = try context.parameters.require("flavor_id"), key = try context.parameters.require("key")
            let flavor = try await visible(id, caller)
            guard let value = flavor.extraSpecs[key] else { throw Self.fault(Flavors.Failure.specMissing(flavor: id, key: key)) }
            return answer(.ok, [key: .string(value)], version)
        }
        v21.put("flavors/:flavor_id/os-extra_specs/:key", body: .json(FlavorExtraSpecSchemas.update, style: .nova)) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-flavor-extra-specs:update")
            let id = try context.parameters.require("flavor_id"), key = try context.parameters.require("key")
            let body = try await environment.body(request, context)
            // The schema holds the body to one spec; Nova checks it (by its own name) before it
            // compares that name with the URI's.
            guard body.count == 1, let (name, given) = body.first, let value = NovaExtraSpecs.text(of: given), value.count <= 255 else {
                throw APIFault(.badRequest, "The request body must hold one extra spec, '\(key)'.")
            }
            if version >= Microversion(2, 86), let message = NovaExtraSpecs.refusal(name: name, value: value) {
                throw APIFault(.badRequest, message)
            }
            guard name.unicodeScalars.elementsEqual(key.unicodeScalars) else { throw APIFault(.badRequest, "Request body and URI mismatch") }
            _ = try await run { try await flavors.change(id) { $0.extraSpecs[key] = value } }
            return answer(.ok, [key: given], version)
        }
        v21.delete("flavors/:flavor_id/os-extra_specs/:key") { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-flavor-extra-specs:delete")
            let id = try context.parameters.require("flavor_id"), key = try context.parameters.require("key")
            _ = try await run {
                try await flavors.change(id) { flavor in
                    guard flavor.extraSpecs.removeValue(forKey: key) != nil else { throw Flavors.Failure.specMissing(flavor: id, key: key) }
                }
            }
            return Response(status: .accepted, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }

        // MARK: access to private flavors
        @Sendable func accessJSON(_ id: String, _ projects: [String]) -> JSON {
            ["flavor_access": .array(projects.map { ["flavor_id": .string(id), "tenant_id": .string($0)] })]
        }
        v21.get("flavors/:flavor_id/os-flavor-access", query: NovaQuerySchemas.open) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-flavor-access")
            let id = try context.parameters.require("flavor_id")
            let flavor = try await run { try await flavors.get(id) }
            if flavor.isPublic { throw APIFault(.notFound, "Access list not available for public flavors.") }
            return answer(.ok, accessJSON(id, try await flavors.projects(of: id)), version)
        }
        v21.post("flavors/:flavor_id/action", body: .json(FlavorExtraSpecSchemas.action, style: .nova)) { request, context in
            let id = try context.parameters.require("flavor_id")
            let body = try await environment.body(request, context)
            guard body.count == 1, let (action, argument) = body.first, ["addTenantAccess", "removeTenantAccess"].contains(action) else {
                throw APIFault(.badRequest, "The action body must hold addTenantAccess or removeTenantAccess.")
            }
            let (_, version) = try await begin(request, context, action == "addTenantAccess"
                                               ? "os_compute_api:os-flavor-access:add_tenant_access" : "os_compute_api:os-flavor-access:remove_tenant_access")
            guard let project = argument["tenant"]?.stringValue, !project.isEmpty else {
                throw APIFault(.badRequest, "Invalid input for field/attribute tenant. 'tenant' is a required property.")
            }
            let projects = try await run { try await flavors.setAccess(id, project: project, granted: action == "addTenantAccess") }
            return answer(.ok, accessJSON(id, projects), version)
        }
    }

    /// The caller and the microversion, for routes any authenticated user may call.
    func authenticated(_ request: Request, _ context: APIRequestContext) async throws -> (Caller, Microversion) {
        let version = try Self.microversion(request)
        return (try context.caller(), version)
    }
}
