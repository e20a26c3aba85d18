import Foundation
import SQLKit
import Store

/// A trust with its roles, as the API shows it.
public typealias TrustRecord = TrustRow

public struct Trust: Sendable {
    public let row: TrustRow
    public let roles: [RoleRow]
}

/// What a new trust asks for (`POST /v3/OS-TRUST/trusts`), before its checks.
public struct TrustRequest: Sendable {
    public enum RoleReference: Sendable {
        case id(String)
        case name(String)
    }

    public var trustorUserID: String
    public var trusteeUserID: String
    public var projectID: String?
    public var impersonation: Bool
    public var roles: [RoleReference]
    public var expiresAt: Int64?
    public var remainingUses: Int?
    public var allowRedelegation: Bool
    public var redelegationCount: Int?

    public init(trustorUserID: String, trusteeUserID: String, projectID: String?, impersonation: Bool, roles: [RoleReference],
                expiresAt: Int64?, remainingUses: Int?, allowRedelegation: Bool, redelegationCount: Int?) {
        self.trustorUserID = trustorUserID; self.trusteeUserID = trusteeUserID; self.projectID = projectID
        self.impersonation = impersonation; self.roles = roles; self.expiresAt = expiresAt; self.remainingUses = remainingUses
        self.allowRedelegation = allowRedelegation; self.redelegationCount = redelegationCount
    }
}

extension IdentityService {
    /// Keystone's `[trust] max_redelegation_count`.
    static let maxRedelegationCount = 3

    /// A trust that may still be used: not deleted, not expired, uses left.
    func usableTrust(_ sql: any SQLDatabase, id: String) async throws -> TrustRow {
        guard let row = try await IdentityTables.trusts.get(sql, id: id), row.deletedAt == nil,
              row.expiresAt.map({ $0 > Self.now() }) ?? true, row.remainingUses.map({ $0 > 0 }) ?? true else {
            throw IdentityError.notFound(kind: "trust", id: id)
        }
        return row
    }

    /// Counts one use of a trust with limited uses, atomically; none left is a 403.
    func consumeTrustUse(_ id: String) async throws {
        try await write { sql in
            guard let row = try await IdentityTables.trusts.lockedGet(sql, id: id), row.deletedAt == nil else {
                throw IdentityError.notFound(kind: "trust", id: id)
            }
            guard let remaining = row.remainingUses else { return }
            guard remaining > 0 else { throw IdentityError.forbidden("No remaining uses for trust: \(id).") }
            try await sql.update("trusts").set("remaining_uses", to: remaining - 1).where("id", .equal, id).run()
        }
    }

    /// The roles of a trust the trustor (of the original trust, for a redelegated one) still
    /// has on its project, with the roles they imply; nil when one of them is gone.
    func trustRoles(_ sql: any SQLDatabase, _ trust: TrustRow) async throws -> [RoleRow]? {
        let granted = try await IdentityTables.trustRoles.all(sql, where: [.equals("trust_id", trust.id)]).map(\.roleID)
        guard let project = trust.projectID else { return [] }
        var original = trust
        while let parent = original.redelegatedTrustID, let row = try await IdentityTables.trusts.get(sql, id: parent) { original = row }
        let held = try await effectiveRoleIDs(sql, userID: original.trustorUserID, targetType: "project", targetID: project)
        guard Set(granted).isSubset(of: held) else { return nil }
        let ids = try await expandImplied(sql, roleIDs: Set(granted))
        return try await IdentityTables.roles.all(sql, where: [.inList("id", Array(ids))], orderBy: "name").filter { $0.domainID.isEmpty }
    }

    /// Creates a trust of the caller (the trustor). With a trust-scoped caller this is a
    /// redelegation: it must be allowed, may not widen roles, expiry or impersonation, and
    /// counts one step down.
    public func createTrust(_ request: TrustRequest, caller: TokenInfo) async throws -> Trust {
        if request.projectID != nil && request.roles.isEmpty {
            throw IdentityError.forbidden("You are not authorized to perform the requested action: At least one role should be specified.")
        }
        if caller.user.id != request.trustorUserID {
            throw IdentityError.forbidden("You are not authorized to perform the requested action: The authenticated user should match the trustor.")
        }
        if let uses = request.remainingUses, uses <= 0 {
            throw IdentityError.badRequest("remaining_uses must be a positive integer or null.")
        }
        if request.allowRedelegation && request.remainingUses != nil {
            throw IdentityError.forbidden("remaining_uses must not be set if redelegation is allowed")
        }
        if let count = request.redelegationCount, count > Self.maxRedelegationCount || count < 0 {
            throw IdentityError.forbidden("Remaining redelegation depth of \(count) out of allowed range of [0..\(Self.maxRedelegationCount)].")
        }
        if let expiresAt = request.expiresAt, expiresAt <= Self.now() {
            throw IdentityError.badRequest("The expiration time of a trust must be in the future.")
        }
        return try await write { sql in
            guard try await IdentityTables.users.get(sql, id: request.trusteeUserID) != nil else {
                throw IdentityError.notFound(kind: "user", id: request.trusteeUserID)
            }
            var roles: [RoleRow] = []
            for reference in request.roles {
                switch reference {
                case .id(let id):
                    guard let role = try await IdentityTables.roles.get(sql, id: id) else { throw IdentityError.notFound(kind: "role", id: id) }
                    roles.append(role)
                case .name(let name):
                    guard let role = try await IdentityTables.roles.first(sql, where: [.equals("name", name), .equals("domain_id", "")]) else {
                        throw IdentityError.notFound(kind: "role", id: name)
                    }
                    roles.append(role)
                }
            }
            var parent: TrustRow?
            if let parentID = caller.payload.trustID {
                parent = try await self.usableTrust(sql, id: parentID)
            }
            var count = request.allowRedelegation ? (request.redelegationCount ?? Self.maxRedelegationCount) : 0
            var expiresAt = request.expiresAt
            if let parent {
                guard parent.allowRedelegation, parent.redelegationCount > 0 else {
                    throw IdentityError.forbidden("Requested redelegation depth of \(parent.redelegationCount) is greater than allowed \(max(0, parent.redelegationCount - 1))")
                }
                if request.impersonation && !parent.impersonation {
                    throw IdentityError.forbidden("Impersonation is not allowed because redelegated trust does not specify impersonation.")
                }
                let parentRoles = Set(try await IdentityTables.trustRoles.all(sql, where: [.equals("trust_id", parent.id)]).map(\.roleID))
                guard Set(roles.map(\.id)).isSubset(of: parentRoles), request.projectID == parent.projectID else {
                    throw IdentityError.forbidden("Some of requested roles are not in redelegated trust")
                }
                if let parentExpiry = parent.expiresAt {
                    if let asked = expiresAt, asked > parentExpiry {
                        throw IdentityError.forbidden("Requested expiration time is more than redelegated trust can provide")
                    }
                    expiresAt = expiresAt ?? parentExpiry
                }
                count = min(request.redelegationCount ?? parent.redelegationCount - 1, parent.redelegationCount - 1)
            }
            if let project = request.projectID {
                guard try await IdentityTables.projects.get(sql, id: project) != nil else {
                    throw IdentityError.notFound(kind: "project", id: project)
                }
                let trustor = parent.map { $0.trustorUserID } ?? request.trustorUserID
                let held = try await self.effectiveRoleIDs(sql, userID: trustor, targetType: "project", targetID: project)
                for role in roles where !held.contains(role.id) { throw IdentityError.notFound(kind: "role", id: role.id) }
            }
            let row = TrustRow(id: Self.newID(), trustorUserID: request.trustorUserID, trusteeUserID: request.trusteeUserID,
                               projectID: request.projectID, impersonation: request.impersonation, expiresAt: expiresAt,
                               remainingUses: request.remainingUses, allowRedelegation: request.allowRedelegation && count > 0,
                               redelegationCount: count, redelegatedTrustID: parent?.id, createdAt: Self.now())
            try await IdentityTables.trusts.insert(sql, row)
            for role in Set(roles.map(\.id)) { try await IdentityTables.trustRoles.insert(sql, .init(trustID: row.id, roleID: role)) }
            return Trust(row: row, roles: roles)
        }
    }

    /// A trust that exists and was not deleted (expired ones too: their owners may look at them).
    public func trust(_ id: String) async throws -> Trust {
        try await read { sql in
            guard let row = try await IdentityTables.trusts.get(sql, id: id), row.deletedAt == nil else {
                throw IdentityError.notFound(kind: "trust", id: id)
            }
            let ids = try await IdentityTables.trustRoles.all(sql, where: [.equals("trust_id", id)]).map(\.roleID)
            return Trust(row: row, roles: try await IdentityTables.roles.all(sql, where: [.inList("id", ids)], orderBy: "name"))
        }
    }

    public func trusts(trustorUserID: String? = nil, trusteeUserID: String? = nil) async throws -> [TrustRow] {
        try await read { sql in
            var conditions: [Table<TrustRow>.Condition] = [.isNull("deleted_at")]
            if let trustorUserID { conditions.append(.equals("trustor_user_id", trustorUserID)) }
            if let trusteeUserID { conditions.append(.equals("trustee_user_id", trusteeUserID)) }
            return try await IdentityTables.trusts.all(sql, where: conditions, orderBy: "created_at")
        }
    }

    /// Deletes a trust and the trusts redelegated from it; their tokens stop validating at once
    /// (every write invalidates the resolved tokens, and resolving needs the trust).
    public func deleteTrust(_ id: String) async throws {
        try await write { sql in
            guard let row = try await IdentityTables.trusts.get(sql, id: id), row.deletedAt == nil else {
                throw IdentityError.notFound(kind: "trust", id: id)
            }
            var pending = [row.id]
            let now = Self.now()
            while let next = pending.popLast() {
                try await sql.update("trusts").set("deleted_at", to: now).where("id", .equal, next).run()
                pending += try await IdentityTables.trusts.all(sql, where: [.equals("redelegated_trust_id", next), .isNull("deleted_at")]).map(\.id)
            }
        }
    }

    /// The ids of the roles a user has on a target (directly, through groups, implied).
    func effectiveRoleIDs(_ sql: any SQLDatabase, userID: String, targetType: String, targetID: String) async throws -> Set<String> {
        Set(try await effectiveRoles(sql, userID: userID, targetType: targetType, targetID: targetID).map(\.id))
    }
}
