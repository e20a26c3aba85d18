import Foundation
import Logging
import NetlinkDriver
import PetrelCore
import ProcessDriver
import TestSupport
import Testing

/// Security groups through the unmodified `openstack` CLI, enforced by a real node on real
/// traffic (security-group-cli.sh). The node runs compute (libvirt's test driver) and network
/// in a network namespace of its own, so its firewall is the only one there; it reaches the
/// broker and the controller through socat relays. "Guests" are namespaces on veth taps named as Nova's.
@Suite struct SecurityGroupCLITests {
    @Test func groupsAreEnforcedOnTheNode() async throws {
        try Requirement.root()
        for tool in ["socat", "ipset", "iptables-restore", "busybox", "curl"] { try Requirement.tool(tool) }
        try await withPrivateVirtualHost { transport in try await run(transport) }
    }

    func run(_ transport: String) async throws {
        let openstack = try KeystoneCLITests.openstack()
        let tag = TestNames.unique("pt")
        let cloud = try await CloudUnderTest(transport: transport, serviceDownTime: 5, extra: CloudUnderTest.ownVNIs)
        let node = TestNames.unique("sg-")
        let config = try cloud.nodeConfig(host: node, uri: "test:///default", services: "compute,network", myIP: "127.0.0.1",
                                          firewall: "iptables").config
        let work = cloud.directory.appendingPathComponent("security-groups").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let logger = Logger(label: "security-groups")
        var relays: [ChildProcess] = []
        var host: NetworkNamespace?
        @Sendable func phase(_ name: String) async throws {
            let result = try await Command.run("env", [
                "OSC=\(openstack)", "OS_CLIENT_CONFIG_FILE=\(cloud.clouds)", "NODE=\(node)", "HOST=\(tag)h", "TAG=\(tag)", "WORK=\(work)",
                "bash", Repository.root.appendingPathComponent("Tests/ProgramTests/security-group-cli.sh").path, name])
            let passed = result.status == 0 && result.stdout.contains("phase \(name) passed")
            #expect(passed, "\(result.stdout)\n\(result.stderr.suffix(3000))\n\(cloud.recentOutput())")
            try #require(passed)
        }
        try await withCleanup {
            let namespace = try NetworkNamespace.create(tag + "h")
            host = namespace
            try await Command.check("ip", ["-n", namespace.name, "link", "set", "lo", "up"])
            // The broker's port and the controller's (images come over HTTP) on the namespace's
            // loopback, relayed to this host's through Unix sockets.
            let apiPort = try #require(URLComponents(string: cloud.url)?.port)
            for port in [5672, apiPort] {
                let socket = work + "/relay-\(port).sock"
                relays.append(try ChildProcess(name: "relay-\(port)", executable: "socat", arguments: ["UNIX-LISTEN:\(socket),fork", "TCP:127.0.0.1:\(port)"],
                                               logger: logger))
                relays.append(try ChildProcess(name: "relay-\(port)-sg", executable: "socat",
                                               arguments: ["TCP-LISTEN:\(port),bind=127.0.0.1,fork,reuseaddr", "UNIX-CONNECT:\(socket)"],
                                               namespace: namespace, logger: logger))
            }
            for relay in relays { try relay.start() }
            try cloud.controller().start()
            try await cloud.waitForController()
            try await phase("api")
            let first = try cloud.node(config: config, namespace: namespace)
            try first.start()
            try await phase("traffic")
            // kill -9, then changes while the node is away; the restarted node converges.
            first.signal(SIGKILL)
            _ = await first.wait()
            try await phase("while-down")
            try cloud.node(config: config, namespace: namespace).start()
            try await phase("restarted")
            try await phase("servers")
            try await phase("cleanup")
        } cleanup: {
            await cloud.stop()
            for relay in relays { relay.signal(SIGKILL) }
            for relay in relays { _ = await relay.wait() }
            if let pid = try? String(contentsOfFile: work + "/httpd.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) {
                _ = try? await Command.run("kill", ["-9", pid])
            }
            for index in 1...3 { _ = try? await Command.run("ip", ["netns", "del", tag + "g\(index)"]) }
            try? host?.delete()  // with it go the node's bridge, tunnel, chains and sets
            cloud.remove()
        }
    }
}
