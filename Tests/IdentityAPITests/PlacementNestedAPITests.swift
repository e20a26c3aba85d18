import Foundation
import HTTPTypes
import PetrelHTTP
import Placement
import PlacementAPI
import TestSupport
import Testing

/// Placement 1.29–1.39 in-process on both databases: nested provider trees in allocation
/// candidates, the reshaper, `in_tree`, forbidden aggregates, named group suffixes, mappings,
/// `root_required`, `same_subtree`, re-parenting, consumer types and any-of traits.
@Suite struct PlacementNestedAPITests {
    typealias Cloud = PlacementAPITests.Cloud

    /// node-a's tree: two NUMA nodes (trait CUSTOM_NUMA, no inventory), each with a NIC
    /// (SRIOV_NET_VF: pf1 2 on physnet A, pf2 1 on physnet B), and an FPGA under numa0.
    struct Tree {
        let a: String, b: String, numa0: String, numa1: String, pf1: String, pf2: String, acc0: String
    }

    func create(_ cloud: Cloud, _ name: String, parent: String?) async throws -> String {
        let body = parent.map { #"{"name": "\#(name)", "parent_provider_uuid": "\#($0)"}"# } ?? #"{"name": "\#(name)"}"#
        let made = try await cloud.call(.post, "/resource_providers", body, version: "1.39")
        #expect(made.status == .ok, "\(name): \(String(describing: made.json))")
        return try #require(made.json?["uuid"]?.stringValue)
    }

    func generation(_ cloud: Cloud, _ uuid: String) async throws -> Int {
        try #require(number(try await cloud.call(.get, "/resource_providers/\(uuid)").json?["generation"]))
    }

    func setTraits(_ cloud: Cloud, _ uuid: String, _ traits: [String]) async throws {
        for trait in traits where trait.hasPrefix("CUSTOM_") { _ = try await cloud.call(.put, "/traits/\(trait)") }
        let list = traits.map { "\"\($0)\"" }.joined(separator: ", ")
        let set = try await cloud.call(.put, "/resource_providers/\(uuid)/traits",
                                       #"{"traits": [\#(list)], "resource_provider_generation": \#(try await generation(cloud, uuid))}"#)
        #expect(set.status == .ok)
    }

    func setInventory(_ cloud: Cloud, _ uuid: String, _ inventories: String) async throws {
        let set = try await cloud.call(.put, "/resource_providers/\(uuid)/inventories",
                                       #"{"inventories": \#(inventories), "resource_provider_generation": \#(try await generation(cloud, uuid))}"#)
        #expect(set.status == .ok, "\(String(describing: set.json))")
    }

    func makeTree(_ cloud: Cloud) async throws -> Tree {
        let a = try #require(cloud.hosts["node-a"]), b = try #require(cloud.hosts["node-b"])
        let numa0 = try await create(cloud, "numa0", parent: a), numa1 = try await create(cloud, "numa1", parent: a)
        let pf1 = try await create(cloud, "pf1", parent: numa0), pf2 = try await create(cloud, "pf2", parent: numa1)
        let acc0 = try await create(cloud, "acc0", parent: numa0)
        _ = try await cloud.call(.put, "/resource_classes/CUSTOM_FPGA")
        try await setInventory(cloud, pf1, #"{"SRIOV_NET_VF": {"total": 2}}"#)
        try await setInventory(cloud, pf2, #"{"SRIOV_NET_VF": {"total": 1}}"#)
        try await setInventory(cloud, acc0, #"{"CUSTOM_FPGA": {"total": 1}}"#)
        try await setTraits(cloud, numa0, ["CUSTOM_NUMA"])
        try await setTraits(cloud, numa1, ["CUSTOM_NUMA"])
        try await setTraits(cloud, pf1, ["CUSTOM_PHYSNET_A"])
        try await setTraits(cloud, pf2, ["CUSTOM_PHYSNET_B"])
        return Tree(a: a, b: b, numa0: numa0, numa1: numa1, pf1: pf1, pf2: pf2, acc0: acc0)
    }

    /// The allocation requests of a candidates query, as provider → resources.
    func requests(_ cloud: Cloud, _ query: String, version: String = "1.39") async throws -> [[String: JSON]] {
        let answer = try await cloud.call(.get, "/allocation_candidates?" + query, version: version)
        #expect(answer.status == .ok, "\(query) at \(version): \(String(describing: answer.json))")
        return (answer.json?["allocation_requests"]?.arrayValue ?? []).map { ($0["allocations"]?.objectValue ?? [:]).mapValues { $0["resources"] ?? .null } }
    }

    func status(_ cloud: Cloud, _ query: String, version: String) async throws -> HTTPResponse.Status {
        try await cloud.call(.get, "/allocation_candidates?" + query, version: version).status
    }

    @Test(arguments: TestDatabase.allCases)
    func nestedCandidatesAndTheirFilters(backend: TestDatabase) async throws {
        try await PlacementAPITests().withCloud(backend) { cloud in
            let tree = try await makeTree(cloud)

            // 1.29: one request may take from several providers of a tree; the summaries show the
            // whole tree with parents and roots.
            let both = try await cloud.call(.get, "/allocation_candidates?resources=VCPU:1,SRIOV_NET_VF:1", version: "1.29")
            let pairs = try #require(both.json?["allocation_requests"]?.arrayValue)
            #expect(pairs.count == 2)
            #expect(Set(pairs.compactMap { $0["allocations"]?.objectValue.map { Set($0.keys) } }) == [[tree.a, tree.pf1], [tree.a, tree.pf2]])
            #expect(pairs.first?["allocations"]?[tree.a]?["resources"] == ["VCPU": 1])
            let summaries = try #require(both.json?["provider_summaries"]?.objectValue)
            #expect(Set(summaries.keys) == [tree.a, tree.numa0, tree.numa1, tree.pf1, tree.pf2, tree.acc0])
            #expect(summaries[tree.pf1]?["parent_provider_uuid"]?.stringValue == tree.numa0)
            #expect(summaries[tree.pf1]?["root_provider_uuid"]?.stringValue == tree.a)
            #expect(summaries[tree.pf1]?["resources"] == ["SRIOV_NET_VF": ["capacity": 2, "used": 0]])
            #expect(summaries[tree.numa0]?["resources"] == [:] && summaries[tree.numa0]?["traits"] == ["CUSTOM_NUMA"])
            #expect(pairs.first?["mappings"] == nil, "mappings from 1.34")
            // Before 1.29 a request takes from one provider per tree.
            #expect(try await requests(cloud, "resources=VCPU:1,SRIOV_NET_VF:1", version: "1.28").isEmpty)
            let flat = try await cloud.call(.get, "/allocation_candidates?resources=VCPU:1", version: "1.28")
            #expect(flat.json?["provider_summaries"]?.objectValue.map { Set($0.keys) } == [tree.a, tree.b])
            #expect(flat.json?["provider_summaries"]?[tree.a]?["root_provider_uuid"] == nil)
            // Traits of the unsuffixed group: held by the providers serving it, together.
            #expect(try await requests(cloud, "resources=VCPU:1,SRIOV_NET_VF:1&required=CUSTOM_PHYSNET_B").map { Set($0.keys) } == [[tree.a, tree.pf2]])
            #expect(try await requests(cloud, "resources=VCPU:1,SRIOV_NET_VF:1&required=CUSTOM_NUMA").isEmpty, "numa0 serves nothing")
            #expect(try await requests(cloud, "resources=VCPU:1,SRIOV_NET_VF:1&required=!CUSTOM_PHYSNET_A").map { Set($0.keys) } == [[tree.a, tree.pf2]])
            // Capacity: pf1 has 2 VFs, pf2 one.
            #expect(try await requests(cloud, "resources=SRIOV_NET_VF:2").map { Set($0.keys) } == [[tree.pf1]])
            // Granular groups in a tree: each whole on one provider, the tree shared.
            let granular = try await requests(cloud, "resources=VCPU:1&resources1=SRIOV_NET_VF:1&required1=CUSTOM_PHYSNET_B", version: "1.29")
            #expect(granular == [[tree.a: ["VCPU": 1], tree.pf2: ["SRIOV_NET_VF": 1]]])
            #expect(try await requests(cloud, "resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1&group_policy=isolate").count == 2)
            // none: pf1 twice (2 VFs), or one each way; pf2 twice exceeds its one VF.
            let none = try await requests(cloud, "resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1&group_policy=none")
            #expect(none.count == 3 && none.contains([tree.pf1: ["SRIOV_NET_VF": 2]]) && !none.contains([tree.pf2: ["SRIOV_NET_VF": 2]]))

            // 1.31 in_tree (any provider of the tree names it), in_treeN.
            #expect(try await requests(cloud, "resources=VCPU:1&in_tree=\(tree.pf1)").map { Set($0.keys) } == [[tree.a]])
            #expect(try await requests(cloud, "resources=VCPU:1&in_tree=\(tree.b)").map { Set($0.keys) } == [[tree.b]])
            #expect(try await requests(cloud, "resources1=VCPU:1&in_tree1=\(tree.b)&resources2=MEMORY_MB:64&group_policy=none")
                .map { Set($0.keys) } == [[tree.b]])
            #expect(try await requests(cloud, "resources=VCPU:1&in_tree=\(UUID().uuidString.lowercased())").isEmpty)
            #expect(try await status(cloud, "resources=VCPU:1&in_tree=nope", version: "1.31") == .badRequest)
            #expect(try await status(cloud, "resources=VCPU:1&in_tree=\(tree.b)", version: "1.30") == .badRequest)

            // 1.32 forbidden aggregates, in candidates and in the provider list.
            let aggregate = UUID().uuidString.lowercased(), other = UUID().uuidString.lowercased()
            let put = try await cloud.call(.put, "/resource_providers/\(tree.b)/aggregates",
                                           #"{"aggregates": ["\#(aggregate)"], "resource_provider_generation": \#(try await generation(cloud, tree.b))}"#)
            #expect(put.status == .ok)
            #expect(try await requests(cloud, "resources=VCPU:1&member_of=!\(aggregate)").map { Set($0.keys) } == [[tree.a]])
            #expect(try await requests(cloud, "resources=VCPU:1&member_of=!in:\(other),\(aggregate)").map { Set($0.keys) } == [[tree.a]])
            #expect(try await requests(cloud, "resources=VCPU:1&member_of=\(aggregate)&member_of=!\(other)").map { Set($0.keys) } == [[tree.b]])
            #expect(try await status(cloud, "resources=VCPU:1&member_of=!\(aggregate)", version: "1.31") == .badRequest)
            #expect(try await status(cloud, "resources=VCPU:1&member_of=\(aggregate),\(other)", version: "1.32") == .badRequest, "a list needs in:")
            let listed = try await cloud.call(.get, "/resource_providers?member_of=!\(aggregate)", version: "1.32")
            #expect(listed.json?["resource_providers"]?.arrayValue?.contains { $0["uuid"]?.stringValue == tree.b } == false)
            #expect(listed.json?["resource_providers"]?.arrayValue?.count == 6)

            // 1.33 named suffixes; 1.34 mappings.
            let named = try await cloud.call(.get, "/allocation_candidates?resources_COMPUTE=VCPU:1&resources_NET=SRIOV_NET_VF:1"
                                             + "&required_NET=CUSTOM_PHYSNET_A&group_policy=isolate", version: "1.34")
            let only = try #require(named.json?["allocation_requests"]?.arrayValue)
            #expect(only.count == 1)
            #expect(only.first?["mappings"] == ["_COMPUTE": [.string(tree.a)], "_NET": [.string(tree.pf1)]])
            #expect(try await status(cloud, "resources_COMPUTE=VCPU:1", version: "1.32") == .badRequest)
            #expect(try await status(cloud, "resources\(String(repeating: "x", count: 65))=VCPU:1", version: "1.33") == .badRequest)
            let unsuffixed = try await cloud.call(.get, "/allocation_candidates?resources=VCPU:1,SRIOV_NET_VF:1&required=CUSTOM_PHYSNET_A",
                                                  version: "1.34")
            #expect(unsuffixed.json?["allocation_requests"]?.arrayValue?.first?["mappings"] == ["": .array([tree.a, tree.pf1].sorted().map(JSON.string))])

            // 1.35 root_required: the traits of each candidate's root.
            try await setTraits(cloud, tree.b, ["COMPUTE_NODE", "CUSTOM_ROOT_X"])
            #expect(try await requests(cloud, "resources=VCPU:1&root_required=CUSTOM_ROOT_X").map { Set($0.keys) } == [[tree.b]])
            #expect(try await requests(cloud, "resources=VCPU:1&root_required=!CUSTOM_ROOT_X").map { Set($0.keys) } == [[tree.a]])
            #expect(try await requests(cloud, "resources=SRIOV_NET_VF:1&root_required=COMPUTE_NODE,!CUSTOM_ROOT_X").count == 2)
            #expect(try await requests(cloud, "resources=SRIOV_NET_VF:1&root_required=CUSTOM_ROOT_X").isEmpty)
            #expect(try await status(cloud, "resources=VCPU:1&root_required=CUSTOM_ROOT_X&root_required=COMPUTE_NODE", version: "1.35") == .badRequest)
            #expect(try await status(cloud, "resources=VCPU:1&root_required=CUSTOM_ROOT_X", version: "1.34") == .badRequest)
            #expect(try await status(cloud, "resources=VCPU:1&root_required=CUSTOM_NOPE", version: "1.35") == .badRequest)

            // 1.36 same_subtree, with a resourceless group naming the NUMA node.
            let accel = "resources_NET=SRIOV_NET_VF:1&resources_ACC=CUSTOM_FPGA:1&group_policy=none"
            #expect(try await requests(cloud, accel).count == 2)
            #expect(try await requests(cloud, accel + "&same_subtree=_NET,_ACC").isEmpty, "neither is the other's ancestor")
            let subtree = try await cloud.call(.get, "/allocation_candidates?" + accel + "&required_NUMA=CUSTOM_NUMA&same_subtree=_NET,_ACC,_NUMA",
                                               version: "1.36")
            let numa = try #require(subtree.json?["allocation_requests"]?.arrayValue)
            #expect(numa.count == 1)
            #expect(numa.first?["mappings"] == ["_NET": [.string(tree.pf1)], "_ACC": [.string(tree.acc0)], "_NUMA": [.string(tree.numa0)]])
            #expect(numa.first?["allocations"]?.objectValue.map { Set($0.keys) } == [tree.pf1, tree.acc0])
            #expect(try await status(cloud, accel + "&required_NUMA=CUSTOM_NUMA", version: "1.36") == .badRequest, "resourceless outside same_subtree")
            #expect(try await status(cloud, accel + "&same_subtree=_NET,_NOPE", version: "1.36") == .badRequest)
            #expect(try await status(cloud, accel + "&same_subtree=_NET,", version: "1.36") == .badRequest)
            #expect(try await status(cloud, accel + "&same_subtree=_NET,_ACC", version: "1.35") == .badRequest)
            #expect(try await status(cloud, accel + "&required_NUMA=CUSTOM_NUMA", version: "1.35") == .badRequest, "orphaned traits before 1.36")

            // 1.39 any-of traits, repeated `required`.
            #expect(try await requests(cloud, "resources=SRIOV_NET_VF:1&required=in:CUSTOM_PHYSNET_A,CUSTOM_PHYSNET_B").count == 2)
            #expect(try await requests(cloud, "resources=SRIOV_NET_VF:1&required=in:CUSTOM_PHYSNET_A,CUSTOM_PHYSNET_B&required=!CUSTOM_PHYSNET_B")
                .map { Set($0.keys) } == [[tree.pf1]])
            #expect(try await requests(cloud, "resources1=SRIOV_NET_VF:1&required1=in:CUSTOM_PHYSNET_B,CUSTOM_NUMA")
                .map { Set($0.keys) } == [[tree.pf2]])
            #expect(try await status(cloud, "resources=SRIOV_NET_VF:1&required=in:CUSTOM_PHYSNET_A,CUSTOM_PHYSNET_B", version: "1.38") == .badRequest)
            #expect(try await status(cloud, "resources=SRIOV_NET_VF:1&required=in:CUSTOM_PHYSNET_A,!CUSTOM_PHYSNET_B", version: "1.39") == .badRequest)
            // Before 1.39 the last `required` counts.
            #expect(try await requests(cloud, "resources=SRIOV_NET_VF:1&required=CUSTOM_PHYSNET_A&required=CUSTOM_PHYSNET_B", version: "1.38")
                .map { Set($0.keys) } == [[tree.pf2]])
            let anyList = try await cloud.call(.get, "/resource_providers?required=in:CUSTOM_PHYSNET_A,CUSTOM_PHYSNET_B", version: "1.39")
            #expect(anyList.json?["resource_providers"]?.arrayValue.map { Set($0.compactMap { $0["uuid"]?.stringValue }) } == [tree.pf1, tree.pf2])
            #expect(try await cloud.call(.get, "/resource_providers?required=in:CUSTOM_PHYSNET_A", version: "1.38").status == .badRequest)

            // A sharing provider (its own tree) serves the trees of its aggregate, before 1.29 too.
            let nfs = try await create(cloud, "nfs", parent: nil)
            try await setInventory(cloud, nfs, #"{"DISK_GB": {"total": 1000}}"#)
            try await setTraits(cloud, nfs, ["MISC_SHARES_VIA_AGGREGATE"])
            let shared = try await cloud.call(.put, "/resource_providers/\(nfs)/aggregates",
                                              #"{"aggregates": ["\#(aggregate)"], "resource_provider_generation": \#(try await generation(cloud, nfs))}"#)
            #expect(shared.status == .ok)
            for version in ["1.28", "1.39"] {
                #expect(try await requests(cloud, "resources=VCPU:1,DISK_GB:500", version: version) == [[tree.b: ["VCPU": 1], nfs: ["DISK_GB": 500]]])
            }
            let sharedSummaries = try await cloud.call(.get, "/allocation_candidates?resources=VCPU:1,DISK_GB:500", version: "1.29")
            #expect(sharedSummaries.json?["provider_summaries"]?.objectValue.map { Set($0.keys) } == [tree.b, nfs])
            let pinned = try await cloud.call(.get, "/allocation_candidates?resources=VCPU:1&resources1=DISK_GB:500&in_tree1=\(nfs)", version: "1.34")
            #expect(pinned.json?["allocation_requests"]?.arrayValue?.map { $0["mappings"] } == [["": [.string(tree.b)], "1": [.string(nfs)]]])
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func reparentingReshapingAndConsumerTypes(backend: TestDatabase) async throws {
        try await PlacementAPITests().withCloud(backend) { cloud in
            let tree = try await makeTree(cloud)

            // 1.37: re-parenting and un-parenting; descendants follow to their new root.
            let move = #"{"name": "pf2", "parent_provider_uuid": "\#(tree.numa0)"}"#
            let refused = try await cloud.call(.put, "/resource_providers/\(tree.pf2)", move, version: "1.36")
            #expect(refused.status == .badRequest)
            #expect(refused.json?["errors"]?.arrayValue?.first?["detail"]?.stringValue?.contains("re-parenting a provider is not currently allowed") == true)
            let moved = try await cloud.call(.put, "/resource_providers/\(tree.pf2)", move, version: "1.37")
            #expect(moved.status == .ok && moved.json?["parent_provider_uuid"]?.stringValue == tree.numa0)
            let unparent = #"{"name": "numa0", "parent_provider_uuid": null}"#
            #expect(try await cloud.call(.put, "/resource_providers/\(tree.numa0)", unparent, version: "1.36").status == .badRequest)
            let root = try await cloud.call(.put, "/resource_providers/\(tree.numa0)", unparent, version: "1.37")
            #expect(root.status == .ok && root.json?["root_provider_uuid"]?.stringValue == tree.numa0 && root.json?["parent_provider_uuid"] == .null)
            for child in [tree.pf1, tree.pf2, tree.acc0] {
                #expect(try await cloud.call(.get, "/resource_providers/\(child)").json?["root_provider_uuid"]?.stringValue == tree.numa0)
            }
            #expect(try await cloud.call(.get, "/resource_providers?in_tree=\(tree.a)").json?["resource_providers"]?.arrayValue?.count == 2)
            // A loop is refused at any version; a root may join a tree (its subtree follows) before 1.37.
            let loop = try await cloud.call(.put, "/resource_providers/\(tree.numa0)", #"{"name": "numa0", "parent_provider_uuid": "\#(tree.pf1)"}"#)
            #expect(loop.status == .badRequest)
            let back = try await cloud.call(.put, "/resource_providers/\(tree.numa0)", #"{"name": "numa0", "parent_provider_uuid": "\#(tree.numa1)"}"#,
                                            version: "1.14")
            #expect(back.status == .ok && back.json?["root_provider_uuid"]?.stringValue == tree.a)
            #expect(try await cloud.call(.get, "/resource_providers/\(tree.pf2)").json?["root_provider_uuid"]?.stringValue == tree.a)

            // 1.30 reshaper: VGPUs move from a host to its new child, with the allocation on them.
            _ = try await cloud.call(.put, "/resource_classes/CUSTOM_VGPU")
            let host = try await create(cloud, "gpu-host", parent: nil)
            try await setInventory(cloud, host, #"{"VCPU": {"total": 8}, "CUSTOM_VGPU": {"total": 4}}"#)
            let consumer = UUID().uuidString.lowercased()
            let claim = #"{"allocations": {"\#(host)": {"resources": {"VCPU": 1, "CUSTOM_VGPU": 1}}}, "project_id": "p9", "user_id": "u9", "consumer_generation": null}"#
            #expect(try await cloud.call(.put, "/allocations/\(consumer)", claim).status == .noContent)
            let gpu = try await create(cloud, "gpu0", parent: host)
            let hostGeneration = try await generation(cloud, host)
            func reshape(hostInventory: String, gpuAllocation: Bool, hostGeneration: Int) -> String {
                let allocations = gpuAllocation
                    ? #"{"\#(host)": {"resources": {"VCPU": 1}}, "\#(gpu)": {"resources": {"CUSTOM_VGPU": 1}}}"#
                    : #"{"\#(host)": {"resources": {"VCPU": 1, "CUSTOM_VGPU": 1}}}"#
                return #"""
                    {"inventories": {"\#(host)": {"resource_provider_generation": \#(hostGeneration), "inventories": \#(hostInventory)},
                                     "\#(gpu)": {"resource_provider_generation": 0, "inventories": {"CUSTOM_VGPU": {"total": 4}}}},
                     "allocations": {"\#(consumer)": {"allocations": \#(allocations), "project_id": "p9", "user_id": "u9",
                                                      "consumer_generation": 1}}}
                    """#
            }
            let good = reshape(hostInventory: #"{"VCPU": {"total": 8}}"#, gpuAllocation: true, hostGeneration: hostGeneration)
            #expect(try await cloud.call(.post, "/reshaper", good, version: "1.29", token: .some(cloud.service)).status == .notFound)
            #expect(try await cloud.call(.post, "/reshaper", good, version: "1.30").status == .forbidden, "service role only")
            let stale = reshape(hostInventory: #"{"VCPU": {"total": 8}}"#, gpuAllocation: true, hostGeneration: hostGeneration - 1)
            let conflict = try await cloud.call(.post, "/reshaper", stale, version: "1.30", token: .some(cloud.service))
            #expect(conflict.status == .conflict && conflict.json?["errors"]?.arrayValue?.first?["code"] == "placement.concurrent_update")
            // Taking VGPU off the host while the allocation stays there: in use, and nothing changes.
            let inUse = try await cloud.call(.post, "/reshaper", reshape(hostInventory: #"{"VCPU": {"total": 8}}"#, gpuAllocation: false,
                                                                         hostGeneration: hostGeneration), version: "1.30", token: .some(cloud.service))
            #expect(inUse.status == .conflict && inUse.json?["errors"]?.arrayValue?.first?["code"] == "placement.inventory.inuse")
            #expect(try await generation(cloud, host) == hostGeneration)
            #expect(try await cloud.call(.get, "/resource_providers/\(gpu)/inventories").json?["inventories"] == [:])
            let done = try await cloud.call(.post, "/reshaper", good, version: "1.30", token: .some(cloud.service))
            #expect(done.status == .noContent, "\(String(describing: done.json))")
            #expect(try await cloud.call(.get, "/resource_providers/\(host)/inventories").json?["inventories"]?.objectValue?.keys.sorted() == ["VCPU"])
            #expect(try await cloud.call(.get, "/resource_providers/\(gpu)/usages").json?["usages"] == ["CUSTOM_VGPU": 1])
            let held = try await cloud.call(.get, "/allocations/\(consumer)")
            #expect(held.json?["allocations"]?[gpu]?["resources"] == ["CUSTOM_VGPU": 1] && held.json?["consumer_generation"] == 2)

            // 1.38 consumer types: required in writes, shown in reads, grouping usages.
            let typed = UUID().uuidString.lowercased()
            func write(_ type: String?, generation: String = "null") -> String {
                #"{"allocations": {"\#(tree.b)": {"resources": {"VCPU": 2, "MEMORY_MB": 128}}}, "project_id": "p9", "user_id": "u9", "consumer_generation": \#(generation)"#
                    + (type.map { #", "consumer_type": "\#($0)"}"# } ?? "}")
            }
            #expect(try await cloud.call(.put, "/allocations/\(typed)", write(nil), version: "1.38").status == .badRequest)
            #expect(try await cloud.call(.put, "/allocations/\(typed)", write("lower"), version: "1.38").status == .badRequest)
            #expect(try await cloud.call(.put, "/allocations/\(typed)", write("BACKUP"), version: "1.37").status == .badRequest)
            #expect(try await cloud.call(.put, "/allocations/\(typed)", write("BACKUP"), version: "1.38").status == .noContent)
            #expect(try await cloud.call(.get, "/allocations/\(typed)", version: "1.38").json?["consumer_type"] == "BACKUP")
            #expect(try await cloud.call(.get, "/allocations/\(typed)", version: "1.37").json?["consumer_type"] == nil)
            #expect(try await cloud.call(.get, "/allocations/\(consumer)", version: "1.38").json?["consumer_type"] == "unknown")
            let usages = try await cloud.call(.get, "/usages?project_id=p9", version: "1.38")
            #expect(usages.json?["usages"] == ["BACKUP": ["VCPU": 2, "MEMORY_MB": 128, "consumer_count": 1],
                                               "unknown": ["VCPU": 1, "CUSTOM_VGPU": 1, "consumer_count": 1]])
            #expect(try await cloud.call(.get, "/usages?project_id=p9&consumer_type=all", version: "1.38").json?["usages"]
                    == ["all": ["VCPU": 3, "MEMORY_MB": 128, "CUSTOM_VGPU": 1, "consumer_count": 2]])
            #expect(try await cloud.call(.get, "/usages?project_id=p9&consumer_type=unknown", version: "1.38").json?["usages"]
                    == ["unknown": ["VCPU": 1, "CUSTOM_VGPU": 1, "consumer_count": 1]])
            #expect(try await cloud.call(.get, "/usages?project_id=p9&consumer_type=BACKUP", version: "1.38").json?["usages"]
                    == ["BACKUP": ["VCPU": 2, "MEMORY_MB": 128, "consumer_count": 1]])
            #expect(try await cloud.call(.get, "/usages?project_id=p9&consumer_type=NONE_SUCH", version: "1.38").json?["usages"] == [:])
            #expect(try await cloud.call(.get, "/usages?project_id=p9&consumer_type=bad", version: "1.38").status == .badRequest)
            #expect(try await cloud.call(.get, "/usages?project_id=p9&consumer_type=all", version: "1.37").status == .badRequest)
            #expect(try await cloud.call(.get, "/usages?project_id=p9", version: "1.37").json?["usages"]
                    == ["VCPU": 3, "MEMORY_MB": 128, "CUSTOM_VGPU": 1])
            // A later write keeps the type unless it names one; POST /allocations takes it too (with 1.34's mappings, ignored).
            #expect(try await cloud.call(.put, "/allocations/\(typed)", write(nil, generation: "1"), version: "1.28").status == .noContent)
            #expect(try await cloud.call(.get, "/allocations/\(typed)", version: "1.38").json?["consumer_type"] == "BACKUP")
            func post(_ generation: Int, _ extra: String) -> String {
                #"{"\#(typed)": {"allocations": {"\#(tree.b)": {"resources": {"VCPU": 1}}}, "project_id": "p9", "user_id": "u9", "#
                    + #""consumer_generation": \#(generation)\#(extra)}}"#
            }
            let mapped = post(2, #", "mappings": {"": ["\#(tree.b)"]}"#)
            #expect(try await cloud.call(.post, "/allocations", mapped, version: "1.33").status == .badRequest, "mappings from 1.34")
            #expect(try await cloud.call(.post, "/allocations", mapped, version: "1.34").status == .noContent)
            #expect(try await cloud.call(.post, "/allocations", post(3, #", "consumer_type": "SNAPSHOT""#), version: "1.38").status == .noContent)
            #expect(try await cloud.call(.get, "/allocations/\(typed)", version: "1.38").json?["consumer_type"] == "SNAPSHOT")
            #expect(try await cloud.call(.get, "/allocations/\(typed)").json?["allocations"]?[tree.b]?["resources"] == ["VCPU": 1])
        }
    }
}
