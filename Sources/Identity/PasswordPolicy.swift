import Crypto
import Foundation
import SQLKit
import Store

/// `[security_compliance]` password rules and `[totp]`/`[receipt]` settings.
public struct PasswordRules: Sendable {
    /// A new password must match this regular expression (nil: any).
    public var regex: String?
    /// What the regular expression asks for, in words (shown when a password does not match).
    public var regexDescription: String?
    /// A new password may not equal any of the user's last N passwords (0: no history).
    public var uniqueLastPasswordCount = 0
    /// Days a user must keep a password they chose before changing it again (0: none).
    public var minimumPasswordAgeDays = 0
    /// Days a password stays valid (nil: forever).
    public var expiresDays: Int?
    /// A password an administrator set must be changed by the user before it works.
    public var changePasswordUponFirstUse = false

    public init() {}
}

/// A user's resource options, read from their stored JSON.
public struct UserOptionValues: Sendable, Equatable {
    public var ignoreLockout = false
    public var lockPassword = false
    public var ignoreChangePasswordUponFirstUse = false
    public var ignorePasswordExpiry = false
    public var multiFactorAuthEnabled = true
    public var multiFactorAuthRules: [[String]] = []

    public init(json text: String) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else { return }
        ignoreLockout = object["ignore_lockout_failure_attempts"] as? Bool ?? false
        lockPassword = object["lock_password"] as? Bool ?? false
        ignoreChangePasswordUponFirstUse = object["ignore_change_password_upon_first_use"] as? Bool ?? false
        ignorePasswordExpiry = object["ignore_password_expiry"] as? Bool ?? false
        multiFactorAuthEnabled = object["multi_factor_auth_enabled"] as? Bool ?? true
        multiFactorAuthRules = (object["multi_factor_auth_rules"] as? [[String]]) ?? []
    }
}

/// The password alone (or another incomplete set of methods) proved who the user is, but their
/// multi-factor rules ask for more: the API answers 401 with this receipt, which the client
/// sends back with the missing methods.
public struct AuthReceiptRequired: Error, Sendable {
    public let receipt: String
    public let userID: String
    public let userName: String
    public let userDomain: TokenInfo.Named
    public let methods: [String]
    public let requiredMethods: [[String]]
    public let issuedAt: Date
    public let expiresAt: Date
}

extension IdentityService {
    // MARK: setting passwords

    /// Checks a new password against the regular expression and the user's history.
    func checkNewPassword(_ password: String, userID: String?, _ sql: any SQLDatabase) async throws {
        let rules = options.passwordRules
        if let pattern = rules.regex {
            let matches = (try? NSRegularExpression(pattern: pattern)).map {
                $0.firstMatch(in: password, range: NSRange(password.startIndex..., in: password)) != nil
            } ?? false
            if !matches {
                throw IdentityError.badRequest("The password does not match the requirements: \(rules.regexDescription ?? pattern).")
            }
        }
        if let userID, rules.uniqueLastPasswordCount > 0 {
            let recent = try await IdentityTables.passwordHistory.all(sql, where: [.equals("user_id", userID)], orderBy: "created_at")
                .suffix(rules.uniqueLastPasswordCount)
            for row in recent where await PasswordHasher.verify(password, against: row.passwordHash) {
                throw IdentityError.badRequest("The new password cannot be identical to a previous password. The total number which includes the new password must be unique is \(rules.uniqueLastPasswordCount).")
            }
        }
    }

    /// When a password set now stops working: at once if an administrator set it and users
    /// must change such passwords, after `expiresDays` otherwise, never if the user is exempt.
    func passwordExpiry(selfService: Bool, options userOptions: UserOptionValues, now: Int64) -> Int64? {
        let rules = options.passwordRules
        if !selfService && rules.changePasswordUponFirstUse && !userOptions.ignoreChangePasswordUponFirstUse { return now }
        guard let days = rules.expiresDays, !userOptions.ignorePasswordExpiry else { return nil }
        return now + Int64(days) * 86_400_000
    }

    /// Records a password the user now has (for the history rule).
    func recordPassword(_ hash: String, userID: String, selfService: Bool, at now: Int64, _ sql: any SQLDatabase) async throws {
        try await IdentityTables.passwordHistory.insert(sql, .init(userID: userID, passwordHash: hash, selfService: selfService, createdAt: now))
    }

    /// `minimum_password_age`: a password the user chose must be kept that many days.
    func checkMinimumAge(userID: String, _ sql: any SQLDatabase) async throws {
        let days = options.passwordRules.minimumPasswordAgeDays
        guard days > 0, let last = try await IdentityTables.passwordHistory.all(sql, where: [.equals("user_id", userID)], orderBy: "created_at").last,
              last.selfService else { return }
        let until = last.createdAt + Int64(days) * 86_400_000
        let now = Self.now()
        if now < until {
            throw IdentityError.badRequest("You cannot change your password at this time due to the minimum password age. Once you change your password, it must be used for \(days) day(s) before it can be changed. Please try again in \((until - now) / 86_400_000) day(s) or contact your administrator to reset your password.")
        }
    }

    // MARK: TOTP

    /// Checks a TOTP passcode against every `totp` credential of the user (RFC 6238: 30 s
    /// steps, 6 digits, HMAC-SHA1), for the current step and `[totp] included_previous_windows` before it.
    func checkTOTP(_ reference: UserReference, passcode: String) async throws -> String {
        guard let user = try await database.withConnection({ sql in try await self.findUser(sql, reference) }), user.enabled else {
            throw IdentityError.authenticationRequired
        }
        let secrets = try await credentials(userID: user.id, type: "totp").map(\.blob)
        let now = Date()
        for secret in secrets {
            for window in 0...max(0, options.totpPreviousWindows) {
                let at = now.addingTimeInterval(-30 * Double(window))
                if let expected = TOTP.code(secret: secret, at: at), EC2SignedRequest.constantTimeEqual(expected, passcode) { return user.id }
            }
        }
        throw IdentityError.authenticationRequired
    }

    // MARK: multi-factor rules and receipts

    static let receiptVersion: UInt8 = 0x52  // "R": a receipt never opens as a token

    /// Throws `AuthReceiptRequired` when the user's rules ask for more than `methods`.
    func enforceMultiFactorRules(userID: String, methods: TokenPayload.Methods) async throws {
        guard let user = try await read({ sql in try await IdentityTables.users.get(sql, id: userID) }) else { return }
        let values = UserOptionValues(json: user.options)
        guard values.multiFactorAuthEnabled, !values.multiFactorAuthRules.isEmpty else { return }
        let known: Set<String> = ["password", "token", "totp", "application_credential"]
        let have = Set(methods.names)
        var anyValidRule = false
        for rule in values.multiFactorAuthRules {
            let valid = Set(rule).intersection(known)
            guard !valid.isEmpty else { continue }
            anyValidRule = true
            if valid.isSubset(of: have) { return }
        }
        // Rules naming no method that exists would lock the user out: Keystone lets them in.
        guard anyValidRule else { return }
        let domain = try await read { sql in try await IdentityTables.domains.get(sql, id: user.domainID) }
        let now = Date()
        let expires = now.addingTimeInterval(options.receiptExpiration)
        var bytes: [UInt8] = [Self.receiptVersion, methods.rawValue]
        withUnsafeBytes(of: UInt64(expires.timeIntervalSince1970 * 1000).bigEndian) { bytes.append(contentsOf: $0) }
        bytes += Array(user.id.utf8)
        let receipt = try Fernet.encrypt(bytes, key: state.withLock { $0.sealer }.keys.primary, at: now)
        throw AuthReceiptRequired(receipt: receipt, userID: user.id, userName: user.name,
                                  userDomain: .init(id: user.domainID, name: domain?.name ?? ""), methods: methods.names,
                                  requiredMethods: values.multiFactorAuthRules, issuedAt: now, expiresAt: expires)
    }

    /// The user and methods a receipt stands for; a bad or expired receipt is a 401.
    func openReceipt(_ receipt: String) throws -> (userID: String, methods: TokenPayload.Methods) {
        let keys = state.withLock { $0.sealer }.keys.all
        guard let (bytes, _) = try? Fernet.decrypt(receipt, keys: keys), bytes.count > 10, bytes[0] == Self.receiptVersion else {
            throw IdentityError.unauthorized("The receipt is not valid.")
        }
        let expires = bytes[2..<10].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard Double(expires) / 1000 > Date().timeIntervalSince1970 else { throw IdentityError.unauthorized("The receipt has expired.") }
        return (String(decoding: bytes[10...], as: UTF8.self), TokenPayload.Methods(rawValue: bytes[1]))
    }
}

/// RFC 6238 time-based one-time passwords over RFC 4226's HOTP, as Keystone's `totp` method
/// checks them: the credential's blob is the base32 secret.
public enum TOTP {
    public static func code(secret: String, at date: Date, digits: Int = 6, step: TimeInterval = 30) -> String? {
        guard let key = base32Decode(secret), !key.isEmpty else { return nil }
        let counter = UInt64(max(0, date.timeIntervalSince1970) / step)
        var message: [UInt8] = []
        withUnsafeBytes(of: counter.bigEndian) { message.append(contentsOf: $0) }
        let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: key)))
        let offset = Int(mac[mac.count - 1] & 0x0F)
        let value = (UInt32(mac[offset] & 0x7F) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let text = String(value % modulus)
        return String(repeating: "0", count: digits - text.count) + text
    }

    /// RFC 4648 base32 (padding optional, case and spaces ignored, as authenticator apps write it).
    public static func base32Decode(_ text: String) -> [UInt8]? {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)
        var bits: UInt64 = 0, count = 0
        var out: [UInt8] = []
        for byte in text.uppercased().utf8 where byte != UInt8(ascii: "=") && byte != UInt8(ascii: " ") {
            guard let index = alphabet.firstIndex(of: byte) else { return nil }
            bits = (bits << 5) | UInt64(index)
            count += 5
            if count >= 8 {
                count -= 8
                out.append(UInt8((bits >> UInt64(count)) & 0xFF))
            }
        }
        return out
    }
}
