import Contracts
import Foundation
import IptablesDriver
import NetlinkDriver
import PetrelCore
import ProcessDriver

/// Security groups with iptables, ip6tables and ipset, for ports on Linux bridges (with
/// br_netfilter, bridged frames traverse FORWARD; `physdev` tells the tap).
///
/// Layout, per family (Neutron's iptables firewall, in fewer chains):
/// - `FORWARD -j petrel-sg-fwd`: each filtered port's egress chain (`--physdev-in tap…`),
///   which returns when the port may send; then each port's ingress chain
///   (`--physdev-out tap…`), which accepts or drops; then what a port sent and no ingress
///   chain judged (towards the network's own ports, another host) is accepted.
/// - `petrel-sg-o<port>`: DHCP and neighbour discovery, anti-spoofing (`petrel-sg-s<port>`:
///   only its MAC with its fixed IPs, allowed pairs and link-local address), no DHCP server
///   or router advertisement from a guest, conntrack (stateful groups), the egress rules, drop.
/// - `petrel-sg-i<port>`: conntrack, DHCP replies and neighbour discovery, a jump to the
///   ingress chain of each of its groups (`petrel-sg-gi<group>`, shared by the group's ports
///   on this host: accept on a match, return otherwise), drop.
/// - Remote groups and address groups are ipset sets (`psg4g…`, `psg4a…`), so a member
///   change touches a set, not the rules.
/// - raw `PREROUTING -j petrel-sg-zone`: one conntrack zone per network bridge, so
///   overlapping address spaces do not share connection state.
///
/// The actor remembers what it applied and rewrites only the chains that changed; the first
/// apply after start reads the kernel, so a restart replaces nothing that is still right and
/// opens no window.
public actor IptablesFirewall: FirewallDriver {
    public nonisolated let name = "iptables"
    static let prefix = "petrel-sg-"
    static let forward = "petrel-sg-fwd"
    static let zoneChain = "petrel-sg-zone"

    let ipv4: Iptables
    let ipv6: Iptables
    let ipsets: Ipsets

    /// The whole firewall as rendered: the four tables and the sets.
    struct Rendered: Equatable {
        var filter4 = OwnedRules()
        var filter6 = OwnedRules()
        var raw4 = OwnedRules()
        var raw6 = OwnedRules()
        var sets: [String: IPSet] = [:]
    }

    private var applied: Rendered?
    /// Conntrack zone by bridge, kept as the kernel's raw table holds them.
    private var zones: [String: Int] = [:]

    /// `namespace`: the network namespace whose firewall this is (nil: this process's).
    public init(namespace: NetworkNamespace? = nil) {
        ipv4 = Iptables(family: .ipv4, prefix: Self.prefix, namespace: namespace)
        ipv6 = Iptables(family: .ipv6, prefix: Self.prefix, namespace: namespace)
        ipsets = Ipsets(prefix: "psg", namespace: namespace)
    }

    public func apply(_ state: FirewallState) async throws -> FirewallReport {
        do {
            return try await applyOnce(state)
        } catch {
            // What we believed applied may be wrong (someone flushed a chain): read the kernel and try once more.
            applied = nil
            return try await applyOnce(state)
        }
    }

    /// Applies `state` rewriting every chain, whatever the kernel holds: a repair, and the
    /// reference the chain-level diff is measured against (petrel-bench-firewall).
    public func rebuild(_ state: FirewallState) async throws -> FirewallReport {
        applied = nil
        return try await applyOnce(state, rewritingEverything: true)
    }

    public func removeAll() async throws {
        let empty = Rendered()
        try await ipv4.apply(empty.filter4, table: "filter")
        try await ipv6.apply(empty.filter6, table: "filter")
        try await ipv4.apply(empty.raw4, table: "raw")
        try await ipv6.apply(empty.raw6, table: "raw")
        try await ipsets.destroy(Array(try await ipsets.read().keys))
        applied = empty
        zones = [:]
    }

    private func current() async throws -> Rendered {
        if let applied { return applied }
        let kernel = Rendered(filter4: try await ipv4.read(table: "filter"), filter6: try await ipv6.read(table: "filter"),
                              raw4: try await ipv4.read(table: "raw"), raw6: try await ipv6.read(table: "raw"),
                              sets: try await ipsets.read())
        zones = Self.zones(in: kernel.raw4)
        return kernel
    }

    private func applyOnce(_ state: FirewallState, rewritingEverything: Bool = false) async throws -> FirewallReport {
        var before = try await current()
        if rewritingEverything {
            // Every chain believed empty: each is declared (flushed) and refilled.
            for keyPath in [\Rendered.filter4, \Rendered.filter6, \Rendered.raw4, \Rendered.raw6] {
                before[keyPath: keyPath].chains = before[keyPath: keyPath].chains.mapValues { _ in [] }
            }
        }
        let desired = Self.render(state, zones: &zones)
        let changedMembers = desired.sets.reduce(0) { count, entry in
            count + entry.value.members.symmetricDifference(before.sets[entry.key]?.members ?? []).count
        }
        try await ipsets.update(to: desired.sets, from: before.sets)
        var done: [(Iptables, String, OwnedRules)] = []
        do {
            for (tables, table, want, had) in [(ipv4, "raw", desired.raw4, before.raw4), (ipv6, "raw", desired.raw6, before.raw6),
                                               (ipv4, "filter", desired.filter4, before.filter4),
                                               (ipv6, "filter", desired.filter6, before.filter6)] {
                try await tables.apply(want, over: had, table: table)
                done.append((tables, table, had))
            }
        } catch {
            // One table refused: the ones already changed go back to what they were.
            for (tables, table, had) in done.reversed() { try? await tables.apply(had, table: table) }
            throw error
        }
        applied = desired
        try await ipsets.destroy(before.sets.keys.filter { desired.sets[$0] == nil })
        let rewritten = [(desired.filter4, before.filter4), (desired.filter6, before.filter6), (desired.raw4, before.raw4), (desired.raw6, before.raw6)]
            .reduce(0) { count, pair in count + pair.0.chains.filter { pair.1.chains[$0.key] != $0.value }.count }
        return FirewallReport(ports: state.ports.count,
                              rules: [desired.filter4, desired.filter6].reduce(0) { $0 + $1.chains.values.reduce(0) { $0 + $1.count } },
                              chainsRewritten: rewritten, setsChanged: changedMembers)
    }

    // MARK: rendering (pure)

    /// The zones a raw table's rules give bridges (`-i brq… -j CT --zone N`).
    static func zones(in raw: OwnedRules) -> [String: Int] {
        var zones: [String: Int] = [:]
        for rule in raw.chains[zoneChain] ?? [] {
            let words = rule.split(separator: " ").map(String.init)
            func after(_ flag: String) -> String? { words.firstIndex(of: flag).flatMap { words.indices.contains($0 + 1) ? words[$0 + 1] : nil } }
            guard let bridge = after("-i"), let zone = after("--zone").flatMap({ Int($0) }) else { continue }
            zones[bridge] = zone
        }
        return zones
    }

    static func setName(_ kind: Character, _ id: String, version: Int) -> String { "psg\(version)\(kind)" + id.prefix(26) }

    static let protocolNames: [Int: String] = [1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 50: "esp", 51: "ah",
                                               58: "ipv6-icmp", 112: "vrrp", 132: "sctp", 136: "udplite"]
    static let portModules: Set<Int> = [6, 17, 33, 132]

    /// A rule's match as iptables-save prints it, without its target.
    static func match(_ rule: FirewallRule, direction: String) -> String {
        var parts: [String] = []
        if let prefix = rule.remoteIPPrefix, let network = IPNetwork(prefix, strict: false), network.prefixLength > 0 {
            parts.append("\(direction == "ingress" ? "-s" : "-d") \(network)")
        }
        if let number = rule.protocolNumber {
            let name = protocolNames[number] ?? String(number)
            parts.append("-p \(name)")
            if portModules.contains(number), let low = rule.portRangeMin {
                let high = rule.portRangeMax ?? low
                parts.append("-m \(name) --dport \(low == high ? "\(low)" : "\(low):\(high)")")
            } else if number == 1 || number == 58, let type = rule.portRangeMin {
                let module = number == 1 ? "-m icmp --icmp-type" : "-m icmp6 --icmpv6-type"
                parts.append("\(module) \(type)\(rule.portRangeMax.map { "/\($0)" } ?? "")")
            }
        }
        let side = direction == "ingress" ? "src" : "dst"
        if let group = rule.remoteGroupID {
            parts.append("-m set --match-set \(setName("g", group, version: rule.ipVersion)) \(side)")
        } else if let group = rule.remoteAddressGroupID {
            parts.append("-m set --match-set \(setName("a", group, version: rule.ipVersion)) \(side)")
        }
        return parts.joined(separator: " ")
    }

    static func physdev(_ side: String, _ tap: String) -> String { "-m physdev --physdev-\(side) \(tap) --physdev-is-bridged" }

    /// `fe80::` + the EUI-64 of a MAC.
    static func linkLocal(_ mac: String) -> String? {
        let bytes = mac.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        guard bytes.count == 6 else { return nil }
        let interface: [UInt8] = [bytes[0] ^ 0x02, bytes[1], bytes[2], 0xFF, 0xFE, bytes[3], bytes[4], bytes[5]]
        let value = interface.reduce(UInt128(0)) { $0 << 8 | UInt128($1) } | (UInt128(0xFE80) << 112)
        return IPAddress(version: 6, value: value).description
    }

    /// An address or network in the form iptables-save prints (`10.0.0.5/32`), if of `version`.
    static func source(_ text: String, version: Int) -> String? {
        if let address = IPAddress(text) { return address.version == version ? "\(address)/\(address.bits)" : nil }
        if let network = IPNetwork(text, strict: false) { return network.version == version ? network.description : nil }
        return nil
    }

    static func render(_ state: FirewallState, zones: inout [String: Int]) -> Rendered {
        var rendered = Rendered()
        let groups = Dictionary(state.groups.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        // Zones: one per bridge with a filtered port; known ones keep their number.
        let bridges = Set(state.ports.map { "brq" + $0.networkID.prefix(11) })
        zones = zones.filter { bridges.contains($0.key) }
        for bridge in bridges.sorted() where zones[bridge] == nil {
            let used = Set(zones.values)
            zones[bridge] = (1...65535).first { !used.contains($0) }!
        }
        let zoneRules = zones.sorted { $0.key < $1.key }.map { "-i \($0.key) -j CT --zone \($0.value)" }
        for version in [4, 6] {
            var chains: [String: [String]] = [:]
            var egressJumps: [String] = [], ingressJumps: [String] = [], accepts: [String] = [], openIngress: [String] = []
            var egressLines: [String: (stateful: Bool, lines: [String])] = [:]
            for port in state.ports.sorted(by: { $0.id < $1.id }) {
                let tap = port.tapName
                accepts.append("\(physdev("in", tap)) -j ACCEPT")
                guard port.portSecurityEnabled else {
                    openIngress.append("\(physdev("out", tap)) -j ACCEPT")
                    continue
                }
                let key = String(port.id.prefix(11))
                let ingress = prefix + "i" + key, egress = prefix + "o" + key, spoof = prefix + "s" + key
                egressJumps.append("\(physdev("in", tap)) -j \(egress)")
                ingressJumps.append("\(physdev("out", tap)) -j \(ingress)")
                // Ports with the same groups share their egress lines, rendered once (ingress
                // rules live in the groups' own chains below).
                let groupKey = port.securityGroups.joined(separator: ",")
                let (stateful, egressRules) = egressLines[groupKey] ?? {
                    let portGroups = port.securityGroups.compactMap { groups[$0] }
                    var lines: [String] = [], seen = Set<String>()
                    for group in portGroups {
                        for rule in group.rules where rule.ipVersion == version && rule.direction == "egress" {
                            let line = match(rule, direction: "egress")
                            if seen.insert(line).inserted { lines.append(line) }
                        }
                    }
                    let rendered = (portGroups.isEmpty || portGroups.contains(where: \.stateful), lines)
                    egressLines[groupKey] = rendered
                    return rendered
                }()
                // Anti-spoofing: its MAC with its addresses, its pairs, its link-local address.
                var sources: [(String, String)] = port.fixedIPs.compactMap { ip in source(ip, version: version).map { ($0, port.macAddress) } }
                sources += port.allowedAddressPairs.compactMap { pair in source(pair.ipAddress, version: version).map { ($0, pair.macAddress) } }
                if version == 6 {
                    for mac in Set([port.macAddress] + port.allowedAddressPairs.map(\.macAddress)).sorted() {
                        if let local = linkLocal(mac) { sources.append(("\(local)/128", mac)) }
                    }
                }
                var seen = Set<String>()
                chains[spoof] = sources.compactMap { address, mac in
                    let rule = "-s \(address) -m mac --mac-source \(mac.lowercased()) -j RETURN"
                    return seen.insert(rule).inserted ? rule : nil
                } + ["-j DROP"]
                let tracked = stateful ? ["-m state --state RELATED,ESTABLISHED", "-m state --state INVALID"] : []
                var out: [String] = []
                if version == 4 {
                    out.append("-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j RETURN")
                    out.append("-j \(spoof)")
                    out.append("-p udp -m udp --sport 68 --dport 67 -j RETURN")
                    out.append("-p udp -m udp --sport 67 --dport 68 -j DROP")
                } else {
                    for type in [131, 135, 143] { out.append("-s ::/128 -d ff02::/16 -p ipv6-icmp -m icmp6 --icmpv6-type \(type) -j RETURN") }
                    out.append("-j \(spoof)")
                    out.append("-p ipv6-icmp -m icmp6 --icmpv6-type 134 -j DROP")
                    for type in [130, 131, 132, 133, 135, 136, 143] { out.append("-p ipv6-icmp -m icmp6 --icmpv6-type \(type) -j RETURN") }
                    out.append("-p udp -m udp --sport 546 --dport 547 -j RETURN")
                    out.append("-p udp -m udp --sport 547 --dport 546 -j DROP")
                }
                if stateful { out += ["\(tracked[0]) -j RETURN", "\(tracked[1]) -j DROP"] }
                out += egressRules.map { $0.isEmpty ? "-j RETURN" : "\($0) -j RETURN" }
                out.append("-j DROP")
                chains[egress] = out
                var into: [String] = stateful ? ["\(tracked[0]) -j ACCEPT", "\(tracked[1]) -j DROP"] : []
                if version == 4 {
                    into.append("-p udp -m udp --sport 67 --dport 68 -j ACCEPT")
                } else {
                    for type in [130, 131, 132, 134, 135, 136, 143] { into.append("-p ipv6-icmp -m icmp6 --icmpv6-type \(type) -j ACCEPT") }
                    into.append("-p udp -m udp --sport 547 --dport 546 -j ACCEPT")
                }
                // Ingress rules live in one chain per group, shared by the group's ports here: a
                // rule added to a group used by 200 ports rewrites one chain, not 200.
                for id in port.securityGroups where groups[id] != nil {
                    let chain = prefix + "gi" + id.prefix(11)
                    into.append("-j \(chain)")
                    if chains[chain] == nil {
                        chains[chain] = groups[id]!.rules.filter { $0.ipVersion == version && $0.direction == "ingress" }
                            .map { rule in let line = match(rule, direction: "ingress"); return line.isEmpty ? "-j ACCEPT" : "\(line) -j ACCEPT" }
                    }
                }
                into.append("-j DROP")
                chains[ingress] = into
            }
            guard !state.ports.isEmpty else { continue }
            chains[forward] = egressJumps + ingressJumps + openIngress + accepts
            let filter = OwnedRules(chains: chains, jumps: [Jump(from: "FORWARD", to: forward)])
            let raw = OwnedRules(chains: [zoneChain: zoneRules], jumps: [Jump(from: "PREROUTING", to: zoneChain)])
            if version == 4 { rendered.filter4 = filter; rendered.raw4 = raw } else { rendered.filter6 = filter; rendered.raw6 = raw }
        }
        // The sets every rule names, filled with their members of the set's family.
        for group in state.groups {
            for rule in group.rules {
                if let remote = rule.remoteGroupID {
                    let members = (state.groupMembers[remote] ?? []).compactMap { source($0, version: rule.ipVersion) }
                    rendered.sets[setName("g", remote, version: rule.ipVersion)] = IPSet(family: rule.ipVersion == 4 ? .inet : .inet6, members: Set(members))
                }
                if let remote = rule.remoteAddressGroupID {
                    let members = (state.addressGroups[remote] ?? []).compactMap { source($0, version: rule.ipVersion) }
                    rendered.sets[setName("a", remote, version: rule.ipVersion)] = IPSet(family: rule.ipVersion == 4 ? .inet : .inet6, members: Set(members))
                }
            }
        }
        return rendered
    }
}
