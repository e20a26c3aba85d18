import Contracts
import Foundation
import Store
import Volumes

/// Nova's os-volume_attachments: volumes hot-plugged into a server on its host and unplugged.
extension Servers {
    /// The disks of the volumes attached to a server, for its host's definition of it, and the
    /// volumes being attached to it now (reserved, not plugged yet).
    func volumeDisks(_ row: InstanceRow) async throws -> (plugged: [VolumeDisk], attaching: [String]) {
        guard let volumes else { return ([], []) }
        let attachments = try await volumes.attachments(instanceIDs: [row.id]).filter { !$0.external }
        return (attachments.filter(\.isPlugged).map(\.disk), attachments.filter { !$0.isPlugged }.map(\.volumeID))
    }

    /// The volumes attached to each of these servers, oldest attachment first.
    public func attachedVolumes(_ ids: [String]) async throws -> [String: [VolumeAttachment]] {
        guard let volumes, !ids.isEmpty else { return [:] }
        return Dictionary(grouping: try await volumes.attachments(instanceIDs: ids).filter(\.isPlugged), by: \.instanceID)
    }

    /// The server and its host, when a volume may be attached or detached now.
    func volumeTarget(_ id: String, by caller: ServerCaller, action: String) async throws -> (InstanceRow, String) {
        let (row, host) = try await interfaceTarget(id, by: caller, action: action)
        // Nova refuses to attach, detach or swap volumes of a locked server (except for admins).
        try Self.checkLock(row, caller)
        return (row, host)
    }
}

extension Conductor {
    /// Attaches a volume (Nova's `attach_volume`): the volume is reserved for the server, its
    /// node says where it is (or, for a server on another host, exports it over iSCSI), the
    /// server's host plugs the disk into the guest, and the volume is `in-use`. Any failure
    /// undoes the reservation (the volume is available again, any export gone).
    public func attachVolume(_ id: String, volumeID: String, deleteOnTermination: Bool = false, by caller: ServerCaller,
                             context: RequestContext) async throws -> VolumeAttachment {
        guard let volumes = servers.volumes else { throw Servers.Failure.badRequest("This cloud has no volume service.") }
        let (_, host) = try await servers.volumeTarget(id, by: caller, action: "attach_volume")
        let (volume, attachment) = try await volumes.reserve(volumeID, projectID: caller.isAdmin ? nil : caller.projectID, instanceID: id, host: host,
                                                             deleteOnTermination: deleteOnTermination)
        let clock = ContinuousClock(), started = clock.now
        do {
            var disk = try await volumes.disk(for: volume, attachment: attachment, host: host)
            let connected = clock.now
            let result = try await client.call(AttachVolume.self, .init(instanceID: id, disk: disk), topic: Self.topic(host), context: context,
                                               timeout: .seconds(90))
            let plugged = clock.now
            disk.device = result.device
            try await volumes.finishAttachment(attachment.id, disk: disk)
            var done = attachment
            done.device = result.device
            done.path = disk.path
            done.iscsi = disk.iscsi
            done.status = "attached"
            logger.info("volume attached", metadata: [
                "instance": "\(id)", "volume": "\(volumeID)", "device": "\(result.device)", "iscsi": "\(disk.iscsi != nil)",
                "connection_ms": "\(Self.milliseconds(connected - started))", "host_ms": "\(Self.milliseconds(plugged - connected))",
                "total_ms": "\(Self.milliseconds(clock.now - started))",
            ])
            return done
        } catch {
            logger.warning("volume attach failed", metadata: ["instance": "\(id)", "volume": "\(volumeID)", "error": "\(error)"])
            try? await volumes.dropAttachment(attachment.id)
            try? await volumes.recordMessage(projectID: volume.projectID, resourceID: volume.id, action: .attachVolume, detail: .attachError,
                                             requestID: context.requestID)
            throw Servers.Failure.internalError("Failed to attach volume \(volumeID) to \(id)")
        }
    }

    /// Detaches a volume (Nova's `detach_volume`): the host unplugs the disk (the guest must let
    /// go of it), then the volume is available. A guest that keeps the disk keeps the volume in-use.
    public func detachVolume(_ id: String, volumeID: String, by caller: ServerCaller, context: RequestContext) async throws {
        guard let volumes = servers.volumes else { throw Servers.Failure.badRequest("This cloud has no volume service.") }
        let (row, host) = try await servers.volumeTarget(id, by: caller, action: "detach_volume")
        if row.rootOnVolume, try await volumes.attachments(instanceIDs: [id]).contains(where: { $0.volumeID == volumeID && $0.device == "vda" }) {
            throw Servers.Failure.badRequest("Cannot detach a root device volume")
        }
        let clock = ContinuousClock(), started = clock.now
        let attachment = try await volumes.beginDetach(volumeID, instanceID: id)
        let unplugging = clock.now
        do {
            _ = try await client.call(DetachVolume.self, .init(instanceID: id, disk: attachment.disk), topic: Self.topic(host), context: context,
                                      timeout: .seconds(90))
        } catch {
            logger.warning("volume detach failed", metadata: ["instance": "\(id)", "volume": "\(volumeID)", "error": "\(error)"])
            try? await volumes.rollDetach(attachment.id)
            throw Servers.Failure.internalError("Failed to detach volume \(volumeID) from \(id)")
        }
        let unplugged = clock.now
        try await volumes.dropAttachment(attachment.id)
        logger.info("volume detached", metadata: [
            "instance": "\(id)", "volume": "\(volumeID)", "host_ms": "\(Self.milliseconds(unplugged - unplugging))",
            "total_ms": "\(Self.milliseconds(clock.now - started))",
        ])
    }

    /// Swaps an attached volume for another (Nova's `swap_volume`, what Cinder's volume
    /// migration drives): the new volume, at least as large, is reserved for the server and
    /// connected on its host (or exported there); the host copies the running guest's disk into
    /// it and switches over; the old volume is available again (with its bytes), the new one
    /// in-use at the same device. A failure leaves the old volume attached and the new available.
    public func swapVolume(_ id: String, from oldID: String, to newID: String, by caller: ServerCaller,
                           context: RequestContext) async throws {
        guard let volumes = servers.volumes else { throw Servers.Failure.badRequest("This cloud has no volume service.") }
        let (row, host) = try await servers.volumeTarget(id, by: caller, action: "swap_volume")
        guard let old = try await volumes.attachments(instanceIDs: [id]).first(where: { $0.volumeID == oldID && $0.isPlugged }) else {
            throw VolumeFailure(404, "Volume \(oldID) is not attached to server \(id).")
        }
        if row.rootOnVolume && old.device == "vda" {
            throw Servers.Failure.badRequest("Swapping the root volume of a server is not supported by this cloud.")
        }
        let oldVolume = try await volumes.volume(oldID, projectID: nil)
        let newVolume = try await volumes.volume(newID, projectID: nil)
        guard newVolume.size >= oldVolume.size else {
            throw Servers.Failure.badRequest("Invalid volume: New volume must be the same size or larger than the old volume.")
        }
        let clock = ContinuousClock(), started = clock.now
        let (reserved, attachment) = try await volumes.reserve(newID, projectID: nil, instanceID: id, host: host,
                                                               deleteOnTermination: old.deleteOnTermination)
        let leaving: VolumeAttachment
        do {
            leaving = try await volumes.beginDetach(oldID, instanceID: id)
        } catch {
            try? await volumes.dropAttachment(attachment.id)
            throw error
        }
        do {
            var disk = try await volumes.disk(for: reserved, attachment: attachment, host: host)
            let result = try await client.call(SwapVolume.self, .init(instanceID: id, old: leaving.disk, new: disk), topic: Self.topic(host),
                                               context: context, timeout: .seconds(1800))
            disk.device = result.device
            try await volumes.finishAttachment(attachment.id, disk: disk)
            try await volumes.dropAttachment(leaving.id)
            logger.info("volume swapped", metadata: ["instance": "\(id)", "old": "\(oldID)", "new": "\(newID)", "device": "\(result.device)",
                                                     "total_ms": "\(Self.milliseconds(clock.now - started))"])
        } catch {
            logger.warning("volume swap failed", metadata: ["instance": "\(id)", "old": "\(oldID)", "new": "\(newID)", "error": "\(error)"])
            try? await volumes.rollDetach(leaving.id)
            try? await volumes.dropAttachment(attachment.id)
            throw Servers.Failure.internalError("Failed to swap volume \(oldID) for \(newID) on \(id)")
        }
    }

    /// A volume grew (its backend is done): the hosts of the servers it is attached to tell
    /// their guests (Nova's `volume-extended` external event). A host that cannot be reached
    /// is logged: its guest sees the size at its next start.
    public func volumeExtended(_ volumeID: String, context: RequestContext) async {
        guard let volumes = servers.volumes else { return }
        do {
            let volume = try await volumes.volume(volumeID, projectID: nil)
            for attachment in try await volumes.attachments(volumeIDs: [volumeID]) where attachment.status == "attached" && !attachment.external {
                do {
                    _ = try await client.call(VolumeExtended.self, .init(instanceID: attachment.instanceID, volumeID: volumeID,
                                                                         sizeBytes: UInt64(volume.size) << 30),
                                              topic: Self.topic(attachment.host), context: context, timeout: .seconds(30))
                    logger.info("volume extended in the guest", metadata: ["instance": "\(attachment.instanceID)", "volume": "\(volumeID)",
                                                                           "size_gb": "\(volume.size)"])
                } catch {
                    logger.warning("could not tell a guest its volume grew", metadata: [
                        "instance": "\(attachment.instanceID)", "volume": "\(volumeID)", "error": "\(error)"])
                }
            }
        } catch {
            logger.warning("volume extended: cannot read it", metadata: ["volume": "\(volumeID)", "error": "\(error)"])
        }
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
