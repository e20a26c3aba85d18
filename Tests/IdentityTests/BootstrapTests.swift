import Foundation
@testable import Identity
import Logging
import PetrelCore
import SQLKit
import Store
import TestSupport
import Testing

@Suite struct BootstrapTests {
    func counts(_ database: Database) async throws -> [String: Int] {
        var result: [String: Int] = [:]
        for table in ["domains", "projects", "users", "roles", "implied_roles", "role_assignments", "regions",
                      "catalog_services", "endpoints"] {
            result[table] = try await database.withConnection { sql in
                try await sql.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: table)").first()!.decode(column: "n", as: Int.self)
            }
        }
        return result
    }

    @Test(arguments: TestDatabase.allCases)
    func bootstrapCreatesTheCloudOnceAndIsSafeToRepeat(backend: TestDatabase) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let database = try Database(url, logger: Logger(label: "bootstrap-test"))
        try await withCleanup {
            try await Migrator().migrate(database)
            var bootstrap = Bootstrap(adminPassword: "s3cret", publicURL: "http://controller:5000")
            bootstrap.passwordCost = 4
            let created = try await bootstrap.run(on: database)
            #expect(created.contains("user admin") && created.contains("role reader") && created.contains("admin role on system"))
            let first = try await counts(database)
            #expect(first == ["domains": 1, "projects": 1, "users": 1, "roles": 5, "implied_roles": 3, "role_assignments": 2,
                              "regions": 1, "catalog_services": 7, "endpoints": 21])
            // identity, compute, network, image, placement, and the volume API under both of its types; 3 interfaces each.
            #expect(Set(Bootstrap.catalog.map(\.type)) == ["identity", "compute", "network", "block-storage", "volumev3", "image", "placement"])

            // Again, with another password: nothing changes, the admin keeps its password.
            bootstrap.adminPassword = "other"
            #expect(try await bootstrap.run(on: database).isEmpty)
            #expect(try await counts(database) == first)
            let hash = try await database.withConnection { sql in
                try await sql.raw("SELECT password_hash FROM users WHERE name = 'admin'").first()!.decode(column: "password_hash", as: String.self)
            }
            #expect(await PasswordHasher.verify("s3cret", against: hash))
            let url = try await database.withConnection { sql in
                try await sql.raw("SELECT url FROM endpoints WHERE interface = 'public'").first()!.decode(column: "url", as: String.self)
            }
            #expect(url == "http://controller:5000/v3")
            let implied = try await database.withConnection { sql in
                try await sql.raw("""
                    SELECT p.name AS prior, i.name AS implied FROM implied_roles r
                    JOIN roles p ON p.id = r.prior_role_id JOIN roles i ON i.id = r.implied_role_id ORDER BY p.name
                    """).all().map { "\(try $0.decode(column: "prior", as: String.self))⇒\(try $0.decode(column: "implied", as: String.self))" }
            }
            #expect(implied == ["admin⇒manager", "manager⇒member", "member⇒reader"])
        } cleanup: {
            await database.shutdown()
            await drop()
        }
    }
}
