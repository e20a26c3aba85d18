import Foundation
import LibvirtDriver
import TestSupport
import Testing

/// The counters behind Nova's server diagnostics and the NMI behind its crash dumps, read from
/// real QEMU guests through libvirtd.
@Suite struct DomainStatisticsTests {
    @Test func devicesAreReadFromTheDomainXML() {
        let xml = """
        <domain type='qemu'><name>x</name><devices>
          <emulator>/usr/bin/qemu-system-x86_64</emulator>
          <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/tmp/a'/><target dev='vda' bus='virtio'/></disk>
          <disk type="file" device="cdrom"><source file="/tmp/b"/><target dev="hdd" bus="ide"/><readonly/></disk>
          <interface type='ethernet'><mac address='52:54:00:aa:bb:cc'/><target dev='tap1234' managed='yes'/><model type='virtio'/></interface>
          <interface type='bridge'><mac address='52:54:00:dd:ee:ff'/><source bridge='br0'/></interface>
        </devices></domain>
        """
        let devices = DomainDevices(xml: xml)
        #expect(devices.disks == ["vda", "hdd"])
        #expect(devices.interfaces.map(\.mac) == ["52:54:00:aa:bb:cc", "52:54:00:dd:ee:ff"])
        #expect(devices.interfaces.map(\.device) == ["tap1234", nil])
        #expect(DomainDevices(xml: "<domain><name>empty</name></domain>").disks.isEmpty)
    }

    @Test func runningQEMUGuestHasCountersAndTakesAnNMI() async throws {
        try Requirement.root()
        try Requirement.libvirtd()
        try Requirement.tool("qemu-system-x86_64")
        try await withGuestSlots(1) {
            let connection = try LibvirtConnection(uri: "qemu:///system")
            let name = TestNames.unique("petrel-test-")
            let tap = TestNames.unique("ptap")
            let mac = "52:54:00:\(String(format: "%02x:%02x:%02x", Int.random(in: 0...255), Int.random(in: 0...255), Int.random(in: 0...255)))"
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-stats-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
            defer { try? FileManager.default.removeItem(at: directory) }
            let disk = directory.appendingPathComponent("disk.raw").path
            #expect(FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20)))
            let xml = """
            <domain type='qemu'>
              <name>\(name)</name>
              <memory unit='MiB'>32</memory>
              <vcpu>1</vcpu>
              <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
              <devices>
                <emulator>/usr/bin/qemu-system-x86_64</emulator>
                <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='\(disk)'/><target dev='vda' bus='virtio'/></disk>
                <interface type='ethernet'><mac address='\(mac)'/><target dev='\(tap)' managed='yes'/><model type='virtio'/></interface>
                <memballoon model='virtio'/>
              </devices>
            </domain>
            """
            let domain = try connection.define(xml: xml)
            defer { if let d = try? connection.domain(named: name) { try? d.destroy(); try? d.undefine() } }
            try domain.start()

            // The firmware reads the disk and the vCPU runs: the counters move.
            var statistics = try domain.statistics()
            let moved = await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
                guard let now = try? domain.statistics() else { return false }
                statistics = now
                return (now.disks.first?.readRequests ?? 0) > 0 && (now.vcpus.first?.timeNanoseconds ?? 0) > 0
            }
            #expect(moved, "\(statistics)")
            #expect(statistics.state == .running)
            #expect(statistics.maxMemoryKiB == 32 * 1024 && statistics.memoryKiB > 0 && statistics.memoryKiB <= statistics.maxMemoryKiB)
            #expect(statistics.vcpuCount == 1 && statistics.vcpus.map(\.number) == [0])
            #expect(statistics.cpuTimeNanoseconds >= statistics.vcpus[0].timeNanoseconds)
            // QEMU's balloon reports its size (KiB) and the process's resident memory.
            #expect(statistics.memory["actual"] == statistics.memoryKiB, "\(statistics.memory)")
            #expect((statistics.memory["rss"] ?? 0) > 0, "\(statistics.memory)")
            #expect(statistics.disks.map(\.device) == ["vda"])
            let vda = try #require(statistics.disks.first)
            #expect(vda.readBytes > 0 && vda.writeRequests >= 0 && vda.writeBytes >= 0)
            #expect(statistics.interfaces.count == 1)
            let nic = try #require(statistics.interfaces.first)
            #expect(nic.macAddress == mac && nic.device == tap)
            let counters = try #require(nic.counters)
            #expect(counters.rxBytes >= 0 && counters.txBytes >= 0 && counters.rxErrors == 0 && counters.txDrop >= 0)
            // Each call on its own, as the node may use them.
            #expect(try domain.blockStatistics(disk: "vda").readRequests >= vda.readRequests)
            #expect(throws: LibvirtError.self) { try domain.blockStatistics(disk: "vdz") }
            #expect(throws: LibvirtError.self) { try domain.interfaceStatistics(device: "no-such-tap") }

            // An NMI goes into a running guest, and a paused one; not into one that is off.
            try domain.injectNMI()
            try domain.suspend()
            try domain.injectNMI()
            try domain.resume()
            try domain.destroy()
            do {
                try domain.injectNMI()
                Issue.record("an NMI went into a guest that is off")
            } catch let error as LibvirtError {
                #expect(error.isOperationInvalid, "\(error)")
            }
            // Off: the state and memory still read; the devices have no counters.
            let off = try domain.statistics()
            #expect(off.state == .shutOff && off.maxMemoryKiB == 32 * 1024 && off.disks.isEmpty)
        }
    }
}
