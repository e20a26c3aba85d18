import Compute
import Foundation
import Hummingbird
import PetrelCore
import PetrelHTTP

/// `os-quota-class-sets`: the limits of a quota class. As in Nova, any class name may be read
/// and set, but only the class `default` changes anything: its limits are what every project
/// without its own gets (`os-quota-sets/{id}/defaults`, the limits servers are checked against).
///
/// Shown are the limits Petrel enforces. Nova's older field sets also name nova-network's
/// limits (fixed and floating IPs, security groups and their rules: Neutron's quotas here)
/// and the injected files of the personality Petrel does not inject; a request may still send
/// them where Nova's schema of its microversion takes them, and they change nothing.
extension ComputeAPI {
    static let quotaClassPolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:os-quota-class-sets:show", "rule:context_is_admin", "List the quotas of a quota class.",
                      ["GET /compute/v2.1/os-quota-class-sets/{quota_class}"]),
        PolicyDefault("os_compute_api:os-quota-class-sets:update", "rule:context_is_admin", "Change the quotas of a quota class.",
                      ["PUT /compute/v2.1/os-quota-class-sets/{quota_class}"]),
    ]

    /// The resources Nova shows in a class: before 2.50 without the server group limits.
    static func quotaClassResources(_ version: Microversion) -> [String] {
        version >= Microversion(2, 50) ? Quotas.resources
            : Quotas.resources.filter { $0 != "server_groups" && $0 != "server_group_members" }
    }

    func registerQuotaClasses(on v21: APIRoutes) {
        @Sendable func classSet(_ limits: [String: Int], id: String?, _ version: Microversion) -> JSON {
            var object: [String: JSON] = [:]
            for resource in Self.quotaClassResources(version) { object[resource] = limits[resource].map { .number(Double($0)) } }
            if let id { object["id"] = .string(id) }
            return ["quota_class_set": .object(object)]
        }
        v21.get("os-quota-class-sets/:id", query: NovaQuerySchemas.open) { request, context in
            let name = try context.parameters.require("id")
            let (_, version) = try await begin(request, context, "os_compute_api:os-quota-class-sets:show")
            return answer(.ok, classSet(try await quotas.classLimits(name), id: name, version), version)
        }
        v21.put("os-quota-class-sets/:id", body: Self.body(QuotaClassSchemas.update)) { request, context in
            let name = try context.parameters.require("id")
            let (_, version) = try await begin(request, context, "os_compute_api:os-quota-class-sets:update")
            guard (1...255).contains(name.count) else {
                throw APIFault(.badRequest, "Invalid input received: quota_class_name has a length of \(name.count) characters, which is not between 1 and 255.")
            }
            let fields = try await environment.body(request, context)["quota_class_set"]?.objectValue ?? [:]
            var changes: [String: Int] = [:]
            for (key, value) in fields where Quotas.resources.contains(key) {
                guard let limit = try Self.integer(value, key, minimum: -1) else { continue }
                changes[key] = limit
            }
            return answer(.ok, classSet(try await quotas.setClass(name, changes), id: nil, version), version)
        }
    }
}

/// `PUT /os-quota-class-sets/{id}`: Nova's quota resources, without nova-network's from 2.50
/// and without the injected files from 2.57.
enum QuotaClassSchemas {
    static func update(_ version: Microversion) -> Schema { updates[version] }
    private static let updates = PerMicroversion { version in
        var names = ["instances", "cores", "ram", "floating_ips", "fixed_ips", "metadata_items", "key_pairs", "security_groups",
                     "security_group_rules", "injected_files", "injected_file_content_bytes", "injected_file_path_bytes",
                     "server_groups", "server_group_members"]
        if version >= Microversion(2, 50) {
            names.removeAll { ["fixed_ips", "floating_ips", "security_groups", "security_group_rules"].contains($0) }
        }
        if version >= Microversion(2, 57) { names.removeAll { $0.hasPrefix("injected_file") } }
        return .object([("quota_class_set", .object(names.map { ($0, QuotaSchemas.limit) }))], required: ["quota_class_set"])
    }
}
