import Foundation
import Logging
import PetrelCore
import ProcessDriver
import TestSupport
import Testing

/// The identity acceptance suite: a controller on a freshly bootstrapped database (SQLite and
/// PostgreSQL), driven by the unmodified `openstack` CLI from PyPI through keystone-cli.sh.
@Suite struct KeystoneCLITests {
    static let venv = ProcessInfo.processInfo.environment["PETREL_OSC_VENV"] ?? "/var/cache/petrel/osc-venv"

    /// The unmodified `openstack` CLI the tests drive, required to be installed.
    static func openstack() throws -> String {
        let openstack = venv + "/bin/openstack"
        try Requirement.require(FileManager.default.isExecutableFile(atPath: openstack),
                                "\(openstack) is missing (Packaging/openstack-client.sh installs it; make test runs it)")
        return openstack
    }

    /// The test guest's qcow2 (built once, then cached by Packaging/guest-image/build.sh).
    static func guestImage() async throws -> String {
        try await Command.check(Repository.root.appendingPathComponent("Packaging/guest-image/build.sh").path, [])
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(arguments: TestDatabase.allCases)
    func theOpenStackCLIDrivesIdentity(backend: TestDatabase) async throws {
        let openstack = try KeystoneCLITests.openstack()
        let lockout = """
            [security_compliance]
            lockout_failure_attempts = 3
            lockout_duration = 5
            """
        try await Self.withIdentityController(backend, extraConfig: lockout) { url, clouds, child in
            let script = Repository.root.appendingPathComponent("Tests/ProgramTests/keystone-cli.sh").path
            let result = try await Command.run("env", [
                "OSC=\(openstack)", "OS_CLIENT_CONFIG_FILE=\(clouds)", "PETREL_URL=\(url)", "ADMIN_PASSWORD=admin-pw",
                "LOCKOUT_ATTEMPTS=3", "LOCKOUT_DURATION=5", "bash", script])
            #expect(result.status == 0, "\(result.stdout.suffix(1500))\n\(result.stderr.suffix(1500))\ncontroller: \(child.recentOutput.suffix(10))")
            #expect(result.stdout.contains("CLI checks passed"), "\(result.stdout.suffix(500))")
            // The image service on the same cloud.
            let images = try await Command.run("env", ["OSC=\(openstack)", "OS_CLIENT_CONFIG_FILE=\(clouds)", "PETREL_URL=\(url)",
                                                       "bash", Repository.root.appendingPathComponent("Tests/ProgramTests/image-cli.sh").path])
            #expect(images.status == 0 && images.stdout.contains("all image CLI checks passed"),
                    "\(images.stdout.suffix(1500))\n\(images.stderr.suffix(1500))")
            // Flavors and key pairs.
            let compute = try await Command.run("env", ["OSC=\(openstack)", "OS_CLIENT_CONFIG_FILE=\(clouds)", "PETREL_URL=\(url)",
                                                        "bash", Repository.root.appendingPathComponent("Tests/ProgramTests/compute-cli.sh").path])
            #expect(compute.status == 0 && compute.stdout.contains("all compute CLI checks passed"),
                    "\(compute.stdout.suffix(1500))\n\(compute.stderr.suffix(1500))")
            // Neutron's core: networks, subnets, ports.
            let network = try await Command.run("env", ["OSC=\(openstack)", "OS_CLIENT_CONFIG_FILE=\(clouds)",
                                                        "bash", Repository.root.appendingPathComponent("Tests/ProgramTests/network-cli.sh").path])
            #expect(network.status == 0 && network.stdout.contains("network CLI checks passed"),
                    "\(network.stdout.suffix(1500))\n\(network.stderr.suffix(1500))")
            // No request ended in a server error.
            #expect(!child.recentOutput.contains { $0.contains("request failed") }, "\(child.recentOutput.filter { $0.contains("failed") })")
        }
    }
}

/// Stored policies, endpoint groups, project endpoint filters (the catalog a filtered
/// project's token shows) and domain-specific configuration, through keystone-extensions-cli.sh.
extension KeystoneCLITests {
    @Test(arguments: TestDatabase.allCases)
    func theOpenStackCLIDrivesPoliciesEndpointFiltersAndDomainConfig(backend: TestDatabase) async throws {
        try await Self.withIdentityController(backend) { url, clouds, child in
            let script = Repository.root.appendingPathComponent("Tests/ProgramTests/keystone-extensions-cli.sh").path
            let result = try await Command.run("env", ["OSC=\(try KeystoneCLITests.openstack())", "OS_CLIENT_CONFIG_FILE=\(clouds)",
                                                       "PETREL_URL=\(url)", "bash", script])
            #expect(result.status == 0, "\(result.stdout.suffix(1500))\n\(result.stderr.suffix(1500))\ncontroller: \(child.recentOutput.suffix(10))")
            #expect(result.stdout.contains("extension CLI checks passed"), "\(result.stdout.suffix(500))")
            #expect(!child.recentOutput.contains { $0.contains("request failed") }, "\(child.recentOutput.filter { $0.contains("failed") })")
        }
    }

    /// A controller on a freshly bootstrapped database of `backend` (admin / admin-pw; its config
    /// ends with `extraConfig`), with a clouds.yaml naming it `petrel`; stopped with SIGTERM
    /// (which must end it cleanly) afterwards.
    static func withIdentityController(_ backend: TestDatabase, extraConfig: String = "",
                                       _ body: (_ url: String, _ clouds: String, _ child: ChildProcess) async throws -> Void) async throws {
        let controller = Repository.binDirectory.appendingPathComponent("petrel-controller").path
        try Requirement.require(FileManager.default.isExecutableFile(atPath: controller), "\(controller) is not built")
        let (databaseURL, dropDatabase) = try await backend.makeDatabase()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let port = TestPorts.free()
        let url = "http://127.0.0.1:\(port)"
        let connection = switch databaseURL {
        case .sqlite(let path): "sqlite:///\(path)"
        case .postgresql(let text): text
        }
        let config = directory.appendingPathComponent("petrel.conf").path
        try """
            [database]
            connection = \(connection)
            [api]
            listen = 127.0.0.1:\(port)
            public_url = \(url)
            [token]
            key_repository = \(directory.path)/keys
            [credential]
            key_repository = \(directory.path)/credential-keys
            [image]
            store_path = \(directory.path)/images
            [identity]
            password_hash_rounds = 4
            \(extraConfig)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let clouds = directory.appendingPathComponent("clouds.yaml").path
        try """
            clouds:
              petrel:
                auth: {auth_url: "\(url)/v3", username: admin, password: admin-pw, project_name: admin,
                       user_domain_name: Default, project_domain_name: Default}
                identity_api_version: 3
            """.write(toFile: clouds, atomically: true, encoding: .utf8)
        try await Command.check(controller, ["--config", config, "db-sync"])
        try await Command.check(controller, ["--config", config, "token-keys", "setup"])
        try await Command.check(controller, ["--config", config, "credential-keys", "setup"])
        try await Command.check(controller, ["--config", config, "bootstrap", "--admin-password", "admin-pw"])
        let child = try ChildProcess(name: "controller", executable: controller, arguments: ["--config", config],
                                     logger: Logger(label: "test"))
        try child.start()
        try await withCleanup {
            let up = await eventually { (try? await Command.run("curl", ["-sf", "\(url)/healthcheck"]))?.stdout == "OK" }
            try #require(up, "\(child.recentOutput)")
            try await body(url, clouds, child)
            child.signal(SIGTERM)
            #expect(await child.wait() == .exited(0))
        } cleanup: {
            child.signal(SIGKILL)
            _ = await child.wait()
            await dropDatabase()
            try? FileManager.default.removeItem(at: directory)
        }
    }
}
