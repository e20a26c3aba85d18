import Contracts
import Foundation
import LibvirtDriver

/// The libvirt domain of an instance, from its flavor, image properties and the node's
/// configuration. The `<metadata>` element marks the domain as Petrel's: the node never
/// touches a domain without it.
public struct InstanceDomain: Sendable {
    public static let namespace = "https://petrel.dev/xmlns/instance/1"

    /// kvm, qemu, or test (libvirt's simulated hypervisor).
    public var domainType: String
    public var cpuMode: String
    public var vncListen: String
    public var emulator: String?
    /// Nova's `[vnc]` / `[serial_console]` options as this node applies them (ComputeConsoles.swift).
    public var consoles = ConsoleOptions()

    public init(domainType: String, cpuMode: String, vncListen: String, emulator: String?) {
        self.domainType = domainType
        self.cpuMode = cpuMode
        self.vncListen = vncListen
        self.emulator = emulator
    }

    public init(info: HypervisorInfo, cpuMode: String, vncListen: String) {
        self.init(domainType: info.domainType, cpuMode: cpuMode, vncListen: vncListen, emulator: info.emulator)
    }

    /// Nova's stable rescue (2.87), which a rescue image asks for with `hw_rescue_device` or
    /// `hw_rescue_bus`: the instance keeps every disk where it is and the rescue disk comes
    /// last, of that device type on that bus, first in the boot order.
    public struct StableRescue: Sendable, Equatable {
        /// `disk` or `cdrom`.
        public var device: String
        public var bus: String
    }

    /// A rescue image's device or bus this node cannot attach (Nova's UnsupportedRescueDevice/Bus).
    public struct UnsupportedRescue: Error, CustomStringConvertible {
        public let description: String
    }

    /// The stable rescue `image` asks for, nil for Nova's legacy rescue. The device defaults to a
    /// disk; the bus to the image's `hw_disk_bus` (virtio) for a disk, `hw_cdrom_bus` (ide) for a cdrom.
    public static func stableRescue(_ image: InstanceSpec.Image?) throws -> StableRescue? {
        let properties = image?.properties ?? [:]
        guard properties["hw_rescue_device"] != nil || properties["hw_rescue_bus"] != nil else { return nil }
        let device = properties["hw_rescue_device"] ?? "disk"
        // (Nova also knows floppy and lun; a QEMU guest here gets disks and cdroms.)
        guard ["disk", "cdrom"].contains(device) else {
            throw UnsupportedRescue(description: "Requested rescue device '\(device)' is not supported")
        }
        let bus = properties["hw_rescue_bus"] ?? (device == "cdrom" ? properties["hw_cdrom_bus"] ?? "ide" : properties["hw_disk_bus"] ?? "virtio")
        guard ["virtio", "scsi", "ide", "usb", "sata"].contains(bus), !(device == "cdrom" && bus == "virtio") else {
            throw UnsupportedRescue(description: "Requested rescue bus '\(bus)' is not supported by the qemu virt driver")
        }
        return StableRescue(device: device, bus: bus)
    }

    /// `rescue`: the domain of the rescued instance. Legacy rescue (Nova's libvirt driver
    /// before 2.87, and whenever the rescue image asks for nothing): it boots from the rescue
    /// disk, its own root disk second (and its config drive), without its ephemeral, swap or
    /// volume disks. Stable rescue (`stableRescue`): every disk as it is, the rescue disk last
    /// and booted first.
    public func definition(_ spec: InstanceSpec, files: InstanceFiles, host: String, serialPort: Int? = nil,
                           rescue: Bool = false) -> DomainDefinition {
        let stable = rescue ? (try? Self.stableRescue(spec.rescueImage)) ?? nil : nil
        let legacyRescue = rescue && stable == nil
        let properties = spec.image?.properties ?? [:]
        let bus = properties["hw_disk_bus"].map { ["virtio", "scsi", "ide", "sata"].contains($0) ? $0 : "virtio" } ?? "virtio"
        let prefix = bus == "virtio" ? "vd" : "sd"
        var letters = "abcdefghijklmnopqrstuvwxyz".map(String.init).makeIterator()
        func disk(_ path: String, _ format: String, readOnly: Bool = false) -> Device {
            .disk(Disk(source: .file(path), format: format, target: prefix + (letters.next() ?? "z"), bus: bus, readOnly: readOnly))
        }
        var devices: [Device] = []
        let realGuest = domainType != "test"
        if realGuest, let emulator { devices.append(.emulator(emulator)) }
        if legacyRescue {
            devices.append(disk(files.rescueDisk, "qcow2"))
            devices.append(disk(files.disk, "qcow2"))
        } else if let root = spec.rootVolume {
            // Booted from a volume: the volume is the first disk, where the firmware boots from.
            devices.append(Self.volume(root))
            _ = letters.next()
        } else {
            devices.append(disk(files.disk, "qcow2"))
        }
        if spec.flavor.ephemeralGB > 0 && !legacyRescue { devices.append(disk(files.ephemeral, "qcow2")) }
        if spec.flavor.swapMB > 0 && !legacyRescue { devices.append(disk(files.swap, "raw")) }
        // The config drive last, read-only, on the disks' bus (a disk rather than Nova's IDE
        // cdrom: guests find it by its label either way, and need no ATA driver).
        if spec.configDrive != nil { devices.append(disk(files.configDrive, "raw", readOnly: true)) }
        // The attached volumes, each where it was first plugged.
        if !legacyRescue { devices += (spec.volumes ?? []).filter { $0.device != nil && $0 != spec.rootVolume }.map(Self.volume) }
        var bootDevices = ["hd"]
        if let stable {
            // The next free name of the bus's kind, after every disk the instance has.
            let used = Set(devices.compactMap { device -> String? in if case .disk(let disk) = device { disk.target } else { nil } })
            let kind = stable.bus == "virtio" ? "vd" : stable.bus == "ide" ? "hd" : "sd"
            let target = "abcdefghijklmnopqrstuvwxyz".map { kind + String($0) }.first { !used.contains($0) } ?? kind + "z"
            var rescueDisk = Disk(source: .file(files.rescueDisk), device: stable.device, format: "qcow2", target: target, bus: stable.bus,
                                  readOnly: stable.device == "cdrom")
            rescueDisk.bootOrder = 1
            devices.append(.disk(rescueDisk))
            // Per-device boot order replaces the domain's boot devices (libvirt takes one or the other).
            bootDevices = []
        }
        // One virtio NIC per port, its tap named as Neutron's agents expect, on the network's bridge.
        devices += spec.nics.map(Self.interface)
        if realGuest {
            // With a serial console the port is served over TCP (libvirt mirrors it as the
            // console), its output still logged to the console file.
            devices += serialPort.map { [.tcpSerial(host: consoles.serialListen, port: $0, log: files.console, target: 0)] }
                ?? [.serial(path: files.console, port: 0), .console(path: files.console, port: 0)]
            devices += [.graphics(Graphics(listen: vncListen)), .video(model: "virtio"), .memballoon(model: "virtio")]
        }
        let petrel = XMLNode("petrel:instance", ["xmlns:petrel": Self.namespace], [
            XMLNode("petrel:name", text: spec.name),
            XMLNode("petrel:project", text: spec.projectID),
            XMLNode("petrel:user", text: spec.userID),
            XMLNode("petrel:flavor", ["id": spec.flavor.id], text: spec.flavor.name),
            XMLNode("petrel:image", text: spec.image?.id ?? ""),
            XMLNode("petrel:host", text: host),
        ])
        let cpu: String?
        switch (domainType, cpuMode) {
        case ("kvm", "host-model"), ("kvm", "host-passthrough"): cpu = cpuMode
        default: cpu = nil
        }
        return DomainDefinition(
            type: domainType, name: DomainNaming.name(spec.id), uuid: spec.id, title: spec.name, metadata: [petrel],
            memoryMiB: spec.flavor.memoryMB, vcpus: spec.flavor.vcpus,
            smbiosSystem: [("manufacturer", "Petrel"), ("product", "OpenStack Compute"), ("uuid", spec.id)],
            os: .init(arch: "x86_64", bootDevices: bootDevices, smbiosFromSysinfo: realGuest), cpuMode: cpu, devices: devices)
    }

    /// The guest's NIC of a port: virtio, its tap named as Neutron's agents expect, on the
    /// network's bridge.
    public static func interface(_ nic: InstanceSpec.NIC) -> Device {
        .interface(Interface(attachment: .bridge(nic.bridgeName), mac: nic.macAddress, targetDevice: nic.tapName, mtu: nic.mtu))
    }

    /// A volume's disk: raw, virtio, the volume's id as its serial (the guest finds it under
    /// /dev/disk/by-id/virtio-<id[:20]>, as with Nova).
    public static func volume(_ disk: VolumeDisk) -> Device {
        if let iscsi = disk.iscsi {
            // On another host: QEMU's own initiator logs in to the target with the attachment's
            // CHAP account, its password in the libvirt secret named for the account.
            let portal = iscsi.address
            return .disk(Disk(source: .network(protocol: "iscsi", name: "\(iscsi.iqn)/\(iscsi.lun)", host: portal.host, port: portal.port),
                              format: "raw", target: disk.device ?? "vdz", bus: "virtio", serial: disk.volumeID,
                              auth: .init(username: iscsi.username, secretUsage: secretUsage(iscsi))))
        }
        return .disk(Disk(source: disk.block ? .block(disk.path) : .file(disk.path), format: "raw", target: disk.device ?? "vdz", bus: "virtio",
                          serial: disk.volumeID))
    }

    /// The name of the libvirt secret holding an iSCSI disk's CHAP password.
    public static func secretUsage(_ iscsi: ISCSITarget) -> String { secretPrefix + iscsi.username }
    public static let secretPrefix = "petrel-iscsi-"

    /// The disk secrets a domain's XML names.
    static func secretUsages(in xml: String) -> [String] {
        var found: [String] = []
        var rest = xml[...]
        while let range = rest.range(of: "usage='\(secretPrefix)") {
            let after = rest[rest.index(range.lowerBound, offsetBy: 7)...]
            guard let end = after.firstIndex(of: "'") else { break }
            found.append(String(after[..<end]))
            rest = after[end...]
        }
        return found
    }

    /// Whether a domain's XML has the disk of this volume.
    public static func hasVolume(_ xml: String, volumeID: String) -> Bool {
        xml.contains("<serial>\(volumeID)</serial>")
    }

    /// Whether a domain's XML has this volume's disk: by its serial, or by its source (a
    /// running guest whose disk was swapped keeps the old volume's serial).
    public static func holds(_ xml: String, _ disk: VolumeDisk) -> Bool {
        pluggedVolumes(in: xml).contains { $0.isDisk(of: disk) }
    }

    /// A volume's disk as a domain's XML has it: any disk with a serial (the instance's own
    /// disks have none).
    struct PluggedVolume: Equatable {
        var serial: String
        var target: String
        /// The file, the device, or the iSCSI `iqn/lun` it reads.
        var source: String
        var block: Bool
        /// The libvirt secret holding its CHAP password.
        var secretUsage: String?

        /// Whether this is the disk of that volume: by serial, or by source (a running guest
        /// whose disk was swapped keeps the old volume's serial).
        func isDisk(of disk: VolumeDisk) -> Bool {
            if serial == disk.volumeID { return true }
            if let iscsi = disk.iscsi { return source == "\(iscsi.iqn)/\(iscsi.lun)" }
            return !disk.path.isEmpty && source == disk.path
        }
    }

    /// The volumes' disks in a domain's XML.
    static func pluggedVolumes(in xml: String) -> [PluggedVolume] {
        var found: [PluggedVolume] = []
        var rest = xml[...]
        while let open = rest.range(of: "<disk "), let close = rest[open.upperBound...].range(of: "</disk>") {
            let element = String(rest[open.lowerBound..<close.upperBound])
            rest = rest[close.upperBound...]
            guard let serial = value(in: element, between: "<serial>", and: "</serial>"), let target = targets(in: element).first else { continue }
            let source = value(in: element, between: "<source ", and: ">") ?? ""
            let device = value(in: source, between: "dev='", and: "'")
            let read = value(in: source, between: "file='", and: "'") ?? device ?? value(in: source, between: "name='", and: "'") ?? ""
            found.append(PluggedVolume(serial: serial, target: target, source: read, block: device != nil,
                                       secretUsage: secretUsages(in: element).first))
        }
        return found
    }

    /// The text between the first `start` and the next `end`.
    private static func value(in text: String, between start: String, and end: String) -> String? {
        guard let from = text.range(of: start), let to = text[from.upperBound...].range(of: end) else { return nil }
        return String(text[from.upperBound..<to.lowerBound])
    }

    /// The device of this volume's disk in a domain's XML.
    static func volumeTarget(_ xml: String, volumeID: String) -> String? {
        guard let serial = xml.range(of: "<serial>\(volumeID)</serial>") else { return nil }
        let disk = xml[..<serial.lowerBound]
        guard let start = disk.range(of: "<disk", options: .backwards) else { return nil }
        return targets(in: String(xml[start.lowerBound..<serial.upperBound])).first
    }

    /// The disk targets (`vda`, …) named in a domain's XML.
    static func targets(in xml: String) -> [String] {
        var found: [String] = []
        var rest = xml[...]
        while let range = rest.range(of: "<target dev='") {
            let after = rest[range.upperBound...]
            guard let end = after.firstIndex(of: "'") else { break }
            found.append(String(after[..<end]))
            rest = after[end...]
        }
        return found
    }

    /// The first virtio disk name none of these definitions uses (`vdb` onwards).
    static func freeTarget(in definitions: [String]) -> String? {
        let used = Set(definitions.flatMap(targets))
        return "bcdefghijklmnopqrstuvwxyz".map { "vd\($0)" }.first { !used.contains($0) }
    }

    /// Whether a domain's XML has a NIC with this MAC address (libvirt writes it in lower case).
    public static func hasInterface(_ xml: String, mac: String) -> Bool {
        xml.contains("<mac address='\(mac.lowercased())'/>")
    }

    /// Whether a domain's XML carries Petrel's metadata, and (given `host`) names that host as
    /// its own: a node never touches the domains another node made on a shared libvirtd.
    public static func isPetrels(_ xml: String, host: String? = nil) -> Bool {
        guard xml.contains(namespace) else { return false }
        guard let host else { return true }
        return xml.contains("<petrel:host>\(XMLNode.escape(host))</petrel:host>")
    }
}
