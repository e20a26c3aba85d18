import Foundation
import Logging
import PetrelCore
import ProcessDriver
import TestSupport
import Testing

/// A cloud for tests that boot real guests (QEMU/TCG) on real networks: a controller and
/// one node running compute and network on `qemu:///system`, over a private RabbitMQ virtual
/// host, with VNIs of its own, the test guest's image, and a CLI script run in phases.
struct NetworkedGuestCloud {
    let cloud: CloudUnderTest
    let nodeConfig: String
    let openstack: String
    let guest: String
    let tag: String
    let work: String

    /// Runs `body` on a fresh such cloud (its controller started, its node not yet), holding
    /// `slots` of the host's guest slots; removes everything afterwards.
    static func run(slots: Int, host prefix: String, _ body: @escaping @Sendable (NetworkedGuestCloud) async throws -> Void) async throws {
        try await withGuestSlots(slots) {
            try Requirement.root()
            try Requirement.libvirtd()
            try Requirement.tool("dnsmasq")
            let openstack = try KeystoneCLITests.openstack()
            let guest = try await KeystoneCLITests.guestImage()
            try await withPrivateVirtualHost { transport in
                let secret = "[metadata]\nshared_secret = \(UUID().uuidString)"
                let cloud = try await CloudUnderTest(transport: transport, extra: secret + "\n" + CloudUnderTest.ownVNIs)
                let (config, instances) = try cloud.nodeConfig(host: TestNames.unique(prefix), uri: "qemu:///system", services: "compute,network",
                                                               myIP: "127.0.0.1", extra: secret)
                let work = cloud.directory.appendingPathComponent("work").path
                try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
                let rig = NetworkedGuestCloud(cloud: cloud, nodeConfig: config, openstack: openstack, guest: guest, tag: TestNames.unique("t"),
                                              work: work)
                try await withCleanup {
                    try cloud.controller().start()
                    try await cloud.waitForController()
                    try await body(rig)
                } cleanup: {
                    await cloud.stop()
                    await cloud.removeDomains(instances: instances)
                    await cloud.removeNamespaces()
                    cloud.remove()
                }
            }
        }
    }

    /// Starts a node process (the first, or one after a crash) and waits until it is up.
    @discardableResult
    func startNode() async throws -> ChildProcess {
        let node = try cloud.node(config: nodeConfig)
        try node.start()
        try await cloud.waitForComputeServices(1)
        return node
    }

    /// Runs one phase of a CLI script and expects it to pass.
    func phase(_ script: String, _ name: String? = nil, passed marker: String) async throws -> Bool {
        let result = try await Command.run("env", [
            "OSC=\(openstack)", "OS_CLIENT_CONFIG_FILE=\(cloud.clouds)", "GUEST=\(guest)", "TAG=\(tag)", "WORK=\(work)", "bash",
            Repository.root.appendingPathComponent("Tests/ProgramTests/\(script)").path] + (name.map { [$0] } ?? []))
        let passed = result.status == 0 && result.stdout.contains(marker)
        #expect(passed, "\(result.stdout)\n\(result.stderr.suffix(3000))\n\(cloud.recentOutput())")
        return passed
    }

    func read(_ file: String) throws -> String {
        try String(contentsOfFile: work + "/" + file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A real guest on a real network: the unmodified CLI creates the server with `--network`,
/// the guest's DHCP lease, its metadata and user data through the node's proxy, ping and
/// HTTP from the network's DHCP namespace (server-network-cli.sh).
@Suite struct ServerNetworkCLITests {
    @Test func aGuestBootsOnANetworkAndAnswers() async throws {
        try await NetworkedGuestCloud.run(slots: 1, host: "gnet-") { rig in
            try await rig.startNode()
            _ = try await rig.phase("server-network-cli.sh", passed: "server network CLI checks passed")
        }
    }
}
