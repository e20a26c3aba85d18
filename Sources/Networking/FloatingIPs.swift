import Contracts
import Foundation
import PetrelCore
import SQLKit
import Store

/// A floating IP: an address of an external network (held by a port the cloud owns) that a
/// router translates to a fixed address of a project port, one to one.
public struct FloatingIP: Sendable, Equatable {
    public var id: String
    public var projectID: String
    public var description: String
    public var floatingNetworkID: String
    public var floatingIPAddress: String
    public var floatingPortID: String
    public var portID: String?
    public var fixedIPAddress: String?
    public var routerID: String?
    /// DOWN until the node running its router has made it answer.
    public var status: String
    public var dnsName: String
    public var dnsDomain: String
    public var tags: [String]
    public var revision: Int
    public var createdAt: Int64
    public var updatedAt: Int64
    /// Filled by the reads.
    public var portForwardings: [PortForwarding] = []
}

/// One external port of a floating IP forwarded to a port of an internal address.
public struct PortForwarding: Sendable, Equatable {
    public var id: String
    public var floatingIPID: String
    public var internalPortID: String
    public var internalIPAddress: String
    public var internalPort: Int
    public var externalPort: Int
    public var `protocol`: String
    public var description: String
}

struct FloatingIPRow: Codable, Sendable {
    var id: String
    var projectId: String
    var description: String
    var floatingNetworkId: String
    var floatingIpAddress: String
    var floatingPortId: String
    var portId: String?
    var fixedIpAddress: String?
    var routerId: String?
    var status: String
    var dnsName: String
    var dnsDomain: String
    var tags: String
    var revisionNumber: Int
    var createdAt: Int64
    var updatedAt: Int64

    init(_ fip: FloatingIP) {
        id = fip.id; projectId = fip.projectID; description = fip.description; floatingNetworkId = fip.floatingNetworkID
        floatingIpAddress = fip.floatingIPAddress; floatingPortId = fip.floatingPortID; portId = fip.portID; fixedIpAddress = fip.fixedIPAddress
        routerId = fip.routerID; status = fip.status; dnsName = fip.dnsName; dnsDomain = fip.dnsDomain; tags = Column.encode(fip.tags)
        revisionNumber = fip.revision; createdAt = fip.createdAt; updatedAt = fip.updatedAt
    }

    var value: FloatingIP {
        FloatingIP(id: id, projectID: projectId, description: description, floatingNetworkID: floatingNetworkId,
                   floatingIPAddress: floatingIpAddress, floatingPortID: floatingPortId, portID: portId, fixedIPAddress: fixedIpAddress,
                   routerID: routerId, status: status, dnsName: dnsName, dnsDomain: dnsDomain, tags: Column.decode([String].self, tags, default: []),
                   revision: revisionNumber, createdAt: createdAt, updatedAt: updatedAt)
    }
}

struct PortForwardingRow: Codable, Sendable {
    var id: String
    var floatingipId: String
    var internalPortId: String
    var internalIpAddress: String
    var internalPort: Int
    var externalPort: Int
    var `protocol`: String
    var description: String

    init(_ forwarding: PortForwarding) {
        id = forwarding.id; floatingipId = forwarding.floatingIPID; internalPortId = forwarding.internalPortID
        internalIpAddress = forwarding.internalIPAddress; internalPort = forwarding.internalPort; externalPort = forwarding.externalPort
        self.protocol = forwarding.protocol; description = forwarding.description
    }

    var value: PortForwarding {
        PortForwarding(id: id, floatingIPID: floatingipId, internalPortID: internalPortId, internalIPAddress: internalIpAddress,
                       internalPort: internalPort, externalPort: externalPort, protocol: self.protocol, description: description)
    }
}

extension Tables {
    static let floatingIPs = Table<FloatingIPRow>("floating_ips")
    static let portForwardings = Table<PortForwardingRow>("port_forwardings")
}

extension NetworkingFailure {
    public static func floatingIPNotFound(_ id: String) -> NetworkingFailure {
        NetworkingFailure(404, "FloatingIPNotFound", "Floating IP \(id) could not be found")
    }
    public static func portForwardingNotFound(_ id: String) -> NetworkingFailure {
        NetworkingFailure(404, "PortForwardingNotFound", "Port Forwarding \(id) could not be found.")
    }
}

/// Floating IPs and their port forwardings (`floatingip`, `floating-ip-port-forwarding`).
/// Every change tells the node running the router concerned.
extension NetworkService {
    public struct FloatingIPCreate: Sendable {
        public var projectID: String
        public var networkID: String
        public var subnetID: String?
        public var address: String?
        public var portID: String?
        public var fixedIPAddress: String?
        public var description = ""
        public var dnsName = ""
        public var dnsDomain = ""
        public var tags: [String] = []
        public init(projectID: String, networkID: String) { self.projectID = projectID; self.networkID = networkID }
    }

    public struct PortForwardingCreate: Sendable {
        public var internalPortID: String
        public var internalIPAddress: String?
        public var internalPort: Int
        public var externalPort: Int
        public var `protocol`: String
        public var description = ""
        public init(internalPortID: String, internalIPAddress: String?, internalPort: Int, externalPort: Int, protocol: String) {
            self.internalPortID = internalPortID; self.internalIPAddress = internalIPAddress; self.internalPort = internalPort
            self.externalPort = externalPort; self.protocol = `protocol`
        }
    }

    public func floatingIPs(visibleTo viewer: Viewer, ids: [String]? = nil, portIDs: [String]? = nil) async throws -> [FloatingIP] {
        try await database.withConnection { sql in
            var conditions: [Table<FloatingIPRow>.Condition] = []
            if !viewer.isAdmin { conditions.append(.equals("project_id", viewer.projectID ?? "")) }
            if let ids { conditions.append(.inList("id", ids)) }
            if let portIDs { conditions.append(.inList("port_id", portIDs)) }
            let fips = try await Tables.floatingIPs.all(sql, where: conditions, orderBy: "created_at").map(\.value)
            guard !fips.isEmpty else { return [] }
            let forwardings = Dictionary(grouping: try await Tables.portForwardings.all(sql, where: [.inList("floatingip_id", fips.map(\.id))])
                .map(\.value), by: \.floatingIPID)
            return fips.map { fip in
                var fip = fip
                fip.portForwardings = (forwardings[fip.id] ?? []).sorted { ($0.protocol, $0.externalPort) < ($1.protocol, $1.externalPort) }
                return fip
            }
        }
    }

    public func floatingIP(_ id: String, visibleTo viewer: Viewer) async throws -> FloatingIP {
        guard let fip = try await floatingIPs(visibleTo: viewer, ids: [id]).first else { throw NetworkingFailure.floatingIPNotFound(id) }
        return fip
    }

    /// The router that connects `fixed` (an address of a port on `networkID`) to the external
    /// network `external`: one with an interface on the address's subnet and its gateway there.
    func routerReaching(external: String, fixed: String, portNetwork: String) async throws -> String {
        let admin = Viewer(projectID: nil, isAdmin: true)
        guard let address = IPAddress(fixed),
              let subnet = try await subnets(visibleTo: admin, networkIDs: [portNetwork]).first(where: { $0.network.contains(address) }) else {
            throw NetworkingFailure.invalid("IP address \(fixed) is not on any subnet of network \(portNetwork)")
        }
        let interfaces = try await ports(visibleTo: admin, networkIDs: [portNetwork])
            .filter { $0.deviceOwner == Self.interfaceOwner && $0.fixedIPs.contains { $0.subnetID == subnet.id } }
        let routers = try await routers(visibleTo: admin, ids: interfaces.map(\.deviceID))
        guard let router = routers.first(where: { $0.gatewayNetworkID == external }) else {
            throw NetworkingFailure(404, "ExternalGatewayForFloatingIPNotFound",
                                    "External network \(external) is not reachable from subnet \(subnet.id).  Therefore, cannot associate Port with a Floating IP.")
        }
        return router.id
    }

    /// Which fixed address of `port` a floating IP takes: the one named, or its first IPv4 one.
    func fixedAddress(of port: Port, requested: String?) throws -> String {
        if let requested {
            guard let address = IPAddress(requested), port.fixedIPs.contains(where: { IPAddress($0.ipAddress) == address }) else {
                throw NetworkingFailure.badRequest("Bad floatingip request: Port \(port.id) does not have fixed ip \(requested).")
            }
            return address.description
        }
        guard let first = port.fixedIPs.first(where: { IPAddress($0.ipAddress)?.version == 4 }) else {
            throw NetworkingFailure.badRequest("Bad floatingip request: Port \(port.id) does not have any IPv4 address to associate with a floating IP.")
        }
        return first.ipAddress
    }

    /// Where a floating IP would point: (port, fixed address, router), checked.
    func association(external: String, portID: String, fixed: String?, project: String, viewer: Viewer, exclude: String?) async throws
        -> (port: String, fixed: String, router: String) {
        let port = try await self.port(portID, visibleTo: viewer)
        if port.deviceOwner.hasPrefix("network:") {
            throw NetworkingFailure.badRequest("Bad floatingip request: Port \(port.id) is a network port (\(port.deviceOwner)) and cannot have a floating IP.")
        }
        let address = try fixedAddress(of: port, requested: fixed)
        let router = try await routerReaching(external: external, fixed: address, portNetwork: port.networkID)
        let taken = try await database.withConnection { sql in
            try await Tables.floatingIPs.first(sql, where: [.equals("port_id", port.id), .equals("fixed_ip_address", address)])
        }
        if let taken, taken.id != exclude {
            throw NetworkingFailure(409, "FloatingIPPortAlreadyAssociated",
                                    "Cannot associate floating IP \(taken.floatingIpAddress) (\(taken.id)) with port \(port.id) using fixed IP \(address), as that fixed IP already has a floating IP on external network \(external).")
        }
        return (port.id, address, router)
    }

    public func createFloatingIP(_ request: FloatingIPCreate, viewer: Viewer) async throws -> FloatingIP {
        let admin = Viewer(projectID: nil, isAdmin: true)
        let network: Network
        do { network = try await self.network(request.networkID, visibleTo: admin) } catch {
            throw NetworkingFailure.networkNotFound(request.networkID)
        }
        guard network.external else {
            throw NetworkingFailure.badRequest("Bad floatingip request: Network \(network.id) is not a valid external network.")
        }
        if let subnet = request.subnetID, !network.subnets.contains(subnet) {
            throw NetworkingFailure.badRequest("Bad floatingip request: Subnet \(subnet) is not on network \(network.id).")
        }
        let id = UUID().uuidString.lowercased()
        var association: (port: String, fixed: String, router: String)?
        if let portID = request.portID {
            association = try await self.association(external: network.id, portID: portID, fixed: request.fixedIPAddress, project: request.projectID,
                                                     viewer: viewer, exclude: nil)
        }
        try await database.withConnection { sql in try await checkQuota(sql, "floatingip", project: request.projectID, adding: 1) }
        var create = PortCreate(networkID: network.id, projectID: "")
        create.deviceOwner = Self.floatingIPOwner
        create.deviceID = id
        if request.subnetID != nil || request.address != nil {
            create.fixedIPs = [FixedIPRequest(subnetID: request.subnetID, ipAddress: request.address)]
        } else {
            // One IPv4 address: a floating IP is IPv4 (an IPv6 subnet beside it is not used).
            guard let subnet = try await subnets(visibleTo: admin, networkIDs: [network.id]).first(where: { $0.ipVersion == 4 }) else {
                throw NetworkingFailure.badRequest("Bad floatingip request: Network \(network.id) has no IPv4 subnet.")
            }
            create.fixedIPs = [FixedIPRequest(subnetID: subnet.id)]
        }
        let port = try await createPort(create)
        guard let address = port.fixedIPs.first?.ipAddress else {
            try? await deleteUnlessGone(port.id)
            throw NetworkingFailure(409, "IpAddressGenerationFailure", "No more IP addresses available on network \(network.id).")
        }
        let time = now()
        let fip = FloatingIP(id: id, projectID: request.projectID, description: request.description, floatingNetworkID: network.id,
                             floatingIPAddress: address, floatingPortID: port.id, portID: association?.port,
                             fixedIPAddress: association?.fixed, routerID: association?.router, status: "DOWN", dnsName: request.dnsName,
                             dnsDomain: request.dnsDomain, tags: request.tags, revision: 1, createdAt: time, updatedAt: time)
        do {
            try await database.transaction { sql in
                try await checkQuota(sql, "floatingip", project: request.projectID, adding: 1)
                try await Tables.floatingIPs.insert(sql, FloatingIPRow(fip))
            }
        } catch {
            try? await deleteUnlessGone(port.id)
            if DatabaseError.isUniqueViolation(error) || error is DuplicateRowError {
                throw NetworkingFailure(409, "FloatingIPPortAlreadyAssociated", "The fixed IP \(association?.fixed ?? "") already has a floating IP.")
            }
            throw error
        }
        if let router = fip.routerID { await routersChanged([router]) }
        return try await floatingIP(id, visibleTo: admin)
    }

    /// Associates (port given), moves, or disassociates (nil) a floating IP; changes its description.
    public func updateFloatingIP(_ id: String, portID: String??, fixedIPAddress: String?, description: String?, viewer: Viewer) async throws -> FloatingIP {
        let admin = Viewer(projectID: nil, isAdmin: true)
        let current = try await floatingIP(id, visibleTo: admin)
        var association: (port: String, fixed: String, router: String)??
        if let portID {
            if let portID {
                if !current.portForwardings.isEmpty {
                    throw NetworkingFailure(409, "FipInUseByPortForwarding",
                                            "Floating IP \(id) has port forwardings; it cannot be associated with a port.")
                }
                association = .some(try await self.association(external: current.floatingNetworkID, portID: portID, fixed: fixedIPAddress,
                                                               project: current.projectID, viewer: viewer, exclude: id))
            } else {
                association = .some(nil)
            }
        }
        let chosen = association
        do {
            try await database.transaction { sql in
                guard var fip = try await Tables.floatingIPs.lockedGet(sql, id: id)?.value else { throw NetworkingFailure.floatingIPNotFound(id) }
                if let association = chosen {
                    fip.portID = association?.port
                    fip.fixedIPAddress = association?.fixed
                    fip.routerID = association?.router ?? (current.portForwardings.isEmpty ? nil : fip.routerID)
                    fip.status = "DOWN"
                }
                fip.description = description ?? fip.description
                fip.revision += 1
                fip.updatedAt = now()
                try await Tables.floatingIPs.update(sql, id: id, FloatingIPRow(fip))
            }
        } catch where DatabaseError.isUniqueViolation(error) || error is DuplicateRowError {
            throw NetworkingFailure(409, "FloatingIPPortAlreadyAssociated", "The fixed IP already has a floating IP.")
        }
        let routers = [current.routerID, association??.router].compactMap { $0 }
        await routersChanged(routers)
        return try await floatingIP(id, visibleTo: admin)
    }

    public func deleteFloatingIP(_ id: String) async throws {
        let fip = try await floatingIP(id, visibleTo: Viewer(projectID: nil, isAdmin: true))
        try await database.transaction { sql in
            try await Tables.portForwardings.delete(sql, where: [.equals("floatingip_id", id)])
            try await Tables.floatingIPs.delete(sql, where: [.equals("id", id)])
        }
        try await deleteUnlessGone(fip.floatingPortID)
        if let router = fip.routerID { await routersChanged([router]) }
    }

    /// A port goes away (in the caller's transaction): its floating IPs let go of it and its
    /// port forwardings go. Returns the routers concerned.
    func releaseFloatingIPs(_ sql: any SQLDatabase, port id: String) async throws -> [String] {
        let fips = try await Tables.floatingIPs.all(sql, where: [.equals("port_id", id)]).map(\.value)
        let forwarded = try await Tables.portForwardings.all(sql, where: [.equals("internal_port_id", id)]).map(\.value)
        var routers = Set(fips.compactMap(\.routerID))
        for var fip in fips {
            fip.portID = nil
            fip.fixedIPAddress = nil
            fip.routerID = nil
            fip.status = "DOWN"
            fip.revision += 1
            fip.updatedAt = now()
            try await Tables.floatingIPs.update(sql, id: fip.id, FloatingIPRow(fip))
        }
        try await Tables.portForwardings.delete(sql, where: [.equals("internal_port_id", id)])
        for forwarding in forwarded {
            guard var fip = try await Tables.floatingIPs.get(sql, id: forwarding.floatingIPID)?.value else { continue }
            if let router = fip.routerID { routers.insert(router) }
            let left = try await Tables.portForwardings.all(sql, where: [.equals("floatingip_id", fip.id)])
            if left.isEmpty, fip.portID == nil {
                fip.routerID = nil
                try await Tables.floatingIPs.update(sql, id: fip.id, FloatingIPRow(fip))
            }
        }
        return routers.sorted()
    }

    // MARK: port forwardings

    public static let forwardingProtocols = ["tcp", "udp"]

    public func createPortForwarding(_ fipID: String, _ request: PortForwardingCreate, viewer: Viewer) async throws -> PortForwarding {
        let fip = try await floatingIP(fipID, visibleTo: Viewer(projectID: nil, isAdmin: true))
        guard Self.forwardingProtocols.contains(request.protocol) else {
            throw NetworkingFailure.invalid("'\(request.protocol)' is not in ['tcp', 'udp']")
        }
        for (name, value) in [("internal_port", request.internalPort), ("external_port", request.externalPort)] where !(1...65535).contains(value) {
            throw NetworkingFailure.invalid("Invalid value for \(name): \(value) is not in the range 1 to 65535")
        }
        if fip.portID != nil {
            throw NetworkingFailure(409, "FipInUseByPortAssociation", "Floating IP \(fipID) is associated with a port; it cannot have port forwardings.")
        }
        let target = try await association(external: fip.floatingNetworkID, portID: request.internalPortID, fixed: request.internalIPAddress,
                                           project: fip.projectID, viewer: viewer, exclude: nil)
        if let router = fip.routerID, router != target.router, !fip.portForwardings.isEmpty {
            throw NetworkingFailure.badRequest("Bad port forwarding request: the internal port is behind another router than the floating IP's other forwardings.")
        }
        let forwarding = PortForwarding(id: UUID().uuidString.lowercased(), floatingIPID: fipID, internalPortID: target.port,
                                        internalIPAddress: target.fixed, internalPort: request.internalPort, externalPort: request.externalPort,
                                        protocol: request.protocol, description: request.description)
        do {
            try await database.transaction { sql in
                guard var row = try await Tables.floatingIPs.lockedGet(sql, id: fipID)?.value else { throw NetworkingFailure.floatingIPNotFound(fipID) }
                try await Tables.portForwardings.insert(sql, PortForwardingRow(forwarding))
                row.routerID = target.router
                row.revision += 1
                row.updatedAt = now()
                try await Tables.floatingIPs.update(sql, id: fipID, FloatingIPRow(row))
            }
        } catch where DatabaseError.isUniqueViolation(error) || error is DuplicateRowError {
            throw NetworkingFailure.badRequest("Bad port forwarding request: A duplicate port forwarding entry with same attributes already exists, conflicting values are {'floatingip_id': '\(fipID)', 'external_port': \(request.externalPort), 'protocol': '\(request.protocol)'}.")
        }
        await routersChanged([target.router])
        return forwarding
    }

    public func updatePortForwarding(_ fipID: String, _ id: String, internalPort: Int?, externalPort: Int?, description: String?) async throws -> PortForwarding {
        for value in [internalPort, externalPort].compactMap({ $0 }) where !(1...65535).contains(value) {
            throw NetworkingFailure.invalid("Invalid value for port: \(value) is not in the range 1 to 65535")
        }
        let updated = try await database.transaction { sql -> PortForwarding in
            guard var forwarding = try await Tables.portForwardings.get(sql, id: id)?.value, forwarding.floatingIPID == fipID else {
                throw NetworkingFailure.portForwardingNotFound(id)
            }
            forwarding.internalPort = internalPort ?? forwarding.internalPort
            forwarding.externalPort = externalPort ?? forwarding.externalPort
            forwarding.description = description ?? forwarding.description
            try await Tables.portForwardings.update(sql, id: id, PortForwardingRow(forwarding))
            return forwarding
        }
        if let router = try await floatingIP(fipID, visibleTo: Viewer(projectID: nil, isAdmin: true)).routerID { await routersChanged([router]) }
        return updated
    }

    public func deletePortForwarding(_ fipID: String, _ id: String) async throws {
        let router = try await database.transaction { sql -> String? in
            guard let forwarding = try await Tables.portForwardings.get(sql, id: id)?.value, forwarding.floatingIPID == fipID else {
                throw NetworkingFailure.portForwardingNotFound(id)
            }
            try await Tables.portForwardings.delete(sql, where: [.equals("id", id)])
            guard var fip = try await Tables.floatingIPs.lockedGet(sql, id: fipID)?.value else { return nil }
            let router = fip.routerID
            if fip.portID == nil, try await Tables.portForwardings.all(sql, where: [.equals("floatingip_id", fipID)]).isEmpty {
                fip.routerID = nil
                try await Tables.floatingIPs.update(sql, id: fipID, FloatingIPRow(fip))
            }
            return router
        }
        if let router { await routersChanged([router]) }
    }
}
