import Foundation
import HTTPTypes
import Hummingbird
import PetrelHTTP
import Placement

extension PlacementAPI {
    // MARK: resource classes and traits

    static func classJSON(_ name: String) -> JSON {
        ["name": .string(name), "links": [["rel": "self", "href": .string("/placement/resource_classes/\(name)")]]]
    }

    static let customRule = Schema.Rule(regex: "^CUSTOM_[A-Z0-9_]+$")

    func registerClassesAndTraits(on routes: APIRoutes) {
        routes.get("resource_classes") { request, context in
            _ = try Self.require(request, 1, 2)
            try context.enforce("placement:resource_classes:list")
            let names = try await Self.run { try await service.resourceClasses() }
            return Self.answer(request, ["resource_classes": .array(names.map(Self.classJSON))])
        }
        routes.post("resource_classes", body: .json(.object([("name", .string(maxLength: 255, pattern: Self.customRule))], required: ["name"]),
                                                    style: .placement)) { request, context in
            _ = try Self.require(request, 1, 2)
            try context.enforce("placement:resource_classes:create")
            let name = try await environment.body(request, context)["name"]!.stringValue!
            guard try await Self.run({ try await service.createResourceClass(name) }) else {
                throw APIFault(.conflict, "Conflicting resource class already exists: \(name)")
            }
            var response = noContent(.created)
            response.headers[.location] = "/placement/resource_classes/\(name)"
            return response
        }
        routes.get("resource_classes/:name") { request, context in
            _ = try Self.require(request, 1, 2)
            try context.enforce("placement:resource_classes:show")
            let name = try context.parameters.require("name")
            guard try await Self.run({ try await service.resourceClassExists(name) }) else {
                throw APIFault(.notFound, "No such resource class \(name).")
            }
            return Self.answer(request, Self.classJSON(name))
        }
        routes.put("resource_classes/:name", body: Self.body { version in
            version >= Microversion(1, 7) ? .any : .object([("name", .string(maxLength: 255, pattern: Self.customRule))], required: ["name"])
        }) { request, context in
            let version = try Self.require(request, 1, 2)
            try context.enforce("placement:resource_classes:update")
            let name = try context.parameters.require("name")
            if version >= Microversion(1, 7) {
                // Create-or-validate: 201 when made, 204 when it was there.
                guard Self.customRule.test(name) else {
                    throw APIFault(.badRequest, "Invalid resource class name \(name): a custom resource class name starts with CUSTOM_ and uses A-Z, 0-9 and _.")
                }
                if try await Self.run({ try await service.createResourceClass(name) }) {
                    var response = noContent(.created)
                    response.headers[.location] = "/placement/resource_classes/\(name)"
                    return response
                }
                return noContent()
            }
            let newName = try await environment.body(request, context)["name"]!.stringValue!
            try await Self.run { try await service.renameResourceClass(name, to: newName) }
            return respond(.ok, Self.classJSON(newName))
        }
        routes.delete("resource_classes/:name") { request, context in
            _ = try Self.require(request, 1, 2)
            try context.enforce("placement:resource_classes:delete")
            try await Self.run { try await service.deleteResourceClass(try context.parameters.require("name")) }
            return noContent()
        }

        routes.get("traits") { request, context in
            _ = try Self.require(request, 1, 6)
            try context.enforce("placement:traits:list")
            try Self.checkQuery(request, allowed: ["name", "associated"])
            var nameIn: Set<String>?, startsWith: String?
            if let name = request.query("name") {
                if name.hasPrefix("in:") {
                    nameIn = Set(name.dropFirst(3).split(separator: ",").map(String.init))
                } else if name.hasPrefix("startswith:") {
                    startsWith = String(name.dropFirst("startswith:".count))
                } else {
                    throw APIFault(.badRequest, "Badly formatted name parameter. Expected name query string parameter in form: ?name=[in|startswith]:[name1,name2|prefix]. Got: \"\(name)\"")
                }
            }
            var associated: Bool?
            if let value = request.query("associated") {
                switch value.lowercased() {
                case "true": associated = true
                case "false": associated = false
                default: throw APIFault(.badRequest, "The query parameter \"associated\" only accepts \"true\" or \"false\"")
                }
            }
            let names = try await Self.run { try await service.traits(nameIn: nameIn, startsWith: startsWith, associated: associated) }
            return Self.answer(request, ["traits": .array(names.map(JSON.string))])
        }
        routes.get("traits/:name") { request, context in
            _ = try Self.require(request, 1, 6)
            try context.enforce("placement:traits:show")
            let name = try context.parameters.require("name")
            guard try await Self.run({ try await service.traitExists(name) }) else { throw APIFault(.notFound, "No such trait(s): \(name)") }
            return noContent()
        }
        routes.put("traits/:name", body: .none) { request, context in
            _ = try Self.require(request, 1, 6)
            try context.enforce("placement:traits:update")
            let name = try context.parameters.require("name")
            if try await Self.run({ try await service.createTrait(name) }) {
                var response = noContent(.created)
                response.headers[.location] = "/placement/traits/\(name)"
                return response
            }
            return noContent()
        }
        routes.delete("traits/:name") { request, context in
            _ = try Self.require(request, 1, 6)
            try context.enforce("placement:traits:delete")
            try await Self.run { try await service.deleteTrait(try context.parameters.require("name")) }
            return noContent()
        }
    }

    // MARK: allocations

    static let amounts = Schema(types: [.object], additional: .some(nil), keyRule: (classRule, .integer(minimum: 1)), minProperties: 1)

    /// The body of `PUT /allocations/{consumer}` (and, from 1.13, each entry of `POST /allocations`).
    static func allocationSchema(_ version: Microversion, post: Bool = false) -> Schema {
        let identity: [(String, Schema)] = [("project_id", .string(minLength: 1, maxLength: 255)), ("user_id", .string(minLength: 1, maxLength: 255))]
        if version < Microversion(1, 12) {
            let item = Schema.object([("resource_provider", .object([("uuid", .string(pattern: uuidRule))], required: ["uuid"])),
                                      ("resources", amounts)], required: ["resource_provider", "resources"])
            return .object([("allocations", .array(item, minItems: 1))] + (version >= Microversion(1, 8) ? identity : []),
                           required: version >= Microversion(1, 8) ? ["allocations", "project_id", "user_id"] : ["allocations"])
        }
        let deletable = post || version >= Microversion(1, 28)
        let perProvider = Schema(types: [.object], additional: .some(nil),
                                 keyRule: (uuidRule, .object([("generation", .integer()), ("resources", amounts)], required: ["resources"])),
                                 minProperties: deletable ? 0 : 1)
        var properties: [(String, Schema)] = [("allocations", perProvider)] + identity
        var required = ["allocations", "project_id", "user_id"]
        if version >= Microversion(1, 28) {
            properties.append(("consumer_generation", Schema(types: [.integer, .null])))
            required.append("consumer_generation")
        }
        if version >= Microversion(1, 34) {
            // Candidates' mappings may come back with them; they are ignored.
            // (Keys are suffixes, "" for the unsuffixed group.)
            properties.append(("mappings", Schema(types: [.object], additional: .some(.array(.string(format: .uuid), minItems: 1)),
                                                  minProperties: 1)))
        }
        if version >= Microversion(1, 38) {
            properties.append(("consumer_type", .string(minLength: 1, maxLength: 255, pattern: classRule)))
            required.append("consumer_type")
        }
        return .object(properties, required: required)
    }

    /// A request group's suffix from 1.33 (before: a number).
    static let suffixRule = Schema.Rule(regex: "^[a-zA-Z0-9_-]{1,64}$")
    static let numberedSuffixRule = Schema.Rule(regex: "^[1-9][0-9]*$")

    static func write(_ body: [String: JSON], _ version: Microversion) -> AllocationWrite {
        var allocations: [String: [String: Int]] = [:]
        if let list = body["allocations"]?.arrayValue {
            for item in list {
                guard let uuid = item["resource_provider"]?["uuid"]?.stringValue?.lowercased() else { continue }
                for (resourceClass, amount) in item["resources"]?.objectValue ?? [:] {
                    allocations[uuid, default: [:]][resourceClass, default: 0] += Int(amount.numberValue ?? 0)
                }
            }
        } else {
            for (uuid, entry) in body["allocations"]?.objectValue ?? [:] {
                allocations[uuid.lowercased()] = (entry["resources"]?.objectValue ?? [:]).mapValues { Int($0.numberValue ?? 0) }
            }
        }
        var generation: Int?? = nil
        if version >= Microversion(1, 28) { generation = .some(body["consumer_generation"]?.numberValue.map { Int($0) }) }
        return AllocationWrite(allocations: allocations, projectID: body["project_id"]?.stringValue ?? PlacementService.incompleteConsumer,
                               userID: body["user_id"]?.stringValue ?? PlacementService.incompleteConsumer, consumerGeneration: generation,
                               consumerType: version >= Microversion(1, 38) ? body["consumer_type"]?.stringValue : nil)
    }

    func registerAllocations(on routes: APIRoutes) {
        routes.get("allocations/:consumer_uuid") { request, context in
            try context.enforce("placement:allocations:list")
            let version = Self.version(request)
            let held = try await Self.run { try await service.allocations(consumer: try context.parameters.require("consumer_uuid")) }
            var json: [String: JSON] = ["allocations": .object(held.allocations.mapValues { entry in
                ["generation": .int(entry.generation), "resources": .object(entry.resources.mapValues(JSON.int))]
            })]
            if version >= Microversion(1, 12), let project = held.projectID, let user = held.userID {
                json["project_id"] = .string(project)
                json["user_id"] = .string(user)
            }
            if version >= Microversion(1, 28), let generation = held.generation { json["consumer_generation"] = .int(generation) }
            if version >= Microversion(1, 38), held.generation != nil {
                json["consumer_type"] = .string(held.consumerType ?? PlacementService.unknownConsumerType)
            }
            return Self.answer(request, .object(json))
        }
        routes.put("allocations/:consumer_uuid", body: Self.body { Self.allocationSchema($0) }) { request, context in
            try context.enforce("placement:allocations:update")
            let version = Self.version(request)
            let consumer = try context.parameters.require("consumer_uuid")
            guard Self.uuidRule.test(consumer) else { throw APIFault(.badRequest, "Malformed consumer_uuid: \(consumer)") }
            let body = try await environment.body(request, context)
            try await Self.run { try await service.writeAllocations([consumer.lowercased(): Self.write(body, version)]) }
            return noContent()
        }
        routes.post("allocations", body: Self.body { version in
            Schema(types: [.object], additional: .some(nil), keyRule: (Self.uuidRule, Self.allocationSchema(version, post: true)), minProperties: 1)
        }) { request, context in
            let version = try Self.require(request, 1, 13)
            try context.enforce("placement:allocations:manage")
            let body = try await environment.body(request, context)
            var writes: [String: AllocationWrite] = [:]
            for (consumer, entry) in body { writes[consumer.lowercased()] = Self.write(entry.objectValue ?? [:], version) }
            try await Self.run { try await service.writeAllocations(writes) }
            return noContent()
        }
        routes.delete("allocations/:consumer_uuid") { _, context in
            try context.enforce("placement:allocations:delete")
            try await Self.run { try await service.deleteAllocations(consumer: try context.parameters.require("consumer_uuid")) }
            return noContent()
        }
        routes.get("usages") { request, context in
            let version = try Self.require(request, 1, 9)
            let typed = version >= Microversion(1, 38)
            try Self.checkQuery(request, allowed: typed ? ["project_id", "user_id", "consumer_type"] : ["project_id", "user_id"])
            guard let project = request.query("project_id") else {
                _ = try context.caller()
                throw APIFault(.badRequest, "Invalid query string parameters: 'project_id' is a required property")
            }
            try context.enforce("placement:usages", target: ["project_id": project])
            let consumerType = typed ? request.query("consumer_type") : nil
            if let consumerType, !(Self.classRule.test(consumerType) || consumerType == "all" || consumerType == "unknown") || consumerType.count > 255 {
                throw APIFault(.badRequest, "Invalid query string parameters: '\(consumerType)' does not match '^[A-Z0-9_]+$|^all|^unknown$'")
            }
            if typed {
                let usages = try await Self.run {
                    try await service.typedUsages(projectID: project, userID: request.query("user_id"), consumerType: consumerType)
                }
                return Self.answer(request, ["usages": .object(usages.mapValues { group in
                    var object = group.usages.mapValues(JSON.int)
                    object["consumer_count"] = .int(group.consumerCount)
                    return .object(object)
                })])
            }
            let usages = try await Self.run { try await service.totalUsages(projectID: project, userID: request.query("user_id")) }
            return Self.answer(request, ["usages": .object(usages.mapValues(JSON.int))])
        }
        routes.post("reshaper", body: Self.body { version in
            .object([("inventories", Schema(types: [.object], additional: .some(nil), keyRule: (Self.uuidRule, Self.inventoriesSchema),
                                            minProperties: 1)),
                     ("allocations", Schema(types: [.object], additional: .some(nil),
                                            keyRule: (Self.uuidRule, Self.allocationSchema(max(version, Microversion(1, 28)), post: true))))],
                    required: ["inventories", "allocations"])
        }) { request, context in
            let version = try Self.require(request, 1, 30)
            try context.enforce("placement:reshaper:reshape")
            let body = try await environment.body(request, context)
            var inventories: [String: (generation: Int, inventories: [Inventory])] = [:]
            for (uuid, entry) in body["inventories"]?.objectValue ?? [:] {
                let provider = uuid.lowercased()
                let rows = (entry["inventories"]?.objectValue ?? [:]).map {
                    Self.inventory($0.value.objectValue ?? [:], provider: provider, resourceClass: $0.key)
                }
                inventories[provider] = (Self.generation(entry.objectValue ?? [:]), rows)
            }
            var writes: [String: AllocationWrite] = [:]
            for (consumer, entry) in body["allocations"]?.objectValue ?? [:] {
                writes[consumer.lowercased()] = Self.write(entry.objectValue ?? [:], max(version, Microversion(1, 28)))
            }
            try await Self.run { try await service.reshape(inventories: inventories, allocations: writes) }
            return noContent()
        }
        routes.get("allocation_candidates") { request, context in
            let version = try Self.require(request, 1, 10)
            try context.enforce("placement:allocation_candidates:list")
            let candidateRequest = try Self.candidateRequest(request, version)
            let result = try await Self.run { try await service.allocationCandidates(candidateRequest) }
            return Self.answer(request, Self.candidatesJSON(result, request: candidateRequest, version))
        }
    }

    /// A `GET /allocation_candidates` query: its request groups (`resources`, `required`,
    /// `member_of`, `in_tree` with their suffixes) and the request-wide parameters, checked as
    /// Placement checks them at `version`.
    static func candidateRequest(_ request: Request, _ version: Microversion) throws -> CandidateRequest {
        var prefixes = ["resources"]
        if version >= Microversion(1, 17) { prefixes.append("required") }
        if version >= Microversion(1, 21) { prefixes.append("member_of") }
        if version >= Microversion(1, 31) { prefixes.append("in_tree") }
        let suffixRule = version >= Microversion(1, 33) ? Self.suffixRule : Self.numberedSuffixRule
        var values: [String: [String]] = [:]  // parameter → its values, in order
        var suffixes: [String] = []
        var limit: Int?, policy: String?, rootRequired: [String] = [], sameSubtree: [String] = []
        for (name, value) in request.queryPairs {
            if let prefix = prefixes.first(where: { name.hasPrefix($0) }),
               case let suffix = String(name.dropFirst(prefix.count)),
               suffix.isEmpty || (version >= Microversion(1, 25) && suffixRule.test(suffix)) {
                values[name, default: []].append(value)
                if !suffixes.contains(suffix) { suffixes.append(suffix) }
            } else if name == "limit", version >= Microversion(1, 16) {
                guard let number = Int(value), number >= 1 else {
                    throw APIFault(.badRequest, "Invalid query string parameters: '\(value)' does not match '^[1-9][0-9]*$'")
                }
                limit = number
            } else if name == "group_policy", version >= Microversion(1, 25) {
                guard value == "none" || value == "isolate" else {
                    throw APIFault(.badRequest, "Invalid query string parameters: '\(value)' is not one of ['none', 'isolate']")
                }
                policy = value
            } else if name == "root_required", version >= Microversion(1, 35) {
                rootRequired.append(value)
            } else if name == "same_subtree", version >= Microversion(1, 36) {
                sameSubtree.append(value)
            } else {
                throw APIFault(.badRequest, "Invalid query string parameters: Additional properties are not allowed ('\(name)' was unexpected)")
            }
        }
        if version < Microversion(1, 25), values["resources"] == nil {
            throw APIFault(.badRequest, "Invalid query string parameters: 'resources' is a required property")
        }
        var groups: [RequestGroup] = []
        for suffix in suffixes {
            var group = RequestGroup(suffix: suffix)
            if let text = values["resources" + suffix]?.last { group.resources = try resources(text) }
            if let list = values["required" + suffix] { (group.required, group.forbidden) = try traits(list, version, name: "required") }
            if let list = values["member_of" + suffix] { (group.memberOf, group.forbiddenAggregates) = try memberOf(list, version, suffix: suffix) }
            if let text = values["in_tree" + suffix]?.last {
                let uuid = text.trimmingCharacters(in: .whitespaces)
                guard uuidRule.test(uuid) else {
                    throw APIFault(.badRequest, "Invalid query string parameters: Expected 'in_tree' parameter to be a format of uuid. Got: \(text)")
                }
                group.inTree = uuid.lowercased()
            }
            groups.append(group)
        }
        // `same_subtree` (1.36): sets of suffixes; resourceless groups only there.
        var sameSubtrees: [Set<String>] = []
        for value in sameSubtree {
            let set = Set(value.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) })
            if set.contains("") {
                throw APIFault(.badRequest, "Empty string (unsuffixed group) can not be specified in `same_subtree` ")
            }
            sameSubtrees.append(set)
        }
        if version >= Microversion(1, 36) {
            let resourceless = groups.filter { $0.resources.isEmpty }.map(\.suffix)
            let named = sameSubtrees.reduce(into: Set<String>()) { $0.formUnion($1) }
            if resourceless.count == groups.count {
                throw APIFault(.badRequest, "There must be at least one resources or resources[$S] parameter.")
            }
            let loose = resourceless.filter { !named.contains($0) }
            if !loose.isEmpty {
                throw APIFault(.badRequest, "Resourceless suffixed group request should be specified in `same_subtree` query param: bad group(s) - "
                               + pythonList(loose) + ".")
            }
            let unknown = named.filter { !suffixes.contains($0) }.sorted()
            if !unknown.isEmpty {
                throw APIFault(.badRequest, "Real suffixes should be specified in `same_subtree`: \(pythonList(unknown)) not found in \(pythonList(suffixes)).")
            }
        } else {
            let traitOrphans = groups.filter { !$0.required.isEmpty && $0.resources.isEmpty }.map { "required" + $0.suffix }
            if !traitOrphans.isEmpty {
                throw APIFault(.badRequest, "All traits parameters must be associated with resources.  Found the following orphaned traits keys: "
                               + traitOrphans.joined(separator: ", "))
            }
            let memberOrphans = groups.filter { $0.resources.isEmpty && (!$0.memberOf.isEmpty || !$0.forbiddenAggregates.isEmpty) }
                .map { "member_of" + $0.suffix }
            if !memberOrphans.isEmpty {
                throw APIFault(.badRequest, "All member_of parameters must be associated with resources. Found the following orphaned member_of keys: "
                               + memberOrphans.joined(separator: ", "))
            }
            if groups.contains(where: { $0.resources.isEmpty }) { throw APIFault(.badRequest, "All request groups must specify resources.") }
            if groups.isEmpty { throw APIFault(.badRequest, "At least one request group (`resources` or `resources{$S}`) is required.") }
        }
        if version >= Microversion(1, 22) {
            let conflicting = groups.flatMap { group in
                conflicts(group.required, group.forbidden).map { "required\(group.suffix): (\($0.sorted().joined(separator: ", ")))" }
            }.sorted()
            if !conflicting.isEmpty {
                throw APIFault(.badRequest, "Conflicting required and forbidden traits found in the following traits keys: "
                               + conflicting.joined(separator: ", "))
            }
        }
        if policy == nil, groups.filter(\.sameProvider).count > 1 {
            throw APIFault(.badRequest, "The \"group_policy\" parameter is required when specifying more than one \"resources{N}\" parameter.")
        }
        var result = CandidateRequest(groups: groups.sorted { $0.suffix < $1.suffix }, groupPolicy: policy, limit: limit,
                                      nested: version >= Microversion(1, 29))
        if rootRequired.count > 1 { throw APIFault(.badRequest, "Query parameter 'root_required' may be specified only once.") }
        if let value = rootRequired.first {
            // No any-of syntax here: one trait per entry.
            let (required, forbidden) = try traits([value], min(version, Microversion(1, 38)), name: "root_required")
            let names = Set(required.flatMap { $0 })
            if !names.isDisjoint(with: forbidden) {
                throw APIFault(.badRequest, "Conflicting required and forbidden traits found in root_required: "
                               + names.intersection(forbidden).sorted().joined(separator: ", "))
            }
            result.rootRequired = names
            result.rootForbidden = forbidden
        }
        result.sameSubtrees = sameSubtrees
        return result
    }

    /// A list as Python prints it in Placement's messages: `['a', 'b']`.
    static func pythonList(_ items: [String]) -> String {
        "[" + items.map { "'\($0)'" }.joined(separator: ", ") + "]"
    }

    static func candidatesJSON(_ result: CandidateResult, request: CandidateRequest, _ version: Microversion) -> JSON {
        let requests: [JSON] = result.allocationRequests.map { candidate in
            let allocation = candidate.allocations
            if version >= Microversion(1, 12) {
                var object: [String: JSON] = ["allocations": .object(allocation.mapValues { ["resources": .object($0.mapValues(JSON.int))] })]
                if version >= Microversion(1, 34) { object["mappings"] = .object(candidate.mappings.mapValues { .array($0.map(JSON.string)) }) }
                return .object(object)
            }
            return ["allocations": .array(allocation.keys.sorted().map { uuid in
                ["resource_provider": ["uuid": .string(uuid)], "resources": .object(allocation[uuid]!.mapValues(JSON.int))]
            })]
        }
        let requested = Set(request.groups.flatMap(\.resources.keys))
        let summaries = result.summaries.mapValues { summary -> JSON in
            var resources: [String: JSON] = [:]
            for (resourceClass, numbers) in summary.resources where version >= Microversion(1, 27) || requested.contains(resourceClass) {
                resources[resourceClass] = ["capacity": .int(numbers.capacity), "used": .int(numbers.used)]
            }
            var object: [String: JSON] = ["resources": .object(resources)]
            if version >= Microversion(1, 17) { object["traits"] = .array(summary.traits.map(JSON.string)) }
            if version >= Microversion(1, 29) {
                object["parent_provider_uuid"] = summary.parentUUID.map(JSON.string) ?? .null
                object["root_provider_uuid"] = .string(summary.rootUUID)
            }
            return .object(object)
        }
        return ["allocation_requests": .array(requests), "provider_summaries": .object(summaries)]
    }
}
