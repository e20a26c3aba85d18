import Foundation
import PostgresKit
import SQLKit

// The identity tables' rows (migrations 2 and 3) and the queries on them. Column names are
// the snake_case of the property names, with `ID` as one word (`domainID` → `domain_id`).

public struct DomainRow: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String
    public var enabled: Bool
    public var createdAt: Int64

    public init(id: String, name: String, description: String = "", enabled: Bool = true, createdAt: Int64) {
        self.id = id; self.name = name; self.description = description; self.enabled = enabled; self.createdAt = createdAt
    }
}

public struct ProjectRow: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var domainID: String
    public var parentID: String?
    public var description: String
    public var enabled: Bool
    public var createdAt: Int64

    public init(id: String, name: String, domainID: String, parentID: String? = nil, description: String = "",
                enabled: Bool = true, createdAt: Int64) {
        self.id = id; self.name = name; self.domainID = domainID; self.parentID = parentID
        self.description = description; self.enabled = enabled; self.createdAt = createdAt
    }
}

public struct UserRow: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var domainID: String
    public var passwordHash: String?
    public var enabled: Bool
    public var defaultProjectID: String?
    public var description: String
    public var email: String?
    /// Other attributes a client set, as a JSON object.
    public var extra: String
    public var failedAuthCount: Int
    public var lastFailedAuthAt: Int64?
    public var passwordChangedAt: Int64?
    /// Unix milliseconds after which the password no longer authenticates; nil: never.
    public var passwordExpiresAt: Int64?
    /// Keystone's resource options (`lock_password`, `multi_factor_auth_rules`, …), as a JSON object.
    public var options: String
    public var createdAt: Int64

    public init(id: String, name: String, domainID: String, passwordHash: String? = nil, enabled: Bool = true,
                defaultProjectID: String? = nil, description: String = "", email: String? = nil, extra: String = "{}",
                createdAt: Int64) {
        self.id = id; self.name = name; self.domainID = domainID; self.passwordHash = passwordHash
        self.enabled = enabled; self.defaultProjectID = defaultProjectID; self.description = description
        self.email = email; self.extra = extra; self.failedAuthCount = 0; self.lastFailedAuthAt = nil
        self.passwordChangedAt = passwordHash == nil ? nil : createdAt; self.passwordExpiresAt = nil; self.options = "{}"
        self.createdAt = createdAt
    }
}

public struct GroupRow: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var domainID: String
    public var description: String
    public var createdAt: Int64

    public init(id: String, name: String, domainID: String, description: String = "", createdAt: Int64) {
        self.id = id; self.name = name; self.domainID = domainID; self.description = description; self.createdAt = createdAt
    }
}

public struct RoleRow: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    /// "" for a global role.
    public var domainID: String
    public var description: String
    public var createdAt: Int64

    public init(id: String, name: String, domainID: String = "", description: String = "", createdAt: Int64) {
        self.id = id; self.name = name; self.domainID = domainID; self.description = description; self.createdAt = createdAt
    }
}

public struct ImpliedRoleRow: Codable, Sendable, Equatable, Hashable {
    public var priorRoleID: String
    public var impliedRoleID: String

    public init(priorRoleID: String, impliedRoleID: String) {
        self.priorRoleID = priorRoleID; self.impliedRoleID = impliedRoleID
    }
}

public struct AssignmentRow: Codable, Sendable, Equatable, Hashable {
    /// "user" or "group".
    public var actorType: String
    public var actorID: String
    /// "project", "domain" or "system" (then `targetID` is "all").
    public var targetType: String
    public var targetID: String
    public var roleID: String
    public var inherited: Bool

    public init(actorType: String, actorID: String, targetType: String, targetID: String, roleID: String, inherited: Bool = false) {
        self.actorType = actorType; self.actorID = actorID; self.targetType = targetType; self.targetID = targetID
        self.roleID = roleID; self.inherited = inherited
    }
}

public struct GroupMemberRow: Codable, Sendable, Equatable {
    public var groupID: String
    public var userID: String

    public init(groupID: String, userID: String) { self.groupID = groupID; self.userID = userID }
}

public struct RegionRow: Codable, Sendable, Equatable {
    public var id: String
    public var description: String
    public var parentRegionID: String?
    public var createdAt: Int64

    public init(id: String, description: String = "", parentRegionID: String? = nil, createdAt: Int64) {
        self.id = id; self.description = description; self.parentRegionID = parentRegionID; self.createdAt = createdAt
    }
}

public struct CatalogServiceRow: Codable, Sendable, Equatable {
    public var id: String
    public var type: String
    public var name: String
    public var description: String
    public var enabled: Bool
    public var createdAt: Int64

    public init(id: String, type: String, name: String = "", description: String = "", enabled: Bool = true, createdAt: Int64) {
        self.id = id; self.type = type; self.name = name; self.description = description; self.enabled = enabled
        self.createdAt = createdAt
    }
}

public struct EndpointRow: Codable, Sendable, Equatable {
    public var id: String
    public var serviceID: String
    public var interface: String
    public var url: String
    public var regionID: String?
    public var enabled: Bool
    public var createdAt: Int64

    public init(id: String, serviceID: String, interface: String, url: String, regionID: String?, enabled: Bool = true,
                createdAt: Int64) {
        self.id = id; self.serviceID = serviceID; self.interface = interface; self.url = url; self.regionID = regionID
        self.enabled = enabled; self.createdAt = createdAt
    }
}

public struct ApplicationCredentialRow: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var userID: String
    public var projectID: String
    public var secretHash: String
    public var description: String
    /// Unix milliseconds, or nil for never.
    public var expiresAt: Int64?
    public var unrestricted: Bool
    public var createdAt: Int64

    public init(id: String, name: String, userID: String, projectID: String, secretHash: String, description: String,
                expiresAt: Int64?, unrestricted: Bool, createdAt: Int64) {
        self.id = id; self.name = name; self.userID = userID; self.projectID = projectID; self.secretHash = secretHash
        self.description = description; self.expiresAt = expiresAt; self.unrestricted = unrestricted; self.createdAt = createdAt
    }
}

public struct ApplicationCredentialRoleRow: Codable, Sendable, Equatable {
    public var applicationCredentialID: String
    public var roleID: String

    public init(applicationCredentialID: String, roleID: String) {
        self.applicationCredentialID = applicationCredentialID; self.roleID = roleID
    }
}

/// A token revocation: every token whose fields match all the non-nil fields here and that
/// was issued at or before `issuedBefore` (Unix milliseconds) is revoked.
public struct RevocationEventRow: Codable, Sendable, Equatable {
    public var id: String
    public var userID: String?
    public var projectID: String?
    public var domainID: String?
    public var auditID: String?
    public var applicationCredentialID: String?
    public var issuedBefore: Int64
    public var createdAt: Int64

    public init(id: String = UUID().uuidString.lowercased(), userID: String? = nil, projectID: String? = nil,
                domainID: String? = nil, auditID: String? = nil, applicationCredentialID: String? = nil,
                issuedBefore: Int64, createdAt: Int64) {
        self.id = id; self.userID = userID; self.projectID = projectID; self.domainID = domainID; self.auditID = auditID
        self.applicationCredentialID = applicationCredentialID; self.issuedBefore = issuedBefore; self.createdAt = createdAt
    }
}

/// A write that would break a uniqueness rule (a duplicate name, an existing grant).
public struct DuplicateRowError: Error, CustomStringConvertible {
    public let table: String
    public var description: String { "duplicate row in \(table)" }
}

/// JSON text columns (metadata, properties, tags, extra specs): decoded leniently (a
/// malformed value reads as `fallback`), encoded with sorted keys.
public enum JSONColumn {
    public static func decode<T: Decodable>(_ text: String, as type: T.Type = T.self, fallback: T) -> T {
        (try? JSONDecoder().decode(T.self, from: Data(text.utf8))) ?? fallback
    }

    public static func encode<T: Encodable>(_ value: T, fallback: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? fallback
    }
}

/// One table of rows of type `Row`, with the queries every identity resource needs. Each
/// query runs on the connection (or transaction) it is given.
public struct Table<Row: Codable & Sendable>: Sendable {
    public let name: String

    public init(_ name: String) { self.name = name }

    /// A condition on a column: equal to a value, or NULL.
    public enum Condition: Sendable {
        case equals(String, any Encodable & Sendable)
        case isNull(String)
        case inList(String, [String])
        case atLeast(String, Int64)
    }

    /// `builder` narrowed to the rows matching every condition; nil when none can match (an
    /// empty `inList`).
    private func filtered<B: SQLPredicateBuilder>(_ builder: B, _ conditions: [Condition]) -> B? {
        var builder = builder
        for condition in conditions {
            switch condition {
            case .equals(let column, let value): builder = builder.where(SQLIdentifier(column), .equal, SQLBind(value))
            case .isNull(let column): builder = builder.where(SQLIdentifier(column), .is, SQLLiteral.null)
            case .inList(let column, let values):
                if values.isEmpty { return nil }
                builder = builder.where(SQLIdentifier(column), .in, SQLGroupExpression(values.map { SQLBind($0) }))
            case .atLeast(let column, let value): builder = builder.where(SQLIdentifier(column), .greaterThanOrEqual, SQLBind(value))
            }
        }
        return builder
    }

    public func all(_ sql: any SQLDatabase, where conditions: [Condition] = [], orderBy: String? = nil, limit: Int? = nil) async throws -> [Row] {
        guard var query = filtered(sql.select().column("*").from(name), conditions) else { return [] }
        if let orderBy { query = query.orderBy(orderBy) }
        if let limit { query = query.limit(limit) }
        return try await query.all(decoding: Row.self, with: Columns.decoder)
    }

    /// The rows a hand-written condition selects, in `order`, at most `limit` of them.
    public func all(_ sql: any SQLDatabase, where condition: SQLQueryString, orderBy order: SQLQueryString? = nil,
                    limit: Int? = nil) async throws -> [Row] {
        var statement: SQLQueryString = "SELECT * FROM \(ident: name) WHERE " + condition
        if let order { statement += " ORDER BY " + order }
        if let limit { statement += " LIMIT \(literal: limit)" }
        return try await sql.raw(statement).all(decoding: Row.self, with: Columns.decoder)
    }

    public func first(_ sql: any SQLDatabase, where conditions: [Condition]) async throws -> Row? {
        try await all(sql, where: conditions, limit: 1).first
    }

    public func get(_ sql: any SQLDatabase, id: String) async throws -> Row? {
        try await first(sql, where: [.equals("id", id)])
    }

    /// The row with this `id`, locked until the caller's transaction ends (`FOR UPDATE` on
    /// PostgreSQL; SQLite has one writer at a time anyway): read-modify-write without lost updates.
    public func lockedGet(_ sql: any SQLDatabase, id: String) async throws -> Row? {
        try await sql.select().column("*").from(name).where(SQLIdentifier("id"), .equal, SQLBind(id)).for(.update).limit(1)
            .all(decoding: Row.self, with: Columns.decoder).first
    }

    /// Inserts a row; a uniqueness violation throws `DuplicateRowError`.
    public func insert(_ sql: any SQLDatabase, _ row: Row) async throws {
        try await Columns.mapDuplicate(name) {
            try await sql.insert(into: name).model(row, with: Columns.encoder).run()
        }
    }

    /// Replaces every column of the row with this `id`.
    public func update(_ sql: any SQLDatabase, id: String, _ row: Row) async throws {
        try await update(sql, whereColumn: "id", equals: id, row)
    }

    /// Replaces every column of the row whose `column` equals `value` (for non-text keys).
    public func update(_ sql: any SQLDatabase, whereColumn column: String, equals value: any Encodable & Sendable, _ row: Row) async throws {
        try await Columns.mapDuplicate(name) {
            try await sql.update(name).set(model: row, with: Columns.encoder).where(SQLIdentifier(column), .equal, SQLBind(value)).run()
        }
    }

    /// Deletes the rows matching every condition (one statement); returns how many there were.
    @discardableResult
    public func delete(_ sql: any SQLDatabase, where conditions: [Condition]) async throws -> Int {
        guard let query = filtered(sql.delete(from: name), conditions) else { return 0 }
        // RETURNING is in both SQLite (3.35+) and PostgreSQL.
        return try await query.returning(SQLLiteral.all).all().count
    }

    /// The next integer id (`MAX(id) + 1`) of a table with integer ids, read in the caller's
    /// transaction. Two controllers may read the same one: the insert that loses gets a
    /// `DuplicateRowError` and may try again.
    public func nextIntegerID(_ sql: any SQLDatabase) async throws -> Int {
        try await sql.raw("SELECT COALESCE(MAX(id), 0) + 1 AS next FROM \(ident: name)").first()!.decode(column: "next", as: Int.self)
    }
}

/// The identity tables.
public enum IdentityTables {
    public static let domains = Table<DomainRow>("domains")
    public static let projects = Table<ProjectRow>("projects")
    public static let users = Table<UserRow>("users")
    public static let groups = Table<GroupRow>("groups")
    public static let groupMembers = Table<GroupMemberRow>("group_members")
    public static let roles = Table<RoleRow>("roles")
    public static let impliedRoles = Table<ImpliedRoleRow>("implied_roles")
    public static let assignments = Table<AssignmentRow>("role_assignments")
    public static let regions = Table<RegionRow>("regions")
    public static let services = Table<CatalogServiceRow>("catalog_services")
    public static let endpoints = Table<EndpointRow>("endpoints")
    public static let applicationCredentials = Table<ApplicationCredentialRow>("application_credentials")
    public static let applicationCredentialRoles = Table<ApplicationCredentialRoleRow>("application_credential_roles")
    public static let revocationEvents = Table<RevocationEventRow>("revocation_events")
}

enum Columns {
    /// `domainID` → `domain_id`, `lastFailedAuthAt` → `last_failed_auth_at`.
    static func column(_ property: String) -> String {
        var out = ""
        var previousWasLower = false
        for character in property {
            if character.isUppercase && previousWasLower { out.append("_") }
            out.append(contentsOf: character.lowercased())
            previousWasLower = character.isLowercase || character.isNumber
        }
        return out
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static let decoder = SQLRowDecoder(keyDecodingStrategy: .custom({ path in Key(column(path.last!.stringValue)) }))
    static let encoder = SQLQueryEncoder(keyEncodingStrategy: .custom({ path in Key(column(path.last!.stringValue)) }),
                                         nilEncodingStrategy: .asNil)

    static func mapDuplicate(_ table: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch where DatabaseError.isUniqueViolation(error) {
            throw DuplicateRowError(table: table)
        }
    }
}
