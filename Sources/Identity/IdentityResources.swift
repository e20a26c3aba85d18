import Foundation
import SQLKit
import Store

/// The identity resources' rules: what a change revokes, what it cascades to, what it
/// refuses. Plain reads and writes go through `read` and `write`; every write forgets the
/// cached tokens and catalog, so the next validation sees it.
extension IdentityService {
    public func read<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await database.withConnection(body)
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        do {
            let result = try await database.transaction { sql in
                let result = try await body(sql)
                try await sql.raw("UPDATE identity_generation SET value = value + 1 WHERE id = 1").run()
                return result
            }
            invalidate()
            return result
        } catch let error as DuplicateRowError {
            invalidate()
            throw IdentityError.conflict("Conflict occurred attempting to store \(Self.kind(of: error.table)) - Duplicate entry.")
        } catch {
            invalidate()
            throw error
        }
    }

    static func kind(of table: String) -> String {
        switch table {
        case "catalog_services": return "service"
        case "role_assignments": return "role assignment"
        case "implied_roles": return "implied role"
        case "group_members": return "group membership"
        case "application_credentials": return "application credential"
        default: return String(table.dropLast())
        }
    }

    public static func makeID() -> String { newID() }
    public static func timestamp() -> Int64 { now() }

    // MARK: users

    public func hashPassword(_ password: String) async -> String {
        await PasswordHasher.hash(password, cost: options.passwordCost)
    }

    /// Changes a user inside one transaction (on the row as it is now, so concurrent changes
    /// are not lost); disabling the user or changing its password revokes its tokens.
    /// `passwordHash` `.some(x)` sets the password (nil removes it).
    /// A password set here by an administrator (`selfService` false) expires as the rules say.
    @discardableResult
    public func updateUser(_ id: String, passwordHash: String?? = .none, selfService: Bool = false,
                           _ change: @escaping @Sendable (inout UserRow) throws -> Void = { _ in }) async throws -> UserRow {
        try await write { sql in
            guard let before = try await IdentityTables.users.get(sql, id: id) else {
                throw IdentityError.notFound(kind: "user", id: id)
            }
            var row = before
            try change(&row)
            row.id = before.id
            if let passwordHash {
                let now = Self.now()
                row.passwordHash = passwordHash
                row.passwordChangedAt = now
                row.passwordExpiresAt = passwordHash == nil
                    ? nil : self.passwordExpiry(selfService: selfService, options: UserOptionValues(json: row.options), now: now)
                row.failedAuthCount = 0
                row.lastFailedAuthAt = nil
                if let hash = passwordHash { try await self.recordPassword(hash, userID: row.id, selfService: selfService, at: now, sql) }
            }
            try await IdentityTables.users.update(sql, id: row.id, row)
            if passwordHash != nil || (before.enabled && !row.enabled) {
                try await self.revoke(self.revocationEvent(userID: row.id), on: sql)
            }
            return row
        }
    }

    /// `POST /v3/users/{id}/password`: the user proves the old password and sets a new one.
    /// `lock_password` forbids it; `minimum_password_age`, the regular expression and the
    /// history apply; an expired password may be changed (that is what it asks for).
    public func changePassword(userID: String, original: String, new: String) async throws {
        guard let user = try await read({ sql in try await IdentityTables.users.get(sql, id: userID) }) else {
            throw IdentityError.notFound(kind: "user", id: userID)
        }
        _ = try await checkPassword(.id(userID), original, allowExpired: true)
        if UserOptionValues(json: user.options).lockPassword {
            throw IdentityError.badRequest("You cannot change your password at this time due to password policy disallowing password changes. Please contact your administrator to reset your password.")
        }
        try await read { sql in try await self.checkMinimumAge(userID: userID, sql) }
        try await validateNewPassword(new, userID: userID)
        let hash = await hashPassword(new)
        try await updateUser(userID, passwordHash: .some(hash), selfService: true)
    }

    /// Checks a new password against `[security_compliance]` (the regular expression, and the
    /// user's last passwords when `userID` is given); a 400 in Keystone's words otherwise.
    public func validateNewPassword(_ password: String, userID: String?) async throws {
        try await read { sql in try await self.checkNewPassword(password, userID: userID, sql) }
    }

    public func deleteUser(_ id: String) async throws {
        try await write { sql in
            guard try await IdentityTables.users.get(sql, id: id) != nil else { throw IdentityError.notFound(kind: "user", id: id) }
            try await IdentityTables.assignments.delete(sql, where: [.equals("actor_type", "user"), .equals("actor_id", id)])
            // What the user delegated or was delegated goes with them (SQLite does not cascade).
            try await IdentityTables.credentials.delete(sql, where: [.equals("user_id", id)])
            for credential in try await IdentityTables.applicationCredentials.all(sql, where: [.equals("user_id", id)]) {
                try await IdentityTables.applicationCredentialAccessRules.delete(sql, where: [.equals("application_credential_id", credential.id)])
                try await IdentityTables.applicationCredentialRoles.delete(sql, where: [.equals("application_credential_id", credential.id)])
            }
            try await IdentityTables.applicationCredentials.delete(sql, where: [.equals("user_id", id)])
            try await IdentityTables.accessRules.delete(sql, where: [.equals("user_id", id)])
            let now = Self.now()
            for column in ["trustor_user_id", "trustee_user_id"] {
                try await sql.update("trusts").set("deleted_at", to: now).where(SQLIdentifier(column), .equal, SQLBind(id))
                    .where("deleted_at", .is, SQLLiteral.null).run()
            }
            try await IdentityTables.users.delete(sql, where: [.equals("id", id)])
            try await self.revoke(self.revocationEvent(userID: id), on: sql)
        }
    }

    /// Removing a user from a group can take roles away: the user's tokens are revoked.
    public func removeUserFromGroup(userID: String, groupID: String) async throws {
        try await write { sql in
            let removed = try await IdentityTables.groupMembers.delete(sql, where: [.equals("group_id", groupID), .equals("user_id", userID)])
            guard removed > 0 else {
                throw IdentityError.notFound(kind: "user in group", id: "\(userID) in \(groupID)")
            }
            try await self.revoke(self.revocationEvent(userID: userID), on: sql)
        }
    }

    public func deleteGroup(_ id: String) async throws {
        try await write { sql in
            guard try await IdentityTables.groups.get(sql, id: id) != nil else { throw IdentityError.notFound(kind: "group", id: id) }
            let members = try await IdentityTables.groupMembers.all(sql, where: [.equals("group_id", id)])
            try await IdentityTables.assignments.delete(sql, where: [.equals("actor_type", "group"), .equals("actor_id", id)])
            try await IdentityTables.groups.delete(sql, where: [.equals("id", id)])
            for member in members { try await self.revoke(self.revocationEvent(userID: member.userID), on: sql) }
        }
    }

    // MARK: projects and domains

    /// Changes a project in one transaction; disabling it revokes the tokens scoped to it.
    @discardableResult
    public func updateProject(_ id: String, _ change: @escaping @Sendable (inout ProjectRow) throws -> Void) async throws -> ProjectRow {
        try await write { sql in
            guard let before = try await IdentityTables.projects.get(sql, id: id) else {
                throw IdentityError.notFound(kind: "project", id: id)
            }
            var row = before
            try change(&row)
            row.id = before.id
            try await IdentityTables.projects.update(sql, id: id, row)
            if before.enabled && !row.enabled {
                try await self.revoke(self.revocationEvent(projectID: id), on: sql)
            }
            return row
        }
    }

    public func deleteProject(_ id: String) async throws {
        try await write { sql in
            guard try await IdentityTables.projects.get(sql, id: id) != nil else { throw IdentityError.notFound(kind: "project", id: id) }
            if try await IdentityTables.projects.first(sql, where: [.equals("parent_id", id)]) != nil {
                throw IdentityError.forbidden("Cannot delete the project \(id) since it is not a leaf in the hierarchy.")
            }
            try await IdentityTables.assignments.delete(sql, where: [.equals("target_type", "project"), .equals("target_id", id)])
            try await IdentityTables.applicationCredentials.delete(sql, where: [.equals("project_id", id)])
            try await IdentityTables.projectTags.delete(sql, where: [.equals("project_id", id)])
            try await IdentityTables.projects.delete(sql, where: [.equals("id", id)])
            try await self.revoke(self.revocationEvent(projectID: id), on: sql)
        }
    }

    /// Changes a domain in one transaction; disabling it revokes the tokens within it.
    @discardableResult
    public func updateDomain(_ id: String, _ change: @escaping @Sendable (inout DomainRow) throws -> Void) async throws -> DomainRow {
        try await write { sql in
            guard let before = try await IdentityTables.domains.get(sql, id: id) else {
                throw IdentityError.notFound(kind: "domain", id: id)
            }
            var row = before
            try change(&row)
            row.id = before.id
            try await IdentityTables.domains.update(sql, id: id, row)
            if before.enabled && !row.enabled {
                try await self.revoke(self.revocationEvent(domainID: id), on: sql)
            }
            return row
        }
    }

    /// Deletes a role; every token that held it through an assignment is revoked.
    public func deleteRole(_ id: String) async throws {
        try await write { sql in
            guard try await IdentityTables.roles.get(sql, id: id) != nil else { throw IdentityError.notFound(kind: "role", id: id) }
            let assignments = try await IdentityTables.assignments.all(sql, where: [.equals("role_id", id)])
            try await IdentityTables.roles.delete(sql, where: [.equals("id", id)])
            for assignment in assignments {
                let users = assignment.actorType == "user" ? [assignment.actorID]
                    : try await IdentityTables.groupMembers.all(sql, where: [.equals("group_id", assignment.actorID)]).map(\.userID)
                for user in users {
                    let event = assignment.targetType == "project" ? self.revocationEvent(userID: user, projectID: assignment.targetID)
                        : assignment.targetType == "domain" ? self.revocationEvent(userID: user, domainID: assignment.targetID)
                        : self.revocationEvent(userID: user)
                    try await self.revoke(event, on: sql)
                }
            }
        }
    }

    /// Deletes a disabled domain and everything in it (as Keystone does).
    public func deleteDomain(_ id: String) async throws {
        try await write { sql in
            guard let domain = try await IdentityTables.domains.get(sql, id: id) else {
                throw IdentityError.notFound(kind: "domain", id: id)
            }
            if domain.enabled {
                throw IdentityError.forbidden("Cannot delete a domain that is enabled, please disable it first.")
            }
            let projects = try await IdentityTables.projects.all(sql, where: [.equals("domain_id", id)])
            let users = try await IdentityTables.users.all(sql, where: [.equals("domain_id", id)])
            let groups = try await IdentityTables.groups.all(sql, where: [.equals("domain_id", id)])
            for project in projects {
                try await IdentityTables.assignments.delete(sql, where: [.equals("target_type", "project"), .equals("target_id", project.id)])
                try await IdentityTables.applicationCredentials.delete(sql, where: [.equals("project_id", project.id)])
                try await IdentityTables.projectTags.delete(sql, where: [.equals("project_id", project.id)])
            }
            try await IdentityTables.assignments.delete(sql, where: [.equals("target_type", "domain"), .equals("target_id", id)])
            for user in users {
                try await IdentityTables.assignments.delete(sql, where: [.equals("actor_type", "user"), .equals("actor_id", user.id)])
                try await IdentityTables.credentials.delete(sql, where: [.equals("user_id", user.id)])
            }
            for group in groups {
                try await IdentityTables.assignments.delete(sql, where: [.equals("actor_type", "group"), .equals("actor_id", group.id)])
            }
            // Children before parents.
            var remaining = projects
            while !remaining.isEmpty {
                let parents = Set(remaining.compactMap(\.parentID))
                let leaves = remaining.filter { !parents.contains($0.id) }
                for leaf in leaves { try await IdentityTables.projects.delete(sql, where: [.equals("id", leaf.id)]) }
                remaining.removeAll { project in leaves.contains { $0.id == project.id } }
            }
            try await IdentityTables.users.delete(sql, where: [.equals("domain_id", id)])
            try await IdentityTables.groups.delete(sql, where: [.equals("domain_id", id)])
            try await IdentityTables.roles.delete(sql, where: [.equals("domain_id", id)])
            try await IdentityTables.domains.delete(sql, where: [.equals("id", id)])
            try await self.revoke(self.revocationEvent(domainID: id), on: sql)
        }
    }

    // MARK: grants

    /// Removes a role assignment; the tokens it gave roles to are revoked.
    public func revokeGrant(_ assignment: AssignmentRow) async throws {
        try await write { sql in
            let removed = try await IdentityTables.assignments.delete(sql, where: [
                .equals("actor_type", assignment.actorType), .equals("actor_id", assignment.actorID),
                .equals("target_type", assignment.targetType), .equals("target_id", assignment.targetID),
                .equals("role_id", assignment.roleID), .equals("inherited", assignment.inherited)])
            guard removed > 0 else {
                throw IdentityError.notFound(kind: "role assignment", id: "\(assignment.roleID)")
            }
            let users = assignment.actorType == "user"
                ? [assignment.actorID]
                : try await IdentityTables.groupMembers.all(sql, where: [.equals("group_id", assignment.actorID)]).map(\.userID)
            for user in users {
                // An inherited role reached every project below the target.
                if assignment.inherited {
                    try await self.revoke(self.revocationEvent(userID: user), on: sql)
                    continue
                }
                switch assignment.targetType {
                case "project": try await self.revoke(self.revocationEvent(userID: user, projectID: assignment.targetID), on: sql)
                case "domain": try await self.revoke(self.revocationEvent(userID: user, domainID: assignment.targetID), on: sql)
                default: try await self.revoke(self.revocationEvent(userID: user), on: sql)
                }
            }
        }
    }

    /// The role assignments matching the filters; `effective` replaces group assignments by
    /// one per member and adds the roles implied by each assignment.
    public struct AssignmentQuery: Sendable {
        public var userID: String?
        public var groupID: String?
        public var roleID: String?
        public var projectID: String?
        public var domainID: String?
        public var system = false
        public var effective = false
        public init() {}
    }

    /// An assignment as listed: for an effective one from a group, `viaGroup` names the group;
    /// for one implied by another role, `priorRoleID` names the prior role; for one a project
    /// inherits, `inheritedFrom` is the OS-INHERIT assignment it comes from.
    public struct ListedAssignment: Sendable, Hashable {
        public var row: AssignmentRow
        public var viaGroup: String?
        public var priorRoleID: String?
        public var inheritedFrom: AssignmentRow?
    }

    public func roleAssignments(_ query: AssignmentQuery) async throws -> [ListedAssignment] {
        try await read { sql in
            func matchesTarget(_ row: AssignmentRow) -> Bool {
                if let project = query.projectID, !(row.targetType == "project" && row.targetID == project) { return false }
                if let domain = query.domainID, !(row.targetType == "domain" && row.targetID == domain) { return false }
                if query.system && row.targetType != "system" { return false }
                return true
            }
            let rows = try await IdentityTables.assignments.all(sql, orderBy: "actor_id")
            var listed: [ListedAssignment]
            if query.effective {
                // Inherited assignments count on each project below their target, not on it.
                var expanded: [ListedAssignment] = []
                var projects: [ProjectRow]?
                for row in rows {
                    guard row.inherited else {
                        expanded.append(ListedAssignment(row: row))
                        continue
                    }
                    if projects == nil { projects = try await IdentityTables.projects.all(sql) }
                    let below = Self.projects(under: row, in: projects ?? [])
                    for project in below {
                        var each = row
                        each.targetType = "project"
                        each.targetID = project
                        each.inherited = false
                        expanded.append(ListedAssignment(row: each, inheritedFrom: row))
                    }
                }
                listed = []
                for assignment in expanded where matchesTarget(assignment.row) {
                    let row = assignment.row
                    if row.actorType == "group" {
                        for member in try await IdentityTables.groupMembers.all(sql, where: [.equals("group_id", row.actorID)]) {
                            var each = assignment
                            each.row.actorType = "user"
                            each.row.actorID = member.userID
                            each.viaGroup = row.actorID
                            listed.append(each)
                        }
                    } else {
                        listed.append(assignment)
                    }
                }
                let rules = try await IdentityTables.impliedRoles.all(sql)
                var index = 0
                while index < listed.count {
                    let assignment = listed[index]
                    for rule in rules where rule.priorRoleID == assignment.row.roleID {
                        var implied = assignment
                        implied.row.roleID = rule.impliedRoleID
                        implied.priorRoleID = assignment.row.roleID
                        if !listed.contains(where: { $0.row == implied.row }) { listed.append(implied) }
                    }
                    index += 1
                }
            } else {
                listed = rows.filter(matchesTarget).map { ListedAssignment(row: $0) }
            }
            return listed.filter { assignment in
                if let user = query.userID, !(assignment.row.actorType == "user" && assignment.row.actorID == user) { return false }
                if let group = query.groupID, !(assignment.row.actorType == "group" && assignment.row.actorID == group) { return false }
                if let role = query.roleID, assignment.row.roleID != role { return false }
                return true
            }
        }
    }

    /// The projects an inherited assignment reaches: every project of its domain, or every
    /// project below its project.
    static func projects(under assignment: AssignmentRow, in projects: [ProjectRow]) -> [String] {
        if assignment.targetType == "domain" {
            return projects.filter { $0.domainID == assignment.targetID }.map(\.id).sorted()
        }
        var found: [String] = []
        var frontier = [assignment.targetID]
        while let next = frontier.popLast() {
            for child in projects where child.parentID == next && !found.contains(child.id) {
                found.append(child.id)
                frontier.append(child.id)
            }
        }
        return found.sorted()
    }

    // MARK: application credentials

    /// Creates an application credential of `userID` on `projectID` with the given roles
    /// (each must be one the user has there). Returns the row and its secret, shown once.
    public func createApplicationCredential(userID: String, projectID: String, name: String, secret: String?,
                                            description: String, expiresAt: Int64?, unrestricted: Bool,
                                            roleIDs: [String]?, accessRules: [AccessRuleRequest] = [])
        async throws -> (ApplicationCredentialRow, [RoleRow], [AccessRuleRow], String) {
        if let expiresAt, expiresAt <= Self.now() {
            throw IdentityError.badRequest("The expiration time of an application credential must be in the future.")
        }
        let secret = secret ?? Self.newSecret()
        let hash = await hashPassword(secret)
        let (row, roles, rules) = try await write { sql in
            let held = try await self.effectiveRoles(sql, userID: userID, targetType: "project", targetID: projectID)
            var chosen = held
            if let roleIDs, !roleIDs.isEmpty {
                chosen = []
                for id in roleIDs {
                    guard let role = held.first(where: { $0.id == id }) else {
                        throw IdentityError.forbidden("The user \(userID) does not have the role \(id) on project \(projectID).")
                    }
                    chosen.append(role)
                }
            }
            guard !chosen.isEmpty else {
                throw IdentityError.forbidden("The user \(userID) has no role on project \(projectID).")
            }
            let row = ApplicationCredentialRow(id: Self.newID(), name: name, userID: userID, projectID: projectID,
                                               secretHash: hash, description: description, expiresAt: expiresAt,
                                               unrestricted: unrestricted, createdAt: Self.now())
            try await IdentityTables.applicationCredentials.insert(sql, row)
            for role in chosen {
                try await IdentityTables.applicationCredentialRoles.insert(sql, .init(applicationCredentialID: row.id, roleID: role.id))
            }
            let rules = try await self.resolveAccessRules(accessRules, userID: userID, sql)
            for rule in Set(rules.map(\.id)) {
                try await IdentityTables.applicationCredentialAccessRules.insert(sql, .init(applicationCredentialID: row.id, accessRuleID: rule))
            }
            return (row, chosen, rules)
        }
        return (row, roles, rules, secret)
    }

    public func applicationCredentialRoles(_ id: String) async throws -> [RoleRow] {
        try await read { sql in
            let ids = try await IdentityTables.applicationCredentialRoles.all(sql, where: [.equals("application_credential_id", id)])
                .map(\.roleID)
            return try await IdentityTables.roles.all(sql, where: [.inList("id", ids)], orderBy: "name")
        }
    }

    public func deleteApplicationCredential(userID: String, id: String) async throws {
        try await write { sql in
            let removed = try await IdentityTables.applicationCredentials.delete(sql, where: [.equals("id", id), .equals("user_id", userID)])
            guard removed > 0 else { throw IdentityError.notFound(kind: "application credential", id: id) }
            try await IdentityTables.applicationCredentialAccessRules.delete(sql, where: [.equals("application_credential_id", id)])
            try await self.revoke(self.revocationEvent(applicationCredentialID: id), on: sql)
        }
    }

    /// A random secret in URL-safe base64 that never starts with "-": command lines (the
    /// `openstack` CLI's `--os-application-credential-secret <secret>`) would take it for an option.
    static func newSecret() -> String {
        while true {
            var bytes = [UInt8](repeating: 0, count: 48)
            for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
            let secret = String(Base64URL.encode(bytes).prefix { $0 != "=" })
            if !secret.hasPrefix("-") { return secret }
        }
    }

    /// The projects a user has any role on (directly, through a group, or inherited from a
    /// domain or a project above).
    public func projectsOf(userID: String) async throws -> [ProjectRow] {
        try await read { sql in
            let groups = try await IdentityTables.groupMembers.all(sql, where: [.equals("user_id", userID)]).map(\.groupID)
            var assignments = try await IdentityTables.assignments.all(sql, where: [.equals("actor_type", "user"), .equals("actor_id", userID)])
            if !groups.isEmpty {
                assignments += try await IdentityTables.assignments.all(sql, where: [.equals("actor_type", "group"), .inList("actor_id", groups)])
            }
            var ids = Set(assignments.filter { $0.targetType == "project" && !$0.inherited }.map(\.targetID))
            let inherited = assignments.filter(\.inherited)
            if !inherited.isEmpty {
                let projects = try await IdentityTables.projects.all(sql)
                for assignment in inherited { ids.formUnion(Self.projects(under: assignment, in: projects)) }
            }
            return try await IdentityTables.projects.all(sql, where: [.inList("id", Array(ids))], orderBy: "name")
        }
    }

    /// The domains a user has any role on.
    public func domainsOf(userID: String) async throws -> [DomainRow] {
        try await read { sql in
            let groups = try await IdentityTables.groupMembers.all(sql, where: [.equals("user_id", userID)]).map(\.groupID)
            var assignments = try await IdentityTables.assignments.all(sql, where: [
                .equals("actor_type", "user"), .equals("actor_id", userID), .equals("target_type", "domain"),
                .equals("inherited", false)])
            if !groups.isEmpty {
                assignments += try await IdentityTables.assignments.all(sql, where: [
                    .equals("actor_type", "group"), .inList("actor_id", groups), .equals("target_type", "domain"),
                    .equals("inherited", false)])
            }
            return try await IdentityTables.domains.all(sql, where: [.inList("id", Array(Set(assignments.map(\.targetID))))],
                                                        orderBy: "name")
        }
    }
}
