import Foundation
import NetlinkDriver
import PetrelCore

/// A command that exited unsuccessfully, with what it printed on standard error.
public struct CommandError: Error, CustomStringConvertible, Sendable {
    public let command: [String]
    public let status: Int32
    public let stderr: String
    public var description: String {
        "\(command.joined(separator: " ")) exited with status \(status): \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
    }
}

public struct CommandResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Short-lived commands (iptables-restore, qemu-img, …), run to completion.
public enum Command {
    /// Runs `executable` with `arguments`, feeding `input` on standard input, optionally
    /// inside a network namespace, and returns its exit status and output.
    ///
    /// The caller's task is suspended, not blocked, while the command runs: the child's
    /// output is read and its exit awaited on threads of their own.
    public static func run(_ executable: String, _ arguments: [String], input: String? = nil,
                           namespace: NetworkNamespace? = nil) async throws -> CommandResult {
        let child = try Spawned.start(try resolve(executable), arguments, environment: nil, namespace: namespace,
                                      withStdin: input != nil)
        if let input, let fd = child.stdin {
            // Written from a thread of its own: a child that prints a lot before reading
            // must not deadlock against us.
            let writer = Thread {
                let bytes = Array(input.utf8)
                var offset = 0
                while offset < bytes.count {
                    let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    offset += n
                }
                close(fd)
            }
            writer.start()
        }
        // Both pipes are drained at once so neither fills up and blocks the child.
        async let output = readToEnd(child.stdout)
        async let errors = readToEnd(child.stderr)
        let (outputData, errorData) = await (output, errors)
        let raw = await withCheckedContinuation { continuation in child.onExit { continuation.resume(returning: $0) } }
        let status: Int32
        switch Spawned.termination(raw) {
        case .exited(let code): status = code
        case .signalled(let signal): status = 128 + signal
        }
        return CommandResult(status: status,
                             stdout: String(decoding: outputData, as: UTF8.self),
                             stderr: String(decoding: errorData, as: UTF8.self))
    }

    private static func readToEnd(_ fd: Int32) async -> Data {
        await withCheckedContinuation { continuation in
            let reader = Thread { continuation.resume(returning: Spawned.readAll(fd)) }
            reader.start()
        }
    }

    /// Like `run`, but a non-zero exit status throws `CommandError`; returns standard output.
    @discardableResult
    public static func check(_ executable: String, _ arguments: [String], input: String? = nil,
                             namespace: NetworkNamespace? = nil) async throws -> String {
        let result = try await run(executable, arguments, input: input, namespace: namespace)
        guard result.status == 0 else {
            throw CommandError(command: [executable] + arguments, status: result.status, stderr: result.stderr)
        }
        return result.stdout
    }

    /// Finds a bare command name on PATH (and in the sbin directories root's tools live in).
    public static func resolve(_ executable: String) throws -> String {
        if executable.contains("/") { return executable }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(executable)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw CommandError(command: [executable], status: 127, stderr: "\(executable): command not found")
    }

}


