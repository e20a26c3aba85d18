import Contracts
import Foundation
import Hosts
import Logging
@testable import Networking
import PetrelCore
import Store
import TestSupport
import Testing

/// Security groups on a real database: one default group per project (also with two
/// controllers at once), Neutron's refusals (each changes nothing), and what a node learns
/// of its firewall.
@Suite struct SecurityGroupServiceTests {
    func withServices(_ backend: TestDatabase = .sqlite, quotas: [String: Int] = [:],
                      _ body: @Sendable ([NetworkService]) async throws -> Void) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let first = try Database(url, logger: Logger(label: "sg-test"), connectionWait: .seconds(120), busyBudget: .seconds(300))
        let second = try Database(url, logger: Logger(label: "sg-test-2"), connectionWait: .seconds(120), busyBudget: .seconds(300))
        try await withCleanup {
            try await Migrator().migrate(first)
            try await body([first, second].map {
                NetworkService(database: $0, settings: .defaults, quotaDefaults: quotas, hosts: HostInventory(database: $0, serviceDownTime: 3600))
            })
        } cleanup: {
            await first.shutdown()
            await second.shutdown()
            await drop()
        }
    }

    static let member = Viewer(projectID: "p", isAdmin: false)
    static let admin = Viewer(projectID: nil, isAdmin: true)

    @Test(arguments: TestDatabase.allCases)
    func oneDefaultGroupPerProjectEvenFromTwoControllers(backend: TestDatabase) async throws {
        try await withServices(backend) { services in
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<8 { group.addTask { try await services[index % 2].defaultSecurityGroup(project: "p") } }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(ids.count == 1)
            let groups = try await services[0].securityGroups(visibleTo: Self.member)
            #expect(groups.count == 1 && groups[0].name == "default")
            let rules = groups[0].rules
            #expect(rules.count == 4 && rules.allSatisfy(\.belongsToDefaultGroup))
            #expect(Set(rules.map { "\($0.direction) \($0.ethertype) \($0.remoteGroupID == groups[0].id)" })
                    == ["egress IPv4 false", "egress IPv6 false", "ingress IPv4 true", "ingress IPv6 true"])
            // A new group lets everything out and nothing in.
            let web = try await services[1].createSecurityGroup(projectID: "p", name: "web", description: "", stateful: true, tags: [])
            #expect(web.rules.map(\.direction) == ["egress", "egress"])
        }
    }

    @Test func rulesAreCheckedAsNeutronDoes() async throws {
        try await withServices { services in
            let service = services[0]
            let group = try await service.createSecurityGroup(projectID: "p", name: "g", description: "", stateful: true, tags: [])
            func rule(_ change: (inout NetworkService.RuleCreate) -> Void) -> NetworkService.RuleCreate {
                var request = NetworkService.RuleCreate(securityGroupID: group.id, projectID: "p")
                request.direction = "ingress"
                change(&request)
                return request
            }
            let refusals: [(NetworkService.RuleCreate, String)] = [
                (rule { $0.direction = "inbound" }, "InvalidInput"),
                (rule { $0.ethertype = "IPv5" }, "InvalidInput"),
                (rule { $0.protocol = "nonsense" }, "SecurityGroupRuleInvalidProtocol"),
                (rule { $0.protocol = "256" }, "SecurityGroupRuleInvalidProtocol"),
                (rule { $0.portRangeMin = 80 }, "SecurityGroupProtocolRequiredWithPorts"),
                (rule { $0.protocol = "tcp"; $0.portRangeMin = 90; $0.portRangeMax = 80 }, "SecurityGroupInvalidPortRange"),
                (rule { $0.protocol = "udp"; $0.portRangeMin = 0; $0.portRangeMax = 10 }, "SecurityGroupInvalidPortValue"),
                (rule { $0.protocol = "icmp"; $0.portRangeMax = 0 }, "SecurityGroupMissingIcmpType"),
                (rule { $0.protocol = "icmp"; $0.portRangeMin = 256 }, "SecurityGroupInvalidIcmpValue"),
                (rule { $0.protocol = "gre"; $0.portRangeMin = 1 }, "SecurityGroupInvalidProtocolForPort"),
                (rule { $0.protocol = "icmp"; $0.ethertype = "IPv6" }, "SecurityGroupEthertypeConflictWithProtocol"),
                (rule { $0.remoteIPPrefix = "10.0.0.0/8"; $0.remoteGroupID = group.id }, "SecurityGroupMultipleRemoteParameters"),
                (rule { $0.remoteIPPrefix = "2001:db8::/64" }, "SecurityGroupRuleParameterConflict"),
                (rule { $0.remoteIPPrefix = "10.0.0.0/33" }, "InvalidInput"),
                (rule { $0.remoteGroupID = "no-such-group" }, "SecurityGroupNotFound"),
                (rule { $0.remoteAddressGroupID = "no-such-group" }, "AddressGroupNotFound"),
            ]
            for (request, type) in refusals {
                await #expect { _ = try await service.createSecurityGroupRules([request], byAdmin: false) } throws: { error in
                    (error as? NetworkingFailure)?.type == type
                }
            }
            // Equal meaning is a duplicate: tcp = 6, 0.0.0.0/0 = anywhere, 10.0.0.5/24 = 10.0.0.0/24.
            _ = try await service.createSecurityGroupRules([rule { $0.protocol = "tcp"; $0.portRangeMin = 22; $0.portRangeMax = 22 },
                                                            rule { $0.protocol = "udp"; $0.remoteIPPrefix = "10.0.0.5/24" }], byAdmin: false)
            for duplicate in [rule { $0.protocol = "6"; $0.portRangeMin = 22; $0.portRangeMax = 22 },
                              rule { $0.protocol = "17"; $0.remoteIPPrefix = "10.0.0.0/24" },
                              rule { $0.direction = "egress"; $0.remoteIPPrefix = "0.0.0.0/0" }] {
                await #expect { _ = try await service.createSecurityGroupRules([duplicate], byAdmin: false) } throws: { error in
                    (error as? NetworkingFailure)?.status == 409 && (error as? NetworkingFailure)?.type == "SecurityGroupRuleExists"
                }
            }
            // A bulk request with one bad rule writes none.
            await #expect(throws: NetworkingFailure.self) {
                _ = try await service.createSecurityGroupRules([rule { $0.protocol = "sctp" }, rule { $0.protocol = "bad" }], byAdmin: false)
            }
            // Another project's group is not found.
            var foreign = rule { $0.protocol = "ah" }
            foreign.projectID = "q"
            await #expect(throws: NetworkingFailure.securityGroupNotFound(group.id)) {
                _ = try await service.createSecurityGroupRules([foreign], byAdmin: false)
            }
            let rules = try await service.securityGroup(group.id, visibleTo: Self.member).rules
            #expect(rules.count == 4, "two egress rules and the two added: \(rules.map(\.protocol))")
            #expect(rules.first { $0.protocol == "udp" }?.normalizedCIDR == "10.0.0.0/24")
            #expect(rules.first { $0.protocol == "tcp" }.map { ($0.portRangeMin, $0.portRangeMax) } ?? (0, 0) == (22, 22))
        }
    }

    @Test func groupsInUseAndDefaultGroupsAreProtected() async throws {
        try await withServices { services in
            let service = services[0]
            let network = try await service.createNetwork(NetworkService.NetworkCreate(projectID: "p"))
            let used = try await service.createSecurityGroup(projectID: "p", name: "used", description: "", stateful: true, tags: [])
            let referred = try await service.createSecurityGroup(projectID: "p", name: "referred", description: "", stateful: true, tags: [])
            var referring = NetworkService.RuleCreate(securityGroupID: used.id, projectID: "p")
            referring.direction = "ingress"
            referring.remoteGroupID = referred.id
            _ = try await service.createSecurityGroupRules([referring], byAdmin: false)
            var create = NetworkService.PortCreate(networkID: network.id, projectID: "p")
            create.securityGroups = [used.id]
            let port = try await service.createPort(create)
            #expect(port.securityGroups == [used.id])
            let plain = try await service.createPort(NetworkService.PortCreate(networkID: network.id, projectID: "p"))
            let defaultID = try await service.defaultSecurityGroup(project: "p")
            #expect(plain.securityGroups == [defaultID], "a port without groups named is in its project's default group")
            var open = NetworkService.PortCreate(networkID: network.id, projectID: "p")
            open.portSecurityEnabled = false
            #expect(try await service.createPort(open).securityGroups == [], "without port security, no group")
            var elsewhere = NetworkService.PortCreate(networkID: network.id, projectID: "p")
            elsewhere.securityGroups = [try await service.defaultSecurityGroup(project: "q")]
            await #expect(throws: NetworkingFailure.self) { _ = try await service.createPort(elsewhere) }

            await #expect(throws: NetworkingFailure(409, "SecurityGroupInUse", "Security Group \(used.id) in use.")) {
                try await service.deleteSecurityGroup(used.id, byAdmin: true)
            }
            await #expect { try await service.deleteSecurityGroup(referred.id, byAdmin: true) } throws: {
                ($0 as? NetworkingFailure)?.type == "SecurityGroupInUse"
            }
            await #expect { try await service.deleteSecurityGroup(defaultID, byAdmin: false) } throws: {
                ($0 as? NetworkingFailure)?.type == "SecurityGroupCannotRemoveDefault"
            }
            await #expect { _ = try await service.updateSecurityGroup(defaultID, name: "renamed", description: nil, stateful: nil) } throws: {
                ($0 as? NetworkingFailure)?.type == "SecurityGroupCannotUpdateDefault"
            }
            await #expect { _ = try await service.createSecurityGroup(projectID: "p", name: "default", description: "", stateful: true, tags: []) } throws: {
                ($0 as? NetworkingFailure)?.type == "SecurityGroupDefaultAlreadyExists"
            }
            var update = NetworkService.PortUpdate()
            update.securityGroups = []
            _ = try await service.updatePort(port.id, update)
            try await service.deleteSecurityGroup(used.id, byAdmin: false)
            try await service.deleteSecurityGroup(referred.id, byAdmin: false)
            #expect(try await service.securityGroups(visibleTo: Self.member).map(\.name) == ["default"])
        }
    }

    @Test func aNodeLearnsItsPortsGroupsAndTheirRemoteMembers() async throws {
        try await withServices { services in
            let service = services[0]
            let network = try await service.createNetwork(NetworkService.NetworkCreate(projectID: "p"))
            _ = try await service.createSubnet(NetworkService.SubnetCreate(networkID: network.id, projectID: "p", ipVersion: 4, cidr: "198.18.90.0/24"))
            let web = try await service.createSecurityGroup(projectID: "p", name: "web", description: "", stateful: false, tags: [])
            let db = try await service.createSecurityGroup(projectID: "p", name: "db", description: "", stateful: true, tags: [])
            let office = try await service.createAddressGroup(projectID: "p", name: "office", description: "", addresses: ["198.18.91.7", "198.18.92.0/24"])
            var fromDB = NetworkService.RuleCreate(securityGroupID: web.id, projectID: "p")
            fromDB.direction = "ingress"
            fromDB.protocol = "tcp"
            fromDB.portRangeMin = 443
            fromDB.remoteGroupID = db.id
            var fromOffice = NetworkService.RuleCreate(securityGroupID: web.id, projectID: "p")
            fromOffice.direction = "ingress"
            fromOffice.remoteAddressGroupID = office.id
            _ = try await service.createSecurityGroupRules([fromDB, fromOffice], byAdmin: false)
            func port(_ host: String, _ groups: [String], pairs: [AddressPair] = []) async throws -> Networking.Port {
                var create = NetworkService.PortCreate(networkID: network.id, projectID: "p")
                create.host = host
                create.securityGroups = groups
                create.allowedAddressPairs = pairs
                return try await service.createPort(create)
            }
            let local = try await port("h1", [web.id])
            let remote = try await port("h2", [db.id], pairs: [AddressPair(ipAddress: "198.18.93.0/28", macAddress: "")])
            let state = try await service.hostFirewall(host: "h1")
            #expect(state.ports.map(\.id) == [local.id])
            #expect(state.ports[0].fixedIPs == local.fixedIPs.map(\.ipAddress))
            #expect(state.groups.map(\.id) == [web.id] && state.groups[0].stateful == false)
            let rule = try #require(state.groups[0].rules.first { $0.remoteGroupID == db.id })
            #expect(rule.protocolNumber == 6 && rule.portRangeMin == 443 && rule.portRangeMax == 65535)
            #expect(state.groupMembers[db.id] == (remote.fixedIPs.map(\.ipAddress) + ["198.18.93.0/28"]).sorted())
            #expect(state.addressGroups[office.id] == ["198.18.91.7/32", "198.18.92.0/24"])
            #expect(try await service.hostFirewall(host: "h2").groups.map(\.id) == [db.id])
            _ = try await service.updateAddressGroup(office.id, adding: ["198.18.94.1"], removing: ["198.18.91.7/32"])
            #expect(try await service.hostFirewall(host: "h1").addressGroups[office.id] == ["198.18.92.0/24", "198.18.94.1/32"])
            await #expect { _ = try await service.updateAddressGroup(office.id, removing: ["198.18.99.9"]) } throws: {
                ($0 as? NetworkingFailure)?.type == "AddressesNotFound"
            }
        }
    }

    @Test func quotasCountGroupsAndRules() async throws {
        try await withServices(quotas: ["security_group": 2, "security_group_rule": 7]) { services in
            let service = services[0]
            _ = try await service.createSecurityGroup(projectID: "p", name: "one", description: "", stateful: true, tags: [])
            await #expect(throws: NetworkingFailure.overQuota("security_group")) {
                _ = try await service.createSecurityGroup(projectID: "p", name: "two", description: "", stateful: true, tags: [])
            }
            // The default group's four rules and "one"'s two: one more fits, then no more.
            let group = try await service.securityGroups(visibleTo: Self.member).first { $0.name == "one" }!
            var rule = NetworkService.RuleCreate(securityGroupID: group.id, projectID: "p")
            rule.direction = "ingress"
            _ = try await service.createSecurityGroupRules([rule], byAdmin: false)
            rule.protocol = "tcp"
            await #expect(throws: NetworkingFailure.overQuota("security_group_rule")) {
                _ = try await service.createSecurityGroupRules([rule], byAdmin: false)
            }
            #expect(try await service.quotaUsage(project: "p")["security_group_rule"] == 7)
        }
    }
}
