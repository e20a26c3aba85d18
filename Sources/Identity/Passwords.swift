import Crypto
import CryptDriver
import Foundation
import PetrelCore
import Synchronization

/// Password hashing: bcrypt over an HMAC-SHA256 of the whole password, written as passlib's
/// `bcrypt_sha256` (version 2) writes it, so every byte of a long password counts (bcrypt
/// alone reads 72). Plain `$2a$`/`$2b$` hashes (Keystone's, or Petrel's before this) still
/// verify, and `needsRehash` tells the caller to replace them after a successful check.
/// Hashing and verifying take a noticeable time on purpose (~0.25 s at cost 12), so they
/// run on a thread of their own instead of holding one of the few cooperative threads.
public enum PasswordHasher {
    public static func hash(_ password: String, cost: Int) async -> String {
        // crypt(3) refuses only a malformed setting, which gensalt never makes.
        await offPool { (try? BcryptSHA256.hash(password, cost: cost)) ?? "*" }
    }

    public static func verify(_ password: String, against hash: String) async -> Bool {
        await offPool {
            hash.hasPrefix(BcryptSHA256.prefix) ? BcryptSHA256.verify(password, hash: hash) : SystemBcrypt.verify(password, hash: hash)
        }
    }

    /// Whether a stored hash is of an older scheme and should be replaced once the password
    /// has been checked against it.
    public static func needsRehash(_ hash: String) -> Bool { !hash.hasPrefix(BcryptSHA256.prefix + "v=2,") }

    /// At most this many bcrypt computations run at once (each on a thread of its own); more
    /// wait their turn instead of starting threads without bound.
    static let slots = AsyncSlots(max(2, ProcessInfo.processInfo.activeProcessorCount * 2))

    private static func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await slots.acquire()
        let result = await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: work()) }
            thread.name = "bcrypt"
            thread.start()
        }
        slots.release()
        return result
    }
}

/// A counting semaphore for async code.
final class AsyncSlots: Sendable {
    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    init(_ count: Int) { state = Mutex(State(free: count)) }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.free > 0 { state.free -= 1; return true }
                state.waiting.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty { state.free += 1; return nil }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}

/// `[security_compliance]` lockout: after `failureAttempts` wrong passwords in a row a user
/// is locked out for `duration`; a success resets the count. `failureAttempts == 0` turns
/// lockout off (Keystone's default).
public struct LockoutPolicy: Sendable, Equatable {
    public let failureAttempts: Int
    public let duration: TimeInterval

    public init(failureAttempts: Int, duration: TimeInterval) {
        self.failureAttempts = failureAttempts
        self.duration = duration
    }

    /// A user's record of recent failures, as stored with the user.
    public struct State: Sendable, Equatable {
        public var failures: Int
        public var lastFailure: Date?

        public init(failures: Int = 0, lastFailure: Date? = nil) {
            self.failures = failures
            self.lastFailure = lastFailure
        }
    }

    /// Whether the user is locked out at `now` (then the password is not even checked).
    public func isLocked(_ state: State, now: Date = Date()) -> Bool {
        guard failureAttempts > 0, state.failures >= failureAttempts, let last = state.lastFailure else { return false }
        return now < last.addingTimeInterval(duration)
    }

    public func afterFailure(_ state: State, now: Date = Date()) -> State {
        // Once a lockout has expired, counting starts again.
        let expired = failureAttempts > 0 && state.failures >= failureAttempts && !isLocked(state, now: now)
        return State(failures: (expired ? 0 : state.failures) + 1, lastFailure: now)
    }

    public func afterSuccess(_ state: State) -> State { State() }
}

/// passlib's `bcrypt_sha256`: the bcrypt input is the base64 of HMAC-SHA256(key: the salt,
/// message: the password) (version 2; version 1 took a plain SHA-256), 44 characters whatever
/// the password's length. Written `$bcrypt-sha256$v=2,t=2b,r=<cost>$<salt>$<checksum>`.
enum BcryptSHA256 {
    static let prefix = "$bcrypt-sha256$"

    static func hash(_ password: String, cost: Int) throws -> String {
        let setting = try SystemBcrypt.setting(cost: cost)  // $2b$NN$<22 characters of salt>
        let parts = setting.split(separator: "$")
        guard parts.count == 3, let rounds = Int(parts[1]) else { throw SystemBcrypt.Failure.cannotHash }
        let salt = String(parts[2])
        let full = try SystemBcrypt.hash(key(password, salt: salt, version: 2), setting: setting)
        return "\(prefix)v=2,t=2b,r=\(rounds)$\(salt)$\(full.suffix(31))"
    }

    /// The stored hash, rewritten as the plain bcrypt hash of the key, is checked by bcrypt's own
    /// (constant-time) verification.
    static func verify(_ password: String, hash: String) -> Bool {
        guard let parsed = parse(hash) else { return false }
        let bcrypt = "$2b$" + String(format: "%02d", parsed.rounds) + "$" + parsed.salt + parsed.checksum
        return SystemBcrypt.verify(key(password, salt: parsed.salt, version: parsed.version), hash: bcrypt)
    }

    static func key(_ password: String, salt: String, version: Int) -> String {
        let digest: Data = version == 1
            ? Data(SHA256.hash(data: Data(password.utf8)))
            : Data(HMAC<SHA256>.authenticationCode(for: Data(password.utf8), using: SymmetricKey(data: Data(salt.utf8))))
        return digest.base64EncodedString()
    }

    /// Version 2: `$bcrypt-sha256$v=2,t=2b,r=12$salt$checksum`; version 1: `$bcrypt-sha256$2b,12$salt$checksum`.
    static func parse(_ hash: String) -> (version: Int, rounds: Int, salt: String, checksum: String)? {
        let fields = hash.dropFirst(prefix.count).split(separator: "$", omittingEmptySubsequences: false)
        guard hash.hasPrefix(prefix), fields.count == 3, fields[1].count == 22, fields[2].count == 31 else { return nil }
        var version = 1, rounds: Int?
        for item in fields[0].split(separator: ",") {
            if item.hasPrefix("v=") { version = Int(item.dropFirst(2)) ?? 0 }
            else if item.hasPrefix("r=") { rounds = Int(item.dropFirst(2)) }
            else if let number = Int(item) { rounds = number }
        }
        guard version == 1 || version == 2, let rounds, (4...31).contains(rounds) else { return nil }
        return (version, rounds, String(fields[1]), String(fields[2]))
    }
}
