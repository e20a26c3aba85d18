import Compute
import Contracts
import Foundation
import HTTPTypes
import Hosts
import Hummingbird
import Images
import PetrelCore
import Logging
import PetrelHTTP

/// The Nova v2.1 API under `/compute`: version discovery, microversions, the services,
/// hypervisors and aggregates of the cloud, flavors and key pairs (servers to come).
public struct ComputeAPI: Sendable {
    public let environment: APIEnvironment
    public let hosts: HostInventory
    let flavors: Flavors
    let keyPairs: KeyPairs
    let quotas: Quotas
    /// Servers need the conductor (RPC to the nodes); without it the servers API is not served.
    let conductor: Conductor?
    /// The console proxy's URLs and tokens; without them no remote console is served.
    public var consoles: ConsoleAccess?
    /// Glance's service, for Nova's image proxy (`/images` before 2.36, their metadata before
    /// 2.39); the servers' own when not given. Without either the proxy is not served.
    public var images: ImageService?
    var servers: Servers { conductor!.servers }
    /// Only used by the servers routes, which are registered when there is one.
    var serverConductor: Conductor { conductor! }
    /// The availability zone of hosts in no aggregate with one.
    let defaultAvailabilityZone = "nova"
    let logger: Logger

    /// Nova's default quotas, used when the configuration gives none.
    public static let defaultQuotas = ["instances": 10, "cores": 20, "ram": 51200, "key_pairs": 100, "metadata_items": 128,
                                       "server_groups": 10, "server_group_members": 10]

    /// The microversions served. Each version up to the top has its change: 2.88 moves the
    /// hypervisors' resources to Placement, 2.89 gives attachment ids, 2.90 a hostname users set,
    /// 2.91 unshelves onto a named host, 2.92 stops generating key pairs. The top stops below
    /// 2.93, whose change (rebuilding volume-backed servers) Petrel does not have yet.
    public static let minimum = Microversion(2, 1)
    public static let maximum = Microversion(2, 92)

    public static let policyDefaults: [PolicyDefault] = [
        PolicyDefault("context_is_admin", "role:admin", "Whoever has the admin role is an administrator of Nova and Neutron."),
        PolicyDefault("os_compute_api:os-services:list", "rule:context_is_admin", "List compute services.", ["GET /compute/v2.1/os-services"]),
        PolicyDefault("os_compute_api:os-services:update", "rule:context_is_admin",
                      "Enable or disable a compute service, or force it down.", ["PUT /compute/v2.1/os-services/{service_id}"]),
        PolicyDefault("os_compute_api:os-services:delete", "rule:context_is_admin", "Delete a compute service.",
                      ["DELETE /compute/v2.1/os-services/{service_id}"]),
        PolicyDefault("os_compute_api:os-hypervisors:list", "rule:context_is_admin", "List hypervisors.", ["GET /compute/v2.1/os-hypervisors"]),
        PolicyDefault("os_compute_api:os-hypervisors:list-detail", "rule:context_is_admin", "List hypervisors with details.",
                      ["GET /compute/v2.1/os-hypervisors/detail"]),
        PolicyDefault("os_compute_api:os-hypervisors:show", "rule:context_is_admin", "Show a hypervisor.",
                      ["GET /compute/v2.1/os-hypervisors/{hypervisor_id}"]),
        PolicyDefault("os_compute_api:os-hypervisors:statistics", "rule:context_is_admin", "Show the sum of every hypervisor's resources.",
                      ["GET /compute/v2.1/os-hypervisors/statistics"]),
        PolicyDefault("os_compute_api:os-hypervisors:uptime", "rule:context_is_admin", "Show a hypervisor's uptime.",
                      ["GET /compute/v2.1/os-hypervisors/{hypervisor_id}/uptime"]),
        PolicyDefault("os_compute_api:os-hypervisors:search", "rule:context_is_admin", "Find hypervisors by host name (before 2.53).",
                      ["GET /compute/v2.1/os-hypervisors/{hypervisor_hostname_pattern}/search"]),
        PolicyDefault("os_compute_api:os-hypervisors:servers", "rule:context_is_admin",
                      "List the servers of hypervisors found by host name (before 2.53).",
                      ["GET /compute/v2.1/os-hypervisors/{hypervisor_hostname_pattern}/servers"]),
    ] + aggregatePolicies + flavorPolicies + keyPairPolicies + quotaPolicies + serverPolicies + instanceActionPolicies + serverPasswordPolicies + serverGroupPolicies + interfacePolicies + volumeAttachmentPolicies + consolePolicies + migrationPolicies + serverDiagnosticsPolicies
        + usagePolicies + quotaClassPolicies + externalEventPolicies + extensionPolicies

    public init(environment: APIEnvironment, hosts: HostInventory, quotaDefaults: [String: Int] = ComputeAPI.defaultQuotas,
                conductor: Conductor? = nil, logger: Logger) {
        self.conductor = conductor
        self.environment = environment
        self.hosts = hosts
        flavors = Flavors(database: hosts.store.database)
        keyPairs = KeyPairs(database: hosts.store.database)
        quotas = Quotas(database: hosts.store.database, defaults: quotaDefaults)
        self.logger = logger
    }

    var base: String { environment.publicURL + "/compute" }

    var currentVersion: JSON {
        ["id": "v2.1", "status": "CURRENT", "version": .string(Self.maximum.description), "min_version": .string(Self.minimum.description),
         "updated": "2013-07-23T11:33:21Z",
         "links": [["rel": "self", "href": .string(base + "/v2.1/")],
                   ["rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"]],
         "media-types": [["base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"]]]
    }

    public func register(on router: Router<APIRequestContext>) {
        let compute = environment.routes(router, "compute")
            .add(middleware: OpenStackErrorMiddleware(style: .nova, publicURL: environment.publicURL, logger: logger,
                                                      extraRequestIDHeader: "X-Compute-Request-Id"))
            .add(middleware: environment.authentication)
        compute.get { _, _ in respond(.ok, ["versions": [currentVersion]]) }
        let v21 = compute.group("v2.1")
        v21.get { _, _ in respond(.ok, ["version": currentVersion]) }
        registerServices(on: v21)
        registerHypervisors(on: v21)
        registerAggregates(on: v21)
        registerFlavors(on: v21)
        registerKeyPairs(on: v21)
        registerQuotas(on: v21)
        registerUsage(on: v21)
        registerQuotaClasses(on: v21)
        registerExternalEvents(on: v21)
        registerExtensions(on: v21)
        if let imageService = images ?? conductor?.servers.images { registerImageProxy(on: v21, images: imageService) }
        if conductor != nil {
            registerServers(on: v21)
            registerInterfaces(on: v21)
            registerVolumeAttachments(on: v21)
            registerConsoles(on: v21)
            registerServerDiagnostics(on: v21)
        }
    }

    /// The caller (authenticated), the microversion asked for, and the headers that echo it.
    func begin(_ request: Request, _ context: APIRequestContext, _ action: String) async throws -> (Caller, Microversion) {
        let version = try Self.microversion(request)
        return (try context.enforce(action), version)
    }

    /// A body checked against the schema of the request's microversion (the handler has
    /// refused a microversion outside the range before it reads the body).
    static func body(_ schema: @escaping @Sendable (Microversion) -> Schema) -> BodySchema {
        .json(style: .nova) { request in
            schema((try? microversion(request)) ?? minimum)
        }
    }

    /// The microversion the request asks for (406 outside the range this API serves).
    static func microversion(_ request: Request) throws -> Microversion {
        try Microversion.requested(by: request.headers, service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version",
                                   minimum: minimum, maximum: maximum)
    }

    func answer(_ status: HTTPResponse.Status, _ json: JSON, _ version: Microversion) -> Response {
        respond(status, json, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
    }
}

/// Nova's timestamps: 2026-11-25T16:00:00.000000, no zone.
func novaTime(_ milliseconds: Int64?) -> JSON {
    guard let milliseconds, case .string(let text) = timestamp(milliseconds: milliseconds) else { return nil }
    return .string(String(text.dropLast()))
}
