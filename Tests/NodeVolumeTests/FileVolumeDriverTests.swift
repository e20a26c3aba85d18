import Foundation
@testable import NodeVolume
import Testing

/// The file backend on a real directory: sparse files of the asked size, idempotent calls, and
/// nothing half-made left by a create cut short.
@Suite struct FileVolumeDriverTests {
    func withDriver(_ body: (FileVolumeDriver, String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-volumes-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let driver = FileVolumeDriver(directory: directory)
        try await driver.prepare()
        try await body(driver, directory)
    }

    @Test func createExtendDelete() async throws {
        try await withDriver { driver, directory in
            #expect(try await driver.size("volume-a") == nil)
            try await driver.create("volume-a", sizeGB: 1)
            try await driver.create("volume-a", sizeGB: 1)  // again: nothing changes
            #expect(try await driver.size("volume-a") == 1 << 30)
            let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/volume-a")
            #expect((attributes[.size] as? NSNumber)?.intValue == 1 << 30)
            var info = stat()
            #expect(stat(directory + "/volume-a", &info) == 0 && info.st_blocks < 64, "sparse: no blocks written")

            try await driver.extend("volume-a", sizeGB: 3)
            try await driver.extend("volume-a", sizeGB: 2)  // smaller than it is: left alone
            #expect(try await driver.size("volume-a") == 3 << 30)
            await #expect(throws: VolumeDriverError.self) { try await driver.extend("volume-missing", sizeGB: 2) }

            // A create cut short left its temporary file: the next create replaces it, a delete removes it.
            FileManager.default.createFile(atPath: directory + "/.volume-b.partial", contents: Data("half".utf8))
            try await driver.create("volume-b", sizeGB: 1)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["volume-a", "volume-b"])
            try await driver.delete("volume-a")
            try await driver.delete("volume-a")  // gone already: not an error
            try await driver.delete("volume-b")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)

            let capacity = try await driver.capacity()
            #expect(capacity.totalBytes > 0 && capacity.freeBytes <= capacity.totalBytes)
        }
    }

    @Test func registryNamesTheDrivers() throws {
        #expect(VolumeDrivers.registry.keys.sorted() == ["file", "lvm"])
        let settings = VolumeDrivers.Settings(name: "b1", driver: "file", backendName: "b1", volumesDirectory: "/tmp/x", volumeGroup: "vg",
                                              reservedPercentage: 0, maxOverSubscriptionRatio: 20)
        #expect(try VolumeDrivers.make(settings).info == VolumeDriverInfo(name: "file", thin: true, block: false))
    }
}
