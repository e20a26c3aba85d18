import CryptDriver
import Foundation
@testable import Identity
import Testing

@Suite struct PasswordTests {
    @Test func bcryptHashesVerifyAndDiffer() async throws {
        let first = await PasswordHasher.hash("correct horse", cost: 4)
        let second = await PasswordHasher.hash("correct horse", cost: 4)
        #expect(first.hasPrefix("$bcrypt-sha256$") && first != second, "salted")
        #expect(await PasswordHasher.verify("correct horse", against: first))
        #expect(await !PasswordHasher.verify("Correct horse", against: first))
        #expect(await !PasswordHasher.verify("correct horse", against: "not a hash"))
        // The cost is part of the hash, as Keystone's password_hash_rounds.
        #expect(await PasswordHasher.hash("x", cost: 5).contains(",r=5$"))
    }

    /// The classic bcrypt test vector (OpenBSD's), and a hash written by Python's crypt: the
    /// same hashes Keystone stores verify here.
    @Test func knownVectorsAndForeignHashesVerify() async throws {
        #expect(await PasswordHasher.verify("U*U", against: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"))
        #expect(await !PasswordHasher.verify("U*V", against: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"))
        let ours = await PasswordHasher.hash("s3cret", cost: 4)
        #expect(ours.hasPrefix("$bcrypt-sha256$v=2,t=2b,r=4$") && ours.count == 82, "\(ours)")
        #expect(!PasswordHasher.needsRehash(ours))
        #expect(PasswordHasher.needsRehash("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"))
    }

    /// Hashes written by passlib's bcrypt_sha256 (versions 2 and 1) verify, and ours verify in
    /// passlib's format: a Keystone database hashed that way moves over as it is.
    @Test func passlibBcryptSHA256HashesVerify() async throws {
        let eighty = String(repeating: "x", count: 80)
        let v2 = "$bcrypt-sha256$v=2,t=2b,r=5$Ei2gn9GoG1X9PlhitIRdhO$XuivVcqq3sXSlWa0QFClgizgiFcatjC"
        #expect(await PasswordHasher.verify(eighty, against: v2))
        #expect(await !PasswordHasher.verify(String(repeating: "x", count: 72) + "yyyyyyyy", against: v2))
        let v1 = "$bcrypt-sha256$2b,5$ML1.WyH1L/k0um8BuvJTM.$jDY0HoJlqpJrRD0wS2dr5Q9P35o7MKK"
        #expect(await PasswordHasher.verify("correct horse battery staple", against: v1))
        #expect(await !PasswordHasher.verify("correct horse battery stapler", against: v1))
        #expect(PasswordHasher.needsRehash(v1), "version 1 is replaced by version 2")
        #expect(await !PasswordHasher.verify(eighty, against: "$bcrypt-sha256$v=2,t=2b,r=5$short$XuivVcqq3sXSlWa0QFClgizgiFcatjC"))
    }

    /// The reproduction from the security report: with an 80-character password, a string sharing
    /// its first 72 characters must not authenticate (plain bcrypt would accept it).
    @Test func everyByteOfALongPasswordCounts() async throws {
        let password = String(repeating: "a", count: 72) + "-the-end"
        let impostor = String(repeating: "a", count: 72) + "-another"
        let hash = await PasswordHasher.hash(password, cost: 4)
        #expect(await PasswordHasher.verify(password, against: hash))
        #expect(await !PasswordHasher.verify(impostor, against: hash))
        #expect(await !PasswordHasher.verify(String(repeating: "a", count: 72), against: hash))
        // Plain bcrypt, for contrast: the impostor passes.
        let plain = try SystemBcrypt.hash(password, cost: 4)
        #expect(await PasswordHasher.verify(impostor, against: plain), "bcrypt alone reads 72 bytes")
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
