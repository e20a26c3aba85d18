import Foundation

/// One operation at a time per instance.
actor InstanceLocks {
    private var held: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func isBusy(_ id: String) -> Bool { held.contains(id) }

    private func acquire(_ id: String) async {
        if !held.contains(id) {
            held.insert(id)
            return
        }
        await withCheckedContinuation { waiters[id, default: []].append($0) }
    }

    private func release(_ id: String) {
        if var queue = waiters[id], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[id] = queue.isEmpty ? nil : queue
            next.resume()  // the lock passes to the next waiter
        } else {
            held.remove(id)
        }
    }

    func with<T: Sendable>(_ id: String, _ body: @Sendable () async throws -> T) async rethrows -> T {
        await acquire(id)
        defer { release(id) }
        return try await body()
    }
}

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
