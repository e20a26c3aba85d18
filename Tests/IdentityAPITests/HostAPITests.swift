import ComputeAPI
import Foundation
import HTTPTypes
import Hosts
import Hummingbird
import HummingbirdTesting
@testable import Identity
@testable import IdentityAPI
import Logging
import NetworkAPI
import Networking
import NIOCore
import PetrelHTTP
import Store
import TestSupport
import Testing
import VolumeAPI
import Volumes
import Contracts

/// Nova's, Neutron's and Cinder's views of the hosts, in-process: microversions, each API's
/// error shape, admin-only policy, and what a node report turns into.
@Suite struct HostAPITests {
    func withAPIs(_ body: @Sendable (any TestClientProtocol, String, ServiceStore) async throws -> Void) async throws {
        try await withAPIsAndSchemas { client, token, store, _ in try await body(client, token, store) }
    }

    /// The same, with the bodies and queries the routes declared.
    func withAPIsAndSchemas(_ body: @Sendable (any TestClientProtocol, String, ServiceStore, RouteSchemas) async throws -> Void) async throws {
        try await withBootstrappedIdentity { database, service in
            let defaults = KeystonePolicy.defaults + ComputeAPI.policyDefaults + NetworkAPI.policyDefaults + VolumeAPI.policyDefaults
            let identity = KeystoneAPI(service: service, policy: try Policy(defaults: defaults), publicURL: "http://controller:5000",
                                       logger: Logger(label: "hosts-test"))
            let hosts = HostInventory(database: database, serviceDownTime: 60)
            let router = Hummingbird.Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
            ComputeAPI(environment: identity.environment, hosts: hosts, logger: Logger(label: "hosts-test")).register(on: router)
            let networking = NetworkService(database: database, settings: .defaults, quotaDefaults: [:], hosts: hosts)
            NetworkAPI(environment: identity.environment, hosts: hosts, service: networking, logger: Logger(label: "hosts-test")).register(on: router)
            let volumes = VolumeService(database: database, settings: .init(quotaDefaults: [:]), hosts: hosts,
                                        connect: { _, _ in throw CancellationError() }, sendSnapshot: { _, _ in },
                                        sendBackup: { _, _ in }) { _, _ in }
            VolumeAPI(environment: identity.environment, hosts: hosts, volumes: volumes, logger: Logger(label: "hosts-test")).register(on: router)
            identity.register(on: router)
            let store = ServiceStore(database)
            // One fresh node and one that stopped reporting two minutes ago.
            try await store.record(host: "fresh", version: "1", services: [("nova-compute", "compute"), ("neutron-dhcp-agent", "network"),
                                                                           ("cinder-volume", "volume")],
                                   hypervisor: HypervisorRecord(type: "QEMU", version: 7_002_000, cpuModel: "x86_64", vcpus: 4,
                                                                memoryMB: 8192, localGB: 100, hostIP: "10.0.0.1"))
            try await volumes.recordBackends(host: "fresh", [VolumeBackendReport(name: "lvm", backendName: "lvm", driver: "lvm", thin: false,
                                                                                 totalBytes: 10 << 30, freeBytes: 10 << 30, reservedPercentage: 0,
                                                                                 maxOverSubscriptionRatio: 1)])
            try await store.record(host: "stale", version: "1", services: [("nova-compute", "compute")],
                                   hypervisor: HypervisorRecord(type: "QEMU", version: 7_002_000, cpuModel: "x86_64", vcpus: 2,
                                                                memoryMB: 4096, localGB: 50), at: Date().addingTimeInterval(-120))
            let token = try await adminToken(service)
            try await Application(router: router).test(.router) { client in try await body(client, token, store, identity.schemas) }
        }
    }

    func get(_ client: any TestClientProtocol, _ path: String, token: String?, method: HTTPRequest.Method = .get, body: String? = nil,
             headers extra: HTTPFields = [:]) async throws -> (HTTPResponse.Status, HTTPFields, JSON?) {
        var headers = extra
        if let token { headers[HTTPField.Name("X-Auth-Token")!] = token }
        if headers[.contentType] == nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) {
            ($0.status, $0.headers, JSON.parse(Array($0.body.readableBytesView)))
        }
    }

    let version = HTTPField.Name("OpenStack-API-Version")!

    func isInteger(_ value: JSON?) -> Bool {
        guard case .number(let number)? = value else { return false }
        return number == number.rounded()
    }

    @Test func novaServicesAndHypervisorsFollowTheReports() async throws {
        try await withAPIs { client, token, _ in
            let (status, headers, json) = try await get(client, "/compute/v2.1/os-services", token: token, headers: [version: "compute 2.53"])
            #expect(status == .ok && headers[version] == "compute 2.53")
            let services = try #require(json?["services"]?.arrayValue)
            #expect(services.count == 2, "only nova-* services: \(services)")
            #expect(services.first { $0["host"] == "fresh" }?["state"] == "up")
            #expect(services.first { $0["host"] == "stale" }?["state"] == "down", "silent for longer than service_down_time")
            #expect(services.first?["forced_down"] == false, "2.11+ shows forced_down")
            let old = try await get(client, "/compute/v2.1/os-services", token: token)
            #expect(old.1[version] == "compute 2.1" && old.2?["services"]?.arrayValue?.first?["forced_down"] == nil)

            let id = try #require(services.first { $0["host"] == "fresh" }?["id"]?.stringValue)
            let disabled = try await get(client, "/compute/v2.1/os-services/\(id)", token: token, method: .put,
                                         body: #"{"status": "disabled", "disabled_reason": "maintenance"}"#, headers: [version: "compute 2.53"])
            #expect(disabled.0 == .ok && disabled.2?["service"]?["status"] == "disabled" && disabled.2?["service"]?["disabled_reason"] == "maintenance")
            let bad = try await get(client, "/compute/v2.1/os-services/\(id)", token: token, method: .put,
                                    body: #"{"status": "sideways"}"#, headers: [version: "compute 2.53"])
            #expect(bad.0 == .badRequest && bad.2?["badRequest"]?["code"] == 400)
            let reasonWhileEnabling = try await get(client, "/compute/v2.1/os-services/\(id)", token: token, method: .put,
                                                    body: #"{"status": "enabled", "disabled_reason": "x"}"#, headers: [version: "compute 2.53"])
            #expect(reasonWhileEnabling.0 == .badRequest)
            let missing = try await get(client, "/compute/v2.1/os-services/nope", token: token, method: .put, body: #"{"status": "enabled"}"#,
                                        headers: [version: "compute 2.53"])
            #expect(missing.0 == .notFound && missing.2?["itemNotFound"]?["code"] == 404)

            let hypervisors = try await get(client, "/compute/v2.1/os-hypervisors/detail", token: token, headers: [version: "compute 2.53"])
            let fresh = try #require(hypervisors.2?["hypervisors"]?.arrayValue?.first { $0["hypervisor_hostname"] == "fresh" })
            #expect(fresh["vcpus"] == 4 && fresh["memory_mb"] == 8192 && fresh["host_ip"] == "10.0.0.1" && fresh["status"] == "disabled")
            #expect(fresh["cpu_info"]?.objectValue != nil, "2.28+ returns cpu_info as an object")

            // Before 2.53 ids are integers (numbered as the services and hypervisors appeared).
            let numbered = try #require(old.2?["services"]?.arrayValue)
            #expect(numbered.allSatisfy { isInteger($0["id"]) }, "\(numbered)")
            let oldHypervisors = try await get(client, "/compute/v2.1/os-hypervisors/detail", token: token)
            let oldFresh = try #require(oldHypervisors.2?["hypervisors"]?.arrayValue?.first { $0["hypervisor_hostname"] == "fresh" })
            guard case .number(let id)? = oldFresh["id"] else { Issue.record("hypervisor id \(String(describing: oldFresh["id"]))"); return }
            let number = Int(id)
            #expect(isInteger(oldFresh["service"]?["id"]))
            #expect(try await get(client, "/compute/v2.1/os-hypervisors/\(number)", token: token).2?["hypervisor"]?["hypervisor_hostname"] == "fresh")
            let search = try await get(client, "/compute/v2.1/os-hypervisors/fre/search", token: token)
            #expect(search.0 == .ok && search.2?["hypervisors"]?.arrayValue?.map { $0["hypervisor_hostname"] } == ["fresh"])
            #expect(try await get(client, "/compute/v2.1/os-hypervisors/fre/search", token: token, headers: [version: "compute 2.53"]).0 == .notFound)
            #expect(try await get(client, "/compute/v2.1/os-hypervisors/nothing/search", token: token).0 == .notFound)
            // 2.88: no resources in hypervisor bodies, the uptime in them, no statistics.
            let placed = try await get(client, "/compute/v2.1/os-hypervisors/detail", token: token, headers: [version: "compute 2.88"])
            let modern = try #require(placed.2?["hypervisors"]?.arrayValue?.first { $0["hypervisor_hostname"] == "fresh" })
            #expect(modern["vcpus"] == nil && modern["memory_mb"] == nil && modern["cpu_info"] == nil && modern["running_vms"] == nil)
            #expect(modern["uptime"] != nil && modern["id"]?.stringValue != nil)
            #expect(try await get(client, "/compute/v2.1/os-hypervisors/statistics", token: token, headers: [version: "compute 2.88"]).0 == .notFound)
            #expect(try await get(client, "/compute/v2.1/os-hypervisors/statistics", token: token, headers: [version: "compute 2.87"]).0 == .ok)

            let tooNew = try await get(client, "/compute/v2.1/os-services", token: token,
                                       headers: [version: "compute 2.\(ComputeAPI.maximum.minor + 1)"])
            #expect(tooNew.0 == .notAcceptable)
            let latest = try await get(client, "/compute/v2.1/os-services", token: token, headers: [version: "compute latest"])
            #expect(latest.1[version] == "compute \(ComputeAPI.maximum)")
            let discovery = try await get(client, "/compute/v2.1", token: nil)
            #expect(discovery.2?["version"]?["version"] == .string(ComputeAPI.maximum.description))
            #expect(try await get(client, "/compute/v2.1/os-services", token: nil).0 == .unauthorized)
        }
    }

    @Test func neutronAgentsAndCinderServices() async throws {
        try await withAPIs { client, token, _ in
            let agents = try await get(client, "/networking/v2.0/agents?agent_type=DHCP+agent", token: token)
            let agent = try #require(agents.2?["agents"]?.arrayValue?.first)
            #expect(agents.2?["agents"]?.arrayValue?.count == 1 && agent["alive"] == true && agent["binary"] == "neutron-dhcp-agent")
            let id = try #require(agent["id"]?.stringValue)
            let down = try await get(client, "/networking/v2.0/agents/\(id)", token: token, method: .put, body: #"{"agent": {"admin_state_up": false}}"#)
            #expect(down.0 == .ok && down.2?["agent"]?["admin_state_up"] == false)
            let readOnly = try await get(client, "/networking/v2.0/agents/\(id)", token: token, method: .put, body: #"{"agent": {"host": "x"}}"#)
            #expect(readOnly.0 == .badRequest && readOnly.2?["NeutronError"]?["type"] == "HTTPBadRequest")
            let missing = try await get(client, "/networking/v2.0/agents/nope", token: token)
            #expect(missing.0 == .notFound && missing.2?["NeutronError"]?["type"] == "AgentNotFound")

            let services = try await get(client, "/volume/v3/os-services", token: token, headers: [version: "volume 3.49"])
            let volume = try #require(services.2?["services"]?.arrayValue?.first)
            #expect(volume["host"] == "fresh@lvm" && volume["state"] == "up" && volume["backend_state"] == "up")
            let disable = try await get(client, "/volume/v3/os-services/disable", token: token, method: .put,
                                        body: #"{"host": "fresh@lvm", "binary": "cinder-volume"}"#)
            #expect(disable.0 == .ok && disable.2?["status"] == "disabled" && disable.2?["disabled"] == true)
        }
    }

    /// A body declared as something else than JSON: Nova's and Neutron's 415, Keystone's 400.
    @Test func bodiesInOtherMediaTypesAreRefused() async throws {
        try await withAPIs { client, token, _ in
            let plain: HTTPFields = [.contentType: "text/plain"]
            let nova = try await get(client, "/compute/v2.1/os-aggregates", token: token, method: .post,
                                     body: #"{"aggregate": {"name": "a1"}}"#, headers: plain)
            #expect(nova.0 == .unsupportedMediaType && nova.2?["badMediaType"]?["code"] == 415, "\(String(describing: nova.2))")
            let neutron = try await get(client, "/networking/v2.0/networks", token: token, method: .post,
                                        body: #"{"network": {"name": "n1"}}"#, headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(neutron.0 == .unsupportedMediaType && neutron.2?["NeutronError"] != nil, "\(String(describing: neutron.2))")
            let keystone = try await get(client, "/v3/projects", token: token, method: .post, body: #"{"project": {"name": "p1"}}"#, headers: plain)
            #expect(keystone.0 == .badRequest && keystone.2?["error"]?["message"]?.stringValue?.hasPrefix("Expecting to find application/json") == true)
            let versioned = try await get(client, "/compute/v2.1/os-aggregates", token: token, method: .post, body: #"{"aggregate": {"name": "a2"}}"#,
                                          headers: [.contentType: "application/json; charset=UTF-8"])
            #expect(versioned.0 == .ok, "parameters after the media type are fine")
            let aggregates = try await get(client, "/compute/v2.1/os-aggregates", token: token)
            #expect(aggregates.2?["aggregates"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["a2"], "nothing made by the refused ones")
        }
    }

    @Test func aMemberIsRefusedInEachAPIsOwnWords() async throws {
        try await withAPIs { client, adminToken, _ in
            // A user with only the member role on the admin project.
            let user = try await get(client, "/v3/users", token: adminToken, method: .post, body: #"{"user": {"name": "m", "password": "pw"}}"#)
            let userID = try #require(user.2?["user"]?["id"]?.stringValue)
            let roles = try await get(client, "/v3/roles?name=member", token: adminToken)
            let member = try #require(roles.2?["roles"]?.arrayValue?.first?["id"]?.stringValue)
            let projects = try await get(client, "/v3/projects?name=admin", token: adminToken)
            let project = try #require(projects.2?["projects"]?.arrayValue?.first?["id"]?.stringValue)
            _ = try await get(client, "/v3/projects/\(project)/users/\(userID)/roles/\(member)", token: adminToken, method: .put)
            let login = try await client.execute(uri: "/v3/auth/tokens", method: .post, headers: [.contentType: "application/json"],
                                                 body: ByteBuffer(string: #"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "\#(userID)", "password": "pw"}}}, "scope": {"project": {"id": "\#(project)"}}}}"#)) {
                $0.headers[HTTPField.Name("X-Subject-Token")!]
            }
            let token = try #require(login)
            let nova = try await get(client, "/compute/v2.1/os-services", token: token)
            #expect(nova.0 == .forbidden && nova.2?["forbidden"]?["code"] == 403)
            let neutron = try await get(client, "/networking/v2.0/agents", token: token)
            #expect(neutron.0 == .forbidden && neutron.2?["NeutronError"]?["type"] == "PolicyNotAuthorized")
            let cinder = try await get(client, "/volume/v3/os-services", token: token)
            #expect(cinder.0 == .forbidden && cinder.2?["forbidden"] != nil)
        }
    }
}
