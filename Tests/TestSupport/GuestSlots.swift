import Foundation

/// How many QEMU test guests this host boots at once. Under TCG on two cores, beside the
/// other suites' controllers, nodes and CLI runs, a guest booting beside several others took
/// over a minute to print its first line (CI, 2026-12-03), so every test that boots a real
/// guest takes slots first: a test booting more than the capacity (ten) waits until it has
/// the host to itself, and those that came after it wait their turn (first come, first served).
public actor GuestSlots {
    public static let shared = GuestSlots(capacity: 4)

    let capacity: Int
    private var used = 0
    private var waiting: [(count: Int, resume: CheckedContinuation<Void, Never>)] = []

    init(capacity: Int) { self.capacity = capacity }

    func acquire(_ count: Int) async {
        let count = min(count, capacity)
        if waiting.isEmpty && used + count <= capacity {
            used += count
            return
        }
        await withCheckedContinuation { waiting.append((count, $0)) }
    }

    func release(_ count: Int) {
        used -= min(count, capacity)
        while let first = waiting.first, used + first.count <= capacity {
            waiting.removeFirst()
            used += first.count
            first.resume.resume()
        }
    }
}

/// Runs `body` holding `count` of the host's guest slots.
public func withGuestSlots<T>(_ count: Int, _ body: () async throws -> T) async throws -> T {
    await GuestSlots.shared.acquire(count)
    do {
        let result = try await body()
        await GuestSlots.shared.release(count)
        return result
    } catch {
        await GuestSlots.shared.release(count)
        throw error
    }
}

/// The host's one tgtd, shared by the suites that export volumes: a test that restarts it
/// holds it alone, so no other test's export goes with the restart.
public actor TgtdTurns {
    public static let shared = TgtdTurns()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy { busy = true; return }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }
}

/// Runs `body` with tgtd to itself (see `TgtdTurns`).
public func withTgtdAlone<T>(_ body: () async throws -> T) async throws -> T {
    await TgtdTurns.shared.acquire()
    do {
        let result = try await body()
        await TgtdTurns.shared.release()
        return result
    } catch {
        await TgtdTurns.shared.release()
        throw error
    }
}
