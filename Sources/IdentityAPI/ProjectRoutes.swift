import Foundation
import Hummingbird
import Identity
import PetrelHTTP
import Store

extension KeystoneAPI {
    /// The domain a create request means when it names none: the token's domain.
    func defaultDomain(_ caller: TokenInfo) -> String {
        caller.domain?.id ?? caller.project?.domain.id ?? Bootstrap.defaultDomainID
    }

    func existing<Row: Codable & Sendable>(_ table: Table<Row>, _ id: String, _ kind: String) async throws -> Row {
        guard let row = try await service.read({ sql in try await table.get(sql, id: id) }) else {
            throw IdentityError.notFound(kind: kind, id: id)
        }
        return row
    }

    func registerProjectsAndDomains(on router: Router<APIRequestContext>) {
        // MARK: domains
        router.get("/v3/domains") { request, context in
            let caller = try authenticate(context)
            try context.enforce("identity:list_domains", target: caller.domain.map { ["target.domain.id": $0.id] } ?? [:])
            var conditions: [Table<DomainRow>.Condition] = []
            if let name = request.query("name") { conditions.append(.equals("name", name)) }
            if let enabled = request.boolQuery("enabled") { conditions.append(.equals("enabled", enabled)) }
            var rows = try await service.read { [conditions] sql in try await IdentityTables.domains.all(sql, where: conditions, orderBy: "name") }
            // A domain reader sees its own domain only (as Keystone filters it).
            if let own = caller.domain?.id, !policy.enforce("admin_required", credentials: caller.credentials) {
                rows = rows.filter { $0.id == own }
            }
            return respond(.ok, ["domains": .array(rows.map(domainJSON)), "links": listLinks(request)])
        }
        router.post("/v3/domains") { request, context in
            try context.enforce("identity:create_domain")
            let fields = try await resource(request, "domain")
            let explicitID = try fields.string("id", maxLength: 64)
            if let explicitID, explicitID.isEmpty || !explicitID.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) || !explicitID.allSatisfy(\.isASCII) {
                throw Fields.invalid("id", "letters, digits, '_' and '-' only.")
            }
            let row = DomainRow(id: explicitID ?? IdentityService.makeID(), name: try fields.string("name", required: true, maxLength: 64)!,
                                description: try fields.string("description", maxLength: 65_535, nullable: true) ?? "",
                                enabled: try fields.bool("enabled") ?? true, createdAt: IdentityService.timestamp())
            try await service.write { sql in try await IdentityTables.domains.insert(sql, row) }
            return respond(.created, ["domain": domainJSON(row)])
        }
        router.get("/v3/domains/:domain_id") { request, context in
            let id = try context.parameters.require("domain_id")
            try context.enforce("identity:get_domain", target: ["target.domain.id": id])
            return respond(.ok, ["domain": domainJSON(try await existing(IdentityTables.domains, id, "domain"))])
        }
        router.patch("/v3/domains/:domain_id") { request, context in
            let id = try context.parameters.require("domain_id")
            try context.enforce("identity:update_domain", target: ["target.domain.id": id])
            let fields = try await resource(request, "domain")
            @Sendable func apply(_ row: inout DomainRow) throws {
                if fields.has("name") { row.name = try fields.string("name", required: true, maxLength: 64)! }
                if fields.has("description") { row.description = try fields.string("description", maxLength: 65_535, nullable: true) ?? "" }
                if let enabled = try fields.bool("enabled") { row.enabled = enabled }
            }
            var check = try await existing(IdentityTables.domains, id, "domain")
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
        router.get("/v3/projects") { request, context in
            let domain = request.query("domain_id")
            try context.enforce("identity:list_projects", target: domain.map { ["target.domain_id": $0] } ?? [:])
            var conditions: [Table<ProjectRow>.Condition] = []
            if let domain { conditions.append(.equals("domain_id", domain)) }
            if let name = request.query("name") { conditions.append(.equals("name", name)) }
            if let enabled = request.boolQuery("enabled") { conditions.append(.equals("enabled", enabled)) }
            if let parent = request.query("parent_id") { conditions.append(.equals("parent_id", parent)) }
            if request.boolQuery("is_domain") == true {
                return respond(.ok, ["projects": [], "links": listLinks(request)])
            }
            let rows = try await service.read { [conditions] sql in try await IdentityTables.projects.all(sql, where: conditions, orderBy: "name") }
            return respond(.ok, ["projects": .array(rows.map(projectJSON)), "links": listLinks(request)])
        }
        router.post("/v3/projects") { request, context in
            let caller = try authenticate(context)
            let fields = try await resource(request, "project")
            let name = try fields.string("name", required: true, maxLength: 64)!
            let parentID = try fields.string("parent_id", maxLength: 64, nullable: true)
            if try fields.bool("is_domain") == true {
                throw IdentityError.badRequest("Projects acting as domains are not supported; create a domain instead.")
            }
            var domainID = try fields.string("domain_id", maxLength: 64, nullable: true)
            if let parentID {
                let parent = try await service.read { sql in try await IdentityTables.projects.get(sql, id: parentID) }
                guard let parent else { throw IdentityError.notFound(kind: "project", id: parentID) }
                if let domainID, domainID != parent.domainID {
                    throw IdentityError.badRequest("A project's parent must be in the same domain.")
                }
                domainID = parent.domainID
            }
            let domain = domainID ?? defaultDomain(caller)
            try context.enforce("identity:create_project", target: ["target.project.domain_id": domain])
            guard try await service.read({ sql in try await IdentityTables.domains.get(sql, id: domain) }) != nil else {
                throw IdentityError.notFound(kind: "domain", id: domain)
            }
            let row = ProjectRow(id: IdentityService.makeID(), name: name, domainID: domain, parentID: parentID,
                                 description: try fields.string("description", maxLength: 65_535, nullable: true) ?? "",
                                 enabled: try fields.bool("enabled") ?? true, createdAt: IdentityService.timestamp())
            try await service.write { sql in try await IdentityTables.projects.insert(sql, row) }
            return respond(.created, ["project": projectJSON(row)])
        }
        router.get("/v3/projects/:project_id") { request, context in
            _ = try context.caller()
            let id = try context.parameters.require("project_id")
            let row = try await existing(IdentityTables.projects, id, "project")
            try context.enforce("identity:get_project", target: ["target.project.id": id, "target.project.domain_id": row.domainID])
            return respond(.ok, ["project": projectJSON(row)])
        }
        router.patch("/v3/projects/:project_id") { request, context in
            _ = try context.caller()
            let id = try context.parameters.require("project_id")
            var check = try await existing(IdentityTables.projects, id, "project")
            try context.enforce("identity:update_project", target: ["target.project.id": id, "target.project.domain_id": check.domainID])
            let fields = try await resource(request, "project")
            @Sendable func apply(_ row: inout ProjectRow) throws {
                if fields.has("domain_id"), try fields.string("domain_id", nullable: true) != row.domainID {
                    throw IdentityError.badRequest("Invalid input for field 'domain_id': a project cannot move to another domain.")
                }
                if fields.has("name") { row.name = try fields.string("name", required: true, maxLength: 64)! }
                if fields.has("description") { row.description = try fields.string("description", maxLength: 65_535, nullable: true) ?? "" }
                if let enabled = try fields.bool("enabled") { row.enabled = enabled }
            }
            try apply(&check)
            let row = try await service.updateProject(id) { try apply(&$0) }
            return respond(.ok, ["project": projectJSON(row)])
        }
        router.delete("/v3/projects/:project_id") { request, context in
            _ = try context.caller()
            let id = try context.parameters.require("project_id")
            let row = try await existing(IdentityTables.projects, id, "project")
            try context.enforce("identity:delete_project", target: ["target.project.id": id, "target.project.domain_id": row.domainID])
            try await service.deleteProject(id)
            return noContent()
        }
    }
}
