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
    public var disabledReason: String?
    public var forcedDown: Bool
    /// Unix milliseconds.
    public var createdAt: Int64
    public var updatedAt: Int64
    /// Its integer id (Nova's before microversion 2.53).
    public var number: Int = 0
}

/// A hypervisor as stored: what its host last reported.
public struct HypervisorRow: Sendable, Equatable {
    public var id: String
    public var host: String
    public var resources: HypervisorRecord
    /// Unix milliseconds of the last report.
    public var updatedAt: Int64
    /// Its integer id (Nova's before microversion 2.53).
    public var number: Int = 0
}

/// One row of `hypervisors`: what a host's hypervisor offers.
public struct HypervisorRecord: Sendable, Equatable {
    public var type: String
    public var version: Int
    public var cpuModel: String
    public var vcpus: Int
    public var memoryMB: Int
    public var localGB: Int
    public var hostIP: String?
    /// The host's `uptime` line when it last reported.
    public var uptime: String?
    /// Petrel's domains running on the host, as libvirt counts them.
    public var runningVMs: Int

    public init(type: String, version: Int, cpuModel: String, vcpus: Int, memoryMB: Int, localGB: Int, hostIP: String? = nil,
                uptime: String? = nil, runningVMs: Int = 0) {
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

/// Queries on the services a node reports.
public struct ServiceStore: Sendable {
    public let database: Database

    public init(_ database: Database) { self.database = database }

    /// Records a node's report: creates its services the first time, then counts reports
    /// and moves `last_seen_at`; keeps the hypervisor's resources current. Idempotent per
    /// report in effect (a repeat only advances the counters).
    public func record(host: String, version: String, services: [(binary: String, topic: String)],
                       hypervisor: HypervisorRecord?, at date: Date = Date()) async throws {
        let now = Int64(date.timeIntervalSince1970 * 1000)
        // A new service or hypervisor takes the next integer id (Nova's before 2.53); two
        // controllers numbering at once collide on the unique index, and the loser tries again.
        var attempt = 0
        while true {
            do {
                try await record(host: host, version: version, services: services, hypervisor: hypervisor, now: now)
                return
            } catch where DatabaseError.isUniqueViolation(error) && attempt < 5 {
                attempt += 1
            }
        }
    }

    private func record(host: String, version: String, services: [(binary: String, topic: String)],
                        hypervisor: HypervisorRecord?, now: Int64) async throws {
        try await database.transaction { sql in
            for service in services {
                try await sql.raw("""
                    INSERT INTO services (id, host, service_binary, topic, version, report_count, last_seen_at, created_at, updated_at, number)
                    VALUES (\(bind: UUID().uuidString.lowercased()), \(bind: host), \(bind: service.binary), \(bind: service.topic),
                            \(bind: version), 1, \(bind: now), \(bind: now), \(bind: now),
                            (SELECT COALESCE(MAX(number), 0) + 1 FROM services))
                    ON CONFLICT (host, service_binary) DO UPDATE SET
                        report_count = services.report_count + 1, last_seen_at = excluded.last_seen_at,
                        version = excluded.version, topic = excluded.topic, updated_at = excluded.updated_at
                    """).run()
            }
            if let hypervisor {
                try await sql.raw("""
                    INSERT INTO hypervisors (id, host, hypervisor_type, hypervisor_version, cpu_model, vcpus, memory_mb, local_gb,
                                             host_ip, uptime, running_vms, updated_at, number)
                    VALUES (\(bind: UUID().uuidString.lowercased()), \(bind: host), \(bind: hypervisor.type), \(bind: hypervisor.version),
                            \(bind: hypervisor.cpuModel), \(bind: hypervisor.vcpus), \(bind: hypervisor.memoryMB), \(bind: hypervisor.localGB),
                            \(bind: hypervisor.hostIP), \(bind: hypervisor.uptime), \(bind: hypervisor.runningVMs), \(bind: now),
                            (SELECT COALESCE(MAX(number), 0) + 1 FROM hypervisors))
                    ON CONFLICT (host) DO UPDATE SET
                        hypervisor_type = excluded.hypervisor_type, hypervisor_version = excluded.hypervisor_version,
                        cpu_model = excluded.cpu_model, vcpus = excluded.vcpus, memory_mb = excluded.memory_mb,
                        local_gb = excluded.local_gb, host_ip = excluded.host_ip, uptime = excluded.uptime,
                        running_vms = excluded.running_vms, updated_at = excluded.updated_at
                    """).run()
            }
        }
    }

    /// What the instances placed on each host claim: vCPUs, RAM, disk, and how many run a task.
    public struct HostUsage: Sendable, Equatable {
        public var vcpus = 0, memoryMB = 0, diskGB = 0, workload = 0
        public init() {}
    }

    public func usage() async throws -> [String: HostUsage] {
        try await database.withConnection { sql in try await Self.usage(sql) }
    }

    /// Each host's usage read on `sql` (e.g. in the scheduler's transaction), leaving out the
    /// instance `excluding` (the one being placed).
    public static func usage(_ sql: any SQLDatabase, excluding: String? = nil) async throws -> [String: HostUsage] {
        var result: [String: HostUsage] = [:]
        for row in try await sql.raw("""
            SELECT host, SUM(vcpus) AS vcpus, SUM(memory_mb) AS ram, SUM(CASE WHEN root_on_volume THEN 0 ELSE root_gb END + ephemeral_gb) AS disk,
                   SUM(CASE WHEN task_state IS NULL THEN 0 ELSE 1 END) AS busy
            FROM instances WHERE host IS NOT NULL AND id <> \(bind: excluding ?? "") GROUP BY host
            """).all() {
            var usage = HostUsage()
            usage.vcpus = try row.decode(column: "vcpus", as: Int.self)
            usage.memoryMB = try row.decode(column: "ram", as: Int.self)
            usage.diskGB = try row.decode(column: "disk", as: Int.self)
            usage.workload = try row.decode(column: "busy", as: Int.self)
            result[try row.decode(column: "host", as: String.self)] = usage
        }
        return result
    }

    public static let serviceColumns: SQLQueryString = """
        SELECT id, host, service_binary, topic, disabled, disabled_reason, forced_down, version, report_count, last_seen_at,
               created_at, updated_at, number FROM services
        """

    public static func serviceRecord(_ row: any SQLRow) throws -> ServiceRecord {
        ServiceRecord(id: try row.decode(column: "id", as: String.self),
                      host: try row.decode(column: "host", as: String.self),
                      binary: try row.decode(column: "service_binary", as: String.self),
                      topic: try row.decode(column: "topic", as: String.self),
                      disabled: try row.decode(column: "disabled", as: Bool.self),
                      version: try row.decode(column: "version", as: String.self),
                      reportCount: try row.decode(column: "report_count", as: Int.self),
                      lastSeenAt: try row.decode(column: "last_seen_at", as: Int64?.self),
                      disabledReason: try row.decode(column: "disabled_reason", as: String?.self),
                      forcedDown: try row.decode(column: "forced_down", as: Bool.self),
                      createdAt: try row.decode(column: "created_at", as: Int64.self),
                      updatedAt: try row.decode(column: "updated_at", as: Int64.self),
                      number: try row.decode(column: "number", as: Int?.self) ?? 0)
    }

    /// Every service, by host and binary.
    public func services() async throws -> [ServiceRecord] {
        try await database.withConnection { sql in
            try await sql.raw("\(Self.serviceColumns) ORDER BY host, service_binary").all().map(Self.serviceRecord)
        }
    }

    public func service(id: String) async throws -> ServiceRecord? {
        try await database.withConnection { sql in
            try await sql.raw("\(Self.serviceColumns) WHERE id = \(bind: id)").first().map(Self.serviceRecord)
        }
    }

    /// Sets what an admin controls: enabled or disabled (with a reason), forced down.
    /// Returns the updated service, nil if there is none with this id.
    public func update(id: String, disabled: Bool? = nil, disabledReason: String?? = nil, forcedDown: Bool? = nil,
                       at date: Date = Date()) async throws -> ServiceRecord? {
        let now = Int64(date.timeIntervalSince1970 * 1000)
        return try await database.transaction { sql in
            guard var record = try await sql.raw("\(Self.serviceColumns) WHERE id = \(bind: id)").first().map(Self.serviceRecord) else {
                return nil
            }
            if let disabled { record.disabled = disabled }
            if let disabledReason { record.disabledReason = disabledReason }
            if let forcedDown { record.forcedDown = forcedDown }
            try await sql.raw("""
                UPDATE services SET disabled = \(bind: record.disabled), disabled_reason = \(bind: record.disabledReason),
                forced_down = \(bind: record.forcedDown), updated_at = \(bind: now) WHERE id = \(bind: id)
                """).run()
            record.updatedAt = now
            return record
        }
    }

    /// Deletes a service (and its host's hypervisor with the compute service). False if none.
    public func delete(id: String) async throws -> Bool {
        try await database.transaction { sql in
            guard let record = try await sql.raw("\(Self.serviceColumns) WHERE id = \(bind: id)").first().map(Self.serviceRecord) else {
                return false
            }
            try await sql.raw("DELETE FROM services WHERE id = \(bind: id)").run()
            if record.topic == "compute" {
                try await sql.raw("DELETE FROM hypervisors WHERE host = \(bind: record.host)").run()
            }
            return true
        }
    }

    /// The hypervisor a host last reported.
    public func hypervisor(host: String) async throws -> HypervisorRecord? {
        try await hypervisors().first { $0.host == host }?.resources
    }

    /// Every hypervisor, by host.
    public func hypervisors() async throws -> [HypervisorRow] {
        try await database.withConnection { sql in try await Self.hypervisors(sql) }
    }

    /// Every hypervisor, read on `sql` (e.g. inside a transaction).
    public static func hypervisors(_ sql: any SQLDatabase) async throws -> [HypervisorRow] {
        do {
            return try await sql.raw("""
                SELECT id, host, hypervisor_type, hypervisor_version, cpu_model, vcpus, memory_mb, local_gb, host_ip, uptime, running_vms,
                       updated_at, number FROM hypervisors ORDER BY host
                """).all().map { row in
                HypervisorRow(
                    id: try row.decode(column: "id", as: String.self), host: try row.decode(column: "host", as: String.self),
                    resources: HypervisorRecord(type: try row.decode(column: "hypervisor_type", as: String.self),
                                                version: try row.decode(column: "hypervisor_version", as: Int.self),
                                                cpuModel: try row.decode(column: "cpu_model", as: String.self),
                                                vcpus: try row.decode(column: "vcpus", as: Int.self),
                                                memoryMB: try row.decode(column: "memory_mb", as: Int.self),
                                                localGB: try row.decode(column: "local_gb", as: Int.self),
                                                hostIP: try row.decode(column: "host_ip", as: String?.self),
                                                uptime: try row.decode(column: "uptime", as: String?.self),
                                                runningVMs: try row.decode(column: "running_vms", as: Int.self)),
                    updatedAt: try row.decode(column: "updated_at", as: Int64.self),
                    number: try row.decode(column: "number", as: Int?.self) ?? 0)
            }
        }
    }
}
