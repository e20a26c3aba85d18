import Foundation

/// What a Petrel token carries, sealed in a Fernet token: who, how they authenticated, the
/// scope, when it expires and its audit ids. Nothing about the token is stored server-side;
/// revocation is checked against revocation events by user, project, audit id and time.
public struct TokenPayload: Sendable, Equatable {
    public enum Scope: Sendable, Equatable {
        case unscoped
        case project(String)
        case domain(String)
        case system
    }

    public struct Methods: OptionSet, Sendable, Equatable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let password = Methods(rawValue: 1)
        public static let token = Methods(rawValue: 2)
        public static let applicationCredential = Methods(rawValue: 4)
        public static let ec2Credential = Methods(rawValue: 8)
        public static let totp = Methods(rawValue: 16)

        /// Keystone's names, in its order.
        public var names: [String] {
            var result: [String] = []
            if contains(.password) { result.append("password") }
            if contains(.token) { result.append("token") }
            if contains(.applicationCredential) { result.append("application_credential") }
            if contains(.ec2Credential) { result.append("ec2credential") }
            if contains(.totp) { result.append("totp") }
            return result
        }
    }

    public var userID: String
    public var methods: Methods
    public var scope: Scope
    public var expiresAt: Date
    /// When the token was issued, to the millisecond (Fernet's own timestamp has whole seconds,
    /// too coarse to tell a token issued just after a revocation from one issued just before).
    public var issuedAt: Date
    /// This token's audit id first, then the audit id of the token it was made from (if any).
    public var auditIDs: [String]
    public var applicationCredentialID: String?
    /// The OS-TRUST trust this token acts under, if any.
    public var trustID: String?

    public init(userID: String, methods: Methods, scope: Scope, expiresAt: Date, auditIDs: [String],
                applicationCredentialID: String? = nil, trustID: String? = nil, issuedAt: Date = Date()) {
        self.userID = userID
        self.issuedAt = Date(timeIntervalSince1970: (issuedAt.timeIntervalSince1970 * 1000).rounded(.down) / 1000)
        self.methods = methods
        self.scope = scope
        // Whole milliseconds, as the token carries it: the body of a new token, of its validation
        // and of a token rescoped from it print the same expires_at.
        self.expiresAt = Date(timeIntervalSince1970: (expiresAt.timeIntervalSince1970 * 1000).rounded(.down) / 1000)
        self.auditIDs = auditIDs
        self.applicationCredentialID = applicationCredentialID
        self.trustID = trustID
    }

    /// A new random audit id, as Keystone makes them (16 random bytes, urlsafe base64, unpadded).
    public static func newAuditID() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        return String(Base64URL.encode(bytes).prefix { $0 != "=" })
    }

    /// Version 2, or 3 when a trust follows (so tokens without one stay readable by older controllers).
    static let formatVersion: UInt8 = 2
    static let trustFormatVersion: UInt8 = 3

    /// A compact binary form (ids that are 32 hex digits take 16 bytes), so tokens stay short.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = [trustID == nil ? Self.formatVersion : Self.trustFormatVersion, methods.rawValue]
        switch scope {
        case .unscoped: out.append(0)
        case .project(let id): out.append(1); Self.appendID(id, to: &out)
        case .domain(let id): out.append(2); Self.appendID(id, to: &out)
        case .system: out.append(3)
        }
        Self.appendID(userID, to: &out)
        let milliseconds = UInt64(max(0, expiresAt.timeIntervalSince1970 * 1000))
        withUnsafeBytes(of: milliseconds.bigEndian) { out.append(contentsOf: $0) }
        let issued = UInt64(max(0, issuedAt.timeIntervalSince1970 * 1000))
        withUnsafeBytes(of: issued.bigEndian) { out.append(contentsOf: $0) }
        out.append(UInt8(min(auditIDs.count, 255)))
        for auditID in auditIDs.prefix(255) { Self.appendString(auditID, to: &out) }
        if let applicationCredentialID {
            out.append(1)
            Self.appendID(applicationCredentialID, to: &out)
        } else {
            out.append(0)
        }
        if let trustID { Self.appendID(trustID, to: &out) }
        return out
    }

    public init(decoding bytes: [UInt8]) throws {
        var reader = Reader(bytes: bytes)
        let version = try reader.byte()
        guard version == Self.formatVersion || version == Self.trustFormatVersion else { throw FernetError.unsupportedVersion }
        methods = Methods(rawValue: try reader.byte())
        switch try reader.byte() {
        case 0: scope = .unscoped
        case 1: scope = .project(try reader.id())
        case 2: scope = .domain(try reader.id())
        case 3: scope = .system
        default: throw FernetError.malformedToken
        }
        userID = try reader.id()
        let milliseconds = try reader.take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        expiresAt = Date(timeIntervalSince1970: TimeInterval(milliseconds) / 1000)
        let issued = try reader.take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        issuedAt = Date(timeIntervalSince1970: TimeInterval(issued) / 1000)
        auditIDs = try (0..<Int(try reader.byte())).map { _ in try reader.string() }
        applicationCredentialID = try reader.byte() == 1 ? try reader.id() : nil
        trustID = version == Self.trustFormatVersion ? try reader.id() : nil
        guard reader.atEnd else { throw FernetError.malformedToken }
    }

    private static func appendID(_ id: String, to out: inout [UInt8]) {
        if id.count == 32, let raw = hexBytes(id) {
            out.append(0xFF)  // marker: 16 raw bytes follow
            out += raw
        } else {
            appendString(id, to: &out)
        }
    }

    private static func appendString(_ text: String, to out: inout [UInt8]) {
        let bytes = Array(text.utf8.prefix(254))
        out.append(UInt8(bytes.count))
        out += bytes
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0
        var atEnd: Bool { offset == bytes.count }

        mutating func byte() throws -> UInt8 { try take(1).first! }

        mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
            guard offset + count <= bytes.count else { throw FernetError.malformedToken }
            defer { offset += count }
            return bytes[offset..<(offset + count)]
        }

        mutating func string() throws -> String {
            let length = Int(try byte())
            return String(decoding: try take(length), as: UTF8.self)
        }

        mutating func id() throws -> String {
            let first = try byte()
            if first == 0xFF { return try take(16).map { String(format: "%02x", $0) }.joined() }
            return String(decoding: try take(Int(first)), as: UTF8.self)
        }
    }
}

/// Issues and validates tokens with the key repository's keys.
public struct TokenSealer: Sendable {
    public let keys: FernetKeyRepository.Keys

    public init(keys: FernetKeyRepository.Keys) { self.keys = keys }

    public func seal(_ payload: TokenPayload) throws -> String {
        try Fernet.encrypt(payload.encoded(), key: keys.primary, at: payload.issuedAt)
    }

    /// The payload of a token that verifies with any key and has not expired.
    public func open(_ token: String, now: Date = Date()) throws -> (payload: TokenPayload, issuedAt: Date) {
        let (bytes, issuedAt) = try Fernet.decrypt(token, keys: keys.all)
        let payload = try TokenPayload(decoding: bytes)
        guard payload.expiresAt > now else { throw FernetError.expired }
        return (payload, issuedAt)
    }
}
