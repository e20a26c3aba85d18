import Foundation
import Hummingbird
import Identity
import PetrelHTTP

extension KeystoneAPI {
    /// The domain a create request means when it names none: the token's domain.
    func defaultDomain(_ caller: TokenInfo) -> String {
        caller.domain?.id ?? caller.project?.domain.id ?? Bootstrap.defaultDomainID
    }

    func registerProjectsAndDomains(on router: APIRoutes) {
        // MARK: domains
        router.get("/v3/domains", query: KeystoneSchemas.domainsQuery) { request, context in
            let caller = try authenticate(context)
            try context.enforce("identity:list_domains", target: caller.domain.map { ["target.domain.id": $0.id] } ?? [:])
            var filters: [(String, any Encodable & Sendable)] = []
            if let name = request.query("name") { filters.append(("name", name)) }
            if let enabled = request.boolQuery("enabled") { filters.append(("enabled", enabled)) }
            var rows = try await service.domains.list(where: filters, orderBy: "name")
            // A domain reader sees its own domain only (as Keystone filters it).
            if let own = caller.domain?.id, !policy.enforce("admin_required", credentials: caller.credentials) {
                rows = rows.filter { $0.id == own }
            }
            return respond(.ok, ["domains": .array(rows.map(domainJSON)), "links": listLinks(request)])
        }
        router.post("/v3/domains", body: .json(KeystoneSchemas.domainCreate, style: .nova)) { request, context in
            try context.enforce("identity:create_domain")
            let fields = try await resource(request, context, "domain")
            // Keystone's way to choose a domain's id (its schema holds it to letters, digits and
            // dashes); an `id` in the body is an extra attribute, as Keystone ignores it.
            let explicitID = try fields.string("explicit_domain_id", maxLength: 64)
            let row = Domain(id: explicitID ?? IdentityService.makeID(), name: try fields.string("name", required: true, maxLength: 64)!,
                             description: try fields.string("description", maxLength: 65_535, nullable: true) ?? "",
                             enabled: try fields.bool("enabled") ?? true, createdAt: IdentityService.timestamp())
            try await service.domains.create(row)
            return respond(.created, ["domain": domainJSON(row)])
        }
        router.get("/v3/domains/:domain_id") { request, context in
            let id = try context.parameters.require("domain_id")
            try context.enforce("identity:get_domain", target: ["target.domain.id": id])
            return respond(.ok, ["domain": domainJSON(try await service.domains.get(id))])
        }
        router.patch("/v3/domains/:domain_id", body: .json(KeystoneSchemas.domainUpdate, style: .nova)) { request, context in
            let id = try context.parameters.require("domain_id")
            try context.enforce("identity:update_domain", target: ["target.domain.id": id])
            let fields = try await resource(request, context, "domain")
            try fields.refuseIDChange(id)
            @Sendable func apply(_ row: inout Domain) throws {
                if fields.has("name") { row.name = try fields.string("name", required: true, maxLength: 64)! }
                if fields.has("description") { row.description = try fields.string("description", maxLength: 65_535, nullable: true) ?? "" }
                if let enabled = try fields.bool("enabled") { row.enabled = enabled }
            }
            var check = try await service.domains.get(id)
            try apply(&check)  // a bad field is a 400 before anything is written
            let row = try await service.updateDomain(id) { try apply(&$0) }
            return respond(.ok, ["domain": domainJSON(row)])
        }
        router.delete("/v3/domains/:domain_id") { request, context in
            let id = try context.parameters.require("domain_id")
            try context.enforce("identity:delete_domain", target: ["target.domain.id": id])
            try await service.deleteDomain(id)
            return noContent()
        }

        // MARK: projects
        router.get("/v3/projects", query: KeystoneSchemas.projectsQuery) { request, context in
            let domain = request.query("domain_id")
            try context.enforce("identity:list_projects", target: domain.map { ["target.domain_id": $0] } ?? [:])
            var tagFilter = IdentityService.TagFilter()
            func tags(_ name: String) -> [String] { request.query(name)?.split(separator: ",").map(String.init) ?? [] }
            tagFilter.all = tags("tags")
            tagFilter.any = tags("tags-any")
            tagFilter.notAll = tags("not-tags")
            tagFilter.notAny = tags("not-tags-any")
            // Domains are the projects acting as domains: listed only when asked for, as Keystone does.
            if request.boolQuery("is_domain") == true {
                var filters: [(String, any Encodable & Sendable)] = []
                if let name = request.query("name") { filters.append(("name", name)) }
                if let enabled = request.boolQuery("enabled") { filters.append(("enabled", enabled)) }
                let domains = domain == nil && request.query("parent_id") == nil && tagFilter.isEmpty
                    ? try await service.domains.list(where: filters, orderBy: "name") : []
                return respond(.ok, ["projects": .array(domains.map(domainAsProjectJSON)), "links": listLinks(request)])
            }
            var filters: [(String, any Encodable & Sendable)] = []
            if let domain { filters.append(("domain_id", domain)) }
            if let name = request.query("name") { filters.append(("name", name)) }
            if let enabled = request.boolQuery("enabled") { filters.append(("enabled", enabled)) }
            if let parent = request.query("parent_id") { filters.append(("parent_id", parent)) }
            let rows = try await service.projects.list(where: filters, orderBy: "name")
            let tagsByProject = try await service.projectTags(rows.map(\.id))
            let listed = rows.filter { tagFilter.matches(tagsByProject[$0.id] ?? []) }
            return respond(.ok, ["projects": .array(listed.map { projectJSON($0, tags: tagsByProject[$0.id] ?? []) }),
                                 "links": listLinks(request)])
        }
        router.post("/v3/projects", body: .json(KeystoneSchemas.projectCreate, style: .nova)) { request, context in
            let caller = try authenticate(context)
            let fields = try await resource(request, context, "project")
            let name = try fields.string("name", required: true, maxLength: 64)!
            let parentID = try fields.string("parent_id", maxLength: 64, nullable: true)
            let tags = fields.object["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
            if try fields.bool("is_domain") == true {
                // A project acting as a domain is a domain: at the root, in no domain.
                if try parentID != nil || fields.string("domain_id", maxLength: 64, nullable: true) != nil {
                    throw IdentityError.badRequest("Only root projects can act as domains: neither parent_id nor domain_id may be given.")
                }
                try context.enforce("identity:create_project", target: ["target.project.domain_id": "None"])
                try context.enforce("identity:create_domain")
                let row = Domain(id: IdentityService.makeID(), name: name,
                                 description: try fields.string("description", maxLength: 65_535, nullable: true) ?? "",
                                 enabled: try fields.bool("enabled") ?? true, createdAt: IdentityService.timestamp())
                try await service.domains.create(row)
                return respond(.created, ["project": domainAsProjectJSON(row)])
            }
            var domainID = try fields.string("domain_id", maxLength: 64, nullable: true)
            if let parentID {
                let parent = try await service.projects.get(parentID)
                if let domainID, domainID != parent.domainID {
                    throw IdentityError.badRequest("A project's parent must be in the same domain.")
                }
                domainID = parent.domainID
            }
            let domain = domainID ?? defaultDomain(caller)
            try context.enforce("identity:create_project", target: ["target.project.domain_id": domain])
            _ = try await service.domains.get(domain)
            let row = Project(id: IdentityService.makeID(), name: name, domainID: domain, parentID: parentID,
                              description: try fields.string("description", maxLength: 65_535, nullable: true) ?? "",
                              enabled: try fields.bool("enabled") ?? true, createdAt: IdentityService.timestamp())
            try await service.projects.create(row)
            if !tags.isEmpty { try await service.setProjectTags(row.id, tags) }
            return respond(.created, ["project": projectJSON(row, tags: try await service.projectTags([row.id])[row.id] ?? [])])
        }
        router.get("/v3/projects/:project_id") { request, context in
            _ = try context.caller()
            let id = try context.parameters.require("project_id")
            guard let row = try await service.projects.find(id) else {
                // A domain is also the project that acts as it.
                guard let domain = try await service.domains.find(id) else { throw IdentityError.notFound(kind: "project", id: id) }
                try context.enforce("identity:get_project", target: ["target.project.id": id, "target.project.domain_id": "None"])
                return respond(.ok, ["project": domainAsProjectJSON(domain)])
            }
            try context.enforce("identity:get_project", target: ["target.project.id": id, "target.project.domain_id": row.domainID])
            return respond(.ok, ["project": projectJSON(row, tags: try await service.projectTags([id])[id] ?? [])])
        }
        router.patch("/v3/projects/:project_id", body: .json(KeystoneSchemas.projectUpdate, style: .nova)) { request, context in
            _ = try context.caller()
            let id = try context.parameters.require("project_id")
            var check = try await service.projects.get(id)
            try context.enforce("identity:update_project", target: ["target.project.id": id, "target.project.domain_id": check.domainID])
            let fields = try await resource(request, context, "project")
            try fields.refuseIDChange(id)
            @Sendable func apply(_ row: inout Project) throws {
                // Keystone: the tree and the domain are fixed once a project exists.
                if let given = fields.object["is_domain"], given != .bool(false) {
                    throw IdentityError.badRequest("Update of `is_domain` is not allowed.")
                }
                if let given = fields.object["parent_id"], given != .string(row.parentID ?? row.domainID) {
                    throw IdentityError.forbidden("Update of `parent_id` is not allowed.")
                }
                if fields.has("domain_id"), try fields.string("domain_id", nullable: true) != row.domainID {
                    throw IdentityError.badRequest("Update of `domain_id` is not allowed.")
                }
                if fields.has("name") { row.name = try fields.string("name", required: true, maxLength: 64)! }
                if fields.has("description") { row.description = try fields.string("description", maxLength: 65_535, nullable: true) ?? "" }
                if let enabled = try fields.bool("enabled") { row.enabled = enabled }
            }
            try apply(&check)
            let row = try await service.updateProject(id) { try apply(&$0) }
            if let tags = fields.object["tags"]?.arrayValue {
                try await service.setProjectTags(id, tags.compactMap(\.stringValue))
            }
            return respond(.ok, ["project": projectJSON(row, tags: try await service.projectTags([id])[id] ?? [])])
        }
        registerProjectTags(on: router)
        router.delete("/v3/projects/:project_id") { request, context in
            _ = try context.caller()
            let id = try context.parameters.require("project_id")
            let row = try await service.projects.get(id)
            try context.enforce("identity:delete_project", target: ["target.project.id": id, "target.project.domain_id": row.domainID])
            try await service.deleteProject(id)
            return noContent()
        }
    }
}

extension KeystoneAPI {
    /// A domain shown as the project that acts as it (`is_domain`), as Keystone shows domains.
    func domainAsProjectJSON(_ row: Domain) -> JSON {
        ["id": .string(row.id), "name": .string(row.name), "domain_id": nil, "parent_id": nil,
         "description": .string(row.description), "enabled": .bool(row.enabled), "is_domain": true, "tags": [], "options": [:],
         "links": ["self": link("/v3/projects/\(row.id)")]]
    }

    /// Projects with their tags, as a list shows each (the same fields as `GET` on one).
    func projectsJSON(_ rows: [Project]) async throws -> JSON {
        let tags = try await service.projectTags(rows.map(\.id))
        return .array(rows.map { projectJSON($0, tags: tags[$0.id] ?? []) })
    }

    /// `/v3/projects/{id}/tags` and `/v3/projects/{id}/tags/{tag}`.
    func registerProjectTags(on router: APIRoutes) {
        @Sendable func project(_ context: APIRequestContext, _ action: String) async throws -> Project {
            _ = try context.caller()
            let id = try context.parameters.require("project_id")
            let row = try await service.projects.get(id)
            try context.enforce(action, target: ["target.project.id": id, "target.project.domain_id": row.domainID])
            return row
        }
        @Sendable func tagsBody(_ id: String) async throws -> JSON {
            ["tags": .array((try await service.projectTags([id])[id] ?? []).map(JSON.string))]
        }
        router.get("/v3/projects/:project_id/tags") { _, context in
            let row = try await project(context, "identity:list_project_tags")
            return respond(.ok, try await tagsBody(row.id))
        }
        router.put("/v3/projects/:project_id/tags", body: .json(KeystoneSchemas.projectTagsUpdate, style: .nova)) { request, context in
            let row = try await project(context, "identity:update_project_tags")
            let body = try await environment.body(request, context)
            try await service.setProjectTags(row.id, body["tags"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            return respond(.ok, try await tagsBody(row.id))
        }
        router.delete("/v3/projects/:project_id/tags") { _, context in
            let row = try await project(context, "identity:delete_project_tags")
            try await service.setProjectTags(row.id, [])
            return noContent()
        }
        @Sendable func check(_ request: Request, _ context: APIRequestContext) async throws -> Response {
            let row = try await project(context, "identity:get_project_tag")
            let tag = try context.parameters.require("tag")
            guard (try await service.projectTags([row.id])[row.id] ?? []).contains(tag) else {
                throw IdentityError.notFound(kind: "project tag", id: tag)
            }
            return noContent()
        }
        router.get("/v3/projects/:project_id/tags/:tag", use: check)
        router.head("/v3/projects/:project_id/tags/:tag", use: check)
        router.put("/v3/projects/:project_id/tags/:tag", body: .none) { _, context in
            let row = try await project(context, "identity:create_project_tag")
            let tag = try context.parameters.require("tag")
            if let violation = KeystoneSchemas.tag.violation(.string(tag), at: ["tag"]) { throw violation.fault(.nova) }
            try await service.addProjectTag(row.id, tag)
            var response = noContent(.created)
            response.headers[.location] = publicURL + "/v3/projects/\(row.id)/tags/\(tag)"
            return response
        }
        router.delete("/v3/projects/:project_id/tags/:tag") { _, context in
            let row = try await project(context, "identity:delete_project_tag")
            try await service.removeProjectTag(row.id, try context.parameters.require("tag"))
            return noContent()
        }
    }
}

extension KeystoneSchemas {
    /// `PUT /v3/projects/{id}/tags`: the whole list.
    static let projectTagsUpdate = Schema.object([("tags", tags)], required: ["tags"])
}
