import Contracts
import Foundation
import PetrelCore
import SQLKit
import Store

/// A Neutron router: interfaces on project subnets (ports it owns), a gateway on an external
/// network, extra routes, and the node whose L3 agent runs it.
public struct Router: Sendable, Equatable {
    public var id: String
    public var projectID: String
    public var name: String
    public var description: String
    public var adminStateUp: Bool
    public var status: String
    public var gatewayNetworkID: String?
    public var gatewayPortID: String?
    public var enableSNAT: Bool
    public var routes: [HostRoute]
    /// The node whose L3 agent runs the router ('' until one is alive).
    public var host: String
    public var tags: [String]
    public var revision: Int
    public var createdAt: Int64
    public var updatedAt: Int64
    /// The gateway port's addresses (filled by the reads).
    public var gatewayFixedIPs: [FixedIP] = []
}

struct RouterRow: Codable, Sendable {
    var id: String
    var projectId: String
    var name: String
    var description: String
    var adminStateUp: Bool
    var status: String
    var gatewayNetworkId: String?
    var gatewayPortId: String?
    var enableSnat: Bool
    var routes: String
    var host: String
    var tags: String
    var revisionNumber: Int
    var createdAt: Int64
    var updatedAt: Int64

    init(_ router: Router) {
        id = router.id; projectId = router.projectID; name = router.name; description = router.description
        adminStateUp = router.adminStateUp; status = router.status; gatewayNetworkId = router.gatewayNetworkID
        gatewayPortId = router.gatewayPortID; enableSnat = router.enableSNAT; routes = Column.encode(router.routes); host = router.host
        tags = Column.encode(router.tags); revisionNumber = router.revision; createdAt = router.createdAt; updatedAt = router.updatedAt
    }

    var value: Router {
        Router(id: id, projectID: projectId, name: name, description: description, adminStateUp: adminStateUp, status: status,
               gatewayNetworkID: gatewayNetworkId, gatewayPortID: gatewayPortId, enableSNAT: enableSnat,
               routes: Column.decode([HostRoute].self, routes, default: []), host: host, tags: Column.decode([String].self, tags, default: []),
               revision: revisionNumber, createdAt: createdAt, updatedAt: updatedAt)
    }
}

extension Tables {
    static let routers = Table<RouterRow>("routers")
}

extension NetworkingFailure {
    public static func routerNotFound(_ id: String) -> NetworkingFailure {
        NetworkingFailure(404, "RouterNotFound", "Router \(id) could not be found")
    }
    static func badRouter(_ message: String) -> NetworkingFailure {
        NetworkingFailure(400, "BadRequest", "Bad router request: \(message).")
    }
}

/// Routers (Neutron's `router`, `extraroute`, `extraroute-atomic` and `ext-gw-mode`): each
/// change is one transaction, after which the node running the router hears of it. A router
/// runs on one node with the L3 role, chosen like DHCP duties: the least loaded live one.
extension NetworkService {
    public static let l3Agent = "neutron-l3-agent"
    public static let interfaceOwner = "network:router_interface"
    public static let gatewayOwner = "network:router_gateway"
    public static let floatingIPOwner = "network:floatingip"

    /// The external gateway a router is asked to have.
    public struct GatewayRequest: Sendable, Equatable {
        public var networkID: String
        /// nil: SNAT on (Neutron's default).
        public var enableSNAT: Bool?
        /// nil: one address from the external network's subnets.
        public var fixedIPs: [FixedIPRequest]?
        public init(networkID: String, enableSNAT: Bool? = nil, fixedIPs: [FixedIPRequest]? = nil) {
            self.networkID = networkID; self.enableSNAT = enableSNAT; self.fixedIPs = fixedIPs
        }
    }

    public struct RouterCreate: Sendable {
        public var projectID: String
        public var name = ""
        public var description = ""
        public var adminStateUp = true
        public var gateway: GatewayRequest?
        public var tags: [String] = []
        public init(projectID: String) { self.projectID = projectID }
    }

    public struct RouterUpdate: Sendable {
        public var name: String?
        public var description: String?
        public var adminStateUp: Bool?
        /// nil: unchanged; .some(nil): the gateway is removed.
        public var gateway: GatewayRequest??
        public var routes: [HostRoute]?
        public init() {}
    }

    /// What an interface added or removed was (Neutron's `add_router_interface` answer).
    public struct RouterInterface: Sendable, Equatable {
        public var routerID: String
        public var projectID: String
        public var portID: String
        public var networkID: String
        public var subnetIDs: [String]
    }

    func routersChanged(_ ids: [String]) async {
        guard !ids.isEmpty else { return }
        await onRouterChange?(Array(Set(ids)).sorted())
    }

    // MARK: reads

    public func routers(visibleTo viewer: Viewer, ids: [String]? = nil) async throws -> [Router] {
        try await database.withConnection { sql in
            var conditions: [Table<RouterRow>.Condition] = []
            if !viewer.isAdmin { conditions.append(.equals("project_id", viewer.projectID ?? "")) }
            if let ids { conditions.append(.inList("id", ids)) }
            let routers = try await Tables.routers.all(sql, where: conditions, orderBy: "created_at").map(\.value)
            let gatewayPorts = routers.compactMap(\.gatewayPortID)
            var addresses: [String: [FixedIP]] = [:]
            if !gatewayPorts.isEmpty {
                for row in try await Tables.allocations.all(sql, where: [.inList("port_id", gatewayPorts)], orderBy: "position") {
                    addresses[row.portId, default: []].append(FixedIP(subnetID: row.subnetId, ipAddress: row.ipAddress))
                }
            }
            return routers.map { router in
                var router = router
                router.gatewayFixedIPs = router.gatewayPortID.flatMap { addresses[$0] } ?? []
                return router
            }
        }
    }

    public func router(_ id: String, visibleTo viewer: Viewer) async throws -> Router {
        guard let router = try await routers(visibleTo: viewer, ids: [id]).first else { throw NetworkingFailure.routerNotFound(id) }
        return router
    }

    /// The ports a router owns (its interfaces and its gateway).
    func routerPorts(_ id: String) async throws -> [Port] {
        try await ports(visibleTo: Viewer(projectID: nil, isAdmin: true), deviceIDs: [id])
            .filter { $0.deviceOwner == Self.interfaceOwner || $0.deviceOwner == Self.gatewayOwner }
    }

    // MARK: changes

    public func createRouter(_ request: RouterCreate) async throws -> Router {
        let time = now()
        let router = Router(id: UUID().uuidString.lowercased(), projectID: request.projectID, name: request.name,
                            description: request.description, adminStateUp: request.adminStateUp, status: "ACTIVE", gatewayNetworkID: nil,
                            gatewayPortID: nil, enableSNAT: true, routes: [], host: "", tags: request.tags, revision: 1,
                            createdAt: time, updatedAt: time)
        if let gateway = request.gateway { try await checkGateway(gateway) }
        try await database.transaction { sql in
            try await checkQuota(sql, "router", project: request.projectID, adding: 1)
            try await Tables.routers.insert(sql, RouterRow(router))
        }
        do {
            if let gateway = request.gateway { try await setGateway(router.id, gateway) }
        } catch {
            // The router is made whole or not at all.
            _ = try? await database.transaction { sql in try await Tables.routers.delete(sql, where: [.equals("id", router.id)]) }
            throw error
        }
        _ = try await scheduleRouters(hosts: try await aliveL3Hosts())
        await routersChanged([router.id])
        return try await self.router(router.id, visibleTo: Viewer(projectID: nil, isAdmin: true))
    }

    public func updateRouter(_ id: String, _ update: RouterUpdate) async throws -> Router {
        let current = try await router(id, visibleTo: Viewer(projectID: nil, isAdmin: true))
        if let routes = update.routes { try await checkRoutes(routes, router: id) }
        if case .some(.some(let gateway)) = update.gateway { try await checkGateway(gateway) }
        try await database.transaction { sql in
            guard var router = try await Tables.routers.lockedGet(sql, id: id)?.value else { throw NetworkingFailure.routerNotFound(id) }
            router.name = update.name ?? router.name
            router.description = update.description ?? router.description
            router.adminStateUp = update.adminStateUp ?? router.adminStateUp
            router.routes = update.routes ?? router.routes
            router.revision += 1
            router.updatedAt = now()
            try await Tables.routers.update(sql, id: id, RouterRow(router))
        }
        if let gateway = update.gateway {
            if let gateway {
                if gateway.networkID == current.gatewayNetworkID, gateway.fixedIPs == nil {
                    try await setSNAT(id, gateway.enableSNAT ?? true)
                } else {
                    try await setGateway(id, gateway)
                }
            } else if current.gatewayNetworkID != nil {
                try await clearGateway(id)
            }
        }
        await routersChanged([id])
        return try await router(id, visibleTo: Viewer(projectID: nil, isAdmin: true))
    }

    /// Adds or removes extra routes, leaving the others (`extraroute-atomic`).
    public func editRoutes(_ id: String, adding: [HostRoute], removing: [HostRoute]) async throws -> Router {
        let current = try await router(id, visibleTo: Viewer(projectID: nil, isAdmin: true))
        var routes = current.routes.filter { route in !removing.contains { Self.sameRoute($0, route) } }
        for route in adding where !routes.contains(where: { Self.sameRoute($0, route) }) { routes.append(route) }
        var update = RouterUpdate()
        update.routes = routes
        return try await updateRouter(id, update)
    }

    static func sameRoute(_ a: HostRoute, _ b: HostRoute) -> Bool {
        IPNetwork(a.destination, strict: false)?.description == IPNetwork(b.destination, strict: false)?.description
            && IPAddress(a.nexthop) == IPAddress(b.nexthop)
    }

    /// Each extra route's next hop must be on a subnet the router is connected to.
    func checkRoutes(_ routes: [HostRoute], router id: String) async throws {
        let ports = try await routerPorts(id)
        let subnets = try await subnets(visibleTo: Viewer(projectID: nil, isAdmin: true), ids: ports.flatMap { $0.fixedIPs.map(\.subnetID) })
        for route in routes {
            guard IPNetwork(route.destination, strict: false) != nil, let hop = IPAddress(route.nexthop) else {
                throw NetworkingFailure(400, "InvalidRoutes", "Invalid format for routes: \(route.destination) via \(route.nexthop), the destination or nexthop is malformed.")
            }
            guard subnets.contains(where: { $0.network.contains(hop) }) else {
                throw NetworkingFailure(400, "InvalidRoutes", "Invalid format for routes: [{'destination': '\(route.destination)', 'nexthop': '\(route.nexthop)'}], the nexthop is not connected with router.")
            }
            if ports.contains(where: { $0.fixedIPs.contains { IPAddress($0.ipAddress) == hop } }) {
                throw NetworkingFailure(400, "InvalidRoutes", "Invalid format for routes: [{'destination': '\(route.destination)', 'nexthop': '\(route.nexthop)'}], the nexthop is used by router.")
            }
        }
    }

    func checkGateway(_ gateway: GatewayRequest) async throws {
        let network = try await network(gateway.networkID, visibleTo: Viewer(projectID: nil, isAdmin: true))
        guard network.external else { throw NetworkingFailure.badRouter("Network \(network.id) is not an external network") }
        guard !network.subnets.isEmpty else { throw NetworkingFailure.badRouter("Network \(network.id) has no subnet to give the gateway an address") }
    }

    /// Gives the router a gateway port on `gateway`'s network (replacing any other).
    func setGateway(_ id: String, _ gateway: GatewayRequest) async throws {
        let router = try await router(id, visibleTo: Viewer(projectID: nil, isAdmin: true))
        if router.gatewayNetworkID != nil, router.gatewayNetworkID != gateway.networkID {
            try await clearGateway(id)
        } else if let old = router.gatewayPortID {
            try await deleteUnlessGone(old)
        }
        var create = PortCreate(networkID: gateway.networkID, projectID: "")
        create.deviceOwner = Self.gatewayOwner
        create.deviceID = id
        create.host = router.host
        create.fixedIPs = gateway.fixedIPs
        let port = try await createPort(create)
        do {
            try await database.transaction { sql in
                guard var row = try await Tables.routers.lockedGet(sql, id: id)?.value else { throw NetworkingFailure.routerNotFound(id) }
                row.gatewayNetworkID = gateway.networkID
                row.gatewayPortID = port.id
                row.enableSNAT = gateway.enableSNAT ?? true
                row.revision += 1
                row.updatedAt = now()
                try await Tables.routers.update(sql, id: id, RouterRow(row))
            }
        } catch {
            try? await deleteUnlessGone(port.id)
            throw error
        }
    }

    func setSNAT(_ id: String, _ enabled: Bool) async throws {
        try await database.transaction { sql in
            guard var row = try await Tables.routers.lockedGet(sql, id: id)?.value else { throw NetworkingFailure.routerNotFound(id) }
            guard row.enableSNAT != enabled else { return }
            row.enableSNAT = enabled
            row.revision += 1
            row.updatedAt = now()
            try await Tables.routers.update(sql, id: id, RouterRow(row))
        }
    }

    /// Removes the gateway; refused while floating IPs reach their ports through it.
    func clearGateway(_ id: String) async throws {
        let port = try await database.transaction { sql -> String? in
            guard var row = try await Tables.routers.lockedGet(sql, id: id)?.value else { throw NetworkingFailure.routerNotFound(id) }
            if let network = row.gatewayNetworkID,
               try await Tables.floatingIPs.first(sql, where: [.equals("router_id", id), .equals("floating_network_id", network)]) != nil {
                throw NetworkingFailure(409, "RouterExternalGatewayInUseByFloatingIp",
                                        "Gateway cannot be updated for router \(id), since a gateway to external network \(network) is required by one or more floating IPs.")
            }
            let port = row.gatewayPortID
            row.gatewayNetworkID = nil
            row.gatewayPortID = nil
            row.enableSNAT = true
            row.revision += 1
            row.updatedAt = now()
            try await Tables.routers.update(sql, id: id, RouterRow(row))
            return port
        }
        if let port { try await deleteUnlessGone(port) }
    }

    /// Deletes a router without interfaces (its gateway goes with it).
    public func deleteRouter(_ id: String) async throws {
        let router = try await router(id, visibleTo: Viewer(projectID: nil, isAdmin: true))
        let ports = try await routerPorts(id)
        if ports.contains(where: { $0.deviceOwner == Self.interfaceOwner }) {
            throw NetworkingFailure(409, "RouterInUse", "Router \(id) still has ports")
        }
        if router.gatewayNetworkID != nil { try await clearGateway(id) }
        _ = try await database.transaction { sql in
            try await Tables.routers.delete(sql, where: [.equals("id", id)])
        }
        for port in ports where port.deviceOwner == Self.gatewayOwner { try await deleteUnlessGone(port.id) }
        await routersChanged([id])
    }

    // MARK: interfaces

    /// Connects the router to a subnet (a new port holding the subnet's gateway address) or
    /// through an existing port of the project.
    public func addRouterInterface(_ id: String, subnetID: String?, portID: String?, viewer: Viewer) async throws -> RouterInterface {
        guard (subnetID == nil) != (portID == nil) else {
            throw NetworkingFailure.badRouter("Either subnet_id or port_id must be specified")
        }
        let router = try await router(id, visibleTo: Viewer(projectID: nil, isAdmin: true))
        let admin = Viewer(projectID: nil, isAdmin: true)
        let present = try await routerPorts(id).filter { $0.deviceOwner == Self.interfaceOwner }
        let presentSubnets = try await subnets(visibleTo: admin, ids: present.flatMap { $0.fixedIPs.map(\.subnetID) })
        func checkNew(_ subnet: Subnet) async throws {
            if presentSubnets.contains(where: { $0.id == subnet.id }) {
                throw NetworkingFailure.badRouter("Router already has a port on subnet \(subnet.id)")
            }
            for other in presentSubnets where other.ipVersion == subnet.ipVersion && (other.network.overlaps(subnet.network)) {
                throw NetworkingFailure.badRouter("Cidr \(subnet.cidr) of subnet \(subnet.id) overlaps with cidr \(other.cidr) of subnet \(other.id)")
            }
            let network = try await network(subnet.networkID, visibleTo: admin)
            if network.external {
                throw NetworkingFailure.badRouter("Router interface cannot be added on external network \(network.id); set it as the gateway instead")
            }
        }
        let port: Port
        if let subnetID {
            let subnet = try await subnet(subnetID, visibleTo: viewer)
            guard let gateway = subnet.gatewayIP else {
                throw NetworkingFailure.badRouter("Subnet for router interface must have a gateway IP")
            }
            try await checkNew(subnet)
            let routed = try await ports(visibleTo: admin, networkIDs: [subnet.networkID])
                .first { $0.deviceOwner == Self.interfaceOwner && $0.fixedIPs.contains { $0.subnetID == subnet.id } }
            if let routed {
                throw NetworkingFailure.badRouter("Subnet \(subnet.id) is already routed by router \(routed.deviceID)")
            }
            var create = PortCreate(networkID: subnet.networkID, projectID: router.projectID)
            create.deviceOwner = Self.interfaceOwner
            create.deviceID = id
            create.host = router.host
            create.fixedIPs = [FixedIPRequest(subnetID: subnet.id, ipAddress: gateway)]
            port = try await createPort(create)
        } else {
            let existing = try await self.port(portID!, visibleTo: viewer)
            guard existing.deviceID.isEmpty, existing.deviceOwner.isEmpty else {
                throw NetworkingFailure(409, "PortInUse", "Unable to complete operation on port \(existing.id) for network \(existing.networkID). Port already has an attached device \(existing.deviceID).")
            }
            guard !existing.fixedIPs.isEmpty else { throw NetworkingFailure.badRouter("Router port must have at least one fixed IP") }
            for subnet in try await subnets(visibleTo: admin, ids: existing.fixedIPs.map(\.subnetID)) { try await checkNew(subnet) }
            var update = PortUpdate()
            update.deviceOwner = Self.interfaceOwner
            update.deviceID = id
            update.host = router.host
            update.securityGroups = []
            update.portSecurityEnabled = false
            port = try await updatePort(existing.id, update)
        }
        await routersChanged([id])
        return RouterInterface(routerID: id, projectID: router.projectID, portID: port.id, networkID: port.networkID,
                               subnetIDs: port.fixedIPs.map(\.subnetID))
    }

    /// Disconnects the router from a subnet or removes one of its interface ports.
    public func removeRouterInterface(_ id: String, subnetID: String?, portID: String?) async throws -> RouterInterface {
        guard subnetID != nil || portID != nil else { throw NetworkingFailure.badRouter("Either subnet_id or port_id must be specified") }
        let router = try await router(id, visibleTo: Viewer(projectID: nil, isAdmin: true))
        let interfaces = try await routerPorts(id).filter { $0.deviceOwner == Self.interfaceOwner }
        let port: Port
        if let portID {
            guard let found = interfaces.first(where: { $0.id == portID }) else {
                throw NetworkingFailure(404, "RouterInterfaceNotFound", "Router \(id) does not have an interface with id \(portID)")
            }
            if let subnetID, !found.fixedIPs.contains(where: { $0.subnetID == subnetID }) {
                throw NetworkingFailure(409, "SubnetMismatchForPort", "Subnet \(subnetID) does not match the subnet of port \(portID)")
            }
            port = found
        } else {
            guard let found = interfaces.first(where: { $0.fixedIPs.contains { $0.subnetID == subnetID! } }) else {
                throw NetworkingFailure(404, "RouterInterfaceNotFoundForSubnet", "Router \(id) has no interface on subnet \(subnetID!)")
            }
            port = found
        }
        let subnets = Set(port.fixedIPs.map(\.subnetID))
        let floating = try await floatingIPs(visibleTo: Viewer(projectID: nil, isAdmin: true)).filter { $0.routerID == id }
        let fixedInUse = try await ports(visibleTo: Viewer(projectID: nil, isAdmin: true), ids: floating.compactMap(\.portID)
                                             + floating.flatMap { $0.portForwardings.map(\.internalPortID) })
        for used in fixedInUse where used.fixedIPs.contains(where: { subnets.contains($0.subnetID) }) {
            throw NetworkingFailure(409, "RouterInterfaceInUseByFloatingIP",
                                    "Router interface for subnet \(subnets.sorted().joined(separator: ", ")) on router \(id) cannot be deleted, as it is required by one or more floating IPs.")
        }
        _ = try await deletePort(port.id)
        await routersChanged([id])
        return RouterInterface(routerID: id, projectID: router.projectID, portID: port.id, networkID: port.networkID, subnetIDs: port.fixedIPs.map(\.subnetID))
    }

    // MARK: scheduling

    /// The hosts whose L3 agent is alive now.
    public func aliveL3Hosts() async throws -> [String] {
        try await hosts.services { $0.binary == Self.l3Agent }.filter(\.up).map(\.host).sorted()
    }

    /// Gives every router without a live host the least loaded of `alive`, and moves its ports
    /// there (the L2 agent of that host wires their networks). Returns the routers moved.
    public func scheduleRouters(hosts alive: [String]) async throws -> [String] {
        try await routerScheduling.run { try await scheduleRoutersNow(hosts: alive) }
    }

    func scheduleRoutersNow(hosts alive: [String]) async throws -> [String] {
        guard !alive.isEmpty else { return [] }
        let routers = try await routers(visibleTo: Viewer(projectID: nil, isAdmin: true))
        var load = Dictionary(uniqueKeysWithValues: alive.map { ($0, 0) })
        for router in routers where load[router.host] != nil { load[router.host]! += 1 }
        var moved: [String] = []
        for router in routers where !alive.contains(router.host) {
            guard let host = load.min(by: { ($0.value, $0.key) < ($1.value, $1.key) })?.key else { break }
            try await database.transaction { sql in
                guard var row = try await Tables.routers.lockedGet(sql, id: router.id)?.value, row.host == router.host else { return }
                row.host = host
                try await Tables.routers.update(sql, id: router.id, RouterRow(row))
            }
            for port in try await routerPorts(router.id) where port.host != host {
                var update = PortUpdate()
                update.host = host
                _ = try await updatePort(port.id, update)
            }
            load[host]! += 1
            moved.append(router.id)
        }
        if !moved.isEmpty { await routersChanged(moved) }
        return moved
    }

    // MARK: what nodes run

    /// The routers scheduled on `host`, each with everything its namespace needs.
    public func hostRouters(host: String) async throws -> HostRouters.Result {
        let admin = Viewer(projectID: nil, isAdmin: true)
        let routers = try await routers(visibleTo: admin).filter { $0.host == host }
        guard !routers.isEmpty else { return HostRouters.Result(routers: []) }
        let ports = try await ports(visibleTo: admin, deviceIDs: routers.map(\.id))
        let networks = Dictionary(uniqueKeysWithValues: try await networks(visibleTo: admin, ids: Array(Set(ports.map(\.networkID))))
            .map { ($0.id, $0) })
        let subnets = Dictionary(grouping: try await subnets(visibleTo: admin, networkIDs: Array(networks.keys)), by: \.networkID)
        let floating = try await floatingIPs(visibleTo: admin).filter { $0.routerID.map { id in routers.contains { $0.id == id } } ?? false }
        // Guests behind each router: compute ports on its interfaces' networks, for metadata.
        let guestPorts = try await self.ports(visibleTo: admin, networkIDs: Array(Set(ports.filter { $0.deviceOwner == Self.interfaceOwner }.map(\.networkID))))
            .filter { $0.deviceOwner.hasPrefix("compute:") && !$0.deviceID.isEmpty }
        func state(_ port: Port) -> RouterPortState? {
            guard let network = networks[port.networkID] else { return nil }
            return RouterPortState(port: Self.wiring(port), network: wiring(network),
                                   subnets: (subnets[network.id] ?? []).filter { subnet in port.fixedIPs.contains { $0.subnetID == subnet.id } }
                                       .map(Self.wiring))
        }
        let states = routers.map { router -> RouterState in
            let own = ports.filter { $0.deviceID == router.id }
            let interfaces = own.filter { $0.deviceOwner == Self.interfaceOwner }.compactMap(state)
            let gateway = own.first { $0.deviceOwner == Self.gatewayOwner && $0.id == router.gatewayPortID }.flatMap(state)
            let mine = floating.filter { $0.routerID == router.id }
            let interfaceNetworks = Set(interfaces.map(\.network.id))
            let guests = guestPorts.filter { interfaceNetworks.contains($0.networkID) }.flatMap { port in
                port.fixedIPs.map { RouterGuest(address: $0.ipAddress, instanceID: port.deviceID, projectID: port.projectID) }
            }
            return RouterState(
                id: router.id, adminStateUp: router.adminStateUp, gateway: gateway, enableSNAT: router.enableSNAT, interfaces: interfaces,
                routes: router.routes.map { SubnetWiring.Route(destination: $0.destination, nexthop: $0.nexthop) },
                floatingIPs: mine.compactMap { fip in
                    guard let fixed = fip.fixedIPAddress, fip.portID != nil else { return nil }
                    return FloatingIPState(id: fip.id, address: fip.floatingIPAddress, fixedAddress: fixed)
                },
                portForwardings: mine.flatMap { fip in
                    fip.portForwardings.map {
                        PortForwardingState(id: $0.id, floatingAddress: fip.floatingIPAddress, protocol: $0.protocol, externalPort: $0.externalPort,
                                            internalAddress: $0.internalIPAddress, internalPort: $0.internalPort)
                    }
                },
                guests: guests)
        }
        return HostRouters.Result(routers: states)
    }

    /// The node's word on floating IPs it made answer (or could not).
    public func floatingIPsStatus(host: String, active: [String], down: [String]) async throws {
        try await database.transaction { sql in
            for (ids, status) in [(active, "ACTIVE"), (down, "DOWN")] where !ids.isEmpty {
                try await sql.raw("""
                    UPDATE floating_ips SET status = \(bind: status) WHERE id IN (\(binds: ids)) AND status <> \(bind: status)
                      AND router_id IN (SELECT id FROM routers WHERE host = \(bind: host))
                    """).run()
            }
        }
    }
}
