import Foundation
import Hummingbird
import Identity
import PetrelHTTP

extension KeystoneSchemas {
    // MARK: policies (keystone/policy/schema.py)

    static let policyProperties: [(String, Schema)] = [("blob", .string()), ("type", .string(maxLength: 255))]
    static let policyCreate = wrapped("policy", .object(policyProperties, required: ["blob", "type"], additional: true))
    static let policyUpdate = wrapped("policy", .object(policyProperties, additional: true, minProperties: 1))
    static let policiesQuery = QuerySchema(.object([("type", .string())], additional: true), reading: .firstValues)
}

/// `/v3/policies`: policy blobs Keystone stores for other services (opaque to it, and to
/// Petrel), and OS-ENDPOINT-POLICY, which associates them with endpoints, services, or
/// services in a region.
extension KeystoneAPI {
    static let policyColumns: Set<String> = ["id", "blob", "type", "links"]

    func policyJSON(_ row: StoredPolicy) -> JSON {
        var object = JSON.parse(Array(row.extra.utf8))?.objectValue ?? [:]
        object["id"] = .string(row.id)
        object["blob"] = .string(row.blob)
        object["type"] = .string(row.type)
        object["links"] = ["self": link("/v3/policies/\(row.id)")]
        return .object(object)
    }

    func registerPolicies(on router: APIRoutes) {
        router.get("/v3/policies", query: KeystoneSchemas.policiesQuery) { request, context in
            try context.enforce("identity:list_policies")
            var filters: [(String, any Encodable & Sendable)] = []
            if let type = request.query("type") { filters.append(("type", type)) }
            let rows = try await service.policies.list(where: filters, orderBy: "created_at")
            return respond(.ok, ["policies": .array(rows.map(policyJSON)), "links": listLinks(request)])
        }
        router.post("/v3/policies", body: .json(KeystoneSchemas.policyCreate, style: .nova)) { request, context in
            try context.enforce("identity:create_policy")
            let fields = try await resource(request, context, "policy")
            let row = StoredPolicy(id: IdentityService.makeID(), type: fields.object["type"]?.stringValue ?? "",
                                   blob: fields.object["blob"]?.stringValue ?? "",
                                   extra: extraJSON(fields.extra(excluding: Self.policyColumns)), createdAt: IdentityService.timestamp())
            try await service.policies.create(row)
            return respond(.created, ["policy": policyJSON(row)])
        }
        router.get("/v3/policies/:policy_id") { request, context in
            try context.enforce("identity:get_policy")
            return respond(.ok, ["policy": policyJSON(try await service.policies.get(try context.parameters.require("policy_id")))])
        }
        router.patch("/v3/policies/:policy_id", body: .json(KeystoneSchemas.policyUpdate, style: .nova)) { request, context in
            try context.enforce("identity:update_policy")
            let id = try context.parameters.require("policy_id")
            let fields = try await resource(request, context, "policy")
            if let given = fields.object["id"], given != .string(id) { throw IdentityError.badRequest("Cannot change policy ID") }
            var row = try await service.policies.get(id)
            if let type = fields.object["type"]?.stringValue { row.type = type }
            if let blob = fields.object["blob"]?.stringValue { row.blob = blob }
            row.extra = extraJSON(fields.extra(excluding: Self.policyColumns), over: row.extra)
            let updated = row
            try await service.policies.update(updated, id: id)
            return respond(.ok, ["policy": policyJSON(updated)])
        }
        router.delete("/v3/policies/:policy_id") { request, context in
            try context.enforce("identity:delete_policy")
            try await service.deletePolicy(try context.parameters.require("policy_id"))
            return noContent()
        }

        // MARK: OS-ENDPOINT-POLICY
        let base = "/v3/policies/:policy_id/OS-ENDPOINT-POLICY"
        let associations: [(path: String, kind: String, target: @Sendable (Parameters) throws -> IdentityService.PolicyTarget)] = [
            ("/endpoints/:endpoint_id", "endpoint", { .endpoint(try $0.require("endpoint_id")) }),
            ("/services/:service_id", "service", { .service(try $0.require("service_id")) }),
            ("/services/:service_id/regions/:region_id", "region_and_service",
             { .serviceInRegion(service: try $0.require("service_id"), region: try $0.require("region_id")) }),
        ]
        for (path, kind, target) in associations {
            router.put(RouterPath(base + path), body: .none) { _, context in
                try context.enforce("identity:create_policy_association_for_\(kind)")
                try await service.associatePolicy(try context.parameters.require("policy_id"), with: try target(context.parameters))
                return noContent()
            }
            router.get(RouterPath(base + path)) { _, context in
                try context.enforce("identity:check_policy_association_for_\(kind)")
                guard try await service.isPolicyAssociated(try context.parameters.require("policy_id"), with: try target(context.parameters))
                else { throw IdentityError.missing("Could not find policy association.") }
                return noContent()
            }
            router.delete(RouterPath(base + path)) { _, context in
                try context.enforce("identity:delete_policy_association_for_\(kind)")
                try await service.dissociatePolicy(try context.parameters.require("policy_id"), from: try target(context.parameters))
                return noContent()
            }
        }
        router.get(RouterPath(base + "/endpoints")) { request, context in
            try context.enforce("identity:list_endpoints_for_policy")
            let endpoints = try await service.endpoints(forPolicy: try context.parameters.require("policy_id"))
            return respond(.ok, ["endpoints": .array(endpoints.map(endpointJSON)), "links": listLinks(request)])
        }
        router.get("/v3/endpoints/:endpoint_id/OS-ENDPOINT-POLICY/policy") { _, context in
            try context.enforce("identity:get_policy_for_endpoint")
            return respond(.ok, ["policy": policyJSON(try await service.policy(forEndpoint: try context.parameters.require("endpoint_id")))])
        }
    }
}
