import Foundation
import Hummingbird
import Networking
import PetrelCore
import PetrelHTTP

extension NetworkAPI {
    static let readSubnet = "rule:admin_only or (role:reader and project_id:%(project_id)s) or rule:shared"

    static let subnetPolicies: [PolicyDefault] = [
        PolicyDefault("create_subnet", networkOwner, "Create a subnet on one's network.", ["POST /networking/v2.0/subnets"]),
        PolicyDefault("get_subnet", readSubnet, "Show a subnet.", ["GET /networking/v2.0/subnets", "GET /networking/v2.0/subnets/{id}"]),
        PolicyDefault("update_subnet", networkOwner, "Change a subnet.", ["PUT /networking/v2.0/subnets/{id}"]),
        PolicyDefault("delete_subnet", networkOwner, "Delete a subnet.", ["DELETE /networking/v2.0/subnets/{id}"]),
    ] + tagPolicies("subnet")

    static let subnetAttributes: Set<String> = [
        "id", "name", "description", "project_id", "tenant_id", "network_id", "ip_version", "cidr", "gateway_ip",
        "allocation_pools", "dns_nameservers", "host_routes", "enable_dhcp", "ipv6_address_mode", "ipv6_ra_mode",
        "subnetpool_id", "tags", "revision_number", "created_at", "updated_at",
    ]

    func subnetJSON(_ subnet: Subnet) -> [String: JSON] {
        [
            "id": .string(subnet.id), "name": .string(subnet.name), "description": .string(subnet.description),
            "project_id": .string(subnet.projectID), "tenant_id": .string(subnet.projectID), "network_id": .string(subnet.networkID),
            "ip_version": .number(Double(subnet.ipVersion)), "cidr": .string(subnet.cidr), "gateway_ip": .string(subnet.gatewayIP),
            "allocation_pools": .array(subnet.allocationPools.map { ["start": .string($0.start), "end": .string($0.end)] }),
            "dns_nameservers": strings(subnet.dnsNameservers),
            "host_routes": .array(subnet.hostRoutes.map { ["destination": .string($0.destination), "nexthop": .string($0.nexthop)] }),
            "enable_dhcp": .bool(subnet.enableDHCP), "ipv6_address_mode": .string(subnet.ipv6AddressMode),
            "ipv6_ra_mode": .string(subnet.ipv6RAMode), "subnetpool_id": nil, "tags": strings(subnet.tags),
            "revision_number": .number(Double(subnet.revision)),
            "created_at": resourceTime(subnet.createdAt), "updated_at": resourceTime(subnet.updatedAt),
        ]
    }

    /// A subnet is shared when its network is.
    func subnetTarget(_ subnet: Subnet, _ network: Network?) -> [String: String] {
        ["project_id": subnet.projectID, "shared": network?.shared == true ? "True" : "False",
         "network:project_id": network?.projectID ?? subnet.projectID]
    }

    func visibleSubnet(_ id: String, _ context: APIRequestContext) async throws -> (Subnet, Network?) {
        let (_, viewer) = try viewer(context)
        let subnet = try await service.subnet(id, visibleTo: viewer)
        let network = try await service.networks(visibleTo: Viewer(projectID: nil, isAdmin: true), ids: [subnet.networkID]).first
        guard try context.allows("get_subnet", target: subnetTarget(subnet, network)) else { throw NetworkingFailure.subnetNotFound(id) }
        return (subnet, network)
    }

    /// The allocation pools of a subnet body (`NeutronType.ipPools` checked their form).
    func allocationPools(_ body: NeutronBody) throws -> [AllocationPool]? {
        try body.objects("allocation_pools")?.compactMap { pool in
            guard let start = pool["start"]?.stringValue, let end = pool["end"]?.stringValue else { return nil }
            return AllocationPool(start: start, end: end)
        }
    }

    /// The host routes of a subnet body, or the routes of a router body (`NeutronType.hostRoutes`
    /// checked their form).
    func hostRoutes(_ body: NeutronBody, _ key: String = "host_routes") throws -> [HostRoute]? {
        try body.objects(key)?.compactMap { route in
            guard let destination = route["destination"]?.stringValue, let nexthop = route["nexthop"]?.stringValue else { return nil }
            return HostRoute(destination: destination, nexthop: nexthop)
        }
    }

    func registerSubnets(on v20: APIRoutes) {
        v20.get("subnets") { request, context in
            let (_, viewer) = try viewer(context)
            let subnets = try await service.subnets(visibleTo: viewer)
            let networks = Dictionary(uniqueKeysWithValues: try await service.networks(visibleTo: Viewer(projectID: nil, isAdmin: true),
                                                                                       ids: Array(Set(subnets.map(\.networkID)))).map { ($0.id, $0) })
            let visible = try subnets.filter { try context.allows("get_subnet", target: subnetTarget($0, networks[$0.networkID])) }
            let listing = NeutronListing(collection: "subnets", attributes: Self.subnetAttributes, request: request,
                                         path: environment.publicURL + "/networking/v2.0/subnets")
            return respond(.ok, try listing.page(visible.map(subnetJSON), notFound: { NetworkingFailure.subnetNotFound($0) }))
        }
        v20.get("subnets/:id") { request, context in
            let (subnet, _) = try await visibleSubnet(try context.parameters.require("id"), context)
            return respond(.ok, ["subnet": NeutronListing.shown(subnetJSON(subnet), request: request)])
        }
        v20.post("subnets", body: NeutronResource.subnet.body(.create)) { request, context in
            let (caller, _) = try viewer(context)
            let body = try NeutronBody(try await environment.body(request, context), .subnet, .create)
            let networkID = try body.required("network_id")
            if let pool = body.fields["subnetpool_id"], !pool.isNull {
                throw APIFault(.badRequest, "Invalid input for operation: subnet pools are not supported; give the subnet a cidr.", type: "InvalidInput")
            }
            guard let ipVersion = try body.int("ip_version") else {
                throw APIFault(.badRequest, "Failed to parse request. Required attribute 'ip_version' not specified", type: "HTTPBadRequest")
            }
            guard let cidr = try body.nullableString("cidr") ?? nil else {
                throw APIFault(.badRequest, "Bad subnets request: a cidr must be specified in the absence of a subnet pool.", type: "BadRequest")
            }
            let network = try await visibleNetwork(networkID, context)
            var create = NetworkService.SubnetCreate(networkID: network.id, projectID: try owningProject(body, caller), ipVersion: ipVersion, cidr: cidr)
            try context.enforce("create_subnet", target: ["project_id": create.projectID, "network:project_id": network.projectID])
            if create.projectID != caller.projectID { try context.enforce("admin_only") }
            create.name = try body.string("name") ?? ""
            create.description = try body.string("description") ?? ""
            create.gatewayIP = try body.nullableString("gateway_ip")
            create.allocationPools = try allocationPools(body)
            create.dnsNameservers = try body.strings("dns_nameservers") ?? []
            create.hostRoutes = try hostRoutes(body) ?? []
            create.enableDHCP = try body.bool("enable_dhcp") ?? true
            create.ipv6AddressMode = try body.nullableString("ipv6_address_mode") ?? nil
            create.ipv6RAMode = try body.nullableString("ipv6_ra_mode") ?? nil
            create.tags = try body.tags()
            let subnet = try await service.createSubnet(create)
            logger.info("subnet created", metadata: ["subnet": "\(subnet.id)", "network": "\(network.id)", "cidr": "\(subnet.cidr)"])
            return respond(.created, ["subnet": .object(subnetJSON(subnet))])
        }
        v20.put("subnets/:id", body: NeutronResource.subnet.body(.update)) { request, context in
            _ = try context.caller()
            let body = try NeutronBody(try await environment.body(request, context), .subnet, .update)
            let (existing, network) = try await visibleSubnet(try context.parameters.require("id"), context)
            try context.enforce("update_subnet", target: subnetTarget(existing, network))
            var update = NetworkService.SubnetUpdate()
            update.name = try body.string("name")
            update.description = try body.string("description")
            update.gatewayIP = try body.nullableString("gateway_ip")
            update.allocationPools = try allocationPools(body)
            update.dnsNameservers = try body.strings("dns_nameservers")
            update.hostRoutes = try hostRoutes(body)
            update.enableDHCP = try body.bool("enable_dhcp")
            let subnet = try await service.updateSubnet(existing.id, update)
            return respond(.ok, ["subnet": .object(subnetJSON(subnet))])
        }
        v20.delete("subnets/:id") { request, context in
            let (existing, network) = try await visibleSubnet(try context.parameters.require("id"), context)
            try context.enforce("delete_subnet", target: subnetTarget(existing, network))
            _ = try await service.deleteSubnet(existing.id)
            logger.info("subnet deleted", metadata: ["subnet": "\(existing.id)"])
            return noContent()
        }
        registerTags(on: v20, "subnets", kind: .subnets) { id, viewer in
            let subnet = try await service.subnet(id, visibleTo: viewer)
            return (subnet.projectID, subnet.tags)
        }
    }
}
