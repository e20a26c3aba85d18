import Foundation
@testable import Identity
import Logging
import PetrelCore
import Store
import TestSupport

/// A freshly bootstrapped cloud on a throw-away SQLite database (admin / admin-pw on project
/// admin, bcrypt cost 4) with its identity service, removed afterwards.
func withBootstrappedIdentity(_ backend: TestDatabase = .sqlite, tokenExpiration: TimeInterval = 3600,
                              _ body: @Sendable (Database, IdentityService) async throws -> Void) async throws {
    let (url, drop) = try await backend.makeDatabase()
    let logger = Logger(label: "api-test")
    let database = try Database(url, logger: logger)
    let keys = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-keys-\(UUID().uuidString)").path
    try await withCleanup {
        try await Migrator().migrate(database)
        var bootstrap = Bootstrap(adminPassword: "admin-pw", publicURL: "http://controller:5000")
        bootstrap.passwordCost = 4
        try await bootstrap.run(on: database)
        try FernetKeyRepository(directory: keys).setup()
        try FernetKeyRepository(directory: keys + "-credentials").setup()
        var options = IdentityOptions(keyRepository: keys)
        options.credentialKeyRepository = keys + "-credentials"
        options.tokenExpiration = tokenExpiration
        options.passwordCost = 4
        options.maxPasswordLength = 100  // small enough to test under the harness's body limit
        try await body(database, try IdentityService(database: database, options: options, logger: logger))
    } cleanup: {
        await database.shutdown()
        await drop()
        try? FileManager.default.removeItem(atPath: keys)
        try? FileManager.default.removeItem(atPath: keys + "-credentials")
    }
}

/// A project-scoped token of the bootstrap admin.
func adminToken(_ service: IdentityService) async throws -> String {
    try await service.issue(AuthRequest(method: .password(.name("admin", domain: .id("default")), password: "admin-pw"),
                                        scope: .project(.name("admin", domain: .id("default"))))).token
}

/// A new project with a user holding `role` on it; returns the project's id and the user's
/// token scoped to it.
func addProjectUser(_ service: IdentityService, project name: String, user: String, role: String = "member") async throws -> (project: String, token: String) {
    let (projectID, userID, roleID) = try await service.write { sql in
        let project = ProjectRow(id: IdentityService.makeID(), name: name, domainID: "default", createdAt: IdentityService.timestamp())
        try await IdentityTables.projects.insert(sql, project)
        let row = UserRow(id: IdentityService.makeID(), name: user, domainID: "default",
                          passwordHash: await PasswordHasher.hash("pw", cost: 4), createdAt: IdentityService.timestamp())
        try await IdentityTables.users.insert(sql, row)
        let role = try await IdentityTables.roles.first(sql, where: [.equals("name", role)])!.id
        return (project.id, row.id, role)
    }
    try await service.write { sql in
        try await IdentityTables.assignments.insert(sql, AssignmentRow(actorType: "user", actorID: userID, targetType: "project",
                                                                       targetID: projectID, roleID: roleID))
    }
    let token = try await service.issue(AuthRequest(method: .password(.id(userID), password: "pw"), scope: .project(.id(projectID)))).token
    return (projectID, token)
}
