import Crypto
import Foundation

/// AWS request signatures as Keystone's `/v3/ec2tokens` checks them: the request a client
/// signed (verb, host, path, parameters, headers, body hash) is signed again with the
/// credential's secret and the two signatures compared. Version 2 (HMAC-SHA256 over the
/// canonical query string) and version 4 (AWS4-HMAC-SHA256, with the derived signing key).
public struct EC2SignedRequest: Sendable {
    public var access: String
    public var signature: String?
    public var verb: String
    public var host: String
    public var path: String
    public var params: [String: String]
    public var headers: [String: String]
    public var bodyHash: String

    public init(access: String, signature: String?, verb: String, host: String, path: String, params: [String: String],
                headers: [String: String], bodyHash: String) {
        self.access = access; self.signature = signature; self.verb = verb; self.host = host; self.path = path
        self.params = params; self.headers = headers; self.bodyHash = bodyHash
    }

    /// The signature of this request with `secret`, in the version the request uses.
    public func expectedSignature(secret: String) throws -> String {
        if let version = params["SignatureVersion"] {
            guard version == "2" else { throw IdentityError.unauthorized("Invalid EC2 signature.") }
            return signatureVersion2(secret: secret)
        }
        if headers["Authorization"]?.hasPrefix("AWS4-HMAC-SHA256") == true || params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" {
            return try signatureVersion4(secret: secret)
        }
        throw IdentityError.unauthorized("Invalid EC2 signature.")
    }

    /// Checks the signature (again without the port if the host has one, as clients that
    /// leave it out sign); throws Keystone's 401s.
    public func verify(secret: String) throws {
        guard let signature else { throw IdentityError.unauthorized("EC2 signature not supplied.") }
        if Self.constantTimeEqual(signature, try expectedSignature(secret: secret)) { return }
        if host.contains(":"), let components = URLComponents(string: "//" + host), let bare = components.host {
            var withoutPort = self
            withoutPort.host = bare
            if Self.constantTimeEqual(signature, try withoutPort.expectedSignature(secret: secret)) { return }
        }
        throw IdentityError.unauthorized("Invalid EC2 signature.")
    }

    /// The request's timestamp (`Timestamp`, or `X-Amz-Date` as a header or parameter), if any.
    public var timestamp: String? {
        params["Timestamp"] ?? headers["X-Amz-Date"] ?? params["X-Amz-Date"]
    }

    /// Refuses a request signed longer than `ttl` ago (a request without a timestamp passes, as in Keystone).
    public func checkTimestamp(ttl: TimeInterval, now: Date = Date()) throws {
        guard let timestamp else { return }
        guard let date = Self.parseTime(timestamp) else {
            throw IdentityError.unauthorized("Credential timestamp is invalid: Unable to parse date string '\(timestamp)'")
        }
        if now > date.addingTimeInterval(ttl) { throw IdentityError.unauthorized("Credential is expired") }
    }

    /// ISO 8601 in its extended (`2026-12-05T08:00:00Z`, fractions and offsets allowed) and
    /// basic (`20261205T080000Z`) forms.
    static func parseTime(_ text: String) -> Date? {
        let extended = ISO8601DateFormatter()
        extended.formatOptions = [.withInternetDateTime]
        if let date = extended.date(from: text) { return date }
        extended.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = extended.date(from: text) { return date }
        let basic = DateFormatter()
        basic.locale = Locale(identifier: "en_US_POSIX")
        basic.timeZone = TimeZone(identifier: "UTC")
        for format in ["yyyyMMdd'T'HHmmss'Z'", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss.SSSSSS"] {
            basic.dateFormat = format
            if let date = basic.date(from: text) { return date }
        }
        return nil
    }

    // MARK: version 2

    func signatureVersion2(secret: String) -> String {
        var params = params
        params["SignatureMethod"] = "HmacSHA256"
        let text = "\(verb)\n\(host)\n\(path)\n" + Self.canonicalQuery(params)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return Data(mac).base64EncodedString()
    }

    /// Sorted `key=value` pairs, each percent-encoded except letters, digits and `-_.~`.
    static func canonicalQuery(_ params: [String: String]) -> String {
        params.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            .map { percentEncoded($0) + "=" + percentEncoded(params[$0]!) }
            .joined(separator: "&")
    }

    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    // MARK: version 4

    /// One parameter of the signature: from the `Authorization` header or its `X-Amz-` query parameter.
    func authorizationParameter(_ name: String) -> String? {
        if let header = headers["Authorization"] {
            guard let range = header.range(of: name + "=") else { return "" }
            return String(header[range.upperBound...].prefix { $0 != "," })
        }
        return params["X-Amz-" + name]
    }

    func signatureVersion4(secret: String) throws -> String {
        let signedHeaders = authorizationParameter("SignedHeaders") ?? ""
        var lowered: [String: String] = [:]
        for (name, value) in headers {
            lowered[name.lowercased().trimmingCharacters(in: .whitespaces)] = value.trimmingCharacters(in: .whitespaces)
        }
        let canonicalHeaders = signedHeaders.split(separator: ";", omittingEmptySubsequences: false)
            .compactMap { name in lowered[String(name)].map { "\(name):\($0)" } }
            .joined(separator: "\n") + "\n"
        let query = verb.uppercased() == "POST" ? "" : Self.canonicalQuery(params)
        let canonicalRequest = [verb.uppercased(), path, query, canonicalHeaders, signedHeaders, bodyHash].joined(separator: "\n")
        let credential = (authorizationParameter("Credential") ?? "").split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard credential.count >= 5 else { throw IdentityError.unauthorized("Invalid EC2 signature.") }
        let date = credential[1]
        guard let requestDate = headers["X-Amz-Date"] ?? params["X-Amz-Date"], requestDate.hasPrefix(date) else {
            throw IdentityError.unauthorized("Invalid EC2 signature.")
        }
        let scope = credential[1...].joined(separator: "/")
        let digest = SHA256.hash(data: Array(canonicalRequest.utf8)).map { String(format: "%02x", $0) }.joined()
        let stringToSign = ["AWS4-HMAC-SHA256", requestDate, scope, digest].joined(separator: "\n")
        func sign(_ key: [UInt8], _ text: String) -> [UInt8] {
            Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: key)))
        }
        var key = sign(Array(("AWS4" + secret).utf8), date)
        key = sign(key, credential[2])
        key = sign(key, credential[3])
        key = sign(key, "aws4_request")
        return sign(key, stringToSign).map { String(format: "%02x", $0) }.joined()
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
