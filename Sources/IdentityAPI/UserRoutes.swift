import Foundation
import Hummingbird
import Identity
import PetrelHTTP

extension KeystoneAPI {
    static let userColumns: Set<String> = ["id", "name", "domain_id", "password", "enabled", "default_project_id",
                                           "description", "email", "links", "options", "password_expires_at"]

    /// A password field: a string (or null where `nullable`) of at most `[identity] max_password_length`
    /// characters, without NUL (crypt(3) would stop reading at one).
    func password(_ fields: Fields, _ key: String, nullable: Bool) throws -> String? {
        let value = try fields.string(key, required: !nullable, maxLength: service.options.maxPasswordLength, nullable: nullable)
        if let value, value.utf8.contains(0) { throw Fields.invalid(key, "must not contain NUL characters.") }
        return value
    }

    func extraJSON(_ extra: [String: JSON], over existing: String = "{}") -> String {
        var merged = JSON.parse(Array(existing.utf8))?.objectValue ?? [:]
        for (key, value) in extra { merged[key] = value }
        return String(decoding: JSON.object(merged).encoded(), as: UTF8.self)
    }

    /// A user's `options` merged over the stored ones: booleans as oslo reads Keystone's
    /// boolean strings, the MFA rules as lists, null removing an option.
    func userOptionsJSON(_ fields: Fields, over existing: String = "{}") throws -> String {
        var merged = JSON.parse(Array(existing.utf8))?.objectValue ?? [:]
        guard let given = fields.object["options"]?.objectValue else { return existing }
        let options = Fields(given)
        for (key, value) in given {
            if value.isNull {
                merged[key] = nil
            } else if key == "multi_factor_auth_rules" {
                merged[key] = value
            } else {
                merged[key] = try options.bool(key).map(JSON.bool) ?? value
            }
        }
        return JSON.object(merged).encodedText
    }

    func registerUsersAndGroups(on router: APIRoutes) {
        // MARK: users
        router.get("/v3/users", query: KeystoneSchemas.usersQuery) { request, context in
            let domain = request.query("domain_id")
            try context.enforce("identity:list_users", target: domain.map { ["target.domain_id": $0] } ?? [:])
            var filters: [(String, any Encodable & Sendable)] = []
            if let domain { filters.append(("domain_id", domain)) }
            if let name = request.query("name") { filters.append(("name", name)) }
            if let enabled = request.boolQuery("enabled") { filters.append(("enabled", enabled)) }
            let rows = try await service.users.list(where: filters, orderBy: "name")
            return respond(.ok, ["users": .array(rows.map(userJSON)), "links": listLinks(request)])
        }
        router.post("/v3/users", body: .json(KeystoneSchemas.userCreate, style: .nova)) { request, context in
            let caller = try authenticate(context)
            let fields = try await resource(request, context, "user")
            let name = try fields.string("name", required: true)!
            let domain = try fields.string("domain_id", maxLength: 64, nullable: true) ?? defaultDomain(caller)
            try context.enforce("identity:create_user", target: ["target.user.domain_id": domain])
            let password = try self.password(fields, "password", nullable: true)
            let defaultProject = try fields.string("default_project_id", maxLength: 64, nullable: true)
            let enabled = try fields.bool("enabled") ?? true
            let description = try fields.string("description", maxLength: 65_535, nullable: true) ?? ""
            let email = try fields.string("email", nullable: true)
            if let password { try await service.validateNewPassword(password, userID: nil) }
            let hash: String? = if let password { await service.hashPassword(password) } else { nil }
            var row = User(id: IdentityService.makeID(), name: name, domainID: domain, passwordHash: hash, enabled: enabled,
                           defaultProjectID: defaultProject, description: description, email: email,
                           extra: extraJSON(fields.extra(excluding: Self.userColumns)), createdAt: IdentityService.timestamp())
            row.options = try userOptionsJSON(fields)
            try await service.createUser(row)
            row = try await service.users.get(row.id)
            return respond(.created, ["user": userJSON(row)])
        }
        router.get("/v3/users/:user_id") { request, context in
            _ = try context.caller()
            let id = try context.parameters.require("user_id")
            let row = try await service.users.get(id)
            try context.enforce("identity:get_user", target: ["target.user.id": id, "target.user.domain_id": row.domainID])
            return respond(.ok, ["user": userJSON(row)])
        }
        router.patch("/v3/users/:user_id", body: .json(KeystoneSchemas.userUpdate, style: .nova)) { request, context in
            _ = try context.caller()
            let id = try context.parameters.require("user_id")
            var check = try await service.users.get(id)
            try context.enforce("identity:update_user", target: ["target.user.id": id, "target.user.domain_id": check.domainID])
            let fields = try await resource(request, context, "user")
            try fields.refuseIDChange(id)
            let extra = fields.extra(excluding: Self.userColumns)
            @Sendable func apply(_ row: inout User) throws {
                if fields.has("domain_id"), try fields.string("domain_id", nullable: true) != row.domainID {
                    throw IdentityError.badRequest("Invalid input for field 'domain_id': a user cannot move to another domain.")
                }
                if fields.has("name") { row.name = try fields.string("name", required: true)! }
                if let enabled = try fields.bool("enabled") { row.enabled = enabled }
                if fields.has("default_project_id") { row.defaultProjectID = try fields.string("default_project_id", maxLength: 64, nullable: true) }
                if fields.has("description") { row.description = try fields.string("description", maxLength: 65_535, nullable: true) ?? "" }
                if fields.has("email") { row.email = try fields.string("email", nullable: true) }
                row.extra = extraJSON(extra, over: row.extra)
                row.options = try userOptionsJSON(fields, over: row.options)
            }
            try apply(&check)
            var hash: String?? = .none
            if fields.has("password") {
                let password = try self.password(fields, "password", nullable: true)
                if let password { try await service.validateNewPassword(password, userID: id) }
                hash = .some(password == nil ? nil : await service.hashPassword(password!))
            }
            let row = try await service.updateUser(id, passwordHash: hash) { try apply(&$0) }
            return respond(.ok, ["user": userJSON(row)])
        }
        router.delete("/v3/users/:user_id") { request, context in
            _ = try context.caller()
            let id = try context.parameters.require("user_id")
            let row = try await service.users.get(id)
            try context.enforce("identity:delete_user", target: ["target.user.id": id, "target.user.domain_id": row.domainID])
            try await service.deleteUser(id)
            return noContent()
        }
        // Self-service: the original password is the credential, as in Keystone.
        router.post("/v3/users/:user_id/password", body: .json(KeystoneSchemas.passwordChange, style: .keystone)) { request, context in
            let id = try context.parameters.require("user_id")
            let fields = try await resource(request, context, "user")
            let original = try self.password(fields, "original_password", nullable: false)!
            let new = try self.password(fields, "password", nullable: false)!
            try await service.changePassword(userID: id, original: original, new: new)
            return noContent()
        }
        router.get("/v3/users/:user_id/groups") { request, context in
            _ = try context.caller()
            let id = try context.parameters.require("user_id")
            let user = try await service.users.get(id)
            try context.enforce("identity:list_groups_for_user", target: ["target.user.domain_id": user.domainID, "user_id": id])
            let groups = try await service.groups(ofUser: id)
            return respond(.ok, ["groups": .array(groups.map(groupJSON)), "links": listLinks(request)])
        }
        router.get("/v3/users/:user_id/projects") { request, context in
            _ = try context.caller()
            let id = try context.parameters.require("user_id")
            let user = try await service.users.get(id)
            try context.enforce("identity:list_user_projects", target: ["target.user.id": id, "target.user.domain_id": user.domainID])
            let projects = try await service.projectsOf(userID: id)
            return respond(.ok, ["projects": try await projectsJSON(projects), "links": listLinks(request)])
        }

        // MARK: groups
        router.get("/v3/groups", query: KeystoneSchemas.groupsQuery) { request, context in
            let domain = request.query("domain_id")
            try context.enforce("identity:list_groups", target: domain.map { ["target.group.domain_id": $0] } ?? [:])
            var filters: [(String, any Encodable & Sendable)] = []
            if let domain { filters.append(("domain_id", domain)) }
            if let name = request.query("name") { filters.append(("name", name)) }
            let rows = try await service.groups.list(where: filters, orderBy: "name")
            return respond(.ok, ["groups": .array(rows.map(groupJSON)), "links": listLinks(request)])
        }
        router.post("/v3/groups", body: .json(KeystoneSchemas.groupCreate, style: .nova)) { request, context in
            let caller = try authenticate(context)
            let fields = try await resource(request, context, "group")
            let domain = try fields.string("domain_id", maxLength: 64, nullable: true) ?? defaultDomain(caller)
            try context.enforce("identity:create_group", target: ["target.group.domain_id": domain])
            let row = Group(id: IdentityService.makeID(), name: try fields.string("name", required: true, maxLength: 64)!,
                            domainID: domain, description: try fields.string("description", maxLength: 65_535, nullable: true) ?? "",
                            createdAt: IdentityService.timestamp())
            try await service.createGroup(row)
            return respond(.created, ["group": groupJSON(row)])
        }
        router.get("/v3/groups/:group_id") { request, context in
            _ = try context.caller()
            let row = try await service.groups.get(try context.parameters.require("group_id"))
            try context.enforce("identity:get_group", target: ["target.group.domain_id": row.domainID])
            return respond(.ok, ["group": groupJSON(row)])
        }
        router.patch("/v3/groups/:group_id", body: .json(KeystoneSchemas.groupUpdate, style: .nova)) { request, context in
            _ = try context.caller()
            var row = try await service.groups.get(try context.parameters.require("group_id"))
            try context.enforce("identity:update_group", target: ["target.group.domain_id": row.domainID])
            let fields = try await resource(request, context, "group")
            try fields.refuseIDChange(row.id)
            if fields.has("name") { row.name = try fields.string("name", required: true, maxLength: 64)! }
            if fields.has("description") { row.description = try fields.string("description", maxLength: 65_535, nullable: true) ?? "" }
            let updated = row
            try await service.groups.update(updated, id: updated.id)
            return respond(.ok, ["group": groupJSON(row)])
        }
        router.delete("/v3/groups/:group_id") { request, context in
            _ = try context.caller()
            let row = try await service.groups.get(try context.parameters.require("group_id"))
            try context.enforce("identity:delete_group", target: ["target.group.domain_id": row.domainID])
            try await service.deleteGroup(row.id)
            return noContent()
        }
        router.get("/v3/groups/:group_id/users") { request, context in
            _ = try context.caller()
            let group = try await service.groups.get(try context.parameters.require("group_id"))
            try context.enforce("identity:list_users_in_group", target: ["target.group.domain_id": group.domainID])
            let users = try await service.users(inGroup: group.id)
            return respond(.ok, ["users": .array(users.map(userJSON)), "links": listLinks(request)])
        }
        @Sendable func membership(_ request: Request, _ context: APIRequestContext, _ action: String) async throws -> (Group, User) {
            _ = try context.caller()
            let group = try await service.groups.get(try context.parameters.require("group_id"))
            let user = try await service.users.get(try context.parameters.require("user_id"))
            try context.enforce(action, target: ["target.group.domain_id": group.domainID, "target.user.domain_id": user.domainID])
            return (group, user)
        }
        router.put("/v3/groups/:group_id/users/:user_id", body: .none) { request, context in
            let (group, user) = try await membership(request, context, "identity:add_user_to_group")
            try await service.addUserToGroup(userID: user.id, groupID: group.id)
            return noContent()
        }
        router.head("/v3/groups/:group_id/users/:user_id") { request, context in
            let (group, user) = try await membership(request, context, "identity:check_user_in_group")
            guard try await service.isMember(userID: user.id, groupID: group.id) else { throw IdentityError.notFound(kind: "user in group", id: "\(user.id) in \(group.id)") }
            return noContent()
        }
        router.delete("/v3/groups/:group_id/users/:user_id") { request, context in
            let (group, user) = try await membership(request, context, "identity:remove_user_from_group")
            try await service.removeUserFromGroup(userID: user.id, groupID: group.id)
            return noContent()
        }
    }
}
