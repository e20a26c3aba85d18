import Foundation
import SQLKit
import Store

public typealias AccessRule = AccessRuleRow

/// Application-credential access rules: the calls (service type, path pattern, method) a
/// credential may make. Rules belong to the user; credentials share them.
extension IdentityService {
    public enum AccessRuleRequest: Sendable {
        /// An existing rule of the user.
        case id(String)
        case rule(service: String, path: String, method: String)
    }

    /// The rules `requests` name, made where new, inside the caller's transaction.
    func resolveAccessRules(_ requests: [AccessRuleRequest], userID: String, _ sql: any SQLDatabase) async throws -> [AccessRuleRow] {
        var rules: [AccessRuleRow] = []
        for request in requests {
            switch request {
            case .id(let id):
                guard let row = try await IdentityTables.accessRules.get(sql, id: id), row.userID == userID else {
                    throw IdentityError.notFound(kind: "access rule", id: id)
                }
                rules.append(row)
            case .rule(let service, let path, let method):
                if let row = try await IdentityTables.accessRules.first(sql, where: [
                    .equals("user_id", userID), .equals("service", service), .equals("path", path), .equals("method", method)]) {
                    rules.append(row)
                } else {
                    let row = AccessRuleRow(id: Self.newID(), userID: userID, service: service, path: path, method: method,
                                            createdAt: Self.now())
                    try await IdentityTables.accessRules.insert(sql, row)
                    rules.append(row)
                }
            }
        }
        return rules
    }

    func accessRules(ofCredential id: String, _ sql: any SQLDatabase) async throws -> [AccessRuleRow] {
        let ids = try await IdentityTables.applicationCredentialAccessRules.all(sql, where: [.equals("application_credential_id", id)])
            .map(\.accessRuleID)
        return try await IdentityTables.accessRules.all(sql, where: [.inList("id", ids)], orderBy: "created_at")
    }

    public func applicationCredentialAccessRules(_ id: String) async throws -> [AccessRule] {
        try await read { sql in try await self.accessRules(ofCredential: id, sql) }
    }

    public func accessRules(userID: String) async throws -> [AccessRule] {
        try await read { sql in try await IdentityTables.accessRules.all(sql, where: [.equals("user_id", userID)], orderBy: "created_at") }
    }

    public func accessRule(userID: String, id: String) async throws -> AccessRule {
        guard let row = try await read({ sql in try await IdentityTables.accessRules.get(sql, id: id) }), row.userID == userID else {
            throw IdentityError.notFound(kind: "access rule", id: id)
        }
        return row
    }

    /// Deletes a rule no application credential uses.
    public func deleteAccessRule(userID: String, id: String) async throws {
        try await write { sql in
            guard let row = try await IdentityTables.accessRules.get(sql, id: id), row.userID == userID else {
                throw IdentityError.notFound(kind: "access rule", id: id)
            }
            if try await IdentityTables.applicationCredentialAccessRules.first(sql, where: [.equals("access_rule_id", id)]) != nil {
                throw IdentityError.forbidden("Cannot delete access rule \(id): it is used by an application credential.")
            }
            try await IdentityTables.accessRules.delete(sql, where: [.equals("id", id)])
        }
    }
}
