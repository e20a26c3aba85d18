import Compute
import Foundation
import Hosts
import Hummingbird
import PetrelCore
import PetrelHTTP
import Synchronization

/// `os-simple-tenant-usage` (what each project's servers used in a period) and
/// `os-instance_usage_audit_log` (the instance usage audit task's log).
extension ComputeAPI {
    static let usagePolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:os-simple-tenant-usage:show", ownerReader, "Show a project's usage statistics.",
                      ["GET /compute/v2.1/os-simple-tenant-usage/{tenant_id}"]),
        PolicyDefault("os_compute_api:os-simple-tenant-usage:list", "rule:context_is_admin", "List every project's usage statistics.",
                      ["GET /compute/v2.1/os-simple-tenant-usage"]),
        PolicyDefault("os_compute_api:os-instance-usage-audit-log:list", "rule:context_is_admin",
                      "List the instance usage audit task's logs.", ["GET /compute/v2.1/os-instance_usage_audit_log"]),
        PolicyDefault("os_compute_api:os-instance-usage-audit-log:show", "rule:context_is_admin",
                      "Show the instance usage audit task's log of the period before a time.",
                      ["GET /compute/v2.1/os-instance_usage_audit_log/{before_timestamp}"]),
    ]

    func registerUsage(on v21: APIRoutes) {
        let usage = TenantUsage(database: hosts.store.database)

        /// The period asked for, in microseconds (Nova's `_parse_qs_params`), the end no later than now.
        @Sendable func period(_ request: Request) throws -> (start: Int64, stop: Int64, now: Int64) {
            func parse(_ key: String) throws -> Int64 {
                // Nova reads `start`/`end` with parse_qs, which drops an empty value: now.
                guard let text = request.query(key), !text.isEmpty else { return NovaTimes.nowMicroseconds() }
                guard let value = NovaTimes.parse(text, formats: [.isoSeconds, .isoFraction, .spaceFraction]) else {
                    throw APIFault(.badRequest, "Invalid datetime string: Datetime is in invalid format")
                }
                return value
            }
            let start = try parse("start"), stop = try parse("end")
            guard start < stop else {
                throw APIFault(.badRequest, "Invalid start time. The start time cannot occur after the end time.")
            }
            let now = NovaTimes.nowMicroseconds()
            return (start, min(stop, now), now)
        }
        /// Nova's `limit` and `marker` (from 2.40; before, the first `max_limit` servers).
        @Sendable func paging(_ request: Request, _ version: Microversion) throws -> (limit: Int, marker: String?) {
            guard version >= Microversion(2, 40) else { return (TenantUsage.maxLimit, nil) }
            let limit = try Paging.novaLimit(request).map { min($0, TenantUsage.maxLimit) } ?? TenantUsage.maxLimit
            return (limit, request.query("marker"))
        }
        @Sendable func compute(_ request: Request, project: String?, _ version: Microversion) async throws
            -> (projects: [TenantUsage.ProjectUsage], servers: [TenantUsage.ServerUsage]) {
            let (start, stop, now) = try period(request)
            let (limit, marker) = try paging(request, version)
            do {
                return try await usage.usages(start: start, stop: stop, now: now, project: project, limit: limit, marker: marker)
            } catch let failure as TenantUsage.Failure {
                throw APIFault(.badRequest, failure.description)
            }
        }
        /// Nova's `_get_collection_links`: a next link when the page is as long as the limit.
        @Sendable func links(_ request: Request, _ servers: [TenantUsage.ServerUsage], path: String) -> JSON? {
            let asked = request.query("limit").flatMap { Int($0) } ?? TenantUsage.maxLimit
            let most = min(asked, TenantUsage.maxLimit)
            guard most > 0, most == servers.count, let last = servers.last else { return nil }
            // The request's parameters sorted by name (the last value of a repeated one), then the marker.
            var parameters: [String: String] = [:]
            for pair in request.queryPairs { parameters[pair.name] = pair.value }
            parameters["marker"] = nil
            var ordered = parameters.sorted { $0.key < $1.key }
            ordered.append(("marker", last.instanceID))
            let query = ordered.map { NovaTimes.quotePlus($0.key) + "=" + NovaTimes.quotePlus($0.value) }.joined(separator: "&")
            return [["rel": "next", "href": .string(base + "/v2.1/" + path + "?" + query)]]
        }

        v21.get("os-simple-tenant-usage", query: NovaQuerySchemas.tenantUsages) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-simple-tenant-usage:list")
            let detailed = request.query("detailed") == "1"
            let (projects, servers) = try await compute(request, project: nil, version)
            var body: [String: JSON] = ["tenant_usages": .array(projects.map { Self.tenantUsageJSON($0, detailed: detailed) })]
            if version >= Microversion(2, 40), let next = links(request, servers, path: "os-simple-tenant-usage") {
                body["tenant_usages_links"] = next
            }
            return answer(.ok, .object(body), version)
        }
        v21.get("os-simple-tenant-usage/:tenant_id", query: NovaQuerySchemas.tenantUsage) { request, context in
            let project = try context.parameters.require("tenant_id")
            let (_, version) = try await authenticated(request, context)
            try context.enforce("os_compute_api:os-simple-tenant-usage:show", target: ["project_id": project])
            let (projects, servers) = try await compute(request, project: project, version)
            var body: [String: JSON] = ["tenant_usage": projects.first.map { Self.tenantUsageJSON($0, detailed: true) } ?? [:]]
            if version >= Microversion(2, 40), let next = links(request, servers, path: "os-simple-tenant-usage/\(project)") {
                body["tenant_usage_links"] = next
            }
            return answer(.ok, .object(body), version)
        }

        // The instance usage audit log. Nova's computes run a periodic task that records, per
        // host and audit period (a month), how many instances it audited; Petrel's nodes run
        // no such task, so no host has a log: the log of any period is empty and every compute
        // host (disabled ones too, as Nova counts them) is among `hosts_not_run`.
        @Sendable func auditLog(before: Date?) async throws -> JSON {
            let (begin, end) = NovaTimes.lastCompletedAuditPeriod(before: before ?? Date())
            let computes = Set(try await hosts.services { $0.binary == "nova-compute" }.map(\.host)).sorted()
            let done = 0, errors = 0
            return ["period_beginning": .string(begin), "period_ending": .string(end), "num_hosts": .number(Double(computes.count)),
                    "num_hosts_done": .number(Double(done)), "num_hosts_running": 0, "num_hosts_not_run": .number(Double(computes.count)),
                    "hosts_not_run": .array(computes.map { .string($0) }), "total_instances": 0, "total_errors": .number(Double(errors)),
                    "overall_status": .string("\(done == computes.count ? "ALL" : "\(done) of \(computes.count)") hosts done. \(errors) errors."),
                    "log": [:]]
        }
        v21.get("os-instance_usage_audit_log", query: NovaQuerySchemas.open) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-instance-usage-audit-log:list")
            return answer(.ok, ["instance_usage_audit_logs": try await auditLog(before: nil)], version)
        }
        v21.get("os-instance_usage_audit_log/:before_timestamp", query: NovaQuerySchemas.open) { request, context in
            let raw = try context.parameters.require("before_timestamp")
            let text = raw.removingPercentEncoding ?? raw
            let (_, version) = try await begin(request, context, "os_compute_api:os-instance-usage-audit-log:show")
            // Nova's two formats: with a fraction when the text has a '.', without otherwise.
            guard let before = NovaTimes.parse(text, formats: [text.contains(".") ? .spaceFraction : .spaceSeconds]) else {
                throw APIFault(.badRequest, "Invalid timestamp for date \(text)")
            }
            return answer(.ok, ["instance_usage_audit_log": try await auditLog(before: Date(timeIntervalSince1970: Double(before) / 1_000_000))],
                          version)
        }
    }

    /// A project's usage in Nova's words: sums always, each server's part when detailed.
    static func tenantUsageJSON(_ usage: TenantUsage.ProjectUsage, detailed: Bool) -> JSON {
        var object: [String: JSON] = [
            "tenant_id": .string(usage.projectID), "total_local_gb_usage": .number(usage.totalLocalGBUsage),
            "total_vcpus_usage": .number(usage.totalVCPUsUsage), "total_memory_mb_usage": .number(usage.totalMemoryMBUsage),
            "total_hours": .number(usage.totalHours), "start": .string(NovaTimes.format(usage.periodStart)),
            "stop": .string(NovaTimes.format(usage.periodStop)),
        ]
        if detailed {
            object["server_usages"] = .array(usage.servers.map { server in
                ["instance_id": .string(server.instanceID), "name": .string(server.name), "tenant_id": .string(server.projectID),
                 "flavor": .string(server.flavor), "hours": .number(server.hours), "vcpus": .number(Double(server.vcpus)),
                 "memory_mb": .number(Double(server.memoryMB)), "local_gb": .number(Double(server.localGB)),
                 "started_at": .string(NovaTimes.format(server.startedAt)), "ended_at": .null, "state": .string(server.state),
                 "uptime": .number(Double(server.uptime))]
            })
        }
        return .object(object)
    }
}

extension NovaQuerySchemas {
    /// `GET /os-simple-tenant-usage`: start, end, detailed; paging from 2.40; closed from 2.75.
    static let tenantUsages = versioned { version in
        var properties: [(String, Schema)] = [("start", NovaTypes.queryParam), ("end", NovaTypes.queryParam), ("detailed", NovaTypes.queryParam)]
        if version >= Microversion(2, 40) { properties += NovaTypes.pagination }
        return .object(properties, additional: version < Microversion(2, 75))
    }

    /// `GET /os-simple-tenant-usage/{tenant_id}`: start, end; paging from 2.40; closed from 2.75.
    static let tenantUsage = versioned { version in
        var properties: [(String, Schema)] = [("start", NovaTypes.queryParam), ("end", NovaTypes.queryParam)]
        if version >= Microversion(2, 40) { properties += NovaTypes.pagination }
        return .object(properties, additional: version < Microversion(2, 75))
    }
}

/// Nova's naive UTC times, kept in microseconds since 1970.
enum NovaTimes {
    /// Python strptime formats Nova tries.
    enum Format {
        /// %Y-%m-%dT%H:%M:%S
        case isoSeconds
        /// %Y-%m-%dT%H:%M:%S.%f
        case isoFraction
        /// %Y-%m-%d %H:%M:%S
        case spaceSeconds
        /// %Y-%m-%d %H:%M:%S.%f
        case spaceFraction

        var pattern: String {
            let date = "^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})", time = "([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})"
            switch self {
            case .isoSeconds: return date + "T" + time + "$"
            case .isoFraction: return date + "T" + time + "\\.([0-9]{1,6})$"
            case .spaceSeconds: return date + " " + time + "$"
            case .spaceFraction: return date + " " + time + "\\.([0-9]{1,6})$"
            }
        }
    }

    /// Now, in microseconds, and later than any earlier answer: a usage request without `start`
    /// and `end` reads now twice, as Nova's `utcnow()` calls, and must get a start before its end
    /// even when the clock has not moved between the two reads.
    static func nowMicroseconds() -> Int64 {
        let clock = Int64((Date().timeIntervalSince1970 * 1_000_000).rounded())
        return lastNow.withLock { last in
            last = max(clock, last + 1)
            return last
        }
    }
    private static let lastNow = Mutex<Int64>(0)

    /// The first format that takes `text` (as Python's strptime: 1- or 2-digit fields, a real
    /// date, 0-23 h, 0-59 min and s), in microseconds since 1970.
    static func parse(_ text: String, formats: [Format]) -> Int64? {
        for format in formats {
            guard let expression = try? NSRegularExpression(pattern: format.pattern),
                  let match = expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) else { continue }
            func group(_ index: Int) -> String? {
                guard index < match.numberOfRanges, let range = Range(match.range(at: index), in: text) else { return nil }
                return String(text[range])
            }
            guard let year = group(1).flatMap({ Int($0) }), let month = group(2).flatMap({ Int($0) }), let day = group(3).flatMap({ Int($0) }),
                  let hour = group(4).flatMap({ Int($0) }), let minute = group(5).flatMap({ Int($0) }),
                  let second = group(6).flatMap({ Int($0) }) else { continue }
            let fraction = group(7).map { Int64($0.padding(toLength: 6, withPad: "0", startingAt: 0)) ?? 0 } ?? 0
            guard year >= 1, (1...12).contains(month), hour < 24, minute < 60, second < 60 else { continue }
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let components = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
            guard components.isValidDate(in: calendar), let date = calendar.date(from: components) else { continue }
            return Int64(date.timeIntervalSince1970.rounded()) * 1_000_000 + fraction
        }
        return nil
    }

    /// Python's isoformat of a naive datetime as Nova's JSON writes it: always six fraction digits.
    static func format(_ microseconds: Int64) -> String {
        let seconds = microseconds >= 0 ? microseconds / 1_000_000 : (microseconds - 999_999) / 1_000_000
        let fraction = microseconds - seconds * 1_000_000
        let date = Date(timeIntervalSince1970: Double(seconds))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06d", parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!,
                      parts.second!, Int(fraction))
    }

    /// Nova's `last_completed_audit_period` for its default unit, the month: the month before
    /// the one `before` is in (the one before that when `before` is its very first instant),
    /// as Python prints naive datetimes ("2012-06-01 00:00:00").
    static func lastCompletedAuditPeriod(before: Date) -> (begin: String, end: String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month], from: before)
        var end = calendar.date(from: DateComponents(year: parts.year, month: parts.month, day: 1))!
        if end >= before { end = calendar.date(byAdding: .month, value: -1, to: end)! }
        let begin = calendar.date(byAdding: .month, value: -1, to: end)!
        func text(_ date: Date) -> String {
            let p = calendar.dateComponents([.year, .month, .day], from: date)
            return String(format: "%04d-%02d-%02d 00:00:00", p.year!, p.month!, p.day!)
        }
        return (text(begin), text(end))
    }

    /// Python's `urllib.parse.quote_plus`: letters, digits and `_.-~` kept, a space as '+'.
    static func quotePlus(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            case UInt8(ascii: " "): out.append("+")
            default: out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
