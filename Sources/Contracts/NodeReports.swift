/// What a node says about itself at start and every `report_interval`: the services it
/// runs and what its hypervisor offers. Cast to the controller; safe to repeat.
public struct ReportState: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var host: String
        public var version: String
        public var services: [ServiceReport]
        public var hypervisor: HypervisorReport?
        /// The backends of the node's volume service; absent from nodes without one.
        public var volumeBackends: [VolumeBackendReport]?

        public init(host: String, version: String, services: [ServiceReport], hypervisor: HypervisorReport?,
                    volumeBackends: [VolumeBackendReport]? = nil) {
            self.volumeBackends = volumeBackends
            self.host = host
            self.version = version
            self.services = services
            self.hypervisor = hypervisor
        }
    }

    public typealias Result = Nothing
    public static let name = "report_state"
    public static let version = RPCVersion(1, 0)
    /// The topic the controllers serve node reports on.
    public static let topic = "conductor"
}

public struct ServiceReport: Codable, Sendable, Equatable {
    /// OpenStack's name for the service (`nova-compute`, …), as the clients show it.
    public var binary: String
    /// The RPC topic the service listens on (`compute`, …).
    public var topic: String

    public init(binary: String, topic: String) {
        self.binary = binary
        self.topic = topic
    }
}

public struct HypervisorReport: Codable, Sendable, Equatable {
    public var type: String
    /// libvirt's encoding: major * 1,000,000 + minor * 1,000 + release.
    public var version: Int
    public var cpuModel: String
    public var vcpus: Int
    public var memoryMB: Int
    public var localGB: Int
    /// The address other hosts reach this one at (`[DEFAULT] my_ip`); absent from older nodes.
    public var hostIP: String?
    /// The host's uptime and load, as `uptime` prints them; absent from older nodes.
    public var uptime: String?
    /// Petrel's domains running on the host, as libvirt counts them; absent from older nodes.
    public var runningVMs: Int?
    /// The standard traits (os-traits) of the host: its CPU's `HW_CPU_*` flags and the
    /// `COMPUTE_*` capabilities of its driver; absent from older nodes.
    public var traits: [String]?

    public init(type: String, version: Int, cpuModel: String, vcpus: Int, memoryMB: Int, localGB: Int, hostIP: String? = nil,
                uptime: String? = nil, runningVMs: Int? = nil) {
        self.runningVMs = runningVMs
        self.hostIP = hostIP
        self.uptime = uptime
        self.type = type
        self.version = version
        self.cpuModel = cpuModel
        self.vcpus = vcpus
        self.memoryMB = memoryMB
        self.localGB = localGB
    }
}
