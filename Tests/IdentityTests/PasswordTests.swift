import Foundation
@testable import Identity
import Testing

@Suite struct PasswordTests {
    @Test func bcryptHashesVerifyAndDiffer() async throws {
        let first = await PasswordHasher.hash("correct horse", cost: 4)
        let second = await PasswordHasher.hash("correct horse", cost: 4)
        #expect(first.hasPrefix("$2") && first != second, "salted")
        #expect(await PasswordHasher.verify("correct horse", against: first))
        #expect(await !PasswordHasher.verify("Correct horse", against: first))
        #expect(await !PasswordHasher.verify("correct horse", against: "not a hash"))
        // The cost is part of the hash, as Keystone's password_hash_rounds.
        #expect(await PasswordHasher.hash("x", cost: 5).contains("$05$"))
    }

    /// The classic bcrypt test vector (OpenBSD's), and a hash written by Python's crypt: the
    /// same hashes Keystone stores verify here.
    @Test func knownVectorsAndForeignHashesVerify() async throws {
        #expect(await PasswordHasher.verify("U*U", against: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"))
        #expect(await !PasswordHasher.verify("U*V", against: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"))
        let ours = await PasswordHasher.hash("s3cret", cost: 4)
        #expect(ours.hasPrefix("$2b$04$") && ours.count == 60)
    }

    @Test func lockoutAfterNFailuresForTheDuration() {
        let policy = LockoutPolicy(failureAttempts: 3, duration: 60)
        let start = Date(timeIntervalSince1970: 1_000_000)
        var state = LockoutPolicy.State()
        for attempt in 0..<3 {
            #expect(!policy.isLocked(state, now: start), "attempt \(attempt)")
            state = policy.afterFailure(state, now: start)
        }
        #expect(policy.isLocked(state, now: start.addingTimeInterval(59)))
        #expect(!policy.isLocked(state, now: start.addingTimeInterval(61)), "the lockout ends after its duration")
        // After it ended, one more failure does not lock again at once.
        let again = policy.afterFailure(state, now: start.addingTimeInterval(61))
        #expect(again.failures == 1 && !policy.isLocked(again, now: start.addingTimeInterval(62)))
        // A success resets the count.
        #expect(policy.afterSuccess(state) == LockoutPolicy.State())
        // 0 attempts: lockout off.
        let off = LockoutPolicy(failureAttempts: 0, duration: 60)
        #expect(!off.isLocked(LockoutPolicy.State(failures: 1000, lastFailure: start), now: start))
    }
}
