/// The messages of the node's L3 agent (routers and floating IPs). As with networks and the
/// firewall, the controller only says *that* routers changed (fanout); each node with the L3
/// role asks for the whole desired state of the routers scheduled on it and converges, so a
/// lost or repeated message costs nothing but a later sync.

/// One port of a router as the node plugs it: the port, its network's segment and the
/// subnets its addresses are on (their prefixes and gateways).
public struct RouterPortState: Codable, Sendable, Equatable {
    public var port: PortWiring
    public var network: NetworkWiring
    public var subnets: [SubnetWiring]
    public init(port: PortWiring, network: NetworkWiring, subnets: [SubnetWiring]) {
        self.port = port; self.network = network; self.subnets = subnets
    }
}

/// A floating IP the router answers for: `address` on its gateway, translated one-to-one to
/// `fixedAddress` of an internal port.
public struct FloatingIPState: Codable, Sendable, Equatable {
    public var id: String
    public var address: String
    public var fixedAddress: String
    public init(id: String, address: String, fixedAddress: String) { self.id = id; self.address = address; self.fixedAddress = fixedAddress }
}

/// A port forwarding: `protocol` traffic to `floatingAddress:externalPort` goes to
/// `internalAddress:internalPort`.
public struct PortForwardingState: Codable, Sendable, Equatable {
    public var id: String
    public var floatingAddress: String
    public var `protocol`: String
    public var externalPort: Int
    public var internalAddress: String
    public var internalPort: Int
    public init(id: String, floatingAddress: String, protocol: String, externalPort: Int, internalAddress: String, internalPort: Int) {
        self.id = id; self.floatingAddress = floatingAddress; self.protocol = `protocol`; self.externalPort = externalPort
        self.internalAddress = internalAddress; self.internalPort = internalPort
    }
}

/// A guest behind the router, for the metadata proxy in the router's namespace.
public struct RouterGuest: Codable, Sendable, Equatable {
    public var address: String
    public var instanceID: String
    public var projectID: String
    public init(address: String, instanceID: String, projectID: String) { self.address = address; self.instanceID = instanceID; self.projectID = projectID }
}

/// Everything one node should have for one router scheduled on it.
public struct RouterState: Codable, Sendable, Equatable {
    public var id: String
    public var adminStateUp: Bool
    /// The port on the external network (none: no gateway).
    public var gateway: RouterPortState?
    public var enableSNAT: Bool
    public var interfaces: [RouterPortState]
    /// Extra routes (`routes`), destination → next hop.
    public var routes: [SubnetWiring.Route]
    public var floatingIPs: [FloatingIPState]
    public var portForwardings: [PortForwardingState]
    public var guests: [RouterGuest]

    public init(id: String, adminStateUp: Bool, gateway: RouterPortState?, enableSNAT: Bool, interfaces: [RouterPortState],
                routes: [SubnetWiring.Route], floatingIPs: [FloatingIPState], portForwardings: [PortForwardingState], guests: [RouterGuest]) {
        self.id = id; self.adminStateUp = adminStateUp; self.gateway = gateway; self.enableSNAT = enableSNAT; self.interfaces = interfaces
        self.routes = routes; self.floatingIPs = floatingIPs; self.portForwardings = portForwardings; self.guests = guests
    }

    /// Neutron's namespace name: `qrouter-<router id>`.
    public var namespaceName: String { "qrouter-" + id }
}

/// A node with the L3 role asks for the routers it should have (the controller first hands
/// out routers that have no live host, this one counting as alive).
public struct HostRouters: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var host: String
        public init(host: String) { self.host = host }
    }

    public struct Result: Codable, Sendable, Equatable {
        public var routers: [RouterState]
        public init(routers: [RouterState]) { self.routers = routers }
    }

    public static let name = "host_routers"
    public static let version = RPCVersion(1, 0)
    public static let topic = "neutron"
}

/// The node made these floating IPs answer (ACTIVE) or could not (DOWN). Cast after each sync.
public struct FloatingIPsStatus: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var host: String
        public var active: [String]
        public var down: [String]
        public init(host: String, active: [String], down: [String]) { self.host = host; self.active = active; self.down = down }
    }

    public typealias Result = Nothing
    public static let name = "floating_ips_status"
    public static let version = RPCVersion(1, 0)
    public static let topic = "neutron"
}

/// Fanout to every node's L3 agent: routers (or their floating IPs) changed; each node syncs
/// the routers scheduled on it.
public struct RoutersChanged: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var routerIDs: [String]
        public init(routerIDs: [String]) { self.routerIDs = routerIDs }
    }

    public typealias Result = Nothing
    public static let name = "routers_changed"
    public static let version = RPCVersion(1, 0)
    public static let topic = "network"
}
