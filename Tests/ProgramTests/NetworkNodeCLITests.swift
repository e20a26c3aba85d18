import Foundation
import Logging
import PetrelCore
import ProcessDriver
import TestSupport
import Testing

/// The node's network service with the real pieces: a controller and a node running only
/// `network` (Linux bridge L2 agent + DHCP agent) over a private RabbitMQ virtual host, the
/// kernel's bridges, VXLAN and namespaces, real dnsmasq, a "guest" namespace asking for a
/// lease — seen through the unmodified `openstack` CLI (network-node-cli.sh).
@Suite struct NetworkNodeCLITests {
    @Test func theNodeWiresNetworksAndServesDHCP() async throws {
        try Requirement.root()
        try Requirement.tool("dnsmasq")
        try Requirement.tool("busybox")
        try await withPrivateVirtualHost { transport in try await run(transport) }
    }

    func run(_ transport: String) async throws {
        let openstack = try KeystoneCLITests.openstack()
        let node = TestNames.unique("netnode-")
        let cloud = try await CloudUnderTest(transport: transport, serviceDownTime: 3, extra: CloudUnderTest.ownVNIs)
        let nodeConfig = try cloud.nodeConfig(host: node, uri: "test:///default", services: "network", myIP: "127.0.0.1").config
        let state = cloud.directory.path + "/state-\(node)"
        let work = cloud.directory.appendingPathComponent("network-node").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let controllerProcess = try cloud.controller()
        let first = try cloud.node(config: nodeConfig)
        let second = try cloud.node(config: nodeConfig)
        let script = Repository.root.appendingPathComponent("Tests/ProgramTests/network-node-cli.sh").path
        @Sendable func phase(_ name: String) async throws -> CommandResult {
            try await Command.run("env", ["OSC=\(openstack)", "OS_CLIENT_CONFIG_FILE=\(cloud.clouds)", "NODE=\(node)", "STATE=\(state)",
                                          "WORK=\(work)", "bash", script, name])
        }
        @Sendable func expectPassed(_ result: CommandResult, _ name: String, _ node: ChildProcess) {
            #expect(result.status == 0 && result.stdout.contains("phase \(name) passed"),
                    "\(result.stdout)\n\(result.stderr.suffix(2000))\nnode: \(node.recentOutput.suffix(15))")
        }
        try controllerProcess.start()
        try first.start()
        try await withCleanup {
            let wire = try await phase("wire")
            expectPassed(wire, "wire", first)
            // A crash and a restart: the node adopts what it made, dnsmasq included.
            first.signal(SIGKILL)
            _ = await first.wait()
            try second.start()
            let adopted = try await phase("adopted")
            expectPassed(adopted, "adopted", second)
            let cleanup = try await phase("cleanup")
            expectPassed(cleanup, "cleanup", second)
            second.signal(SIGTERM)
            #expect(await second.wait() == .exited(0))
            let down = try await phase("down")
            expectPassed(down, "down", second)
            #expect(!controllerProcess.recentOutput.contains { $0.contains("request failed") },
                    "\(controllerProcess.recentOutput.filter { $0.contains("failed") })")
        } cleanup: {
            if let guest = try? String(contentsOfFile: work + "/guest-ns", encoding: .utf8) {
                _ = try? await Command.run("ip", ["netns", "del", guest.trimmingCharacters(in: .whitespacesAndNewlines)])
            }
            // Whatever the node left of the test's network if the test failed halfway.
            _ = try? await Command.run("pkill", ["-f", "dnsmasq.*\(state)"])
            if let net = try? String(contentsOfFile: work + "/net", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) {
                _ = try? await Command.run("ip", ["netns", "del", "qdhcp-\(net)"])
                _ = try? await Command.run("ip", ["link", "del", "brq\(net.prefix(11))"])
            }
            await cloud.stop()
            cloud.remove()
        }
    }
}
