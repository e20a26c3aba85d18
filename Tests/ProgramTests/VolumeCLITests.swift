import Foundation
import LVMDriver
import Logging
import PetrelCore
import ProcessDriver
import TestSupport
import Testing

/// Volumes through the unmodified `openstack` CLI (volume-cli.sh), made by a real node's volume
/// service on two backends: `file-1` (sparse files in a directory) and `lvm-1` (a volume group
/// on a loop device; without device-mapper LVM changes only its metadata, which `lvs` reads).
/// The same node runs compute on QEMU: a real guest gets a volume hot-plugged, writes to it, and
/// lets go of it again. A second node, compute only, runs guests that reach the first node's
/// volumes over iSCSI (tgtd, CHAP): one boots from a volume there, and gets another hot-plugged;
/// tgtd is restarted under it and the node exports both again.
@Suite struct VolumeCLITests {
    @Test func volumesOnFileAndLVMBackends() async throws {
        try await withGuestSlots(1) {
            try Requirement.root()
            try Requirement.libvirtd()
            try Requirement.tool("losetup")
            try Requirement.tgtd()
            try await withPrivateVirtualHost { transport in try await run(transport) }
        }
    }

    func run(_ transport: String) async throws {
        let openstack = try KeystoneCLITests.openstack()
        let guest = try await KeystoneCLITests.guestImage()
        let cloud = try await CloudUnderTest(transport: transport, serviceDownTime: 10)
        let node = TestNames.unique("vol-")
        let remote = TestNames.unique("volr-")
        let group = TestNames.unique("petrel-test-")
        let image = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-lvm-\(UUID().uuidString).img").path
        let files = cloud.directory.appendingPathComponent("volumes-file-1").path
        let work = cloud.directory.appendingPathComponent("volume-cli").path
        let backups = cloud.directory.appendingPathComponent("backups").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let config = try cloud.nodeConfig(host: node, uri: "qemu:///system", services: "compute,volume", extra: """
            [DEFAULT]
            enabled_backends = file-1, lvm-1
            [file-1]
            volume_driver = file
            volumes_dir = \(files)
            target_ip_address = 127.0.0.1
            [lvm-1]
            volume_driver = lvm
            volume_group = \(group)
            target_ip_address = 127.0.0.1
            [backup]
            directory = \(backups)
            """).config
        let remoteConfig = try cloud.nodeConfig(host: remote, uri: "qemu:///system", services: "compute").config
        let lvm = LVM()
        var device: String?
        @Sendable func phase(_ name: String) async throws {
            let result = try await Command.run("env", [
                "OSC=\(openstack)", "OS_CLIENT_CONFIG_FILE=\(cloud.clouds)", "NODE=\(node)", "REMOTE=\(remote)", "VG=\(group)", "FILES=\(files)", "WORK=\(work)", "GUEST=\(guest)", "BACKUPS=\(backups)",
                "bash", Repository.root.appendingPathComponent("Tests/ProgramTests/volume-cli.sh").path, name])
            let passed = result.status == 0 && result.stdout.contains("phase \(name) passed")
            for line in result.stdout.split(separator: "\n") where line.hasPrefix("ok - ") || line.hasPrefix("figure: ") { print("volume-cli \(name): \(line)") }
            #expect(passed, "\(result.stdout)\n\(result.stderr.suffix(3000))\n\(cloud.recentOutput())")
            try #require(passed)
        }
        try await withCleanup {
            #expect(FileManager.default.createFile(atPath: image, contents: nil))
            try await Command.check("truncate", ["-s", "8G", image])
            let loop = try await Command.check("losetup", ["--find", "--show", image]).trimmingCharacters(in: .whitespacesAndNewlines)
            device = loop
            try await lvm.createPhysicalVolume(loop)
            try await lvm.createVolumeGroup(group, devices: [loop])
            try cloud.controller().start()
            try await cloud.waitForController()
            let first = try cloud.node(config: config)
            try first.start()
            try await phase("api")
            try await phase("attach")
            try await phase("snapshot")
            try await phase("images")
            try cloud.node(config: remoteConfig).start()
            try await phase("boot")
            // tgtd loses every target when it restarts: the volume node makes them again. (tgtd
            // ignores SIGTERM while it has targets; a crash is what this restart is.)
            try await withTgtdAlone {
                @Sendable func answers() async throws -> Bool {
                    try await Command.run("tgtadm", ["--lld", "iscsi", "--op", "show", "--mode", "sys"]).status == 0
                }
                _ = try? await Command.run("pkill", ["-9", "-x", "tgtd"])
                for _ in 0..<100 where try await answers() { try await Task.sleep(for: .milliseconds(100)) }
                #expect(try await !answers(), "tgtd did not stop")
                try await Command.check("tgtd", ["--iscsi", "portal=127.0.0.1:3260"])
                for _ in 0..<100 where try await !answers() { try await Task.sleep(for: .milliseconds(100)) }
            }
            // The node's exports of the two attached volumes come back (boot-restored checks which).
            @Sendable func exports() async throws -> Int {
                try await Command.run("tgtadm", ["--lld", "iscsi", "--op", "show", "--mode", "target"]).stdout
                    .components(separatedBy: ": iqn.2010-10.org.openstack:volume-").count - 1
            }
            let restarted = ContinuousClock.now
            for _ in 0..<300 where try await exports() < 2 { try await Task.sleep(for: .milliseconds(100)) }
            print("volume-cli: figure: \(try await exports()) exports back \(restarted.duration(to: .now)) after tgtd restarted")
            try await phase("boot-restored")
            try await phase("backup")
            try await phase("lvm")
            try await phase("inflight")
            // Stopped first, so an attach asked for now waits in its queue and is done by the
            // node that replaces it.
            first.signal(SIGSTOP)
            try await phase("attach-stopped")
            first.signal(SIGKILL)
            _ = await first.wait()
            try await phase("while-down")
            try cloud.node(config: config).start()
            try await phase("restarted")
            try await phase("cleanup")
        } cleanup: {
            for file in ["server", "sk"] {
                guard let id = try? String(contentsOfFile: work + "/" + file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) else { continue }
                _ = try? await Command.run("virsh", ["-c", "qemu:///system", "destroy", "petrel-\(id)"])
                _ = try? await Command.run("virsh", ["-c", "qemu:///system", "undefine", "petrel-\(id)"])
            }
            await cloud.stop()
            try? await lvm.removeVolumeGroup(group)
            if let device {
                try? await lvm.removePhysicalVolume(device)
                _ = try? await Command.run("losetup", ["-d", device])
            }
            try? FileManager.default.removeItem(atPath: image)
            cloud.remove()
        }
    }
}
