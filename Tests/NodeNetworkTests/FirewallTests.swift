import Contracts
import Foundation
import IptablesDriver
import Logging
import NetlinkDriver
@testable import NodeNetwork
import ProcessDriver
import TestSupport
import Testing

/// The iptables firewall against the real kernel and real traffic: a "host" namespace with a
/// bridge, and "guests" (namespaces on veth taps named as Nova's) that ping, fetch pages and
/// keep connections open while the firewall changes under them.
@Suite(.serialized) struct FirewallTests {
    static let network = "5ecf0000-aaaa-4bbb-8ccc-000000000001"
    static let web = "9f1a0000-0000-4000-8000-0000000000a1"
    static let other = "7b2c0000-0000-4000-8000-0000000000b2"

    struct Guest {
        let port: String
        let namespace: String
        let mac: String
        let address: String
        var tap: String { "tap" + port.prefix(11) }
    }

    static func port(_ guest: Guest, groups: [String], security: Bool = true, pairs: [FirewallPort.AllowedPair] = []) -> FirewallPort {
        FirewallPort(id: guest.port, networkID: network, macAddress: guest.mac, fixedIPs: [guest.address], allowedAddressPairs: pairs,
                     portSecurityEnabled: security, securityGroups: groups)
    }

    static func rule(_ direction: String, _ proto: Int? = nil, ports: ClosedRange<Int>? = nil, prefix: String? = nil, group: String? = nil,
                     addressGroup: String? = nil) -> FirewallRule {
        FirewallRule(direction: direction, ipVersion: 4, protocolNumber: proto, portRangeMin: ports?.lowerBound, portRangeMax: ports?.upperBound,
                     remoteIPPrefix: prefix, remoteGroupID: group, remoteAddressGroupID: addressGroup)
    }

    /// Neutron's default group: everything out, in from its members.
    static func defaultLike(_ id: String, extra: [FirewallRule] = [], stateful: Bool = true) -> FirewallGroup {
        FirewallGroup(id: id, stateful: stateful, rules: [rule("egress"), rule("ingress", group: id)] + extra)
    }

    @Test func renderingIsWhatIptablesSavePrints() throws {
        var zones: [String: Int] = [:]
        let guest = Guest(port: "11111111-2222-4333-8444-555555555555", namespace: "", mac: "fa:16:3e:00:00:01", address: "198.18.80.11")
        let state = FirewallState(ports: [Self.port(guest, groups: [Self.web])],
                                  groups: [Self.defaultLike(Self.web, extra: [Self.rule("ingress", 6, ports: 80...80, prefix: "198.18.81.0/24"),
                                                                             FirewallRule(direction: "ingress", ipVersion: 4, protocolNumber: 1,
                                                                                          portRangeMin: 8, portRangeMax: nil, remoteIPPrefix: nil,
                                                                                          remoteGroupID: nil, remoteAddressGroupID: nil)])],
                                  groupMembers: [Self.web: ["198.18.80.11", "198.18.80.12"]])
        let rendered = IptablesFirewall.render(state, zones: &zones)
        let ingress = try #require(rendered.filter4.chains["petrel-sg-i11111111-22"])
        #expect(ingress == [
            "-m state --state RELATED,ESTABLISHED -j ACCEPT", "-m state --state INVALID -j DROP",
            "-p udp -m udp --sport 67 --dport 68 -j ACCEPT", "-j petrel-sg-gi9f1a0000-00", "-j DROP",
        ])
        #expect(rendered.filter4.chains["petrel-sg-gi9f1a0000-00"] == [
            "-m set --match-set psg4g9f1a0000-0000-4000-8000-00 src -j ACCEPT",
            "-s 198.18.81.0/24 -p tcp -m tcp --dport 80 -j ACCEPT", "-p icmp -m icmp --icmp-type 8 -j ACCEPT",
        ])
        #expect(rendered.filter4.chains["petrel-sg-s11111111-22"] == ["-s 198.18.80.11/32 -m mac --mac-source fa:16:3e:00:00:01 -j RETURN", "-j DROP"])
        #expect(rendered.filter6.chains["petrel-sg-s11111111-22"] == ["-s fe80::f816:3eff:fe00:1/128 -m mac --mac-source fa:16:3e:00:00:01 -j RETURN", "-j DROP"])
        #expect(rendered.sets["psg4g9f1a0000-0000-4000-8000-00"]?.members == ["198.18.80.11/32", "198.18.80.12/32"])
        #expect(rendered.raw4.chains["petrel-sg-zone"] == ["-i brq5ecf0000-aa -j CT --zone 1"])
        // A stateless group: no conntrack rules at all.
        let stateless = IptablesFirewall.render(FirewallState(ports: state.ports, groups: [Self.defaultLike(Self.web, stateful: false)]), zones: &zones)
        #expect(!(stateless.filter4.chains["petrel-sg-o11111111-22"] ?? []).contains { $0.contains("--state") })
        // Port security off: the port's frames pass, no chain of its own.
        let open = IptablesFirewall.render(FirewallState(ports: [Self.port(guest, groups: [], security: false)]), zones: &zones)
        #expect(open.filter4.chains.keys.sorted() == ["petrel-sg-fwd"])
        #expect(open.filter4.chains["petrel-sg-fwd"]!.allSatisfy { $0.hasSuffix("-j ACCEPT") })
    }

    @Test func realTrafficFollowsTheGroups() async throws {
        try Requirement.root()
        for tool in ["ipset", "iptables-restore", "ip6tables-restore", "busybox", "python3", "socat", "curl"] { try Requirement.tool(tool) }
        let tag = TestNames.unique("pt")
        let host = try NetworkNamespace.create(tag + "h")
        var namespaces = [host]
        var servers: [ChildProcess] = []
        let logger = Logger(label: "firewall-test")
        let work = FileManager.default.temporaryDirectory.appendingPathComponent(tag).path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try await withCleanup {
            @Sendable func run(_ namespace: String, _ arguments: [String]) async throws -> CommandResult {
                try await Command.run("ip", ["netns", "exec", namespace] + arguments)
            }
            @Sendable func pings(_ from: Guest, _ to: Guest) async throws -> Bool {
                try await run(from.namespace, ["ping", "-c", "1", "-W", "1", to.address]).status == 0
            }
            @Sendable func fetches(_ from: Guest, _ to: Guest) async throws -> Bool {
                try await run(from.namespace, ["curl", "-s", "--max-time", "2", "http://\(to.address):80/"]).stdout.contains("page")
            }
            let bridge = "brq" + Self.network.prefix(11)
            try await Command.check("ip", ["-n", host.name, "link", "add", bridge, "type", "bridge"])
            try await Command.check("ip", ["-n", host.name, "link", "set", bridge, "up"])
            var guests: [Guest] = []
            for index in 1...4 {
                let guest = Guest(port: String(format: "%08x-0000-4000-8000-%012x", index, index), namespace: tag + "g\(index)",
                                  mac: String(format: "fa:16:3e:80:00:%02x", index), address: "198.18.80.\(10 + index)")
                let namespace = try NetworkNamespace.create(guest.namespace)
                namespaces.append(namespace)
                try await Command.check("ip", ["-n", host.name, "link", "add", guest.tap, "type", "veth", "peer", "name", "eth0", "netns", guest.namespace])
                try await Command.check("ip", ["-n", host.name, "link", "set", guest.tap, "master", bridge, "up"])
                for command in [["link", "set", "eth0", "address", guest.mac], ["addr", "add", guest.address + "/24", "dev", "eth0"],
                                ["link", "set", "eth0", "up"], ["link", "set", "lo", "up"]] {
                    try await Command.check("ip", ["-n", guest.namespace] + command)
                }
                guests.append(guest)
            }
            let (g1, g2, g3, g4) = (guests[0], guests[1], guests[2], guests[3])
            // g1 serves a page on 80 and echoes on 7000.
            try "page of g1\n".write(toFile: work + "/index.html", atomically: true, encoding: .utf8)
            servers = [
                try ChildProcess(name: "httpd", executable: "busybox", arguments: ["httpd", "-f", "-p", "80", "-h", work], namespace: namespaces[1], logger: logger),
                try ChildProcess(name: "echo", executable: "socat", arguments: ["TCP-LISTEN:7000,fork,reuseaddr", "EXEC:cat"], namespace: namespaces[1], logger: logger),
            ]
            for server in servers { try server.start() }
            #expect(await eventually { (try? await fetches(g2, g1)) == true }, "no firewall yet: g2 fetches g1's page")

            let firewall = IptablesFirewall(namespace: host)
            // g1, g2 in web (default-like); g3 in other; g4 with port security off.
            var web = Self.defaultLike(Self.web)
            let other = Self.defaultLike(Self.other)
            func state() -> FirewallState {
                FirewallState(ports: [Self.port(g1, groups: [Self.web]), Self.port(g2, groups: [Self.web]), Self.port(g3, groups: [Self.other]),
                                      Self.port(g4, groups: [], security: false)],
                              groups: [web, other], groupMembers: [Self.web: [g1.address, g2.address], Self.other: [g3.address]])
            }
            let first = try await firewall.apply(state())
            #expect(first.chainsRewritten > 0)
            #expect(try await pings(g2, g1), "members of one group reach each other")
            #expect(try await !pings(g3, g1), "a guest in no shared group cannot reach g1")
            #expect(try await pings(g1, g3) == false, "g3 lets in only its own group")
            #expect(try await pings(g4, g1) == false, "port security off on g4 does not open g1")
            #expect(try await pings(g1, g4), "port security off: g4 takes everything")

            // TCP 80 from a CIDR that holds g3: g3 fetches the page, its ping stays dropped.
            web.rules.append(Self.rule("ingress", 6, ports: 80...80, prefix: "198.18.80.13/32"))
            let added = try await firewall.apply(state())
            #expect(added.chainsRewritten == 1, "one rule added rewrites the group's one ingress chain, not \(added.chainsRewritten)")
            #expect(try await fetches(g3, g1))
            #expect(try await !pings(g3, g1))

            // An established connection survives an unrelated change.
            let client = """
                import socket, os, time, sys
                s = socket.create_connection(("\(g1.address)", 7000), timeout=3)
                s.sendall(b"one\\n"); first = s.recv(16)
                while not os.path.exists("\(work)/go"): time.sleep(0.05)
                s.sendall(b"two\\n"); second = s.recv(16)
                print(first.decode().strip(), second.decode().strip())
                """
            try client.write(toFile: work + "/client.py", atomically: true, encoding: .utf8)
            let connection = Task { try await run(g2.namespace, ["python3", work + "/client.py"]) }
            try await Task.sleep(for: .milliseconds(500))
            web.rules.append(Self.rule("ingress", 17, ports: 5353...5353))
            _ = try await firewall.apply(state())
            FileManager.default.createFile(atPath: work + "/go", contents: nil)
            let echoed = try await connection.value
            #expect(echoed.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "one two", "\(echoed.stdout) \(echoed.stderr)")

            // Removing the rule: g3's new connections fail.
            web.rules.removeAll { $0.protocolNumber == 6 }
            _ = try await firewall.apply(state())
            #expect(try await !fetches(g3, g1))

            // Remote group membership: g3 joins web (its set), and reaches g1.
            var joined = state()
            joined.ports[2].securityGroups = [Self.web, Self.other]
            joined.groupMembers[Self.web]!.append(g3.address)
            let membership = try await firewall.apply(joined)
            #expect(membership.chainsRewritten == 2 && membership.setsChanged == 1,
                    "a member change is one set member (and g3's own ingress chain in both families): \(membership)")
            #expect(try await pings(g3, g1))
            _ = try await firewall.apply(state())
            #expect(try await !pings(g3, g1), "left the group: shut out again")

            // Spoofing: g2 takes another address; it can no longer send. An allowed pair lets it.
            try await Command.check("ip", ["-n", g2.namespace, "addr", "add", "198.18.80.99/24", "dev", "eth0"])
            #expect(try await run(g2.namespace, ["ping", "-c", "1", "-W", "1", "-I", "198.18.80.99", g1.address]).status != 0)
            var paired = state()
            paired.ports[1].allowedAddressPairs = [FirewallPort.AllowedPair(ipAddress: "198.18.80.99", macAddress: g2.mac)]
            paired.groupMembers[Self.web]!.append("198.18.80.99")
            _ = try await firewall.apply(paired)
            #expect(try await run(g2.namespace, ["ping", "-c", "1", "-W", "1", "-I", "198.18.80.99", g1.address]).status == 0)
            try await Command.check("ip", ["-n", g2.namespace, "link", "set", "eth0", "address", "fa:16:3e:80:00:99"])
            #expect(try await !pings(g2, g1), "a changed MAC cannot send")
            try await Command.check("ip", ["-n", g2.namespace, "link", "set", "eth0", "address", g2.mac])

            // Stateless: replies need rules of their own.
            web = Self.defaultLike(Self.web, stateful: false)
            web.rules = [Self.rule("ingress", 1), Self.rule("egress", 6, ports: 1...65535)]
            _ = try await firewall.apply(state())
            #expect(try await pings(g2, g1) == false, "stateless, no ICMP egress rule: g2's echo request does not leave")
            web.rules.append(Self.rule("egress", 1))
            _ = try await firewall.apply(state())
            #expect(try await pings(g2, g1), "stateless with ICMP both ways")

            // A rule the kernel refuses leaves the previous firewall in force.
            let before = try await Command.check("iptables-save", ["-t", "filter"], namespace: host)
            var refused = state()
            refused.groups[0].rules.append(FirewallRule(direction: "ingress", ipVersion: 4, protocolNumber: 6, portRangeMin: 70000, portRangeMax: 70000,
                                                        remoteIPPrefix: nil, remoteGroupID: nil, remoteAddressGroupID: nil))
            await #expect(throws: (any Error).self) { _ = try await firewall.apply(refused) }
            #expect(try await Self.petrelLines(Command.check("iptables-save", ["-t", "filter"], namespace: host)) == Self.petrelLines(before))
            #expect(try await pings(g2, g1))

            // A new driver (a restarted node) converges on what is there: nothing rewritten.
            let restarted = IptablesFirewall(namespace: host)
            let again = try await restarted.apply(state())
            #expect(again.chainsRewritten == 0 && again.setsChanged == 0, "a restart found the firewall as it should be: \(again)")
            // Ports gone: no Petrel chain or set left.
            _ = try await restarted.apply(FirewallState())
            #expect(try await Self.petrelLines(Command.check("iptables-save", [], namespace: host)).isEmpty)
            #expect(try await !Command.check("ipset", ["list", "-n"], namespace: host).contains("psg"))
        } cleanup: {
            for server in servers { server.signal(SIGKILL) }
            for namespace in namespaces.reversed() { try? namespace.delete() }
            try? FileManager.default.removeItem(atPath: work)
        }
    }

    static func petrelLines(_ dump: String) -> [String] {
        dump.split(separator: "\n").map(String.init).filter { $0.contains("petrel-sg") }
    }
}
