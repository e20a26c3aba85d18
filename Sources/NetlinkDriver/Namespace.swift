import CNetlink
import Foundation
import PetrelCore

/// A named network namespace, as `ip netns` keeps them: a bind mount of the namespace
/// under `/run/netns/<name>`, so iproute2 and Petrel see the same ones.
public struct NetworkNamespace: Sendable, Hashable {
    public static let directory = "/run/netns"
    public let name: String
    public var path: String { "\(Self.directory)/\(name)" }

    /// Opens an existing namespace by name; nil when there is none.
    public init?(existing name: String) {
        guard Self.isValidName(name), FileManager.default.fileExists(atPath: "\(Self.directory)/\(name)") else {
            return nil
        }
        self.name = name
    }

    private init(validName name: String) { self.name = name }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count < 256 && !name.contains("/") && name != "." && name != ".."
    }

    /// Creates a new, empty network namespace (only a down `lo`). Fails if it exists.
    public static func create(_ name: String) throws -> NetworkNamespace {
        guard isValidName(name) else { throw NetlinkError(operation: "create namespace '\(name)'", code: -NLE_INVAL) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try makeDirectorySharedMount()
        let namespace = NetworkNamespace(validName: name)
        let fd = open(namespace.path, O_RDONLY | O_CREAT | O_EXCL, 0o444)
        guard fd >= 0 else { throw SystemCallError("create \(namespace.path)") }
        close(fd)
        // unshare() changes the calling thread only: do it on a throw-away thread, pin the
        // new namespace with a bind mount, and let the thread end.
        let outcome = DedicatedThread.run(name: "petrel-netns") { () -> Result<Void, SystemCallError> in
            guard petrel_unshare_net() == 0 else { return .failure(SystemCallError("unshare(CLONE_NEWNET)")) }
            let source = "/proc/self/task/\(petrel_gettid())/ns/net"
            guard mount(source, namespace.path, "none", UInt(MS_BIND), nil) == 0 else {
                return .failure(SystemCallError("bind-mount \(source) on \(namespace.path)"))
            }
            return .success(())
        }
        if case .failure(let error) = outcome {
            unlink(namespace.path)
            throw error
        }
        return namespace
    }

    /// Makes `/run/netns` a shared mount point of its own, as `ip netns add` does the first
    /// time. Were a namespace pinned on the plain directory first, iproute2's later bind of
    /// the directory onto itself would cover that pin: the name would stay listed but could
    /// no longer be unmounted or removed ("Device or resource busy").
    static func makeDirectorySharedMount() throws {
        if mount("", directory, "none", UInt(MS_SHARED | MS_REC), nil) == 0 { return }
        guard errno == EINVAL else { throw SystemCallError("make \(directory) a shared mount") }
        guard mount(directory, directory, "none", UInt(MS_BIND | MS_REC), nil) == 0 else {
            throw SystemCallError("bind-mount \(directory) on itself")
        }
        guard mount("", directory, "none", UInt(MS_SHARED | MS_REC), nil) == 0 else {
            throw SystemCallError("make \(directory) a shared mount")
        }
    }

    /// The names under /run/netns.
    public static func list() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    /// Unmounts and removes the namespace. Processes still inside keep it alive until they exit.
    public func delete() throws {
        if umount2(path, Int32(MNT_DETACH)) != 0 && errno != EINVAL && errno != ENOENT {
            throw SystemCallError("unmount \(path)")
        }
        if unlink(path) != 0 && errno != ENOENT { throw SystemCallError("remove \(path)") }
    }

    /// Runs `body` on a thread that has entered this namespace, and returns its result.
    /// Sockets `body` opens stay in the namespace; so does any child process it spawns.
    public func perform<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let path = self.path
        let outcome = DedicatedThread.run(name: "petrel-netns") { () -> Result<T, any Error> in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return .failure(SystemCallError("open \(path)")) }
            defer { close(fd) }
            guard petrel_setns(fd) == 0 else { return .failure(SystemCallError("setns \(path)")) }
            return Result { try body() }
        }
        return try outcome.get()
    }

    /// Opens a socket inside the namespace (e.g. a listener for a namespaced service).
    /// The caller owns the returned descriptor.
    public func openSocket(domain: Int32, type: Int32, protocol: Int32 = 0) throws -> Int32 {
        try perform {
            let fd = socket(domain, type, `protocol`)
            guard fd >= 0 else { throw SystemCallError("socket") }
            return fd
        }
    }

    /// A TCP socket listening on `address:port` (IPv4) inside this namespace, for a server
    /// the daemon runs from the root namespace (the metadata proxy): the socket keeps
    /// belonging to the namespace it was opened in. The caller owns the descriptor.
    public func listenTCP(address: String, port: UInt16, backlog: Int32 = 128) throws -> Int32 {
        let fd = try openSocket(domain: AF_INET, type: Int32(SOCK_STREAM.rawValue))
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &socketAddress.sin_addr) == 1 else {
            close(fd)
            throw SystemCallError("parse \(address)")
        }
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            let error = SystemCallError("listen on \(address):\(port) in \(name)")
            close(fd)
            throw error
        }
        return fd
    }

    /// The inode that identifies this namespace (equal to `/proc/<pid>/ns/net` of its processes).
    public func inode() throws -> UInt64 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw SystemCallError("stat \(path)") }
        return UInt64(info.st_ino)
    }
}

