import Compute
import ComputeAPI
import Foundation
import HTTPTypes
import Hosts
import Hummingbird
import ImageAPI
import Images
@testable import IdentityAPI
import Identity
import Logging
import MetadataAPI
import NetworkAPI
import Networking
import PetrelCore
import PetrelHTTP
import Placement
import PlacementAPI
import RPC
import Store
import Synchronization
import TestSupport
import Testing
import VolumeAPI
import Volumes

/// Every write route of the controller declares the body it takes, as it is registered: the
/// router's own list of routes (built as `petrel-controller serve` builds it) is held against
/// the declarations.
@Suite struct RouteSchemaTests {
    /// The controller's router with every API on it, and the declarations its routes made.
    static func controllerRoutes() async throws -> (routes: [String], declared: Set<String>, queries: Set<String>) {
        let result = Mutex<(routes: [String], declared: Set<String>, queries: Set<String>)>(([], [], []))
        try await withBootstrappedIdentity { database, service in
            let logger = Logger(label: "routes-test")
            let identity = KeystoneAPI(service: service, policy: try Policy(defaults: KeystonePolicy.defaults), publicURL: "http://controller:5000",
                                       logger: logger)
            let router = Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
            let hosts = HostInventory(database: database, serviceDownTime: 3600)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-routes-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let images = try ImageService(database: database, directory: directory, sizeCap: 1 << 20)
            let networking = NetworkService(database: database, settings: .defaults, quotaDefaults: [:], hosts: hosts)
            let volumes = VolumeService(database: database, settings: .init(quotaDefaults: [:]), hosts: hosts,
                                        connect: { _, _ in throw CancellationError() }, sendSnapshot: { _, _ in },
                                        sendBackup: { _, _ in }) { _, _ in }
            let servers = Servers(database: database, images: images, quotas: Quotas(database: database, defaults: [:]),
                                  networking: networking, volumes: volumes)
            // Nothing is sent: the link never connects.
            let link = BrokerLink(transport: try #require(TransportURL(parsing: "rabbit://guest:guest@127.0.0.1:1/")), name: "routes-test",
                                  logger: logger)
            let conductor = Conductor(servers: servers, scheduler: Scheduler(hosts: hosts, options: SchedulerOptions()),
                                      client: RPCClient(link: link, logger: logger), maxAttempts: 1, logger: logger)
            ComputeAPI(environment: identity.environment, hosts: hosts, conductor: conductor, logger: logger).register(on: router)
            NetworkAPI(environment: identity.environment, hosts: hosts, service: networking, logger: logger).register(on: router)
            VolumeAPI(environment: identity.environment, hosts: hosts, volumes: volumes, logger: logger).register(on: router)
            ImageAPI(environment: identity.environment, images: images, logger: logger).register(on: router)
            PlacementAPI(environment: identity.environment, service: PlacementService(database: database, ratios: InventoryRatios()),
                         logger: logger).register(on: router)
            MetadataAPI(metadata: MetadataService(database: database, interfaces: { try await servers.guestInterfaces($0) }), sharedSecret: nil,
                        logger: logger).register(on: router)
            identity.register(on: router)
            let routes = router.routes.map { "\($0.method.rawValue) \($0.path)" }
            result.withLock { $0 = (routes, identity.schemas.declared, identity.schemas.declaredQueries) }
        }
        return result.withLock { $0 }
    }

    /// The write routes whose bodies are still checked by their handlers alone (Keystone's
    /// `Fields`, Neutron's `NeutronBody`, the action routes' per-action checks), each to be given
    /// its API's schema; no route joins this list.
    static let pending: Set<String> = [
    ]

    @Test func everyWriteRouteDeclaresItsBody() async throws {
        let (routes, declared, _) = try await Self.controllerRoutes()
        let writes = routes.filter { $0.hasPrefix("POST ") || $0.hasPrefix("PUT ") || $0.hasPrefix("PATCH ") }
            // The guests' metadata API (Nova's metadata service) is not an OpenStack client API:
            // its one write, a guest's password, is the raw body Nova's takes.
            .filter { !$0.hasPrefix("POST /openstack") && !$0.hasPrefix("POST /metadata") }
        #expect(writes.count > 100, "\(writes.count) write routes: the router was not built whole")
        let missing = Set(writes.filter { !declared.contains($0) })
        print("routes: \(writes.count) write routes, \(declared.count) declared, \(missing.count) still checked by their handlers alone")
        #expect(missing.subtracting(Self.pending).isEmpty,
                "write routes without a declared body:\n\(missing.subtracting(Self.pending).sorted().joined(separator: "\n"))")
        #expect(Self.pending.subtracting(missing).isEmpty,
                "declared now, so no longer pending:\n\(Self.pending.subtracting(missing).sorted().joined(separator: "\n"))")
        #expect(declared.subtracting(writes).isEmpty, "declared for no route: \(declared.subtracting(writes).sorted())")
    }

    /// The read routes of the APIs that check their queries with schemas (Nova's and
    /// Keystone's; Cinder, Glance and Neutron check theirs in code) declare them.
    @Test func readRoutesDeclareTheirQueries() async throws {
        let (routes, _, queries) = try await Self.controllerRoutes()
        let nova = Set(routes.filter { $0.hasPrefix("GET /compute/v2.1/") })
        let keystone: Set<String> = ["GET /v3/domains", "GET /v3/projects", "GET /v3/users", "GET /v3/groups", "GET /v3/roles",
                                     "GET /v3/regions", "GET /v3/services", "GET /v3/endpoints"]
        print("routes: \(queries.count) read routes declare their query")
        #expect(nova.count > 25, "\(nova.count) compute read routes: the router was not built whole")
        #expect(nova.union(keystone).subtracting(queries).isEmpty,
                "read routes without a declared query:\n\(nova.union(keystone).subtracting(queries).sorted().joined(separator: "\n"))")
        #expect(queries.subtracting(routes).isEmpty, "declared for no route: \(queries.subtracting(routes).sorted())")
    }

    /// The schemas declared with the routes run before the handlers, in each API's words.
    @Test func declaredSchemasRunBeforeTheHandlers() async throws {
        try await HostAPITests().withAPIs { client, token, _ in
            for (method, path, body, message) in [
                (HTTPRequest.Method.post, "/compute/v2.1/os-aggregates", #"{"aggregate": {"name": "a", "colour": 1}}"#,
                 "Invalid input for field/attribute aggregate. Value: {'colour': 1, 'name': 'a'}. Additional properties are not allowed ('colour' was unexpected)"),
                (.put, "/compute/v2.1/os-quota-sets/p", #"{"quota_set": {"cores": -2}}"#,
                 "Invalid input for field/attribute cores. Value: -2. -2 is less than the minimum of -1"),
                (.put, "/volume/v3/os-quota-sets/p", #"{}"#, "'quota_set' is a required property"),
                (.put, "/compute/v2.1/flavors/1/os-extra_specs/k", #"{"k": true}"#,
                 "Invalid input for field/attribute k. Value: True. True is not of type 'string', 'number'"),
            ] {
                let (status, _, json) = try await HostAPITests().get(client, path, token: token, method: method, body: body)
                #expect(status == .badRequest, "\(method) \(path)")
                #expect(json?.objectValue?.values.first?["message"]?.stringValue == message, "\(method) \(path): \(String(describing: json))")
            }
            // Queries, as Nova's query schemas check them, per microversion.
            let v275: HTTPFields = [HostAPITests().version: "compute 2.75"]
            for (path, headers, message) in [
                ("/compute/v2.1/flavors/detail?limit=-1", HTTPFields(), "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'"),
                ("/compute/v2.1/flavors?sort_dir=up", HTTPFields(), "Invalid input for query parameters sort_dir. Value: up. 'up' is not one of ['asc', 'desc']"),
                ("/compute/v2.1/os-services?colour=red", v275, "Additional properties are not allowed ('colour' was unexpected)"),
                ("/compute/v2.1/flavors?colour=red", v275, "Additional properties are not allowed ('colour' was unexpected)"),
            ] {
                let (status, _, json) = try await HostAPITests().get(client, path, token: token, headers: headers)
                #expect(status == .badRequest, "\(path)")
                #expect(json?["badRequest"]?["message"]?.stringValue == message, "\(path): \(String(describing: json))")
            }
            // Flavor extra specs: held to Nova's registry from 2.86, not before.
            let flavor = try await HostAPITests().get(client, "/compute/v2.1/flavors", token: token, method: .post,
                                                      body: #"{"flavor": {"name": "specs", "ram": 64, "vcpus": 1, "disk": 1, "id": "specs-1"}}"#)
            #expect(flavor.0 == .ok)
            let specs = "/compute/v2.1/flavors/specs-1/os-extra_specs"
            let bogus = #"{"extra_specs": {"hw:cpu_policy": "bogus"}}"#
            let at286 = try await HostAPITests().get(client, specs, token: token, method: .post, body: bogus,
                                                     headers: [HostAPITests().version: "compute 2.86"])
            #expect(at286.0 == .badRequest)
            #expect(at286.2?["badRequest"]?["message"] == "Validation failed; 'bogus' is not one of: dedicated, shared, mixed.")
            let put = try await HostAPITests().get(client, specs + "/hw:numa_nodes", token: token, method: .put, body: #"{"hw:numa_nodes": "0"}"#,
                                                   headers: [HostAPITests().version: "compute 2.86"])
            #expect(put.2?["badRequest"]?["message"] == "Validation failed; '0' is less than the min value of '1'.")
            #expect(try await HostAPITests().get(client, specs, token: token).2?["extra_specs"] == [:], "nothing was stored")
            let at285 = try await HostAPITests().get(client, specs, token: token, method: .post, body: bogus,
                                                     headers: [HostAPITests().version: "compute 2.85"])
            #expect(at285.0 == .ok, "before 2.86 Nova takes any value")
            // Before 2.75 Nova ignores what it does not know.
            #expect(try await HostAPITests().get(client, "/compute/v2.1/os-services?colour=red", token: token).0 == .ok)
            #expect(try await HostAPITests().get(client, "/compute/v2.1/flavors?colour=red", token: token).0 == .ok)
            let aggregates = try await HostAPITests().get(client, "/compute/v2.1/os-aggregates", token: token)
            #expect(aggregates.2?["aggregates"]?.arrayValue?.isEmpty == true, "nothing was made by the refused request")
        }
    }
}
