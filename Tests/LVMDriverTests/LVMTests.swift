import Foundation
import LVMDriver
import ProcessDriver
import TestSupport
import Testing

@Suite(.serialized) struct LVMTests {
    @Test func volumeGroupOnALoopDevice() async throws {
        try Requirement.root()
        try Requirement.tool("losetup")
        let image = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-lvm-\(UUID().uuidString).img").path
        #expect(FileManager.default.createFile(atPath: image, contents: nil))
        try await Command.check("truncate", ["-s", "64M", image])
        let device = try await Command.check("losetup", ["--find", "--show", image]).trimmingCharacters(in: .whitespacesAndNewlines)
        let lvm = LVM()
        let umaskBefore = umask(0o022)
        umask(umaskBefore)
        let group = TestNames.unique("petrel-test-")
        try await withCleanup {
        try await lvm.createPhysicalVolume(device)
        try await lvm.createVolumeGroup(group, devices: [device])
        let vg = try #require(try await lvm.volumeGroups().first { $0.name == group })
        #expect(vg.sizeBytes > 50_000_000 && vg.sizeBytes <= 64 * 1024 * 1024 && vg.freeBytes == vg.sizeBytes)
        #expect(vg.logicalVolumeCount == 0)

        let created = try await lvm.createLogicalVolume("volume-1", in: group, sizeBytes: 8 * 1024 * 1024)
        #expect(created.volume.sizeBytes == 8 * 1024 * 1024)
        #expect(created.activated == lvm.deviceMapperAvailable)
        if !lvm.deviceMapperAvailable {
            #expect(created.note?.contains("device-mapper") == true)
        }
        // LVM rounds up to whole 4 MiB extents.
        let odd = try await lvm.createLogicalVolume("volume-2", in: group, sizeBytes: 5 * 1024 * 1024)
        #expect(odd.volume.sizeBytes == 8 * 1024 * 1024)

        let grown = try await lvm.extendLogicalVolume("volume-1", in: group, toBytes: 16 * 1024 * 1024)
        #expect(grown.volume.sizeBytes == 16 * 1024 * 1024)
        #expect(try await lvm.logicalVolumes(in: group).map(\.name).sorted() == ["volume-1", "volume-2"])
        #expect(try await lvm.volumeGroups().first { $0.name == group }?.freeBytes == vg.sizeBytes - 24 * 1024 * 1024)

        // Too big for the group: LVM's own explanation comes back.
        do {
            _ = try await lvm.createLogicalVolume("volume-3", in: group, sizeBytes: 1024 * 1024 * 1024)
            Issue.record("a 1 GiB volume fit in 64 MiB")
        } catch let error as LVMError {
            #expect(error.description.contains("Insufficient free space") || error.description.contains("insufficient"), "\(error)")
        }
        await #expect(throws: LVMError.self) { try await lvm.createLogicalVolume("bad name", in: group, sizeBytes: 4096) }

        try await lvm.removeLogicalVolume("volume-1", in: group)
        try await lvm.removeLogicalVolume("volume-1", in: group)  // idempotent
        try await lvm.removeLogicalVolume("volume-2", in: group)
        #expect(try await lvm.logicalVolumes(in: group).isEmpty)
        // LVM's own umask (0077) does not leak into the process.
        let current = umask(0o022)
        umask(current)
        #expect(current == umaskBefore)
        } cleanup: {
            try? await lvm.removeVolumeGroup(group)
            try? await lvm.removePhysicalVolume(device)
            _ = try? await Command.run("losetup", ["-d", device])
            try? FileManager.default.removeItem(atPath: image)
        }
    }

    /// A device whose size changed (here a loop device whose file grew; in the suite, a loop
    /// device detached and reused for a larger file) is sized anew: the in-process library once
    /// kept the size it saw first (an 8 GB volume group came out as 60 MB after a 64 MB test
    /// had used the same loop device).
    @Test func aReusedLoopDeviceIsSizedAnew() async throws {
        try Requirement.root()
        try Requirement.tool("losetup")
        let image = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-lvm-\(UUID().uuidString).img").path
        let lvm = LVM()
        let group = TestNames.unique("petrel-test-")
        var device: String?
        try await withCleanup {
            try await Command.check("truncate", ["-s", "64M", image])
            let loop = try await Command.check("losetup", ["--find", "--show", image]).trimmingCharacters(in: .whitespacesAndNewlines)
            device = loop
            try await lvm.createPhysicalVolume(loop)
            try await lvm.removePhysicalVolume(loop)
            try await Command.check("truncate", ["-s", "1G", image])
            try await Command.check("losetup", ["--set-capacity", loop])
            try await lvm.createPhysicalVolume(loop)
            try await lvm.createVolumeGroup(group, devices: [loop])
            let vg = try #require(try await lvm.volumeGroups().first { $0.name == group })
            #expect(vg.sizeBytes > 1_000_000_000, "the group on the 1 GiB file is \(vg.sizeBytes) bytes")
        } cleanup: {
            try? await lvm.removeVolumeGroup(group)
            if let device {
                try? await lvm.removePhysicalVolume(device)
                _ = try? await Command.run("losetup", ["-d", device])
            }
            try? FileManager.default.removeItem(atPath: image)
        }
    }
}
