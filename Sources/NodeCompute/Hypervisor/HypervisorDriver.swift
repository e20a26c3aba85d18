import LibvirtDriver

/// What a hypervisor backend can do, so the compute service asks instead of guessing.
public struct HypervisorInfo: Sendable, Equatable {
    /// The registry name (`[DEFAULT] compute_driver`).
    public var name: String
    /// The domain type guests are defined with: `kvm`, `qemu`, or `test`.
    public var domainType: String
    /// The QEMU binary guests run; nil on libvirt's simulated hypervisor, whose guests have
    /// no console and no VNC.
    public var emulator: String?

    public init(name: String, domainType: String, emulator: String?) {
        self.name = name; self.domainType = domainType; self.emulator = emulator
    }
}

/// A guest's state, as the hypervisor reports it.
public enum GuestState: String, Sendable, CaseIterable {
    case noState = "nostate", running, blocked, paused, shuttingDown = "shutdown", shutOff = "shutoff", crashed,
         pmSuspended = "pmsuspended"
}

public struct GuestSummary: Sendable, Equatable {
    public var id: String
    public var name: String
    public var state: GuestState

    public init(id: String, name: String, state: GuestState) {
        self.id = id
        self.name = name
        self.state = state
    }
}

/// A change of a guest's lifecycle the hypervisor announced.
public struct GuestEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case defined, undefined, started, suspended, resumed, stopped, shutdown, crashed, other
    }

    public var id: String
    public var name: String
    public var kind: Kind
    public var detail: Int32

    public init(id: String, name: String, kind: Kind, detail: Int32 = 0) {
        self.id = id; self.name = name; self.kind = kind; self.detail = detail
    }
}

/// The host as its hypervisor sees it.
public struct HypervisorHost: Sendable, Equatable {
    public var cpuModel: String
    public var cpus: Int
    public var memoryMiB: Int
    /// `QEMU`, `Test`, …
    public var type: String
    /// major * 1,000,000 + minor * 1,000 + release.
    public var version: Int
    /// The host CPU's architecture (`x86_64`) and features in libvirt's names (`sse4.2`, `vmx`).
    public var cpuArch: String = ""
    public var cpuFeatures: [String] = []

    public init(cpuModel: String, cpus: Int, memoryMiB: Int, type: String, version: Int) {
        self.cpuModel = cpuModel; self.cpus = cpus; self.memoryMiB = memoryMiB; self.type = type; self.version = version
    }
}

public struct HypervisorError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A hypervisor backend: the guests of one host, by instance id. Every call may block in
/// the backend; backends run such calls on threads of their own, never on the caller's.
///
/// `destroy` of a guest that is not running and `undefine` of one that does not exist
/// succeed (so teardown is idempotent); the other calls on a guest that does not exist
/// throw.
public protocol HypervisorDriver: Sendable {
    var info: HypervisorInfo { get }
    func host() async throws -> HypervisorHost
    /// Every guest defined or running.
    func guests() async throws -> [GuestSummary]
    /// The guest's state, or nil when there is no such guest.
    func state(_ id: String) async throws -> GuestState?
    /// The guest's stored (inactive) definition as XML, or nil when there is no such guest.
    func definition(_ id: String) async throws -> String?
    /// Defines the guest, or replaces the definition of an existing one.
    func define(_ definition: DomainDefinition) async throws
    func start(_ id: String) async throws
    /// Asks the guest to shut down (ACPI) and returns before it has.
    func shutdown(_ id: String) async throws
    /// Powers the guest off at once.
    func destroy(_ id: String) async throws
    func pause(_ id: String) async throws
    func resume(_ id: String) async throws
    /// Saves the guest's memory and stops it; the next `start` restores it.
    func managedSave(_ id: String) async throws
    func hasManagedSave(_ id: String) async throws -> Bool
    func removeManagedSave(_ id: String) async throws
    /// Removes the definition with any saved memory.
    func undefine(_ id: String) async throws
    /// The running guest's definition as XML, or nil when there is no such guest.
    func liveDefinition(_ id: String) async throws -> String?
    /// Adds a device to the running guest (`live`) and/or to its stored definition (`config`).
    func attach(_ id: String, device: Device, live: Bool, config: Bool) async throws
    /// Asks for a device's removal from the running guest (`live`: done once the guest lets
    /// go of it, which `liveDefinition` shows) and/or from its stored definition (at once).
    func detach(_ id: String, device: Device, live: Bool, config: Bool) async throws
    /// Tells the running guest its disk `device` (a target such as `vdc`) grew to `bytes`.
    func resizeDisk(_ id: String, device: String, bytes: UInt64) async throws
    /// Copies the running guest's disk `device` into the (existing, large enough) destination
    /// `to` describes, then switches the guest over to it; the guest runs on throughout.
    /// Returns once the guest uses the destination, or throws with the source still in use.
    func copyDisk(_ id: String, device: String, to destination: Device) async throws
    /// Lifecycle events of every guest, until the consumer stops.
    func events() throws -> AsyncStream<GuestEvent>
    /// Keeps the password of an iSCSI disk's CHAP account where the hypervisor hands it to its
    /// initiator (a libvirt secret named `usage`); an existing one gets the new value.
    func setDiskSecret(usage: String, password: String) async throws
    /// Forgets a disk password; one that does not exist is not an error.
    func removeDiskSecret(usage: String) async throws
    /// The names of every disk password kept.
    func diskSecrets() async throws -> [String]
    /// The running guest's counters (CPU, memory, disks, NICs), or nil when there is no such guest.
    func statistics(_ id: String) async throws -> DomainStatistics?
    /// Sends a non-maskable interrupt to the running guest (a guest set up for it writes a crash dump).
    func injectNMI(_ id: String) async throws
}

/// The hypervisor backends by their configuration name.
public enum HypervisorDrivers {
    public struct Settings: Sendable {
        /// libvirt's connection URI (`qemu:///system`, `test:///default`).
        public var uri: String
        /// `kvm` or `qemu` (`[libvirt] virt_type`).
        public var virtType: String

        public init(uri: String, virtType: String) {
            self.uri = uri
            self.virtType = virtType
        }
    }

    public typealias Constructor = @Sendable (Settings) throws -> any HypervisorDriver

    public static let registry: [String: Constructor] = [
        LibvirtHypervisor.name: { try LibvirtHypervisor(settings: $0) },
    ]

    public static var names: [String] { registry.keys.sorted() }

    public static func make(_ name: String, settings: Settings) throws -> any HypervisorDriver {
        guard let constructor = registry[name] else {
            throw HypervisorError("unknown compute driver '\(name)' (known: \(names.joined(separator: ", ")))")
        }
        return try constructor(settings)
    }
}
