import Foundation
import Logging
import NetlinkDriver
import PetrelCore
import ProcessDriver

public struct DnsmasqError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// One dnsmasq per network, inside the network's namespace, as Neutron's DHCP agent runs
/// them — but without a process monitor: dnsmasq daemonizes itself, so it keeps serving
/// while petrel-node restarts (or is killed), and the restarted node finds it again by
/// its pid file and its command line instead of starting a second one.
///
/// All state is on disk, under `stateDirectory/<network id>/` (see `DnsmasqPaths`), so
/// two driver instances over the same directory see the same dnsmasqs. Calls for
/// *different* networks may run concurrently; the caller serializes calls for the same
/// network (the network service holds a lock per network, as compute does per instance).
///
/// The network service's part, per network: create the namespace `qdhcp-<id>` and the
/// DHCP port in it (NetlinkDriver: veth or tap, its addresses, up), then
///
///     let dhcp = DnsmasqDriver(stateDirectory: "/var/lib/petrel/dhcp", logger: logger)
///     try await dhcp.update(network)          // on every change of subnets or ports, and at start
///     for id in dhcp.networks() where !wanted.contains(id) { try await dhcp.stop(network: id) }
///
/// `update` is cheap when only hosts change (files + SIGHUP: ~30 ms for 1,000 hosts).
public final class DnsmasqDriver: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// No dnsmasq was running for the network: one was started.
        case started(pid: Int32)
        /// The running dnsmasq has the desired command line: it re-read its files (SIGHUP).
        case reloaded(pid: Int32)
        /// The running dnsmasq had another command line (a subnet, the MTU, the lease time
        /// changed) or lived in another namespace: it was replaced.
        case restarted(pid: Int32)

        public var pid: Int32 {
            switch self {
            case .started(let pid), .reloaded(let pid), .restarted(let pid): pid
            }
        }
    }

    public let stateDirectory: String
    public let executable: String
    /// Adds `--log-dhcp` and a log file in the network's directory (off by default: the
    /// file grows with every lease).
    public let logDHCP: Bool
    /// dnsmasq-utils' `dhcp_release`, which frees the leases of ports that went away.
    public let releaseTool: String
    private let logger: Logger

    public init(stateDirectory: String = "/var/lib/petrel/dhcp", executable: String = "/usr/sbin/dnsmasq",
                logDHCP: Bool = false, releaseTool: String = "/usr/bin/dhcp_release", logger: Logger) {
        self.stateDirectory = stateDirectory
        self.releaseTool = releaseTool
        self.executable = executable
        self.logDHCP = logDHCP
        self.logger = logger
    }

    public func paths(network id: String) -> DnsmasqPaths {
        DnsmasqPaths(directory: "\(stateDirectory)/\(id)")
    }

    /// Renders `network` without touching anything (for inspection and tests).
    public func configuration(_ network: DHCPNetwork) throws -> DnsmasqConfiguration {
        try DnsmasqConfiguration(network: network, paths: paths(network: network.id), logDHCP: logDHCP)
    }

    /// Makes the network's dnsmasq serve `network`: writes its files (atomically), then
    /// reloads the running dnsmasq, replaces it, or starts one — whichever is needed.
    /// Safe to repeat; this is also how a restarted node adopts a dnsmasq that outlived it.
    /// The namespace (and the interface in it) must exist.
    @discardableResult
    public func update(_ network: DHCPNetwork) async throws -> Outcome {
        let config = try configuration(network)
        guard let namespace = NetworkNamespace(existing: network.namespace) else {
            throw DnsmasqError("network \(network.id): namespace \(network.namespace) does not exist")
        }
        let paths = paths(network: network.id)
        try Self.makeDirectory(stateDirectory)
        try Self.makeDirectory(paths.directory)
        try Self.writeAtomically(config.hosts, to: paths.hostsFile)
        try Self.writeAtomically(config.addnHosts, to: paths.addnHostsFile)
        try Self.writeAtomically(config.opts, to: paths.optsFile)

        let desired = [executable] + config.arguments
        let metadata: Logger.Metadata = ["network": "\(network.id)", "namespace": "\(namespace.name)"]
        if let pid = livePID(paths) {
            if Self.commandLine(of: pid) == desired, Self.namespaceInode(of: pid) == (try? namespace.inode()) {
                await releaseStaleLeases(config, paths: paths, interface: network.interface, namespace: namespace)
                guard kill(pid, SIGHUP) == 0 else { throw SystemCallError("SIGHUP dnsmasq \(pid)") }
                logger.debug("dnsmasq reloaded", metadata: metadata.merging(["pid": "\(pid)"]) { $1 })
                return .reloaded(pid: pid)
            }
            logger.info("dnsmasq configuration changed: restarting", metadata: metadata.merging(["pid": "\(pid)"]) { $1 })
            await terminate(pid, paths: paths)
            return .restarted(pid: try await start(config, paths: paths, namespace: namespace, metadata: metadata))
        }
        return .started(pid: try await start(config, paths: paths, namespace: namespace, metadata: metadata))
    }

    /// Stops the network's dnsmasq and removes its files (leases included). Stopping a
    /// network that has none is not an error.
    public func stop(network id: String) async throws {
        let paths = paths(network: id)
        if let pid = livePID(paths) {
            await terminate(pid, paths: paths)
            logger.info("dnsmasq stopped", metadata: ["network": "\(id)", "pid": "\(pid)"])
        }
        if FileManager.default.fileExists(atPath: paths.directory) {
            try FileManager.default.removeItem(atPath: paths.directory)
        }
    }

    /// The pid of the network's dnsmasq, when one runs (its pid file names a live
    /// process whose command line is a dnsmasq with that pid file).
    public func pid(network id: String) -> Int32? { livePID(paths(network: id)) }

    /// Networks with a live dnsmasq, sorted: what reconcile compares with the controller.
    public func running() -> [String] { networks().filter { pid(network: $0) != nil } }

    /// Networks with a directory, whether or not their dnsmasq lives (one that died, or
    /// whose node died mid-stop, still needs `update` or `stop`).
    public func networks() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: stateDirectory)) ?? []
        return names.filter { name in
            var isDirectory: ObjCBool = false
            return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: "\(stateDirectory)/\(name)", isDirectory: &isDirectory)
                && isDirectory.boolValue
        }.sorted()
    }

    // MARK: processes

    private func start(_ config: DnsmasqConfiguration, paths: DnsmasqPaths, namespace: NetworkNamespace,
                       metadata: Logger.Metadata) async throws -> Int32 {
        unlink(paths.pidFile)
        // dnsmasq is not running: the lease file is ours to prune.
        if let leases = try? String(contentsOfFile: paths.leaseFile, encoding: .utf8) {
            let stale = Set(config.staleLeases(in: leases).map(\.line))
            if !stale.isEmpty {
                let kept = leases.split(separator: "\n").filter { !stale.contains(String($0)) }
                try Self.writeAtomically(kept.map { $0 + "\n" }.joined(), to: paths.leaseFile)
                logger.info("dropped leases of ports that are gone", metadata: metadata.merging(["leases": "\(stale.count)"]) { $1 })
            }
        }
        // dnsmasq forks, and its first process exits once the daemon is set up (sockets
        // bound, files read) or has failed; stdio of the daemon goes to /dev/null.
        let result = try await Command.run(executable, config.arguments, namespace: namespace)
        guard result.status == 0 else {
            throw DnsmasqError("dnsmasq for \(paths.directory) exited with status \(result.status): "
                               + result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if let pid = livePID(paths) {
                logger.info("dnsmasq started", metadata: metadata.merging(["pid": "\(pid)"]) { $1 })
                return pid
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw DnsmasqError("dnsmasq started but \(paths.pidFile) names no running dnsmasq")
    }

    /// Tells the running dnsmasq to forget leases of ports that are gone (Neutron does the
    /// same): otherwise an address given to a new port stays "leased to" the old MAC until
    /// the lease expires, and the new port gets no answer. `dhcp_release` (dnsmasq-utils)
    /// sends the DHCPRELEASE from inside the namespace; without it the leases expire.
    private func releaseStaleLeases(_ config: DnsmasqConfiguration, paths: DnsmasqPaths, interface: String,
                                    namespace: NetworkNamespace) async {
        guard let leases = try? String(contentsOfFile: paths.leaseFile, encoding: .utf8) else { return }
        let stale = config.staleLeases(in: leases)
        guard !stale.isEmpty else { return }
        guard FileManager.default.isExecutableFile(atPath: releaseTool) else {
            logger.warning("\(releaseTool) is missing: \(stale.count) stale leases stay until they expire",
                           metadata: ["namespace": "\(namespace.name)"])
            return
        }
        for lease in stale {
            let arguments = [interface, lease.address, lease.mac] + (lease.clientID.map { [$0] } ?? [])
            let result = try? await Command.run(releaseTool, arguments, namespace: namespace)
            if result?.status != 0 {
                logger.warning("dhcp_release failed", metadata: ["lease": "\(lease.mac) \(lease.address)",
                                                                 "stderr": "\(result?.stderr ?? "")"])
            }
        }
    }

    /// SIGTERM, then SIGKILL after 5 s. dnsmasq is not our child (it daemonized), so its
    /// end is seen in /proc: gone, a zombie, or a reused pid whose command line differs.
    private func terminate(_ pid: Int32, paths: DnsmasqPaths) async {
        for (signal, patience) in [(SIGTERM, 5000), (SIGKILL, 2000)] {
            guard isOurs(pid, paths) else { break }
            kill(pid, signal)
            for _ in 0..<(patience / 10) {
                if !isOurs(pid, paths) { break }
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        unlink(paths.pidFile)
    }

    private func livePID(_ paths: DnsmasqPaths) -> Int32? {
        guard let text = try? String(contentsOfFile: paths.pidFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
              isOurs(pid, paths) else { return nil }
        return pid
    }

    /// A zombie's command line reads empty, so a dnsmasq that ended counts as gone.
    private func isOurs(_ pid: Int32, _ paths: DnsmasqPaths) -> Bool {
        guard let argv = Self.commandLine(of: pid), let program = argv.first else { return false }
        return (program == executable || program.hasSuffix("/dnsmasq") || program == "dnsmasq")
            && argv.contains("--pid-file=\(paths.pidFile)")
    }

    static func commandLine(of pid: Int32) -> [String]? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { return nil }
        return data.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
    }

    static func namespaceInode(of pid: Int32) -> UInt64? {
        var info = stat()
        guard stat("/proc/\(pid)/ns/net", &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    // MARK: files

    /// Makes `path` and any missing parent 0755, whatever the process umask is at that moment.
    /// dnsmasq drops root for `nobody` and re-reads its files as that user on SIGHUP, so each
    /// directory on the way must be searchable by others. The mode is set by chmod, not left to
    /// mkdir: liblvm2cmd (the volume role, in the same process) sets umask 077 for the length of
    /// each LVM command, and a directory made by another thread meanwhile came out 0700.
    public static func makeDirectory(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o755) == 0 {
                guard chmod(prefix, 0o755) == 0 else { throw SystemCallError("chmod \(prefix)") }
            } else if errno != EEXIST {
                throw SystemCallError("mkdir \(prefix)")
            }
        }
        guard chmod(path, 0o755) == 0 else { throw SystemCallError("chmod \(path)") }
    }

    /// Writes a temporary file beside `path` and renames it over `path`, so dnsmasq never
    /// reads half a file. No fsync: after a crash the files are rebuilt from the controller.
    static func writeAtomically(_ contents: String, to path: String) throws {
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemCallError("create \(temporary)") }
        var failure: SystemCallError?
        if fchmod(fd, 0o644) != 0 { failure = SystemCallError("chmod \(temporary)") }
        var bytes = Array(contents.utf8)[...]
        while failure == nil && !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { failure = SystemCallError("write \(temporary)"); break }
            bytes = bytes.dropFirst(n)
        }
        close(fd)
        if failure == nil && rename(temporary, path) != 0 { failure = SystemCallError("rename \(temporary)") }
        if let failure {
            unlink(temporary)
            throw failure
        }
    }
}
