import Foundation
import Logging
import PetrelCore
import ProcessDriver
import Store
import TestSupport
import Testing

/// Issue 4's acceptance with the real pieces: a controller and a node (libvirt's test driver)
/// talking over a private RabbitMQ virtual host, seen through the unmodified `openstack` CLI:
/// services and hypervisors (and no agent or volume service, whose code does not exist yet);
/// admin changes stored; the node's services going down when it stops and up again when it starts.
@Suite struct HostsCLITests {
    @Test func theCLISeesTheNodeGoDownAndComeBack() async throws {
        try await withPrivateVirtualHost { transport in try await run(transport) }
    }

    func run(_ transport: String) async throws {
        let openstack = try KeystoneCLITests.openstack()
        let node = TestNames.unique("node-"), nodeIP = "198.18.12.13", downTime = 3
        let cloud = try await CloudUnderTest(transport: transport, serviceDownTime: downTime)
        let nodeConfig = try cloud.nodeConfig(host: node, uri: "test:///default", services: "compute", myIP: nodeIP).config
        let clouds = cloud.clouds
        let logger = Logger(label: "test")
        let controllerProcess = try cloud.controller()
        let nodeProcess = try cloud.node(config: nodeConfig)
        let restarted = try cloud.node(config: nodeConfig)
        let database = try Database(.sqlite(path: cloud.directory.path + "/petrel.db"), logger: logger)
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
                ((try? await store.services().filter { $0.host == node }.count) ?? 0) == 1
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
            await cloud.stop()
            await database.shutdown()
            cloud.remove()
        }
    }
}
