import Foundation
import LibvirtDriver
import Logging
import NetlinkDriver
import ProcessDriver
import TestSupport
import Testing

/// Builds (or reuses) the test guest image and boots it under libvirt with TCG.
struct Guest {
    let name = TestNames.unique("petrel-test-")
    let uuid = UUID().uuidString.lowercased()
    let directory: URL
    var disk: URL { directory.appendingPathComponent("disk.qcow2") }
    var console: URL { directory.appendingPathComponent("console.log") }

    init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let base = try await Command.check(Repository.root.appendingPathComponent("Packaging/guest-image/build.sh").path, [])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try await Command.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", disk.path])
    }

    /// `configDrive`: a raw ISO attached as a second, read-only virtio disk.
    func xml(bridge: String? = nil, configDrive: URL? = nil) -> String {
        let nic = bridge.map { "<interface type='bridge'><source bridge='\($0)'/><model type='virtio'/></interface>" } ?? ""
        let drive = configDrive.map {
            "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='\($0.path)'/><target dev='vdb' bus='virtio'/><readonly/></disk>"
        } ?? ""
        return """
        <domain type='qemu'>
          <name>\(name)</name>
          <uuid>\(uuid)</uuid>
          <memory unit='MiB'>128</memory>
          <vcpu>1</vcpu>
          <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
          <devices>
            <emulator>/usr/bin/qemu-system-x86_64</emulator>
            <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='\(disk.path)'/><target dev='vda' bus='virtio'/></disk>
            \(drive)
            \(nic)
            <serial type='file'><source path='\(console.path)'/><target port='0'/></serial>
            <console type='file'><source path='\(console.path)'/><target type='serial' port='0'/></console>
          </devices>
        </domain>
        """
    }

    func consoleText() -> String { (try? String(contentsOf: console, encoding: .utf8)) ?? "" }

    func remove(from connection: LibvirtConnection) {
        if let domain = try? connection.domain(named: name) {
            try? domain.destroy()
            try? domain.undefine()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

@Suite(.serialized) struct GuestBootTests {
    @Test func guestBootsUnderTCGAndPrintsItsMarker() async throws {
        try await withGuestSlots(1) {
            try Requirement.root()
            try Requirement.libvirtd()
            let connection = try LibvirtConnection(uri: "qemu:///system")
            let guest = try await Guest()
            defer { guest.remove(from: connection) }
            let started = ContinuousClock.now
            try connection.define(xml: guest.xml()).start()
            // Generous: under TCG on two cores beside the other suites a boot can take a minute.
            let booted = await eventually(timeout: .seconds(240), every: .milliseconds(200)) {
                guest.consoleText().contains("PETREL-GUEST-BOOTED")
            }
            #expect(booted, "console:\n\(guest.consoleText())")
            print("guest booted to its marker in \(ContinuousClock.now - started)")
            let ready = await eventually(timeout: .seconds(120)) { guest.consoleText().contains("PETREL-GUEST-READY") }
            #expect(ready && guest.consoleText().contains("PETREL-GUEST-IP=none"))
            #expect(!guest.consoleText().contains("PETREL-USERDATA-BEGIN") && !guest.consoleText().contains("PETREL-GUEST-CONFIGDRIVE"),
                    "no config drive, no user data")
        }
    }

    /// A config drive (ISO 9660, label config-2, Nova's tree) without any network: the guest
    /// reads its metadata there and runs its `#!/bin/sh` user data.
    @Test func guestReadsAConfigDriveAndRunsItsUserData() async throws {
        try await withGuestSlots(1) { try await readsAConfigDrive() }
    }

    func readsAConfigDrive() async throws {
        try Requirement.root()
        try Requirement.libvirtd()
        try Requirement.tool("genisoimage")
        let connection = try LibvirtConnection(uri: "qemu:///system")
        let guest = try await Guest()
        defer { guest.remove(from: connection) }
        let tree = guest.directory.appendingPathComponent("config-drive")
        let latest = tree.appendingPathComponent("openstack/latest")
        try FileManager.default.createDirectory(at: latest, withIntermediateDirectories: true)
        try #"{"uuid": "\#(guest.uuid)", "hostname": "drive-guest", "name": "guest"}"#
            .write(to: latest.appendingPathComponent("meta_data.json"), atomically: true, encoding: .utf8)
        let token = UUID().uuidString.prefix(8)
        try "#!/bin/sh\necho \"user data \(token) ran on $(hostname)\"\necho second line\n"
            .write(to: latest.appendingPathComponent("user_data"), atomically: true, encoding: .utf8)
        let iso = guest.directory.appendingPathComponent("config-drive.iso")
        try await Command.check("genisoimage", ["-quiet", "-R", "-J", "-V", "config-2", "-o", iso.path, tree.path])
        try connection.define(xml: guest.xml(configDrive: iso)).start()
        let ready = await eventually(timeout: .seconds(240), every: .milliseconds(250)) {
            guest.consoleText().contains("PETREL-GUEST-READY")
        }
        let console = guest.consoleText().replacingOccurrences(of: "\r\n", with: "\n")
        #expect(ready, "console:\n\(console)")
        #expect(console.contains("PETREL-GUEST-CONFIGDRIVE-OK uuid=\(guest.uuid)"), "console:\n\(console)")
        #expect(console.contains("PETREL-USERDATA-BEGIN\nuser data \(token) ran on drive-guest\nsecond line\nPETREL-USERDATA-END\n"),
                "console:\n\(console)")
        #expect(console.contains("PETREL-GUEST-METADATA-FAIL"), "no network, so no metadata service; console:\n\(console)")
    }

    /// The whole guest contract: DHCP from dnsmasq in a namespace, the metadata document
    /// from 169.254.169.254, pings and its HTTP server, all on a private bridge.
    @Test func guestNetworkContract() async throws {
        try await withGuestSlots(1) { try await networkContract() }
    }

    func networkContract() async throws {
        try Requirement.root()
        try Requirement.libvirtd()
        try Requirement.tool("dnsmasq")
        let logger = Logger(label: "guest-test")
        let connection = try LibvirtConnection(uri: "qemu:///system")
        let netlink = try Netlink()
        let guest = try await Guest()
        let tag = TestNames.unique("pt")
        let bridge = tag + "b", outside = tag + "o", inside = tag + "i"
        let subnet = "198.19.\(Int.random(in: 1...250))"
        let namespace = try NetworkNamespace.create(tag)
        var children: [ChildProcess] = []
        defer {
            guest.remove(from: connection)
            for child in children { child.signal(SIGKILL) }
            try? netlink.deleteLink(outside)
            try? netlink.deleteLink(bridge)
            try? namespace.delete()
        }
        // bridge ── veth ── namespace (10.x.1 + 169.254.169.254, dnsmasq, metadata server)
        try netlink.createBridge(bridge)
        try netlink.setUp(bridge)
        try netlink.createVeth(outside, peer: inside)
        try netlink.setMaster(outside, bridge: bridge)
        try netlink.setUp(outside)
        try netlink.move(inside, to: namespace)
        let nsLinks = try Netlink(namespace: namespace)
        try nsLinks.setUp("lo")
        try nsLinks.setUp(inside)
        try nsLinks.addAddress("\(subnet).1/24", to: inside)
        try nsLinks.addAddress("169.254.169.254/32", to: inside)

        let metadata = guest.directory.appendingPathComponent("metadata/openstack/latest")
        try FileManager.default.createDirectory(at: metadata, withIntermediateDirectories: true)
        try #"{"uuid": "\#(guest.uuid)", "hostname": "guest-\#(tag)", "name": "guest"}"#
            .write(to: metadata.appendingPathComponent("meta_data.json"), atomically: true, encoding: .utf8)
        try "#!/bin/sh\necho \"network user data on $(hostname)\"\n"
            .write(to: metadata.appendingPathComponent("user_data"), atomically: true, encoding: .utf8)
        let dnsmasq = try ChildProcess(name: "dnsmasq", executable: "dnsmasq", arguments: [
            "--no-daemon", "--conf-file=/dev/null", "--port=0", "--bind-interfaces", "--interface=\(inside)",
            "--except-interface=lo", "--dhcp-range=\(subnet).10,\(subnet).50,255.255.255.0,10m",
            "--dhcp-option=3,\(subnet).1", "--dhcp-leasefile=\(guest.directory.path)/leases",
            "--pid-file=", "--log-dhcp", "--user=root",
        ], namespace: namespace, logger: logger)
        try dnsmasq.start()
        children.append(dnsmasq)
        let server = try ChildProcess(name: "metadata", executable: "/usr/bin/python3", arguments: [
            "-m", "http.server", "80", "--bind", "169.254.169.254", "--directory", guest.directory.appendingPathComponent("metadata").path,
        ], namespace: namespace, logger: logger)
        try server.start()
        children.append(server)

        try connection.define(xml: guest.xml(bridge: bridge)).start()
        let ready = await eventually(timeout: .seconds(240), every: .milliseconds(250)) {
            guest.consoleText().contains("PETREL-GUEST-READY")
        }
        let console = guest.consoleText()
        #expect(ready, "console:\n\(console)\ndnsmasq:\n\(dnsmasq.recentOutput.joined(separator: "\n"))")
        #expect(console.contains("PETREL-GUEST-METADATA-OK uuid=\(guest.uuid)"), "console:\n\(console)")
        #expect(console.replacingOccurrences(of: "\r\n", with: "\n")
                    .contains("PETREL-USERDATA-BEGIN\nnetwork user data on guest-\(tag)\nPETREL-USERDATA-END\n"),
                "the user data ran after the metadata was fetched; console:\n\(console)")
        let address = try #require(console.split(whereSeparator: \.isNewline).first { $0.hasPrefix("PETREL-GUEST-IP=") }?
            .dropFirst("PETREL-GUEST-IP=".count).trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(address.hasPrefix("\(subnet)."), "console:\n\(console)")
        try await Command.check("ping", ["-c", "2", "-W", "5", address], namespace: namespace)
        let page = try await Command.check("curl", ["-s", "--max-time", "10", "http://\(address)/"], namespace: namespace)
        #expect(page.trimmingCharacters(in: .whitespacesAndNewlines) == "guest-\(tag)")
    }
}
