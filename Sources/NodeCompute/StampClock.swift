import Foundation

/// Microseconds since 1970, strictly increasing within the process: the order of a node's updates.
final class StampClock: @unchecked Sendable {
    private let lock = NSLock()
    private var last: Int64 = 0

    func next() -> Int64 {
        lock.withLock {
            last = max(last + 1, Int64(Date().timeIntervalSince1970 * 1_000_000))
            return last
        }
    }
}
