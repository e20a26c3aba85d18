@testable import DnsmasqDriver
import Foundation
import ProcessDriver
import TestSupport
import Testing

/// Rendering only: no root, no dnsmasq (except the last test, which asks dnsmasq itself
/// whether it accepts what was rendered).
@Suite struct DnsmasqConfigurationTests {
    let paths = DnsmasqPaths(directory: "/s/net1")

    var network: DHCPNetwork {
        DHCPNetwork(
            id: "net1", interface: "ns-1234",
            subnets: [
                DHCPSubnet(id: "s4", cidr: "198.18.5.0/24", gateway: "198.18.5.1", dnsNameservers: ["198.18.5.53"],
                           hostRoutes: [HostRoute(destination: "198.18.99.0/24", nexthop: "198.18.5.254")],
                           metadataNextHop: "198.18.5.2"),
                DHCPSubnet(id: "s6", cidr: "fd00:5::/64", gateway: "fd00:5::1", ipv6AddressMode: .dhcpv6Stateful),
                DHCPSubnet(id: "s6slaac", cidr: "fd00:6::/64", gateway: "fd00:6::1", ipv6AddressMode: .slaac),
                DHCPSubnet(id: "s4off", cidr: "198.18.7.0/24", gateway: nil, dhcpEnabled: false),
            ],
            hosts: [
                DHCPHost(portID: "p1", mac: "FA:16:3E:00:00:01",
                         fixedIPs: [FixedIP(subnetID: "s4", address: "198.18.5.10"),
                                    FixedIP(subnetID: "s6", address: "fd00:5:0::10"),
                                    FixedIP(subnetID: "s6slaac", address: "fd00:6::f816:3eff:fe00:1")],
                         hostname: "vm1", extraOptions: [DHCPOption(name: "tftp-server", value: "198.18.5.3"),
                                                         DHCPOption(name: "dns-server", value: "[fd00:5::53]", ipVersion: 6)]),
                DHCPHost(portID: "p2", mac: "fa:16:3e:00:00:02", fixedIPs: [FixedIP(subnetID: "s4", address: "198.18.5.11")],
                         extraOptions: [DHCPOption(name: "client-id", value: "01:fa:16:3e:00:00:02")]),
                DHCPHost(portID: "p3", mac: "fa:16:3e:00:00:03", fixedIPs: [FixedIP(subnetID: "s4off", address: "198.18.7.5")],
                         extraOptions: [DHCPOption(name: "67", value: "pxe.0"),
                                        DHCPOption(name: "bootfile-name", value: "ignored.0", ipVersion: 6)]),
            ],
            mtu: 1450, leaseDuration: 600, domain: "example.org.")
    }

    var raNetwork: DHCPNetwork {
        DHCPNetwork(
            id: "net2", interface: "tap1",
            subnets: [
                DHCPSubnet(id: "a", cidr: "198.18.9.77/26", gateway: nil, dnsNameservers: ["0.0.0.0"]),
                DHCPSubnet(id: "b", cidr: "fd00:9::/64", gateway: "fd00:9::1", ipv6AddressMode: .dhcpv6Stateless,
                           ipv6RAMode: .dhcpv6Stateless, dnsNameservers: ["fd00:9::53"]),
                DHCPSubnet(id: "c", cidr: "fd00:a::/64", gateway: "fd00:a::1", ipv6AddressMode: .slaac, ipv6RAMode: .slaac),
                DHCPSubnet(id: "d", cidr: "fd00:b::/56", gateway: nil, ipv6AddressMode: .dhcpv6Stateful),
                DHCPSubnet(id: "e", cidr: "198.18.10.0/24", gateway: nil,
                           hostRoutes: [HostRoute(destination: "0.0.0.0/0", nexthop: "198.18.10.254")]),
            ],
            hosts: [DHCPHost(portID: "p", mac: "02:00:00:00:00:01", fixedIPs: [FixedIP(subnetID: "b", address: "fd00:9::5")])],
            leaseDuration: nil, domain: nil)
    }

    @Test func commandLine() throws {
        let config = try DnsmasqConfiguration(network: network, paths: paths)
        #expect(config.arguments == [
            "--no-hosts", "--no-resolv", "--pid-file=/s/net1/pid", "--dhcp-hostsfile=/s/net1/host",
            "--addn-hosts=/s/net1/addn_hosts", "--dhcp-optsfile=/s/net1/opts", "--dhcp-leasefile=/s/net1/leases",
            "--interface=ns-1234", "--except-interface=lo", "--bind-dynamic", "--local-service",
            "--dhcp-range=set:subnet-s4,198.18.5.0,static,255.255.255.0,600s",
            "--dhcp-range=set:subnet-s6,fd00:5::,static,64,600s",
            "--dhcp-option-force=option:mtu,1450",
            "--dhcp-lease-max=16777216",
            "--conf-file=/dev/null", "--domain=example.org",
        ])
        #expect(network.namespace == "qdhcp-net1")
        let logging = try DnsmasqConfiguration(network: network, paths: paths, logDHCP: true)
        #expect(logging.arguments.suffix(2) == ["--log-dhcp", "--log-facility=/s/net1/dnsmasq.log"])
    }

    @Test func hostsAndAddnHostsFiles() throws {
        let config = try DnsmasqConfiguration(network: network, paths: paths)
        #expect(config.hosts == """
            fa:16:3e:00:00:01,vm1.example.org,198.18.5.10,set:port-p1
            fa:16:3e:00:00:01,vm1.example.org,[fd00:5::10],set:port-p1
            fa:16:3e:00:00:02,id:01:fa:16:3e:00:00:02,host-198-18-5-11.example.org,198.18.5.11
            fa:16:3e:00:00:03,set:port-p3

            """)
        #expect(config.addnHosts == """
            198.18.5.10\tvm1.example.org vm1
            fd00:5::10\tvm1.example.org vm1
            fd00:6::f816:3eff:fe00:1\tvm1.example.org vm1
            198.18.5.11\thost-198-18-5-11.example.org host-198-18-5-11
            198.18.7.5\thost-198-18-7-5.example.org host-198-18-7-5

            """)
    }

    @Test func optsFile() throws {
        let config = try DnsmasqConfiguration(network: network, paths: paths)
        let routes = "198.18.7.0/24,0.0.0.0,198.18.99.0/24,198.18.5.254,169.254.169.254/32,198.18.5.2,0.0.0.0/0,198.18.5.1"
        #expect(config.opts == """
            tag:subnet-s4,option:dns-server,198.18.5.53
            tag:subnet-s4,option:classless-static-route,\(routes)
            tag:subnet-s4,249,\(routes)
            tag:subnet-s4,option:router,198.18.5.1
            tag:subnet-s6,option6:domain-search,example.org
            tag:port-p1,option:tftp-server,198.18.5.3
            tag:port-p1,option6:dns-server,[fd00:5::53]
            tag:port-p3,67,pxe.0

            """)
    }

    @Test func noGatewayNoDNSInfiniteLeasesAndRouterAdvertisements() throws {
        let network = raNetwork
        let config = try DnsmasqConfiguration(network: network, paths: paths)
        #expect(config.arguments.filter { $0.hasPrefix("--dhcp-range") } == [
            "--dhcp-range=set:subnet-a,198.18.9.64,static,255.255.255.192,infinite",
            "--dhcp-range=set:subnet-b,fd00:9::,ra-stateless,64,infinite",
            "--dhcp-range=set:subnet-c,fd00:a::,slaac,64,infinite",
            "--dhcp-range=set:subnet-e,198.18.10.0,static,255.255.255.0,infinite",
        ], "a /56 is skipped: dnsmasq serves /64 or longer")
        #expect(config.arguments.contains("--enable-ra") && config.arguments.contains("--ra-param=tap1,0,0"),
                "RAs carry prefixes, not a route via the DHCP namespace")
        var withMTU = network
        withMTU.mtu = 1450
        #expect(try DnsmasqConfiguration(network: withMTU, paths: paths).arguments.contains("--ra-param=tap1,mtu:1450,0,0"))
        #expect(!config.arguments.contains { $0.hasPrefix("--domain") || $0.contains("option:mtu") })
        #expect(config.opts == """
            tag:subnet-a,option:dns-server
            tag:subnet-a,option:classless-static-route,198.18.10.0/24,0.0.0.0
            tag:subnet-a,249,198.18.10.0/24,0.0.0.0
            tag:subnet-a,option:router
            tag:subnet-b,option6:dns-server,[fd00:9::53]
            tag:subnet-e,option:classless-static-route,198.18.9.64/26,0.0.0.0,0.0.0.0/0,198.18.10.254
            tag:subnet-e,249,198.18.9.64/26,0.0.0.0,0.0.0.0/0,198.18.10.254
            tag:subnet-e,option:router,198.18.10.254

            """, "IPv6 has no router option: routers come in RAs")
        #expect(config.hosts == "", "a stateless subnet's address is not handed out by DHCP")
        #expect(config.addnHosts == "fd00:9::5\thost-fd00-9--5\n")
    }

    @Test func badDescriptionsAreRefused() {
        func refused(_ edit: (inout DHCPNetwork) -> Void) -> Bool {
            var copy = network
            edit(&copy)
            return (try? DnsmasqConfiguration(network: copy, paths: paths)) == nil
        }
        #expect(!refused { _ in })
        #expect(refused { $0.id = "../etc" })
        #expect(refused { $0.interface = "eth0,lo" })
        #expect(refused { $0.subnets[0].cidr = "198.18.5.0/33" })
        #expect(refused { $0.subnets[0].gateway = "fd00::1" })
        #expect(refused { $0.subnets[1].id = "s4" })
        #expect(refused { $0.subnets[0].hostRoutes[0].nexthop = "not-an-ip" })
        #expect(refused { $0.hosts[0].mac = "fa:16:3e:00:00" })
        #expect(refused { $0.hosts[1].mac = $0.hosts[0].mac })
        #expect(refused { $0.hosts[0].fixedIPs[0].address = "198.18.6.10" })
        #expect(refused { $0.hosts[0].fixedIPs[0].subnetID = "nope" })
        #expect(refused { $0.hosts[0].hostname = "vm1\nevil" })
        #expect(refused { $0.hosts[0].hostname = "under_score" })
        #expect(refused { $0.hosts[0].extraOptions[0].value = "1.2.3.4\ntag:x,option:router,6.6.6.6" })
        #expect(refused { $0.hosts[0].extraOptions[0].name = "router,6.6.6.6" })
        #expect(refused { $0.leaseDuration = 60 })
        #expect(refused { $0.domain = "bad domain" })
    }

    @Test func leasesOfPortsThatAreGoneAreFound() throws {
        let config = try DnsmasqConfiguration(network: network, paths: paths)
        let leases = """
            1765000000 fa:16:3e:00:00:01 198.18.5.10 vm1 *
            1765000000 fa:16:3e:00:00:02 198.18.5.12 host-198-18-5-12 01:fa:16:3e:00:00:02
            1765000000 fa:16:3e:00:00:09 198.18.5.11 old *
            duid 00:01:00:01:2c:00:00:00:02:00:00:00:00:01
            1765000000 1234 fd00:5::99 old6 00:03:00:01:02:00:00:00:00:09

            """
        #expect(config.staleLeases(in: leases) == [
            StaleLease(line: "1765000000 fa:16:3e:00:00:02 198.18.5.12 host-198-18-5-12 01:fa:16:3e:00:00:02",
                       mac: "fa:16:3e:00:00:02", address: "198.18.5.12", clientID: "01:fa:16:3e:00:00:02"),
            StaleLease(line: "1765000000 fa:16:3e:00:00:09 198.18.5.11 old *", mac: "fa:16:3e:00:00:09",
                       address: "198.18.5.11", clientID: nil),
        ], "an address on another MAC, a MAC on another address; IPv6 leases are left alone")
        #expect(config.staleLeases(in: "") == [])
    }

    /// dnsmasq's own parser accepts the rendered command line and files.
    @Test func dnsmasqAcceptsWhatIsRendered() async throws {
        try Requirement.tool("dnsmasq")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestNames.unique("petrel-test-dhcp-")).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var withMTU = raNetwork
        withMTU.mtu = 1450
        for network in [network, raNetwork, withMTU] {
            let config = try DnsmasqConfiguration(network: network, paths: DnsmasqPaths(directory: directory), logDHCP: true)
            let result = try await Command.run("/usr/sbin/dnsmasq", ["--test"] + config.arguments)
            #expect(result.status == 0, "\(result.stderr)")
            #expect((result.stdout + result.stderr).contains("syntax check OK"), "\(result.stdout)\(result.stderr)")
        }
    }
}
