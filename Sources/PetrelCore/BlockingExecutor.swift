import Dispatch

/// Threads owned by one driver for the C calls that block (libvirt's managed save and
/// destroy, LVM commands). Swift's cooperative pool has one thread per core — two on these
/// machines — and a blocked cooperative thread stalls every task of the process; work
/// handed to `run` waits on the driver's own threads instead, and the caller's task
/// suspends until it is done.
public final class BlockingExecutor: Sendable {
    private let queue: DispatchQueue

    /// `serial`: one call at a time, for libraries that are not thread-safe (liblvm2cmd).
    public init(label: String, serial: Bool = false) {
        queue = DispatchQueue(label: label, qos: .userInitiated, attributes: serial ? [] : .concurrent)
    }

    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

}
