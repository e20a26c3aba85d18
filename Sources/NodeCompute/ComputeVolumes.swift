import Contracts
import Foundation
import LibvirtDriver
import PetrelCore
import RPC

/// Hot-plugged volumes (Nova's attach_volume and detach_volume on the compute side): a
/// volume's file or block device as a virtio disk whose serial is the volume's id.
extension ComputeService {
    func registerVolumes(on server: RPCServer) {
        server.register(AttachVolume.self) { [self] arguments, _ in
            try await locks.with(arguments.instanceID) { try await self.attachVolume(arguments.instanceID, arguments.disk) }
        }
        server.register(DetachVolume.self) { [self] arguments, _ in
            try await locks.with(arguments.instanceID) { try await self.detachVolume(arguments.instanceID, arguments.disk) }
            return Nothing()
        }
        server.register(SwapVolume.self) { [self] arguments, _ in
            try await locks.with(arguments.instanceID) { try await self.swapVolume(arguments.instanceID, old: arguments.old, new: arguments.new) }
        }
        server.register(VolumeExtended.self) { [self] arguments, _ in
            try await locks.with(arguments.instanceID) {
                try await self.volumeExtended(arguments.instanceID, volumeID: arguments.volumeID, bytes: arguments.sizeBytes)
            }
            return Nothing()
        }
    }

    /// Tells a running guest one of its volumes grew (the backend grew the file or LV already).
    /// A guest that is not running, or no longer has the volume, needs nothing.
    public func volumeExtended(_ id: String, volumeID: String, bytes: UInt64) async throws {
        guard let state = try await hypervisor.state(id), Self.isLive(state), let live = try await hypervisor.liveDefinition(id) else { return }
        let stored = try await hypervisor.definition(id) ?? ""
        // (A swapped disk keeps its first volume's serial in the running guest.)
        guard let device = InstanceDomain.volumeTarget(live, volumeID: volumeID) ?? InstanceDomain.volumeTarget(stored, volumeID: volumeID) else { return }
        try await hypervisor.resizeDisk(id, device: device, bytes: bytes)
        logger.info("volume extended in the guest", metadata: ["instance": "\(id)", "volume": "\(volumeID)", "device": "\(device)",
                                                               "bytes": "\(bytes)"])
    }

    /// Adds the disk where it is missing: to the running guest and to the stored definition (a
    /// stopped guest gets it at its next start). Answers with the guest's device name.
    public func attachVolume(_ id: String, _ disk: VolumeDisk) async throws -> AttachVolume.Result {
        guard let spec = try await lookup(id), let state = try await hypervisor.state(id) else {
            throw Refused(description: "instance \(id) has no domain on \(host)", retryable: false)
        }
        // (A request the controller gave up on, delivered again after the node's restart.)
        if let attaching = spec.attachingVolumes, !attaching.contains(disk.volumeID),
           !(spec.volumes ?? []).contains(where: { $0.volumeID == disk.volumeID }) {
            throw Refused(description: "volume \(disk.volumeID) is no longer being attached to instance \(id)", retryable: false)
        }
        let stored = try await hypervisor.definition(id) ?? ""
        let live = Self.isLive(state) ? try await hypervisor.liveDefinition(id) ?? "" : nil
        let device = InstanceDomain.volumeTarget(stored, volumeID: disk.volumeID) ?? disk.device
            ?? InstanceDomain.freeTarget(in: [stored, live ?? ""])
        guard let device else { throw Refused(description: "instance \(id) has no free disk name left", retryable: false) }
        let toConfig = !InstanceDomain.hasVolume(stored, volumeID: disk.volumeID)
        let toLive = live.map { !InstanceDomain.holds($0, disk) } ?? false
        if toConfig || toLive {
            var placed = disk
            placed.device = device
            let started = ContinuousClock.now
            try await storeSecret(of: disk)
            try await hypervisor.attach(id, device: InstanceDomain.volume(placed), live: toLive, config: toConfig)
            logger.info("volume attached", metadata: ["instance": "\(id)", "volume": "\(disk.volumeID)", "device": "\(device)", "live": "\(toLive)",
                                                      "libvirt": "\(ContinuousClock.now - started)"])
        }
        return AttachVolume.Result(device: device)
    }

    /// Removes the disk from the running guest (waiting for the guest to let go of it), then from
    /// the stored definition. A guest that does not let go keeps the disk in both.
    public func detachVolume(_ id: String, _ disk: VolumeDisk) async throws {
        guard let state = try await hypervisor.state(id) else { return }
        let stored = try await hypervisor.definition(id) ?? ""
        guard let device = InstanceDomain.volumeTarget(stored, volumeID: disk.volumeID) ?? disk.device else { return }
        var placed = disk
        placed.device = device
        let element = InstanceDomain.volume(placed)
        if Self.isLive(state), let live = try await hypervisor.liveDefinition(id), InstanceDomain.holds(live, placed) {
            try await hypervisor.detach(id, device: element, live: true, config: false)
            let deadline = ContinuousClock.now + Self.detachWait
            while let xml = try await hypervisor.liveDefinition(id), InstanceDomain.holds(xml, placed) {
                guard ContinuousClock.now < deadline else {
                    throw Refused(description: "the guest of instance \(id) did not release volume \(disk.volumeID) within \(Self.detachWait)",
                                  retryable: true)
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        if InstanceDomain.hasVolume(stored, volumeID: disk.volumeID) {
            try await hypervisor.detach(id, device: element, live: false, config: true)
        }
        try await forgetSecret(of: disk)
        logger.info("volume detached", metadata: ["instance": "\(id)", "volume": "\(disk.volumeID)"])
    }

    /// Unplugs the volume disks the controller has no attachment for: an attach the node finished
    /// after the controller gave up on it leaves one (the node killed between plugging the disk
    /// and answering, and back after the call's deadline). The controller is asked afresh, under
    /// the instance's lock, so a volume reserved for the instance (an attach finishing now) is
    /// left alone, as is every disk while an action runs or when the controller is too old to
    /// say which volumes are being attached.
    func removeStrayVolumes(_ id: String) async throws {
        guard let state = try await hypervisor.state(id), let stored = try await hypervisor.definition(id) else { return }
        let live = Self.isLive(state) ? try await hypervisor.liveDefinition(id) ?? "" : ""
        var plugged: [InstanceDomain.PluggedVolume] = []
        for disk in InstanceDomain.pluggedVolumes(in: stored) + InstanceDomain.pluggedVolumes(in: live) where !plugged.contains(disk) {
            plugged.append(disk)
        }
        guard !plugged.isEmpty, let spec = try await lookup(id), spec.taskState == nil,
              let wanted = spec.volumes, let attaching = spec.attachingVolumes else { return }
        for disk in plugged where !attaching.contains(disk.serial) && !wanted.contains(where: disk.isDisk(of:)) {
            logger.warning("unplugging a volume the controller has not attached to the instance", metadata: [
                "instance": "\(id)", "volume": "\(disk.serial)", "device": "\(disk.target)"])
            try await detachVolume(id, VolumeDisk(volumeID: disk.serial, path: disk.source, block: disk.block, device: disk.target))
            if let usage = disk.secretUsage { try await hypervisor.removeDiskSecret(usage: usage) }
        }
    }

    /// Replaces a volume by another (Nova's `swap_volume`), the new one at the old one's device:
    /// a running guest's disk is copied into the new volume and switched over while the guest
    /// runs; the stored definition then names the new volume. Repeating it changes nothing.
    public func swapVolume(_ id: String, old: VolumeDisk, new: VolumeDisk) async throws -> AttachVolume.Result {
        guard try await lookup(id) != nil, let state = try await hypervisor.state(id) else {
            throw Refused(description: "instance \(id) has no domain on \(host)", retryable: false)
        }
        let stored = try await hypervisor.definition(id) ?? ""
        guard let device = InstanceDomain.volumeTarget(stored, volumeID: old.volumeID) ?? InstanceDomain.volumeTarget(stored, volumeID: new.volumeID)
            ?? old.device else {
            throw Refused(description: "instance \(id) has no disk of volume \(old.volumeID)", retryable: false)
        }
        var former = old, placed = new
        former.device = device
        placed.device = device
        let started = ContinuousClock.now
        try await storeSecret(of: new)
        if Self.isLive(state), let live = try await hypervisor.liveDefinition(id), InstanceDomain.holds(live, former), !InstanceDomain.holds(live, placed) {
            try await hypervisor.copyDisk(id, device: device, to: InstanceDomain.volume(placed))
        }
        let copied = ContinuousClock.now
        if InstanceDomain.hasVolume(stored, volumeID: old.volumeID) {
            try await hypervisor.detach(id, device: InstanceDomain.volume(former), live: false, config: true)
        }
        if !InstanceDomain.hasVolume(try await hypervisor.definition(id) ?? "", volumeID: new.volumeID) {
            try await hypervisor.attach(id, device: InstanceDomain.volume(placed), live: false, config: true)
        }
        if old.iscsi?.username != new.iscsi?.username { try await forgetSecret(of: old) }
        logger.info("volume swapped", metadata: ["instance": "\(id)", "old": "\(old.volumeID)", "new": "\(new.volumeID)", "device": "\(device)",
                                                 "copy": "\(copied - started)"])
        return AttachVolume.Result(device: device)
    }
}
