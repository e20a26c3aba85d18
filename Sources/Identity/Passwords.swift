import Foundation
import CryptDriver
import PetrelCore
import Synchronization

/// Password hashing as Keystone does it: bcrypt (the system's crypt(3)), cost from
/// configuration (default 12).
/// Hashing and verifying take a noticeable time on purpose (~0.25 s at cost 12), so they
/// run on a thread of their own instead of holding one of the few cooperative threads.
public enum PasswordHasher {
    public static func hash(_ password: String, cost: Int) async -> String {
        // crypt(3) refuses only a malformed setting, which gensalt never makes.
        await offPool { (try? SystemBcrypt.hash(password, cost: cost)) ?? "*" }
    }

    public static func verify(_ password: String, against hash: String) async -> Bool {
        await offPool { SystemBcrypt.verify(password, hash: hash) }
    }

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
