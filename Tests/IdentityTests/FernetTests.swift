import Foundation
@testable import Identity
import ProcessDriver
import TestSupport
import Testing

@Suite struct FernetTests {
    // The Fernet specification's test vector (github.com/fernet/spec, generate.json / verify.json).
    let secret = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
    let token = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA=="
    let now = Date(timeIntervalSince1970: 499_162_800)  // 1985-10-26T01:20:00-07:00

    @Test func specVectorEncryptsByteForByte() throws {
        let key = try FernetKey(base64url: secret)
        #expect(try Fernet.encrypt(Array("hello".utf8), key: key, at: now, iv: Array(0..<16)) == token)
    }

    @Test func specVectorDecryptsAndItsFailuresAreRefused() throws {
        let key = try FernetKey(base64url: secret)
        let (payload, issued) = try Fernet.decrypt(token, keys: [key], ttl: 60, now: now)
        #expect(payload == Array("hello".utf8) && issued == now)
        #expect(throws: FernetError.expired) { try Fernet.decrypt(token, keys: [key], ttl: 60, now: now.addingTimeInterval(61)) }
        #expect(throws: FernetError.badSignature) { try Fernet.decrypt(token, keys: [FernetKey.generate()]) }
        var tampered = Array(token)
        tampered[30] = tampered[30] == "A" ? "B" : "A"
        #expect(throws: FernetError.badSignature) { try Fernet.decrypt(String(tampered), keys: [key]) }
        #expect(throws: FernetError.malformedToken) { try Fernet.decrypt("not-a-token", keys: [key]) }
        #expect(throws: FernetError.invalidKey) { try FernetKey(base64url: "c2hvcnQ=") }
    }

    /// Tokens interoperate with Python's `cryptography` (Keystone's Fernet implementation).
    @Test func interoperatesWithPythonCryptography() async throws {
        let probe = try await Command.run("python3", ["-c", "import cryptography.fernet"])
        try Requirement.require(probe.status == 0, "python3 with the cryptography package is needed")
        let key = FernetKey.generate()
        let ours = try Fernet.encrypt(Array("from swift".utf8), key: key)
        let decrypted = try await Command.check("python3", ["-c", """
            import sys
            from cryptography.fernet import Fernet
            sys.stdout.write(Fernet(sys.argv[1]).decrypt(sys.argv[2].encode()).decode())
            """, key.base64url, ours])
        #expect(decrypted == "from swift")
        let theirs = try await Command.check("python3", ["-c", """
            import sys
            from cryptography.fernet import Fernet
            sys.stdout.write(Fernet(sys.argv[1]).encrypt(b"from python").decode())
            """, key.base64url])
        #expect(try Fernet.decrypt(theirs, keys: [key]).payload == Array("from python".utf8))
    }

    @Test func rotationKeepsLiveTokensUntilTheirKeyIsPruned() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let repository = FernetKeyRepository(directory: directory, maxActiveKeys: 3)
        try repository.setup()
        try repository.setup()  // idempotent
        #expect(try repository.indices().sorted() == [0, 1])
        let attributes = try FileManager.default.attributesOfItem(atPath: "\(directory)/1")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        let staged = try FernetKey(base64url: String(contentsOfFile: "\(directory)/0", encoding: .utf8))
        let old = try Fernet.encrypt([1, 2, 3], key: try repository.load().primary)
        try repository.rotate()
        #expect(try repository.indices().sorted() == [0, 1, 2])
        #expect(try repository.load().primary == staged, "the staged key becomes primary")
        #expect(try Fernet.decrypt(old, keys: repository.load().all).payload == [1, 2, 3], "old tokens still validate")

        try repository.rotate()
        #expect(try repository.indices().sorted() == [0, 2, 3], "key 1 pruned beyond max_active_keys")
        #expect(throws: FernetError.badSignature) { try Fernet.decrypt(old, keys: repository.load().all) }

        #expect(throws: (any Error).self) {
            try FernetKeyRepository(directory: directory + "-missing").rotate()
        }
    }
}
