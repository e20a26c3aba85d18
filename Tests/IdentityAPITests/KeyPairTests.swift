import Compute
import Foundation
import ProcessDriver
import TestSupport
import Testing

/// Key pairs the controller generates are real OpenSSH keys: ssh-keygen derives the same
/// public key from the private one, and computes the same MD5 fingerprint.
@Suite struct KeyPairTests {
    @Test func generatedKeysAreWhatSSHKeygenSees() async throws {
        try Requirement.tool("ssh-keygen")
        let (publicKey, privateKey) = try KeyPairs.generate()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-key-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyPath = directory.appendingPathComponent("key").path
        try privateKey.write(toFile: keyPath, atomically: true, encoding: .utf8)
        _ = chmod(keyPath, 0o600)
        let derived = try await Command.check("ssh-keygen", ["-y", "-f", keyPath]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(derived.split(separator: " ").prefix(2) == publicKey.split(separator: " ").prefix(2))
        let publicPath = directory.appendingPathComponent("key.pub").path
        try publicKey.write(toFile: publicPath, atomically: true, encoding: .utf8)
        let listed = try await Command.check("ssh-keygen", ["-E", "md5", "-lf", publicPath])
        let fingerprint = try KeyPairs.fingerprint(ofPublicKey: publicKey)
        #expect(listed.contains("MD5:" + fingerprint), "\(listed) vs \(fingerprint)")
        #expect(throws: KeyPairs.Failure.self) { try KeyPairs.fingerprint(ofPublicKey: "ssh-rsa bm90IGEga2V5") }
        #expect(throws: KeyPairs.Failure.self) { try KeyPairs.fingerprint(ofPublicKey: "ssh-ed25519 " + publicKey.split(separator: " ")[1]) }
    }

    /// Keys ssh-keygen makes (Ed25519, ECDSA) are taken with its fingerprint; a key cut short,
    /// one with bytes after its last field, or two keys in one body are refused, as Nova does.
    @Test func keysAreOneWholeOpenSSHKey() async throws {
        try Requirement.tool("ssh-keygen")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-key-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var lines: [String] = []
        for type in ["ed25519", "ecdsa", "rsa"] {
            let path = directory.appendingPathComponent(type).path
            try await Command.check("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", "test key", "-f", path])
            let line = try String(contentsOfFile: path + ".pub", encoding: .utf8)
            let listed = try await Command.check("ssh-keygen", ["-E", "md5", "-lf", path + ".pub"])
            #expect(listed.contains("MD5:" + (try KeyPairs.fingerprint(ofPublicKey: line))), "\(type): \(listed)")
            lines.append(line.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let fields = lines[0].split(separator: " ").map(String.init)
        let blob = try #require(Data(base64Encoded: fields[1]))
        for (what, changed) in [("cut short", blob.dropLast(5)), ("a byte after its last field", blob + Data([0]))] {
            #expect(throws: KeyPairs.Failure.self, "\(what)") {
                try KeyPairs.fingerprint(ofPublicKey: "\(fields[0]) \(Data(changed).base64EncodedString()) x")
            }
        }
        #expect(throws: KeyPairs.Failure.self, "two keys") { try KeyPairs.fingerprint(ofPublicKey: lines[0] + "\n" + lines[1]) }
    }
}
