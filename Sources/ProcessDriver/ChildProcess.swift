import Foundation
import Logging
import NetlinkDriver
import PetrelCore

/// A long-running child (dnsmasq, a metadata proxy…), optionally inside a network
/// namespace. Every line it prints on stdout or stderr goes to the log, tagged with its
/// name and pid; the last lines are also kept for diagnostics.
public final class ChildProcess: @unchecked Sendable {
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    public let name: String
    public let executable: String
    public let arguments: [String]
    public let namespace: NetworkNamespace?
    private let environment: [String: String]?
    private let logger: Logger
    private let lock = NSLock()
    private var spawned: Spawned?
    private var termination: Termination?
    private var waiters: [CheckedContinuation<Termination, Never>] = []
    private var recent: [String] = []
    private let readersDone = DispatchGroup()
    private static let keptLines = 200

    public init(name: String, executable: String, arguments: [String], namespace: NetworkNamespace? = nil,
                environment: [String: String]? = nil, logger: Logger) throws {
        self.name = name
        self.executable = try Command.resolve(executable)
        self.arguments = arguments
        self.namespace = namespace
        self.environment = environment
        self.logger = logger
    }

    /// Starts the child. Its output is read on two background threads until it closes.
    public func start() throws {
        let child = try Spawned.start(executable, arguments, environment: environment, namespace: namespace, withStdin: false)
        lock.lock()
        spawned = child
        lock.unlock()
        readLines(from: child.stdout, stream: "stdout", pid: child.pid)
        readLines(from: child.stderr, stream: "stderr", pid: child.pid)
        logger.info("child started", metadata: ["child": "\(name)", "pid": "\(child.pid)", "namespace": "\(namespace?.name ?? "-")"])
        child.onExit { [self] status in
            // Let the readers log the last lines before anyone hears that it ended.
            readersDone.wait()
            let outcome = Spawned.termination(status)
            lock.lock()
            termination = outcome
            let waiting = waiters
            waiters.removeAll()
            lock.unlock()
            logger.info("child exited", metadata: ["child": "\(name)", "pid": "\(child.pid)", "termination": "\(outcome)"])
            for waiter in waiting { waiter.resume(returning: outcome) }
        }
    }

    public var pid: Int32 {
        lock.lock()
        defer { lock.unlock() }
        return spawned?.pid ?? 0
    }

    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let spawned else { return false }
        return !spawned.hasExited
    }

    /// The last lines the child printed (stdout and stderr interleaved as read).
    public var recentOutput: [String] {
        lock.lock()
        defer { lock.unlock() }
        return recent
    }

    /// Sends `signal` while the child runs (never to a reaped, possibly reused pid).
    public func signal(_ signal: Int32) {
        lock.lock()
        defer { lock.unlock() }
        guard let spawned, !spawned.hasExited else { return }
        kill(spawned.pid, signal)
    }

    /// Waits for the child to end.
    public func wait() async -> Termination {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let termination {
                lock.unlock()
                continuation.resume(returning: termination)
                return
            }
            waiters.append(continuation)
            lock.unlock()
        }
    }

    /// SIGTERM, then SIGKILL if it has not ended within `grace`.
    @discardableResult
    public func stop(grace: Duration = .seconds(5)) async -> Termination {
        signal(SIGTERM)
        let killer = Task {
            try await Task.sleep(for: grace)
            self.signal(SIGKILL)
        }
        let outcome = await wait()
        killer.cancel()
        return outcome
    }

    private func readLines(from fd: Int32, stream: String, pid: pid_t) {
        readersDone.enter()
        let thread = Thread { [self] in
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 16384)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                pending.append(contentsOf: buffer[0..<n])
                while let newline = pending.firstIndex(of: 0x0A) {
                    emit(String(decoding: pending[..<newline], as: UTF8.self), stream: stream, pid: pid)
                    pending.removeSubrange(...newline)
                }
            }
            if !pending.isEmpty { emit(String(decoding: pending, as: UTF8.self), stream: stream, pid: pid) }
            close(fd)
            readersDone.leave()
        }
        thread.name = "child-\(name)-\(stream)"
        thread.start()
    }

    private func emit(_ line: String, stream: String, pid: pid_t) {
        lock.lock()
        recent.append(line)
        if recent.count > Self.keptLines { recent.removeFirst(recent.count - Self.keptLines) }
        lock.unlock()
        logger.info("\(line)", metadata: ["child": "\(name)", "pid": "\(pid)", "stream": "\(stream)"])
    }
}
