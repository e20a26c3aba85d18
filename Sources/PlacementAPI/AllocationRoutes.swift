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
        return .object(properties, required: required)
    }

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
                               userID: body["user_id"]?.stringValue ?? PlacementService.incompleteConsumer, consumerGeneration: generation)
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
            _ = try Self.require(request, 1, 9)
            try Self.checkQuery(request, allowed: ["project_id", "user_id"])
            guard let project = request.query("project_id") else {
                _ = try context.caller()
                throw APIFault(.badRequest, "Invalid query string parameters: 'project_id' is a required property")
            }
            try context.enforce("placement:usages", target: ["project_id": project])
            let usages = try await Self.run { try await service.totalUsages(projectID: project, userID: request.query("user_id")) }
            return Self.answer(request, ["usages": .object(usages.mapValues(JSON.int))])
        }
        routes.get("allocation_candidates") { request, context in
            let version = try Self.require(request, 1, 10)
            try context.enforce("placement:allocation_candidates:list")
            let candidateRequest = try Self.candidateRequest(request, version)
            let result = try await Self.run { try await service.allocationCandidates(candidateRequest) }
            return Self.answer(request, Self.candidatesJSON(result, request: candidateRequest, version))
        }
    }

    static func candidateRequest(_ request: Request, _ version: Microversion) throws -> CandidateRequest {
        var groups: [String: RequestGroup] = [:]
        var limit: Int?, policy: String?
        for (name, value) in request.queryPairs {
            func group(_ prefix: String) -> String? {
                guard name.hasPrefix(prefix) else { return nil }
                let suffix = String(name.dropFirst(prefix.count))
                if suffix.isEmpty { return "" }
                guard version >= Microversion(1, 25), suffix.allSatisfy(\.isNumber) else { return nil }
                return suffix
            }
            if let suffix = group("resources") {
                groups[suffix, default: RequestGroup(suffix: suffix)].resources = try resources(value)
            } else if version >= Microversion(1, 17), let suffix = group("required") {
                let (required, forbidden) = try traits([value], version)
                groups[suffix, default: RequestGroup(suffix: suffix)].required.formUnion(required)
                groups[suffix, default: RequestGroup(suffix: suffix)].forbidden.formUnion(forbidden)
            } else if version >= Microversion(1, 21), let suffix = group("member_of") {
                let existing = groups[suffix]?.memberOf ?? []
                let parsed = try memberOf([value], version)
                if !existing.isEmpty, version < Microversion(1, 24) {
                    throw APIFault(.badRequest, "Multiple member_of parameters are not supported until microversion 1.24.")
                }
                groups[suffix, default: RequestGroup(suffix: suffix)].memberOf = existing + parsed
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
            } else {
                throw APIFault(.badRequest, "Invalid query string parameters: Additional properties are not allowed ('\(name)' was unexpected)")
            }
        }
        if version < Microversion(1, 25), groups[""]?.resources.isEmpty ?? true {
            throw APIFault(.badRequest, "Invalid query string parameters: 'resources' is a required property")
        }
        if groups.values.allSatisfy({ $0.resources.isEmpty }) {
            throw APIFault(.badRequest, "At least one request group (`resources` or `resources{$S}`) is required.")
        }
        for group in groups.values where !group.suffix.isEmpty && group.resources.isEmpty {
            throw APIFault(.badRequest, "Resources required for suffixed request group \(group.suffix): a group with required traits or member_of has resources too.")
        }
        if groups.keys.filter({ !$0.isEmpty }).count > 1, policy == nil {
            throw APIFault(.badRequest, "The \"group_policy\" parameter is required when specifying more than one \"resources{N}\" parameter.")
        }
        return CandidateRequest(groups: groups.values.sorted { $0.suffix < $1.suffix }, groupPolicy: policy, limit: limit)
    }

    static func candidatesJSON(_ result: CandidateResult, request: CandidateRequest, _ version: Microversion) -> JSON {
        let requests: [JSON] = result.allocationRequests.map { allocation in
            if version >= Microversion(1, 12) {
                return ["allocations": .object(allocation.mapValues { ["resources": .object($0.mapValues(JSON.int))] })]
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
            return .object(object)
        }
        return ["allocation_requests": .array(requests), "provider_summaries": .object(summaries)]
    }
}
