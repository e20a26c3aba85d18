import Crypto
import _CryptoExtras
import Foundation
import SQLKit
import Store

/// A user's key pair as Nova keeps it.
public typealias KeyPair = KeyPairRow

/// Nova's key pairs: SSH public keys per user, imported or generated (the private key of a
/// generated pair is returned once and never stored).
public struct KeyPairs: Sendable {
    public enum Failure: Error, Equatable {
        case notFound(String)
        case duplicate(String)
        case invalidKey(String)
    }

    let database: Database

    public init(database: Database) { self.database = database }

    /// Parses an OpenSSH public key line (`ssh-rsa AAAA… comment`); returns its MD5
    /// fingerprint in Nova's colon form. Refuses anything that is not a well-formed key.
    public static func fingerprint(ofPublicKey line: String) throws -> String {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        let types: Set<String> = ["ssh-rsa", "ssh-ed25519", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"]
        guard fields.count >= 2, types.contains(String(fields[0])), let blob = Data(base64Encoded: String(fields[1])) else {
            throw Failure.invalidKey("Keypair data is invalid: failed to read the key as an OpenSSH public key")
        }
        // The blob starts with the key type as an SSH string; it must match the line's.
        let bytes = [UInt8](blob)
        guard bytes.count > 4 else { throw Failure.invalidKey("Keypair data is invalid: the key is truncated") }
        let length = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        guard length > 0, bytes.count >= 4 + length, String(decoding: bytes[4..<(4 + length)], as: UTF8.self) == String(fields[0]) else {
            throw Failure.invalidKey("Keypair data is invalid: the key's type does not match its data")
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
        let fingerprint = try Self.fingerprint(ofPublicKey: publicKey)
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
