import Compute
import Foundation
import Hosts
import Hummingbird
import PetrelCore
import PetrelHTTP

extension ComputeAPI {
    static let quotaPolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:os-quota-sets:show", "rule:context_is_admin or project_id:%(project_id)s",
                      "Show a project's quotas (its own, or any for an admin).", ["GET /compute/v2.1/os-quota-sets/{project_id}",
                                                                                   "GET /compute/v2.1/os-quota-sets/{project_id}/detail"]),
        PolicyDefault("os_compute_api:os-quota-sets:defaults", "@", "Show the default quotas.",
                      ["GET /compute/v2.1/os-quota-sets/{project_id}/defaults"]),
        PolicyDefault("os_compute_api:os-quota-sets:update", "rule:context_is_admin", "Change a project's quotas.",
                      ["PUT /compute/v2.1/os-quota-sets/{project_id}"]),
        PolicyDefault("os_compute_api:os-quota-sets:delete", "rule:context_is_admin", "Reset a project's quotas to the defaults.",
                      ["DELETE /compute/v2.1/os-quota-sets/{project_id}"]),
        PolicyDefault("os_compute_api:limits", "@", "Show one's own limits and usage.", ["GET /compute/v2.1/limits"]),
        PolicyDefault("os_compute_api:limits:other_project", "rule:context_is_admin", "Show another project's limits.",
                      ["GET /compute/v2.1/limits?tenant_id={project_id}"]),
        PolicyDefault("os_compute_api:os-availability-zone:list", "@", "List availability zones.",
                      ["GET /compute/v2.1/os-availability-zone"]),
        PolicyDefault("os_compute_api:os-availability-zone:detail", "rule:context_is_admin", "List availability zones with their hosts.",
                      ["GET /compute/v2.1/os-availability-zone/detail"]),
    ]

    func registerQuotas(on v21: APIRoutes) {
        @Sendable func check(_ request: Request, _ context: APIRequestContext, _ action: String, project: String) async throws -> (Caller, Microversion) {
            let (caller, version) = try await authenticated(request, context)
            try context.enforce(action, target: ["project_id": project])
            return (caller, version)
        }
        @Sendable func quotaSet(_ limits: [String: Int], id: String?) -> JSON {
            var object = limits.mapValues { JSON.number(Double($0)) }
            if let id { object["id"] = .string(id) }
            return ["quota_set": .object(object)]
        }
        v21.get("os-quota-sets/:project_id", query: NovaQuerySchemas.quotaSet) { request, context in
            let project = try context.parameters.require("project_id")
            let (_, version) = try await check(request, context, "os_compute_api:os-quota-sets:show", project: project)
            return answer(.ok, quotaSet(try await quotas.limits(project: project), id: project), version)
        }
        v21.get("os-quota-sets/:project_id/defaults", query: NovaQuerySchemas.open) { request, context in
            let project = try context.parameters.require("project_id")
            let (_, version) = try await check(request, context, "os_compute_api:os-quota-sets:defaults", project: project)
            return answer(.ok, quotaSet(try await quotas.effectiveDefaults(), id: project), version)
        }
        v21.get("os-quota-sets/:project_id/detail", query: NovaQuerySchemas.quotaSet) { request, context in
            let project = try context.parameters.require("project_id")
            let (caller, version) = try await check(request, context, "os_compute_api:os-quota-sets:show", project: project)
            let limits = try await quotas.limits(project: project)
            let usage = try await quotas.usage(project: project, user: request.query("user_id") ?? caller.user.id)
            var object: [String: JSON] = ["id": .string(project)]
            for (resource, limit) in limits {
                object[resource] = ["limit": .number(Double(limit)), "in_use": .number(Double(usage[resource] ?? 0)), "reserved": 0]
            }
            return answer(.ok, ["quota_set": .object(object)], version)
        }
        v21.put("os-quota-sets/:project_id", body: .json(QuotaSchemas.update, style: .nova)) { request, context in
            let project = try context.parameters.require("project_id")
            let (caller, version) = try await check(request, context, "os_compute_api:os-quota-sets:update", project: project)
            guard let fields = try await environment.body(request, context)["quota_set"]?.objectValue else {
                throw APIFault(.badRequest, "Invalid input for field/attribute quota_set. 'quota_set' is a required property.")
            }
            var changes: [String: Int] = [:]
            var force = false
            for (key, value) in fields {
                if key == "force" {
                    guard let flag = value.boolValue else { throw APIFault(.badRequest, "Invalid input for field/attribute force.") }
                    force = flag
                    continue
                }
                guard Quotas.resources.contains(key) else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute quota_set. Additional properties are not allowed ('\(key)' was unexpected)")
                }
                guard let limit = try Self.integer(value, key, minimum: -1) else { continue }
                changes[key] = limit
            }
            if !force {
                // A limit below what the project already uses is refused unless forced, as Nova does.
                let usage = try await quotas.usage(project: project, user: caller.user.id)
                for (resource, limit) in changes where limit >= 0 && resource != "key_pairs" && (usage[resource] ?? 0) > limit {
                    throw APIFault(.badRequest, "Quota limit \(limit) for \(resource) must be greater than or equal to already used and reserved \(usage[resource] ?? 0).")
                }
            }
            return answer(.ok, quotaSet(try await quotas.set(project: project, changes), id: nil), version)
        }
        v21.delete("os-quota-sets/:project_id") { request, context in
            let project = try context.parameters.require("project_id")
            let (_, version) = try await check(request, context, "os_compute_api:os-quota-sets:delete", project: project)
            try await quotas.reset(project: project)
            return Response(status: .accepted, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }

        v21.get("limits", query: NovaQuerySchemas.limits) { request, context in
            let (caller, version) = try await authenticated(request, context)
            var project = caller.project?.id ?? ""
            if let other = request.query("tenant_id"), other != project {
                try context.enforce("os_compute_api:limits:other_project")
                project = other
            }
            let limits = try await quotas.limits(project: project)
            let usage = try await quotas.usage(project: project, user: caller.user.id)
            var absolute: [String: JSON] = [
                "maxTotalInstances": .number(Double(limits["instances"] ?? -1)), "maxTotalCores": .number(Double(limits["cores"] ?? -1)),
                "maxTotalRAMSize": .number(Double(limits["ram"] ?? -1)), "maxTotalKeypairs": .number(Double(limits["key_pairs"] ?? -1)),
                "maxServerMeta": .number(Double(limits["metadata_items"] ?? -1)),
                "maxServerGroups": .number(Double(limits["server_groups"] ?? -1)),
                "maxServerGroupMembers": .number(Double(limits["server_group_members"] ?? -1)),
                "totalInstancesUsed": .number(Double(usage["instances"] ?? 0)), "totalCoresUsed": .number(Double(usage["cores"] ?? 0)),
                "totalRAMUsed": .number(Double(usage["ram"] ?? 0)), "totalServerGroupsUsed": .number(Double(usage["server_groups"] ?? 0)),
            ]
            // Until 2.39 the image metadata limit is shown too (Nova takes it from metadata_items).
            if version < Microversion(2, 39) { absolute["maxImageMeta"] = .number(Double(limits["metadata_items"] ?? -1)) }
            return answer(.ok, ["limits": ["absolute": .object(absolute), "rate": []]], version)
        }

        @Sendable func zones(detail: Bool) async throws -> JSON {
            let computes = try await hosts.services { $0.binary == "nova-compute" }
            let aggregates = try await Aggregates(database: hosts.store.database).list()
            var byZone: [String: [ServiceStatus]] = [:]
            for service in computes {
                let own = aggregates.filter { $0.hosts.contains(service.host) }.compactMap(\.availabilityZone)
                for zone in own.isEmpty ? [defaultAvailabilityZone] : own { byZone[zone, default: []].append(service) }
            }
            return ["availabilityZoneInfo": .array(byZone.keys.sorted().map { zone in
                let services = byZone[zone]!
                var hostsJSON: [String: JSON] = [:]
                for service in services {
                    hostsJSON[service.host] = [service.binary: ["active": .bool(service.enabled), "available": .bool(service.up),
                                                                "updated_at": novaTime(service.record.lastSeenAt)]]
                }
                return ["zoneName": .string(zone), "zoneState": ["available": .bool(services.contains { $0.up && $0.enabled })],
                        "hosts": detail ? .object(hostsJSON) : nil]
            })]
        }
        v21.get("os-availability-zone", query: NovaQuerySchemas.open) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-availability-zone:list")
            return answer(.ok, try await zones(detail: false), version)
        }
        v21.get("os-availability-zone/detail", query: NovaQuerySchemas.open) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-availability-zone:detail")
            return answer(.ok, try await zones(detail: true), version)
        }
    }
}
