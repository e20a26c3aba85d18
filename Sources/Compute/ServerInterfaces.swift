import Contracts
import Foundation
import Networking
import SQLKit
import Store

/// What `POST /servers/{id}/os-interface` asks for: a network (a port is made on it, with an
/// address if one is given) or a port the user made.
public struct InterfaceRequest: Sendable, Equatable {
    public var networkID: String?
    public var portID: String?
    public var fixedIP: String?

    public init(networkID: String? = nil, portID: String? = nil, fixedIP: String? = nil) {
        self.networkID = networkID; self.portID = portID; self.fixedIP = fixedIP
    }
}

/// Nova's os-interface: the server's ports, hot-plugged and unplugged on its host.
extension Servers {
    /// The VM states Nova attaches and detaches interfaces in.
    static let interfaceStates: Set<VMState> = [.active, .paused, .stopped]

    /// The server and its host, when it may have an interface attached or detached now.
    func interfaceTarget(_ id: String, by caller: ServerCaller, action: String) async throws -> (InstanceRow, String) {
        let row = try await get(id, by: caller).row
        guard let state = row.vm, Self.interfaceStates.contains(state), row.taskState == nil, let host = row.host else {
            throw Self.stateConflict(action, row)
        }
        return (row, host)
    }

    /// The server's ports, in the order its NICs have: as asked at create, then as attached.
    func orderedPorts(_ row: InstanceRow) async throws -> [Networking.Port] {
        guard let networking else { return [] }
        let ports = try await networking.ports(visibleTo: Self.admin, deviceIDs: [row.id])
        let order = requested(row).compactMap(\.portID)
        func rank(_ port: Networking.Port) -> Int { order.firstIndex(of: port.id) ?? Int.max }
        return ports.sorted { rank($0) != rank($1) ? rank($0) < rank($1) : $0.createdAt < $1.createdAt }
    }

    /// The server's interfaces (`GET /servers/{id}/os-interface`).
    public func interfaces(_ id: String, by caller: ServerCaller) async throws -> [Networking.Port] {
        try await orderedPorts(try await get(id, by: caller).row)
    }

    /// The NIC a node plugs for a port.
    func nic(_ port: Networking.Port) async throws -> InstanceSpec.NIC {
        let mtu = try await networking?.networks(visibleTo: Self.admin, ids: [port.networkID]).first?.mtu ?? 1500
        return InstanceSpec.NIC(portID: port.id, networkID: port.networkID, macAddress: port.macAddress, mtu: mtu, vifType: port.vifType)
    }

    /// The first half of an attach: the port made on the network (or the user's port bound),
    /// bound to the server's host and recorded among its networks. Neutron's refusals
    /// (no address left, a port in use) come as `NetworkingFailure`, and change nothing.
    func bindInterface(_ id: String, _ request: InterfaceRequest, by caller: ServerCaller)
        async throws -> (port: Networking.Port, nic: InstanceSpec.NIC, host: String) {
        guard let networking else { throw NetworkingFailure.networkNotFound(request.networkID ?? request.portID ?? "") }
        let (row, host) = try await interfaceTarget(id, by: caller, action: "attach_interface")
        let viewer = Viewer(projectID: caller.projectID, isAdmin: caller.isAdmin)
        let owner = "compute:" + (row.availabilityZone ?? defaultAvailabilityZone)
        let entry: RequestedNetwork
        let port: Networking.Port
        if let portID = request.portID {
            let existing = try await networking.port(portID, visibleTo: viewer)
            guard existing.deviceID.isEmpty else { throw NetworkingFailure(409, "PortInUse", "Port \(portID) is still in use.") }
            var update = NetworkService.PortUpdate()
            update.host = host
            update.deviceID = id
            update.deviceOwner = owner
            port = try await networking.updatePort(portID, update)
            entry = RequestedNetwork(portID: portID)
        } else if let networkID = request.networkID {
            _ = try await networking.network(networkID, visibleTo: viewer)
            var create = NetworkService.PortCreate(networkID: networkID, projectID: row.projectID)
            create.deviceID = id
            create.deviceOwner = owner
            create.host = host
            create.fixedIPs = request.fixedIP.map { [NetworkService.FixedIPRequest(ipAddress: $0)] }
            port = try await networking.createPort(create)
            entry = RequestedNetwork(networkID: networkID, portID: port.id, fixedIP: request.fixedIP, created: true)
        } else {
            throw Failure.badRequest("A network or a port must be given to attach an interface.")
        }
        do {
            guard port.vifType != "binding_failed" else {
                throw NetworkingFailure(400, "PortBindingFailed",
                                        "Binding failed for port \(port.id), please check neutron logs for more information.")
            }
            try await change(id, by: Self.adminCaller) { server in
                var requested = JSONColumn.decode(server.row.requestedNetworks, fallback: [RequestedNetwork]())
                requested.removeAll { $0.portID == entry.portID }
                requested.append(entry)
                server.row.requestedNetworks = JSONColumn.encode(requested, fallback: "[]")
            }
            return (port, try await nic(port), host)
        } catch {
            await releaseInterface(id, port, created: entry.created)
            throw error
        }
    }

    /// The end of a detach (or the undo of a failed attach): the port goes if Nova made it,
    /// is unbound if the user did, and leaves the server's networks.
    func releaseInterface(_ id: String, _ port: Networking.Port, created: Bool) async {
        guard let networking else { return }
        do {
            if created {
                _ = try await networking.deletePort(port.id)
            } else {
                var update = NetworkService.PortUpdate()
                update.host = ""
                update.deviceID = ""
                update.deviceOwner = ""
                _ = try await networking.updatePort(port.id, update)
            }
            try await change(id, by: Self.adminCaller) { server in
                var requested = JSONColumn.decode(server.row.requestedNetworks, fallback: [RequestedNetwork]())
                requested.removeAll { $0.portID == port.id }
                server.row.requestedNetworks = JSONColumn.encode(requested, fallback: "[]")
            }
        } catch {
            // Left for an operator (or the server's delete): the port keeps the server as its device.
            return
        }
    }

    /// Whether Nova made the port (it then goes with the interface), from the server's networks;
    /// a port they do not record was given to the server by hand, and is only unbound.
    func madeByNova(_ row: InstanceRow, _ port: Networking.Port) -> Bool {
        requested(row).first { $0.portID == port.id }?.created ?? false
    }

    static let adminCaller = ServerCaller(projectID: "", userID: "", isAdmin: true)
}

extension Conductor {
    /// Hot-plugs an interface (Nova's `attach_interface`): the port is made or bound on the
    /// server's host, then the host wires its network and adds the NIC to the guest. If the
    /// host cannot, the port is undone and the attach fails with Nova's 500.
    public func attachInterface(_ id: String, _ request: InterfaceRequest, by caller: ServerCaller, context: RequestContext)
        async throws -> Networking.Port {
        let (port, nic, host) = try await servers.bindInterface(id, request, by: caller)
        do {
            _ = try await client.call(AttachInterface.self, .init(instanceID: id, nic: nic), topic: Self.topic(host), context: context,
                                      timeout: .seconds(90))
        } catch {
            logger.warning("interface attach failed", metadata: ["instance": "\(id)", "port": "\(port.id)", "error": "\(error)"])
            await servers.releaseInterface(id, port, created: request.portID == nil)
            throw Servers.Failure.internalError("Failed to attach network adapter device to \(id)")
        }
        return (try? await servers.networking?.port(port.id, visibleTo: Servers.admin)) ?? port
    }

    /// Unplugs an interface (Nova's `detach_interface`): the host removes the NIC from the
    /// guest; then the port goes (if Nova made it) or is unbound (if the user did).
    public func detachInterface(_ id: String, portID: String, by caller: ServerCaller, context: RequestContext) async throws {
        let (row, host) = try await servers.interfaceTarget(id, by: caller, action: "detach_interface")
        guard let port = try await servers.orderedPorts(row).first(where: { $0.id == portID }) else {
            throw NetworkingFailure(404, "PortNotFound", "Port \(portID) is not attached")
        }
        let nic = try await servers.nic(port)
        do {
            _ = try await client.call(DetachInterface.self, .init(instanceID: id, nic: nic), topic: Self.topic(host), context: context,
                                      timeout: .seconds(90))
        } catch {
            logger.warning("interface detach failed", metadata: ["instance": "\(id)", "port": "\(port.id)", "error": "\(error)"])
            throw Servers.Failure.internalError("Failed to detach network adapter device from \(id)")
        }
        await servers.releaseInterface(id, port, created: servers.madeByNova(row, port))
    }
}
