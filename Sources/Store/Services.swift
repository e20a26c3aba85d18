import Foundation
import SQLKit

/// One row of `services`.
public struct ServiceRecord: Sendable, Equatable {
    public var id: String
    public var host: String
    public var binary: String
    public var topic: String
    public var disabled: Bool
    public var version: String
    public var reportCount: Int
    /// Unix milliseconds of the last report.
    public var lastSeenAt: Int64?
}

/// One row of `hypervisors`: what a host's hypervisor offers.
public struct HypervisorRecord: Sendable, Equatable {
    public var type: String
    public var version: Int
    public var cpuModel: String
    public var vcpus: Int
    public var memoryMB: Int
    public var localGB: Int

    public init(type: String, version: Int, cpuModel: String, vcpus: Int, memoryMB: Int, localGB: Int) {
        self.type = type
        self.version = version
        self.cpuModel = cpuModel
        self.vcpus = vcpus
        self.memoryMB = memoryMB
        self.localGB = localGB
    }
}

/// Queries on the services a node reports.
public struct ServiceStore: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// Records a node's report: creates its services the first time, then counts reports
    /// and moves `last_seen_at`; keeps the hypervisor's resources current. Idempotent per
    /// report in effect (a repeat only advances the counters).
    public func record(host: String, version: String, services: [(binary: String, topic: String)],
                       hypervisor: HypervisorRecord?, at date: Date = Date()) async throws {
        let now = Int64(date.timeIntervalSince1970 * 1000)
        try await database.transaction { sql in
            for service in services {
                try await sql.raw("""
                    INSERT INTO services (id, host, service_binary, topic, version, report_count, last_seen_at, created_at, updated_at)
                    VALUES (\(bind: UUID().uuidString.lowercased()), \(bind: host), \(bind: service.binary), \(bind: service.topic),
                            \(bind: version), 1, \(bind: now), \(bind: now), \(bind: now))
                    ON CONFLICT (host, service_binary) DO UPDATE SET
                        report_count = services.report_count + 1, last_seen_at = excluded.last_seen_at,
                        version = excluded.version, topic = excluded.topic, updated_at = excluded.updated_at
                    """).run()
            }
            if let hypervisor {
                try await sql.raw("""
                    INSERT INTO hypervisors (id, host, hypervisor_type, hypervisor_version, cpu_model, vcpus, memory_mb, local_gb, updated_at)
                    VALUES (\(bind: UUID().uuidString.lowercased()), \(bind: host), \(bind: hypervisor.type), \(bind: hypervisor.version),
                            \(bind: hypervisor.cpuModel), \(bind: hypervisor.vcpus), \(bind: hypervisor.memoryMB), \(bind: hypervisor.localGB),
                            \(bind: now))
                    ON CONFLICT (host) DO UPDATE SET
                        hypervisor_type = excluded.hypervisor_type, hypervisor_version = excluded.hypervisor_version,
                        cpu_model = excluded.cpu_model, vcpus = excluded.vcpus, memory_mb = excluded.memory_mb,
                        local_gb = excluded.local_gb, updated_at = excluded.updated_at
                    """).run()
            }
        }
    }

    public func services() async throws -> [ServiceRecord] {
        try await database.withConnection { sql in
            try await sql.raw("""
                SELECT id, host, service_binary, topic, disabled, version, report_count, last_seen_at
                FROM services ORDER BY host, service_binary
                """).all().map { row in
                ServiceRecord(id: try row.decode(column: "id", as: String.self),
                              host: try row.decode(column: "host", as: String.self),
                              binary: try row.decode(column: "service_binary", as: String.self),
                              topic: try row.decode(column: "topic", as: String.self),
                              disabled: try row.decode(column: "disabled", as: Bool.self),
                              version: try row.decode(column: "version", as: String.self),
                              reportCount: try row.decode(column: "report_count", as: Int.self),
                              lastSeenAt: try row.decode(column: "last_seen_at", as: Int64?.self))
            }
        }
    }

    /// The hypervisor a host last reported.
    public func hypervisor(host: String) async throws -> HypervisorRecord? {
        try await database.withConnection { sql in
            guard let row = try await sql.raw("""
                SELECT hypervisor_type, hypervisor_version, cpu_model, vcpus, memory_mb, local_gb FROM hypervisors WHERE host = \(bind: host)
                """).first() else { return nil }
            return HypervisorRecord(type: try row.decode(column: "hypervisor_type", as: String.self),
                                    version: try row.decode(column: "hypervisor_version", as: Int.self),
                                    cpuModel: try row.decode(column: "cpu_model", as: String.self),
                                    vcpus: try row.decode(column: "vcpus", as: Int.self),
                                    memoryMB: try row.decode(column: "memory_mb", as: Int.self),
                                    localGB: try row.decode(column: "local_gb", as: Int.self))
        }
    }
}
