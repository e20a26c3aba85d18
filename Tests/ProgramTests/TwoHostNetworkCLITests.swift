import Foundation
import Logging
import NetlinkDriver
import PetrelCore
import ProcessDriver
import TestSupport
import Testing

/// Two hypervisor hosts on one machine: node A in this namespace, node B in a network
/// namespace of its own (DESIGN.md, "several hypervisor hosts on one machine"), joined by a
/// veth pair as the underlay. Node B reaches the broker on this host's loopback through a
/// socat relay over a Unix socket, so no traffic leaves loopback and the test's namespaces. Each node runs only `network`; "guests" are namespaces on veth taps
/// named as Nova's would be (two-host-cli.sh).
@Suite struct TwoHostNetworkCLITests {
    @Test func vxlanJoinsAGuestOnEachHost() async throws {
        try Requirement.root()
        try Requirement.tool("dnsmasq")
        try Requirement.tool("busybox")
        try Requirement.tool("socat")
        try Requirement.tool("bridge")
        try await withPrivateVirtualHost { transport in try await run(transport) }
    }

    func run(_ transport: String) async throws {
        let openstack = try KeystoneCLITests.openstack()
        let tag = TestNames.unique("pt")
        let cloud = try await CloudUnderTest(transport: transport, serviceDownTime: 5, extra: CloudUnderTest.ownVNIs)
        // The underlay: <tag>a here, <tag>b in host B's namespace, a /30 of 198.19.0.0/16.
        let octet = Int.random(in: 200...250), quad = Int.random(in: 0...63) * 4
        let addressA = "198.19.\(octet).\(quad + 1)", addressB = "198.19.\(octet).\(quad + 2)"
        let nodeA = TestNames.unique("hosta-"), nodeB = TestNames.unique("hostb-")
        let configA = try cloud.nodeConfig(host: nodeA, uri: "test:///default", services: "network", myIP: addressA).config
        let configB = try cloud.nodeConfig(host: nodeB, uri: "test:///default", services: "network", myIP: addressB).config
        let work = cloud.directory.appendingPathComponent("two-host").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let logger = Logger(label: "two-host")
        var relays: [ChildProcess] = []
        var hostB: NetworkNamespace?
        @Sendable func phase(_ name: String) async throws {
            let result = try await Command.run("env", [
                "OSC=\(openstack)", "OS_CLIENT_CONFIG_FILE=\(cloud.clouds)", "NODE_A=\(nodeA)", "NODE_B=\(nodeB)", "HOST_B=\(tag)h",
                "ADDR_A=\(addressA)", "ADDR_B=\(addressB)", "TAG=\(tag)", "WORK=\(work)", "bash",
                Repository.root.appendingPathComponent("Tests/ProgramTests/two-host-cli.sh").path, name])
            let passed = result.status == 0 && result.stdout.contains("phase \(name) passed")
            #expect(passed, "\(result.stdout)\n\(result.stderr.suffix(3000))\n\(cloud.recentOutput())")
            try #require(passed)
        }
        try await withCleanup {
            let namespace = try NetworkNamespace.create(tag + "h")
            hostB = namespace
            try await Command.check("ip", ["link", "add", tag + "a", "type", "veth", "peer", "name", tag + "b", "netns", namespace.name])
            try await Command.check("ip", ["addr", "add", addressA + "/30", "dev", tag + "a"])
            try await Command.check("ip", ["link", "set", tag + "a", "up"])
            for command in [["addr", "add", addressB + "/30", "dev", tag + "b"], ["link", "set", tag + "b", "up"], ["link", "set", "lo", "up"]] {
                try await Command.check("ip", ["-n", namespace.name] + command)
            }
            // Host B's loopback port of the broker, relayed to this host's. (A network-only
            // node without a metadata secret never calls the controller's HTTP API.)
            let socket = work + "/amqp.sock"
            relays = [
                try ChildProcess(name: "relay-amqp", executable: "socat", arguments: ["UNIX-LISTEN:\(socket),fork", "TCP:127.0.0.1:5672"],
                                 logger: logger),
                try ChildProcess(name: "relay-amqp-b", executable: "socat",
                                 arguments: ["TCP-LISTEN:5672,bind=127.0.0.1,fork,reuseaddr", "UNIX-CONNECT:\(socket)"],
                                 namespace: namespace, logger: logger),
            ]
            for relay in relays { try relay.start() }
            try cloud.controller().start()
            try await cloud.waitForController()
            // A alone first, so the network's DHCP lands on A and B's guest gets its lease
            // across the tunnel.
            try cloud.node(config: configA).start()
            try await phase("network")
            try cloud.node(config: configB, namespace: namespace).start()
            try await phase("cross")
            try await phase("last-port")
            try await phase("cleanup")
        } cleanup: {
            await cloud.stop()
            for relay in relays { relay.signal(SIGKILL) }
            for relay in relays { _ = await relay.wait() }
            for name in ["ga", "gb"] { _ = try? await Command.run("ip", ["netns", "del", tag + name]) }
            if let net = try? String(contentsOfFile: work + "/net", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) {
                _ = try? await Command.run("pkill", ["-f", "dnsmasq.*\(cloud.directory.path)"])
                _ = try? await Command.run("ip", ["netns", "del", "qdhcp-\(net)"])
                _ = try? await Command.run("ip", ["link", "del", "brq\(net.prefix(11))"])
            }
            if let vni = try? String(contentsOfFile: work + "/vni", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) {
                _ = try? await Command.run("ip", ["link", "del", "vxlan-\(vni)"])
            }
            _ = try? await Command.run("ip", ["link", "del", tag + "a"])
            try? hostB?.delete()  // with it go node B's bridge and tunnel, if any are left
            cloud.remove()
        }
    }
}
