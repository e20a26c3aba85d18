import Foundation
import HTTPTypes
import Hummingbird
import PetrelHTTP
import Placement


extension PlacementAPI {
    static let uuidRule = Schema.Rule(regex: "^[0-9a-fA-F-]{36}$")
    static let classRule = Schema.Rule(regex: "^[A-Z0-9_]+$")
    static let maxInt = 2_147_483_647.0

    static func providerJSON(_ provider: Provider, _ version: Microversion) -> JSON {
        let base = "/placement/resource_providers/\(provider.uuid)"
        var links: [JSON] = [["rel": "self", "href": .string(base)], ["rel": "inventories", "href": .string(base + "/inventories")],
                             ["rel": "usages", "href": .string(base + "/usages")]]
        if version >= Microversion(1, 1) { links.append(["rel": "aggregates", "href": .string(base + "/aggregates")]) }
        if version >= Microversion(1, 6) { links.append(["rel": "traits", "href": .string(base + "/traits")]) }
        if version >= Microversion(1, 11) { links.append(["rel": "allocations", "href": .string(base + "/allocations")]) }
        var object: [String: JSON] = ["uuid": .string(provider.uuid), "name": .string(provider.name), "generation": .int(provider.generation),
                                      "links": .array(links)]
        if version >= Microversion(1, 14) {
            object["parent_provider_uuid"] = provider.parentUUID.map(JSON.string) ?? .null
            object["root_provider_uuid"] = .string(provider.rootUUID)
        }
        return .object(object)
    }

    static func providerSchema(_ version: Microversion, create: Bool) -> Schema {
        var properties: [(String, Schema)] = [("name", .string(minLength: 1, maxLength: 200))]
        if create { properties.append(("uuid", .string(pattern: uuidRule))) }
        if version >= Microversion(1, 14) {
            properties.append(("parent_provider_uuid", Schema(types: [.string, .null], pattern: uuidRule)))
        }
        return .object(properties, required: ["name"])
    }

    /// Refuses query parameters this route does not take at this version (Placement's 400).
    static func checkQuery(_ request: Request, allowed: Set<String>) throws {
        let unknown = Set(request.queryPairs.map(\.name)).subtracting(allowed)
        if !unknown.isEmpty {
            throw APIFault(.badRequest, "Invalid query string parameters: Additional properties are not allowed ('\(unknown.sorted().joined(separator: "', '"))' \(unknown.count == 1 ? "was" : "were") unexpected)")
        }
    }

    /// `VCPU:2,MEMORY_MB:512` → classes and amounts (400 when malformed).
    static func resources(_ text: String) throws -> [String: Int] {
        var result: [String: Int] = [:]
        guard !text.isEmpty else {
            throw APIFault(.badRequest, "Badly formed resources parameter. Expected resources query string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: empty string.")
        }
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            guard pieces.count == 2, !pieces[0].isEmpty, let amount = Int(pieces[1]), amount >= 1 else {
                throw APIFault(.badRequest, "Badly formed resources parameter. Expected resources query string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: \(text).")
            }
            let name = String(pieces[0])
            if result[name] != nil {
                throw APIFault(.badRequest, "Badly formed resources parameter. Expected resources query string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: \(text).")
            }
            result[name] = amount
        }
        return result
    }

    /// `member_of` values: one aggregate or `in:a,b` (any of them) each, several parameters from
    /// 1.24; from 1.32 `!a` and `!in:a,b` (none of them).
    static func memberOf(_ values: [String], _ version: Microversion, suffix: String = "") throws
        -> (required: [Set<String>], forbidden: Set<String>) {
        if values.count > 1, version < Microversion(1, 24) {
            throw APIFault(.badRequest, "Multiple member_of\(suffix) parameters are not supported")
        }
        var required: [Set<String>] = [], forbidden = Set<String>()
        for value in values {
            if value.contains(","), !value.hasPrefix("in:"), !value.hasPrefix("!in:") {
                throw APIFault(.badRequest, "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' keyword using the valid microversion. Got: \(value)")
            }
            let negative = value.hasPrefix("!")
            var list = negative ? String(value.dropFirst()) : value
            if list.hasPrefix("in:") { list = String(list.dropFirst(3)) }
            let uuids = list.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            for uuid in uuids where !uuidRule.test(uuid) {
                throw APIFault(.badRequest, "Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). Got: \(uuid)")
            }
            if negative {
                guard version >= Microversion(1, 32) else {
                    throw APIFault(.badRequest, "Forbidden member_of\(suffix) parameters are not supported in the specified microversion")
                }
                forbidden.formUnion(uuids.map { $0.lowercased() })
            } else {
                required.append(Set(uuids.map { $0.lowercased() }))
            }
        }
        return (required, forbidden)
    }

    /// `required` values: `A,!B` (forbidden traits from 1.22); from 1.39 also `in:A,B` (any of
    /// them) and repeated parameters, before which the last one counts. Each entry of
    /// `required` is a set of which one trait must be there.
    static func traits(_ values: [String], _ version: Microversion, name: String = "required") throws
        -> (required: [Set<String>], forbidden: Set<String>) {
        let anyOf = version >= Microversion(1, 39)
        let allowForbidden = version >= Microversion(1, 22)
        var required: [Set<String>] = [], forbidden = Set<String>()
        for value in anyOf ? values : Array(values.suffix(1)) {
            if value.hasPrefix("in:") {
                guard anyOf else {
                    throw APIFault(.badRequest, "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since microversion 1.39. Got: \(value)")
                }
                let names = Set(value.dropFirst(3).split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) })
                if names.contains("") {
                    throw APIFault(.badRequest, "Invalid query string parameters: Expected '\(name)' parameter value of the form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: \(value)")
                }
                if names.contains(where: { $0.hasPrefix("!") }) {
                    throw APIFault(.badRequest, "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not support forbidden traits. Got: \(value)")
                }
                required.append(names)
                continue
            }
            let names = value.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let negative = names.filter { $0.hasPrefix("!") }.map { String($0.drop { $0 == "!" }) }
            if names.contains("") || negative.contains("") {
                throw APIFault(.badRequest, "Invalid query string parameters: Expected '\(name)' parameter value of the form: "
                               + (allowForbidden ? "HW_CPU_X86_VMX,!CUSTOM_MAGIC" : "HW_CPU_X86_VMX,CUSTOM_MAGIC") + ". Got an empty trait in: \(value)")
            }
            if !negative.isEmpty, !allowForbidden {
                throw APIFault(.badRequest, "Invalid query string parameters: Expected '\(name)' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: \(value)")
            }
            required += names.filter { !$0.hasPrefix("!") }.map { [$0] }
            forbidden.formUnion(negative)
        }
        return (required, forbidden)
    }

    /// The entries of `required` that forbidden traits make impossible (every trait of the entry forbidden).
    static func conflicts(_ required: [Set<String>], _ forbidden: Set<String>) -> [Set<String>] {
        required.filter { $0.isSubset(of: forbidden) }
    }

    func registerProviders(on routes: APIRoutes) {
        routes.get("resource_providers") { request, context in
            try context.enforce("placement:resource_providers:list")
            let version = Self.version(request)
            var allowed: Set<String> = ["name", "uuid"]
            if version >= Microversion(1, 3) { allowed.insert("member_of") }
            if version >= Microversion(1, 4) { allowed.insert("resources") }
            if version >= Microversion(1, 14) { allowed.insert("in_tree") }
            if version >= Microversion(1, 18) { allowed.insert("required") }
            try Self.checkQuery(request, allowed: allowed)
            var filter = ProviderFilter()
            filter.name = request.query("name")
            filter.uuid = request.query("uuid")
            if let uuid = filter.uuid, !Self.uuidRule.test(uuid) {
                throw APIFault(.badRequest, "Invalid query string parameters: '\(uuid)' is not a 'uuid'")
            }
            (filter.memberOf, filter.forbiddenAggregates) = try Self.memberOf(request.queryList("member_of"), version)
            if let resources = request.query("resources") {
                filter.resources = try Self.resources(resources)
                try await Self.run { try await service.checkClasses(Set(filter.resources.keys)) }
            }
            filter.inTree = request.query("in_tree")
            let traits = try Self.traits(request.queryList("required"), version)
            let impossible = Self.conflicts(traits.required, traits.forbidden)
            if !impossible.isEmpty {
                throw APIFault(.badRequest, "Conflicting required and forbidden traits found in the following traits keys: required: ("
                               + impossible.map { $0.sorted().joined(separator: ", ") }.joined(separator: "), (") + ")")
            }
            if request.query("required") != nil {
                try await Self.run { try await service.checkTraits(traits.forbidden.union(traits.required.flatMap { $0 })) }
            }
            (filter.required, filter.forbidden) = traits
            let providers = try await Self.run { try await service.providers(filter) }
            return Self.answer(request, ["resource_providers": .array(providers.map { Self.providerJSON($0, version) })],
                               modified: providers.map(\.updatedAt).max())
        }
        routes.post("resource_providers", body: Self.body { Self.providerSchema($0, create: true) }) { request, context in
            try context.enforce("placement:resource_providers:create")
            let version = Self.version(request)
            let body = try await environment.body(request, context)
            let provider = try await Self.run {
                try await service.createProvider(name: body["name"]!.stringValue!, uuid: body["uuid"]?.stringValue?.lowercased(),
                                                 parent: body["parent_provider_uuid"]?.stringValue?.lowercased())
            }
            let location: HTTPFields = [.location: "/placement/resource_providers/\(provider.uuid)"]
            if version >= Microversion(1, 20) { return respond(.ok, Self.providerJSON(provider, version), headers: location) }
            var response = noContent(.created)
            response.headers[.location] = "/placement/resource_providers/\(provider.uuid)"
            return response
        }
        routes.get("resource_providers/:uuid") { request, context in
            try context.enforce("placement:resource_providers:show")
            let provider = try await Self.run { try await service.provider(try context.parameters.require("uuid")) }
            return Self.answer(request, Self.providerJSON(provider, Self.version(request)), modified: provider.updatedAt)
        }
        routes.put("resource_providers/:uuid", body: Self.body { Self.providerSchema($0, create: false) }) { request, context in
            try context.enforce("placement:resource_providers:update")
            let version = Self.version(request)
            let body = try await environment.body(request, context)
            let parent: String?? = body.keys.contains("parent_provider_uuid") ? .some(body["parent_provider_uuid"]?.stringValue?.lowercased()) : .none
            let provider = try await Self.run {
                try await service.updateProvider(try context.parameters.require("uuid"), name: body["name"]!.stringValue!, parent: parent,
                                                 reparent: version >= Microversion(1, 37))
            }
            return respond(.ok, Self.providerJSON(provider, version))
        }
        routes.delete("resource_providers/:uuid") { _, context in
            try context.enforce("placement:resource_providers:delete")
            try await Self.run { try await service.deleteProvider(try context.parameters.require("uuid")) }
            return noContent()
        }
    }

    // MARK: inventories

    static func inventoryJSON(_ row: Inventory) -> JSON {
        ["total": .int(row.total), "reserved": .int(row.reserved), "min_unit": .int(row.minUnit), "max_unit": .int(row.maxUnit),
         "step_size": .int(row.stepSize), "allocation_ratio": .number(row.allocationRatio)]
    }

    static let inventoryFields: [(String, Schema)] = [
        ("resource_provider_generation", .integer()), ("total", .integer(minimum: 1, maximum: maxInt)),
        ("reserved", .integer(minimum: 0, maximum: maxInt)), ("min_unit", .integer(minimum: 1, maximum: maxInt)),
        ("max_unit", .integer(minimum: 1, maximum: maxInt)), ("step_size", .integer(minimum: 1, maximum: maxInt)),
        ("allocation_ratio", Schema(types: [.number], maximum: 3.40282e38)),
    ]

    static func inventory(_ object: [String: JSON], provider: String, resourceClass: String) -> Inventory {
        func int(_ key: String, _ fallback: Int) -> Int { object[key]?.numberValue.map { Int($0) } ?? fallback }
        return Inventory(providerUUID: provider, resourceClass: resourceClass, total: int("total", 0), reserved: int("reserved", 0),
                            minUnit: int("min_unit", 1), maxUnit: int("max_unit", Int(maxInt)), stepSize: int("step_size", 1),
                            allocationRatio: object["allocation_ratio"]?.numberValue ?? 1.0)
    }

    /// A provider's whole inventory at its generation (`PUT …/inventories`, each provider of `POST /reshaper`).
    static let inventoriesSchema = Schema.object([("resource_provider_generation", .integer()),
                                                  ("inventories", Schema(types: [.object], keyRule: (classRule,
                                                      .object(inventoryFields, required: ["total"]))))],
                                                 required: ["resource_provider_generation", "inventories"])

    static func generation(_ body: [String: JSON]) -> Int { Int(body["resource_provider_generation"]?.numberValue ?? -1) }

    func registerInventories(on routes: APIRoutes) {
        let path = "resource_providers/:uuid/inventories"
        routes.get(RouterPath(path)) { request, context in
            try context.enforce("placement:resource_providers:inventories:list")
            let (generation, inventories) = try await Self.run { try await service.inventories(try context.parameters.require("uuid")) }
            return Self.answer(request, ["inventories": .object(inventories.mapValues(Self.inventoryJSON)),
                                         "resource_provider_generation": .int(generation)])
        }
        let putAll = Self.inventoriesSchema
        routes.put(RouterPath(path), body: .json(putAll, style: .placement)) { request, context in
            try context.enforce("placement:resource_providers:inventories:update")
            let uuid = try context.parameters.require("uuid")
            let body = try await environment.body(request, context)
            let rows = (body["inventories"]?.objectValue ?? [:]).map { Self.inventory($0.value.objectValue ?? [:], provider: uuid, resourceClass: $0.key) }
            let (generation, inventories) = try await Self.run {
                try await service.setInventories(uuid, generation: Self.generation(body), rows,
                                                 reservedMayEqualTotal: Self.version(request) >= Microversion(1, 26))
            }
            return respond(.ok, ["inventories": .object(inventories.mapValues(Self.inventoryJSON)), "resource_provider_generation": .int(generation)])
        }
        routes.post(RouterPath(path), body: .json(.object(Self.inventoryFields + [("resource_class", .string(pattern: Self.classRule))],
                                                          required: ["total", "resource_class"]), style: .placement)) { request, context in
            try context.enforce("placement:resource_providers:inventories:create")
            let uuid = try context.parameters.require("uuid")
            let body = try await environment.body(request, context)
            let row = Self.inventory(body, provider: uuid, resourceClass: body["resource_class"]!.stringValue!)
            let (generation, inventory) = try await Self.run {
                let current = body["resource_provider_generation"] == nil ? try await service.provider(uuid).generation : Self.generation(body)
                return try await service.setInventory(row, generation: current, create: true,
                                                      reservedMayEqualTotal: Self.version(request) >= Microversion(1, 26))
            }
            var json = Self.inventoryJSON(inventory).objectValue!
            json["resource_provider_generation"] = .int(generation)
            return respond(.created, .object(json), headers: [.location: "/placement/resource_providers/\(uuid)/inventories/\(row.resourceClass)"])
        }
        routes.delete(RouterPath(path)) { request, context in
            _ = try Self.require(request, 1, 5)
            try context.enforce("placement:resource_providers:inventories:delete")
            try await Self.run { try await service.deleteInventories(try context.parameters.require("uuid")) }
            return noContent()
        }
        routes.get(RouterPath(path + "/:resource_class")) { request, context in
            try context.enforce("placement:resource_providers:inventories:show")
            let resourceClass = try context.parameters.require("resource_class")
            let (generation, inventories) = try await Self.run { try await service.inventories(try context.parameters.require("uuid")) }
            guard let row = inventories[resourceClass] else {
                throw APIFault(.notFound, "No inventory of class \(resourceClass) for \(try context.parameters.require("uuid"))")
            }
            var json = Self.inventoryJSON(row).objectValue!
            json["resource_provider_generation"] = .int(generation)
            return Self.answer(request, .object(json))
        }
        routes.put(RouterPath(path + "/:resource_class"), body: .json(.object(Self.inventoryFields, required: ["total", "resource_provider_generation"]),
                                                                      style: .placement)) { request, context in
            try context.enforce("placement:resource_providers:inventories:update")
            let uuid = try context.parameters.require("uuid")
            let body = try await environment.body(request, context)
            let row = Self.inventory(body, provider: uuid, resourceClass: try context.parameters.require("resource_class"))
            let (generation, inventory) = try await Self.run {
                try await service.setInventory(row, generation: Self.generation(body), create: false,
                                               reservedMayEqualTotal: Self.version(request) >= Microversion(1, 26))
            }
            var json = Self.inventoryJSON(inventory).objectValue!
            json["resource_provider_generation"] = .int(generation)
            return respond(.ok, .object(json))
        }
        routes.delete(RouterPath(path + "/:resource_class")) { _, context in
            try context.enforce("placement:resource_providers:inventories:delete")
            try await Self.run {
                try await service.deleteInventory(try context.parameters.require("uuid"), resourceClass: try context.parameters.require("resource_class"))
            }
            return noContent()
        }
    }

    // MARK: usages, allocations, aggregates, traits of a provider

    func registerProviderDetails(on routes: APIRoutes) {
        routes.get("resource_providers/:uuid/usages") { request, context in
            try context.enforce("placement:resource_providers:usages")
            let (generation, usages) = try await Self.run { try await service.providerUsages(try context.parameters.require("uuid")) }
            return Self.answer(request, ["usages": .object(usages.mapValues(JSON.int)), "resource_provider_generation": .int(generation)])
        }
        routes.get("resource_providers/:uuid/allocations") { request, context in
            try context.enforce("placement:resource_providers:allocations:list")
            let (generation, allocations) = try await Self.run { try await service.providerAllocations(try context.parameters.require("uuid")) }
            return Self.answer(request, ["allocations": .object(allocations.mapValues { ["resources": .object($0.mapValues(JSON.int))] }),
                                         "resource_provider_generation": .int(generation)])
        }
        routes.get("resource_providers/:uuid/aggregates") { request, context in
            let version = try Self.require(request, 1, 1)
            try context.enforce("placement:resource_providers:aggregates:list")
            let (generation, aggregates) = try await Self.run { try await service.providerAggregates(try context.parameters.require("uuid")) }
            var json: [String: JSON] = ["aggregates": .array(aggregates.map(JSON.string))]
            if version >= Microversion(1, 19) { json["resource_provider_generation"] = .int(generation) }
            return Self.answer(request, .object(json))
        }
        let list = Schema.array(.string(pattern: Self.uuidRule), unique: true)
        routes.put("resource_providers/:uuid/aggregates", body: Self.body { version in
            version >= Microversion(1, 19)
                ? .object([("aggregates", list), ("resource_provider_generation", .integer())], required: ["aggregates", "resource_provider_generation"])
                : list
        }) { request, context in
            let version = try Self.require(request, 1, 1)
            try context.enforce("placement:resource_providers:aggregates:update")
            let body = try await json(request, context)
            let aggregates = (version >= Microversion(1, 19) ? body["aggregates"]?.arrayValue : body.arrayValue) ?? []
            let generation = version >= Microversion(1, 19) ? body["resource_provider_generation"]?.numberValue.map { Int($0) } : nil
            let (next, stored) = try await Self.run {
                try await service.setProviderAggregates(try context.parameters.require("uuid"), generation: generation,
                                                        aggregates: Set(aggregates.compactMap { $0.stringValue?.lowercased() }))
            }
            var json: [String: JSON] = ["aggregates": .array(stored.map(JSON.string))]
            if version >= Microversion(1, 19) { json["resource_provider_generation"] = .int(next) }
            return respond(.ok, .object(json))
        }
        routes.get("resource_providers/:uuid/traits") { request, context in
            _ = try Self.require(request, 1, 6)
            try context.enforce("placement:resource_providers:traits:list")
            let (generation, traits) = try await Self.run { try await service.providerTraits(try context.parameters.require("uuid")) }
            return Self.answer(request, ["traits": .array(traits.map(JSON.string)), "resource_provider_generation": .int(generation)])
        }
        let traitsBody = Schema.object([("traits", .array(.string(pattern: Self.classRule), unique: true)),
                                        ("resource_provider_generation", .integer())], required: ["traits", "resource_provider_generation"])
        routes.put("resource_providers/:uuid/traits", body: .json(traitsBody, style: .placement)) { request, context in
            _ = try Self.require(request, 1, 6)
            try context.enforce("placement:resource_providers:traits:update")
            let body = try await environment.body(request, context)
            let (generation, traits) = try await Self.run {
                try await service.setProviderTraits(try context.parameters.require("uuid"), generation: Self.generation(body),
                                                    traits: Set((body["traits"]?.arrayValue ?? []).compactMap(\.stringValue)))
            }
            return respond(.ok, ["traits": .array(traits.map(JSON.string)), "resource_provider_generation": .int(generation)])
        }
        routes.delete("resource_providers/:uuid/traits") { request, context in
            _ = try Self.require(request, 1, 6)
            try context.enforce("placement:resource_providers:traits:delete")
            try await Self.run { try await service.deleteProviderTraits(try context.parameters.require("uuid")) }
            return noContent()
        }
    }
}
