import Foundation

/// One operation at a time per key (an instance, a network): the others wait their turn, in order.
public actor KeyedLocks {
    public init() {}

    private var held: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    public func isBusy(_ id: String) -> Bool { held.contains(id) }

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

    public func with<T: Sendable>(_ id: String, _ body: @Sendable () async throws -> T) async rethrows -> T {
        await acquire(id)
        defer { release(id) }
        return try await body()
    }
}
