import Foundation
import LVMDriver

/// Volumes as logical volumes of one volume group, through liblvm2cmd. Where the kernel has no
/// device-mapper (as on the development machines), LVM changes its metadata but cannot
/// activate the volumes: they exist, are sized and reported, but have no device to export.
public struct LVMVolumeDriver: VolumeDriver {
    public let volumeGroup: String
    let lvm: LVM
    public var info: VolumeDriverInfo { VolumeDriverInfo(name: "lvm", thin: false, block: true) }

    public init(volumeGroup: String, lvm: LVM = LVM()) {
        self.volumeGroup = volumeGroup
        self.lvm = lvm
    }

    public func prepare() async throws {
        guard try await lvm.volumeGroups().contains(where: { $0.name == volumeGroup }) else {
            throw VolumeDriverError("volume group \(volumeGroup) does not exist (create it with vgcreate)")
        }
    }

    public func capacity() async throws -> VolumeCapacity {
        guard let group = try await lvm.volumeGroups().first(where: { $0.name == volumeGroup }) else {
            throw VolumeDriverError("volume group \(volumeGroup) does not exist")
        }
        return VolumeCapacity(totalBytes: group.sizeBytes, freeBytes: group.freeBytes)
    }

    public func path(_ name: String) -> String { "/dev/\(volumeGroup)/\(name)" }

    public func size(_ name: String) async throws -> UInt64? {
        try await lvm.logicalVolume(name, in: volumeGroup)?.sizeBytes
    }

    public func create(_ name: String, sizeGB: Int) async throws {
        if let existing = try await size(name), existing >= sizeGB.gigabytes { return }
        if try await size(name) != nil {
            // A smaller one is a create cut short by a crash: grow it to the size asked for.
            _ = try await lvm.extendLogicalVolume(name, in: volumeGroup, toBytes: sizeGB.gigabytes)
            return
        }
        _ = try await lvm.createLogicalVolume(name, in: volumeGroup, sizeBytes: sizeGB.gigabytes)
    }

    public func extend(_ name: String, sizeGB: Int) async throws {
        guard let existing = try await size(name) else { throw VolumeDriverError("\(volumeGroup)/\(name) does not exist") }
        guard existing < sizeGB.gigabytes else { return }
        _ = try await lvm.extendLogicalVolume(name, in: volumeGroup, toBytes: sizeGB.gigabytes)
    }

    /// Copying a logical volume means reading its data through its device, which only an
    /// activated LV has: refused until this driver does it on hosts with device-mapper.
    public func copy(_ source: String, to name: String, sizeGB: Int?) async throws {
        throw VolumeDriverError("the lvm driver does not copy volumes yet (snapshots and clones read the data through the LV's device)")
    }

    /// Writing an image into a logical volume, or reading one out, goes through the LV's device,
    /// which only an activated LV has: refused, as `copy`.
    public func importImage(_ file: String, format: String, to name: String, sizeGB: Int) async throws {
        throw VolumeDriverError("the lvm driver does not write images into volumes yet (that goes through the LV's device)")
    }

    public func exportImage(_ name: String, format: String, to file: String) async throws {
        throw VolumeDriverError("the lvm driver does not read volumes into images yet (that goes through the LV's device)")
    }

    public func delete(_ name: String) async throws {
        try await lvm.removeLogicalVolume(name, in: volumeGroup)
    }
}
