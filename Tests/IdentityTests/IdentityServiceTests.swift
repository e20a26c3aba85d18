import CryptDriver
import Foundation
@testable import Identity
import Logging
import PetrelCore
import Store
import TestSupport
import Testing

/// The identity service on a real database: tokens, revocation across restarts and
/// controllers, the cache that keeps validation off the database, lockout.
@Suite struct IdentityServiceTests {
    struct Cloud: Sendable {
        let url: DatabaseURL
        let database: Database
        let keys: String
        let adminProject: String

        func service(_ lockout: LockoutPolicy = LockoutPolicy(failureAttempts: 0, duration: 1), database: Database? = nil) throws
            -> IdentityService {
            var options = IdentityOptions(keyRepository: keys)
            options.passwordCost = 4
            options.lockout = lockout
            return try IdentityService(database: database ?? self.database, options: options, logger: Logger(label: "identity-test"))
        }
    }

    func withCloud(_ backend: TestDatabase, _ body: @Sendable (Cloud) async throws -> Void) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let database = try Database(url, logger: Logger(label: "identity-test"))
        let keys = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-keys-\(UUID().uuidString)").path
        try await withCleanup {
            try await Migrator().migrate(database)
            var bootstrap = Bootstrap(adminPassword: "admin-pw", publicURL: "http://controller:5000")
            bootstrap.passwordCost = 4
            try await bootstrap.run(on: database)
            try FernetKeyRepository(directory: keys).setup()
            let project = try await database.withConnection { sql in
                try await IdentityTables.projects.first(sql, where: [.equals("name", "admin")])!.id
            }
            try await body(Cloud(url: url, database: database, keys: keys, adminProject: project))
        } cleanup: {
            await database.shutdown()
            await drop()
            try? FileManager.default.removeItem(atPath: keys)
        }
    }

    let admin = UserReference.name("admin", domain: .id("default"))

    func login(_ service: IdentityService, _ password: String = "admin-pw", scope: AuthRequest.ScopeRequest? = nil) async throws -> String {
        try await service.issue(AuthRequest(method: .password(admin, password: password),
                                            scope: scope ?? .project(.name("admin", domain: .name("Default"))))).token
    }

    @Test(arguments: TestDatabase.allCases)
    func revocationSurvivesRestartsAndReachesOtherControllers(backend: TestDatabase) async throws {
        try await withCloud(backend) { cloud in
            let first = try cloud.service(), second = try cloud.service()
            let token = try await login(first)
            let info = try await second.validate(token)
            #expect(info.project?.id == cloud.adminProject && info.user.name == "admin")
            #expect(Set(info.roles.map(\.name)) == ["admin", "manager", "member", "reader"], "admin implies manager implies member implies reader")
            try await first.revoke(token: token)
            await #expect(throws: IdentityError.self) { try await first.validate(token) }
            // The other controller learns of it at its next refresh (every 2 s when serving).
            try await second.refreshRevocations()
            await #expect(throws: IdentityError.self) { try await second.validate(token) }
            // A restarted controller loads the revocations before it serves.
            let restarted = try cloud.service()
            try await restarted.refreshRevocations()
            await #expect(throws: IdentityError.self) { try await restarted.validate(token) }
            // Other tokens of the same user are unaffected.
            let another = try await login(first)
            #expect(try await restarted.validate(another).user.name == "admin")
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func changesRevokeWhatTheyShould(backend: TestDatabase) async throws {
        try await withCloud(backend) { cloud in
            let service = try cloud.service()
            // Removing the role assignment revokes the project token.
            let token = try await login(service)
            let adminUser = try await service.validate(token).user.id
            let adminRole = try await service.read { sql in try await IdentityTables.roles.first(sql, where: [.equals("name", "admin")])!.id }
            let system = try await login(service, scope: .system)
            #expect(try await service.validate(system).system)
            try await service.revokeGrant(AssignmentRow(actorType: "user", actorID: adminUser, targetType: "project",
                                                        targetID: cloud.adminProject, roleID: adminRole))
            await #expect(throws: IdentityError.self) { try await service.validate(token) }
            #expect(try await service.validate(system).system, "the system-scoped token keeps its role")
            await #expect(throws: IdentityError.self, "no role on the project any more") { try await login(service) }
            // A disabled user's tokens stop working.
            try await service.updateUser(adminUser) { $0.enabled = false }
            await #expect(throws: IdentityError.self) { try await service.validate(system) }
            await #expect(throws: IdentityError.unauthorized("The user \(adminUser) is disabled.")) {
                try await login(service, scope: .system)
            }
        }
    }

    /// A change made through one controller reaches the other's cached tokens at its next
    /// refresh, not only when the cache expires.
    @Test(arguments: TestDatabase.allCases)
    func anotherControllersChangesReachCachedTokens(backend: TestDatabase) async throws {
        try await withCloud(backend) { cloud in
            let first = try cloud.service(), second = try cloud.service()
            try await second.refreshRevocations()
            let token = try await login(first)
            #expect(try await second.validate(token).project?.name == "admin")
            try await first.updateProject(cloud.adminProject) { $0.name = "renamed" }
            #expect(try await second.validate(token).project?.name == "admin", "cached until the next refresh")
            try await second.refreshRevocations()
            #expect(try await second.validate(token).project?.name == "renamed")
        }
    }

    @Test func rescopedTokensKeepTheExpiryAndChainTheAuditIDs() async throws {
        try await withCloud(.sqlite) { cloud in
            let service = try cloud.service()
            let unscoped = try await login(service, scope: .unscoped)
            let first = try await service.validate(unscoped)
            #expect(first.project == nil && first.roles.isEmpty)
            let (rescoped, info) = try await service.issue(AuthRequest(method: .token(unscoped), scope: .project(.id(cloud.adminProject))))
            #expect(info.payload.methods == [.password, .token])
            #expect(abs(info.expiresAt.timeIntervalSince(first.expiresAt)) < 0.001)
            #expect(info.payload.auditIDs.count == 2 && info.payload.auditIDs[1] == first.payload.auditIDs[0])
            // Revoking the original does not revoke the rescoped token's own audit id.
            try await service.revoke(token: unscoped)
            #expect(try await service.validate(rescoped).project?.id == cloud.adminProject)
        }
    }

    /// Validating a token the controller has seen reads only memory: with its database
    /// closed, the controller still validates it.
    @Test func validationOfAKnownTokenNeverTouchesTheDatabase() async throws {
        try await withCloud(.sqlite) { cloud in
            let own = try Database(cloud.url, logger: Logger(label: "identity-test"))
            let service = try cloud.service(database: own)
            let token = try await login(service)
            _ = try await service.validate(token)
            await own.shutdown()
            for _ in 0..<1000 { _ = try await service.validate(token) }
            await #expect(throws: (any Error).self, "a token never seen needs the database") {
                try await service.validate(try await login(cloud.service()))
            }
        }
    }

    /// Concurrent wrong passwords each count (one atomic UPDATE per failure).
    @Test func concurrentFailuresAllCount() async throws {
        try await withCloud(.sqlite) { cloud in
            let service = try cloud.service(LockoutPolicy(failureAttempts: 100, duration: 60))
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<12 { group.addTask { _ = try? await login(service, "wrong") } }
            }
            let user = try await service.read { sql in try await IdentityTables.users.first(sql, where: [.equals("name", "admin")])! }
            #expect(user.failedAuthCount == 12)
        }
    }

    /// A domain-specific role only implies global ones; a token never carries it, and deleting a
    /// global role revokes the tokens that held it.
    @Test func domainRolesNeverReachTokensAndDeletedRolesRevoke() async throws {
        try await withCloud(.sqlite) { cloud in
            let service = try cloud.service()
            let token = try await login(service)
            let adminUser = try await service.validate(token).user.id
            let (domainRole, auditor) = try await service.write { sql in
                let domainRole = RoleRow(id: IdentityService.makeID(), name: "admin", domainID: "default", createdAt: IdentityService.timestamp())
                let auditor = RoleRow(id: IdentityService.makeID(), name: "auditor", createdAt: IdentityService.timestamp())
                try await IdentityTables.roles.insert(sql, domainRole)
                try await IdentityTables.roles.insert(sql, auditor)
                try await IdentityTables.impliedRoles.insert(sql, ImpliedRoleRow(priorRoleID: domainRole.id, impliedRoleID: auditor.id))
                for role in [domainRole.id, auditor.id] {
                    try await IdentityTables.assignments.insert(sql, AssignmentRow(actorType: "user", actorID: adminUser, targetType: "project",
                                                                                   targetID: cloud.adminProject, roleID: role))
                }
                return (domainRole, auditor)
            }
            let fresh = try await login(service)
            let roles = try await service.validate(fresh).roles
            #expect(roles.contains { $0.id == auditor.id } && !roles.contains { $0.id == domainRole.id })
            try await service.deleteRole(auditor.id)
            await #expect(throws: IdentityError.self, "deleting a role revokes the tokens that held it") { try await service.validate(fresh) }
        }
    }

    /// A password hashed by plain bcrypt (before Petrel hashed over SHA-256, or by Keystone) still
    /// works, and the successful login replaces its hash; an overlong password never authenticates.
    @Test func oldBcryptHashesAreReplacedOnLoginAndLongPasswordsRefused() async throws {
        try await withCloud(.sqlite) { cloud in
            let service = try cloud.service()
            let legacy = try SystemBcrypt.hash("admin-pw", cost: 4)
            try await service.write { sql in
                try await sql.raw("UPDATE users SET password_hash = \(bind: legacy) WHERE name = 'admin'").run()
            }
            _ = try await login(service)
            let stored = try await service.read { sql in try await IdentityTables.users.first(sql, where: [.equals("name", "admin")])!.passwordHash! }
            #expect(stored.hasPrefix("$bcrypt-sha256$v=2,") && stored != legacy)
            _ = try await login(service)
            await #expect(throws: IdentityError.authenticationRequired) { try await login(service, String(repeating: "p", count: 4097)) }
        }
    }

    @Test func lockoutAfterFailuresThenPasswordWorksAgain() async throws {
        try await withCloud(.sqlite) { cloud in
            // Ten minutes of lockout, so a loaded host's slow logins cannot outlast it; the
            // lockout then ends by moving the last failure back past it, as time would.
            let service = try cloud.service(LockoutPolicy(failureAttempts: 2, duration: 600))
            for _ in 0..<2 {
                await #expect(throws: IdentityError.authenticationRequired) { try await login(service, "wrong") }
            }
            await #expect(throws: IdentityError.self, "locked even with the right password") { try await login(service) }
            try await service.write { sql in
                try await sql.raw("UPDATE users SET last_failed_auth_at = last_failed_auth_at - 601000 WHERE name = 'admin'").run()
            }
            _ = try await login(service)
            let user = try await service.read { sql in try await IdentityTables.users.first(sql, where: [.equals("name", "admin")])! }
            #expect(user.failedAuthCount == 0, "a success resets the count")
        }
    }
}
