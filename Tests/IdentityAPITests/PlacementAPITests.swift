import Compute
import Foundation
import HTTPTypes
import Hosts
import Hummingbird
import HummingbirdTesting
@testable import Identity
@testable import IdentityAPI
import Logging
import NIOCore
import PetrelCore
import PetrelHTTP
import Placement
import PlacementAPI
import Store
import TestSupport
import Testing

/// The Placement API in-process on both databases: the compute nodes' providers and their
/// inventories from the nodes' reports, the scheduler's claims as allocations, generations,
/// traits, aggregates, usages and allocation candidates, microversions and Placement's errors.
func number(_ json: JSON?) -> Int? {
    if case .number(let value)? = json { return Int(value) }
    return nil
}

@Suite struct PlacementAPITests {
    struct Cloud: Sendable {
        let client: any TestClientProtocol
        let admin: String
        let member: String
        /// A user with the `service` role (the reshaper's policy).
        let service: String
        let database: Database
        let scheduler: Scheduler
        let hosts: [String: String]  // host → hypervisor id

        func call(_ method: HTTPRequest.Method, _ path: String, _ body: String? = nil, version: String? = "1.28",
                  token: String?? = nil) async throws -> (status: HTTPResponse.Status, headers: HTTPFields, json: JSON?) {
            var headers: HTTPFields = [.contentType: "application/json"]
            if let token = token ?? admin { headers[HTTPField.Name("X-Auth-Token")!] = token }
            if let version { headers[HTTPField.Name("OpenStack-API-Version")!] = "placement \(version)" }
            return try await client.execute(uri: "/placement" + path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) {
                ($0.status, $0.headers, JSON.parse(Array($0.body.readableBytesView)))
            }
        }

        func newInstance(vcpus: Int = 1, memoryMB: Int = 256, disk: Int = 1, project: String = "p1") async throws -> String {
            let row = InstanceRow(id: UUID().uuidString.lowercased(), name: "vm", projectID: project, userID: "u1", flavorID: "f", vcpus: vcpus,
                                  memoryMB: memoryMB, rootGB: disk, imageID: nil, availabilityZone: nil,
                                  createdAt: Int64(Date().timeIntervalSince1970 * 1000))
            try await database.withConnection { sql in try await ComputeTables.instances.insert(sql, row) }
            return row.id
        }
    }

    func withCloud(_ backend: TestDatabase, _ body: @Sendable (Cloud) async throws -> Void) async throws {
        try await withBootstrappedIdentity(backend) { database, service in
            let logger = Logger(label: "placement-test")
            let identity = KeystoneAPI(service: service, policy: try Policy(defaults: KeystonePolicy.defaults + PlacementAPI.policyDefaults),
                                       publicURL: "http://controller:5000", logger: logger)
            let router = Hummingbird.Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
            var options = SchedulerOptions()
            options.cpuAllocationRatio = 4.0
            options.ramAllocationRatio = 1.0
            let placement = PlacementService(database: database, ratios: options.inventoryRatios)
            PlacementAPI(environment: identity.environment, service: placement, logger: logger).register(on: router)
            identity.register(on: router)
            let store = ServiceStore(database)
            for host in ["node-a", "node-b"] {
                try await store.record(host: host, version: "1", services: [("nova-compute", "compute")],
                                       hypervisor: HypervisorRecord(type: "QEMU", version: 8_000_000, cpuModel: "x86_64", vcpus: 4,
                                                                    memoryMB: 4096, localGB: 100))
            }
            // As the controller starts: every reported node gets its provider; then node-a reports its traits.
            _ = try await placement.reconcile()
            try await placement.recordReportedTraits(host: "node-a", traits: ["HW_CPU_X86_AVX2", "COMPUTE_VOLUME_ATTACH", "HW_CPU_X86_NOT_A_TRAIT"])
            let hosts = Dictionary(uniqueKeysWithValues: try await store.hypervisors().map { ($0.host, $0.id) })
            let scheduler = Scheduler(hosts: HostInventory(database: database, serviceDownTime: 300), options: options)
            let admin = try await adminToken(service)
            let member = try await addProjectUser(service, project: "placement-member", user: "pm").token
            let serviceUser = try await addProjectUser(service, project: "placement-service", user: "ps", role: "service").token
            try await Application(router: router).test(.router) { client in
                try await body(Cloud(client: client, admin: admin, member: member, service: serviceUser, database: database, scheduler: scheduler, hosts: hosts))
            }
        }
    }

    @Test func versionDocumentMicroversionsAndErrors() async throws {
        try await withCloud(.sqlite) { cloud in
            let root = try await cloud.call(.get, "", version: nil, token: .some(nil))
            #expect(root.status == .ok)
            #expect(root.json?["versions"]?.arrayValue?.first?["max_version"] == "1.39")
            #expect(root.json?["versions"]?.arrayValue?.first?["min_version"] == "1.0")
            #expect(root.headers[HTTPField.Name("OpenStack-API-Version")!] == "placement 1.0")
            // What osc-placement negotiates with: 406 naming the range.
            let tooNew = try await cloud.call(.get, "", version: "1.40", token: .some(nil))
            #expect(tooNew.status == .notAcceptable)
            #expect(tooNew.json?["errors"]?.arrayValue?.first?["max_version"] == "1.39")
            #expect(try await cloud.call(.get, "/resource_providers", version: "latest").headers[HTTPField.Name("OpenStack-API-Version")!] == "placement 1.39")
            #expect(try await cloud.call(.get, "/resource_providers", version: "1.x").status == .badRequest)
            // No token: 401; a member: 403 in Placement's shape.
            #expect(try await cloud.call(.get, "/resource_providers", token: .some(nil)).status == .unauthorized)
            let refused = try await cloud.call(.get, "/resource_providers", token: .some(cloud.member))
            #expect(refused.status == .forbidden)
            let error = refused.json?["errors"]?.arrayValue?.first
            #expect(error?["status"] == 403 && error?["code"] == "placement.undefined_code")
            #expect(error?["request_id"]?.stringValue?.hasPrefix("req-") == true)
            // Routes of later microversions are not there before them.
            #expect(try await cloud.call(.get, "/traits", version: "1.5").status == .notFound)
            #expect(try await cloud.call(.get, "/allocation_candidates?resources=VCPU:1", version: "1.9").status == .notFound)
            let missing = try await cloud.call(.get, "/resource_providers/\(UUID().uuidString.lowercased())")
            #expect(missing.status == .notFound)
            #expect(missing.json?["errors"]?.arrayValue?.first?["detail"]?.stringValue?.contains("No resource provider with uuid") == true)
            // Bodies are checked against Placement's schemas.
            let bad = try await cloud.call(.post, "/resource_providers", #"{"name": "x", "colour": "red"}"#)
            #expect(bad.status == .badRequest)
            #expect(bad.json?["errors"]?.arrayValue?.first?["detail"]?.stringValue?.contains("JSON does not validate") == true)
            // 1.15: cache headers on reads.
            let listed = try await cloud.call(.get, "/resource_providers")
            #expect(listed.headers[.cacheControl] == "no-cache" && listed.headers[.lastModified] != nil)
            #expect(try await cloud.call(.get, "/resource_providers", version: "1.14").headers[.cacheControl] == nil)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func computeNodesSchedulerClaimsAndCandidates(backend: TestDatabase) async throws {
        try await withCloud(backend) { cloud in
            let a = try #require(cloud.hosts["node-a"]), b = try #require(cloud.hosts["node-b"])
            // One provider per compute node, named after its host, uuid = the hypervisor's id.
            let list = try await cloud.call(.get, "/resource_providers")
            let providers = try #require(list.json?["resource_providers"]?.arrayValue)
            #expect(Set(providers.compactMap { $0["name"]?.stringValue }) == ["node-a", "node-b"])
            #expect(Set(providers.compactMap { $0["uuid"]?.stringValue }) == [a, b])
            #expect(providers.first?["root_provider_uuid"] == providers.first?["uuid"])
            let inventories = try await cloud.call(.get, "/resource_providers/\(a)/inventories")
            #expect(inventories.json?["inventories"]?["VCPU"]?["total"] == 4)
            #expect(inventories.json?["inventories"]?["VCPU"]?["allocation_ratio"] == .number(4))
            #expect(inventories.json?["inventories"]?["MEMORY_MB"]?["total"] == 4096)
            #expect(inventories.json?["inventories"]?["DISK_GB"]?["max_unit"] == 100)
            // The node's standard traits (unknown names dropped) and COMPUTE_NODE.
            let traits = try await cloud.call(.get, "/resource_providers/\(a)/traits")
            #expect(traits.json?["traits"] == ["COMPUTE_NODE", "COMPUTE_VOLUME_ATTACH", "HW_CPU_X86_AVX2"])

            // The scheduler claims through allocations: consumer = the instance.
            var placed: [String: String] = [:]
            for _ in 0..<4 {
                let id = try await cloud.newInstance(vcpus: 2, memoryMB: 512, disk: 10)
                placed[id] = try await cloud.scheduler.schedule(instanceID: id)
            }
            #expect(Set(placed.values) == ["node-a", "node-b"], "spread by free RAM")
            let (someID, someHost) = try #require(placed.first)
            let held = try await cloud.call(.get, "/allocations/\(someID)")
            let provider = try #require(cloud.hosts[someHost])
            #expect(held.json?["allocations"]?[provider]?["resources"] == ["VCPU": 2, "MEMORY_MB": 512, "DISK_GB": 10])
            #expect(held.json?["project_id"] == "p1" && held.json?["user_id"] == "u1" && held.json?["consumer_generation"] == 1)
            let usages = try await cloud.call(.get, "/resource_providers/\(a)/usages")
            #expect(usages.json?["usages"] == ["VCPU": 4, "MEMORY_MB": 1024, "DISK_GB": 20])
            #expect(try await cloud.call(.get, "/usages?project_id=p1").json?["usages"] == ["VCPU": 8, "MEMORY_MB": 2048, "DISK_GB": 40])
            let onA = try await cloud.call(.get, "/resource_providers/\(a)/allocations")
            #expect(onA.json?["allocations"]?.objectValue?.count == 2)

            // Allocation candidates answer what fits: 16 VCPU per node at ratio 4, 4 of them taken.
            let one = try await cloud.call(.get, "/allocation_candidates?resources=VCPU:1,MEMORY_MB:256")
            #expect(one.json?["allocation_requests"]?.arrayValue?.count == 2)
            #expect(one.json?["provider_summaries"]?[a]?["resources"]?["VCPU"] == ["capacity": 16, "used": 4])
            // Capacity: 4096 MB at ratio 1, 1024 taken on each node.
            #expect(try await cloud.call(.get, "/allocation_candidates?resources=MEMORY_MB:3073").json?["allocation_requests"] == [])
            #expect(try await cloud.call(.get, "/allocation_candidates?resources=MEMORY_MB:3072").json?["allocation_requests"]?.arrayValue?.count == 2)
            // max_unit: no more than the node's 4 vCPUs for one consumer.
            #expect(try await cloud.call(.get, "/allocation_candidates?resources=VCPU:5").json?["allocation_requests"] == [])
            #expect(try await cloud.call(.get, "/allocation_candidates?resources=VCPU:1&limit=1").json?["allocation_requests"]?.arrayValue?.count == 1)
            let avx = try await cloud.call(.get, "/allocation_candidates?resources=VCPU:1&required=HW_CPU_X86_AVX2")
            #expect(avx.json?["allocation_requests"]?.arrayValue?.first?["allocations"]?[a]?["resources"] == ["VCPU": 1])
            #expect(avx.json?["allocation_requests"]?.arrayValue?.count == 1)
            let noAVX = try await cloud.call(.get, "/allocation_candidates?resources=VCPU:1&required=!HW_CPU_X86_AVX2")
            #expect(noAVX.json?["allocation_requests"]?.arrayValue?.first?["allocations"]?.objectValue?.keys.first == b)
            #expect(try await cloud.call(.get, "/allocation_candidates?resources=VCPU:1&required=CUSTOM_NOPE").status == .badRequest)
            #expect(try await cloud.call(.get, "/allocation_candidates?resources=BOGUS:1").status == .badRequest)
            // Before 1.12 the requests are lists.
            let old = try await cloud.call(.get, "/allocation_candidates?resources=VCPU:1", version: "1.10")
            #expect(old.json?["allocation_requests"]?.arrayValue?.first?["allocations"]?.arrayValue?.first?["resource_provider"]?["uuid"] != nil)
            // Granular (1.25): numbered groups on one node add up; isolated they need two providers of
            // one tree, which separate compute nodes are not.
            let granular = try await cloud.call(.get, "/allocation_candidates?resources1=VCPU:1&resources2=VCPU:1&group_policy=none")
            #expect(granular.json?["allocation_requests"]?.arrayValue?.count == 2)
            #expect(granular.json?["allocation_requests"]?.arrayValue?.first?["allocations"]?.objectValue?.values.first?["resources"] == ["VCPU": 2])
            #expect(try await cloud.call(.get, "/allocation_candidates?resources1=VCPU:1&resources2=VCPU:1&group_policy=isolate")
                .json?["allocation_requests"] == [])
            #expect(try await cloud.call(.get, "/allocation_candidates?resources1=VCPU:1&resources2=VCPU:1").status == .badRequest)

            // Aggregates on providers and member_of.
            let aggregate = UUID().uuidString.lowercased()
            let generation = try #require(number(try await cloud.call(.get, "/resource_providers/\(b)").json?["generation"]))
            let setAggregates = try await cloud.call(.put, "/resource_providers/\(b)/aggregates",
                                                     #"{"aggregates": ["\#(aggregate)"], "resource_provider_generation": \#(Int(generation))}"#)
            #expect(setAggregates.status == .ok)
            #expect(try await cloud.call(.get, "/resource_providers?member_of=in:\(aggregate)").json?["resource_providers"]?.arrayValue?.count == 1)
            let member = try await cloud.call(.get, "/allocation_candidates?resources=VCPU:1&member_of=\(aggregate)")
            #expect(member.json?["allocation_requests"]?.arrayValue?.first?["allocations"]?.objectValue?.keys.first == b)
            // The old generation is stale now: Placement's concurrent-update conflict.
            let stale = try await cloud.call(.put, "/resource_providers/\(b)/aggregates",
                                             #"{"aggregates": [], "resource_provider_generation": \#(Int(generation))}"#)
            #expect(stale.status == .conflict)
            #expect(stale.json?["errors"]?.arrayValue?.first?["code"] == "placement.concurrent_update")
            // Before 1.19 the body is a plain list.
            #expect(try await cloud.call(.put, "/resource_providers/\(b)/aggregates", "[]", version: "1.18").json == ["aggregates": []])

            // A consumer written through the API, with consumer generations (1.28).
            let consumer = UUID().uuidString.lowercased()
            let put = #"{"allocations": {"\#(b)": {"resources": {"VCPU": 1}}}, "project_id": "p2", "user_id": "u2", "consumer_generation": null}"#
            #expect(try await cloud.call(.put, "/allocations/\(consumer)", put).status == .noContent)
            let again = try await cloud.call(.put, "/allocations/\(consumer)", put)
            #expect(again.status == .conflict && again.json?["errors"]?.arrayValue?.first?["code"] == "placement.concurrent_update")
            let update = #"{"allocations": {"\#(b)": {"resources": {"VCPU": 2, "MEMORY_MB": 100}}}, "project_id": "p2", "user_id": "u2", "consumer_generation": 1}"#
            #expect(try await cloud.call(.put, "/allocations/\(consumer)", update).status == .noContent)
            #expect(try await cloud.call(.get, "/allocations/\(consumer)").json?["consumer_generation"] == 2)
            // More than is left: 409.
            let greedy = #"{"allocations": {"\#(b)": {"resources": {"MEMORY_MB": 4000}}}, "project_id": "p2", "user_id": "u2", "consumer_generation": 2}"#
            #expect(try await cloud.call(.put, "/allocations/\(consumer)", greedy).status == .conflict)
            // The scheduler sees API allocations: node-b has 4096 − 1024 − 100 MB left, so 3000 MB go to node-a.
            let big = try await cloud.newInstance(vcpus: 1, memoryMB: 3000, disk: 1)
            #expect(try await cloud.scheduler.schedule(instanceID: big) == "node-a")
            // POST /allocations (1.13): several consumers at once; empty allocations release one.
            let post = #"{"\#(consumer)": {"allocations": {}, "project_id": "p2", "user_id": "u2", "consumer_generation": 2}}"#
            #expect(try await cloud.call(.post, "/allocations", post).status == .noContent)
            #expect(try await cloud.call(.get, "/allocations/\(consumer)").json == ["allocations": [:]])
            #expect(try await cloud.call(.delete, "/allocations/\(consumer)").status == .notFound)

            // A provider with allocations cannot go.
            let inUse = try await cloud.call(.delete, "/resource_providers/\(a)")
            #expect(inUse.status == .conflict && inUse.json?["errors"]?.arrayValue?.first?["code"] == "placement.resource_provider.inuse")

            // Releasing a failed build's host gives its allocation back (PlacementStore.release).
            try await cloud.database.transaction { sql in _ = try await PlacementStore.release(sql, consumer: big) }
            #expect(try await cloud.call(.get, "/allocations/\(big)").json == ["allocations": [:]])
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func providersInventoriesTraitsAndClasses(backend: TestDatabase) async throws {
        try await withCloud(backend) { cloud in
            // Create (1.20 answers with the provider), nested under a parent (1.14).
            let parent = try await cloud.call(.post, "/resource_providers", #"{"name": "rack"}"#)
            #expect(parent.status == .ok)
            let parentID = try #require(parent.json?["uuid"]?.stringValue)
            let child = try await cloud.call(.post, "/resource_providers", #"{"name": "rack-disk", "parent_provider_uuid": "\#(parentID)"}"#)
            let childID = try #require(child.json?["uuid"]?.stringValue)
            #expect(child.json?["root_provider_uuid"]?.stringValue == parentID)
            #expect(try await cloud.call(.get, "/resource_providers?in_tree=\(childID)").json?["resource_providers"]?.arrayValue?.count == 2)
            let old = try await cloud.call(.post, "/resource_providers", #"{"name": "old-style"}"#, version: "1.19")
            #expect(old.status == .created && old.headers[.location]?.hasPrefix("/placement/resource_providers/") == true)
            #expect(try await cloud.call(.post, "/resource_providers", #"{"name": "rack"}"#).status == .conflict)
            #expect(try await cloud.call(.delete, "/resource_providers/\(parentID)").json?["errors"]?.arrayValue?.first?["code"]
                    == "placement.resource_provider.cannot_delete_parent")

            // Custom resource classes (1.2, create-or-validate from 1.7) and inventories.
            #expect(try await cloud.call(.put, "/resource_classes/CUSTOM_IOPS").status == .created)
            #expect(try await cloud.call(.put, "/resource_classes/CUSTOM_IOPS").status == .noContent)
            #expect(try await cloud.call(.get, "/resource_classes").json?["resource_classes"]?.arrayValue?.contains { $0["name"] == "CUSTOM_IOPS" } == true)
            let inventory = #"{"resource_provider_generation": 0, "inventories": {"CUSTOM_IOPS": {"total": 1000, "reserved": 100, "step_size": 100}, "DISK_GB": {"total": 500}}}"#
            let set = try await cloud.call(.put, "/resource_providers/\(childID)/inventories", inventory)
            #expect(set.status == .ok && set.json?["resource_provider_generation"] == 1)
            #expect(set.json?["inventories"]?["DISK_GB"]?["max_unit"] == 2147483647)
            #expect(try await cloud.call(.put, "/resource_providers/\(childID)/inventories", inventory).json?["errors"]?.arrayValue?.first?["code"]
                    == "placement.concurrent_update")
            let reservedAll = #"{"resource_provider_generation": 1, "inventories": {"DISK_GB": {"total": 5, "reserved": 5}}}"#
            #expect(try await cloud.call(.put, "/resource_providers/\(childID)/inventories", reservedAll, version: "1.25").status == .badRequest)
            #expect(try await cloud.call(.put, "/resource_providers/\(childID)/inventories", reservedAll).status == .ok, "from 1.26 reserved may equal total")
            let again = inventory.replacingOccurrences(of: #""resource_provider_generation": 0"#, with: #""resource_provider_generation": 2"#)
            #expect(try await cloud.call(.put, "/resource_providers/\(childID)/inventories", again).status == .ok)
            let one = try await cloud.call(.get, "/resource_providers/\(childID)/inventories/CUSTOM_IOPS")
            #expect(one.json?["total"] == 1000 && one.json?["step_size"] == 100 && one.json?["resource_provider_generation"] == 3)
            #expect(try await cloud.call(.get, "/resource_providers?resources=CUSTOM_IOPS:900").json?["resource_providers"]?.arrayValue?.count == 1)
            #expect(try await cloud.call(.get, "/resource_providers?resources=CUSTOM_IOPS:901").json?["resource_providers"] == [])
            // An allocation breaking step_size is refused; one that fits goes in.
            let consumer = UUID().uuidString.lowercased()
            func allocate(_ amount: Int) -> String {
                #"{"allocations": {"\#(childID)": {"resources": {"CUSTOM_IOPS": \#(amount)}}}, "project_id": "p", "user_id": "u", "consumer_generation": null}"#
            }
            #expect(try await cloud.call(.put, "/allocations/\(consumer)", allocate(150)).status == .badRequest)
            #expect(try await cloud.call(.put, "/allocations/\(consumer)", allocate(200)).status == .noContent)
            // Inventory in use cannot be removed.
            let inUse = try await cloud.call(.delete, "/resource_providers/\(childID)/inventories/CUSTOM_IOPS")
            #expect(inUse.status == .conflict && inUse.json?["errors"]?.arrayValue?.first?["code"] == "placement.inventory.inuse")
            #expect(try await cloud.call(.delete, "/resource_classes/CUSTOM_IOPS").status == .conflict)

            // Traits: custom ones made by users, standard ones always there.
            #expect(try await cloud.call(.put, "/traits/CUSTOM_FAST").status == .created)
            #expect(try await cloud.call(.put, "/traits/CUSTOM_FAST").status == .noContent)
            #expect(try await cloud.call(.put, "/traits/NOT_CUSTOM").status == .badRequest)
            #expect(try await cloud.call(.get, "/traits/HW_CPU_X86_AVX2").status == .noContent)
            #expect(try await cloud.call(.get, "/traits?name=startswith:CUSTOM_").json?["traits"] == ["CUSTOM_FAST"])
            let standard = try await cloud.call(.get, "/traits").json?["traits"]?.arrayValue?.count ?? 0
            #expect(standard > 300, "os-traits' standard names")
            let generation = try #require(number(try await cloud.call(.get, "/resource_providers/\(childID)").json?["generation"]))
            let tagged = try await cloud.call(.put, "/resource_providers/\(childID)/traits",
                                              #"{"traits": ["CUSTOM_FAST", "STORAGE_DISK_SSD"], "resource_provider_generation": \#(Int(generation))}"#)
            #expect(tagged.status == .ok && tagged.json?["traits"] == ["CUSTOM_FAST", "STORAGE_DISK_SSD"])
            #expect(try await cloud.call(.get, "/resource_providers?required=CUSTOM_FAST", version: "1.18").json?["resource_providers"]?.arrayValue?.count == 1)
            #expect(try await cloud.call(.get, "/traits?name=in:CUSTOM_FAST&associated=true").json?["traits"] == ["CUSTOM_FAST"])
            #expect(try await cloud.call(.delete, "/traits/CUSTOM_FAST").status == .conflict)
            #expect(try await cloud.call(.delete, "/traits/HW_CPU_X86_AVX2").status == .badRequest)
            #expect(try await cloud.call(.delete, "/resource_providers/\(childID)/traits").status == .noContent)
            #expect(try await cloud.call(.delete, "/traits/CUSTOM_FAST").status == .noContent)

            // Before 1.29 a nested provider serves a request alone, and the summaries show only it;
            // from 1.29 they show its whole tree, with parents and roots.
            let alone = try await cloud.call(.get, "/allocation_candidates?resources=CUSTOM_IOPS:100")
            #expect(alone.json?["allocation_requests"]?.arrayValue?.first?["allocations"]?.objectValue?.keys.sorted() == [childID])
            #expect(alone.json?["provider_summaries"]?.objectValue?.keys.sorted() == [childID])
            let tree = try await cloud.call(.get, "/allocation_candidates?resources=CUSTOM_IOPS:100", version: "1.29")
            #expect(tree.json?["provider_summaries"]?.objectValue?.keys.sorted() == [childID, parentID].sorted())
            #expect(tree.json?["provider_summaries"]?[childID]?["parent_provider_uuid"]?.stringValue == parentID)
            #expect(tree.json?["provider_summaries"]?[parentID]?["parent_provider_uuid"] == .null)
            #expect(tree.json?["provider_summaries"]?[parentID]?["root_provider_uuid"]?.stringValue == parentID)
            // Rename (PUT), then release and delete.
            #expect(try await cloud.call(.put, "/resource_providers/\(childID)", #"{"name": "rack-ssd"}"#).json?["name"] == "rack-ssd")
            #expect(try await cloud.call(.delete, "/allocations/\(consumer)").status == .noContent)
            #expect(try await cloud.call(.delete, "/resource_providers/\(childID)").status == .noContent)
            #expect(try await cloud.call(.delete, "/resource_providers/\(parentID)").status == .noContent)
        }
    }
}
