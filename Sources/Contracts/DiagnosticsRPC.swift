import Foundation

/// What a running instance has used, as its host's hypervisor counts it (Nova's server
/// diagnostics). Sizes of memory are in KiB, times in nanoseconds.
public struct InstanceDiagnostics: Codable, Sendable, Equatable {
    public struct CPU: Codable, Sendable, Equatable {
        public var id: Int
        public var timeNanoseconds: UInt64
        public init(id: Int, timeNanoseconds: UInt64) { self.id = id; self.timeNanoseconds = timeNanoseconds }
    }

    public struct Disk: Codable, Sendable, Equatable {
        /// The guest's device (`vda`).
        public var device: String
        public var readRequests: Int64
        public var readBytes: Int64
        public var writeRequests: Int64
        public var writeBytes: Int64
        /// -1 when the hypervisor does not count them.
        public var errors: Int64

        public init(device: String, readRequests: Int64, readBytes: Int64, writeRequests: Int64, writeBytes: Int64, errors: Int64) {
            self.device = device; self.readRequests = readRequests; self.readBytes = readBytes
            self.writeRequests = writeRequests; self.writeBytes = writeBytes; self.errors = errors
        }
    }

    public struct NIC: Codable, Sendable, Equatable {
        public struct Counters: Codable, Sendable, Equatable {
            public var rxBytes: Int64, rxPackets: Int64, rxErrors: Int64, rxDrop: Int64
            public var txBytes: Int64, txPackets: Int64, txErrors: Int64, txDrop: Int64

            public init(rxBytes: Int64, rxPackets: Int64, rxErrors: Int64, rxDrop: Int64,
                        txBytes: Int64, txPackets: Int64, txErrors: Int64, txDrop: Int64) {
                self.rxBytes = rxBytes; self.rxPackets = rxPackets; self.rxErrors = rxErrors; self.rxDrop = rxDrop
                self.txBytes = txBytes; self.txPackets = txPackets; self.txErrors = txErrors; self.txDrop = txDrop
            }
        }

        public var macAddress: String
        /// The host side (`tap…`); nil when the NIC has none.
        public var device: String?
        /// nil when the NIC has no host device or the hypervisor cannot count it.
        public var counters: Counters?

        public init(macAddress: String, device: String?, counters: Counters?) {
            self.macAddress = macAddress; self.device = device; self.counters = counters
        }
    }

    /// The compute driver (`libvirt`) and the hypervisor it runs guests on (`qemu`, `kvm`).
    public var driver: String
    public var hypervisor: String
    public var maxMemoryKiB: UInt64
    /// The memory the guest has now (its balloon's size).
    public var memoryKiB: UInt64
    /// Per vCPU; empty when the hypervisor cannot tell.
    public var cpus: [CPU]
    /// The balloon's statistics by libvirt's names (`actual`, `rss`, `swap_in`, …).
    public var memoryStatistics: [String: UInt64]
    public var disks: [Disk]
    public var nics: [NIC]

    public init(driver: String, hypervisor: String, maxMemoryKiB: UInt64, memoryKiB: UInt64, cpus: [CPU],
                memoryStatistics: [String: UInt64], disks: [Disk], nics: [NIC]) {
        self.driver = driver; self.hypervisor = hypervisor; self.maxMemoryKiB = maxMemoryKiB; self.memoryKiB = memoryKiB
        self.cpus = cpus; self.memoryStatistics = memoryStatistics; self.disks = disks; self.nics = nics
    }
}

/// Reads a running instance's diagnostics on its host (a call). The node answers with the
/// power state it found; the diagnostics only when that is `running` (Nova reads them only
/// from a running guest).
public struct GetDiagnostics: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var instanceID: String
        public init(instanceID: String) { self.instanceID = instanceID }
    }

    public struct Result: Codable, Sendable, Equatable {
        public var powerState: PowerState
        public var diagnostics: InstanceDiagnostics?
        public init(powerState: PowerState, diagnostics: InstanceDiagnostics?) {
            self.powerState = powerState
            self.diagnostics = diagnostics
        }
    }

    public static let name = "get_diagnostics"
    public static let version = RPCVersion(1, 0)
}

/// Injects a non-maskable interrupt into an instance on this host (Nova's
/// `trigger_crash_dump`), a call: answers once the hypervisor sent it, or fails (the guest is
/// not running, the hypervisor cannot).
public struct TriggerCrashDump: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var instanceID: String
        public init(instanceID: String) { self.instanceID = instanceID }
    }

    public typealias Result = Nothing
    public static let name = "trigger_crash_dump"
    public static let version = RPCVersion(1, 0)
}
