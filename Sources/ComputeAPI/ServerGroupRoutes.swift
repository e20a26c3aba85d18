import Compute
import Foundation
import HTTPTypes
import Hummingbird
import PetrelCore
import PetrelHTTP

/// `os-server-groups`, as Nova's: `policies` (a list of one) before 2.64, `policy` and `rules`
/// from it; the soft policies from 2.15; the owner from 2.13.
extension ComputeAPI {
    static let serverGroupPolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:os-server-groups:create", ownerMember, "Create a server group.", ["POST /compute/v2.1/os-server-groups"]),
        PolicyDefault("os_compute_api:os-server-groups:delete", ownerMember, "Delete a server group.",
                      ["DELETE /compute/v2.1/os-server-groups/{server_group_id}"]),
        PolicyDefault("os_compute_api:os-server-groups:index", ownerReader, "List one's project's server groups.",
                      ["GET /compute/v2.1/os-server-groups"]),
        PolicyDefault("os_compute_api:os-server-groups:index:all_projects", "rule:context_is_admin", "List every project's server groups.",
                      ["GET /compute/v2.1/os-server-groups?all_projects=true"]),
        PolicyDefault("os_compute_api:os-server-groups:show", ownerReader, "Show a server group.",
                      ["GET /compute/v2.1/os-server-groups/{server_group_id}"]),
    ]

    var serverGroups: ServerGroups { ServerGroups(database: hosts.store.database, quotas: quotas) }

    static func serverGroupPolicyNames(_ version: Microversion) -> [JSON] {
        version >= Microversion(2, 15) ? ServerGroups.policies.map(JSON.string) : ["affinity", "anti-affinity"]
    }

    static func serverGroupSchema(_ version: Microversion) -> Schema {
        let name = Schema.string(minLength: 1, maxLength: 255, check: NovaTypes.nameRule)
        let policy = Schema.choice(serverGroupPolicyNames(version), types: [.string])
        if version >= Microversion(2, 64) {
            let rules = Schema.object([("max_server_per_host", NovaTypes.positiveInteger)])
            return .object([("server_group", .object([("name", name), ("policy", policy), ("rules", rules)], required: ["name", "policy"]))],
                           required: ["server_group"])
        }
        return .object([("server_group", .object([("name", name), ("policies", .array(policy, minItems: 1, maxItems: 1, unique: true))],
                                                 required: ["name", "policies"]))], required: ["server_group"])
    }

    func serverGroupJSON(_ group: ServerGroup, _ version: Microversion) -> JSON {
        var object: [String: JSON] = ["id": .string(group.id), "name": .string(group.row.name), "members": .array(group.members.map(JSON.string))]
        if version >= Microversion(2, 64) {
            object["policy"] = .string(group.policy)
            object["rules"] = group.maxServerPerHost.map { ["max_server_per_host": .number(Double($0))] } ?? [:]
        } else {
            object["policies"] = [.string(group.policy)]
            object["metadata"] = [:]
        }
        if version >= Microversion(2, 13) {
            object["project_id"] = .string(group.row.projectID)
            object["user_id"] = .string(group.row.userID)
        }
        return .object(object)
    }

    func serverGroupCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let failure as ServerGroups.Failure {
            switch failure {
            case .notFound: throw APIFault(.notFound, failure.description)
            case .quota(let message): throw APIFault(.forbidden, message)
            case .badRequest(let message): throw APIFault(.badRequest, message)
            }
        }
    }

    func registerServerGroups(on v21: APIRoutes) {
        v21.post("os-server-groups", body: Self.body { Self.serverGroupSchema($0) }) { request, context in
            let (caller, version) = try await authenticated(request, context)
            let who = try serverCaller(caller, context)
            try context.enforce("os_compute_api:os-server-groups:create", target: ["project_id": who.projectID])
            let fields = try await environment.body(request, context)["server_group"]?.objectValue ?? [:]
            let name = fields["name"]?.stringValue ?? ""
            let policy = version >= Microversion(2, 64) ? fields["policy"]?.stringValue : fields["policies"]?.arrayValue?.first?.stringValue
            var maxPerHost: Int?
            if let rules = fields["rules"]?.objectValue, !rules.isEmpty {
                guard policy == "anti-affinity" else { throw APIFault(.badRequest, "Only anti-affinity policy supports rules.") }
                maxPerHost = try rules["max_server_per_host"].flatMap { try Self.integer($0, "max_server_per_host", minimum: 1) }
            }
            let group = try await serverGroupCall {
                try await serverGroups.create(name: name, policy: policy ?? "", maxServerPerHost: maxPerHost, by: who)
            }
            return answer(.ok, ["server_group": serverGroupJSON(group, version)], version)
        }
        v21.get("os-server-groups", query: NovaQuerySchemas.open) { request, context in
            let (caller, version) = try await authenticated(request, context)
            let who = try serverCaller(caller, context)
            try context.enforce("os_compute_api:os-server-groups:index", target: ["project_id": who.projectID])
            var allProjects = false
            if let text = request.query("all_projects"), try Self.novaBoolean(.string(text), field: "all_projects") {
                allProjects = try context.allows("os_compute_api:os-server-groups:index:all_projects")
            }
            var list = try await serverGroups.list(by: who, allProjects: allProjects)
            if let text = request.query("offset") {
                guard let offset = Int(text), offset >= 0 else { throw APIFault(.badRequest, "Invalid input for query parameters offset.") }
                list = Array(list.dropFirst(offset))
            }
            if let limit = try Paging.novaLimit(request) { list = Array(list.prefix(limit)) }
            return answer(.ok, ["server_groups": .array(list.map { serverGroupJSON($0, version) })], version)
        }
        v21.get("os-server-groups/:server_group_id", query: NovaQuerySchemas.open) { request, context in
            let (caller, version) = try await authenticated(request, context)
            let who = try serverCaller(caller, context)
            let group = try await serverGroupCall { try await serverGroups.get(try context.parameters.require("server_group_id"), by: who) }
            try context.enforce("os_compute_api:os-server-groups:show", target: ["project_id": group.row.projectID])
            return answer(.ok, ["server_group": serverGroupJSON(group, version)], version)
        }
        v21.delete("os-server-groups/:server_group_id") { request, context in
            let (caller, version) = try await authenticated(request, context)
            let who = try serverCaller(caller, context)
            let id = try context.parameters.require("server_group_id")
            let group = try await serverGroupCall { try await serverGroups.get(id, by: who) }
            try context.enforce("os_compute_api:os-server-groups:delete", target: ["project_id": group.row.projectID])
            try await serverGroupCall { try await serverGroups.delete(id, by: who) }
            return Response(status: .noContent, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }
    }
}
