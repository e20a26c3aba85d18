import Foundation
import Logging
import PetrelCore
import ProcessDriver
import TestSupport
import Testing

/// Guests on several networks, on the real hypervisor and kernel.
@Suite struct ServerNetworksCLITests {
    /// Two guests on one network reach each other, a third on another network with the same
    /// CIDR cannot; a NIC hot-plugged with `server add network` gets its lease; the node is
    /// killed (-9) and restarted while a guest is pinged, losing at most a few packets; ports
    /// are hot-unplugged again with `server remove port|network` (server-networks-cli.sh).
    @Test func guestsOnSeveralNetworksAndAHotPluggedNIC() async throws {
        try await NetworkedGuestCloud.run(slots: 3, host: "gnets-") { rig in
            let first = try await rig.startNode()
            try #require(try await rig.phase("server-networks-cli.sh", "boot", passed: "phase boot passed"))
            // kill -9 and a restart while the guest is pinged every 0.2 s for 20 s.
            let network = try rig.read("net-a"), address = try rig.read("addr1")
            async let pinged = Command.run("ip", ["netns", "exec", "qdhcp-\(network)", "ping", "-q", "-i", "0.2", "-c", "100", "-W", "1", address])
            try await Task.sleep(for: .seconds(4))
            first.signal(SIGKILL)
            _ = await first.wait()
            try rig.cloud.node(config: rig.nodeConfig).start()
            let ping = try await pinged
            let received = Self.received(ping.stdout)
            #expect(received >= 95, "the guest's ping lost \(100 - received) of 100 packets over the node's restart: \(ping.stdout)")
            print("node kill -9 and restart: \(100 - received) of 100 pings lost")
            try await rig.cloud.waitForComputeServices(1)
            _ = try await rig.phase("server-networks-cli.sh", "after", passed: "phase after passed")
        }
    }

    /// Ten guests boot on two networks and the node is killed (-9) in the middle; after its
    /// restart all are ACTIVE with their leases and metadata, one dnsmasq per network, no
    /// tap but the ports' on the bridges (server-storm-cli.sh).
    @Test func tenGuestsSurviveANodeKilledWhileTheyBoot() async throws {
        try await NetworkedGuestCloud.run(slots: 10, host: "storm-") { rig in
            let first = try await rig.startNode()
            try #require(try await rig.phase("server-storm-cli.sh", "launch", passed: "phase launch passed"))
            // In the middle of the builds: some defined, some running, some not begun.
            try await Task.sleep(for: .seconds(3))
            first.signal(SIGKILL)
            _ = await first.wait()
            try rig.cloud.node(config: rig.nodeConfig).start()
            _ = try await rig.phase("server-storm-cli.sh", "check", passed: "phase check passed")
        }
    }

    /// The packets ping's summary says came back.
    static func received(_ output: String) -> Int {
        guard let range = output.range(of: #"(\d+) (packets )?received"#, options: .regularExpression) else { return 0 }
        return Int(output[range].split(separator: " ")[0]) ?? 0
    }
}
