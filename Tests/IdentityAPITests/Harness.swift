import Foundation
@testable import Identity
import Logging
import PetrelCore
import Store
import TestSupport

/// A freshly bootstrapped cloud on a throw-away SQLite database (admin / admin-pw on project
/// admin, bcrypt cost 4) with its identity service, removed afterwards.
func withBootstrappedIdentity(_ body: @Sendable (Database, IdentityService) async throws -> Void) async throws {
    let (url, drop) = try await TestDatabase.sqlite.makeDatabase()
    let logger = Logger(label: "api-test")
    let database = try Database(url, logger: logger)
    let keys = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-keys-\(UUID().uuidString)").path
    try await withCleanup {
        try await Migrator().migrate(database)
        var bootstrap = Bootstrap(adminPassword: "admin-pw", publicURL: "http://controller:5000")
        bootstrap.passwordCost = 4
        try await bootstrap.run(on: database)
        try FernetKeyRepository(directory: keys).setup()
        var options = IdentityOptions(keyRepository: keys)
        options.passwordCost = 4
        try await body(database, try IdentityService(database: database, options: options, logger: logger))
    } cleanup: {
        await database.shutdown()
        await drop()
        try? FileManager.default.removeItem(atPath: keys)
    }
}

/// A project-scoped token of the bootstrap admin.
func adminToken(_ service: IdentityService) async throws -> String {
    try await service.issue(AuthRequest(method: .password(.name("admin", domain: .id("default")), password: "admin-pw"),
                                        scope: .project(.name("admin", domain: .id("default"))))).token
}
