import Foundation
@testable import Identity
import Logging
import PetrelCore
import Store
import TestSupport
import Testing

/// `[security_compliance]` rules, user options and TOTP, on the identity service.
@Suite struct PasswordRuleTests {
    @Test func totpFollowsRFC6238() {
        // RFC 6238's SHA-1 vectors (secret "12345678901234567890"), last six of their eight digits.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        #expect(TOTP.code(secret: secret, at: Date(timeIntervalSince1970: 59)) == "287082")
        #expect(TOTP.code(secret: secret, at: Date(timeIntervalSince1970: 1_111_111_109)) == "081804")
        #expect(TOTP.code(secret: secret, at: Date(timeIntervalSince1970: 2_000_000_000)) == "279037")
        #expect(TOTP.code(secret: "not base32!", at: Date()) == nil)
    }

    func withService(_ rules: PasswordRules, lockout: LockoutPolicy = LockoutPolicy(failureAttempts: 0, duration: 1),
                     _ body: @Sendable (IdentityService, String) async throws -> Void) async throws {
        try await withBootstrappedService(.sqlite, configure: { options in
            options.passwordRules = rules
            options.lockout = lockout
        }) { _, service, _ in
            let user = User(id: IdentityService.makeID(), name: "dana", domainID: "default",
                            passwordHash: await service.hashPassword("first-pw"), createdAt: IdentityService.timestamp())
            try await service.createUser(user)
            try await body(service, user.id)
        }
    }

    func login(_ service: IdentityService, _ password: String) async throws {
        _ = try await service.issue(AuthRequest(method: .password(.name("dana", domain: .id("default")), password: password), scope: .unscoped))
    }

    @Test func regexAndHistoryRefuseNewPasswords() async throws {
        var rules = PasswordRules()
        rules.regex = "^.{8,}$"
        rules.regexDescription = "at least 8 characters"
        rules.uniqueLastPasswordCount = 2
        try await withService(rules) { service, id in
            await #expect(throws: IdentityError.badRequest("The password does not match the requirements: at least 8 characters.")) {
                try await service.changePassword(userID: id, original: "first-pw", new: "short")
            }
            await #expect(throws: IdentityError.self) { try await service.changePassword(userID: id, original: "first-pw", new: "first-pw") }
            try await service.changePassword(userID: id, original: "first-pw", new: "second-pw")
            try await login(service, "second-pw")
            // The first password is still among the last two.
            await #expect(throws: IdentityError.self) { try await service.changePassword(userID: id, original: "second-pw", new: "first-pw") }
            try await service.changePassword(userID: id, original: "second-pw", new: "third-pw")
            try await service.changePassword(userID: id, original: "third-pw", new: "first-pw")
        }
    }

    @Test func anAdministratorsPasswordMustBeChangedFirst() async throws {
        var rules = PasswordRules()
        rules.changePasswordUponFirstUse = true
        rules.expiresDays = 90
        try await withService(rules) { service, id in
            await #expect(throws: IdentityError.unauthorized("The password is expired and needs to be changed for user: \(id).")) {
                try await login(service, "first-pw")
            }
            try await service.changePassword(userID: id, original: "first-pw", new: "chosen-pw")
            try await login(service, "chosen-pw")
            let expiry = try #require(try await service.users.get(id).passwordExpiresAt)
            #expect(abs(expiry - IdentityService.timestamp() - 90 * 86_400_000) < 60_000, "expires in 90 days")
            // A user exempted by option: an administrator's reset works at once.
            try await service.updateUser(id) { $0.options = #"{"ignore_change_password_upon_first_use": true}"# }
            try await service.updateUser(id, passwordHash: .some(await service.hashPassword("reset-pw")))
            try await login(service, "reset-pw")
        }
    }

    @Test func userOptionsLockThePasswordAndSkipLockout() async throws {
        try await withService(PasswordRules(), lockout: LockoutPolicy(failureAttempts: 2, duration: 600)) { service, id in
            try await service.updateUser(id) { $0.options = #"{"lock_password": true, "ignore_lockout_failure_attempts": true}"# }
            await #expect(throws: IdentityError.self) { try await service.changePassword(userID: id, original: "first-pw", new: "other-pw") }
            for _ in 0..<4 { await #expect(throws: IdentityError.self) { try await login(service, "wrong") } }
            try await login(service, "first-pw")  // not locked out
            try await service.updateUser(id) { $0.options = "{}" }
            for _ in 0..<2 { await #expect(throws: IdentityError.self) { try await login(service, "wrong") } }
            await #expect(throws: IdentityError.self) { try await login(service, "first-pw") }  // now it is
        }
    }
}
