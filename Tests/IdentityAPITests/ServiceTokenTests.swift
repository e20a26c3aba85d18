import Foundation
@testable import Identity
import IdentityAPI
import Logging
import PetrelCore
import PetrelHTTP
import Testing

/// `X-Service-Token`: validated with the user's token, letting a recently expired user token
/// through when it carries the service role, and shown to policy as `service_roles`.
@Suite struct ServiceTokenTests {
    @Test func aServiceTokenCarriesAnExpiredUserTokenThroughAndReachesPolicy() async throws {
        try await withBootstrappedIdentity(tokenExpiration: 1) { _, service in
            let api = KeystoneAPI(service: service, policy: try Policy(defaults: KeystonePolicy.defaults),
                                  publicURL: "http://controller:5000", logger: Logger(label: "service-token-test"))
            let admin = UserReference.name("admin", domain: .id("default"))
            let scope = AuthRequest.ScopeRequest.project(.name("admin", domain: .id("default")))
            let user = try await service.issue(AuthRequest(method: .password(admin, password: "admin-pw"), scope: scope)).token
            // A service user: "nova" with the service role on the admin project.
            let nova = User(id: IdentityService.makeID(), name: "nova", domainID: "default",
                            passwordHash: await service.hashPassword("nova-pw"), createdAt: IdentityService.timestamp())
            try await service.createUser(nova)
            let project = try await service.projects.list(where: [("name", "admin")], orderBy: "name")[0].id
            let serviceRole = try #require(try await service.globalRole(named: "service"))
            try await service.grant(RoleAssignment(actorType: "user", actorID: nova.id, targetType: "project", targetID: project,
                                                   roleID: serviceRole.id))
            try await Task.sleep(for: .milliseconds(1500))
            // Alone, the expired user token is refused.
            await #expect(throws: IdentityError.self) { _ = try await api.validate(token: user) }
            // With a fresh service token (issued with a longer life here), it is let through.
            var longer = service.options
            longer.tokenExpiration = 3600
            let issuer = try IdentityService(database: service.database, options: longer, logger: Logger(label: "service-token-test"))
            let serviceToken = try await issuer.issue(AuthRequest(method: .password(.name("nova", domain: .id("default")), password: "nova-pw"),
                                                                  scope: scope)).token
            let caller = try await api.validate(token: user, serviceToken: serviceToken)
            #expect(caller.user.name == "admin" && caller.serviceRoles.contains("service"))
            // A service token without the service role does not extend the user token's life.
            let adminFresh = try await issuer.issue(AuthRequest(method: .password(admin, password: "admin-pw"), scope: scope)).token
            await #expect(throws: IdentityError.self) { _ = try await api.validate(token: user, serviceToken: adminFresh) }
            // An invalid service token is a 401 even with a valid user token.
            let userFresh = try await issuer.issue(AuthRequest(method: .password(admin, password: "admin-pw"), scope: scope)).token
            await #expect(throws: IdentityError.self) { _ = try await api.validate(token: userFresh, serviceToken: "not-a-token") }
            // Policy sees service_roles.
            var policy = try Policy(defaults: KeystonePolicy.defaults)
            try policy.override(yaml: #""identity:get_region": "service_roles:service""#, file: "test")
            let strict = KeystoneAPI(service: service, policy: policy, publicURL: "http://controller:5000", logger: Logger(label: "t"))
            let withService = try await strict.validate(token: userFresh, serviceToken: serviceToken)
            let without = try await strict.validate(token: userFresh)
            #expect(strict.allows("identity:get_region", for: withService, target: [:]))
            #expect(!strict.allows("identity:get_region", for: without, target: [:]))
        }
    }
}
