import Foundation
import HTTPTypes
import Hosts
import Hummingbird
import PetrelCore
import Logging
import PetrelHTTP

/// The Cinder v3 API under `/volume`: version discovery, microversions and (so far) the
/// volume services the nodes report.
public struct VolumeAPI: Sendable {
    public let environment: APIEnvironment
    public let hosts: HostInventory
    let logger: Logger

    public static let minimum = Microversion(3, 0)
    public static let maximum = Microversion(3, 71)
    /// The volume backend of every node (Cinder names a volume service `host@backend`).
    public static let backend = "lvm"

    public static let policyDefaults: [PolicyDefault] = [
        PolicyDefault("admin_api", "role:admin", "Cinder's administrators."),
        PolicyDefault("volume_extension:services:index", "rule:admin_api", "List volume services.", ["GET /volume/v3/os-services"]),
        PolicyDefault("volume_extension:services:update", "rule:admin_api", "Enable or disable a volume service.",
                      ["PUT /volume/v3/os-services/{action}"]),
    ]

    public init(environment: APIEnvironment, hosts: HostInventory, logger: Logger) {
        self.environment = environment
        self.hosts = hosts
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
        let volume = router.group("volume")
            .add(middleware: OpenStackErrorMiddleware(style: .nova, publicURL: environment.publicURL, logger: logger))
            .add(middleware: environment.authentication)
        volume.get { _, _ in respond(.multipleChoices, ["versions": [version]]) }
        let v3 = volume.group("v3")
        v3.get { _, _ in respond(.ok, ["versions": [version]]) }
        // With or without the project id in the path (both forms are in use in catalogs).
        for prefix in ["", ":project_id/"] {
            v3.get(RouterPath(prefix + "os-services")) { request, context in try await services(request, context) }
            v3.put(RouterPath(prefix + "os-services/:action")) { request, context in
                try await update(request, context, action: try context.parameters.require("action"))
            }
        }
    }

    func begin(_ request: Request, _ context: APIRequestContext, _ action: String) async throws -> Microversion {
        let version = try Microversion.requested(by: request.headers, service: "volume", legacyHeader: nil,
                                                 minimum: Self.minimum, maximum: Self.maximum)
        try context.enforce(action)
        return version
    }

    func serviceJSON(_ service: ServiceStatus, _ version: Microversion) -> JSON {
        var object: [String: JSON] = [
            "binary": .string(service.binary), "host": .string("\(service.host)@\(Self.backend)"), "zone": "nova",
            "status": service.enabled ? "enabled" : "disabled", "state": service.up ? "up" : "down",
            "updated_at": .string(String(timestampText(service.record.lastSeenAt ?? service.record.updatedAt).dropLast())),
            "disabled_reason": .string(service.record.disabledReason),
            "frozen": false, "replication_status": "disabled", "active_backend_id": nil,
        ]
        if version >= Microversion(3, 7) { object["cluster"] = .null }
        if version >= Microversion(3, 49) { object["backend_state"] = service.up ? "up" : "down" }
        return .object(object)
    }

    func timestampText(_ milliseconds: Int64) -> String {
        if case .string(let text) = timestamp(milliseconds: milliseconds) { return text }
        return ""
    }

    func services(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:services:index")
        let host = request.query("host"), binary = request.query("binary")
        let list = try await hosts.services { $0.binary.hasPrefix("cinder-") && (binary == nil || $0.binary == binary) }
            .filter { host == nil || "\($0.host)@\(Self.backend)" == host || $0.host == host }
        return respond(.ok, ["services": .array(list.map { serviceJSON($0, version) })],
                       headers: version.headers(service: "volume", legacyHeader: nil))
    }

    /// `PUT /os-services/enable|disable|disable-log-reason` with `{"host", "binary"[, "disabled_reason"]}`.
    func update(_ request: Request, _ context: APIRequestContext, action: String) async throws -> Response {
        let version = try await begin(request, context, "volume_extension:services:update")
        guard ["enable", "disable", "disable-log-reason"].contains(action) else {
            throw APIFault(.notFound, "Unknown action")
        }
        let body = try await environment.body(request)
        guard let host = body["host"]?.stringValue else { throw APIFault(.badRequest, "Missing required element 'host' in request body.") }
        let binary = body["binary"]?.stringValue ?? "cinder-volume"
        let reason = body["disabled_reason"]?.stringValue
        if action == "disable-log-reason", reason == nil || reason!.isEmpty || reason!.count > 255 {
            throw APIFault(.badRequest, "Disabled reason contains invalid characters or is too long")
        }
        let matching = try await hosts.services { $0.binary == binary }
            .filter { "\($0.host)@\(Self.backend)" == host || $0.host == host }
        guard let service = matching.first else { throw APIFault(.notFound, "Service \(binary) on host \(host) could not be found.") }
        let updated = try await hosts.setEnabled(id: service.id, action == "enable", reason: reason) ?? service
        var object = serviceJSON(updated, version).objectValue ?? [:]
        object["disabled"] = .bool(!updated.enabled)
        return respond(.ok, .object(object), headers: version.headers(service: "volume", legacyHeader: nil))
    }
}
