/// The messages of the node's firewall (security groups). As with the networks, the
/// controller only says *that* something changed (fanout); each node asks for the whole
/// desired firewall of its host and converges, so a lost or repeated message costs nothing
/// but a later sync.

/// A port the node filters: one bound to it whose device is a guest's tap.
public struct FirewallPort: Codable, Sendable, Equatable {
    public var id: String
    public var networkID: String
    public var macAddress: String
    public var fixedIPs: [String]
    public var allowedAddressPairs: [AllowedPair]
    /// false: no filtering and no anti-spoofing at all.
    public var portSecurityEnabled: Bool
    public var securityGroups: [String]

    public struct AllowedPair: Codable, Sendable, Equatable {
        /// An address or a network in CIDR form.
        public var ipAddress: String
        public var macAddress: String
        public init(ipAddress: String, macAddress: String) { self.ipAddress = ipAddress; self.macAddress = macAddress }
    }

    public init(id: String, networkID: String, macAddress: String, fixedIPs: [String], allowedAddressPairs: [AllowedPair],
                portSecurityEnabled: Bool, securityGroups: [String]) {
        self.id = id; self.networkID = networkID; self.macAddress = macAddress; self.fixedIPs = fixedIPs
        self.allowedAddressPairs = allowedAddressPairs; self.portSecurityEnabled = portSecurityEnabled; self.securityGroups = securityGroups
    }

    /// Neutron's tap name: `tap` + the first 11 characters of the port id.
    public var tapName: String { "tap" + id.prefix(11) }
}

public struct FirewallRule: Codable, Sendable, Equatable, Hashable {
    /// `ingress` or `egress`.
    public var direction: String
    /// 4 or 6.
    public var ipVersion: Int
    /// The IP protocol number; nil: any.
    public var protocolNumber: Int?
    /// Ports for TCP, UDP, SCTP…; ICMP type and code for ICMP.
    public var portRangeMin: Int?
    public var portRangeMax: Int?
    /// The remote end: a network, a group's members, or an address group; none: anywhere.
    public var remoteIPPrefix: String?
    public var remoteGroupID: String?
    public var remoteAddressGroupID: String?

    public init(direction: String, ipVersion: Int, protocolNumber: Int?, portRangeMin: Int?, portRangeMax: Int?, remoteIPPrefix: String?,
                remoteGroupID: String?, remoteAddressGroupID: String?) {
        self.direction = direction; self.ipVersion = ipVersion; self.protocolNumber = protocolNumber; self.portRangeMin = portRangeMin
        self.portRangeMax = portRangeMax; self.remoteIPPrefix = remoteIPPrefix; self.remoteGroupID = remoteGroupID
        self.remoteAddressGroupID = remoteAddressGroupID
    }
}

public struct FirewallGroup: Codable, Sendable, Equatable {
    public var id: String
    public var stateful: Bool
    public var rules: [FirewallRule]
    public init(id: String, stateful: Bool, rules: [FirewallRule]) { self.id = id; self.stateful = stateful; self.rules = rules }
}

/// Everything one node's firewall should hold: its filtered ports, the groups they are in,
/// and the addresses of every remote group and address group those groups' rules name
/// (members anywhere in the cloud).
public struct FirewallState: Codable, Sendable, Equatable {
    public var ports: [FirewallPort]
    public var groups: [FirewallGroup]
    /// Group id → the addresses (and allowed-pair networks) of its member ports.
    public var groupMembers: [String: [String]]
    /// Address group id → its networks.
    public var addressGroups: [String: [String]]

    public init(ports: [FirewallPort] = [], groups: [FirewallGroup] = [], groupMembers: [String: [String]] = [:],
                addressGroups: [String: [String]] = [:]) {
        self.ports = ports; self.groups = groups; self.groupMembers = groupMembers; self.addressGroups = addressGroups
    }
}

/// A node asks for its host's desired firewall.
public struct HostFirewall: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var host: String
        public init(host: String) { self.host = host }
    }

    public typealias Result = FirewallState
    public static let name = "host_firewall"
    public static let version = RPCVersion(1, 0)
    public static let topic = "neutron"
}

/// Fanout to every node's network service: security groups, rules, address groups or the
/// ports in them changed; each node recomputes its firewall.
public struct FirewallChanged: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public init() {}
    }

    public typealias Result = Nothing
    public static let name = "firewall_changed"
    public static let version = RPCVersion(1, 0)
    public static let topic = "network"
}
