import Foundation
import LibvirtDriver
import PetrelCore

/// The libvirt backend (`compute_driver = libvirt`): QEMU/KVM guests through libvirtd, or
/// libvirt's simulated hypervisor for `test:///default`. libvirt's calls block until
/// libvirtd answers (a managed save writes the guest's memory to disk): they run on this
/// backend's own threads.
public final class LibvirtHypervisor: HypervisorDriver {
    public static let name = "libvirt"

    let connection: LibvirtConnection
    let threads = BlockingExecutor(label: "petrel.libvirt")
    public let info: HypervisorInfo

    public init(settings: HypervisorDrivers.Settings) throws {
        connection = try LibvirtConnection(uri: settings.uri)
        let simulated = try connection.hostInfo().hypervisorType.lowercased() == "test"
        let emulator = simulated ? nil
            : ["/usr/bin/qemu-system-x86_64", "/usr/libexec/qemu-kvm"].first { FileManager.default.isExecutableFile(atPath: $0) }
        info = HypervisorInfo(name: Self.name, domainType: simulated ? "test" : settings.virtType, emulator: emulator)
    }

    func blocking<T: Sendable>(_ body: @escaping @Sendable (LibvirtConnection) throws -> T) async throws -> T {
        let connection = self.connection
        return try await threads.run { try body(connection) }
    }

    /// Runs `body` on the guest's domain; a guest that does not exist is an error.
    func onDomain<T: Sendable>(_ id: String, _ body: @escaping @Sendable (Domain) throws -> T) async throws -> T {
        try await blocking { connection in
            guard let domain = try connection.domain(uuid: id) else { throw HypervisorError("no guest \(id) on this host") }
            return try body(domain)
        }
    }

    public func host() async throws -> HypervisorHost {
        try await blocking { connection in
            let host = try connection.hostInfo()
            var result = HypervisorHost(cpuModel: host.cpuModel, cpus: host.cpus, memoryMiB: Int(host.memoryKiB / 1024),
                                        type: host.hypervisorType, version: Int(host.hypervisorVersion))
            if let cpu = try? connection.hostCPUFeatures() { (result.cpuArch, result.cpuFeatures) = cpu }
            return result
        }
    }

    public func guests() async throws -> [GuestSummary] {
        try await blocking { connection in
            try connection.listDomains().map { GuestSummary(id: $0.uuid, name: $0.name, state: Self.state($0.state)) }
        }
    }

    public func state(_ id: String) async throws -> GuestState? {
        try await blocking { connection in try Self.unlessGone { try connection.domain(uuid: id).map { Self.state(try $0.state()) } } }
    }

    public func definition(_ id: String) async throws -> String? {
        try await blocking { connection in try Self.unlessGone { try connection.domain(uuid: id)?.xml(inactive: true) } }
    }

    /// A domain undefined between its lookup and the call on it (another node, a test or an
    /// operator on the same libvirtd) reads as no domain, as one gone before the lookup does.
    static func unlessGone<T>(_ body: () throws -> T?) throws -> T? {
        do {
            return try body()
        } catch let error as LibvirtError where error.isNoDomain {
            return nil
        }
    }

    public func define(_ definition: DomainDefinition) async throws {
        let xml = definition.xml
        _ = try await blocking { connection in try connection.define(xml: xml) }
    }

    public func liveDefinition(_ id: String) async throws -> String? {
        try await blocking { connection in try Self.unlessGone { try connection.domain(uuid: id)?.xml() } }
    }

    public func attach(_ id: String, device: Device, live: Bool, config: Bool) async throws {
        let xml = device.xml
        try await onDomain(id) { try $0.attachDevice(xml: xml, live: live, config: config) }
    }

    public func detach(_ id: String, device: Device, live: Bool, config: Bool) async throws {
        let xml = device.xml
        try await onDomain(id) { try $0.detachDevice(xml: xml, live: live, config: config) }
    }

    public func resizeDisk(_ id: String, device: String, bytes: UInt64) async throws {
        try await onDomain(id) { try $0.blockResize(disk: device, bytes: bytes) }
    }

    public func copyDisk(_ id: String, device: String, to destination: Device) async throws {
        let xml = destination.xml
        try await onDomain(id) { try $0.blockCopy(disk: device, destinationXML: xml) }
        do {
            // Ready once the copy has caught up (cur == end); writes are mirrored from then on.
            let deadline = ContinuousClock.now + .seconds(1800)
            while true {
                let job = try await onDomain(id) { try $0.blockJob(disk: device) }
                guard let job else { throw HypervisorError("the copy of \(device) of \(id) ended before it was ready") }
                if job.end > 0 && job.cur == job.end { break }
                guard ContinuousClock.now < deadline else { throw HypervisorError("the copy of \(device) of \(id) was not ready within 30 minutes") }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await onDomain(id) { try $0.endBlockJob(disk: device, pivot: true) }
            while try await onDomain(id, { try $0.blockJob(disk: device) }) != nil {
                try await Task.sleep(for: .milliseconds(50))
            }
        } catch {
            // Leave the guest on its source disk.
            try? await onDomain(id) { try $0.endBlockJob(disk: device, pivot: false) }
            throw error
        }
    }

    public func setDiskSecret(usage: String, password: String) async throws {
        try await blocking { try $0.setISCSISecret(usage: usage, value: password) }
    }

    public func removeDiskSecret(usage: String) async throws {
        try await blocking { try $0.removeISCSISecret(usage: usage) }
    }

    public func diskSecrets() async throws -> [String] {
        try await blocking { try $0.iscsiSecretUsages() }
    }

    public func start(_ id: String) async throws { try await onDomain(id) { try $0.start() } }
    public func shutdown(_ id: String) async throws { try await onDomain(id) { try $0.shutdown() } }
    public func pause(_ id: String) async throws { try await onDomain(id) { try $0.suspend() } }
    public func resume(_ id: String) async throws { try await onDomain(id) { try $0.resume() } }
    public func managedSave(_ id: String) async throws { try await onDomain(id) { try $0.managedSave() } }
    public func hasManagedSave(_ id: String) async throws -> Bool { try await onDomain(id) { try $0.hasManagedSave() } }
    public func removeManagedSave(_ id: String) async throws { try await onDomain(id) { try $0.removeManagedSave() } }

    public func statistics(_ id: String) async throws -> DomainStatistics? {
        try await blocking { connection in try connection.domain(uuid: id)?.statistics() }
    }

    /// In Nova's words when libvirt refuses: the guest does not run, or the hypervisor cannot.
    public func injectNMI(_ id: String) async throws {
        do {
            try await onDomain(id) { try $0.injectNMI() }
        } catch let error as LibvirtError where error.isNotSupported {
            throw HypervisorError("Triggering crash dump is not supported")
        } catch let error as LibvirtError where error.isOperationInvalid {
            throw HypervisorError("Instance \(id) is not running.")
        }
    }

    public func destroy(_ id: String) async throws {
        try await blocking { connection in
            guard let domain = try connection.domain(uuid: id) else { return }
            do { try domain.destroy() } catch let error as LibvirtError where error.isOperationInvalid || error.isNoDomain {}
        }
    }

    public func undefine(_ id: String) async throws {
        try await blocking { connection in
            guard let domain = try connection.domain(uuid: id) else { return }
            do { try domain.undefine() } catch let error as LibvirtError where error.isNoDomain {}
        }
    }

    public func events() throws -> AsyncStream<GuestEvent> {
        let source = try connection.lifecycleEvents()
        return AsyncStream { continuation in
            let task = Task {
                for await event in source {
                    continuation.yield(GuestEvent(id: event.uuid, name: event.domainName, kind: Self.kind(event),
                                                  detail: event.detail))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    static func state(_ state: DomainState) -> GuestState {
        switch state {
        case .noState: return .noState
        case .running: return .running
        case .blocked: return .blocked
        case .paused: return .paused
        case .shuttingDown: return .shuttingDown
        case .shutOff: return .shutOff
        case .crashed: return .crashed
        case .pmSuspended: return .pmSuspended
        }
    }

    static func kind(_ event: LifecycleEvent) -> GuestEvent.Kind {
        switch event.kind {
        case .defined: return .defined
        case .undefined: return .undefined
        case .started: return .started
        case .suspended: return .suspended
        case .resumed: return .resumed
        case .stopped: return .stopped
        case .shutdown: return .shutdown
        case .crashed: return .crashed
        case .pmSuspended, .unknown: return .other
        }
    }
}
