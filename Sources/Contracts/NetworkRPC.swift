/// The messages of the node's network service (L2, DHCP, metadata) and the controller's
/// Neutron core. The controller tells nodes *that* something changed (fanout, by network);
/// a node then asks what it should have (call) and converges: every message is safe to
/// repeat or to lose, because the next sync carries the whole truth.

/// A network as a node wires it: its segment and MTU.
public struct NetworkWiring: Codable, Sendable, Equatable {
    public var id: String
    public var networkType: String
    public var physicalNetwork: String?
    public var segmentationID: Int?
    public var mtu: Int
    public var adminStateUp: Bool

    public init(id: String, networkType: String, physicalNetwork: String?, segmentationID: Int?, mtu: Int, adminStateUp: Bool) {
        self.id = id; self.networkType = networkType; self.physicalNetwork = physicalNetwork
        self.segmentationID = segmentationID; self.mtu = mtu; self.adminStateUp = adminStateUp
    }

    /// Neutron's bridge name: `brq` + the first 11 characters of the network id.
    public var bridgeName: String { "brq" + id.prefix(11) }
}

public struct FixedAddress: Codable, Sendable, Equatable, Hashable {
    public var subnetID: String
    public var address: String
    public init(subnetID: String, address: String) { self.subnetID = subnetID; self.address = address }
}

/// A port as the node sees it: enough to wire it, to serve it DHCP and to tell its guest
/// apart from the others (metadata).
public struct PortWiring: Codable, Sendable, Equatable {
    public var id: String
    public var networkID: String
    public var projectID: String
    public var macAddress: String
    public var fixedIPs: [FixedAddress]
    public var deviceOwner: String
    public var deviceID: String
    public var host: String
    public var adminStateUp: Bool
    public var status: String
    public var dnsName: String
    public var extraDHCPOptions: [ExtraDHCPOption]

    public init(id: String, networkID: String, projectID: String, macAddress: String, fixedIPs: [FixedAddress], deviceOwner: String,
                deviceID: String, host: String, adminStateUp: Bool, status: String, dnsName: String, extraDHCPOptions: [ExtraDHCPOption]) {
        self.id = id; self.networkID = networkID; self.projectID = projectID; self.macAddress = macAddress; self.fixedIPs = fixedIPs
        self.deviceOwner = deviceOwner; self.deviceID = deviceID; self.host = host; self.adminStateUp = adminStateUp
        self.status = status; self.dnsName = dnsName; self.extraDHCPOptions = extraDHCPOptions
    }

    /// Neutron's tap name: `tap` + the first 11 characters of the port id.
    public var tapName: String { "tap" + id.prefix(11) }
}

public struct ExtraDHCPOption: Codable, Sendable, Equatable {
    public var name: String
    public var value: String
    public var ipVersion: Int
    public init(name: String, value: String, ipVersion: Int) { self.name = name; self.value = value; self.ipVersion = ipVersion }
}

/// A subnet as DHCP serves it.
public struct SubnetWiring: Codable, Sendable, Equatable {
    public var id: String
    public var cidr: String
    public var ipVersion: Int
    public var gatewayIP: String?
    public var enableDHCP: Bool
    public var dnsNameservers: [String]
    public var hostRoutes: [Route]
    public var ipv6AddressMode: String?
    public var ipv6RAMode: String?

    public struct Route: Codable, Sendable, Equatable {
        public var destination: String
        public var nexthop: String
        public init(destination: String, nexthop: String) { self.destination = destination; self.nexthop = nexthop }
    }

    public init(id: String, cidr: String, ipVersion: Int, gatewayIP: String?, enableDHCP: Bool, dnsNameservers: [String],
                hostRoutes: [Route], ipv6AddressMode: String?, ipv6RAMode: String?) {
        self.id = id; self.cidr = cidr; self.ipVersion = ipVersion; self.gatewayIP = gatewayIP; self.enableDHCP = enableDHCP
        self.dnsNameservers = dnsNameservers; self.hostRoutes = hostRoutes; self.ipv6AddressMode = ipv6AddressMode
        self.ipv6RAMode = ipv6RAMode
    }
}

/// Everything one node should have for one network: the segment, the ports bound to the
/// node, the other nodes' tunnel endpoints that have ports on it (l2 population), and — when
/// the node serves the network's DHCP — its DHCP port, subnets and every port of the network.
public struct NetworkState: Codable, Sendable, Equatable {
    public var network: NetworkWiring
    public var localPorts: [PortWiring]
    public var remoteEndpoints: [String]
    public var dhcpPort: PortWiring?
    public var subnets: [SubnetWiring]
    public var allPorts: [PortWiring]
    public var dnsDomain: String

    public init(network: NetworkWiring, localPorts: [PortWiring], remoteEndpoints: [String], dhcpPort: PortWiring?, subnets: [SubnetWiring],
                allPorts: [PortWiring], dnsDomain: String) {
        self.network = network; self.localPorts = localPorts; self.remoteEndpoints = remoteEndpoints; self.dhcpPort = dhcpPort
        self.subnets = subnets; self.allPorts = allPorts; self.dnsDomain = dnsDomain
    }
}

/// A node asks what it should have: for the networks named, or (none named) for every
/// network it has a port or a DHCP duty on.
public struct HostNetworks: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var host: String
        public var networkIDs: [String]?
        public var tunnelIP: String?
        /// The node serves DHCP: the controller may hand it networks to serve first.
        public var servesDHCP: Bool
        public init(host: String, networkIDs: [String]?, tunnelIP: String?, servesDHCP: Bool) {
            self.host = host; self.networkIDs = networkIDs; self.tunnelIP = tunnelIP; self.servesDHCP = servesDHCP
        }
    }

    public struct Result: Codable, Sendable, Equatable {
        public var networks: [NetworkState]
        /// Of the networks asked for, those that no longer concern the node (deleted, no port left).
        public var gone: [String]
        public init(networks: [NetworkState], gone: [String]) { self.networks = networks; self.gone = gone }
    }

    public static let name = "host_networks"
    public static let version = RPCVersion(1, 0)
    public static let topic = "neutron"
}

/// The node wired (ACTIVE) or lost (DOWN) ports. Cast; repeated at every sync.
public struct PortsStatus: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var host: String
        public var active: [String]
        public var down: [String]
        public init(host: String, active: [String], down: [String]) { self.host = host; self.active = active; self.down = down }
    }

    public typealias Result = Nothing
    public static let name = "ports_status"
    public static let version = RPCVersion(1, 0)
    public static let topic = "neutron"
}

/// Fanout to every node's network service: these networks changed (ports, subnets, the
/// network itself, DHCP duties); the nodes that care sync them.
public struct NetworksChanged: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var networkIDs: [String]
        public init(networkIDs: [String]) { self.networkIDs = networkIDs }
    }

    public typealias Result = Nothing
    public static let name = "networks_changed"
    public static let version = RPCVersion(1, 0)
    public static let topic = "network"
}
