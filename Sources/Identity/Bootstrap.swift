import Foundation
import SQLKit
import Store

/// `keystone-manage bootstrap` for Petrel: the Default domain, an admin project and user,
/// the roles admin ⇒ manager ⇒ member ⇒ reader (and service), the admin's role on its project and on the system, a
/// region, and the catalog entries of every API the controller serves. Re-running it is
/// safe and changes nothing that exists (an existing admin keeps its password).
public struct Bootstrap: Sendable {
    public var adminPassword: String
    public var adminUser = "admin"
    public var adminProject = "admin"
    public var region = "RegionOne"
    /// Base URL of the controller; endpoints are this plus each API's path.
    public var publicURL: String
    public var passwordCost = 12

    public init(adminPassword: String, publicURL: String) {
        self.adminPassword = adminPassword
        self.publicURL = publicURL
    }

    /// The APIs in the catalog: (type, name, path under the public URL).
    public static let catalog: [(type: String, name: String, path: String)] = [
        ("identity", "keystone", "/v3"),
        ("compute", "nova", "/compute/v2.1"),
        ("network", "neutron", "/networking"),
        // Cinder under both of the types clients look for.
        ("block-storage", "cinder", "/volume/v3"),
        ("volumev3", "cinderv3", "/volume/v3"),
        ("image", "glance", "/image"),
        ("placement", "placement", "/placement"),
    ]

    public static let defaultDomainID = "default"

    /// Runs the bootstrap; returns what it created (empty when everything existed).
    @discardableResult
    public func run(on database: Database) async throws -> [String] {
        let hash = await PasswordHasher.hash(adminPassword, cost: passwordCost)
        let options = self
        return try await database.transaction { sql in
            var created: [String] = []
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            func newID() -> String { UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "") }
            func inserted(_ query: SQLQueryString, _ what: String) async throws {
                // `RETURNING` is in both SQLite (3.35+) and PostgreSQL: a row back means it was new.
                if try await sql.raw(query).first() != nil { created.append(what) }
            }

            try await inserted("""
                INSERT INTO domains (id, name, description, created_at) VALUES (\(bind: Self.defaultDomainID), 'Default',
                'The default domain', \(bind: now)) ON CONFLICT DO NOTHING RETURNING id
                """, "domain Default")
            try await inserted("""
                INSERT INTO projects (id, name, domain_id, description, created_at) VALUES (\(bind: newID()),
                \(bind: options.adminProject), \(bind: Self.defaultDomainID), 'Bootstrap project', \(bind: now))
                ON CONFLICT DO NOTHING RETURNING id
                """, "project \(options.adminProject)")
            for role in ["admin", "manager", "member", "reader", "service"] {
                try await inserted("""
                    INSERT INTO roles (id, name, domain_id, created_at) VALUES (\(bind: newID()), \(bind: role), '', \(bind: now))
                    ON CONFLICT DO NOTHING RETURNING id
                    """, "role \(role)")
            }
            func roleID(_ name: String) async throws -> String {
                try await sql.raw("SELECT id FROM roles WHERE name = \(bind: name) AND domain_id = ''").first()!
                    .decode(column: "id", as: String.self)
            }
            let admin = try await roleID("admin"), manager = try await roleID("manager")
            let member = try await roleID("member"), reader = try await roleID("reader")
            // Keystone's chain since 2024.2: admin ⇒ manager ⇒ member ⇒ reader. A database
            // bootstrapped before keeps its admin ⇒ member as well, which changes nothing.
            for (prior, implied, label) in [(admin, manager, "admin implies manager"), (manager, member, "manager implies member"),
                                            (member, reader, "member implies reader")] {
                try await inserted("""
                    INSERT INTO implied_roles (prior_role_id, implied_role_id) VALUES (\(bind: prior), \(bind: implied))
                    ON CONFLICT DO NOTHING RETURNING prior_role_id
                    """, label)
            }
            try await inserted("""
                INSERT INTO users (id, name, domain_id, password_hash, password_changed_at, created_at)
                VALUES (\(bind: newID()), \(bind: options.adminUser), \(bind: Self.defaultDomainID), \(bind: hash), \(bind: now), \(bind: now))
                ON CONFLICT DO NOTHING RETURNING id
                """, "user \(options.adminUser)")
            let userID = try await sql.raw("""
                SELECT id FROM users WHERE name = \(bind: options.adminUser) AND domain_id = \(bind: Self.defaultDomainID)
                """).first()!.decode(column: "id", as: String.self)
            let projectID = try await sql.raw("""
                SELECT id FROM projects WHERE name = \(bind: options.adminProject) AND domain_id = \(bind: Self.defaultDomainID)
                """).first()!.decode(column: "id", as: String.self)
            for (targetType, targetID) in [("project", projectID), ("system", "all")] {
                try await inserted("""
                    INSERT INTO role_assignments (actor_type, actor_id, target_type, target_id, role_id)
                    VALUES ('user', \(bind: userID), \(bind: targetType), \(bind: targetID), \(bind: admin))
                    ON CONFLICT DO NOTHING RETURNING role_id
                    """, "admin role on \(targetType)")
            }
            try await inserted("""
                INSERT INTO regions (id, description, created_at) VALUES (\(bind: options.region), '', \(bind: now))
                ON CONFLICT DO NOTHING RETURNING id
                """, "region \(options.region)")
            for api in Self.catalog {
                var serviceID = try await sql.raw("SELECT id FROM catalog_services WHERE type = \(bind: api.type)").first()?
                    .decode(column: "id", as: String.self)
                if serviceID == nil {
                    let id = newID()
                    try await sql.raw("""
                        INSERT INTO catalog_services (id, type, name, created_at) VALUES (\(bind: id), \(bind: api.type),
                        \(bind: api.name), \(bind: now))
                        """).run()
                    serviceID = id
                    created.append("service \(api.type)")
                }
                for interface in ["public", "internal", "admin"] {
                    let exists = try await sql.raw("""
                        SELECT id FROM endpoints WHERE service_id = \(bind: serviceID!) AND interface = \(bind: interface)
                        AND region_id = \(bind: options.region)
                        """).first()
                    guard exists == nil else { continue }
                    try await sql.raw("""
                        INSERT INTO endpoints (id, service_id, interface, url, region_id, created_at) VALUES (\(bind: newID()),
                        \(bind: serviceID!), \(bind: interface), \(bind: options.publicURL + api.path), \(bind: options.region), \(bind: now))
                        """).run()
                    created.append("\(interface) endpoint of \(api.type)")
                }
            }
            return created
        }
    }
}
