/// A libvirt domain as typed values (https://libvirt.org/formatdomain.html), rendered to
/// libvirt's XML by one writer. A NIC or a volume is a new `Device` value, not a new string
/// template; what libvirt makes of the XML is checked by defining it and reading it back.
public struct DomainDefinition: Sendable, Equatable {
    /// `kvm`, `qemu` (TCG) or `test` (libvirt's simulated hypervisor).
    public var type: String
    public var name: String
    public var uuid: String
    public var title: String?
    /// Application elements under `<metadata>`, each in its own XML namespace.
    public var metadata: [XMLNode]
    public var memoryMiB: Int
    public var vcpus: Int
    /// SMBIOS system entries (`<sysinfo type='smbios'><system><entry name=…>`), in order.
    public var smbiosSystem: [(name: String, value: String)]
    public var os: OperatingSystem
    public var features: [String]
    /// `host-model`, `host-passthrough`, or nil for the hypervisor's default CPU.
    public var cpuMode: String?
    public var clockOffset: String
    public var onPoweroff: String
    public var onReboot: String
    public var onCrash: String
    public var devices: [Device]

    public struct OperatingSystem: Sendable, Equatable {
        public var arch: String
        public var bootDevices: [String]
        /// Whether the guest sees `smbiosSystem` (`<smbios mode='sysinfo'/>`).
        public var smbiosFromSysinfo: Bool

        public init(arch: String = "x86_64", bootDevices: [String] = ["hd"], smbiosFromSysinfo: Bool = false) {
            self.arch = arch
            self.bootDevices = bootDevices
            self.smbiosFromSysinfo = smbiosFromSysinfo
        }
    }

    public init(type: String, name: String, uuid: String, title: String? = nil, metadata: [XMLNode] = [], memoryMiB: Int,
                vcpus: Int, smbiosSystem: [(name: String, value: String)] = [], os: OperatingSystem = OperatingSystem(),
                features: [String] = ["acpi", "apic"], cpuMode: String? = nil, clockOffset: String = "utc",
                onPoweroff: String = "destroy", onReboot: String = "restart", onCrash: String = "destroy", devices: [Device] = []) {
        self.type = type; self.name = name; self.uuid = uuid; self.title = title; self.metadata = metadata
        self.memoryMiB = memoryMiB; self.vcpus = vcpus; self.smbiosSystem = smbiosSystem; self.os = os
        self.features = features; self.cpuMode = cpuMode; self.clockOffset = clockOffset; self.onPoweroff = onPoweroff
        self.onReboot = onReboot; self.onCrash = onCrash; self.devices = devices
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.xml == rhs.xml }

    /// The domain's XML, as `virDomainDefineXML` takes it.
    public var xml: String { node.rendered() }

    var node: XMLNode {
        var sysinfo: [XMLNode] = []
        if !smbiosSystem.isEmpty {
            sysinfo = [XMLNode("sysinfo", ["type": "smbios"], [
                XMLNode("system", [:], smbiosSystem.map { XMLNode("entry", ["name": $0.name], text: $0.value) }),
            ])]
        }
        var osChildren = [XMLNode("type", ["arch": os.arch], text: "hvm")] + os.bootDevices.map { XMLNode("boot", ["dev": $0]) }
        if os.smbiosFromSysinfo { osChildren.append(XMLNode("smbios", ["mode": "sysinfo"])) }
        var children: [XMLNode] = [XMLNode("name", text: name), XMLNode("uuid", text: uuid)]
        if let title { children.append(XMLNode("title", text: title)) }
        if !metadata.isEmpty { children.append(XMLNode("metadata", [:], metadata)) }
        children += [XMLNode("memory", ["unit": "MiB"], text: String(memoryMiB)), XMLNode("vcpu", text: String(vcpus))]
        children += sysinfo
        children.append(XMLNode("os", [:], osChildren))
        children.append(XMLNode("features", [:], features.map { XMLNode($0) }))
        if let cpuMode { children.append(XMLNode("cpu", ["mode": cpuMode])) }
        children += [XMLNode("clock", ["offset": clockOffset]), XMLNode("on_poweroff", text: onPoweroff),
                     XMLNode("on_reboot", text: onReboot), XMLNode("on_crash", text: onCrash),
                     XMLNode("devices", [:], devices.map(\.node))]
        return XMLNode("domain", ["type": type], children)
    }
}

/// A device of a domain.
public enum Device: Sendable, Equatable {
    case emulator(String)
    case disk(Disk)
    case interface(Interface)
    /// A serial port writing to a file (`path`), or a pseudo-terminal when `path` is nil.
    case serial(path: String?, port: Int)
    /// The console on a serial port, writing to the same file.
    case console(path: String?, port: Int)
    /// A serial port served over TCP (`host:port`, raw), its output also written to `log`
    /// (Nova's serial console: a client reaches the guest's console through the proxy).
    case tcpSerial(host: String, port: Int, log: String?, target: Int)
    case graphics(Graphics)
    case video(model: String)
    case memballoon(model: String)

    /// The device alone, as `virDomainAttachDeviceFlags` and `virDomainDetachDeviceFlags` take it.
    public var xml: String { node.rendered() }

    var node: XMLNode {
        switch self {
        case .emulator(let path): return XMLNode("emulator", text: path)
        case .disk(let disk): return disk.node
        case .interface(let interface): return interface.node
        case .serial(let path, let port):
            return XMLNode("serial", ["type": path == nil ? "pty" : "file"],
                           (path.map { [XMLNode("source", ["path": $0])] } ?? []) + [XMLNode("target", ["port": String(port)])])
        case .console(let path, let port):
            return XMLNode("console", ["type": path == nil ? "pty" : "file"],
                           (path.map { [XMLNode("source", ["path": $0])] } ?? [])
                               + [XMLNode("target", ["type": "serial", "port": String(port)])])
        case .tcpSerial(let host, let port, let log, let target):
            return XMLNode("serial", ["type": "tcp"],
                           [XMLNode("source", ["mode": "bind", "host": host, "service": String(port)]), XMLNode("protocol", ["type": "raw"])]
                               + (log.map { [XMLNode("log", ["file": $0, "append": "off"])] } ?? []) + [XMLNode("target", ["port": String(target)])])
        case .graphics(let graphics): return graphics.node
        case .video(let model): return XMLNode("video", [:], [XMLNode("model", ["type": model])])
        case .memballoon(let model): return XMLNode("memballoon", ["model": model])
        }
    }
}

public struct Disk: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// A file on the host (qcow2 overlay, raw swap, a file-backed volume).
        case file(String)
        /// A block device on the host (an LVM volume).
        case block(String)
        /// A disk QEMU reaches itself, e.g. `iscsi` with the target's IQN and LUN as `name`
        /// (`iqn.2010-10.org.openstack:volume-…/1`) and the portal as host and port.
        case network(protocol: String, name: String, host: String, port: Int)
    }

    public var source: Source
    /// `disk` or `cdrom`.
    public var device: String
    /// `qcow2`, `raw`, …
    public var format: String
    /// `vda`, `sdb`, …
    public var target: String
    /// `virtio`, `scsi`, `ide`, `sata`.
    public var bus: String
    public var readOnly: Bool
    /// The serial the guest sees (Nova puts the volume id there).
    public var serial: String?
    /// For a network source: the CHAP user and the libvirt secret (by its usage name) holding
    /// the password, which libvirt hands to QEMU's initiator.
    public var auth: Auth?
    /// The firmware's boot order (`<boot order='N'/>`); a domain with one has no `<os><boot dev>`.
    public var bootOrder: Int?

    public struct Auth: Sendable, Equatable {
        public var username: String
        /// `iscsi` (or `ceph`).
        public var secretType: String
        public var secretUsage: String
        public init(username: String, secretType: String = "iscsi", secretUsage: String) {
            self.username = username; self.secretType = secretType; self.secretUsage = secretUsage
        }
    }

    public init(source: Source, device: String = "disk", format: String, target: String, bus: String, readOnly: Bool = false,
                serial: String? = nil, auth: Auth? = nil) {
        self.source = source; self.device = device; self.format = format; self.target = target; self.bus = bus
        self.readOnly = readOnly; self.serial = serial; self.auth = auth
    }

    var node: XMLNode {
        let type: String
        let source: XMLNode
        switch self.source {
        case .file(let path): type = "file"; source = XMLNode("source", ["file": path])
        case .block(let path): type = "block"; source = XMLNode("source", ["dev": path])
        case .network(let proto, let name, let host, let port):
            type = "network"
            var inside = [XMLNode("host", ["name": host, "port": String(port)])]
            if let auth {
                inside.append(XMLNode("auth", ["username": auth.username], [XMLNode("secret", ["type": auth.secretType, "usage": auth.secretUsage])]))
            }
            source = XMLNode("source", ["protocol": proto, "name": name], inside)
        }
        var children = [XMLNode("driver", ["name": "qemu", "type": format]), source, XMLNode("target", ["dev": target, "bus": bus])]
        if readOnly { children.append(XMLNode("readonly")) }
        if let serial { children.append(XMLNode("serial", text: serial)) }
        if let bootOrder { children.append(XMLNode("boot", ["order": String(bootOrder)])) }
        return XMLNode("disk", ["type": type, "device": device], children)
    }
}

public struct Interface: Sendable, Equatable {
    public enum Attachment: Sendable, Equatable {
        /// A tap on a Linux bridge.
        case bridge(String)
        /// A tap on an Open vSwitch bridge, with the Neutron port id as `iface-id`.
        case openvswitch(bridge: String, interfaceID: String)
        /// A tap libvirt creates and leaves unattached (the L2 agent plugs it).
        case ethernet
    }

    public var attachment: Attachment
    public var mac: String
    /// The tap's name on the host (`tap<port id[:11]>`).
    public var targetDevice: String?
    public var model: String
    public var mtu: Int?

    public init(attachment: Attachment, mac: String, targetDevice: String? = nil, model: String = "virtio", mtu: Int? = nil) {
        self.attachment = attachment; self.mac = mac; self.targetDevice = targetDevice; self.model = model; self.mtu = mtu
    }

    var node: XMLNode {
        var children = [XMLNode("mac", ["address": mac])]
        let type: String
        switch attachment {
        case .bridge(let bridge): type = "bridge"; children.append(XMLNode("source", ["bridge": bridge]))
        case .openvswitch(let bridge, let interfaceID):
            type = "bridge"
            children.append(XMLNode("source", ["bridge": bridge]))
            children.append(XMLNode("virtualport", ["type": "openvswitch"], [XMLNode("parameters", ["interfaceid": interfaceID])]))
        case .ethernet: type = "ethernet"
        }
        if let targetDevice { children.append(XMLNode("target", ["dev": targetDevice])) }
        children.append(XMLNode("model", ["type": model]))
        if let mtu { children.append(XMLNode("mtu", ["size": String(mtu)])) }
        return XMLNode("interface", ["type": type], children)
    }
}

public struct Graphics: Sendable, Equatable {
    /// `vnc` or `spice`.
    public var type: String
    public var listen: String
    public var autoport: Bool

    public init(type: String = "vnc", listen: String, autoport: Bool = true) {
        self.type = type
        self.listen = listen
        self.autoport = autoport
    }

    var node: XMLNode { XMLNode("graphics", ["type": type, "autoport": autoport ? "yes" : "no", "listen": listen]) }
}

/// An XML element with ordered attributes, children and text: what the domain model renders
/// through, and the shape of application metadata.
public struct XMLNode: Sendable, Equatable {
    public var name: String
    public var attributes: [(name: String, value: String)]
    public var children: [XMLNode]
    public var text: String?

    public init(_ name: String, _ attributes: KeyValuePairs<String, String> = [:], _ children: [XMLNode] = [], text: String? = nil) {
        self.name = name
        self.attributes = attributes.map { ($0.key, $0.value) }
        self.children = children
        self.text = text
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.rendered() == rhs.rendered() }

    public func rendered() -> String {
        var out = ""
        render(into: &out, depth: 0)
        return out
    }

    private func render(into out: inout String, depth: Int) {
        let indent = String(repeating: "  ", count: depth)
        out += indent + "<" + name
        for attribute in attributes { out += " \(attribute.name)='\(Self.escape(attribute.value))'" }
        if children.isEmpty {
            if let text { out += ">" + Self.escape(text) + "</\(name)>\n" } else { out += "/>\n" }
            return
        }
        out += ">\n"
        if let text { out += indent + "  " + Self.escape(text) + "\n" }
        for child in children { child.render(into: &out, depth: depth + 1) }
        out += indent + "</\(name)>\n"
    }

    /// Text and attribute values with XML's five special characters escaped.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "'": out += "&apos;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}
