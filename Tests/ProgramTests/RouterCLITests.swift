import Foundation
import Logging
import NetlinkDriver
import PetrelCore
import ProcessDriver
import TestSupport
import Testing

/// Routers and floating IPs through the unmodified `openstack` CLI, run by a real node's L3
/// agent on real traffic (router-cli.sh). The node runs compute (libvirt's test driver),
/// network and l3 in a network namespace of its own with the iptables firewall; it reaches
/// the broker and the controller through socat relays. "Guests" are namespaces on veth taps
/// named as Nova's; "the outside world" is a namespace on the flat external network's
/// interface, answering HTTP with the address it sees the request come from.
@Suite struct RouterCLITests {
    @Test func routersAndFloatingIPsCarryTraffic() async throws {
        try Requirement.root()
        for tool in ["socat", "ipset", "iptables-restore", "conntrack", "busybox", "curl"] { try Requirement.tool(tool) }
        try await withPrivateVirtualHost { transport in try await run(transport) }
    }

    func run(_ transport: String) async throws {
        let openstack = try KeystoneCLITests.openstack()
        let tag = TestNames.unique("pt")
        let cloud = try await CloudUnderTest(transport: transport, serviceDownTime: 5, extra: CloudUnderTest.ownVNIs)
        let node = TestNames.unique("l3-")
        let config = try cloud.nodeConfig(host: node, uri: "test:///default", services: "compute,network,l3", myIP: "127.0.0.1",
                                          firewall: "iptables", extra: """
                                              [linux_bridge]
                                              physical_interface_mappings = ext:\(tag)x
                                              [metadata]
                                              shared_secret = router-test-secret
                                              """).config
        let work = cloud.directory.appendingPathComponent("routers").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let logger = Logger(label: "routers")
        var relays: [ChildProcess] = []
        var host: NetworkNamespace?
        @Sendable func phase(_ name: String) async throws {
            let result = try await Command.run("env", [
                "OSC=\(openstack)", "OS_CLIENT_CONFIG_FILE=\(cloud.clouds)", "NODE=\(node)", "HOST=\(tag)h", "TAG=\(tag)", "WORK=\(work)",
                "bash", Repository.root.appendingPathComponent("Tests/ProgramTests/router-cli.sh").path, name])
            let passed = result.status == 0 && result.stdout.contains("phase \(name) passed")
            for line in result.stdout.split(separator: "\n") where line.hasPrefix("ok - ") || line.hasPrefix("figure: ") { print("router-cli \(name): \(line)") }
            #expect(passed, "\(result.stdout)\n\(result.stderr.suffix(3000))\n\(cloud.recentOutput())")
            try #require(passed)
        }
        try await withCleanup {
            let namespace = try NetworkNamespace.create(tag + "h")
            host = namespace
            try await Command.check("ip", ["-n", namespace.name, "link", "set", "lo", "up"])
            let apiPort = try #require(URLComponents(string: cloud.url)?.port)
            for port in [5672, apiPort] {
                let socket = work + "/relay-\(port).sock"
                relays.append(try ChildProcess(name: "relay-\(port)", executable: "socat", arguments: ["UNIX-LISTEN:\(socket),fork", "TCP:127.0.0.1:\(port)"],
                                               logger: logger))
                relays.append(try ChildProcess(name: "relay-\(port)-l3", executable: "socat",
                                               arguments: ["TCP-LISTEN:\(port),bind=127.0.0.1,fork,reuseaddr", "UNIX-CONNECT:\(socket)"],
                                               namespace: namespace, logger: logger))
            }
            for relay in relays { try relay.start() }
            try cloud.controller().start()
            try await cloud.waitForController()
            try await phase("setup")
            try await phase("api")
            let first = try cloud.node(config: config, namespace: namespace)
            try first.start()
            try await phase("snat")
            try await phase("floating")
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
            for file in ["httpd1.pid", "httpd2.pid", "outside.pid"] {
                if let pid = try? String(contentsOfFile: work + "/" + file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) {
                    _ = try? await Command.run("kill", ["-9", pid])
                }
            }
            for suffix in ["g1", "g2", "g3", "o"] { _ = try? await Command.run("ip", ["netns", "del", tag + suffix]) }
            // A router the test could not delete: its namespace goes too.
            if let routers = try? String(contentsOfFile: work + "/routers", encoding: .utf8) {
                for id in routers.split(separator: "\n") { _ = try? await Command.run("ip", ["netns", "del", "qrouter-\(id)"]) }
            }
            try? host?.delete()
            cloud.remove()
        }
    }
}
