import Foundation
import Hummingbird
import Networking
import PetrelCore
import PetrelHTTP

extension NetworkAPI {
    static let providerAttributes = ["provider:network_type", "provider:physical_network", "provider:segmentation_id"]
    static let readNetwork = "rule:admin_only or (role:reader and project_id:%(project_id)s) or rule:shared or rule:external"

    static let networkPolicies: [PolicyDefault] = [
        PolicyDefault("create_network", owner, "Create a network.", ["POST /networking/v2.0/networks"]),
        PolicyDefault("create_network:shared", adminOnly, "Create a shared network.", ["POST /networking/v2.0/networks"]),
        PolicyDefault("create_network:router:external", adminOnly, "Create an external network.", ["POST /networking/v2.0/networks"]),
        PolicyDefault("create_network:is_default", adminOnly, "Create the default external network.", ["POST /networking/v2.0/networks"]),
        PolicyDefault("get_network", readNetwork, "Show a network.", ["GET /networking/v2.0/networks", "GET /networking/v2.0/networks/{id}"]),
        PolicyDefault("update_network", owner, "Change a network.", ["PUT /networking/v2.0/networks/{id}"]),
        PolicyDefault("update_network:shared", adminOnly, "Share or unshare a network.", ["PUT /networking/v2.0/networks/{id}"]),
        PolicyDefault("update_network:router:external", adminOnly, "Make a network external or not.", ["PUT /networking/v2.0/networks/{id}"]),
        PolicyDefault("delete_network", owner, "Delete a network.", ["DELETE /networking/v2.0/networks/{id}"]),
    ] + providerAttributes.flatMap { attribute in
        [PolicyDefault("create_network:\(attribute)", adminOnly, "Set \(attribute) on a new network.", ["POST /networking/v2.0/networks"]),
         PolicyDefault("get_network:\(attribute)", adminOnly, "See a network's \(attribute).", ["GET /networking/v2.0/networks/{id}"]),
         PolicyDefault("update_network:\(attribute)", adminOnly, "Change a network's \(attribute).", ["PUT /networking/v2.0/networks/{id}"])]
    } + tagPolicies("network")

    static let networkAttributes: Set<String> = [
        "id", "name", "description", "project_id", "tenant_id", "admin_state_up", "shared", "router:external", "mtu", "status",
        "subnets", "port_security_enabled", "availability_zone_hints", "availability_zones", "dns_domain", "tags",
        "revision_number", "created_at", "updated_at", "provider:network_type", "provider:physical_network",
        "provider:segmentation_id",
    ]

    func networkJSON(_ network: Network) -> [String: JSON] {
        [
            "id": .string(network.id), "name": .string(network.name), "description": .string(network.description),
            "project_id": .string(network.projectID), "tenant_id": .string(network.projectID),
            "admin_state_up": .bool(network.adminStateUp), "shared": .bool(network.shared), "router:external": .bool(network.external),
            "mtu": .number(Double(network.mtu)), "status": "ACTIVE", "subnets": strings(network.subnets),
            "port_security_enabled": .bool(network.portSecurityEnabled),
            "availability_zone_hints": strings(network.availabilityZoneHints), "availability_zones": [],
            "dns_domain": .string(network.dnsDomain), "tags": strings(network.tags),
            "revision_number": .number(Double(network.revision)),
            "created_at": resourceTime(network.createdAt), "updated_at": resourceTime(network.updatedAt),
            "provider:network_type": .string(network.networkType), "provider:physical_network": .string(network.physicalNetwork),
            "provider:segmentation_id": network.segmentationID.map { .number(Double($0)) } ?? .null,
        ]
    }

    static func networkTarget(_ network: Network) -> [String: String] {
        ["project_id": network.projectID, "shared": network.shared ? "True" : "False",
         "router:external": network.external ? "True" : "False"]
    }

    /// The network `id` if the caller may see it (404 otherwise, as Neutron hides what policy forbids).
    func visibleNetwork(_ id: String, _ context: APIRequestContext) async throws -> Network {
        let (_, viewer) = try viewer(context)
        let network = try await service.network(id, visibleTo: viewer)
        guard try context.allows("get_network", target: Self.networkTarget(network)) else { throw NetworkingFailure.networkNotFound(id) }
        return network
    }

    func registerNetworks(on v20: APIRoutes) {
        v20.get("networks") { request, context in
            let (_, viewer) = try viewer(context)
            let networks = try await service.networks(visibleTo: viewer)
                .filter { try context.allows("get_network", target: Self.networkTarget($0)) }
            let listing = NeutronListing(collection: "networks", attributes: Self.networkAttributes, request: request,
                                         path: environment.publicURL + "/networking/v2.0/networks")
            let hidden = try hiddenAttributes(context, "get_network", Self.providerAttributes)
            return respond(.ok, try listing.page(networks.map(networkJSON), hidden: hidden, notFound: { NetworkingFailure.networkNotFound($0) }))
        }
        v20.get("networks/:id") { request, context in
            let network = try await visibleNetwork(try context.parameters.require("id"), context)
            let hidden = try hiddenAttributes(context, "get_network", Self.providerAttributes)
            return respond(.ok, ["network": NeutronListing.shown(networkJSON(network), request: request, hidden: hidden)])
        }
        v20.post("networks", body: NeutronResource.network.body(.create)) { request, context in
            let (caller, _) = try viewer(context)
            let body = try NeutronBody(try await environment.body(request, context), .network, .create)
            var create = NetworkService.NetworkCreate(projectID: try owningProject(body, caller))
            create.name = try body.string("name") ?? ""
            create.description = try body.string("description") ?? ""
            create.adminStateUp = try body.bool("admin_state_up") ?? true
            create.shared = try body.bool("shared") ?? false
            create.external = try body.bool("router:external") ?? false
            create.portSecurityEnabled = try body.bool("port_security_enabled") ?? true
            create.mtu = try body.int("mtu")
            create.availabilityZoneHints = try body.strings("availability_zone_hints") ?? []
            create.dnsDomain = try body.string("dns_domain") ?? ""
            create.tags = try body.tags()
            create.networkType = try body.string("provider:network_type")
            create.physicalNetwork = try body.string("provider:physical_network")
            create.segmentationID = try body.int("provider:segmentation_id")
            if let segments = try body.objects("segments") {
                // The multi-provider form with one segment: the same three attributes (their types checked with the body).
                guard segments.count == 1, create.networkType == nil else {
                    throw APIFault(.badRequest, "Invalid input for operation: a network has exactly one segment here; give it either as segments or as the provider attributes.", type: "InvalidInput")
                }
                let segment = segments[0]
                create.networkType = segment["provider:network_type"]?.stringValue
                create.physicalNetwork = segment["provider:physical_network"]?.stringValue
                create.segmentationID = segment["provider:segmentation_id"].flatMap(NeutronValue.integer)
            }
            let target = ["project_id": create.projectID]
            try context.enforce("create_network", target: target)
            if body.has("project_id") || body.has("tenant_id"), create.projectID != caller.projectID {
                try context.enforce("admin_only")
            }
            for attribute in ["shared", "router:external", "is_default"] where try body.bool(attribute) == true {
                try context.enforce("create_network:\(attribute)", target: target)
            }
            for attribute in Self.providerAttributes where body.has(attribute) || body.has("segments") {
                try context.enforce("create_network:\(attribute)", target: target)
            }
            let network = try await service.createNetwork(create)
            logger.info("network created", metadata: ["network": "\(network.id)", "type": "\(network.networkType)"])
            return respond(.created, ["network": .object(networkJSON(network))])
        }
        v20.put("networks/:id", body: NeutronResource.network.body(.update)) { request, context in
            _ = try context.caller()
            let body = try NeutronBody(try await environment.body(request, context), .network, .update)
            let existing = try await visibleNetwork(try context.parameters.require("id"), context)
            let target = Self.networkTarget(existing)
            try context.enforce("update_network", target: target)
            for attribute in ["shared", "router:external"] + Self.providerAttributes where body.has(attribute) {
                try context.enforce("update_network:\(attribute)", target: target)
            }
            if let attribute = Self.providerAttributes.first(where: body.has) {
                throw APIFault(.badRequest, "Invalid input for operation: Plugin does not support updating the following provider network attributes: \(attribute).", type: "InvalidInput")
            }
            var update = NetworkService.NetworkUpdate()
            update.name = try body.string("name")
            update.description = try body.string("description")
            update.adminStateUp = try body.bool("admin_state_up")
            update.shared = try body.bool("shared")
            update.external = try body.bool("router:external")
            update.portSecurityEnabled = try body.bool("port_security_enabled")
            update.mtu = try body.int("mtu")
            update.dnsDomain = try body.string("dns_domain")
            var network = try await service.updateNetwork(existing.id, update)
            network.subnets = existing.subnets
            return respond(.ok, ["network": .object(networkJSON(network))])
        }
        v20.delete("networks/:id") { request, context in
            let existing = try await visibleNetwork(try context.parameters.require("id"), context)
            try context.enforce("delete_network", target: Self.networkTarget(existing))
            _ = try await service.deleteNetwork(existing.id)
            logger.info("network deleted", metadata: ["network": "\(existing.id)"])
            return noContent()
        }
        registerTags(on: v20, "networks", kind: .networks) { id, viewer in
            let network = try await service.network(id, visibleTo: viewer)
            return (network.projectID, network.tags)
        }
    }
}
