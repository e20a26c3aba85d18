import Crypto
import _CryptoExtras
import Foundation
import SQLKit
import Store

/// A user's key pair as Nova keeps it.
public typealias KeyPair = KeyPairRow

/// Nova's key pairs: SSH public keys or x509 certificates (X509KeyPairs.swift) per user,
/// imported or generated (the private key of a generated pair is returned once and never stored).
public struct KeyPairs: Sendable {
    public enum Failure: Error, Equatable {
        case notFound(String)
        case duplicate(String)
        case invalidKey(String)
    }

    let database: Database

    public init(database: Database) { self.database = database }

    /// Parses an OpenSSH public key line (`ssh-rsa AAAA… comment`); returns its MD5
    /// fingerprint in Nova's colon form. Refuses anything that is not one well-formed key: a
    /// second line, a blob cut short or with bytes after its last field, a type that does not
    /// match the blob's.
    public static func fingerprint(ofPublicKey line: String) throws -> String {
        let text = line.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.contains("\n"), !text.contains("\r") else {
            throw Failure.invalidKey("Keypair data is invalid: failed to generate fingerprint (one key per key pair)")
        }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        // The fields the blob holds after the type, as SSH strings (mpints are strings too).
        let layouts: [String: Int] = ["ssh-rsa": 2, "ssh-ed25519": 1, "ssh-dss": 4, "ecdsa-sha2-nistp256": 2,
                                      "ecdsa-sha2-nistp384": 2, "ecdsa-sha2-nistp521": 2]
        guard fields.count >= 2, let count = layouts[String(fields[0])], let blob = Data(base64Encoded: String(fields[1])) else {
            throw Failure.invalidKey("Keypair data is invalid: failed to read the key as an OpenSSH public key")
        }
        let bytes = [UInt8](blob)
        var offset = 0
        func next() -> ArraySlice<UInt8>? {
            guard bytes.count - offset >= 4 else { return nil }
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            guard length > 0, bytes.count - offset - 4 >= length else { return nil }
            defer { offset += 4 + length }
            return bytes[(offset + 4)..<(offset + 4 + length)]
        }
        guard let type = next() else { throw Failure.invalidKey("Keypair data is invalid: the key is truncated") }
        guard String(decoding: type, as: UTF8.self) == String(fields[0]) else {
            throw Failure.invalidKey("Keypair data is invalid: the key's type does not match its data")
        }
        for _ in 0..<count {
            guard next() != nil else { throw Failure.invalidKey("Keypair data is invalid: the key is truncated") }
        }
        guard offset == bytes.count else { throw Failure.invalidKey("Keypair data is invalid: the key has bytes after its last field") }
        if fields[0] == "ssh-ed25519", bytes.count != 4 + 11 + 4 + 32 {
            throw Failure.invalidKey("Keypair data is invalid: an Ed25519 key is 32 bytes")
        }
        return Insecure.MD5.hash(data: blob).map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    /// A new RSA 2048 key pair as Nova generates them: the OpenSSH public key and the PEM private key.
    public static func generate(comment: String = "Generated-by-Petrel") throws -> (publicKey: String, privateKey: String) {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let primitives = try key.publicKey.getKeyPrimitives()
        func string(_ bytes: [UInt8]) -> [UInt8] {
            let count = UInt32(bytes.count)
            return [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)] + bytes
        }
        // mpint: big-endian, with a leading zero when the top bit is set.
        func mpint(_ data: Data) -> [UInt8] {
            var bytes = Array(data.drop { $0 == 0 })
            if let first = bytes.first, first & 0x80 != 0 { bytes.insert(0, at: 0) }
            return string(bytes)
        }
        let blob = string(Array("ssh-rsa".utf8)) + mpint(primitives.publicExponent) + mpint(primitives.modulus)
        return ("ssh-rsa \(Data(blob).base64EncodedString()) \(comment)\n", key.pemRepresentation + "\n")
    }

    public func create(userID: String, name: String, type: String, publicKey: String) async throws -> KeyPairRow {
        let fingerprint = try Self.fingerprint(of: publicKey, type: type)
        // Ids are MAX(id)+1: two controllers creating at once may pick the same one; the loser
        // sees a duplicate row that is not its name, and tries the next id.
        for _ in 0..<10 {
            do {
                return try await database.transaction { sql in
                    let row = KeyPairRow(id: try await ComputeTables.keyPairs.nextIntegerID(sql), name: name, userID: userID, type: type,
                                         fingerprint: fingerprint, publicKey: publicKey, createdAt: Int64(Date().timeIntervalSince1970 * 1000))
                    try await ComputeTables.keyPairs.insert(sql, row)
                    return row
                }
            } catch is DuplicateRowError {
                let taken = try await database.withConnection { sql in
                    try await ComputeTables.keyPairs.first(sql, where: [.equals("user_id", userID), .equals("name", name)])
                }
                if taken != nil { throw Failure.duplicate("Key pair '\(name)' already exists.") }
            }
        }
        throw Failure.duplicate("Key pair '\(name)' could not be stored: too many concurrent creations.")
    }

    public func list(userID: String) async throws -> [KeyPairRow] {
        try await database.withConnection { sql in
            try await ComputeTables.keyPairs.all(sql, where: [.equals("user_id", userID)], orderBy: "name")
        }
    }

    public func get(userID: String, name: String) async throws -> KeyPairRow {
        let row = try await database.withConnection { sql in
            try await ComputeTables.keyPairs.first(sql, where: [.equals("user_id", userID), .equals("name", name)])
        }
        guard let row else { throw Failure.notFound(name) }
        return row
    }

    public func delete(userID: String, name: String) async throws {
        let removed = try await database.withConnection { sql in
            try await ComputeTables.keyPairs.delete(sql, where: [.equals("user_id", userID), .equals("name", name)])
        }
        guard removed > 0 else { throw Failure.notFound(name) }
    }
}
