import Foundation
import Logging
import PetrelCore
import ProcessDriver
import Store
import TestSupport
import Testing

/// Issue 4's acceptance with the real pieces: a controller and a node (libvirt's test driver)
/// talking over a private RabbitMQ virtual host, seen through the unmodified `openstack` CLI:
/// services, hypervisors, agents and volume services; admin changes stored; the node's
/// services going down when it stops and up again when it starts.
@Suite struct HostsCLITests {
    @Test func theCLISeesTheNodeGoDownAndComeBack() async throws {
        try await withPrivateVirtualHost { transport in try await run(transport) }
    }

    func run(_ transport: String) async throws {
        let openstack = KeystoneCLITests.venv + "/bin/openstack"
        try Requirement.require(FileManager.default.isExecutableFile(atPath: openstack),
                                "\(openstack) is missing (Packaging/openstack-client.sh installs it; make test runs it)")
        let bin = Repository.binDirectory
        let controller = bin.appendingPathComponent("petrel-controller").path, nodeBinary = bin.appendingPathComponent("petrel-node").path
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-hosts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let port = Int.random(in: 20_000...45_000), url = "http://127.0.0.1:\(port)"
        let node = TestNames.unique("node-"), nodeIP = "10.11.12.13", downTime = 3
        let controllerConfig = directory.appendingPathComponent("controller.conf").path
        try """
            [DEFAULT]
            transport_url = \(transport)
            service_down_time = \(downTime)
            [database]
            connection = sqlite:///\(directory.path)/petrel.db
            [api]
            listen = 127.0.0.1:\(port)
            public_url = \(url)
            [token]
            key_repository = \(directory.path)/keys
            [identity]
            password_hash_rounds = 4
            """.write(toFile: controllerConfig, atomically: true, encoding: .utf8)
        let nodeConfig = directory.appendingPathComponent("node.conf").path
        try """
            [DEFAULT]
            host = \(node)
            my_ip = \(nodeIP)
            transport_url = \(transport)
            report_interval = 1
            [libvirt]
            uri = test:///default
            [node]
            metrics_listen = 127.0.0.1:\(Int.random(in: 20_000...45_000))
            """.write(toFile: nodeConfig, atomically: true, encoding: .utf8)
        let clouds = directory.appendingPathComponent("clouds.yaml").path
        try """
            clouds:
              petrel:
                auth: {auth_url: "\(url)/v3", username: admin, password: admin-pw, project_name: admin,
                       user_domain_name: Default, project_domain_name: Default}
                identity_api_version: 3
            """.write(toFile: clouds, atomically: true, encoding: .utf8)
        for arguments in [["db-sync"], ["token-keys", "setup"], ["bootstrap", "--admin-password", "admin-pw"]] {
            try await Command.check(controller, ["--config", controllerConfig] + arguments)
        }
        let logger = Logger(label: "test")
        let controllerProcess = try ChildProcess(name: "controller", executable: controller, arguments: ["--config", controllerConfig],
                                                 logger: logger)
        let nodeProcess = try ChildProcess(name: "node", executable: nodeBinary, arguments: ["--config", nodeConfig], logger: logger)
        let restarted = try ChildProcess(name: "node", executable: nodeBinary, arguments: ["--config", nodeConfig], logger: logger)
        let database = try Database(.sqlite(path: directory.path + "/petrel.db"), logger: logger)
        let script = Repository.root.appendingPathComponent("Tests/ProgramTests/hosts-cli.sh").path
        @Sendable func phase(_ name: String) async throws -> CommandResult {
            try await Command.run("env", ["OSC=\(openstack)", "OS_CLIENT_CONFIG_FILE=\(clouds)", "NODE=\(node)", "NODE_IP=\(nodeIP)",
                                          "bash", script, name])
        }
        try controllerProcess.start()
        try nodeProcess.start()
        let current = nodeProcess
        try await withCleanup {
            let store = ServiceStore(database)
            let reported = await eventually(timeout: .seconds(20), every: .milliseconds(200)) {
                ((try? await store.services().filter { $0.host == node }.count) ?? 0) == 6
            }
            try #require(reported, "controller: \(controllerProcess.recentOutput.suffix(5))\nnode: \(current.recentOutput.suffix(5))")
            let up = try await phase("up")
            #expect(up.status == 0 && up.stdout.contains("phase up passed"), "\(up.stdout)\n\(up.stderr.suffix(2000))")

            current.signal(SIGTERM)
            #expect(await current.wait() == .exited(0))
            try await Task.sleep(for: .seconds(downTime + 2))
            let down = try await phase("down")
            #expect(down.status == 0 && down.stdout.contains("phase down passed"), "\(down.stdout)\n\(down.stderr.suffix(2000))")

            try restarted.start()
            let again = await eventually(timeout: .seconds(15), every: .seconds(1)) { (try? await phase("up-again"))?.status == 0 }
            let last = again ? "" : (try await phase("up-again")).stderr
            #expect(again, "\(last)")
            #expect(!controllerProcess.recentOutput.contains { $0.contains("request failed") },
                    "\(controllerProcess.recentOutput.filter { $0.contains("failed") })")
        } cleanup: {
            restarted.signal(SIGKILL)
            current.signal(SIGKILL)
            controllerProcess.signal(SIGKILL)
            _ = await controllerProcess.wait()
            await database.shutdown()
            try? FileManager.default.removeItem(at: directory)
        }
    }
}
