import Contracts
import Foundation
import Hosts
import Images
import Networking
import Store

/// Nova's shelving: `shelve` snapshots the disk into an image and (as Nova does with its
/// default `shelved_offload_time` of 0) offloads the server at once: its domain and files go,
/// it leaves its host (and the host's resources). `unshelve` schedules it again and builds it
/// from that image, which is deleted once the server runs.
extension Servers {
    /// Starts a shelve: checks what Petrel cannot shelve yet, sets the task and makes the
    /// (queued) image the node uploads the disk into. Returns the server, its host and the image.
    public func beginShelve(_ id: String, by caller: ServerCaller) async throws -> (Server, String, String) {
        let current = try await get(id, by: caller)
        if current.row.rootOnVolume {
            throw Failure.badRequest("Shelving a volume-backed server is not supported by this cloud yet.")
        }
        if let volumes, !(try await volumes.attachments(instanceIDs: [id]).isEmpty) {
            throw Failure.badRequest("Shelving a server with volumes attached is not supported by this cloud yet; detach them first.")
        }
        let imageID = UUID().uuidString.lowercased()
        let (server, host, _) = try await begin("shelve", on: id, by: caller) { server in server.row.shelvedImageID = imageID }
        let image = Self.snapshotImage(imageID, name: server.name + "-shelved", of: server, by: caller)
        do {
            _ = try await images.create(image)
        } catch {
            _ = try? await change(id, by: Self.system) { server in
                server.row.shelvedImageID = nil
                if server.row.task == .shelving { server.row.taskState = nil }
            }
            throw error
        }
        return (server, host, imageID)
    }

    /// Starts an unshelve of an offloaded server: it waits for a host again (`host`: the one
    /// an admin named, 2.91; `zone`: a new availability zone, `.some(nil)` to unpin).
    public func beginUnshelve(_ id: String, host: String?, zone: String??, by caller: ServerCaller) async throws -> Server {
        if let host { try await checkHost(host) }
        if let zone = zone ?? nil { try await checkZone(zone) }
        return try await change(id, by: caller) { server in
            try Self.checkLock(server.row, caller)
            guard server.row.vm == .shelvedOffloaded, server.row.task == nil else { throw Self.stateConflict("unshelve", server.row) }
            guard server.row.shelvedImageID != nil else {
                throw Failure.conflict("Instance \(id) has no shelved image to unshelve from")
            }
            if let zone { server.row.availabilityZone = zone }
            server.row.host = host
            server.row.triedHosts = "[]"
            server.row.set(task: .unshelving)
        }
    }

    /// The caller the controller acts as on its own.
    static let system = ServerCaller(projectID: "", userID: "", isAdmin: true)

    /// A shelved server's ports stay its own but leave the host (the next build binds them again).
    func unbindPorts(_ id: String) async {
        guard let networking else { return }
        for port in (try? await networking.ports(visibleTo: Self.admin, deviceIDs: [id])) ?? [] {
            var update = NetworkService.PortUpdate()
            update.host = ""
            _ = try? await networking.updatePort(port.id, update)
        }
    }

    /// After a node's update: an offloaded server has left its host (its ports are unbound);
    /// an unshelved one no longer needs its shelved image.
    func finishShelving(_ before: InstanceRow, _ after: InstanceRow) async {
        if after.vm == .shelvedOffloaded && before.vm != .shelvedOffloaded {
            await unbindPorts(after.id)
        }
        if before.vm == .shelvedOffloaded || before.vm == .shelved, after.vm == .active, let image = before.shelvedImageID {
            try? await images.delete(image)
        }
    }
}
