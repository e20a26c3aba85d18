import _CryptoExtras
import Crypto
import Foundation

public enum FernetError: Error, Equatable, CustomStringConvertible {
    case invalidKey
    case malformedToken
    /// No key of the repository signed this token (forged, or signed by a key rotated out).
    case badSignature
    case expired
    case unsupportedVersion

    public var description: String {
        switch self {
        case .invalidKey: return "a Fernet key must be 32 bytes, base64url-encoded"
        case .malformedToken: return "malformed token"
        case .badSignature: return "token signature does not verify with any known key"
        case .expired: return "token has expired"
        case .unsupportedVersion: return "unsupported token version"
        }
    }
}

/// A Fernet key: 16 bytes of HMAC-SHA256 signing key, then 16 bytes of AES-128 key.
public struct FernetKey: Sendable, Equatable {
    let signing: [UInt8]
    let encryption: [UInt8]

    public init(base64url text: String) throws {
        guard let bytes = Base64URL.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
            throw FernetError.invalidKey
        }
        signing = Array(bytes[0..<16])
        encryption = Array(bytes[16..<32])
    }

    /// A new random key.
    public static func generate() -> FernetKey {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        return try! FernetKey(base64url: Base64URL.encode(bytes))
    }

    public var base64url: String { Base64URL.encode(signing + encryption) }
}

/// Fernet tokens (the spec at github.com/fernet/spec): version 0x80, big-endian issue time,
/// a random IV, AES-128-CBC ciphertext (PKCS#7) and an HMAC-SHA256 over all of it,
/// base64url-encoded with padding — byte for byte what Python's `cryptography` makes.
public enum Fernet {
    static let version: UInt8 = 0x80

    public static func encrypt(_ payload: [UInt8], key: FernetKey, at time: Date = Date(), iv: [UInt8]? = nil) throws -> String {
        let ivBytes = iv ?? AES._CBC.IV().map { $0 }
        let ciphertext = try AES._CBC.encrypt(payload, using: SymmetricKey(data: key.encryption),
                                              iv: try AES._CBC.IV(ivBytes: ivBytes))
        var token: [UInt8] = [version]
        let seconds = UInt64(max(0, time.timeIntervalSince1970.rounded(.down)))
        withUnsafeBytes(of: seconds.bigEndian) { token.append(contentsOf: $0) }
        token += ivBytes
        token += ciphertext
        let mac = HMAC<SHA256>.authenticationCode(for: token, using: SymmetricKey(data: key.signing))
        token += Array(mac)
        return Base64URL.encode(token)
    }

    /// Verifies `token` with any of `keys` and decrypts it. With `ttl`, a token issued
    /// longer ago than that is refused as expired.
    public static func decrypt(_ token: String, keys: [FernetKey], ttl: TimeInterval? = nil,
                               now: Date = Date()) throws -> (payload: [UInt8], issuedAt: Date) {
        guard let bytes = Base64URL.decode(token), bytes.count >= 1 + 8 + 16 + 16 + 32, (bytes.count - 57) % 16 == 0 else {
            throw FernetError.malformedToken
        }
        guard bytes[0] == version else { throw FernetError.unsupportedVersion }
        let signed = bytes[0..<(bytes.count - 32)]
        let mac = bytes[(bytes.count - 32)...]
        guard let key = keys.first(where: {
            HMAC<SHA256>.isValidAuthenticationCode(Array(mac), authenticating: Array(signed), using: SymmetricKey(data: $0.signing))
        }) else {
            throw FernetError.badSignature
        }
        let seconds = bytes[1..<9].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let issuedAt = Date(timeIntervalSince1970: TimeInterval(seconds))
        if let ttl, issuedAt.addingTimeInterval(ttl) < now { throw FernetError.expired }
        do {
            let payload = try AES._CBC.decrypt(Array(bytes[25..<(bytes.count - 32)]), using: SymmetricKey(data: key.encryption),
                                               iv: try AES._CBC.IV(ivBytes: Array(bytes[9..<25])))
            return (Array(payload), issuedAt)
        } catch {
            throw FernetError.malformedToken
        }
    }
}

/// URL-safe base64 with `=` padding on output; padding optional on input.
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    static func decode(_ text: String) -> [UInt8]? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard).map { Array($0) }
    }
}
