import Contracts
import Foundation

/// The libvirt domain of an instance, from its flavor, image properties and the node's
/// configuration. The `<metadata>` element marks the domain as Petrel's: the node never
/// touches a domain without it.
public struct DomainXML: Sendable {
    public static let namespace = "https://petrel.dev/xmlns/instance/1"

    /// kvm, qemu, or test (libvirt's simulated hypervisor).
    public var domainType: String
    public var cpuMode: String
    public var vncListen: String
    public var emulator: String?

    public init(domainType: String, cpuMode: String, vncListen: String, emulator: String?) {
        self.domainType = domainType
        self.cpuMode = cpuMode
        self.vncListen = vncListen
        self.emulator = emulator
    }

    public func render(_ spec: InstanceSpec, files: InstanceFiles, host: String) -> String {
        let properties = spec.image?.properties ?? [:]
        let bus = properties["hw_disk_bus"].map { ["virtio", "scsi", "ide", "sata"].contains($0) ? $0 : "virtio" } ?? "virtio"
        let prefix = bus == "virtio" ? "vd" : "sd"
        var disks = [disk(files.disk, format: "qcow2", target: prefix + "a", bus: bus)]
        if spec.flavor.ephemeralGB > 0 { disks.append(disk(files.ephemeral, format: "qcow2", target: prefix + "b", bus: bus)) }
        if spec.flavor.swapMB > 0 {
            disks.append(disk(files.swap, format: "raw", target: prefix + (spec.flavor.ephemeralGB > 0 ? "c" : "b"), bus: bus))
        }
        let cpu: String
        switch (domainType, cpuMode) {
        case ("kvm", "host-model"): cpu = "<cpu mode='host-model'/>"
        case ("kvm", "host-passthrough"): cpu = "<cpu mode='host-passthrough'/>"
        default: cpu = ""
        }
        let devices: String
        if domainType == "test" {
            devices = disks.joined(separator: "\n    ")
        } else {
            devices = """
            \(emulator.map { "<emulator>\(escape($0))</emulator>" } ?? "")
                \(disks.joined(separator: "\n    "))
                <serial type='file'><source path='\(escape(files.console))'/><target port='0'/></serial>
                <console type='file'><source path='\(escape(files.console))'/><target type='serial' port='0'/></console>
                <graphics type='vnc' autoport='yes' listen='\(escape(vncListen))'/>
                <video><model type='virtio'/></video>
                <memballoon model='virtio'/>
            """
        }
        return """
        <domain type='\(domainType)'>
          <name>\(DomainNaming.name(spec.id))</name>
          <uuid>\(spec.id)</uuid>
          <title>\(escape(spec.name))</title>
          <metadata>
            <petrel:instance xmlns:petrel='\(Self.namespace)'>
              <petrel:name>\(escape(spec.name))</petrel:name>
              <petrel:project>\(escape(spec.projectID))</petrel:project>
              <petrel:user>\(escape(spec.userID))</petrel:user>
              <petrel:flavor id='\(escape(spec.flavor.id))'>\(escape(spec.flavor.name))</petrel:flavor>
              <petrel:image>\(escape(spec.image?.id ?? ""))</petrel:image>
              <petrel:host>\(escape(host))</petrel:host>
            </petrel:instance>
          </metadata>
          <memory unit='MiB'>\(spec.flavor.memoryMB)</memory>
          <vcpu>\(spec.flavor.vcpus)</vcpu>
          <sysinfo type='smbios'>
            <system><entry name='manufacturer'>Petrel</entry><entry name='product'>OpenStack Compute</entry><entry name='uuid'>\(spec.id)</entry></system>
          </sysinfo>
          <os><type arch='x86_64'>hvm</type><boot dev='hd'/>\(domainType == "test" ? "" : "<smbios mode='sysinfo'/>")</os>
          <features><acpi/><apic/></features>
          \(cpu)
          <clock offset='utc'/>
          <on_poweroff>destroy</on_poweroff>
          <on_reboot>restart</on_reboot>
          <on_crash>destroy</on_crash>
          <devices>
            \(devices)
          </devices>
        </domain>
        """
    }

    func disk(_ path: String, format: String, target: String, bus: String) -> String {
        "<disk type='file' device='disk'><driver name='qemu' type='\(format)'/><source file='\(escape(path))'/><target dev='\(target)' bus='\(bus)'/></disk>"
    }

    /// Whether a domain's XML carries Petrel's metadata.
    public static func isPetrels(_ xml: String) -> Bool { xml.contains(namespace) }

    func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "'", with: "&apos;")
    }
}
