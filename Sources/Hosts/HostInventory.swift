import Foundation
import Store

/// A hypervisor's resources as its node reports them.
public typealias HypervisorResources = HypervisorRecord
/// What the instances placed on one host hold of it.
public typealias HostUsage = ServiceStore.HostUsage

/// A service a node reported, with what the controller concludes about it.
public struct ServiceStatus: Sendable, Equatable {
    public let record: ServiceRecord
    /// Reported within `service_down_time` and not forced down.
    public let up: Bool

    public var id: String { record.id }
    public var host: String { record.host }
    public var binary: String { record.binary }
    public var enabled: Bool { !record.disabled }
}

/// A hypervisor with the compute service of its host.
public struct HypervisorStatus: Sendable, Equatable {
    let row: HypervisorRow
    public let compute: ServiceStatus?

    public var id: String { row.id }
    /// Its integer id (Nova's before microversion 2.53).
    public var number: Int { row.number }
    /// The host (and hypervisor host name) it is on.
    public var host: String { row.host }
    public var resources: HypervisorResources { row.resources }

    public var up: Bool { compute?.up ?? false }
    public var enabled: Bool { compute?.enabled ?? false }
}

/// The hosts of the cloud as their nodes report them: which services run where, whether
/// they are up (a report within `service_down_time`), which ones an admin disabled (a
/// disabled compute service gets no new instances), and each host's hypervisor.
public struct HostInventory: Sendable {
    public let store: ServiceStore
    public let serviceDownTime: TimeInterval

    public init(database: Database, serviceDownTime: TimeInterval) {
        store = ServiceStore(database)
        self.serviceDownTime = serviceDownTime
    }

    public func status(_ record: ServiceRecord, now: Date = Date()) -> ServiceStatus {
        let fresh = record.lastSeenAt.map { Double(Int64(now.timeIntervalSince1970 * 1000) - $0) / 1000 <= serviceDownTime } ?? false
        return ServiceStatus(record: record, up: fresh && !record.forcedDown)
    }

    /// Every service whose binary passes `filter`, by host and binary.
    public func services(where filter: (ServiceRecord) -> Bool = { _ in true }) async throws -> [ServiceStatus] {
        let now = Date()
        return try await store.services().filter(filter).map { status($0, now: now) }
    }

    public func service(id: String) async throws -> ServiceStatus? {
        try await store.service(id: id).map { status($0) }
    }

    /// Enables or disables a service; `reason` is kept only while disabled.
    public func setEnabled(id: String, _ enabled: Bool, reason: String? = nil) async throws -> ServiceStatus? {
        try await store.update(id: id, disabled: !enabled, disabledReason: .some(enabled ? nil : reason)).map { status($0) }
    }

    public func setForcedDown(id: String, _ forcedDown: Bool) async throws -> ServiceStatus? {
        try await store.update(id: id, forcedDown: forcedDown).map { status($0) }
    }

    public func delete(id: String) async throws -> Bool {
        try await store.delete(id: id)
    }

    /// Every hypervisor with its host's compute service.
    public func hypervisors() async throws -> [HypervisorStatus] {
        let computes = try await services { $0.binary == "nova-compute" }
        return try await store.hypervisors().map { row in
            HypervisorStatus(row: row, compute: computes.first { $0.host == row.host })
        }
    }
}
