import Foundation
import PetrelCore
import ProcessDriver
import Testing

/// Tests that need root or a running service call `require`. On a developer's laptop a
/// missing requirement skips the test with the reason; under CI (`CI=true`) it fails it.
public enum Requirement {
    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    public struct Missing: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "required for this test under CI=true: \(reason)" }
    }

    public static func require(_ condition: Bool, _ reason: String) throws {
        guard !condition else { return }
        if isCI { throw Missing(reason: reason) }
        try Test.cancel("skipped: \(reason)")
    }

    public static func root() throws {
        try require(geteuid() == 0, "must run as root")
    }

    public static func tool(_ name: String) throws {
        let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"].contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(name)")
        }
        try require(found, "\(name) is not installed (run Packaging/host-services.sh)")
    }

    /// libvirtd answers on its socket.
    public static func libvirtd() throws {
        try require(FileManager.default.fileExists(atPath: "/var/run/libvirt/libvirt-sock") && canConnect(unixPath: "/var/run/libvirt/libvirt-sock"),
                    "libvirtd is not running (run Packaging/host-services.sh)")
    }

    /// tgtd (the iSCSI target daemon) listens on its portal, 127.0.0.1:3260.
    public static func tgtd() throws {
        try require(canConnect(port: 3260), "tgtd is not listening on 127.0.0.1:3260 (run Packaging/host-services.sh)")
    }

    /// RabbitMQ listens on 127.0.0.1:5672.
    public static func rabbitmq() throws {
        try require(canConnect(port: 5672), "RabbitMQ is not listening on 127.0.0.1:5672 (run Packaging/host-services.sh)")
    }

    public static func canConnect(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    public static func canConnect(unixPath: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(unixPath.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
    }
}

/// Names for things tests create in shared places (links, namespaces, chains, queues,
/// domains): a recognisable prefix plus randomness, short enough for interface names.
public enum TestNames {
    public static func unique(_ prefix: String = "pt") -> String {
        prefix + String(UInt32.random(in: 0...UInt32.max), radix: 36)
    }
}

/// The repository's top directory (for etc/, Packaging/ and the built programs).
public enum Repository {
    public static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    /// Where `swift build` put the programs (`PETREL_TEST_BIN_DIR` overrides).
    public static var binDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["PETREL_TEST_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        return root.appendingPathComponent(".build/debug")
    }
}

/// Polls `condition` until it holds or `timeout` passes.
public func eventually(timeout: Duration = .seconds(10), every interval: Duration = .milliseconds(50),
                       _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}

/// Tests that use RabbitMQ hold this shared; a test that takes the broker away holds it
/// exclusively, so the outage it causes never hits a test running beside it.
public actor BrokerUse {
    public static let shared = BrokerUse()
    private var readers = 0
    private var writer = false
    private var waiting: [(exclusive: Bool, continuation: CheckedContinuation<Void, Never>)] = []

    public func withShared<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await holding(exclusive: false, body)
    }

    public func withExclusive<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await holding(exclusive: true, body)
    }

    private func holding<T: Sendable>(exclusive: Bool, _ body: @Sendable () async throws -> T) async throws -> T {
        await acquire(exclusive: exclusive)
        defer { release(exclusive: exclusive) }
        return try await body()
    }

    private func acquire(exclusive: Bool) async {
        if waiting.isEmpty && !writer && (!exclusive || readers == 0) {
            if exclusive { writer = true } else { readers += 1 }
            return
        }
        await withCheckedContinuation { waiting.append((exclusive, $0)) }
    }

    private func release(exclusive: Bool) {
        if exclusive { writer = false } else { readers -= 1 }
        while let next = waiting.first, !writer, !next.exclusive || readers == 0 {
            waiting.removeFirst()
            if next.exclusive { writer = true } else { readers += 1 }
            next.continuation.resume()
        }
    }
}

/// Runs `body`, then `cleanup` whether or not it threw (an async `defer`).
public func withCleanup<T>(_ body: () async throws -> T, cleanup: () async -> Void) async throws -> T {
    do {
        let result = try await body()
        await cleanup()
        return result
    } catch {
        await cleanup()
        throw error
    }
}

/// A throw-away database on each backend.
public enum TestDatabase: String, CaseIterable, Sendable {
    case sqlite, postgresql

    /// Creates an empty database and returns its URL and a way to remove it.
    public func makeDatabase() async throws -> (DatabaseURL, @Sendable () async -> Void) {
        switch self {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-\(UUID().uuidString).db").path
            return (.sqlite(path: path), {
                for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            })
        case .postgresql:
            try Requirement.root()
            try Requirement.require(Requirement.canConnect(port: 5432), "PostgreSQL is not listening on 127.0.0.1:5432 (run Packaging/host-services.sh)")
            let name = "petrel_test_" + TestNames.unique("").lowercased()
            try await Command.check("su", ["postgres", "-c", "createdb -O petrel \(name)"])
            return (.postgresql(url: "postgresql://petrel:petrel@127.0.0.1:5432/\(name)"), {
                _ = try? await Command.run("su", ["postgres", "-c", "dropdb --if-exists --force \(name)"])
            })
        }
    }
}


/// TCP ports for the programs a test starts. Below Linux's ephemeral range (32768–60999), so
/// no outgoing connection of the busy suite holds one, and checked free by binding it.
public enum TestPorts {
    public static func free() -> Int {
        for _ in 0..<100 {
            let port = Int.random(in: 10_000...32_000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if bound == 0 { return port }
        }
        return Int.random(in: 10_000...32_000)
    }
}
