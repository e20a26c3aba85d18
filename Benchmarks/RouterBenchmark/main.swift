// Router benchmark: the node's L3 agent (RouterNamespaces) against the real kernel. Everything
// lives in namespaces of its own: a "host" with two bridges (an internal network and the
// external segment), a guest on the internal one, the outside world on the external one,
// and the router's qrouter- namespace between them. Figures, each the median of --runs:
//   - a router from nothing (namespace, two ports, routes, NAT) until the guest pings the outside;
//   - one floating IP added until the outside pings the guest through it;
//   - 100 floating IPs added at once to a router (one iptables-restore, 100 addresses, 100 ARPs);
//   - one more floating IP on a router holding 100; a restart with 100 (nothing to change).
// The Python L3 agent, for reference, uses ~143 MB after its imports (measured on these
// machines) and processes routers in a polling loop, one router at a time.
//
//   swift run -c release petrel-bench-router [--runs 5] [--floating 100]
import Contracts
import Foundation
import Logging
import NetlinkDriver
import NodeNetwork
import ProcessDriver

func option(_ name: String, _ fallback: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let value = Int(arguments[index + 1]) else { return fallback }
    return value
}

let runs = option("--runs", 5), floatingCount = option("--floating", 100)
let tag = "pb" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
let logger: Logger = { var logger = Logger(label: "bench-router"); logger.logLevel = .warning; return logger }()

func sh(_ arguments: String...) async throws { try await Command.check(arguments[0], Array(arguments.dropFirst())) }
func succeeds(_ arguments: [String]) async -> Bool { (try? await Command.run(arguments[0], Array(arguments.dropFirst())))?.status == 0 }

/// Milliseconds until `arguments` succeeds (tried back to back), at most 5 s.
func until(_ arguments: [String]) async throws -> Double {
    let start = ContinuousClock.now
    while ContinuousClock.now - start < .seconds(5) {
        if await succeeds(arguments) { return milliseconds(ContinuousClock.now - start) }
    }
    throw BenchError(description: "\(arguments.joined(separator: " ")) did not succeed within 5 s")
}

struct BenchError: Error, CustomStringConvertible { let description: String }

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

let internalNet = NetworkWiring(id: "be000000-0000-4000-8000-00000000a001", networkType: "vxlan", physicalNetwork: nil, segmentationID: 1,
                                mtu: 1500, adminStateUp: true)
let externalNet = NetworkWiring(id: "be000000-0000-4000-8000-00000000e001", networkType: "flat", physicalNetwork: "ext", segmentationID: nil,
                                mtu: 1500, adminStateUp: true)
let internalSubnet = SubnetWiring(id: "be000000-0000-4000-8000-00000000a051", cidr: "198.18.251.0/24", ipVersion: 4, gatewayIP: "198.18.251.1",
                                  enableDHCP: false, dnsNameservers: [], hostRoutes: [], ipv6AddressMode: nil, ipv6RAMode: nil)
let externalSubnet = SubnetWiring(id: "be000000-0000-4000-8000-00000000e051", cidr: "198.18.250.0/24", ipVersion: 4, gatewayIP: "198.18.250.1",
                                  enableDHCP: false, dnsNameservers: [], hostRoutes: [], ipv6AddressMode: nil, ipv6RAMode: nil)

func port(_ id: String, _ network: NetworkWiring, _ subnet: SubnetWiring, _ address: String, mac: String, owner: String) -> RouterPortState {
    RouterPortState(port: PortWiring(id: id, networkID: network.id, projectID: "bench", macAddress: mac,
                                     fixedIPs: [FixedAddress(subnetID: subnet.id, address: address)], deviceOwner: owner, deviceID: "bench",
                                     host: "bench", adminStateUp: true, status: "ACTIVE", dnsName: "", extraDHCPOptions: []),
                    network: network, subnets: [subnet])
}

func router(_ run: Int, floating: Int, extra: Bool = false) -> RouterState {
    var fips = (0..<floating).map { index in
        FloatingIPState(id: String(format: "bf000000-0000-4000-8000-%012x", index), address: "198.18.250.\(100 + index)",
                        fixedAddress: "198.18.\(252 + index / 250).\(index % 250 + 2)")
    }
    if extra { fips.append(FloatingIPState(id: "bf000000-0000-4000-8000-ffffffffffff", address: "198.18.250.50", fixedAddress: "198.18.251.11")) }
    return RouterState(
        id: String(format: "be000000-0000-4000-8000-%012x", run), adminStateUp: true,
        gateway: port(String(format: "be0000e0-0000-4000-8000-%012x", run), externalNet, externalSubnet, "198.18.250.2", mac: "fa:16:3e:be:00:02",
                      owner: "network:router_gateway"),
        enableSNAT: true,
        interfaces: [port(String(format: "be0000a0-0000-4000-8000-%012x", run), internalNet, internalSubnet, "198.18.251.1", mac: "fa:16:3e:be:01:01",
                          owner: "network:router_interface")],
        routes: [], floatingIPs: fips, portForwardings: [], guests: [])
}

let host = try NetworkNamespace.create(tag + "h")
var made: [String] = [tag + "h"]
var routerIDs: [String] = []
@MainActor func cleanup() async {
    let namespaces = try? RouterNamespaces(logger: logger, hostNamespace: host)
    for id in routerIDs { try? await namespaces?.remove(router: id) }
    for name in made.reversed() { _ = try? await Command.run("ip", ["netns", "del", name]) }
}
do {
    // The host: an internal and an external bridge; the guest and the outside world on them.
    for bridge in ["brint", "brext"] {
        try await sh("ip", "-n", host.name, "link", "add", bridge, "type", "bridge")
        try await sh("ip", "-n", host.name, "link", "set", bridge, "up")
    }
    for (name, bridge, address, gateway) in [("g", "brint", "198.18.251.11/24", "198.18.251.1"), ("o", "brext", "198.18.250.1/24", "")] {
        try await sh("ip", "netns", "add", tag + name)
        made.append(tag + name)
        try await sh("ip", "-n", host.name, "link", "add", "v" + name, "type", "veth", "peer", "name", "eth0", "netns", tag + name)
        try await sh("ip", "-n", host.name, "link", "set", "v" + name, "master", bridge, "up")
        try await sh("ip", "-n", tag + name, "addr", "add", address, "dev", "eth0")
        try await sh("ip", "-n", tag + name, "link", "set", "eth0", "up")
        if !gateway.isEmpty { try await sh("ip", "-n", tag + name, "route", "add", "default", "via", gateway) }
    }
    let namespaces = try RouterNamespaces(logger: logger, hostNamespace: host)
    let bridge: @Sendable (NetworkWiring) -> String = { $0.id == internalNet.id ? "brint" : "brext" }
    var fromEmpty: [Double] = [], untilPing: [Double] = [], oneFloating: [Double] = [], floatingPing: [Double] = []
    var hundred: [Double] = [], oneMore: [Double] = [], restart: [Double] = []
    for run in 0..<runs {
        let base = router(run, floating: 0)
        routerIDs.append(base.id)
        var start = ContinuousClock.now
        _ = try await namespaces.ensure(base, bridge: bridge, previous: nil)
        fromEmpty.append(milliseconds(ContinuousClock.now - start))
        untilPing.append(try await until(["ip", "netns", "exec", tag + "g", "ping", "-c", "1", "-W", "0.2", "198.18.250.1"]))

        let one = router(run, floating: 0, extra: true)
        start = ContinuousClock.now
        _ = try await namespaces.ensure(one, bridge: bridge, previous: base)
        oneFloating.append(milliseconds(ContinuousClock.now - start))
        floatingPing.append(try await until(["ip", "netns", "exec", tag + "o", "ping", "-c", "1", "-W", "0.2", "198.18.250.50"]))

        let many = router(run, floating: floatingCount, extra: true)
        start = ContinuousClock.now
        _ = try await namespaces.ensure(many, bridge: bridge, previous: one)
        hundred.append(milliseconds(ContinuousClock.now - start))
        var more = many
        more.floatingIPs.append(FloatingIPState(id: "bf000000-0000-4000-8000-fffffffffffe", address: "198.18.250.99", fixedAddress: "198.18.251.12"))
        start = ContinuousClock.now
        _ = try await namespaces.ensure(more, bridge: bridge, previous: many)
        oneMore.append(milliseconds(ContinuousClock.now - start))
        start = ContinuousClock.now
        let outcome = try await namespaces.ensure(more, bridge: bridge, previous: more)
        restart.append(milliseconds(ContinuousClock.now - start))
        precondition(!outcome.rulesRewritten, "an unchanged router rewrote its NAT table")
        try await namespaces.remove(router: base.id)
        routerIDs.removeAll { $0 == base.id }
    }
    func line(_ name: String, _ values: [Double], target: String = "") {
        let figure = String(format: "%8.1f ms", median(values))
        print(name.padding(toLength: 62, withPad: " ", startingAt: 0) + figure + (target.isEmpty ? "" : "   (target \(target))"))
    }
    print("petrel-bench-router: median of \(runs) runs, \(floatingCount) floating IPs")
    line("router from nothing (namespace, 2 ports, routes, NAT)", fromEmpty)
    line("  … then until the guest pings the outside", untilPing)
    line("one floating IP added (addresses, NAT, ARP)", oneFloating)
    line("  … then until the outside pings the guest through it", floatingPing)
    line("\(floatingCount) floating IPs added at once (one iptables-restore)", hundred, target: "< 1000 ms")
    line("one more floating IP beside \(floatingCount)", oneMore)
    line("restart with \(floatingCount) (read the kernel, nothing to change)", restart)
    print("reference: the Python L3 agent ~143 MB RSS after imports; a polling, per-router loop")
} catch {
    print("petrel-bench-router failed: \(error)")
    await cleanup()
    exit(1)
}
await cleanup()
