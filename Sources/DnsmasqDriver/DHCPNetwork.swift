import Foundation

/// The DHCP (and DNS) service one network should have: what Neutron's DHCP agent knows
/// of a network, its subnets and its ports, reduced to what dnsmasq needs. The node
/// service builds it from the controller's answer; the driver renders it.
public struct DHCPNetwork: Sendable, Equatable, Codable {
    public var id: String
    /// The network namespace dnsmasq runs in; Neutron's `qdhcp-<network id>` by default.
    public var namespace: String
    /// The DHCP port's interface inside that namespace (carries the addresses dnsmasq serves from).
    public var interface: String
    public var subnets: [DHCPSubnet]
    public var hosts: [DHCPHost]
    /// Advertised to guests (DHCP option 26) when set; a VXLAN network is typically 1450.
    public var mtu: Int?
    /// Lease time in seconds; nil for infinite leases.
    public var leaseDuration: Int?
    /// DNS domain of the hosts' names (Neutron's `dns_domain`, "openstacklocal" by default).
    public var domain: String?

    public init(id: String, namespace: String? = nil, interface: String, subnets: [DHCPSubnet], hosts: [DHCPHost] = [],
                mtu: Int? = nil, leaseDuration: Int? = 86400, domain: String? = "openstacklocal") {
        self.id = id
        self.namespace = namespace ?? "qdhcp-\(id)"
        self.interface = interface
        self.subnets = subnets
        self.hosts = hosts
        self.mtu = mtu
        self.leaseDuration = leaseDuration
        self.domain = domain
    }
}

/// Neutron's `ipv6_address_mode` and `ipv6_ra_mode` values.
public enum IPv6Mode: String, Sendable, Codable, CaseIterable {
    case slaac
    case dhcpv6Stateful = "dhcpv6-stateful"
    case dhcpv6Stateless = "dhcpv6-stateless"
}

public struct DHCPSubnet: Sendable, Equatable, Codable {
    public var id: String
    /// "198.18.0.0/24", "fd00:1::/64".
    public var cidr: String
    /// The router guests get (option 3); nil for a subnet without one.
    public var gateway: String?
    public var dhcpEnabled: Bool
    public var ipv6AddressMode: IPv6Mode?
    /// Set when dnsmasq itself sends router advertisements on this subnet.
    public var ipv6RAMode: IPv6Mode?
    /// Empty: dnsmasq offers itself. `["0.0.0.0"]` (or `["::"]`): offer no DNS server.
    public var dnsNameservers: [String]
    public var hostRoutes: [HostRoute]
    /// When set, guests get the route 169.254.169.254/32 via this address (the DHCP
    /// port's address on an isolated network, where the metadata proxy listens).
    public var metadataNextHop: String?

    public init(id: String, cidr: String, gateway: String?, dhcpEnabled: Bool = true,
                ipv6AddressMode: IPv6Mode? = nil, ipv6RAMode: IPv6Mode? = nil,
                dnsNameservers: [String] = [], hostRoutes: [HostRoute] = [], metadataNextHop: String? = nil) {
        self.id = id
        self.cidr = cidr
        self.gateway = gateway
        self.dhcpEnabled = dhcpEnabled
        self.ipv6AddressMode = ipv6AddressMode
        self.ipv6RAMode = ipv6RAMode
        self.dnsNameservers = dnsNameservers
        self.hostRoutes = hostRoutes
        self.metadataNextHop = metadataNextHop
    }
}

public struct HostRoute: Sendable, Equatable, Codable {
    public var destination: String
    public var nexthop: String

    public init(destination: String, nexthop: String) {
        self.destination = destination
        self.nexthop = nexthop
    }
}

/// A port that gets its fixed addresses by DHCP.
public struct DHCPHost: Sendable, Equatable, Codable {
    public var portID: String
    public var mac: String
    public var fixedIPs: [FixedIP]
    /// The port's `dns_name`; nil gives Neutron's `host-<address with dashes>`.
    public var hostname: String?
    /// Neutron's `extra_dhcp_opts`.
    public var extraOptions: [DHCPOption]

    public init(portID: String, mac: String, fixedIPs: [FixedIP], hostname: String? = nil, extraOptions: [DHCPOption] = []) {
        self.portID = portID
        self.mac = mac
        self.fixedIPs = fixedIPs
        self.hostname = hostname
        self.extraOptions = extraOptions
    }
}

public struct FixedIP: Sendable, Equatable, Codable {
    public var subnetID: String
    public var address: String

    public init(subnetID: String, address: String) {
        self.subnetID = subnetID
        self.address = address
    }
}

/// One of a port's `extra_dhcp_opts`: `name` is a dnsmasq option name ("tftp-server",
/// "bootfile-name") or number ("66"); "client-id" becomes the host's client identifier.
public struct DHCPOption: Sendable, Equatable, Codable {
    public var name: String
    public var value: String
    public var ipVersion: Int

    public init(name: String, value: String, ipVersion: Int = 4) {
        self.name = name
        self.value = value
        self.ipVersion = ipVersion
    }
}

/// A description dnsmasq cannot be given as it is (bad address, a newline in a name, …).
public struct DHCPConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
}
