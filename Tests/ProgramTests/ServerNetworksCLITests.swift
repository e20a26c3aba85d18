import Foundation
import Logging
import PetrelCore
import ProcessDriver
import TestSupport
import Testing

/// Guests on several networks, on the real hypervisor and kernel (server-networks-cli.sh):
/// two guests on one network reach each other, a third on another network with the same
/// CIDR cannot; a NIC hot-plugged with `server add network` gets its lease; the node is
/// killed (-9) and restarted while a guest is pinged, losing at most a few packets; ports are
/// hot-unplugged again with `server remove port|network`.
@Suite struct ServerNetworksCLITests {
    @Test func guestsOnSeveralNetworksAndAHotPluggedNIC() async throws {
        try await withGuestSlots(3) {
            try Requirement.root()
            try Requirement.libvirtd()
            try Requirement.tool("dnsmasq")
            let openstack = KeystoneCLITests.venv + "/bin/openstack"
            try Requirement.require(FileManager.default.isExecutableFile(atPath: openstack),
                                    "\(openstack) is missing (Packaging/openstack-client.sh installs it; make test runs it)")
            let guest = try await Command.check(Repository.root.appendingPathComponent("Packaging/guest-image/build.sh").path, [])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            try await withPrivateVirtualHost { transport in
                let secret = "[metadata]\nshared_secret = \(UUID().uuidString)"
                // VNIs of its own: other tests' nodes (and `make run`'s) share this host's kernel.
                let vni = Int.random(in: 100_000...16_000_000)
                let cloud = try await CloudUnderTest(transport: transport, extra: secret + "\n[ml2_type_vxlan]\nvni_ranges = \(vni):\(vni + 99)")
                let host = TestNames.unique("gnets-")
                let (config, instances) = try cloud.nodeConfig(host: host, uri: "qemu:///system", services: "compute,network", myIP: "127.0.0.1",
                                                               extra: secret)
                let work = cloud.directory.appendingPathComponent("server-networks").path
                try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
                let tag = TestNames.unique("m")
                let script = Repository.root.appendingPathComponent("Tests/ProgramTests/server-networks-cli.sh").path
                @Sendable func phase(_ name: String) async throws -> CommandResult {
                    try await Command.run("env", ["OSC=\(openstack)", "OS_CLIENT_CONFIG_FILE=\(cloud.clouds)", "GUEST=\(guest)", "TAG=\(tag)",
                                                  "WORK=\(work)", "bash", script, name])
                }
                try await withCleanup {
                    try cloud.controller().start()
                    try await cloud.waitForController()
                    let first = try cloud.node(config: config)
                    try first.start()
                    try await cloud.waitForComputeServices(1)
                    let boot = try await phase("boot")
                    try #require(boot.status == 0 && boot.stdout.contains("phase boot passed"),
                                 "\(boot.stdout)\n\(boot.stderr.suffix(3000))\n\(cloud.recentOutput())")

                    // kill -9 and a restart while the guest is pinged every 0.2 s for 20 s.
                    let network = try String(contentsOfFile: work + "/net-a", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                    let address = try String(contentsOfFile: work + "/addr1", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                    async let pinged = Command.run("ip", ["netns", "exec", "qdhcp-\(network)", "ping", "-q", "-i", "0.2", "-c", "100", "-W", "1", address])
                    try await Task.sleep(for: .seconds(4))
                    first.signal(SIGKILL)
                    _ = await first.wait()
                    let second = try cloud.node(config: config)
                    try second.start()
                    let ping = try await pinged
                    let received = Self.received(ping.stdout)
                    #expect(received >= 95, "the guest's ping lost \(100 - received) of 100 packets over the node's restart: \(ping.stdout)")
                    print("node kill -9 and restart: \(100 - received) of 100 pings lost")
                    try await cloud.waitForComputeServices(1)

                    let after = try await phase("after")
                    #expect(after.status == 0 && after.stdout.contains("phase after passed"),
                            "\(after.stdout)\n\(after.stderr.suffix(3000))\n\(cloud.recentOutput())")
                } cleanup: {
                    await cloud.stop()
                    await cloud.removeDomains(instances: instances)
                    await cloud.removeNamespaces()
                    cloud.remove()
                }
            }
        }
    }

    /// Ten guests boot on two networks and the node is killed (-9) in the middle; after its
    /// restart all are ACTIVE with their leases and metadata, one dnsmasq per network, no
    /// tap but the ports' on the bridges (server-storm-cli.sh).
    @Test func tenGuestsSurviveANodeKilledWhileTheyBoot() async throws {
        try await withGuestSlots(10) {
            try Requirement.root()
            try Requirement.libvirtd()
            try Requirement.tool("dnsmasq")
            let openstack = KeystoneCLITests.venv + "/bin/openstack"
            try Requirement.require(FileManager.default.isExecutableFile(atPath: openstack),
                                    "\(openstack) is missing (Packaging/openstack-client.sh installs it; make test runs it)")
            let guest = try await Command.check(Repository.root.appendingPathComponent("Packaging/guest-image/build.sh").path, [])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            try await withPrivateVirtualHost { transport in
                let secret = "[metadata]\nshared_secret = \(UUID().uuidString)"
                let vni = Int.random(in: 100_000...16_000_000)
                let cloud = try await CloudUnderTest(transport: transport, extra: secret + "\n[ml2_type_vxlan]\nvni_ranges = \(vni):\(vni + 99)")
                let host = TestNames.unique("storm-")
                let (config, instances) = try cloud.nodeConfig(host: host, uri: "qemu:///system", services: "compute,network", myIP: "127.0.0.1",
                                                               extra: secret)
                let work = cloud.directory.appendingPathComponent("server-storm").path
                try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
                let tag = TestNames.unique("s")
                let script = Repository.root.appendingPathComponent("Tests/ProgramTests/server-storm-cli.sh").path
                @Sendable func phase(_ name: String) async throws -> CommandResult {
                    try await Command.run("env", ["OSC=\(openstack)", "OS_CLIENT_CONFIG_FILE=\(cloud.clouds)", "GUEST=\(guest)", "TAG=\(tag)",
                                                  "WORK=\(work)", "bash", script, name])
                }
                try await withCleanup {
                    try cloud.controller().start()
                    try await cloud.waitForController()
                    let first = try cloud.node(config: config)
                    try first.start()
                    try await cloud.waitForComputeServices(1)
                    let launch = try await phase("launch")
                    try #require(launch.status == 0 && launch.stdout.contains("phase launch passed"),
                                 "\(launch.stdout)\n\(launch.stderr.suffix(3000))\n\(cloud.recentOutput())")
                    // In the middle of the builds: some defined, some running, some not begun.
                    try await Task.sleep(for: .seconds(3))
                    first.signal(SIGKILL)
                    _ = await first.wait()
                    try cloud.node(config: config).start()
                    let check = try await phase("check")
                    #expect(check.status == 0 && check.stdout.contains("phase check passed"),
                            "\(check.stdout)\n\(check.stderr.suffix(3000))\n\(cloud.recentOutput())")
                } cleanup: {
                    await cloud.stop()
                    await cloud.removeDomains(instances: instances)
                    await cloud.removeNamespaces()
                    cloud.remove()
                }
            }
        }
    }

    /// The packets ping's summary says came back.
    static func received(_ output: String) -> Int {
        guard let range = output.range(of: #"(\d+) (packets )?received"#, options: .regularExpression) else { return 0 }
        return Int(output[range].split(separator: " ")[0]) ?? 0
    }
}
