import Foundation
import Hummingbird
import Networking
import PetrelCore
import PetrelHTTP

extension NetworkAPI {
    /// An integer that may exceed what a double holds exactly (an IPv6 subnet's address count).
    static func exact(_ value: UInt128) -> JSON { .raw(Array(String(value).utf8)) }

    func registerQuotas(on v20: APIRoutes) {
        @Sendable func quotaJSON(_ limits: [String: Int]) -> JSON {
            .object(limits.mapValues { .number(Double($0)) })
        }
        v20.get("quotas") { request, context in
            try context.enforce("admin_only")
            let projects = try await service.projectsWithQuotas()
            let list: [JSON] = projects.keys.sorted().map { project in
                var entry = projects[project]!.mapValues { JSON.number(Double($0)) }
                entry["project_id"] = .string(project)
                entry["tenant_id"] = .string(project)
                return .object(entry)
            }
            return respond(.ok, ["quotas": .array(list)])
        }
        v20.get("quotas/:project_id") { request, context in
            let project = try context.parameters.require("project_id")
            try context.enforce("get_quota", target: ["project_id": project])
            return respond(.ok, ["quota": quotaJSON(try await service.quotaLimits(project: project))])
        }
        v20.get("quotas/:project_id/default") { request, context in
            let project = try context.parameters.require("project_id")
            try context.enforce("get_quota", target: ["project_id": project])
            return respond(.ok, ["quota": quotaJSON(service.quotaDefaults.filter { NetworkService.quotaResources.contains($0.key) })])
        }
        v20.get("quotas/:project_id/details") { request, context in
            let project = try context.parameters.require("project_id")
            try context.enforce("get_quota", target: ["project_id": project])
            let limits = try await service.quotaLimits(project: project)
            let usage = try await service.quotaUsage(project: project)
            var details: [String: JSON] = [:]
            for (resource, limit) in limits {
                details[resource] = ["limit": .number(Double(limit)), "used": .number(Double(usage[resource] ?? 0)), "reserved": 0]
            }
            return respond(.ok, ["quota": .object(details)])
        }
        v20.put("quotas/:project_id", body: NeutronResource.quota.body(.update)) { request, context in
            let project = try context.parameters.require("project_id")
            try context.enforce("update_quota", target: ["project_id": project])
            let body = try NeutronBody(try await environment.body(request, context), .quota, .update)
            var changes: [String: Int] = [:]
            for resource in NetworkService.quotaResources {
                if let limit = try body.int(resource) { changes[resource] = limit }
            }
            // check_limit (and no force): a limit below what the project already uses is refused.
            if try body.bool("check_limit") == true, try body.bool("force") != true {
                let usage = try await service.quotaUsage(project: project)
                for (resource, limit) in changes.sorted(by: { $0.key < $1.key }) where limit >= 0 && limit < usage[resource] ?? 0 {
                    throw APIFault(.badRequest, "Quota limit \(limit) for \(resource) must be greater than or equal to already used and reserved \(usage[resource] ?? 0).", type: "InvalidQuotaValue")
                }
            }
            return respond(.ok, ["quota": quotaJSON(try await service.setQuota(project: project, changes))])
        }
        v20.delete("quotas/:project_id") { request, context in
            let project = try context.parameters.require("project_id")
            try context.enforce("delete_quota", target: ["project_id": project])
            try await service.resetQuota(project: project)
            return noContent()
        }

        // Network IP availability: the pools' size and the addresses ports hold, per subnet.
        @Sendable func availabilityJSON(_ network: Network, _ subnets: [NetworkService.SubnetAvailability]) -> [String: JSON] {
            let total = subnets.reduce(UInt128(0)) { $0 &+ $1.total }
            return [
                "network_id": .string(network.id), "network_name": .string(network.name), "project_id": .string(network.projectID),
                "tenant_id": .string(network.projectID), "total_ips": Self.exact(total),
                "used_ips": .number(Double(subnets.reduce(0) { $0 + $1.used })),
                "subnet_ip_availability": .array(subnets.map { entry in
                    ["subnet_id": .string(entry.subnet.id), "subnet_name": .string(entry.subnet.name), "cidr": .string(entry.subnet.cidr),
                     "ip_version": .number(Double(entry.subnet.ipVersion)), "total_ips": Self.exact(entry.total),
                     "used_ips": .number(Double(entry.used))]
                }),
            ]
        }
        v20.get("network-ip-availabilities") { request, context in
            try context.enforce("get_network_ip_availability")
            let networks = try await service.networks(visibleTo: Viewer(projectID: nil, isAdmin: true))
            let availability = try await service.availability(networkIDs: networks.map(\.id))
            var items = networks.map { availabilityJSON($0, availability[$0.id] ?? []) }
            if let version = request.query("ip_version") {
                items = items.filter { item in
                    (item["subnet_ip_availability"]?.arrayValue ?? []).contains { $0["ip_version"] == .number(Double(Int(version) ?? 0)) }
                }
            }
            // `ip_version` is answered above; the rest are the availability's own fields.
            let listing = NeutronListing(collection: "network_ip_availabilities",
                                         attributes: ["network_id", "network_name", "project_id", "tenant_id"],
                                         request: request, path: environment.publicURL + "/networking/v2.0/network-ip-availabilities",
                                         ignored: ["ip_version"])
            let shown = try listing.filtered(items).map(JSON.object)
            return respond(.ok, ["network_ip_availabilities": .array(shown)])
        }
        v20.get("network-ip-availabilities/:id") { request, context in
            try context.enforce("get_network_ip_availability")
            let id = try context.parameters.require("id")
            guard let network = try await service.networks(visibleTo: Viewer(projectID: nil, isAdmin: true), ids: [id]).first else {
                throw NetworkingFailure.networkNotFound(id)
            }
            let availability = try await service.availability(networkIDs: [id])
            return respond(.ok, ["network_ip_availability": .object(availabilityJSON(network, availability[id] ?? []))])
        }

        // Availability zones: those of the DHCP agents alive (network zones).
        v20.get("availability_zones") { request, context in
            try context.enforce("get_availability_zone")
            let agents = try await hosts.services { $0.binary == "neutron-dhcp-agent" }
            let zones: [[String: JSON]] = agents.contains(where: \.up) ? [["name": "nova", "resource": "network", "state": "available"]] : []
            let listing = NeutronListing(collection: "availability_zones", attributes: ["name", "resource", "state"], request: request,
                                         path: environment.publicURL + "/networking/v2.0/availability_zones")
            return respond(.ok, ["availability_zones": .array(try listing.filtered(zones).map(JSON.object))])
        }
    }
}
