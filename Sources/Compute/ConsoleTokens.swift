import Contracts
import Crypto
import Foundation
import SQLKit
import Store

/// What a console token opens (Nova's `ConsoleAuthToken`): an instance's VNC or serial listener
/// on its host, for `token_ttl` seconds, for one connection.
public struct ConsoleToken: Sendable, Equatable {
    /// `novnc` or `serial`.
    public var consoleType: String
    public var instanceID: String
    /// The compute host (the node) the instance ran on when the token was made.
    public var computeHost: String
    /// The address and port the proxy connects to.
    public var host: String
    public var port: Int
    public var internalAccessPath: String?
    public var expiresAt: Int64

    public init(consoleType: String, instanceID: String, computeHost: String, host: String, port: Int, internalAccessPath: String? = nil,
                expiresAt: Int64 = 0) {
        self.consoleType = consoleType; self.instanceID = instanceID; self.computeHost = computeHost
        self.host = host; self.port = port; self.internalAccessPath = internalAccessPath; self.expiresAt = expiresAt
    }
}

/// The console tokens, in the database so that any controller's proxy can take them. Only a
/// token's SHA-256 is stored: the token itself is in the URL handed to the user and nowhere else.
public struct ConsoleTokens: Sendable {
    let database: Database
    /// Seconds a token lives (`[consoleauth] token_ttl`).
    public let ttl: Int

    public init(database: Database, ttl: Int) {
        self.database = database
        self.ttl = ttl
    }

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// A new token for `console`; answers the token. Expired tokens go on the way.
    public func issue(_ console: ConsoleToken, accessURLBase: String) async throws -> String {
        // 128 random bits, as a UUID's text (Nova's tokens look the same).
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let token = bytes.map { String(format: "%02x", $0) }.joined()
        let hash = Self.hash(token)
        let now = Self.now()
        let expires = now + Int64(ttl) * 1000
        try await database.transaction { sql in
            try await sql.raw("DELETE FROM console_auth_tokens WHERE expires_at <= \(bind: now)").run()
            try await sql.raw("""
                INSERT INTO console_auth_tokens (token_hash, instance_uuid, console_type, compute_host, host, port,
                    internal_access_path, access_url_base, expires_at, created_at)
                VALUES (\(bind: hash), \(bind: console.instanceID), \(bind: console.consoleType), \(bind: console.computeHost),
                    \(bind: console.host), \(bind: console.port), \(bind: console.internalAccessPath), \(bind: accessURLBase),
                    \(bind: expires), \(bind: now))
                """).run()
        }
        return token
    }

    /// The token's console while it is valid, leaving it valid (the admin API's view).
    public func show(_ token: String) async throws -> ConsoleToken? {
        let hash = Self.hash(token)
        let now = Self.now()
        let rows = try await database.withConnection { sql in
            try await sql.raw("""
                SELECT instance_uuid, console_type, compute_host, host, port, internal_access_path, expires_at
                FROM console_auth_tokens WHERE token_hash = \(bind: hash) AND expires_at > \(bind: now)
                """).all()
        }
        return try rows.first.map(Self.decode)
    }

    /// Takes the token: it is valid once, so the row goes in the same statement that reads it
    /// (two proxies racing for one token cannot both get it). Nil when the token is unknown,
    /// taken, expired, or its instance is no longer active on that host.
    public func take(_ token: String) async throws -> ConsoleToken? {
        let hash = Self.hash(token)
        let now = Self.now()
        return try await database.transaction { sql -> ConsoleToken? in
            let rows = try await sql.raw("""
                DELETE FROM console_auth_tokens WHERE token_hash = \(bind: hash)
                RETURNING instance_uuid, console_type, compute_host, host, port, internal_access_path, expires_at
                """).all()
            guard let row = rows.first else { return nil }
            let console = try Self.decode(row)
            guard console.expiresAt > now else { return nil }
            let instances = try await sql.raw("""
                SELECT id FROM instances WHERE id = \(bind: console.instanceID) AND host = \(bind: console.computeHost)
                    AND vm_state = \(bind: VMState.active.rawValue)
                """).all()
            return instances.isEmpty ? nil : console
        }
    }

    /// Removes every token of an instance (its console moved or is gone).
    public func revoke(instanceID: String) async throws {
        try await database.withConnection { sql in
            try await sql.raw("DELETE FROM console_auth_tokens WHERE instance_uuid = \(bind: instanceID)").run()
        }
    }

    static func decode(_ row: any SQLRow) throws -> ConsoleToken {
        ConsoleToken(consoleType: try row.decode(column: "console_type", as: String.self),
                     instanceID: try row.decode(column: "instance_uuid", as: String.self),
                     computeHost: try row.decode(column: "compute_host", as: String.self),
                     host: try row.decode(column: "host", as: String.self),
                     port: try row.decode(column: "port", as: Int.self),
                     internalAccessPath: try row.decode(column: "internal_access_path", as: String?.self),
                     expiresAt: try row.decode(column: "expires_at", as: Int64.self))
    }

    /// The URL a user opens, as Nova makes it: noVNC's page gets the WebSocket's path (with the
    /// token) in its `path` parameter; other consoles get `?token=` on their base URL.
    public static func accessURL(base: String, consoleType: String, token: String) -> String {
        guard consoleType == "novnc" else {
            return base + (base.contains("?") ? "&" : "?") + "token=" + token
        }
        guard var components = URLComponents(string: base) else { return base + "?path=%3Ftoken%3D" + token }
        var items = components.queryItems ?? []
        let path = items.first { $0.name == "path" }?.value ?? ""
        items.removeAll { $0.name == "path" }
        items.append(URLQueryItem(name: "path", value: path + "?token=" + token))
        // Encoded as Python's urlencode does: '?' and '=' inside the value are escaped too.
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        components.percentEncodedQuery = items.map { item in
            "\(item.name.addingPercentEncoding(withAllowedCharacters: allowed) ?? item.name)="
                + (item.value ?? "").addingPercentEncoding(withAllowedCharacters: allowed)!
        }.joined(separator: "&")
        return components.string ?? base
    }
}

extension Conductor {
    /// Where the instance's console listens on its host (the node reads its live domain).
    public func consoleConnection(_ id: String, on host: String, kind: ConsoleConnection.Kind, context: RequestContext) async throws
        -> ConsoleConnection.Result {
        try await client.call(ConsoleConnection.self, .init(instanceID: id, kind: kind), topic: Self.topic(host), context: context,
                              timeout: .seconds(30))
    }
}
