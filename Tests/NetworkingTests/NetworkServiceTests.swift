import Foundation
import Hosts
import Logging
@testable import Networking
import PetrelCore
import Store
import TestSupport
import Testing

/// Neutron's core on a real database (SQLite and PostgreSQL): segments and addresses are
/// never given twice, also by two controllers at once; refusals change nothing.
@Suite struct NetworkServiceTests {
    func withService(_ backend: TestDatabase, settings: NetworkingSettings = .defaults, quotas: [String: Int] = [:],
                     _ body: @Sendable ([NetworkService]) async throws -> Void) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let first = try Database(url, logger: Logger(label: "net-test"), connectionWait: .seconds(120), busyBudget: .seconds(300))
        let second = try Database(url, logger: Logger(label: "net-test-2"), connectionWait: .seconds(120), busyBudget: .seconds(300))
        try await withCleanup {
            try await Migrator().migrate(first)
            let services = [first, second].map {
                NetworkService(database: $0, settings: settings, quotaDefaults: quotas, hosts: HostInventory(database: $0, serviceDownTime: 3600))
            }
            try await body(services)
        } cleanup: {
            await first.shutdown()
            await second.shutdown()
            await drop()
        }
    }

    static let admin = Viewer(projectID: nil, isAdmin: true)

    @Test func addressesAndNetworks() throws {
        #expect(IPAddress("198.18.0.1")?.description == "198.18.0.1")
        #expect(IPAddress("2001:0db8:0000::0001")?.description == "2001:db8::1")
        #expect(IPAddress("10.1") == nil)
        #expect(IPNetwork("198.18.0.1/24") == nil)
        #expect(IPNetwork("198.18.0.1/24", strict: false)?.description == "198.18.0.0/24")
        let network = try #require(IPNetwork("198.18.4.0/22"))
        #expect(network.last.description == "198.18.7.255")
        #expect(network.netmask.description == "255.255.252.0")
        #expect(network.overlaps(try #require(IPNetwork("198.18.6.0/24"))))
        #expect(!network.overlaps(try #require(IPNetwork("198.18.8.0/24"))))
        #expect(IPNetwork("fd00:1::/64")?.size == UInt128(1) << 64)
    }

    @Test(arguments: TestDatabase.allCases)
    func segmentsAreNeverGivenTwice(backend: TestDatabase) async throws {
        var settings = NetworkingSettings.defaults
        settings.vniRanges = [5...14]
        try await withService(backend, settings: settings) { services in
            // Twelve creations from two controllers at once for ten VNIs: ten land, each its own.
            let results = await withTaskGroup(of: Result<Network, any Error>.self) { group in
                for index in 0..<12 {
                    group.addTask {
                        var request = NetworkService.NetworkCreate(projectID: "p")
                        request.name = "n\(index)"
                        do { return .success(try await services[index % 2].createNetwork(request)) } catch { return .failure(error) }
                    }
                }
                var all: [Result<Network, any Error>] = []
                for await result in group { all.append(result) }
                return all
            }
            let made = results.compactMap { try? $0.get() }
            #expect(made.count == 10)
            #expect(Set(made.compactMap(\.segmentationID)) == Set(5...14))
            #expect(made.allSatisfy { $0.networkType == "vxlan" && $0.mtu == 1450 })
            for case .failure(let error) in results {
                #expect((error as? NetworkingFailure)?.type == "NoNetworkAvailable")
            }
            // A provider VXLAN network may take a VNI outside the ranges, but not one in use.
            var provider = NetworkService.NetworkCreate(projectID: "admin")
            provider.networkType = "vxlan"
            provider.segmentationID = 7
            await #expect(throws: NetworkingFailure(409, "TunnelIdInUse", "Unable to create the network. The tunnel ID 7 is in use.")) {
                try await services[0].createNetwork(provider)
            }
            var flat = NetworkService.NetworkCreate(projectID: "admin")
            flat.networkType = "flat"
            flat.physicalNetwork = "public"
            let public1 = try await services[0].createNetwork(flat)
            #expect(public1.mtu == 1500 && public1.segmentationID == nil)
            await #expect(throws: NetworkingFailure.self) { try await services[1].createNetwork(flat) }
            // Deleting a network frees its segment.
            _ = try await services[0].deleteNetwork(made[0].id)
            var again = NetworkService.NetworkCreate(projectID: "p")
            again.name = "again"
            #expect(try await services[1].createNetwork(again).segmentationID == made[0].segmentationID)
            #expect(try await services[0].networks(visibleTo: Self.admin).count == 11)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func addressesAreNeverGivenTwice(backend: TestDatabase) async throws {
        try await withService(backend) { services in
            let network = try await services[0].createNetwork(NetworkService.NetworkCreate(projectID: "p"))
            var create = NetworkService.SubnetCreate(networkID: network.id, projectID: "p", ipVersion: 4, cidr: "198.18.10.0/26")
            create.allocationPools = [AllocationPool(start: "198.18.10.2", end: "198.18.10.51")]
            let subnet = try await services[0].createSubnet(create)
            #expect(subnet.gatewayIP == "198.18.10.1")
            // 50 concurrent port creations by two controllers fill the 50-address pool exactly.
            let ports = try await withThrowingTaskGroup(of: Networking.Port.self) { group in
                for index in 0..<50 {
                    group.addTask { try await services[index % 2].createPort(NetworkService.PortCreate(networkID: network.id, projectID: "p")) }
                }
                var all: [Networking.Port] = []
                for try await port in group { all.append(port) }
                return all
            }
            let addresses = ports.flatMap(\.fixedIPs).map(\.ipAddress)
            #expect(addresses.count == 50 && Set(addresses).count == 50)
            #expect(!addresses.contains("198.18.10.1"))
            #expect(Set(ports.map(\.macAddress)).count == 50 && ports.allSatisfy { $0.macAddress.hasPrefix("fa:16:3e:") })
            // The 51st: a clear refusal, and no half-made port left behind.
            await #expect(throws: NetworkingFailure(409, "IpAddressGenerationFailure", "No more IP addresses available on network \(network.id).")) {
                try await services[1].createPort(NetworkService.PortCreate(networkID: network.id, projectID: "p"))
            }
            #expect(try await services[0].ports(visibleTo: Self.admin).count == 50)
            // A held address cannot be asked for; a released one can.
            var wanted = NetworkService.PortCreate(networkID: network.id, projectID: "p")
            wanted.fixedIPs = [.init(ipAddress: addresses[0])]
            await #expect(throws: NetworkingFailure(409, "IpAddressAlreadyAllocated", "IP address \(addresses[0]) already allocated in subnet \(subnet.id)")) {
                try await services[0].createPort(wanted)
            }
            let holder = try #require(ports.first { $0.fixedIPs.first?.ipAddress == addresses[0] })
            _ = try await services[1].deletePort(holder.id)
            #expect(try await services[0].createPort(wanted).fixedIPs == [FixedIP(subnetID: subnet.id, ipAddress: addresses[0])])
            // Availability counts the pool and the holders.
            let availability = try #require(try await services[0].availability(networkIDs: [network.id])[network.id]?.first)
            #expect(availability.total == 50 && availability.used == 50)
            // A network with ports cannot go; its subnet neither.
            await #expect(throws: NetworkingFailure.self) { _ = try await services[0].deleteNetwork(network.id) }
            await #expect(throws: NetworkingFailure.self) { _ = try await services[0].deleteSubnet(subnet.id) }
        }
    }

    /// DHCP duties: at most one port per network and host, also when schedulings run at once
    /// in one controller and in two (whose duplicates the next scheduling removes).
    @Test(arguments: TestDatabase.allCases)
    func oneDHCPPortPerNetworkAndHost(_ backend: TestDatabase) async throws {
        var settings = NetworkingSettings.defaults
        settings.agentsPerNetwork = 2
        try await withService(backend, settings: settings) { services in
            let network = try await services[0].createNetwork(NetworkService.NetworkCreate(projectID: "p"))
            _ = try await services[0].createSubnet(NetworkService.SubnetCreate(networkID: network.id, projectID: "p", ipVersion: 4,
                                                                               cidr: "198.18.21.0/24"))
            func dhcpPorts() async throws -> [Networking.Port] {
                try await services[0].ports(visibleTo: Self.admin, networkIDs: [network.id]).filter { $0.deviceOwner == NetworkService.dhcpOwner }
            }
            // Six schedulings at once in each of two controllers.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<12 { group.addTask { _ = try await services[index % 2].scheduleDHCP(hosts: ["node-a", "node-b"]) } }
                try await group.waitForAll()
            }
            _ = try await services[0].scheduleDHCP(hosts: ["node-a", "node-b"])
            #expect(try await dhcpPorts().map(\.host).sorted() == ["node-a", "node-b"])
            // A duplicate (as two controllers racing may leave) goes at the next scheduling.
            var extra = NetworkService.PortCreate(networkID: network.id, projectID: "p")
            extra.deviceOwner = NetworkService.dhcpOwner
            extra.deviceID = "dhcp-node-a"
            extra.host = "node-a"
            let duplicate = try await services[1].createPort(extra)
            let changed = try await services[1].scheduleDHCP(hosts: ["node-a", "node-b"])
            #expect(changed == [network.id])
            let left = try await dhcpPorts()
            #expect(left.map(\.host).sorted() == ["node-a", "node-b"] && !left.contains { $0.id == duplicate.id })
        }
    }

    @Test func subnetsAreValidated() async throws {
        try await withService(.sqlite) { services in
            let service = services[0]
            let network = try await service.createNetwork(NetworkService.NetworkCreate(projectID: "p"))
            func create(_ cidr: String, version: Int = 4, _ edit: (inout NetworkService.SubnetCreate) -> Void = { _ in }) async throws -> Subnet {
                var request = NetworkService.SubnetCreate(networkID: network.id, projectID: "p", ipVersion: version, cidr: cidr)
                edit(&request)
                return try await service.createSubnet(request)
            }
            let first = try await create("198.18.20.0/24")
            #expect(first.allocationPools == [AllocationPool(start: "198.18.20.2", end: "198.18.20.254")])
            // Overlap on the same network, host bits, a version mismatch, pools outside the range.
            await #expect(throws: NetworkingFailure.self) { try await create("198.18.20.128/25") }
            await #expect(throws: NetworkingFailure.self) { try await create("198.18.21.1/24") }
            await #expect(throws: NetworkingFailure.self) { try await create("fd00::/64", version: 4) }
            await #expect(throws: NetworkingFailure.self) {
                try await create("198.18.22.0/24") { $0.allocationPools = [AllocationPool(start: "198.18.22.10", end: "198.18.23.5")] }
            }
            await #expect(throws: NetworkingFailure.self) {
                try await create("198.18.22.0/24") { $0.gatewayIP = .some("198.18.22.20"); $0.allocationPools = [AllocationPool(start: "198.18.22.10", end: "198.18.22.30")] }
            }
            // A gateway in the middle splits the default pool; none at all leaves it whole.
            let middle = try await create("198.18.22.0/28") { $0.gatewayIP = .some("198.18.22.5") }
            #expect(middle.allocationPools == [AllocationPool(start: "198.18.22.1", end: "198.18.22.4"), AllocationPool(start: "198.18.22.6", end: "198.18.22.14")])
            let noGateway = try await create("198.18.23.0/29") { $0.gatewayIP = .some(nil) }
            #expect(noGateway.gatewayIP == nil && noGateway.allocationPools == [AllocationPool(start: "198.18.23.1", end: "198.18.23.6")])
            // IPv6: SLAAC needs a /64 and gives EUI-64 addresses from the MAC.
            await #expect(throws: NetworkingFailure.self) { try await create("fd00:1::/80", version: 6) { $0.ipv6AddressMode = "slaac"; $0.ipv6RAMode = "slaac" } }
            let slaac = try await create("fd00:1::/64", version: 6) { $0.ipv6AddressMode = "slaac"; $0.ipv6RAMode = "slaac" }
            var port = NetworkService.PortCreate(networkID: network.id, projectID: "p")
            port.macAddress = "fa:16:3e:11:22:33"
            let made = try await service.createPort(port)
            #expect(made.fixedIPs.contains(FixedIP(subnetID: slaac.id, ipAddress: "fd00:1::f816:3eff:fe11:2233")))
            #expect(made.fixedIPs.first?.subnetID == first.id)
            // The MAC is unique on the network.
            await #expect(throws: NetworkingFailure.self) { try await service.createPort(port) }
            #expect(try await service.subnets(visibleTo: Self.admin).count == 4)
            // A SLAAC subnet added later gives the ports already there their EUI-64 addresses
            // (the DHCP port's is how dnsmasq advertises the prefix); deleting it takes them back.
            let later = try await create("fd00:2::/64", version: 6) { $0.ipv6AddressMode = "slaac"; $0.ipv6RAMode = "slaac" }
            let grown = try await service.port(made.id, visibleTo: Self.admin)
            #expect(grown.fixedIPs == made.fixedIPs + [FixedIP(subnetID: later.id, ipAddress: "fd00:2::f816:3eff:fe11:2233")])
            #expect(grown.revision == made.revision + 1)
            _ = try await service.deleteSubnet(later.id)
            #expect(try await service.port(made.id, visibleTo: Self.admin).fixedIPs == made.fixedIPs)
        }
    }

    @Test func quotasAreEnforced() async throws {
        try await withService(.sqlite, quotas: ["network": 2, "subnet": 1, "port": 1]) { services in
            let service = services[0]
            let network = try await service.createNetwork(NetworkService.NetworkCreate(projectID: "p"))
            _ = try await service.createNetwork(NetworkService.NetworkCreate(projectID: "p"))
            await #expect(throws: NetworkingFailure.overQuota("network")) { try await service.createNetwork(NetworkService.NetworkCreate(projectID: "p")) }
            _ = try await service.createSubnet(NetworkService.SubnetCreate(networkID: network.id, projectID: "p", ipVersion: 4, cidr: "198.18.30.0/24"))
            _ = try await service.createPort(NetworkService.PortCreate(networkID: network.id, projectID: "p"))
            await #expect(throws: NetworkingFailure.overQuota("port")) { try await service.createPort(NetworkService.PortCreate(networkID: network.id, projectID: "p")) }
            #expect(try await service.setQuota(project: "p", ["port": 5])["port"] == 5)
            _ = try await service.createPort(NetworkService.PortCreate(networkID: network.id, projectID: "p"))
            // The ports made the project's default security group (with its four rules).
            #expect(try await service.quotaUsage(project: "p") == ["network": 2, "subnet": 1, "port": 2, "router": 0, "floatingip": 0,
                                                                         "security_group": 1, "security_group_rule": 4])
        }
    }
}
