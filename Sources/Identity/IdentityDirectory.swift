import Foundation
import SQLKit
import Store

// The identity resources as the API reads and changes them: by id (404 when absent), listed
// by attribute, created and changed with the rules Keystone applies (a role's domain must
// exist, a role cannot imply itself, a region with children or endpoints stays, …).

public typealias Domain = DomainRow
public typealias Project = ProjectRow
public typealias User = UserRow
public typealias Group = GroupRow
public typealias Role = RoleRow
public typealias RoleAssignment = AssignmentRow
public typealias ImpliedRole = ImpliedRoleRow
public typealias Region = RegionRow
public typealias CatalogService = CatalogServiceRow
public typealias Endpoint = EndpointRow
public typealias ApplicationCredentialRecord = ApplicationCredentialRow

/// The resources of one kind.
public struct IdentityDirectory<Row: Codable & Sendable>: Sendable {
    let service: IdentityService
    let table: Table<Row>
    /// The word Keystone's "Could not find <kind>: <id>." uses.
    public let kind: String

    /// The resource with this id; 404 when there is none.
    public func get(_ id: String) async throws -> Row {
        guard let row = try await find(id) else { throw IdentityError.notFound(kind: kind, id: id) }
        return row
    }

    public func find(_ id: String) async throws -> Row? {
        let table = table
        return try await service.read { sql in try await table.get(sql, id: id) }
    }

    /// The resources whose attributes (snake_case columns) equal the given values, ordered by `orderBy`.
    public func list(where attributes: [(String, any Encodable & Sendable)] = [], orderBy: String) async throws -> [Row] {
        let table = table
        let conditions = attributes.map { Table<Row>.Condition.equals($0.0, $0.1) }
        return try await service.read { sql in try await table.all(sql, where: conditions, orderBy: orderBy) }
    }

    /// Records a new resource (409 for a duplicate).
    public func create(_ row: Row) async throws {
        let table = table
        try await service.write { sql in try await table.insert(sql, row) }
    }

    /// Replaces the resource with this id.
    public func update(_ row: Row, id: String) async throws {
        let table = table
        try await service.write { sql in try await table.update(sql, id: id, row) }
    }
}

extension IdentityService {
    public var domains: IdentityDirectory<Domain> { .init(service: self, table: IdentityTables.domains, kind: "domain") }
    public var projects: IdentityDirectory<Project> { .init(service: self, table: IdentityTables.projects, kind: "project") }
    public var users: IdentityDirectory<User> { .init(service: self, table: IdentityTables.users, kind: "user") }
    public var groups: IdentityDirectory<Group> { .init(service: self, table: IdentityTables.groups, kind: "group") }
    public var roles: IdentityDirectory<Role> { .init(service: self, table: IdentityTables.roles, kind: "role") }
    public var regions: IdentityDirectory<Region> { .init(service: self, table: IdentityTables.regions, kind: "region") }
    public var catalogServices: IdentityDirectory<CatalogService> { .init(service: self, table: IdentityTables.services, kind: "service") }
    public var endpoints: IdentityDirectory<Endpoint> { .init(service: self, table: IdentityTables.endpoints, kind: "endpoint") }
    public var applicationCredentials: IdentityDirectory<ApplicationCredentialRecord> {
        .init(service: self, table: IdentityTables.applicationCredentials, kind: "application credential")
    }

    // MARK: rules of creation

    /// Records `row` once `parent` (of `kind`) exists, in one transaction.
    func create<Row: Codable & Sendable>(_ row: Row, in table: Table<Row>, requiring parent: String?, kind: String,
                                         of parentTable: Table<some Codable & Sendable>) async throws {
        try await write { sql in
            if let parent, try await parentTable.get(sql, id: parent) == nil { throw IdentityError.notFound(kind: kind, id: parent) }
            try await table.insert(sql, row)
        }
    }

    /// A user or a group lives in a domain that exists.
    /// A password given at creation was set by an administrator: it expires as the rules say.
    public func createUser(_ row: User) async throws {
        try await write { sql in
            guard try await IdentityTables.domains.get(sql, id: row.domainID) != nil else {
                throw IdentityError.notFound(kind: "domain", id: row.domainID)
            }
            var row = row
            let now = Self.now()
            if let hash = row.passwordHash {
                row.passwordExpiresAt = self.passwordExpiry(selfService: false, options: UserOptionValues(json: row.options), now: now)
                try await IdentityTables.users.insert(sql, row)
                try await self.recordPassword(hash, userID: row.id, selfService: false, at: now, sql)
            } else {
                try await IdentityTables.users.insert(sql, row)
            }
        }
    }

    public func createGroup(_ row: Group) async throws {
        try await create(row, in: IdentityTables.groups, requiring: row.domainID, kind: "domain", of: IdentityTables.domains)
    }

    /// A domain role's domain (`domain`, as asked: even an empty id must exist) exists.
    public func createRole(_ row: Role, domain: String?) async throws {
        try await create(row, in: IdentityTables.roles, requiring: domain, kind: "domain", of: IdentityTables.domains)
    }

    /// The global role with this name, if any.
    public func globalRole(named name: String) async throws -> Role? {
        try await read { sql in try await IdentityTables.roles.first(sql, where: [.equals("name", name), .equals("domain_id", "")]) }
    }

    // MARK: regions, services, endpoints

    /// A region's parent exists.
    public func createRegion(_ row: Region) async throws {
        try await create(row, in: IdentityTables.regions, requiring: row.parentRegionID, kind: "region", of: IdentityTables.regions)
    }

    public func updateRegion(_ row: Region) async throws {
        try await write { sql in
            if let parent = row.parentRegionID, try await IdentityTables.regions.get(sql, id: parent) == nil {
                throw IdentityError.notFound(kind: "region", id: parent)
            }
            try await IdentityTables.regions.update(sql, id: row.id, row)
        }
    }

    /// A region with child regions or endpoints is refused (403, as Keystone).
    public func deleteRegion(_ id: String) async throws {
        try await write { sql in
            let hasChildren = try await IdentityTables.regions.first(sql, where: [.equals("parent_region_id", id)]) != nil
            let hasEndpoints = try await IdentityTables.endpoints.first(sql, where: [.equals("region_id", id)]) != nil
            if hasChildren || hasEndpoints {
                throw IdentityError.forbidden("Unable to delete region \(id) because it or its child regions have associated endpoints.")
            }
            try await IdentityTables.regions.delete(sql, where: [.equals("id", id)])
        }
    }

    /// A catalog service goes with its endpoints.
    public func deleteCatalogService(_ id: String) async throws {
        try await write { sql in
            try await IdentityTables.endpoints.delete(sql, where: [.equals("service_id", id)])
            try await IdentityTables.services.delete(sql, where: [.equals("id", id)])
        }
    }

    /// Records (or, `create` false, replaces) an endpoint whose service and region exist.
    public func saveEndpoint(_ row: Endpoint, create: Bool) async throws {
        try await write { sql in
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

    public func deleteEndpoint(_ id: String) async throws {
        _ = try await write { sql in try await IdentityTables.endpoints.delete(sql, where: [.equals("id", id)]) }
    }

    // MARK: implied roles

    public func implies(_ prior: String, _ implied: String) async throws -> Bool {
        try await read { sql in
            try await IdentityTables.impliedRoles.first(sql, where: [.equals("prior_role_id", prior), .equals("implied_role_id", implied)]) != nil
        }
    }

    /// Makes `prior` imply `implied` (nothing if it already does); a role cannot imply itself.
    /// Keystone's rules: `admin` is never implied (`[assignment] prohibited_implied_role`), and a
    /// global role cannot imply a domain-specific one.
    public func addImpliedRole(prior: String, implied: String) async throws {
        guard try await !implies(prior, implied) else { return }
        if prior == implied { throw IdentityError.badRequest("A role cannot imply itself.") }
        try await write { sql in
            if let impliedRole = try await IdentityTables.roles.get(sql, id: implied),
               let priorRole = try await IdentityTables.roles.get(sql, id: prior) {
                if impliedRole.name == "admin" && impliedRole.domainID.isEmpty {
                    throw IdentityError.forbidden("\(implied) cannot be an implied roles.")
                }
                if priorRole.domainID.isEmpty && !impliedRole.domainID.isEmpty {
                    throw IdentityError.forbidden("Global role cannot imply a domain-specific role")
                }
            }
            try await IdentityTables.impliedRoles.insert(sql, ImpliedRoleRow(priorRoleID: prior, impliedRoleID: implied))
        }
    }

    public func removeImpliedRole(prior: String, implied: String) async throws {
        _ = try await write { sql in
            try await IdentityTables.impliedRoles.delete(sql, where: [.equals("prior_role_id", prior), .equals("implied_role_id", implied)])
        }
    }

    /// The roles `prior` implies directly, by name.
    public func impliedRoles(of prior: String) async throws -> [Role] {
        try await read { sql in
            let ids = try await IdentityTables.impliedRoles.all(sql, where: [.equals("prior_role_id", prior)]).map(\.impliedRoleID)
            return try await IdentityTables.roles.all(sql, where: [.inList("id", ids)], orderBy: "name")
        }
    }

    /// Every inference rule, and every role.
    public func roleInferenceRules() async throws -> (rules: [ImpliedRole], roles: [Role]) {
        try await read { sql in (try await IdentityTables.impliedRoles.all(sql), try await IdentityTables.roles.all(sql)) }
    }

    // MARK: grants and memberships

    static func matching(_ row: RoleAssignment, role: Bool) -> [Table<RoleAssignment>.Condition] {
        var conditions: [Table<RoleAssignment>.Condition] = [
            .equals("actor_type", row.actorType), .equals("actor_id", row.actorID), .equals("target_type", row.targetType),
            .equals("target_id", row.targetID), .equals("inherited", row.inherited)]
        if role { conditions.append(.equals("role_id", row.roleID)) }
        return conditions
    }

    public func grantExists(_ row: RoleAssignment) async throws -> Bool {
        try await read { sql in try await IdentityTables.assignments.first(sql, where: Self.matching(row, role: true)) != nil }
    }

    /// Records a grant (nothing if it exists).
    /// A domain-specific role is granted on projects of its own domain only, as in Keystone.
    public func grant(_ row: RoleAssignment) async throws {
        guard try await !grantExists(row) else { return }
        try await write { sql in
            if row.targetType == "project", let role = try await IdentityTables.roles.get(sql, id: row.roleID), !role.domainID.isEmpty,
               let project = try await IdentityTables.projects.get(sql, id: row.targetID), project.domainID != role.domainID {
                throw IdentityError.forbidden("Project \(project.id) must be in the same domain as the role \(role.id) being assigned.")
            }
            try await IdentityTables.assignments.insert(sql, row)
        }
    }

    /// The roles granted directly to the actor on the target of `row` (its role is ignored), by name.
    public func grantedRoles(_ row: RoleAssignment) async throws -> [Role] {
        try await read { sql in
            let ids = try await IdentityTables.assignments.all(sql, where: Self.matching(row, role: false)).map(\.roleID)
            return try await IdentityTables.roles.all(sql, where: [.inList("id", ids)], orderBy: "name")
        }
    }

    /// The roles a user has on the system, inherited and implied ones included.
    public func systemRoles(userID: String) async throws -> [Role] {
        try await read { sql in try await self.effectiveRoles(sql, userID: userID, targetType: "system", targetID: "all") }
    }

    public func groups(ofUser userID: String) async throws -> [Group] {
        try await read { sql in
            let ids = try await IdentityTables.groupMembers.all(sql, where: [.equals("user_id", userID)]).map(\.groupID)
            return try await IdentityTables.groups.all(sql, where: [.inList("id", ids)], orderBy: "name")
        }
    }

    public func users(inGroup groupID: String) async throws -> [User] {
        try await read { sql in
            let ids = try await IdentityTables.groupMembers.all(sql, where: [.equals("group_id", groupID)]).map(\.userID)
            return try await IdentityTables.users.all(sql, where: [.inList("id", ids)], orderBy: "name")
        }
    }

    public func isMember(userID: String, groupID: String) async throws -> Bool {
        try await read { sql in
            try await IdentityTables.groupMembers.first(sql, where: [.equals("group_id", groupID), .equals("user_id", userID)]) != nil
        }
    }

    /// Adds a user to a group (nothing if it is a member).
    public func addUserToGroup(userID: String, groupID: String) async throws {
        try await write { sql in
            if try await IdentityTables.groupMembers.first(sql, where: [.equals("group_id", groupID), .equals("user_id", userID)]) == nil {
                try await IdentityTables.groupMembers.insert(sql, GroupMemberRow(groupID: groupID, userID: userID))
            }
        }
    }

    /// Every role, user, group, project and domain: the names of a role assignment listing.
    public func everyName() async throws -> (roles: [Role], users: [User], groups: [Group], projects: [Project], domains: [Domain]) {
        try await read { sql in
            (try await IdentityTables.roles.all(sql), try await IdentityTables.users.all(sql), try await IdentityTables.groups.all(sql),
             try await IdentityTables.projects.all(sql), try await IdentityTables.domains.all(sql))
        }
    }
}
