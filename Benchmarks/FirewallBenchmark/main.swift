// Firewall benchmark: the node's iptables+ipset security groups against the real kernel, in a
// network namespace of its own (nothing on the host is touched). Figures for the cases the
// security-group issue names, each the median of --runs applies:
//   - 200 ports × 50 rules (10,000 rules, both families' chains) applied from empty, one transaction per table;
//   - one rule added to the group all 200 ports use;
//   - one port joining a remote group of 200 members (one ipset member);
//   - a node restart: a new driver reads the kernel and finds nothing to change;
//   - the same one-rule change applied as a full rebuild (every chain rewritten), the reference
//     the chain-level diff is measured against.
// Neutron's published figures for its iptables driver are printed beside them.
//
// With --distinct 1 every port has a group of its own (200 groups × 50 rules: nothing shared,
// 10,000 rules written out), the worst case for the per-group chains.
//
//   swift run -c release petrel-bench-firewall [--ports 200] [--rules 50] [--runs 5] [--distinct 0|1]
import Contracts
import Foundation
import IptablesDriver
import NetlinkDriver
import NodeNetwork

func option(_ name: String, _ fallback: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let value = Int(arguments[index + 1]) else { return fallback }
    return value
}

let portCount = option("--ports", 200), ruleCount = option("--rules", 50), runs = option("--runs", 5), distinct = option("--distinct", 0) == 1
let network = "be000000-0000-4000-8000-000000000001"
let group = "be000000-0000-4000-8000-0000000000a1", remote = "bf000000-0000-4000-8000-0000000000b2"

func rule(_ index: Int) -> FirewallRule {
    FirewallRule(direction: index % 5 == 0 ? "egress" : "ingress", ipVersion: 4, protocolNumber: index % 2 == 0 ? 6 : 17,
                 portRangeMin: 1000 + index, portRangeMax: 1000 + index, remoteIPPrefix: "198.\(18 + index % 2).\(index % 250).0/24",
                 remoteGroupID: nil, remoteAddressGroupID: nil)
}

func state(extraRule: Bool = false, extraMember: Bool = false) -> FirewallState {
    var rules = (0..<(ruleCount - 1)).map(rule)
    rules.append(FirewallRule(direction: "ingress", ipVersion: 4, protocolNumber: nil, portRangeMin: nil, portRangeMax: nil,
                              remoteIPPrefix: nil, remoteGroupID: remote, remoteAddressGroupID: nil))
    if extraRule { rules.append(rule(ruleCount + 7)) }
    func groupID(_ index: Int) -> String { distinct ? String(format: "%08x-2222-4000-8000-%012x", index, index) : group }
    let ports = (0..<portCount).map { index in
        FirewallPort(id: String(format: "%08x-1111-4000-8000-%012x", index, index), networkID: network,
                     macAddress: String(format: "fa:16:3e:%02x:%02x:%02x", index >> 16 & 0xff, index >> 8 & 0xff, index & 0xff),
                     fixedIPs: ["198.18.\(index / 250).\(index % 250 + 2)"], allowedAddressPairs: [], portSecurityEnabled: true,
                     securityGroups: [groupID(index)])
    }
    var members = (0..<portCount).map { "198.19.\($0 / 250).\($0 % 250 + 2)" }
    if extraMember { members.append("198.19.200.1") }
    let groups = Set(ports.map { $0.securityGroups[0] }).sorted().map { FirewallGroup(id: $0, stateful: true, rules: rules) }
    return FirewallState(ports: ports, groups: groups, groupMembers: [remote: members])
}

func timed(_ body: () async throws -> FirewallReport) async throws -> (Duration, FirewallReport) {
    let start = ContinuousClock.now
    let report = try await body()
    return (ContinuousClock.now - start, report)
}

func median(_ values: [Duration]) -> Duration { values.sorted()[values.count / 2] }
func ms(_ duration: Duration) -> String { String(format: "%8.1f ms", Double(duration.components.attoseconds) / 1e15 + Double(duration.components.seconds) * 1000) }

let namespace = try NetworkNamespace.create("petrel-bench-fw-\(getpid())")
defer { try? namespace.delete() }

var fromEmpty: [Duration] = [], oneRule: [Duration] = [], oneMember: [Duration] = [], restart: [Duration] = [], rebuild: [Duration] = []
var size = FirewallReport(ports: 0, rules: 0, chainsRewritten: 0, setsChanged: 0)
var ruleReport = size, memberReport = size
for _ in 0..<runs {
    let firewall = IptablesFirewall(namespace: namespace)
    try await firewall.removeAll()
    let (empty, report) = try await timed { try await firewall.apply(state()) }
    fromEmpty.append(empty)
    size = report
    let (added, addedReport) = try await timed { try await firewall.apply(state(extraRule: true)) }
    oneRule.append(added)
    ruleReport = addedReport
    let (joined, joinedReport) = try await timed { try await firewall.apply(state(extraRule: true, extraMember: true)) }
    oneMember.append(joined)
    memberReport = joinedReport
    let (restarted, _) = try await timed { try await IptablesFirewall(namespace: namespace).apply(state(extraRule: true, extraMember: true)) }
    restart.append(restarted)
    // The reference: the same one-rule change as a full rebuild of every chain.
    let reference = IptablesFirewall(namespace: namespace)
    let (full, _) = try await timed { try await reference.rebuild(state(extraMember: true)) }
    rebuild.append(full)
}
try await IptablesFirewall(namespace: namespace).removeAll()

print("firewall: \(portCount) ports × \(ruleCount) rules, \(distinct ? "a group per port" : "one group for all"), IPv4 and IPv6 chains, median of \(runs) runs")
print("  rules in Petrel's chains                 \(size.rules)")
print("  applied from empty                       \(ms(median(fromEmpty)))   (Neutron, 200 VMs × 422 rules at agent start: 12,800 ms)")
print("  one rule added to \(distinct ? "every port's group   " : "the group of all ports") \(ms(median(oneRule)))   (\(ruleReport.chainsRewritten) chains rewritten)")
print("  the same change as a full rebuild        \(ms(median(rebuild)))   (diff / rebuild = \(String(format: "%.2f", Double(median(oneRule).components.attoseconds / 1_000_000_000 + median(oneRule).components.seconds * 1_000_000_000) / Double(median(rebuild).components.attoseconds / 1_000_000_000 + median(rebuild).components.seconds * 1_000_000_000))))")
print("  one port joins a remote group of \(portCount)    \(ms(median(oneMember)))   (\(memberReport.setsChanged) set member, \(memberReport.chainsRewritten) chains; Neutron adding one VM: 33,000 ms)")
print("  node restart: read the kernel, diff      \(ms(median(restart)))   (nothing rewritten)")
