import Compute
import ComputeAPI
import Foundation
import HTTPTypes
import Hosts
import Hummingbird
import HummingbirdTesting
@testable import IdentityAPI
import Identity
import Logging
import PetrelCore
import PetrelHTTP
import Store
import TestSupport
import Testing

/// Nova's usage, audit log, quota class, extension and external event APIs in process: shapes
/// per microversion, errors and policies in Nova's words.
@Suite struct NovaUsageAPITests {
    struct Cloud: Sendable {
        let client: any TestClientProtocol
        let database: Database
        let admin: String
        let adminProject: String
        let member: String
        let project: String
        let otherMember: String
        /// demo's servers, launched an hour and two hours ago.
        let recent: String
        let older: String
        /// demo's server that never launched; the admin project's server.
        let unlaunched: String
        let adminServer: String
    }

    func withCloud(_ body: @Sendable (Cloud) async throws -> Void) async throws {
        try await withBootstrappedIdentity { database, service in
            let logger = Logger(label: "usage-test")
            let defaults = KeystonePolicy.defaults + ComputeAPI.policyDefaults
            let identity = KeystoneAPI(service: service, policy: try Policy(defaults: defaults), publicURL: "http://controller:5000", logger: logger)
            let router = Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
            let hosts = HostInventory(database: database, serviceDownTime: 3600)
            ComputeAPI(environment: identity.environment, hosts: hosts, logger: logger).register(on: router)
            identity.register(on: router)
            let store = ServiceStore(database)
            try await store.record(host: "node-1", version: "1", services: [("nova-compute", "compute")],
                                   hypervisor: HypervisorRecord(type: "QEMU", version: 7_002_000, cpuModel: "x86_64", vcpus: 4,
                                                                memoryMB: 8192, localGB: 100, hostIP: "10.0.0.1"))
            try await store.record(host: "node-2", version: "1", services: [("nova-compute", "compute")],
                                   hypervisor: HypervisorRecord(type: "QEMU", version: 7_002_000, cpuModel: "x86_64", vcpus: 4,
                                                                memoryMB: 8192, localGB: 100, hostIP: "10.0.0.2"))
            let admin = try await adminToken(service)
            let adminProject = try await service.write { sql in
                try await IdentityTables.projects.first(sql, where: [.equals("name", "admin")])!.id
            }
            let (project, member) = try await addProjectUser(service, project: "demo", user: "alice", role: "reader")
            let (_, otherMember) = try await addProjectUser(service, project: "other", user: "bob")
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            func server(_ name: String, project: String, launchedAgo hours: Double?, state: String = "active") async throws -> String {
                var row = InstanceRow(id: UUID().uuidString.lowercased(), name: name, projectID: project, userID: "u", flavorID: "1",
                                      vcpus: 2, memoryMB: 512, rootGB: 1, ephemeralGB: 2, imageID: nil, availabilityZone: nil,
                                      createdAt: now - 3 * 3_600_000)
                row.host = "node-1"
                row.vmState = state
                row.taskState = nil
                row.flavorName = "m1.small"
                row.launchedAt = hours.map { now - Int64($0 * 3_600_000) }
                let inserted = row
                try await database.withConnection { sql in try await ComputeTables.instances.insert(sql, inserted) }
                return row.id
            }
            let recent = try await server("recent", project: project, launchedAgo: 1)
            let older = try await server("older", project: project, launchedAgo: 2, state: "stopped")
            let unlaunched = try await server("unlaunched", project: project, launchedAgo: nil, state: "error")
            let adminServer = try await server("admin-vm", project: adminProject, launchedAgo: 1)
            try await Application(router: router).test(.router) { client in
                try await body(Cloud(client: client, database: database, admin: admin, adminProject: adminProject, member: member,
                                     project: project, otherMember: otherMember, recent: recent, older: older, unlaunched: unlaunched,
                                     adminServer: adminServer))
            }
        }
    }

    func call(_ cloud: Cloud, _ path: String, token: String, method: HTTPRequest.Method = .get, body: String? = nil,
              version: String = "2.1") async throws -> (HTTPResponse.Status, JSON?) {
        let headers: HTTPFields = [HTTPField.Name("X-Auth-Token")!: token, .contentType: "application/json",
                                   HTTPField.Name("OpenStack-API-Version")!: "compute \(version)"]
        return try await cloud.client.execute(uri: "/compute/v2.1" + path, method: method, headers: headers,
                                              body: body.map { ByteBuffer(string: $0) }) {
            ($0.status, JSON.parse(Array($0.body.readableBytesView)))
        }
    }

    func message(_ json: JSON?) -> String? { json?.objectValue?.values.first?["message"]?.stringValue }
    func number(_ json: JSON?) -> Double? { if case .number(let value)? = json { return value } else { return nil } }
    func string(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        return formatter.string(from: date)
    }

    // MARK: os-simple-tenant-usage

    @Test func usageSumsTheLaunchedServersOfEachProject() async throws {
        try await withCloud { cloud in
            // The last four hours: demo's servers ran 1 h and 2 h, the admin's 1 h.
            let start = string(Date().addingTimeInterval(-4 * 3600))
            var (status, json) = try await call(cloud, "/os-simple-tenant-usage?start=\(start)&detailed=1", token: cloud.admin)
            #expect(status == .ok, "\(String(describing: json))")
            let usages = json?["tenant_usages"]?.arrayValue ?? []
            #expect(usages.count == 2)
            let demo = try #require(usages.first { $0["tenant_id"]?.stringValue == cloud.project })
            // The hours grow while the test runs (a fresh-clone CI run took seconds between writing
            // the servers and asking): 3 h within 3 minutes, and the other sums in proportion to them.
            let hours = number(demo["total_hours"]) ?? 0
            #expect(abs(hours - 3) < 0.05, "\(demo)")
            #expect(abs((number(demo["total_vcpus_usage"]) ?? 0) - 2 * hours) < 0.01)
            #expect(abs((number(demo["total_memory_mb_usage"]) ?? 0) - 512 * hours) < 1)
            #expect(abs((number(demo["total_local_gb_usage"]) ?? 0) - 3 * hours) < 0.01)
            #expect(demo["start"]?.stringValue == start + ".000000")
            let servers = demo["server_usages"]?.arrayValue ?? []
            #expect(Set(servers.compactMap { $0["instance_id"]?.stringValue }) == [cloud.recent, cloud.older], "never launched: no usage")
            let older = try #require(servers.first { $0["instance_id"]?.stringValue == cloud.older })
            #expect(older["state"]?.stringValue == "stopped" && older["flavor"]?.stringValue == "m1.small")
            #expect(number(older["local_gb"]) == 3 && number(older["vcpus"]) == 2 && number(older["memory_mb"]) == 512)
            #expect(older["ended_at"] == .null && older["name"]?.stringValue == "older")
            #expect(abs((number(older["uptime"]) ?? 0) - 7200) < 60)
            #expect(older["started_at"]?.stringValue?.count == 26)
            // Not detailed: the sums only.
            (status, json) = try await call(cloud, "/os-simple-tenant-usage?start=\(start)", token: cloud.admin)
            #expect(json?["tenant_usages"]?.arrayValue?.allSatisfy { $0["server_usages"] == nil } == true)
            // A period starting half an hour ago counts half an hour of each.
            let recentStart = string(Date().addingTimeInterval(-1800))
            (status, json) = try await call(cloud, "/os-simple-tenant-usage/\(cloud.project)?start=\(recentStart)", token: cloud.member)
            #expect(status == .ok)
            #expect(abs((number(json?["tenant_usage"]?["total_hours"]) ?? 0) - 1) < 0.05, "\(String(describing: json))")
            #expect(json?["tenant_usage"]?["server_usages"]?.arrayValue?.count == 2)
            // A period before anything launched: an empty usage.
            (status, json) = try await call(cloud, "/os-simple-tenant-usage/\(cloud.project)?start=2020-01-01T00:00:00&end=2020-02-01T00:00:00",
                                            token: cloud.member)
            #expect(status == .ok && json?["tenant_usage"] == [:], "\(String(describing: json))")
        }
    }

    @Test func usagePagesFrom240() async throws {
        try await withCloud { cloud in
            let start = "2020-01-01 00:00:00.5"
            var (status, json) = try await call(cloud, "/os-simple-tenant-usage?start=\(start.replacingOccurrences(of: " ", with: "+"))&limit=1&detailed=1",
                                                token: cloud.admin, version: "2.40")
            #expect(status == .ok, "\(String(describing: json))")
            let first = json?["tenant_usages"]?.arrayValue?.first?["server_usages"]?.arrayValue?.first?["instance_id"]?.stringValue
            let next = json?["tenant_usages_links"]?.arrayValue?.first?["href"]?.stringValue ?? ""
            #expect(next.hasPrefix("http://controller:5000/compute/v2.1/os-simple-tenant-usage?detailed=1&limit=1&start=2020-01-01+00%3A00%3A00.5&marker="),
                    "\(next)")
            #expect(json?["tenant_usages"]?.arrayValue?.first?["start"]?.stringValue == "2020-01-01T00:00:00.500000")
            // Following the links walks every launched server once, ordered by project and id.
            var seen = [first]
            var marker = try #require(first)
            while true {
                (status, json) = try await call(cloud, "/os-simple-tenant-usage?start=2020-01-01T00:00:00&limit=1&detailed=1&marker=\(marker)",
                                                token: cloud.admin, version: "2.40")
                guard let id = json?["tenant_usages"]?.arrayValue?.first?["server_usages"]?.arrayValue?.first?["instance_id"]?.stringValue else { break }
                seen.append(id)
                marker = id
            }
            #expect(Set(seen.compactMap { $0 }) == [cloud.recent, cloud.older, cloud.adminServer] && seen.count == 3)
            // Before 2.40 no paging: limit is an unknown parameter, ignored; no links.
            (status, json) = try await call(cloud, "/os-simple-tenant-usage?start=2020-01-01T00:00:00&limit=1", token: cloud.admin, version: "2.39")
            #expect(status == .ok && json?["tenant_usages_links"] == nil && json?["tenant_usages"]?.arrayValue?.count == 2)
            // The one project's page and link.
            (status, json) = try await call(cloud, "/os-simple-tenant-usage/\(cloud.project)?start=2020-01-01T00:00:00&limit=1",
                                            token: cloud.admin, version: "2.40")
            #expect(json?["tenant_usage_links"]?.arrayValue?.first?["href"]?.stringValue?.contains("/os-simple-tenant-usage/\(cloud.project)?limit=1&start=") == true,
                    "\(String(describing: json))")
            // An unknown marker, a bad limit; from 2.75 unknown parameters.
            (status, json) = try await call(cloud, "/os-simple-tenant-usage?marker=nope", token: cloud.admin, version: "2.40")
            #expect(status == .badRequest && message(json) == "Marker nope could not be found.", "\(String(describing: json))")
            (status, json) = try await call(cloud, "/os-simple-tenant-usage?limit=-1", token: cloud.admin, version: "2.40")
            #expect(status == .badRequest && json?["badRequest"]?["code"] == 400, "\(String(describing: json))")
            (status, json) = try await call(cloud, "/os-simple-tenant-usage?foo=1", token: cloud.admin, version: "2.74")
            #expect(status == .ok)
            (status, json) = try await call(cloud, "/os-simple-tenant-usage?foo=1", token: cloud.admin, version: "2.75")
            #expect(status == .badRequest, "\(String(describing: json))")
        }
    }

    @Test func usageRefusesBadTimesAndOtherProjects() async throws {
        try await withCloud { cloud in
            var (status, json) = try await call(cloud, "/os-simple-tenant-usage?start=yesterday", token: cloud.admin)
            #expect(status == .badRequest && message(json) == "Invalid datetime string: Datetime is in invalid format", "\(String(describing: json))")
            (status, json) = try await call(cloud, "/os-simple-tenant-usage?start=2020-02-30T00:00:00", token: cloud.admin)
            #expect(status == .badRequest)
            (status, json) = try await call(cloud, "/os-simple-tenant-usage?start=2020-02-01T00:00:00&end=2020-01-01T00:00:00", token: cloud.admin)
            #expect(status == .badRequest && message(json) == "Invalid start time. The start time cannot occur after the end time.")
            // Policy: the list is the admin's; a project's usage its readers' (or the admin's).
            (status, json) = try await call(cloud, "/os-simple-tenant-usage", token: cloud.member)
            #expect(status == .forbidden && message(json) == "Policy doesn't allow os_compute_api:os-simple-tenant-usage:list to be performed.",
                    "\(String(describing: json))")
            (status, json) = try await call(cloud, "/os-simple-tenant-usage/\(cloud.project)", token: cloud.otherMember)
            #expect(status == .forbidden)
            (status, json) = try await call(cloud, "/os-simple-tenant-usage/\(cloud.project)", token: cloud.admin)
            #expect(status == .ok)
        }
    }

    // MARK: os-instance_usage_audit_log

    @Test func auditLogSaysNoTaskRan() async throws {
        try await withCloud { cloud in
            var (status, json) = try await call(cloud, "/os-instance_usage_audit_log", token: cloud.admin)
            #expect(status == .ok, "\(String(describing: json))")
            let log = json?["instance_usage_audit_logs"]
            #expect(log?["hosts_not_run"] == ["node-1", "node-2"] && log?["num_hosts"] == 2 && log?["num_hosts_done"] == 0)
            #expect(log?["num_hosts_not_run"] == 2 && log?["num_hosts_running"] == 0 && log?["log"] == [:])
            #expect(log?["total_instances"] == 0 && log?["total_errors"] == 0 && log?["overall_status"] == "0 of 2 hosts done. 0 errors.")
            (status, json) = try await call(cloud, "/os-instance_usage_audit_log/2012-07-05%2010:00:00", token: cloud.admin)
            #expect(status == .ok && json?["instance_usage_audit_log"]?["period_beginning"] == "2012-06-01 00:00:00"
                    && json?["instance_usage_audit_log"]?["period_ending"] == "2012-07-01 00:00:00", "\(String(describing: json))")
            // At a month's very first instant, the month before it ends the period.
            (status, json) = try await call(cloud, "/os-instance_usage_audit_log/2012-01-01%2000:00:00.000", token: cloud.admin)
            #expect(json?["instance_usage_audit_log"]?["period_beginning"] == "2011-11-01 00:00:00"
                    && json?["instance_usage_audit_log"]?["period_ending"] == "2011-12-01 00:00:00", "\(String(describing: json))")
            (status, json) = try await call(cloud, "/os-instance_usage_audit_log/2012-07-05T10:00:00", token: cloud.admin)
            #expect(status == .badRequest && message(json) == "Invalid timestamp for date 2012-07-05T10:00:00")
            (status, json) = try await call(cloud, "/os-instance_usage_audit_log", token: cloud.member)
            #expect(status == .forbidden)
            (status, json) = try await call(cloud, "/os-instance_usage_audit_log/2012-07-05%2010:00:00", token: cloud.member)
            #expect(status == .forbidden)
        }
    }

    // MARK: os-quota-class-sets

    @Test func quotaClassesPerMicroversionAndTheDefaultClass() async throws {
        try await withCloud { cloud in
            var (status, json) = try await call(cloud, "/os-quota-class-sets/default", token: cloud.admin)
            #expect(status == .ok)
            #expect(json == ["quota_class_set": ["id": "default", "instances": 10, "cores": 20, "ram": 51200, "key_pairs": 100,
                                                 "metadata_items": 128]], "\(String(describing: json))")
            (status, json) = try await call(cloud, "/os-quota-class-sets/default", token: cloud.admin, version: "2.57")
            #expect(json?["quota_class_set"]?["server_groups"] == 10 && json?["quota_class_set"]?["server_group_members"] == 10)
            // Fields per microversion: network ones until 2.50, injected files until 2.57.
            (status, json) = try await call(cloud, "/os-quota-class-sets/default", token: cloud.admin, method: .put,
                                            body: #"{"quota_class_set": {"floating_ips": 3, "instances": 20}}"#, version: "2.49")
            #expect(status == .ok && json?["quota_class_set"]?["instances"] == 20 && json?["quota_class_set"]?["id"] == nil,
                    "\(String(describing: json))")
            (status, json) = try await call(cloud, "/os-quota-class-sets/default", token: cloud.admin, method: .put,
                                            body: #"{"quota_class_set": {"floating_ips": 3}}"#, version: "2.50")
            #expect(status == .badRequest && message(json)?.contains("'floating_ips' was unexpected") == true, "\(String(describing: json))")
            (status, json) = try await call(cloud, "/os-quota-class-sets/default", token: cloud.admin, method: .put,
                                            body: #"{"quota_class_set": {"injected_files": 3}}"#, version: "2.56")
            #expect(status == .ok)
            (status, json) = try await call(cloud, "/os-quota-class-sets/default", token: cloud.admin, method: .put,
                                            body: #"{"quota_class_set": {"injected_files": 3}}"#, version: "2.57")
            #expect(status == .badRequest)
            (status, json) = try await call(cloud, "/os-quota-class-sets/default", token: cloud.admin, method: .put,
                                            body: #"{"quota_class_set": {"cores": -2}}"#, version: "2.57")
            #expect(status == .badRequest, "\(String(describing: json))")
            (status, json) = try await call(cloud, "/os-quota-class-sets/default", token: cloud.admin, method: .put,
                                            body: #"{"quota_class_set": {"server_groups": "15"}}"#, version: "2.57")
            #expect(status == .ok && json?["quota_class_set"]?["server_groups"] == 15 && json?["quota_class_set"]?["instances"] == 20)
            // The default class is every project's default and limit, unless the project has its own.
            (status, json) = try await call(cloud, "/os-quota-sets/\(cloud.project)/defaults", token: cloud.member)
            #expect(json?["quota_set"]?["instances"] == 20 && json?["quota_set"]?["server_groups"] == 15, "\(String(describing: json))")
            (status, json) = try await call(cloud, "/os-quota-sets/\(cloud.project)", token: cloud.member)
            #expect(json?["quota_set"]?["instances"] == 20)
            (status, json) = try await call(cloud, "/limits", token: cloud.member)
            #expect(json?["limits"]?["absolute"]?["maxTotalInstances"] == 20)
            (status, _) = try await call(cloud, "/os-quota-sets/\(cloud.project)", token: cloud.admin, method: .put,
                                         body: #"{"quota_set": {"instances": 7}}"#)
            (status, json) = try await call(cloud, "/os-quota-sets/\(cloud.project)", token: cloud.member)
            #expect(json?["quota_set"]?["instances"] == 7 && json?["quota_set"]?["cores"] == 20)
            // Another class is kept and shown, and changes no project.
            (status, json) = try await call(cloud, "/os-quota-class-sets/gold", token: cloud.admin, method: .put,
                                            body: #"{"quota_class_set": {"cores": 99}}"#, version: "2.57")
            #expect(status == .ok && json?["quota_class_set"]?["cores"] == 99 && json?["quota_class_set"]?["instances"] == 10)
            (status, json) = try await call(cloud, "/os-quota-sets/\(cloud.project)/defaults", token: cloud.member)
            #expect(json?["quota_set"]?["cores"] == 20)
            // Bad bodies; admin only.
            (status, json) = try await call(cloud, "/os-quota-class-sets/default", token: cloud.admin, method: .put, body: #"{"quota_set": {}}"#)
            #expect(status == .badRequest && json?["badRequest"] != nil)
            (status, json) = try await call(cloud, "/os-quota-class-sets/default", token: cloud.member)
            #expect(status == .forbidden && message(json) == "Policy doesn't allow os_compute_api:os-quota-class-sets:show to be performed.")
            (status, json) = try await call(cloud, "/os-quota-class-sets/default", token: cloud.member, method: .put,
                                            body: #"{"quota_class_set": {"cores": 1}}"#)
            #expect(status == .forbidden)
        }
    }

    // MARK: os-server-external-events

    @Test func externalEventsAnswerPerEventAndDoWhatTheyMean() async throws {
        try await withCloud { cloud in
            let unknown = UUID().uuidString.lowercased()
            // recent is active; power_state 0 as inserted: make it running first.
            try await cloud.database.withConnection { sql in
                var row = try await ComputeTables.instances.get(sql, id: cloud.recent)!
                row.powerState = 1
                try await ComputeTables.instances.update(sql, id: row.id, row)
                var unplaced = try await ComputeTables.instances.get(sql, id: cloud.unlaunched)!
                unplaced.host = nil
                try await ComputeTables.instances.update(sql, id: unplaced.id, unplaced)
            }
            var (status, json) = try await call(cloud, "/os-server-external-events", token: cloud.admin, method: .post, body: """
                {"events": [{"name": "network-changed", "server_uuid": "\(cloud.recent)", "tag": "foo"},
                            {"name": "power-update", "server_uuid": "\(cloud.recent)", "tag": "POWER_OFF", "status": "in-progress"}]}
                """, version: "2.76")
            #expect(status == .ok, "\(String(describing: json))")
            #expect(json == ["events": [["name": "network-changed", "server_uuid": .string(cloud.recent), "tag": "foo", "code": 200, "status": "completed"],
                                        ["name": "power-update", "server_uuid": .string(cloud.recent), "tag": "POWER_OFF", "code": 200,
                                         "status": "completed"]]], "\(String(describing: json))")
            let (row, actions) = try await cloud.database.withConnection { sql in
                (try await ComputeTables.instances.get(sql, id: cloud.recent)!,
                 try await ComputeTables.instanceActions.all(sql, where: [.equals("instance_id", cloud.recent)]).map(\.action))
            }
            #expect(row.vmState == "stopped" && row.powerState == 4 && actions == ["stop"])
            // Each failure in Nova's codes, 207 overall.
            (status, json) = try await call(cloud, "/os-server-external-events", token: cloud.admin, method: .post, body: """
                {"events": [{"name": "network-vif-plugged", "server_uuid": "\(unknown)"},
                            {"name": "network-vif-plugged", "server_uuid": "\(cloud.unlaunched)"},
                            {"name": "volume-extended", "server_uuid": "\(cloud.older)"},
                            {"name": "volume-extended", "server_uuid": "\(cloud.older)", "tag": "\(unknown)"}]}
                """, version: "2.51")
            #expect(status.code == 207, "\(String(describing: json))")
            let events = json?["events"]?.arrayValue ?? []
            #expect(events.map { number($0["code"]) } == [404, 422, 400, 200] && events.map { $0["status"]?.stringValue } == ["failed", "failed", "failed", "completed"],
                    "\(String(describing: json))")
            let olderActions = try await cloud.database.withConnection { sql in
                try await ComputeTables.instanceActions.all(sql, where: [.equals("instance_id", cloud.older)]).map(\.action)
            }
            #expect(olderActions == ["extend_volume"])
            // Names per microversion; the schema's other rules.
            (status, json) = try await call(cloud, "/os-server-external-events", token: cloud.admin, method: .post,
                                            body: #"{"events": [{"name": "power-update", "server_uuid": "\#(cloud.recent)", "tag": "POWER_ON"}]}"#,
                                            version: "2.75")
            #expect(status == .badRequest && message(json)?.contains("'power-update' is not one of") == true, "\(String(describing: json))")
            (status, json) = try await call(cloud, "/os-server-external-events", token: cloud.admin, method: .post,
                                            body: #"{"events": [{"name": "accelerator-request-bound", "server_uuid": "\#(cloud.recent)", "tag": "a"}]}"#,
                                            version: "2.82")
            #expect(status == .ok, "\(String(describing: json))")
            (status, json) = try await call(cloud, "/os-server-external-events", token: cloud.admin, method: .post, body: #"{"events": []}"#)
            #expect(status == .badRequest)
            (status, json) = try await call(cloud, "/os-server-external-events", token: cloud.admin, method: .post,
                                            body: #"{"events": [{"name": "network-changed", "server_uuid": "not-a-uuid"}]}"#)
            #expect(status == .badRequest)
            (status, json) = try await call(cloud, "/os-server-external-events", token: cloud.admin, method: .post,
                                            body: #"{"events": [{"name": "network-changed", "server_uuid": "\#(cloud.recent)", "extra": 1}]}"#)
            #expect(status == .badRequest)
            // Admin or service only.
            (status, json) = try await call(cloud, "/os-server-external-events", token: cloud.member, method: .post,
                                            body: #"{"events": [{"name": "network-changed", "server_uuid": "\#(cloud.recent)"}]}"#)
            #expect(status == .forbidden && json?["forbidden"]?["code"] == 403, "\(String(describing: json))")
        }
    }

    // MARK: extensions

    @Test func extensionsListOnlyWhatIsServed() async throws {
        try await withCloud { cloud in
            var (status, json) = try await call(cloud, "/extensions", token: cloud.member)
            #expect(status == .ok)
            let aliases = json?["extensions"]?.arrayValue?.compactMap { $0["alias"]?.stringValue } ?? []
            #expect(aliases.contains("os-simple-tenant-usage") && aliases.contains("os-quota-class-sets") && aliases.contains("os-keypairs"))
            // Nothing this cloud lacks: no nova-network, no cells, no agents; no servers API in this cloud, so none of its extensions.
            for missing in ["os-floating-ips", "os-networks", "os-cells", "os-agents", "os-fping", "OS-EXT-IPS", "os-shelve", "os-evacuate"] {
                #expect(!aliases.contains(missing), "\(missing)")
            }
            #expect(aliases == aliases.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) })
            (status, json) = try await call(cloud, "/extensions/os-keypairs", token: cloud.member)
            #expect(status == .ok && json == ["extension": ["alias": "os-keypairs", "description": "Keypair Support.", "links": [],
                                                            "name": "Keypairs", "namespace": "http://docs.openstack.org/compute/ext/fake_xml",
                                                            "updated": "2014-12-03T00:00:00Z"]], "\(String(describing: json))")
            (status, json) = try await call(cloud, "/extensions/os-agents", token: cloud.member)
            #expect(status == .notFound && json == ["itemNotFound": ["code": 404, "message": "The resource could not be found."]],
                    "\(String(describing: json))")
        }
    }
}
