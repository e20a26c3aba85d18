import Contracts
import Foundation
import PetrelCore

/// What the nodes' firewalls learn from the controller: for one host, the ports it filters,
/// their groups' rules, and the current members of every group or address group those rules
/// name as their remote end.
extension NetworkService {
    /// Ports whose traffic a node filters: a guest's (or any user's) port, not the network's own
    /// (DHCP, router interfaces), which live in namespaces the node made.
    static func filtered(_ port: Port) -> Bool { !port.deviceOwner.hasPrefix("network:") }

    public func hostFirewall(host: String) async throws -> FirewallState {
        let admin = Viewer(projectID: nil, isAdmin: true)
        let local = try await ports(visibleTo: admin, host: host).filter(Self.filtered)
        let groups = try await securityGroups(visibleTo: admin, ids: Array(Set(local.flatMap(\.securityGroups))).sorted())
        let remoteGroups = Set(groups.flatMap { $0.rules.compactMap(\.remoteGroupID) })
        let remoteAddressGroups = Set(groups.flatMap { $0.rules.compactMap(\.remoteAddressGroupID) })
        var members: [String: [String]] = [:]
        if !remoteGroups.isEmpty {
            for port in try await ports(visibleTo: admin) where port.portSecurityEnabled {
                let addresses = port.fixedIPs.map(\.ipAddress) + port.allowedAddressPairs.map(\.ipAddress)
                for group in port.securityGroups where remoteGroups.contains(group) { members[group, default: []] += addresses }
            }
        }
        var addressGroups: [String: [String]] = [:]
        if !remoteAddressGroups.isEmpty {
            for group in try await self.addressGroups(visibleTo: admin, ids: remoteAddressGroups.sorted()) {
                addressGroups[group.id] = group.addresses
            }
        }
        return FirewallState(
            ports: local.map { port in
                FirewallPort(id: port.id, networkID: port.networkID, macAddress: port.macAddress, fixedIPs: port.fixedIPs.map(\.ipAddress),
                             allowedAddressPairs: port.allowedAddressPairs.map {
                                 FirewallPort.AllowedPair(ipAddress: $0.ipAddress, macAddress: $0.macAddress.isEmpty ? port.macAddress : $0.macAddress)
                             },
                             portSecurityEnabled: port.portSecurityEnabled, securityGroups: port.securityGroups)
            },
            groups: groups.map { group in
                FirewallGroup(id: group.id, stateful: group.stateful, rules: group.rules.map { rule in
                    FirewallRule(direction: rule.direction, ipVersion: rule.ethertype == "IPv6" ? 6 : 4, protocolNumber: Self.protocolNumber(rule.protocol),
                                 portRangeMin: rule.portRangeMin, portRangeMax: rule.portRangeMax, remoteIPPrefix: rule.normalizedCIDR,
                                 remoteGroupID: rule.remoteGroupID, remoteAddressGroupID: rule.remoteAddressGroupID)
                })
            },
            groupMembers: members.mapValues { Array(Set($0)).sorted() }, addressGroups: addressGroups)
    }
}
