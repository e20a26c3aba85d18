import Foundation
import Hummingbird
import Identity
import PetrelHTTP

extension KeystoneAPI {
    func registerRoles(on router: APIRoutes) {
        // MARK: roles
        router.get("/v3/roles", query: KeystoneSchemas.rolesQuery) { request, context in
            let domain = request.query("domain_id")
            try context.enforce(domain == nil ? "identity:list_roles" : "identity:list_domain_roles",
                        target: domain.map { ["target.role.domain_id": $0] } ?? [:])
            var filters: [(String, any Encodable & Sendable)] = [("domain_id", domain ?? "")]
            if let name = request.query("name") { filters.append(("name", name)) }
            let rows = try await service.roles.list(where: filters, orderBy: "name")
            return respond(.ok, ["roles": .array(rows.map(roleJSON)), "links": listLinks(request)])
        }
        router.post("/v3/roles", body: .json(KeystoneSchemas.roleCreate, style: .nova)) { request, context in
            _ = try context.caller()
            let fields = try await resource(request, context, "role")
            let domain = try fields.string("domain_id", maxLength: 64, nullable: true)
            try context.enforce(domain == nil ? "identity:create_role" : "identity:create_domain_role",
                        target: domain.map { ["target.role.domain_id": $0] } ?? [:])
            let row = Role(id: IdentityService.makeID(), name: try fields.string("name", required: true)!,
                           domainID: domain ?? "", description: try fields.string("description", maxLength: 65_535, nullable: true) ?? "",
                           createdAt: IdentityService.timestamp())
            try await service.createRole(row, domain: domain)
            return respond(.created, ["role": roleJSON(row)])
        }
        router.get("/v3/roles/:role_id") { request, context in
            let row = try await authorizedRole(request, context, "get")
            return respond(.ok, ["role": roleJSON(row)])
        }
        router.patch("/v3/roles/:role_id", body: .json(KeystoneSchemas.roleUpdate, style: .nova)) { request, context in
            var row = try await authorizedRole(request, context, "update")
            let fields = try await resource(request, context, "role")
            try fields.refuseIDChange(row.id)
            if let given = fields.object["domain_id"], given != JSON.string(row.domainID) {
                throw IdentityError.badRequest("Update of `domain_id` is not allowed.")
            }
            if fields.has("name") { row.name = try fields.string("name", required: true)! }
            if fields.has("description") { row.description = try fields.string("description", maxLength: 65_535, nullable: true) ?? "" }
            let updated = row
            try await service.roles.update(updated, id: updated.id)
            return respond(.ok, ["role": roleJSON(row)])
        }
        router.delete("/v3/roles/:role_id") { request, context in
            let row = try await authorizedRole(request, context, "delete")
            // Tokens that held it through an assignment are revoked, on every controller.
            try await service.deleteRole(row.id)
            return noContent()
        }

        // MARK: implied roles
        @Sendable func inference(_ prior: Role, _ implied: Role) -> JSON {
            ["prior_role": ["id": .string(prior.id), "name": .string(prior.name), "links": ["self": link("/v3/roles/\(prior.id)")]],
             "implies": ["id": .string(implied.id), "name": .string(implied.name), "links": ["self": link("/v3/roles/\(implied.id)")]]]
        }
        @Sendable func inferences(_ prior: Role, _ implied: [Role]) -> JSON {
            ["prior_role": ["id": .string(prior.id), "name": .string(prior.name), "links": ["self": link("/v3/roles/\(prior.id)")]],
             "implies": .array(implied.map { ["id": .string($0.id), "name": .string($0.name), "links": ["self": link("/v3/roles/\($0.id)")]] })]
        }
        @Sendable func pair(_ request: Request, _ context: APIRequestContext, _ action: String) async throws -> (Role, Role, Bool) {
            try context.enforce(action)
            let prior = try await service.roles.get(try context.parameters.require("role_id"))
            let implied = try await service.roles.get(try context.parameters.require("implied_role_id"))
            let exists = try await service.implies(prior.id, implied.id)
            return (prior, implied, exists)
        }
        let impliedPath = "/v3/roles/:role_id/implies/:implied_role_id"
        router.put(RouterPath(impliedPath), body: .none) { request, context in
            let (prior, implied, _) = try await pair(request, context, "identity:create_implied_role")
            try await service.addImpliedRole(prior: prior.id, implied: implied.id)
            return respond(.created, ["role_inference": inference(prior, implied),
                                      "links": ["self": link("/v3/roles/\(prior.id)/implies/\(implied.id)")]])
        }
        router.get(RouterPath(impliedPath)) { request, context in
            let (prior, implied, exists) = try await pair(request, context, "identity:get_implied_role")
            guard exists else { throw IdentityError.notFound(kind: "implied role", id: "\(prior.id) implies \(implied.id)") }
            return respond(.ok, ["role_inference": inference(prior, implied),
                                 "links": ["self": link("/v3/roles/\(prior.id)/implies/\(implied.id)")]])
        }
        router.head(RouterPath(impliedPath)) { request, context in
            let (prior, implied, exists) = try await pair(request, context, "identity:check_implied_role")
            guard exists else { throw IdentityError.notFound(kind: "implied role", id: "\(prior.id) implies \(implied.id)") }
            return noContent()
        }
        router.delete(RouterPath(impliedPath)) { request, context in
            let (prior, implied, exists) = try await pair(request, context, "identity:delete_implied_role")
            guard exists else { throw IdentityError.notFound(kind: "implied role", id: "\(prior.id) implies \(implied.id)") }
            try await service.removeImpliedRole(prior: prior.id, implied: implied.id)
            return noContent()
        }
        router.get("/v3/roles/:role_id/implies") { request, context in
            try context.enforce("identity:list_implied_roles")
            let prior = try await service.roles.get(try context.parameters.require("role_id"))
            let implied = try await service.impliedRoles(of: prior.id)
            return respond(.ok, ["role_inference": inferences(prior, implied), "links": ["self": link("/v3/roles/\(prior.id)/implies")]])
        }
        router.get("/v3/role_inferences") { request, context in
            try context.enforce("identity:list_role_inference_rules")
            let (rules, roles) = try await service.roleInferenceRules()
            let byID = Dictionary(uniqueKeysWithValues: roles.map { ($0.id, $0) })
            let priors = Set(rules.map(\.priorRoleID)).compactMap { byID[$0] }.sorted { $0.name < $1.name }
            let list = priors.map { prior in
                inferences(prior, rules.filter { $0.priorRoleID == prior.id }.compactMap { byID[$0.impliedRoleID] })
            }
            return respond(.ok, ["role_inferences": .array(list), "links": listLinks(request)])
        }

        registerGrants(on: router)
        registerRoleAssignments(on: router)
    }

    /// The role of the path, after policy allowed `verb` on it (global and domain roles have
    /// rules of their own).
    func authorizedRole(_ request: Request, _ context: APIRequestContext, _ verb: String) async throws -> Role {
        _ = try context.caller()
        let row = try await service.roles.get(try context.parameters.require("role_id"))
        try context.enforce(row.domainID.isEmpty ? "identity:\(verb)_role" : "identity:\(verb)_domain_role",
                    target: ["target.role.name": row.name, "target.role.domain_id": row.domainID])
        return row
    }

    // MARK: grants

    /// `/v3/{projects|domains}/{id}/{users|groups}/{id}/roles[/{role_id}]` and `/v3/system/{users|groups}/{id}/roles[/{role_id}]`.
    func registerGrants(on router: APIRoutes) {
        struct Grant {
            let assignment: RoleAssignment
            let target: [String: String]
        }
        // Direct grants, and OS-INHERIT's grants inherited by the projects below the target.
        for inherited in [false, true] {
        for (targetType, targetPath) in [("project", "projects/:project_id"), ("domain", "domains/:domain_id"), ("system", "system")] {
            if inherited && targetType == "system" { continue }
            for (actorType, actorPath) in [("user", "users/:user_id"), ("group", "groups/:group_id")] {
                let base = inherited ? "/v3/OS-INHERIT/\(targetPath)/\(actorPath)/roles" : "/v3/\(targetPath)/\(actorPath)/roles"
                let rolePath = inherited ? base + "/:role_id/inherited_to_projects" : base + "/:role_id"
                let system = targetType == "system"
                @Sendable func resolve(_ request: Request, _ context: APIRequestContext, roleID: String?) async throws
                    -> (TokenInfo, RoleAssignment, [String: String]) {
                    let caller = try authenticate(context)
                    let actorID = try context.parameters.require(actorType == "user" ? "user_id" : "group_id")
                    var target: [String: String] = [:]
                    if actorType == "user" {
                        target["target.user.domain_id"] = try await service.users.get(actorID).domainID
                    } else {
                        target["target.group.domain_id"] = try await service.groups.get(actorID).domainID
                    }
                    var targetID = "all"
                    if targetType == "project" {
                        targetID = try context.parameters.require("project_id")
                        target["target.project.domain_id"] = try await service.projects.get(targetID).domainID
                    } else if targetType == "domain" {
                        targetID = try context.parameters.require("domain_id")
                        target["target.domain.id"] = try await service.domains.get(targetID).id
                    }
                    if let roleID {
                        let role = try await service.roles.get(roleID)
                        target["target.role.domain_id"] = role.domainID.isEmpty ? nil : role.domainID
                        target["target.role.name"] = role.name
                    }
                    let row = RoleAssignment(actorType: actorType, actorID: actorID, targetType: targetType, targetID: targetID,
                                             roleID: roleID ?? "", inherited: inherited)
                    return (caller, row, target)
                }
                @Sendable func action(_ verb: String) -> String {
                    system ? "identity:\(verb)_system_grant\(verb == "list" ? "s" : "")_for_\(actorType)" : "identity:\(verb)_grant\(verb == "list" ? "s" : "")"
                }
                let createAction = action("create"), checkAction = action("check"), revokeAction = action("revoke")
                let listAction = action("list")
                router.put(RouterPath(rolePath), body: .none) { request, context in
                    let (_, row, target) = try await resolve(request, context, roleID: try context.parameters.require("role_id"))
                    try context.enforce(createAction, target: target)
                    try await service.grant(row)
                    return noContent()
                }
                @Sendable func check(_ request: Request, _ context: APIRequestContext) async throws -> Response {
                    let (_, row, target) = try await resolve(request, context, roleID: try context.parameters.require("role_id"))
                    try context.enforce(checkAction, target: target)
                    guard try await service.grantExists(row) else {
                        throw IdentityError.notFound(kind: "role assignment", id: "\(row.roleID)")
                    }
                    return noContent()
                }
                router.head(RouterPath(rolePath), use: check)
                router.get(RouterPath(rolePath), use: check)
                router.delete(RouterPath(rolePath)) { request, context in
                    let (_, row, target) = try await resolve(request, context, roleID: try context.parameters.require("role_id"))
                    try context.enforce(revokeAction, target: target)
                    try await service.revokeGrant(row)
                    return noContent()
                }
                // OS-INHERIT lists inherited grants on domains only, as Keystone does.
                if inherited && targetType != "domain" { continue }
                router.get(RouterPath(inherited ? base + "/inherited_to_projects" : base)) { request, context in
                    let (_, row, target) = try await resolve(request, context, roleID: nil)
                    try context.enforce(listAction, target: target)
                    let roles = try await service.grantedRoles(row)
                    return respond(.ok, ["roles": .array(roles.map(roleJSON)), "links": listLinks(request)])
                }
            }
        }
        }
    }

    // MARK: role assignments

    func registerRoleAssignments(on router: APIRoutes) {
        router.get("/v3/role_assignments") { request, context in
            _ = try context.caller()
            var filter = IdentityService.AssignmentQuery()
            filter.userID = request.query("user.id")
            filter.groupID = request.query("group.id")
            filter.roleID = request.query("role.id")
            filter.projectID = request.query("scope.project.id")
            filter.domainID = request.query("scope.domain.id")
            filter.system = request.query("scope.system") != nil
            filter.effective = request.flag("effective")
            if filter.effective && filter.groupID != nil {
                throw IdentityError.badRequest("Combining effective and group filter will always result in an empty list.")
            }
            try context.enforce("identity:list_role_assignments",
                        target: filter.domainID.map { ["target.domain_id": $0] } ?? [:])
            let names = request.flag("include_names")
            let assignments = try await service.roleAssignments(filter)
            var lookup: NameLookup?
            if names {
                let all = try await service.everyName()
                lookup = NameLookup(roles: all.roles, users: all.users, groups: all.groups, projects: all.projects, domains: all.domains)
            }
            return respond(.ok, ["role_assignments": .array(assignments.map { assignmentJSON($0, names: lookup) }),
                                 "links": listLinks(request)])
        }
    }

    struct NameLookup: Sendable {
        let roles: [String: Role]
        let users: [String: User]
        let groups: [String: Group]
        let projects: [String: Project]
        let domains: [String: Domain]

        init(roles: [Role], users: [User], groups: [Group], projects: [Project], domains: [Domain]) {
            self.roles = Dictionary(uniqueKeysWithValues: roles.map { ($0.id, $0) })
            self.users = Dictionary(uniqueKeysWithValues: users.map { ($0.id, $0) })
            self.groups = Dictionary(uniqueKeysWithValues: groups.map { ($0.id, $0) })
            self.projects = Dictionary(uniqueKeysWithValues: projects.map { ($0.id, $0) })
            self.domains = Dictionary(uniqueKeysWithValues: domains.map { ($0.id, $0) })
        }

        func domain(_ id: String) -> JSON { ["id": .string(id), "name": .string(domains[id]?.name)] }
    }

    func assignmentJSON(_ listed: IdentityService.ListedAssignment, names: NameLookup?) -> JSON {
        let row = listed.row
        var object: [String: JSON] = [:]
        var role: [String: JSON] = ["id": .string(row.roleID)]
        if let names, let found = names.roles[row.roleID] {
            role["name"] = .string(found.name)
            if !found.domainID.isEmpty { role["domain"] = names.domain(found.domainID) }
        }
        object["role"] = .object(role)
        var actor: [String: JSON] = ["id": .string(row.actorID)]
        if let names {
            if row.actorType == "user", let user = names.users[row.actorID] {
                actor["name"] = .string(user.name)
                actor["domain"] = names.domain(user.domainID)
            } else if row.actorType == "group", let group = names.groups[row.actorID] {
                actor["name"] = .string(group.name)
                actor["domain"] = names.domain(group.domainID)
            }
        }
        object[row.actorType] = .object(actor)
        switch row.targetType {
        case "system": object["scope"] = ["system": ["all": true]]
        case "domain":
            var domain: [String: JSON] = ["id": .string(row.targetID)]
            if let names { domain["name"] = .string(names.domains[row.targetID]?.name) }
            object["scope"] = row.inherited ? ["domain": .object(domain), "OS-INHERIT:inherited_to": "projects"] : ["domain": .object(domain)]
        default:
            var project: [String: JSON] = ["id": .string(row.targetID)]
            if let names, let found = names.projects[row.targetID] {
                project["name"] = .string(found.name)
                project["domain"] = names.domain(found.domainID)
            }
            object["scope"] = row.inherited ? ["project": .object(project), "OS-INHERIT:inherited_to": "projects"] : ["project": .object(project)]
        }
        // The link names the assignment as made: the group's, the prior role's, the inherited one's.
        let source = listed.inheritedFrom ?? row
        let targetPath = source.targetType == "system" ? "system" : "\(source.targetType)s/\(source.targetID)"
        let actorPath = listed.viaGroup.map { "groups/\($0)" } ?? "\(row.actorType)s/\(row.actorID)"
        let assignmentPath = source.inherited
            ? "/v3/OS-INHERIT/\(targetPath)/\(actorPath)/roles/\(listed.priorRoleID ?? row.roleID)/inherited_to_projects"
            : "/v3/\(targetPath)/\(actorPath)/roles/\(listed.priorRoleID ?? row.roleID)"
        var links: [String: JSON] = ["assignment": link(assignmentPath)]
        if let group = listed.viaGroup { links["membership"] = link("/v3/groups/\(group)/users/\(row.actorID)") }
        if let prior = listed.priorRoleID { links["prior_role"] = link("/v3/roles/\(prior)") }
        object["links"] = .object(links)
        return .object(object)
    }
}
