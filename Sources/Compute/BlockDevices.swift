import Contracts
import Foundation
import Store
import Volumes

/// One volume of `block_device_mapping_v2` (destination `volume`): an existing volume, or
/// one the build makes from an image, a snapshot or nothing. Kept on the server (JSON), with
/// the volume once made, so a resumed build never makes a second.
public struct BlockDeviceRequest: Codable, Sendable, Equatable {
    /// `volume`, `image`, `snapshot` or `blank`.
    public var source: String
    /// The volume, image or snapshot; nil for `blank`.
    public var uuid: String?
    /// GB of a volume the build makes (nil: the snapshot's size).
    public var size: Int?
    /// 0: the root disk (`vda`); nil or negative: not a boot device.
    public var bootIndex: Int?
    public var deleteOnTermination: Bool
    /// The type of a volume the build makes (2.67).
    public var volumeType: String?
    /// The volume this mapping ended as: `uuid` for `volume`, the one made otherwise.
    public var volumeID: String?

    public init(source: String, uuid: String?, size: Int? = nil, bootIndex: Int? = nil, deleteOnTermination: Bool = false,
                volumeType: String? = nil) {
        self.source = source; self.uuid = uuid; self.size = size; self.bootIndex = bootIndex
        self.deleteOnTermination = deleteOnTermination; self.volumeType = volumeType
        self.volumeID = source == "volume" ? uuid : nil
    }

    public var isRoot: Bool { bootIndex == 0 }
}

extension Servers {
    /// What a create's volumes mean for the server, checked as Nova checks them: the volumes
    /// exist for the caller and are available (a root one bootable), images and snapshots
    /// exist and fit, sizes are given where a volume is made. `host` is the node the server
    /// must go to: the node of the snapshots its volumes are made from (a snapshot is copied on
    /// its own backend). Existing volumes leave the scheduler free: a server on another host
    /// reaches them over iSCSI.
    struct BlockDevicePlan {
        var devices: [BlockDeviceRequest] = []
        var rootOnVolume = false
        var host: String?
    }

    func planBlockDevices(_ devices: [BlockDeviceRequest], count: Int, caller: ServerCaller) async throws -> BlockDevicePlan {
        var plan = BlockDevicePlan(devices: devices)
        guard !devices.isEmpty else { return plan }
        guard let volumes else { throw Failure.badRequest("Block Device Mapping is Invalid: this cloud has no volume service.") }
        let roots = devices.filter(\.isRoot)
        guard roots.count <= 1 else {
            throw Failure.badRequest("Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.")
        }
        plan.rootOnVolume = roots.count == 1
        let projectID = caller.isAdmin ? nil : caller.projectID
        var hosts: Set<String> = []
        for device in devices {
            switch device.source {
            case "volume":
                guard let id = device.uuid, let volume = try? await volumes.volume(id, projectID: projectID) else {
                    throw Failure.badRequest("Block Device Mapping is Invalid: failed to get volume \(device.uuid ?? "").")
                }
                guard volume.status == VolumeStatus.available else {
                    throw Failure.badRequest("Invalid volume: volume '\(id)' status must be 'available'. Currently in '\(volume.status)'")
                }
                if device.isRoot && !volume.bootable { throw Failure.badRequest("Block Device \(id) is not bootable.") }
                if count > 1 {
                    throw Failure.badRequest("Block Device Mapping is Invalid: a volume can be attached to one of the servers only (min_count and max_count must be 1).")
                }
                // The server may go to any host: one other than the volume's reaches it over iSCSI.
            case "snapshot":
                guard let id = device.uuid, let snapshot = try? await volumes.snapshot(id, projectID: projectID) else {
                    throw Failure.badRequest("Block Device Mapping is Invalid: failed to get snapshot \(device.uuid ?? "").")
                }
                guard snapshot.status == "available" else {
                    throw Failure.badRequest("Invalid snapshot: snapshot \(id) status must be 'available'. Currently in '\(snapshot.status)'")
                }
                if let size = device.size, size < snapshot.size {
                    throw Failure.badRequest("Block Device Mapping is Invalid: the volume size \(size) GB is smaller than the snapshot's \(snapshot.size) GB.")
                }
                hosts.insert(snapshot.host)
            case "image":
                guard let size = device.size, size > 0 else {
                    throw Failure.badRequest("Block Device Mapping is Invalid: Images with destination_type 'volume' need to have a non-zero size specified")
                }
                guard let id = device.uuid, let image = try await existingImage(id), Self.visible(image, to: caller) else {
                    throw Failure.badRequest("Block Device Mapping is Invalid: failed to get image \(device.uuid ?? "").")
                }
                guard image.status == "active" else { throw Failure.badRequest("Image \(id) is not active.") }
                let needed = max(Int64(image.minDisk) << 30, image.virtualSize ?? image.size ?? 0)
                if Int64(size) << 30 < needed {
                    throw Failure.badRequest("Volume is smaller than the minimum size specified in image metadata. Volume size is \(Int64(size) << 30) bytes, minimum size is \(needed) bytes.")
                }
            case "blank":
                guard let size = device.size, size > 0 else {
                    throw Failure.badRequest("Block Device Mapping is Invalid: Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size")
                }
                if device.isRoot {
                    throw Failure.badRequest("Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.")
                }
            default:
                throw Failure.badRequest("Block Device Mapping is Invalid: unknown source_type \(device.source).")
            }
        }
        guard hosts.count <= 1 else {
            throw Failure.badRequest("Block Device Mapping is Invalid: the snapshots are on different nodes (\(hosts.sorted().joined(separator: ", "))); a volume from a snapshot is made on the snapshot's node, where the server then runs.")
        }
        plan.host = hosts.first
        return plan
    }

    /// The block devices a server asked for.
    func blockDevices(_ row: InstanceRow) -> [BlockDeviceRequest] {
        JSONColumn.decode(row.blockDevices, fallback: [BlockDeviceRequest]())
    }

    /// Records the volume made for the server's mapping `index`.
    func recordBlockDeviceVolume(_ id: String, index: Int, volumeID: String) async throws {
        try await database.transaction { sql in
            guard var row = try await ComputeTables.instances.lockedGet(sql, id: id) else { return }
            var devices = self.blockDevices(row)
            guard devices.indices.contains(index) else { return }
            devices[index].volumeID = volumeID
            row.blockDevices = JSONColumn.encode(devices, fallback: "[]")
            try await ComputeTables.instances.update(sql, id: id, row)
        }
    }
}

extension Conductor {
    /// The hosts a server with volumes to make cannot go to: those without a live volume service.
    func hostsWithoutVolumes(_ row: InstanceRow) async throws -> Set<String> {
        guard let volumes = servers.volumes, servers.blockDevices(row).contains(where: { $0.volumeID == nil }) else { return [] }
        let volumeHosts = try await volumes.liveVolumeHosts()
        let computeHosts = try await scheduler.hosts.services { $0.binary == "nova-compute" }.map(\.host)
        return Set(computeHosts).subtracting(volumeHosts)
    }

    /// Makes and attaches the server's volumes on `host` before it is built (Nova's
    /// `_prep_block_device`): volumes from images, snapshots or nothing are created there and
    /// waited for; each is attached, the root one as `vda`, the others from `vdb` on. Done
    /// mappings are skipped, so a resumed build picks up where it stopped.
    func prepareBlockDevices(_ id: String, host: String, context: RequestContext) async throws {
        guard let volumes = servers.volumes else { return }
        guard let row = try await servers.database.withConnection({ sql in try await ComputeTables.instances.get(sql, id: id) }) else { return }
        let devices = servers.blockDevices(row)
        guard !devices.isEmpty else { return }
        let attached = try await volumes.attachments(instanceIDs: [id])
        var used = Set(attached.compactMap(\.device))
        // The root first, then the others in the order asked.
        let order = devices.indices.sorted { (devices[$0].isRoot ? 0 : 1, $0) < (devices[$1].isRoot ? 0 : 1, $1) }
        for index in order {
            let device = devices[index]
            var volumeID = device.volumeID
            if volumeID == nil {
                var create = VolumeService.VolumeCreate(projectID: row.projectID, userID: row.userID, size: device.size ?? 0)
                create.requestID = context.requestID
                create.host = host
                create.type = device.volumeType
                if device.source == "image" { create.imageID = device.uuid }
                if device.source == "snapshot" {
                    create.snapshotID = device.uuid
                    if device.size == nil, let uuid = device.uuid { create.size = try await volumes.snapshot(uuid, projectID: nil).size }
                }
                create.description = "Volume of server \(id)"
                let volume = try await volumes.create(create)
                try await servers.recordBlockDeviceVolume(id, index: index, volumeID: volume.id)
                logger.info("volume made for the server", metadata: ["instance": "\(id)", "volume": "\(volume.id)", "source": "\(device.source)"])
                volumeID = volume.id
            }
            guard let volumeID else { continue }
            if attached.contains(where: { $0.volumeID == volumeID && $0.status == "attached" }) { continue }
            if let stale = attached.first(where: { $0.volumeID == volumeID }) { try await volumes.dropAttachment(stale.id) }
            try await waitUntilAvailable(volumeID, volumes: volumes)
            let target = device.isRoot ? "vda" : ("bcdefghijklmnopqrstuvwxyz".map { "vd\($0)" }.first { !used.contains($0) } ?? "vdz")
            used.insert(target)
            let (volume, attachment) = try await volumes.reserve(volumeID, projectID: nil, instanceID: id, host: host,
                                                                 deleteOnTermination: device.deleteOnTermination)
            do {
                var disk = try await volumes.disk(for: volume, attachment: attachment, host: host)
                disk.device = target
                try await volumes.finishAttachment(attachment.id, disk: disk)
            } catch {
                try? await volumes.dropAttachment(attachment.id)
                throw error
            }
        }
    }

    /// Waits for a volume the build made (or was given) to be available, as Nova's
    /// `block_device_allocate_retries`; a volume in error ends the wait with Nova's words.
    private func waitUntilAvailable(_ volumeID: String, volumes: VolumeService) async throws {
        let clock = ContinuousClock(), deadline = clock.now + blockDeviceWait
        var status = ""
        while clock.now < deadline {
            status = try await volumes.volume(volumeID, projectID: nil).status
            if status == VolumeStatus.available { return }
            if status.hasPrefix("error") { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw Servers.Failure.internalError(
            "Volume \(volumeID) did not finish being created even after we waited \(blockDeviceWait.components.seconds) seconds. And its status is \(status).")
    }
}
