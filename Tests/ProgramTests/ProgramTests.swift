import Foundation
import Logging
import PetrelCore
import ProcessDriver
import Store
import TestSupport
import Testing

/// A RabbitMQ virtual host of its own, so the programs' queues never meet anyone else's;
/// deleting it removes them all.
func withPrivateVirtualHost<T: Sendable>(_ body: @escaping @Sendable (String) async throws -> T) async throws -> T {
    try await BrokerUse.shared.withShared { try await inPrivateVirtualHost(body) }
}

private func inPrivateVirtualHost<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
    try Requirement.rabbitmq()
    let vhost = TestNames.unique("petrel-test-")
    try await Command.check("rabbitmqctl", ["-q", "add_vhost", vhost])
    try await Command.check("rabbitmqctl", ["-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"])
    return try await withCleanup {
        try await body("rabbit://guest:guest@127.0.0.1:5672/\(vhost)")
    } cleanup: {
        _ = try? await Command.run("rabbitmqctl", ["-q", "delete_vhost", vhost])
    }
}

/// The two programs as an operator runs them: flags, configuration errors, listeners,
/// logs and a graceful stop on SIGTERM.
@Suite final class ProgramTests: Sendable {
    /// Each test's configuration files, removed when the test ends.
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-program-\(UUID().uuidString)")

    init() throws { try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true) }

    deinit { try? FileManager.default.removeItem(at: scratch) }

    func program(_ name: String) throws -> String {
        let path = Repository.binDirectory.appendingPathComponent(name).path
        try Requirement.require(FileManager.default.isExecutableFile(atPath: path), "\(path) is not built (make test builds it)")
        return path
    }

    func writeConfig(_ text: String) throws -> String {
        let path = scratch.appendingPathComponent("petrel-\(UUID().uuidString).conf").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func freePort() -> Int { TestPorts.free() }

    @Test(arguments: ["petrel-controller", "petrel-node"])
    func helpAndVersion(name: String) async throws {
        let binary = try program(name)
        let version = try await Command.check(binary, ["--version"])
        #expect(version.trimmingCharacters(in: .whitespacesAndNewlines) == PetrelVersion.current)
        let help = try await Command.check(binary, ["--help"])
        #expect(help.contains("USAGE") && help.contains("--config"), "\(help)")
        if name == "petrel-controller" { #expect(help.contains("db-sync") && help.contains("serve")) }
    }

    @Test(arguments: ["petrel-controller", "petrel-node"])
    func badConfigurationStopsWithFileAndLine(name: String) async throws {
        let binary = try program(name)
        let config = try writeConfig("[api]\nlisten = 127.0.0.1:5000\nlistn = oops\n")
        let result = try await Command.run(binary, ["--config", config])
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(config):3") && result.stderr.contains("unknown key 'listn'"), "\(result.stderr)")
        let missing = try await Command.run(binary, ["--config", "/nonexistent/petrel.conf"])
        #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/petrel.conf"))
    }

    @Test func sampleConfigIsTheCommittedOne() async throws {
        let printed = try await Command.check(try program("petrel-controller"), ["sample-config"])
        let committed = try String(contentsOf: Repository.root.appendingPathComponent("etc/petrel.conf.sample"), encoding: .utf8)
        #expect(printed == committed)
    }

    @Test func samplePolicyIsTheCommittedOne() async throws {
        let printed = try await Command.check(try program("petrel-controller"), ["sample-policy"])
        let committed = try String(contentsOf: Repository.root.appendingPathComponent("etc/policy.yaml.sample"), encoding: .utf8)
        #expect(printed == committed, "etc/policy.yaml.sample is stale: make sample-config")
        for rule in ["identity:create_user", "os_compute_api:os-services:list", "get_agent", "volume_extension:services:index"] {
            #expect(printed.contains("#\"\(rule)\": "), "\(rule) is not in the sample")
        }
    }

    /// A configuration with its own SQLite database.
    /// A controller's configuration with its own database and Fernet key repository (set up),
    /// so nothing depends on what `make run` left in /etc/petrel.
    func controllerConfig(port: Int, extra: String = "") async throws -> (config: String, database: String) {
        let database = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-\(UUID().uuidString).db").path
        let keys = database + ".keys"
        let config = try writeConfig("[DEFAULT]\n\(extra)\n[database]\nconnection = sqlite:///\(database)\n[api]\nlisten = 127.0.0.1:\(port)\n"
                                     + "[token]\nkey_repository = \(keys)\n")
        try await Command.check(try program("petrel-controller"), ["--config", config, "token-keys", "setup"])
        return (config, database)
    }

    @Test func controllerRefusesAnUnmigratedDatabaseAndDBSyncIsIdempotent() async throws {
        let binary = try program("petrel-controller")
        let (config, database) = try await controllerConfig(port: freePort())
        defer { for suffix in ["", "-wal", "-shm", ".keys"] { try? FileManager.default.removeItem(atPath: database + suffix) } }
        let refused = try await Command.run(binary, ["--config", config])
        #expect(refused.status != 0 && refused.stderr.contains("db-sync"), "\(refused.stderr)")
        let first = try await Command.check(binary, ["--config", config, "db-sync"])
        #expect(first.contains("migrated from version 0"))
        let second = try await Command.check(binary, ["--config", config, "db-sync"])
        #expect(second.contains("is current"))
        let boot = try await Command.check(binary, ["--config", config, "bootstrap", "--admin-password", "pw"])
        #expect(boot.contains("user admin") && boot.contains("public endpoint of identity"), "\(boot)")
        let again = try await Command.check(binary, ["--config", config, "bootstrap", "--admin-password", "pw"])
        #expect(again.contains("everything already existed"))
        let missing = try await Command.run(binary, ["--config", config, "bootstrap"])
        #expect(missing.status != 0 && missing.stderr.contains("--admin-password"))
    }

    @Test func controllerServesMetricsAndStopsOnSIGTERM() async throws {
        try await withPrivateVirtualHost { transport in try await self.controllerServesMetricsAndStopsOnSIGTERM(transport) }
    }

    func controllerServesMetricsAndStopsOnSIGTERM(_ transport: String) async throws {
        let port = freePort()
        let (config, database) = try await controllerConfig(port: port, extra: "log_format = json\ntransport_url = \(transport)\n"
                                                            + "[metadata]\nshared_secret = petrel-test-secret")
        defer { for suffix in ["", "-wal", "-shm", ".keys"] { try? FileManager.default.removeItem(atPath: database + suffix) } }
        try await Command.check(try program("petrel-controller"), ["--config", config, "db-sync"])
        let child = try ChildProcess(name: "controller", executable: try program("petrel-controller"),
                                     arguments: ["--config", config], logger: .init(label: "test"))
        try child.start()
        defer { child.signal(SIGKILL) }
        let up = await eventually { (try? await Command.run("curl", ["-sf", "http://127.0.0.1:\(port)/healthcheck"]))?.stdout == "OK" }
        #expect(up, "\(child.recentOutput)")
        // Prometheus text, including the HTTP request metrics of the calls just made.
        let metrics = try await Command.check("curl", ["-sf", "-D", "-", "http://127.0.0.1:\(port)/metrics"])
        #expect(metrics.lowercased().contains("content-type: text/plain; version=0.0.4"))
        #expect(metrics.contains("hb_requests"), "\(metrics)")
        // The metadata API is on the one listener, outside Keystone's authentication: the root
        // is open, an instance request needs the proxy's headers and a signature made with
        // [metadata] shared_secret.
        let root = "http://127.0.0.1:\(port)/metadata"
        let versions = try await Command.check("curl", ["-sf", root])
        #expect(versions.hasSuffix("2009-04-04\nlatest"), "\(versions)")
        func status(_ headers: [String]) async throws -> String {
            try await Command.check("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}"] + headers.flatMap { ["-H", $0] }
                                    + [root + "/openstack/latest/meta_data.json"])
        }
        let id = "00000000-0000-0000-0000-000000000000"
        // hmac.new(b"petrel-test-secret", id.encode(), hashlib.sha256).hexdigest()
        let signature = "87aab7fd92e42ae4fadfc51f41edb7058bf05bec0cf5cc331f6c26e17053e4d3"
        #expect(try await status([]) == "400")
        #expect(try await status(["X-Instance-ID: \(id)", "X-Tenant-ID: p", "X-Instance-ID-Signature: \(String(repeating: "0", count: 64))"]) == "403")
        #expect(try await status(["X-Instance-ID: \(id)", "X-Tenant-ID: p", "X-Instance-ID-Signature: \(signature)"]) == "404",
                "signed, but no such instance")
        // Logs are JSON lines.
        let lines = child.recentOutput
        #expect(!lines.isEmpty)
        for line in lines { #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)") }
        child.signal(SIGTERM)
        let stopped = await withTaskGroup(of: ChildProcess.Termination?.self) { group in
            group.addTask { await child.wait() }
            group.addTask { try? await Task.sleep(for: .seconds(10)); return nil }
            let first = await group.next()!
            group.cancelAll()
            return first
        }
        #expect(stopped == .exited(0))
    }

    @Test func nodeServesMetricsLocallyAndStopsOnSIGTERM() async throws {
        try await withPrivateVirtualHost { transport in try await self.nodeServesMetricsLocallyAndStopsOnSIGTERM(transport) }
    }

    func nodeServesMetricsLocallyAndStopsOnSIGTERM(_ transport: String) async throws {
        let port = freePort()
        let config = try writeConfig("[DEFAULT]\ntransport_url = \(transport)\n[libvirt]\nuri = test:///default\n[node]\nmetrics_listen = 127.0.0.1:\(port)\n")
        let child = try ChildProcess(name: "node", executable: try program("petrel-node"),
                                     arguments: ["--config", config], logger: .init(label: "test"))
        try child.start()
        defer { child.signal(SIGKILL) }
        let up = await eventually { (try? await Command.run("curl", ["-sf", "http://127.0.0.1:\(port)/metrics"]))?.status == 0 }
        #expect(up, "\(child.recentOutput)")
        #expect(child.recentOutput.contains { $0.contains("starting") && $0.contains("hypervisor=TEST") })
        child.signal(SIGTERM)
        #expect(await child.wait() == .exited(0))
    }

    /// A node reports itself over RabbitMQ and the controller records it: services and
    /// hypervisor resources in the database, the report count growing every interval.
    @Test func nodeReportsReachTheControllerDatabase() async throws {
        try await withPrivateVirtualHost { [self] transport in
            let (controllerConfig, databasePath) = try await controllerConfig(port: freePort(), extra: "transport_url = \(transport)")
            defer { for suffix in ["", "-wal", "-shm", ".keys"] { try? FileManager.default.removeItem(atPath: databasePath + suffix) } }
            try await Command.check(try program("petrel-controller"), ["--config", controllerConfig, "db-sync"])
            let nodeName = TestNames.unique("node-")
            let nodeConfig = try writeConfig("""
                [DEFAULT]
                host = \(nodeName)
                transport_url = \(transport)
                report_interval = 1
                [libvirt]
                uri = test:///default
                [node]
                metrics_listen = 127.0.0.1:\(freePort())
                """)
            let logger = Logger(label: "test")
            let controller = try ChildProcess(name: "controller", executable: try program("petrel-controller"),
                                              arguments: ["--config", controllerConfig], logger: logger)
            let node = try ChildProcess(name: "node", executable: try program("petrel-node"), arguments: ["--config", nodeConfig],
                                        logger: logger)
            try controller.start()
            try node.start()
            let database = try Database(.sqlite(path: databasePath), logger: logger)
            try await withCleanup {
                let store = ServiceStore(database)
                let reported = await eventually(timeout: .seconds(20), every: .milliseconds(200)) {
                    (try? await store.services().first { $0.host == nodeName && $0.binary == "nova-compute" }?.reportCount ?? 0) ?? 0 >= 2
                }
                #expect(reported, "controller: \(controller.recentOutput.suffix(5))\nnode: \(node.recentOutput.suffix(5))")
                let nodeServices = try await store.services().filter { $0.host == nodeName }
                // A report means the thing runs: no agent or volume service is reported before its code exists.
                #expect(nodeServices.map(\.binary) == ["nova-compute"], "[node] services defaults to compute alone")
                let service = try #require(nodeServices.first { $0.binary == "nova-compute" })
                #expect(service.binary == "nova-compute" && service.topic == "compute" && !service.disabled)
                #expect(service.version == PetrelVersion.current && service.lastSeenAt != nil)
                let hypervisor = try #require(try await store.hypervisor(host: nodeName))
                #expect(hypervisor.type == "TEST" && hypervisor.vcpus > 0 && hypervisor.memoryMB > 0 && hypervisor.localGB > 0)
                node.signal(SIGTERM)
                controller.signal(SIGTERM)
                #expect(await node.wait() == .exited(0))
                #expect(await controller.wait() == .exited(0))
            } cleanup: {
                node.signal(SIGKILL)
                controller.signal(SIGKILL)
                await database.shutdown()
            }
        }
    }

    @Test func tokenKeysSetupAndRotate() async throws {
        let binary = try program("petrel-controller")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try writeConfig("[token]\nkey_repository = \(directory)\nmax_active_keys = 3\n")
        #expect(try await Command.check(binary, ["--config", config, "token-keys", "setup"]).contains("keys 0, 1 (primary 1"))
        #expect(try await Command.check(binary, ["--config", config, "token-keys", "rotate"]).contains("keys 0, 1, 2 (primary 2"))
        #expect(try await Command.check(binary, ["--config", config, "token-keys", "rotate"]).contains("keys 0, 2, 3 (primary 3"))
        let wrong = try await Command.run(binary, ["--config", config, "token-keys", "spin"])
        #expect(wrong.status != 0)
    }
}
