import Foundation
import HTTPTypes
import Hosts
import Hummingbird
import PetrelCore
import Logging
import PetrelHTTP
import Volumes

/// The Cinder v3 API under `/volume/v3[/{project_id}]`: version discovery, microversions,
/// volumes, volume types, quotas, limits, availability zones and the volume services the nodes
/// run with their backends.
public struct VolumeAPI: Sendable {
    public let environment: APIEnvironment
    public let hosts: HostInventory
    public let volumes: VolumeService
    let logger: Logger

    public static let minimum = Microversion(3, 0)
    public static let maximum = Microversion(3, 71)

    static let admin = "rule:admin_api"
    static let reader = "rule:admin_api or (role:reader and project_id:%(project_id)s)"
    static let member = "rule:admin_api or (role:member and project_id:%(project_id)s)"

    public static let policyDefaults: [PolicyDefault] = [
        PolicyDefault("admin_api", "role:admin", "Cinder's administrators."),
        PolicyDefault("volume_extension:services:index", admin, "List volume services.", ["GET /volume/v3/os-services"]),
        PolicyDefault("volume_extension:services:update", admin, "Enable or disable a volume service.",
                      ["PUT /volume/v3/os-services/{action}"]),
        PolicyDefault("volume:create", "rule:admin_api or role:member", "Create a volume.", ["POST /volume/v3/volumes"]),
        PolicyDefault("volume:get_all", "rule:admin_api or role:reader", "List volumes.",
                      ["GET /volume/v3/volumes", "GET /volume/v3/volumes/detail"]),
        PolicyDefault("volume:get", reader, "Show a volume.", ["GET /volume/v3/volumes/{id}"]),
        PolicyDefault("volume:update", member, "Change a volume's name or description.", ["PUT /volume/v3/volumes/{id}"]),
        PolicyDefault("volume:delete", member, "Delete a volume.", ["DELETE /volume/v3/volumes/{id}"]),
        PolicyDefault("volume:extend", member, "Extend a volume.", ["POST /volume/v3/volumes/{id}/action (os-extend)"]),
        PolicyDefault("volume:update_volume_metadata", member, "Change a volume's metadata.",
                      ["PUT /volume/v3/volumes/{id}/metadata", "POST /volume/v3/volumes/{id}/metadata",
                       "PUT /volume/v3/volumes/{id}/metadata/{key}", "DELETE /volume/v3/volumes/{id}/metadata/{key}"]),
        PolicyDefault("volume:get_volume_metadata", reader, "Show a volume's metadata.", ["GET /volume/v3/volumes/{id}/metadata"]),
        PolicyDefault("volume_extension:volume_actions:update_bootable", member, "Mark a volume bootable or not.",
                      ["POST /volume/v3/volumes/{id}/action (os-set_bootable)"]),
        PolicyDefault("volume_extension:volume_actions:upload_image", member, "Upload a volume's bytes to a new image.",
                      ["POST /volume/v3/volumes/{id}/action (os-volume_upload_image)"]),
        PolicyDefault("volume_extension:volume_actions:upload_public", admin, "Upload a volume to a public image.",
                      ["POST /volume/v3/volumes/{id}/action (os-volume_upload_image)"]),
        PolicyDefault("volume_extension:volume_admin_actions:reset_status", admin, "Reset a volume's status.",
                      ["POST /volume/v3/volumes/{id}/action (os-reset_status)"]),
        PolicyDefault("volume_extension:volume_admin_actions:force_delete", admin, "Delete a volume whatever its status.",
                      ["POST /volume/v3/volumes/{id}/action (os-force_delete)"]),
        PolicyDefault("volume:get_all_tenants", admin, "List the volumes of every project.", ["GET /volume/v3/volumes?all_tenants=1"]),
        PolicyDefault("volume_extension:volume_host_attribute", admin, "See os-vol-host-attr:host in volume bodies.",
                      ["GET /volume/v3/volumes/{id}"]),
        PolicyDefault("volume_extension:types_manage", admin, "Create, change or delete volume types and their extra specs.",
                      ["POST /volume/v3/types", "PUT /volume/v3/types/{id}", "DELETE /volume/v3/types/{id}",
                       "POST /volume/v3/types/{id}/extra_specs"]),
        PolicyDefault("volume_extension:type_get", "rule:admin_api or role:reader", "Show volume types.",
                      ["GET /volume/v3/types", "GET /volume/v3/types/{id}"]),
        PolicyDefault("volume_extension:types_extra_specs:index", "rule:admin_api or role:reader", "Show a volume type's extra specs.",
                      ["GET /volume/v3/types/{id}/extra_specs"]),
        PolicyDefault("volume_extension:volume_type_access", "rule:admin_api or role:reader", "See which projects see a private type.",
                      ["GET /volume/v3/types/{id}/os-volume-type-access"]),
        PolicyDefault("volume_extension:volume_type_access:addProjectAccess", admin, "Share a private volume type with a project.",
                      ["POST /volume/v3/types/{id}/action (addProjectAccess)"]),
        PolicyDefault("volume_extension:volume_type_access:removeProjectAccess", admin, "Stop sharing a private volume type.",
                      ["POST /volume/v3/types/{id}/action (removeProjectAccess)"]),
        PolicyDefault("volume_extension:quotas:show", reader, "Show a project's volume quotas.", ["GET /volume/v3/os-quota-sets/{project_id}"]),
        PolicyDefault("volume_extension:quotas:update", admin, "Change a project's volume quotas.", ["PUT /volume/v3/os-quota-sets/{project_id}"]),
        PolicyDefault("volume_extension:quotas:delete", admin, "Reset a project's volume quotas.", ["DELETE /volume/v3/os-quota-sets/{project_id}"]),
        PolicyDefault("limits_extension:used_limits", reader, "Show the caller's volume limits and usage.", ["GET /volume/v3/limits"]),
        PolicyDefault("volume_extension:availability_zone_list", "", "List volume availability zones.",
                      ["GET /volume/v3/os-availability-zone"]),
        PolicyDefault("volume:create_snapshot", member, "Snapshot a volume.", ["POST /volume/v3/snapshots"]),
        PolicyDefault("volume:get_all_snapshots", "rule:admin_api or role:reader", "List snapshots.",
                      ["GET /volume/v3/snapshots", "GET /volume/v3/snapshots/detail"]),
        PolicyDefault("volume:get_snapshot", reader, "Show a snapshot.", ["GET /volume/v3/snapshots/{id}"]),
        PolicyDefault("volume:update_snapshot", member, "Change a snapshot's name, description or metadata.",
                      ["PUT /volume/v3/snapshots/{id}", "PUT /volume/v3/snapshots/{id}/metadata", "POST /volume/v3/snapshots/{id}/metadata"]),
        PolicyDefault("volume:delete_snapshot", member, "Delete a snapshot.", ["DELETE /volume/v3/snapshots/{id}"]),
        PolicyDefault("backup:create", member, "Back up a volume.", ["POST /volume/v3/backups"]),
        PolicyDefault("backup:get_all", "rule:admin_api or role:reader", "List backups.",
                      ["GET /volume/v3/backups", "GET /volume/v3/backups/detail"]),
        PolicyDefault("backup:get", reader, "Show a backup.", ["GET /volume/v3/backups/{id}"]),
        PolicyDefault("backup:update", member, "Change a backup's name, description or metadata.", ["PUT /volume/v3/backups/{id}"]),
        PolicyDefault("backup:delete", member, "Delete a backup.", ["DELETE /volume/v3/backups/{id}"]),
        PolicyDefault("backup:restore", member, "Restore a backup into a new or an existing volume.", ["POST /volume/v3/backups/{id}/restore"]),
        PolicyDefault("backup:backup_project_attribute", admin, "See os-backup-project-attr:project_id in backup bodies.",
                      ["GET /volume/v3/backups/{id}"]),
        PolicyDefault("volume_extension:backup_admin_actions:reset_status", admin, "Reset a backup's status.",
                      ["POST /volume/v3/backups/{id}/action (os-reset_status)"]),
        PolicyDefault("volume_extension:backup_admin_actions:force_delete", admin, "Delete a backup whatever its status.",
                      ["POST /volume/v3/backups/{id}/action (os-force_delete)"]),
        PolicyDefault("scheduler_extension:scheduler_stats:get_pools", admin, "List the backends' pools and their capacity.",
                      ["GET /volume/v3/scheduler-stats/get_pools"]),
    ] + attachmentPolicies + messagePolicies

    public init(environment: APIEnvironment, hosts: HostInventory, volumes: VolumeService, logger: Logger) {
        self.environment = environment
        self.hosts = hosts
        self.volumes = volumes
        self.logger = logger
    }

    var version: JSON {
        ["id": "v3.0", "status": "CURRENT", "version": .string(Self.maximum.description), "min_version": .string(Self.minimum.description),
         "updated": "2023-08-31T00:00:00Z",
         "links": [["rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"],
                   ["rel": "self", "href": .string(environment.publicURL + "/volume/v3/")]],
         "media-types": [["base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"]]]
    }

    public func register(on router: Router<APIRequestContext>) {
        let volume = environment.routes(router, "volume")
            .add(middleware: OpenStackErrorMiddleware(style: .nova, publicURL: environment.publicURL, logger: logger))
            .add(middleware: VolumeFailureMiddleware())
            .add(middleware: environment.authentication)
        volume.get { _, _ in respond(.multipleChoices, ["versions": [version]]) }
        let v3 = volume.group("v3")
        v3.get { _, _ in respond(.ok, ["versions": [version]]) }
        // With or without the project id in the path (both forms are in use in catalogs).
        for prefix in ["", ":project_id/"] {
            v3.get(RouterPath(prefix + "os-services")) { request, context in try await services(request, context) }
            v3.put(RouterPath(prefix + "os-services/:action"), body: .json(style: .nova) { request in
                request.uri.path.hasSuffix("/disable-log-reason") ? Self.serviceReasonSchema : Self.serviceSchema
            }) { request, context in
                try await update(request, context, action: try context.parameters.require("action"))
            }
            v3.get(RouterPath(prefix + "os-availability-zone")) { request, context in try await zones(request, context) }
            v3.get(RouterPath(prefix + "limits")) { request, context in try await limits(request, context) }
            v3.get(RouterPath(prefix + "os-quota-sets/:target")) { request, context in try await showQuota(request, context) }
            v3.get(RouterPath(prefix + "os-quota-sets/:target/defaults")) { request, context in try await quotaDefaults(request, context) }
            v3.put(RouterPath(prefix + "os-quota-sets/:target"), body: .json(Self.quotaSchema, style: .nova)) { request, context in try await updateQuota(request, context) }
            v3.delete(RouterPath(prefix + "os-quota-sets/:target")) { request, context in try await deleteQuota(request, context) }
            v3.get(RouterPath(prefix + "scheduler-stats/get_pools")) { request, context in try await pools(request, context) }
            registerVolumes(on: v3, prefix: prefix)
            registerTypes(on: v3, prefix: prefix)
            registerSnapshots(on: v3, prefix: prefix)
            registerBackups(on: v3, prefix: prefix)
            registerAttachments(on: v3, prefix: prefix)
            registerMessages(on: v3, prefix: prefix)
        }
    }

    func begin(_ request: Request, _ context: APIRequestContext, _ action: String, target: [String: String] = [:]) async throws -> Microversion {
        let version = try microversion(request)
        try context.enforce(action, target: target)
        return version
    }

    func microversion(_ request: Request) throws -> Microversion {
        try Microversion.requested(by: request.headers, service: "volume", legacyHeader: nil, minimum: Self.minimum, maximum: Self.maximum)
    }

    /// The version whose request schema a body is checked against: the one asked for (the
    /// handlers refuse one out of range before they read the body), else the minimum.
    static func requestedVersion(_ request: Request) -> Microversion {
        (try? Microversion.requested(by: request.headers, service: "volume", legacyHeader: nil, minimum: minimum, maximum: maximum)) ?? minimum
    }

    func ok(_ json: JSON, _ version: Microversion, status: HTTPResponse.Status = .ok) -> Response {
        respond(status, json, headers: version.headers(service: "volume", legacyHeader: nil))
    }

    /// Cinder's timestamps: microseconds, no zone.
    static func time(_ milliseconds: Int64) -> JSON {
        if case .string(let text) = timestamp(milliseconds: milliseconds) { return .string(String(text.dropLast())) }
        return .null
    }

    /// The project a request acts for: the one in the path must be the token's (an
    /// administrator may name another only where the route says so).
    func project(_ context: APIRequestContext) throws -> String {
        guard let project = try context.caller().projectID else {
            throw APIFault(.forbidden, "Policy doesn't allow this request without a project-scoped token.")
        }
        return project
    }

    // MARK: Services, zones, pools

    func serviceJSON(_ service: ServiceStatus, backend: String?, _ version: Microversion) -> JSON {
        var object: [String: JSON] = [
            "binary": .string(service.binary), "host": .string(backend.map { "\(service.host)@\($0)" } ?? service.host),
            "zone": .string(volumes.settings.availabilityZone),
            "status": service.enabled ? "enabled" : "disabled", "state": service.up ? "up" : "down",
            "updated_at": Self.time(service.record.lastSeenAt ?? service.record.updatedAt),
            "disabled_reason": .string(service.record.disabledReason),
            "frozen": false, "replication_status": "disabled", "active_backend_id": nil,
        ]
        if version >= Microversion(3, 7) { object["cluster"] = .null }
        if version >= Microversion(3, 49) { object["backend_state"] = service.up ? "up" : "down" }
        return .object(object)
    }

    /// Each node's cinder-volume as Cinder lists it: one service per backend (`host@backend`).
    func volumeServices() async throws -> [(service: ServiceStatus, backend: String?)] {
        let backends = try await volumes.backends()
        var out: [(ServiceStatus, String?)] = []
        for service in try await hosts.services(where: { $0.binary.hasPrefix("cinder-") }) {
            let names = service.binary == VolumeService.volumeBinary ? backends.filter { $0.host == service.host }.map(\.name) : []
            if names.isEmpty { out.append((service, nil)) } else { out += names.map { (service, $0) } }
        }
        return out
    }

    func services(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:services:index")
        let host = request.query("host"), binary = request.query("binary")
        let list = try await volumeServices().filter { entry in
            (binary == nil || entry.service.binary == binary)
                && (host == nil || entry.service.host == host || entry.backend.map { "\(entry.service.host)@\($0)" } == host)
        }
        return ok(["services": .array(list.map { serviceJSON($0.service, backend: $0.backend, version) })], version)
    }

    static let serviceFields: [(String, Schema)] = [
        ("binary", .string(minLength: 1, maxLength: 255)), ("host", .string(minLength: 1, maxLength: 255)),
        ("cluster", Schema(types: [.string, .null])), ("service", .string(minLength: 1, maxLength: 255)),
    ]
    static let serviceSchema = Schema.object(serviceFields)
    static let serviceReasonSchema = Schema.object(serviceFields + [("disabled_reason", .string(minLength: 1, maxLength: 255))])
    static let quotaSchema = Schema.object([("quota_set", Schema(types: [.object]))], required: ["quota_set"])

    /// `PUT /os-services/enable|disable|disable-log-reason` with `{"host", "binary"[, "disabled_reason"]}`.
    func update(_ request: Request, _ context: APIRequestContext, action: String) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:services:update")
        guard ["enable", "disable", "disable-log-reason"].contains(action) else {
            throw APIFault(.notFound, "Unknown action")
        }
        let body = try await environment.body(request, context)
        guard let host = body["host"]?.stringValue else { throw APIFault(.badRequest, "Missing required element 'host' in request body.") }
        let binary = body["binary"]?.stringValue ?? VolumeService.volumeBinary
        let reason = body["disabled_reason"]?.stringValue
        if action == "disable-log-reason", reason == nil || reason!.isEmpty || reason!.count > 255 {
            throw APIFault(.badRequest, "Disabled reason contains invalid characters or is too long")
        }
        guard let entry = try await volumeServices().first(where: { entry in
            entry.service.binary == binary && (entry.service.host == host || entry.backend.map { "\(entry.service.host)@\($0)" } == host)
        }) else {
            throw APIFault(.notFound, "Service \(binary) on host \(host) could not be found.")
        }
        let updated = try await hosts.setEnabled(id: entry.service.id, action == "enable", reason: reason) ?? entry.service
        var object = serviceJSON(updated, backend: entry.backend, version).objectValue ?? [:]
        object["disabled"] = .bool(!updated.enabled)
        return ok(.object(object), version)
    }

    func zones(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:availability_zone_list")
        let alive = try await hosts.services(where: { $0.binary == VolumeService.volumeBinary }).contains { $0.up && $0.enabled }
        return ok(["availabilityZoneInfo": [["zoneName": .string(volumes.settings.availabilityZone),
                                             "zoneState": ["available": .bool(alive)]]]], version)
    }

    /// `GET /scheduler-stats/get_pools[?detail=true]`: each backend as the scheduler sees it.
    func pools(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "scheduler_extension:scheduler_stats:get_pools")
        let detail = request.boolQuery("detail") ?? false
        let list: [JSON] = try await volumes.backends().map { backend in
            var pool: [String: JSON] = ["name": .string("\(backend.host)@\(backend.name)#\(backend.backendName)")]
            if detail {
                pool["capabilities"] = [
                    "pool_name": .string(backend.backendName), "volume_backend_name": .string(backend.backendName),
                    // Volumes are reachable only on their node until the iSCSI export exists.
                    "storage_protocol": "local",
                    "driver_version": "1.0", "vendor_name": "Petrel",
                    "total_capacity_gb": .number((backend.totalGB * 100).rounded() / 100),
                    "free_capacity_gb": .number((backend.freeGB * 100).rounded() / 100),
                    "provisioned_capacity_gb": .number(Double(backend.provisionedGB)),
                    "allocated_capacity_gb": .number(Double(backend.provisionedGB)),
                    "reserved_percentage": .number(Double(backend.reservedPercentage)),
                    "max_over_subscription_ratio": .string(String(backend.maxOverSubscriptionRatio)),
                    "thin_provisioning_support": .bool(backend.thin), "thick_provisioning_support": .bool(!backend.thin),
                    "timestamp": Self.time(backend.updatedAt),
                ]
            }
            return .object(pool)
        }
        return ok(["pools": .array(list)], version)
    }

    // MARK: Quotas and limits

    func quotaTarget(_ context: APIRequestContext) throws -> String {
        try context.parameters.require("target")
    }

    func showQuota(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let target = try quotaTarget(context)
        let version = try await begin(request, context, "volume_extension:quotas:show", target: ["project_id": target])
        let limits = try await volumes.quotaLimits(project: target)
        var body: [String: JSON] = ["id": .string(target)]
        if request.boolQuery("usage") ?? false {
            let usage = try await volumes.quotaUsage(project: target)
            for (resource, limit) in limits {
                body[resource] = ["limit": .number(Double(limit)), "in_use": .number(Double(usage[resource] ?? 0)), "reserved": 0]
            }
        } else {
            for (resource, limit) in limits { body[resource] = .number(Double(limit)) }
        }
        return ok(["quota_set": .object(body)], version)
    }

    func quotaDefaults(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let target = try quotaTarget(context)
        let version = try await begin(request, context, "volume_extension:quotas:show", target: ["project_id": target])
        var body: [String: JSON] = ["id": .string(target)]
        for (resource, limit) in volumes.settings.quotaDefaults where VolumeService.quotaResources.contains(resource) {
            body[resource] = .number(Double(limit))
        }
        for type in try await volumes.volumeTypes(projectID: nil) {
            for resource in ["volumes", "gigabytes", "snapshots"] { body["\(resource)_\(type.name)"] = -1 }
        }
        return ok(["quota_set": .object(body)], version)
    }

    func updateQuota(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let target = try quotaTarget(context)
        let version = try await begin(request, context, "volume_extension:quotas:update", target: ["project_id": target])
        let body = try await environment.body(request, context)
        guard let set = body["quota_set"]?.objectValue else {
            throw APIFault(.badRequest, "Missing required element 'quota_set' in request body.")
        }
        var changes: [String: Int] = [:]
        for (key, value) in set where key != "tenant_id" && key != "id" {
            let number: Int?
            switch value {
            case .number(let n) where n.rounded() == n: number = Int(exactly: n)
            case .string(let text): number = Int(text)
            default: number = nil
            }
            guard let number else {
                throw APIFault(.badRequest, "Invalid input for field/attribute \(key). Value: \(value.pythonRepr). \(value.pythonRepr) is not of type 'integer'")
            }
            changes[key] = number
        }
        let limits = try await volumes.setQuota(project: target, changes)
        var out: [String: JSON] = [:]
        for (resource, limit) in limits { out[resource] = .number(Double(limit)) }
        return ok(["quota_set": .object(out)], version)
    }

    func deleteQuota(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let target = try quotaTarget(context)
        let version = try await begin(request, context, "volume_extension:quotas:delete", target: ["project_id": target])
        try await volumes.resetQuota(project: target)
        return respond(.ok, .object([:]), headers: version.headers(service: "volume", legacyHeader: nil))
    }

    func limits(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let project = try project(context)
        let version = try await begin(request, context, "limits_extension:used_limits", target: ["project_id": project])
        let limits = try await volumes.quotaLimits(project: project)
        let usage = try await volumes.quotaUsage(project: project)
        func value(_ map: [String: Int], _ key: String) -> JSON { .number(Double(map[key] ?? 0)) }
        return ok(["limits": ["rate": [], "absolute": [
            "maxTotalVolumes": value(limits, "volumes"), "maxTotalSnapshots": value(limits, "snapshots"),
            "maxTotalVolumeGigabytes": value(limits, "gigabytes"), "maxTotalBackups": value(limits, "backups"),
            "maxTotalBackupGigabytes": value(limits, "backup_gigabytes"),
            "totalVolumesUsed": value(usage, "volumes"), "totalGigabytesUsed": value(usage, "gigabytes"),
            "totalSnapshotsUsed": value(usage, "snapshots"), "totalBackupsUsed": value(usage, "backups"),
            "totalBackupGigabytesUsed": value(usage, "backup_gigabytes"),
        ]]], version)
    }
}

/// Turns the volume service's refusals into Cinder's error bodies.
struct VolumeFailureMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let failure as VolumeFailure {
            throw APIFault(HTTPResponse.Status(code: failure.status), failure.message)
        }
    }
}
