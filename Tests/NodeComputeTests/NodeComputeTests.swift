import Contracts
import Foundation
import LibvirtDriver
import Logging
@testable import NodeCompute
import ProcessDriver
import TestSupport
import Testing

@Suite struct NodeComputeTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-cloud-\(UUID().uuidString)").path

    func spec(_ id: String = UUID().uuidString.lowercased(), ephemeral: Int = 0, swap: Int = 0) -> InstanceSpec {
        InstanceSpec(id: id, name: "a <b> & 'c'", projectID: "p", userID: "u", host: "h",
                     flavor: .init(id: "f", name: "m1.tiny", vcpus: 2, memoryMB: 128, rootGB: 1, ephemeralGB: ephemeral, swapMB: swap,
                                   extraSpecs: [:]),
                     image: .init(id: "img", diskFormat: "qcow2", checksum: nil, size: nil, properties: [:]),
                     vmState: .building, taskState: .spawning, stamp: 0)
    }

    @Test func unusedBaseImagesArePrunedOnlyWhenOldEnough() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = ImageCache(directory: directory + "/_base", cloud: nil, logger: Logger(label: "test"))
        let old = Date().addingTimeInterval(-7200)
        for name in ["old-unused", "old-in-use", "new-unused", "stale.part"] {
            FileManager.default.createFile(atPath: directory + "/_base/" + name, contents: Data("x".utf8))
        }
        for name in ["old-unused", "old-in-use"] {
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: directory + "/_base/" + name)
        }
        let removed = await cache.prune(inUse: ["old-in-use"], unusedAge: 3600)
        #expect(removed == ["old-unused"])
        let left = try FileManager.default.contentsOfDirectory(atPath: directory + "/_base").sorted()
        #expect(left == ["new-unused", "old-in-use", "stale.part"])
        // A cached image is a hit (and counts as used now); a missing one needs the service user.
        let hit = try await cache.fetch(.init(id: "old-in-use", diskFormat: "qcow2", checksum: nil, size: nil, properties: [:]))
        #expect(hit == directory + "/_base/old-in-use")
        let touched = try FileManager.default.attributesOfItem(atPath: hit)[.modificationDate] as! Date
        #expect(touched.timeIntervalSinceNow > -60)
        await #expect(throws: ImageCache.Failure.self) {
            try await cache.fetch(.init(id: "missing", diskFormat: "qcow2", checksum: nil, size: nil, properties: [:]))
        }
        // A partial download a crash left is removed by the next start.
        _ = ImageCache(directory: directory + "/_base", cloud: nil, logger: Logger(label: "test"))
        #expect(!FileManager.default.fileExists(atPath: directory + "/_base/stale.part"))
    }

    @Test func consoleTailCountsSerialLines() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = InstanceFiles(root: directory, id: UUID().uuidString.lowercased())
        try FileManager.default.createDirectory(atPath: files.directory, withIntermediateDirectories: true)
        try Data("one\r\ntwo\r\nthree\r\nfour\r\n".utf8).write(to: URL(fileURLWithPath: files.console))
        #expect(files.consoleTail(lines: 2) == "three\nfour")
        #expect(files.consoleTail(lines: 2).split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).count == 2)
        #expect(files.consoleTail(lines: nil).hasPrefix("one"))
        #expect(files.consoleTail(lines: 0) == "")
    }

    /// The domain XML is accepted by libvirt as it is, keeps Petrel's metadata (the mark
    /// that a domain is Petrel's), and carries the flavor's sizes and disks.
    @Test func libvirtAcceptsTheDomainAndKeepsPetrelsMark() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try LibvirtConnection(uri: "test:///default")
        let spec = spec(ephemeral: 1, swap: 64)
        let files = InstanceFiles(root: directory, id: spec.id)
        let xml = InstanceDomain(domainType: "test", cpuMode: "none", vncListen: "127.0.0.1", emulator: nil)
            .definition(spec, files: files, host: "h").xml
        let domain = try connection.define(xml: xml)
        defer { try? domain.undefine() }
        #expect(domain.uuid == spec.id && domain.name == DomainNaming.name(spec.id))
        let stored = try domain.xml(inactive: true)
        #expect(InstanceDomain.isPetrels(stored))
        // libvirt keeps the metadata as written: a node tells its own domains from another's.
        #expect(InstanceDomain.isPetrels(stored, host: "h") && !InstanceDomain.isPetrels(stored, host: "another-node"))
        #expect(stored.contains("<vcpu placement='static'>2</vcpu>"))
        #expect(stored.contains("131072"))
        for disk in [files.disk, files.ephemeral, files.swap] { #expect(stored.contains(disk)) }
        #expect(!InstanceDomain.isPetrels("<domain type='kvm'><name>someone-elses</name></domain>"))
    }

    /// A spec with a config drive: the node writes `disk.config` (ISO 9660, label config-2,
    /// the files at their paths), attaches it read-only after the other disks, and the test
    /// guest booted from it finds its metadata there and runs its user data.
    @Test func theConfigDriveReachesTheGuest() async throws {
        try await withGuestSlots(1) {
            try Requirement.root()
            try Requirement.libvirtd()
            try Requirement.tool("genisoimage")
            try Requirement.tool("isoinfo")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var spec = spec(swap: 16)
            let token = UUID().uuidString.prefix(8)
            spec.configDrive = [
                .init(path: "openstack/latest/meta_data.json", contents: Data(#"{"uuid": "\#(spec.id)", "hostname": "drive-\#(token)"}"#.utf8)),
                .init(path: "openstack/latest/user_data", contents: Data("#!/bin/sh\necho \"config drive \(token) on $(hostname)\"\n".utf8)),
                .init(path: "ec2/latest/meta-data.json", contents: Data("{}".utf8)),
            ]
            let base = try await Command.check(Repository.root.appendingPathComponent("Packaging/guest-image/build.sh").path, [])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let files = InstanceFiles(root: directory, id: spec.id)
            try await files.create(spec, base: base)
            let volume = try await Command.check("isoinfo", ["-d", "-i", files.configDrive])
            #expect(volume.contains("Volume id: config-2"), "\(volume)")
            let listing = try await Command.check("isoinfo", ["-R", "-f", "-i", files.configDrive])
            #expect(listing.contains("/openstack/latest/meta_data.json") && listing.contains("/ec2/latest/meta-data.json"), "\(listing)")
            #expect(!FileManager.default.fileExists(atPath: files.directory + "/config-drive.tmp"), "the staging tree is removed")

            let definition = InstanceDomain(domainType: "qemu", cpuMode: "none", vncListen: "127.0.0.1", emulator: "/usr/bin/qemu-system-x86_64")
                .definition(spec, files: files, host: "h")
            let drive = definition.devices.compactMap { device -> Disk? in if case .disk(let disk) = device { return disk }; return nil }.last
            #expect(drive?.source == .file(files.configDrive) && drive?.readOnly == true && drive?.target == "vdc", "after vda and the swap disk")
            let connection = try LibvirtConnection(uri: "qemu:///system")
            let domain = try connection.define(xml: definition.xml)
            defer { try? domain.destroy(); try? domain.undefine() }
            try domain.start()
            let console = { (try? String(contentsOfFile: files.console, encoding: .utf8))?.replacingOccurrences(of: "\r\n", with: "\n") ?? "" }
            let ready = await eventually(timeout: .seconds(240), every: .milliseconds(250)) { console().contains("PETREL-GUEST-READY") }
            #expect(ready, "console:\n\(console())")
            #expect(console().contains("PETREL-GUEST-CONFIGDRIVE-OK uuid=\(spec.id)"), "console:\n\(console())")
            #expect(console().contains("PETREL-USERDATA-BEGIN\nconfig drive \(token) on drive-\(token)\nPETREL-USERDATA-END\n"),
                    "console:\n\(console())")
        }
    }

    /// Booted from a volume: the volume is the first disk (`vda`, where the firmware boots),
    /// there is no local root disk, and the flavor's other disks follow from `vdb`.
    @Test func aRootVolumeIsTheFirstDiskAndTheOnlyRoot() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try LibvirtConnection(uri: "test:///default")
        var spec = spec(ephemeral: 1, swap: 0)
        spec.image = nil
        spec.volumes = [VolumeDisk(volumeID: "data-volume", path: "/volumes/data", block: false, device: "vdc"),
                        VolumeDisk(volumeID: "root-volume", path: "/volumes/root", block: false, device: "vda")]
        #expect(spec.rootVolume?.volumeID == "root-volume")
        let files = InstanceFiles(root: directory, id: spec.id)
        let xml = InstanceDomain(domainType: "test", cpuMode: "none", vncListen: "127.0.0.1", emulator: nil)
            .definition(spec, files: files, host: "h").xml
        let domain = try connection.define(xml: xml)
        defer { try? domain.undefine() }
        let stored = try domain.xml(inactive: true)
        #expect(!stored.contains(files.disk + "'"), "no local root disk")
        #expect(InstanceDomain.targets(in: stored) == ["vda", "vdb", "vdc"])
        #expect(InstanceDomain.volumeTarget(stored, volumeID: "root-volume") == "vda")
        #expect(InstanceDomain.volumeTarget(stored, volumeID: "data-volume") == "vdc")
        #expect(stored.contains(files.ephemeral), "the flavor's ephemeral disk, as vdb")
        let first = try #require(stored.range(of: "<disk"))
        #expect(stored[first.lowerBound...].prefix(400).contains("/volumes/root"), "the root volume is the first disk")
    }

    /// A volume on another host is a network disk QEMU's initiator reaches, its CHAP password
    /// named by a libvirt secret; the secrets a definition names are found again for teardown.
    @Test func aVolumeOnAnotherHostIsAnISCSIDiskWithCHAP() throws {
        let iscsi = ISCSITarget(portal: "192.0.2.9:3261", iqn: "iqn.2010-10.org.openstack:volume-v1", lun: 1, username: "petrel-abc",
                                password: "secret-not-in-the-xml")
        let xml = InstanceDomain.volume(VolumeDisk(volumeID: "v1", path: "", block: false, device: "vdc", iscsi: iscsi)).xml
        #expect(xml.contains("<disk type='network' device='disk'>"))
        #expect(xml.contains("<source protocol='iscsi' name='iqn.2010-10.org.openstack:volume-v1/1'>"))
        #expect(xml.contains("<host name='192.0.2.9' port='3261'/>"))
        #expect(xml.contains("<auth username='petrel-abc'>") && xml.contains("<secret type='iscsi' usage='petrel-iscsi-petrel-abc'/>"))
        #expect(!xml.contains("secret-not-in-the-xml"), "the password stays in the secret")
        #expect(InstanceDomain.secretUsages(in: "<domain>\(xml)\(xml)</domain>") == ["petrel-iscsi-petrel-abc", "petrel-iscsi-petrel-abc"])
        let v6 = ISCSITarget(portal: "[2001:db8::5]:3260", iqn: "", lun: 1, username: "", password: "").address
        #expect(v6.host == "2001:db8::5" && v6.port == 3260)
    }

    @Test func qemuDefinesTheDomainWithConsoleAndVNC() async throws {
        try Requirement.root()
        try Requirement.libvirtd()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try LibvirtConnection(uri: "qemu:///system")
        let spec = spec()
        let files = InstanceFiles(root: directory, id: spec.id)
        let xml = InstanceDomain(domainType: "qemu", cpuMode: "none", vncListen: "127.0.0.1", emulator: "/usr/bin/qemu-system-x86_64")
            .definition(spec, files: files, host: "h").xml
        let domain = try connection.define(xml: xml)
        defer { try? domain.undefine() }
        let stored = try domain.xml(inactive: true)
        #expect(InstanceDomain.isPetrels(stored))
        #expect(stored.contains(files.console) && stored.contains("<graphics type='vnc'") && stored.contains("listen='127.0.0.1'"))
        #expect(try domain.state() == .shutOff)
    }
}
