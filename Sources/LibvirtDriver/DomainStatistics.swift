import CLibvirt
import Foundation

/// What a running domain has used so far, from libvirt's per-domain calls: `virDomainGetInfo`,
/// `virDomainGetVcpus`, `virDomainMemoryStats`, `virDomainBlockStats` per disk and
/// `virDomainInterfaceStats` per NIC (the devices named by the live XML). A counter libvirt
/// cannot give for this hypervisor is left out rather than failing the whole reading.
public struct DomainStatistics: Sendable, Equatable {
    public struct VCPU: Sendable, Equatable {
        public var number: Int
        /// CPU time used, in nanoseconds.
        public var timeNanoseconds: UInt64
        public init(number: Int, timeNanoseconds: UInt64) { self.number = number; self.timeNanoseconds = timeNanoseconds }
    }

    public struct Disk: Sendable, Equatable {
        /// The guest's device (`vda`).
        public var device: String
        public var readRequests: Int64
        public var readBytes: Int64
        public var writeRequests: Int64
        public var writeBytes: Int64
        /// -1 when the hypervisor does not count errors (QEMU).
        public var errors: Int64
    }

    public struct Interface: Sendable, Equatable {
        public struct Counters: Sendable, Equatable {
            public var rxBytes: Int64, rxPackets: Int64, rxErrors: Int64, rxDrop: Int64
            public var txBytes: Int64, txPackets: Int64, txErrors: Int64, txDrop: Int64
        }

        public var macAddress: String
        /// The host side of the NIC (`tap…`); nil when it has none.
        public var device: String?
        /// nil when the NIC has no host device, or libvirt cannot count it.
        public var counters: Counters?
    }

    public var state: DomainState
    /// The memory the domain may have, and has now (the balloon's size), in KiB.
    public var maxMemoryKiB: UInt64
    public var memoryKiB: UInt64
    public var vcpuCount: Int
    /// CPU time used by the whole domain, in nanoseconds.
    public var cpuTimeNanoseconds: UInt64
    /// Empty when the hypervisor cannot tell per vCPU.
    public var vcpus: [VCPU]
    /// The balloon driver's statistics by libvirt's names (`actual`, `rss`, `swap_in`, …;
    /// sizes in KiB); empty when the hypervisor has none.
    public var memory: [String: UInt64]
    public var disks: [Disk]
    public var interfaces: [Interface]

    public init(state: DomainState, maxMemoryKiB: UInt64, memoryKiB: UInt64, vcpuCount: Int, cpuTimeNanoseconds: UInt64, vcpus: [VCPU],
                memory: [String: UInt64], disks: [Disk], interfaces: [Interface]) {
        self.state = state; self.maxMemoryKiB = maxMemoryKiB; self.memoryKiB = memoryKiB; self.vcpuCount = vcpuCount
        self.cpuTimeNanoseconds = cpuTimeNanoseconds; self.vcpus = vcpus; self.memory = memory; self.disks = disks
        self.interfaces = interfaces
    }
}

/// The disks and NICs a domain's XML names.
public struct DomainDevices: Sendable, Equatable {
    /// The guest's device of every disk (`vda`, `hdd`), in order.
    public var disks: [String]
    /// Every NIC's MAC address and host device (`tap…`, nil when it has none), in order.
    public var interfaces: [(mac: String, device: String?)]

    public static func == (lhs: DomainDevices, rhs: DomainDevices) -> Bool {
        lhs.disks == rhs.disks && lhs.interfaces.map(\.mac) == rhs.interfaces.map(\.mac)
            && lhs.interfaces.map(\.device) == rhs.interfaces.map(\.device)
    }

    /// Reads them from a domain's XML as libvirt writes it.
    public init(xml: String) {
        disks = Self.elements("disk", in: xml).compactMap { Self.attribute("dev", ofFirst: "target", in: $0) }
        interfaces = Self.elements("interface", in: xml).compactMap { element in
            guard let mac = Self.attribute("address", ofFirst: "mac", in: element) else { return nil }
            return (mac, Self.attribute("dev", ofFirst: "target", in: element))
        }
    }

    /// The text of every `<name …>…</name>` element below `<devices>`.
    static func elements(_ name: String, in xml: String) -> [Substring] {
        guard let devices = xml.range(of: "<devices>") else { return [] }
        let end = xml.range(of: "</devices>", range: devices.upperBound..<xml.endIndex)?.lowerBound ?? xml.endIndex
        var found: [Substring] = []
        var rest = xml[devices.upperBound..<end]
        while let open = rest.range(of: "<\(name) ") ?? rest.range(of: "<\(name)>") {
            let tail = rest[open.upperBound...]
            guard let tagEnd = tail.firstIndex(of: ">") else { break }
            if tail[..<tagEnd].hasSuffix("/") {
                found.append(rest[open.lowerBound...tagEnd])
                rest = rest[tail.index(after: tagEnd)...]
                continue
            }
            let close = tail.range(of: "</\(name)>")
            let stop = close?.upperBound ?? rest.endIndex
            found.append(rest[open.lowerBound..<stop])
            rest = rest[stop...]
        }
        return found
    }

    /// The value of `attribute` on the first `<element …>` inside `text`.
    static func attribute(_ attribute: String, ofFirst element: String, in text: Substring) -> String? {
        guard let open = text.range(of: "<\(element) ") else { return nil }
        let tag = " " + text[open.upperBound...].prefix { $0 != ">" }
        for quote in ["'", "\""] {
            if let start = tag.range(of: " \(attribute)=\(quote)"), let close = tag[start.upperBound...].firstIndex(of: Character(quote)) {
                return String(tag[start.upperBound..<close])
            }
        }
        return nil
    }
}

extension Domain {
    /// The domain's state, memory, vCPU count and CPU time (`virDomainGetInfo`).
    public func info() throws -> (state: DomainState, maxMemoryKiB: UInt64, memoryKiB: UInt64, vcpus: Int, cpuTimeNanoseconds: UInt64) {
        var info = virDomainInfo()
        guard virDomainGetInfo(handle, &info) == 0 else { throw LibvirtError.last("info of \(name)") }
        return (DomainState(raw: Int32(info.state)), UInt64(info.maxMem), UInt64(info.memory), Int(info.nrVirtCpu), UInt64(info.cpuTime))
    }

    /// The CPU time of each vCPU of the running domain (`virDomainGetVcpus`).
    public func vcpuTimes(count: Int) throws -> [DomainStatistics.VCPU] {
        guard count > 0 else { return [] }
        var infos = [virVcpuInfo](repeating: virVcpuInfo(), count: count)
        let found = virDomainGetVcpus(handle, &infos, Int32(count), nil, 0)
        guard found >= 0 else { throw LibvirtError.last("vCPUs of \(name)") }
        return infos.prefix(Int(found)).map { DomainStatistics.VCPU(number: Int($0.number), timeNanoseconds: UInt64($0.cpuTime)) }
    }

    /// libvirt's names of the memory statistics, by tag (as libvirt's own bindings name them).
    static let memoryStatisticNames: [Int32: String] = [
        Int32(VIR_DOMAIN_MEMORY_STAT_SWAP_IN.rawValue): "swap_in", Int32(VIR_DOMAIN_MEMORY_STAT_SWAP_OUT.rawValue): "swap_out",
        Int32(VIR_DOMAIN_MEMORY_STAT_MAJOR_FAULT.rawValue): "major_fault", Int32(VIR_DOMAIN_MEMORY_STAT_MINOR_FAULT.rawValue): "minor_fault",
        Int32(VIR_DOMAIN_MEMORY_STAT_UNUSED.rawValue): "unused", Int32(VIR_DOMAIN_MEMORY_STAT_AVAILABLE.rawValue): "available",
        Int32(VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON.rawValue): "actual", Int32(VIR_DOMAIN_MEMORY_STAT_RSS.rawValue): "rss",
        Int32(VIR_DOMAIN_MEMORY_STAT_USABLE.rawValue): "usable", Int32(VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE.rawValue): "last_update",
        Int32(VIR_DOMAIN_MEMORY_STAT_DISK_CACHES.rawValue): "disk_caches",
        Int32(VIR_DOMAIN_MEMORY_STAT_HUGETLB_PGALLOC.rawValue): "hugetlb_pgalloc",
        Int32(VIR_DOMAIN_MEMORY_STAT_HUGETLB_PGFAIL.rawValue): "hugetlb_pgfail",
    ]

    /// The running domain's memory statistics by libvirt's names (`virDomainMemoryStats`).
    public func memoryStatistics() throws -> [String: UInt64] {
        let capacity = Int(VIR_DOMAIN_MEMORY_STAT_NR.rawValue)
        var stats = [virDomainMemoryStatStruct](repeating: virDomainMemoryStatStruct(), count: capacity)
        let found = virDomainMemoryStats(handle, &stats, UInt32(capacity), 0)
        guard found >= 0 else { throw LibvirtError.last("memory statistics of \(name)") }
        var result: [String: UInt64] = [:]
        for stat in stats.prefix(Int(found)) {
            if let key = Self.memoryStatisticNames[stat.tag] { result[key] = UInt64(stat.val) }
        }
        return result
    }

    /// The I/O counters of one disk of the running domain, by its guest device (`virDomainBlockStats`).
    public func blockStatistics(disk: String) throws -> DomainStatistics.Disk {
        var stats = virDomainBlockStatsStruct()
        guard virDomainBlockStats(handle, disk, &stats, MemoryLayout<virDomainBlockStatsStruct>.size) == 0 else {
            throw LibvirtError.last("statistics of disk \(disk) of \(name)")
        }
        return DomainStatistics.Disk(device: disk, readRequests: Int64(stats.rd_req), readBytes: Int64(stats.rd_bytes),
                                     writeRequests: Int64(stats.wr_req), writeBytes: Int64(stats.wr_bytes), errors: Int64(stats.errs))
    }

    /// The traffic counters of one NIC of the running domain, by its host device (`virDomainInterfaceStats`).
    public func interfaceStatistics(device: String) throws -> DomainStatistics.Interface.Counters {
        var stats = virDomainInterfaceStatsStruct()
        guard virDomainInterfaceStats(handle, device, &stats, MemoryLayout<virDomainInterfaceStatsStruct>.size) == 0 else {
            throw LibvirtError.last("statistics of interface \(device) of \(name)")
        }
        return .init(rxBytes: Int64(stats.rx_bytes), rxPackets: Int64(stats.rx_packets), rxErrors: Int64(stats.rx_errs),
                     rxDrop: Int64(stats.rx_drop), txBytes: Int64(stats.tx_bytes), txPackets: Int64(stats.tx_packets),
                     txErrors: Int64(stats.tx_errs), txDrop: Int64(stats.tx_drop))
    }

    /// Everything above in one reading, as Nova's libvirt driver gathers it for diagnostics:
    /// a counter the hypervisor cannot give (an error from its call) is left out; a NIC without
    /// a host device is listed without counters.
    public func statistics() throws -> DomainStatistics {
        let info = try info()
        let devices = DomainDevices(xml: try xml())
        let vcpus = (try? vcpuTimes(count: info.vcpus)) ?? []
        let memory = (try? memoryStatistics()) ?? [:]
        let disks = devices.disks.compactMap { try? blockStatistics(disk: $0) }
        let interfaces = devices.interfaces.compactMap { nic -> DomainStatistics.Interface? in
            guard let device = nic.device else { return DomainStatistics.Interface(macAddress: nic.mac, device: nil, counters: nil) }
            guard let counters = try? interfaceStatistics(device: device) else { return nil }
            return DomainStatistics.Interface(macAddress: nic.mac, device: device, counters: counters)
        }
        return DomainStatistics(state: info.state, maxMemoryKiB: info.maxMemoryKiB, memoryKiB: info.memoryKiB, vcpuCount: info.vcpus,
                                cpuTimeNanoseconds: info.cpuTimeNanoseconds, vcpus: vcpus, memory: memory, disks: disks,
                                interfaces: interfaces)
    }

    /// Sends a non-maskable interrupt to the running guest (`virDomainInjectNMI`): a guest
    /// configured for it panics and writes a crash dump.
    public func injectNMI() throws {
        guard virDomainInjectNMI(handle, 0) == 0 else { throw LibvirtError.last("inject an NMI into \(name)") }
    }
}

extension LibvirtError {
    /// libvirt's VIR_ERR_NO_SUPPORT: the hypervisor cannot do this.
    public var isNotSupported: Bool { code == Int32(VIR_ERR_NO_SUPPORT.rawValue) }
}
