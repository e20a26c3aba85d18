import Foundation
import NetlinkDriver
import PetrelCore

/// A child started with posix_spawn, its pipes, and its exit status collected by
/// waitpid on a thread of its own. (Foundation's Process learns of exits through
/// SIGCHLD, which Dispatch's threads block; it can miss them and spin.)
final class Spawned: @unchecked Sendable {
    let pid: pid_t
    /// Write end of the child's standard input, when one was asked for.
    let stdin: Int32?
    let stdout: Int32
    let stderr: Int32
    private let lock = NSLock()
    private var status: Int32?
    private var waiters: [@Sendable (Int32) -> Void] = []

    private init(pid: pid_t, stdin: Int32?, stdout: Int32, stderr: Int32) {
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
    }

    /// Starts `executable` (an absolute path) in `namespace` when given. The child gets
    /// default signal dispositions and an empty signal mask, whatever this thread has.
    static func start(_ executable: String, _ arguments: [String], environment: [String: String]?,
                      namespace: NetworkNamespace?, withStdin: Bool) throws -> Spawned {
        var input: [Int32] = [-1, -1], output: [Int32] = [-1, -1], errors: [Int32] = [-1, -1]
        // Close-on-exec from birth, so no other child spawned meanwhile inherits an end
        // (which would keep our reads from ever seeing end-of-file).
        guard pipeCloseOnExec(&output, O_CLOEXEC) == 0, pipeCloseOnExec(&errors, O_CLOEXEC) == 0,
              !withStdin || pipeCloseOnExec(&input, O_CLOEXEC) == 0 else {
            throw SystemCallError("pipe")
        }
        let (inputFDs, outputFDs, errorFDs) = (input, output, errors)
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let launch: @Sendable () throws -> pid_t = {
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            if withStdin {
                posix_spawn_file_actions_adddup2(&actions, inputFDs[0], 0)
            } else {
                posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            }
            posix_spawn_file_actions_adddup2(&actions, outputFDs[1], 1)
            posix_spawn_file_actions_adddup2(&actions, errorFDs[1], 2)
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var none = sigset_t(), all = sigset_t()
            sigemptyset(&none)
            sigfillset(&all)
            posix_spawnattr_setsigmask(&attributes, &none)
            posix_spawnattr_setsigdefault(&attributes, &all)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
            let argv = ([executable] + arguments).map { strdup($0) } + [nil]
            let envp = env.map { strdup($0) } + [nil]
            defer {
                argv.forEach { free($0) }
                envp.forEach { free($0) }
            }
            var pid: pid_t = 0
            let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            guard rc == 0 else { throw SystemCallError("spawn \(executable)", code: rc) }
            return pid
        }
        let pid: pid_t
        do {
            pid = try namespace.map { try $0.perform(launch) } ?? launch()
        } catch {
            for fd in input + output + errors where fd >= 0 { close(fd) }
            throw error
        }
        close(output[1])
        close(errors[1])
        if withStdin { close(input[0]) }
        let spawned = Spawned(pid: pid, stdin: withStdin ? input[1] : nil, stdout: output[0], stderr: errors[0])
        let reaper = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            spawned.finished(status)
        }
        reaper.name = "reap-\(pid)"
        reaper.start()
        return spawned
    }

    private func finished(_ raw: Int32) {
        lock.lock()
        status = raw
        let waiting = waiters
        waiters.removeAll()
        lock.unlock()
        for waiter in waiting { waiter(raw) }
    }

    /// Calls `handler` with the raw wait status once the child has ended.
    func onExit(_ handler: @escaping @Sendable (Int32) -> Void) {
        lock.lock()
        if let status {
            lock.unlock()
            handler(status)
            return
        }
        waiters.append(handler)
        lock.unlock()
    }

    var hasExited: Bool {
        lock.lock()
        defer { lock.unlock() }
        return status != nil
    }

    /// Reads `fd` to its end and closes it.
    static func readAll(_ fd: Int32) -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n > 0 { data.append(contentsOf: buffer[0..<n]); continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(fd)
        return data
    }

    /// Decodes a wait status.
    static func termination(_ status: Int32) -> ChildProcess.Termination {
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }
}

/// glibc's pipe2(2), which Swift's Glibc module leaves out (it is a _GNU_SOURCE call).
@_silgen_name("pipe2")
private func pipeCloseOnExec(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32

