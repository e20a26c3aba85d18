import Foundation

/// Runs blocking work on a fresh thread of its own and waits for its result. For calls
/// that change per-thread state (network namespace, signal mask) which must not leak
/// into shared threads: the thread ends with the work.
public enum DedicatedThread {
    public static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        let thread = Thread {
            box.value = body()
            done.signal()
        }
        thread.name = name
        thread.start()
        done.wait()
        return box.value!
    }
}

private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
