import Foundation
import Hummingbird
import Networking
import PetrelCore
import PetrelHTTP

/// Routers (`/routers` with `add_router_interface`, `remove_router_interface`,
/// `add_extraroutes`, `remove_extraroutes`), floating IPs (`/floatingips`) and their port
/// forwardings (`/floatingips/{id}/port_forwardings`), with Neutron's bodies, policy and errors.
extension NetworkAPI {
    static let routerPolicies: [PolicyDefault] = [
        PolicyDefault("create_router", owner, "Create a router.", ["POST /networking/v2.0/routers"]),
        PolicyDefault("create_router:external_gateway_info", owner, "Create a router with a gateway.", ["POST /networking/v2.0/routers"]),
        PolicyDefault("create_router:external_gateway_info:enable_snat", adminOnly, "Choose whether a new router's gateway does SNAT.",
                      ["POST /networking/v2.0/routers"]),
        PolicyDefault("create_router:external_gateway_info:external_fixed_ips", adminOnly, "Choose a new router's gateway addresses.",
                      ["POST /networking/v2.0/routers"]),
        PolicyDefault("get_router", reader, "Show a router.", ["GET /networking/v2.0/routers", "GET /networking/v2.0/routers/{id}"]),
        PolicyDefault("update_router", owner, "Change a router.", ["PUT /networking/v2.0/routers/{id}"]),
        PolicyDefault("update_router:external_gateway_info", owner, "Set or clear a router's gateway.", ["PUT /networking/v2.0/routers/{id}"]),
        PolicyDefault("update_router:external_gateway_info:enable_snat", adminOnly, "Choose whether a router's gateway does SNAT.",
                      ["PUT /networking/v2.0/routers/{id}"]),
        PolicyDefault("update_router:external_gateway_info:external_fixed_ips", adminOnly, "Choose a router's gateway addresses.",
                      ["PUT /networking/v2.0/routers/{id}"]),
        PolicyDefault("delete_router", owner, "Delete a router.", ["DELETE /networking/v2.0/routers/{id}"]),
        PolicyDefault("add_router_interface", owner, "Connect a router to a subnet or a port.",
                      ["PUT /networking/v2.0/routers/{id}/add_router_interface"]),
        PolicyDefault("remove_router_interface", owner, "Disconnect a router from a subnet or a port.",
                      ["PUT /networking/v2.0/routers/{id}/remove_router_interface"]),
        PolicyDefault("add_extraroutes", owner, "Add extra routes to a router.", ["PUT /networking/v2.0/routers/{id}/add_extraroutes"]),
        PolicyDefault("remove_extraroutes", owner, "Remove extra routes of a router.", ["PUT /networking/v2.0/routers/{id}/remove_extraroutes"]),
        PolicyDefault("create_floatingip", owner, "Allocate a floating IP.", ["POST /networking/v2.0/floatingips"]),
        PolicyDefault("create_floatingip:floating_ip_address", adminOnly, "Allocate a chosen floating IP address.",
                      ["POST /networking/v2.0/floatingips"]),
        PolicyDefault("get_floatingip", reader, "Show a floating IP.", ["GET /networking/v2.0/floatingips", "GET /networking/v2.0/floatingips/{id}"]),
        PolicyDefault("update_floatingip", owner, "Associate, move or disassociate a floating IP.", ["PUT /networking/v2.0/floatingips/{id}"]),
        PolicyDefault("delete_floatingip", owner, "Release a floating IP.", ["DELETE /networking/v2.0/floatingips/{id}"]),
        PolicyDefault("create_floatingip_port_forwarding", owner, "Forward a port of a floating IP.",
                      ["POST /networking/v2.0/floatingips/{floatingip_id}/port_forwardings"]),
        PolicyDefault("get_floatingip_port_forwarding", reader, "Show port forwardings of a floating IP.",
                      ["GET /networking/v2.0/floatingips/{floatingip_id}/port_forwardings",
                       "GET /networking/v2.0/floatingips/{floatingip_id}/port_forwardings/{id}"]),
        PolicyDefault("update_floatingip_port_forwarding", owner, "Change a port forwarding.",
                      ["PUT /networking/v2.0/floatingips/{floatingip_id}/port_forwardings/{id}"]),
        PolicyDefault("delete_floatingip_port_forwarding", owner, "Remove a port forwarding.",
                      ["DELETE /networking/v2.0/floatingips/{floatingip_id}/port_forwardings/{id}"]),
    ] + tagPolicies("router") + tagPolicies("floatingip")

    static let routerAttributes: Set<String> = [
        "id", "name", "description", "project_id", "tenant_id", "admin_state_up", "status", "external_gateway_info", "routes",
        "distributed", "ha", "tags", "revision_number", "created_at", "updated_at",
    ]
    static let floatingIPAttributes: Set<String> = [
        "id", "project_id", "tenant_id", "description", "floating_network_id", "floating_ip_address", "port_id", "fixed_ip_address",
        "router_id", "status", "dns_name", "dns_domain", "port_details", "port_forwardings", "tags", "revision_number", "created_at", "updated_at",
    ]
    static let forwardingAttributes: Set<String> = [
        "id", "internal_port_id", "internal_ip_address", "internal_port", "external_port", "protocol", "description",
    ]

    func routerJSON(_ router: Networking.Router) -> [String: JSON] {
        let gateway: JSON = router.gatewayNetworkID.map { network in
            ["network_id": .string(network), "enable_snat": .bool(router.enableSNAT),
             "external_fixed_ips": .array(router.gatewayFixedIPs.map { ["subnet_id": .string($0.subnetID), "ip_address": .string($0.ipAddress)] })]
        } ?? nil
        return [
            "id": .string(router.id), "name": .string(router.name), "description": .string(router.description),
            "project_id": .string(router.projectID), "tenant_id": .string(router.projectID), "admin_state_up": .bool(router.adminStateUp),
            "status": .string(router.status), "external_gateway_info": gateway,
            "routes": .array(router.routes.map { ["destination": .string($0.destination), "nexthop": .string($0.nexthop)] }),
            // One node runs each router, with no VRRP: neither distributed nor HA.
            "distributed": false, "ha": false, "tags": strings(router.tags), "revision_number": .number(Double(router.revision)),
            "created_at": resourceTime(router.createdAt), "updated_at": resourceTime(router.updatedAt),
        ]
    }

    func forwardingJSON(_ forwarding: PortForwarding) -> [String: JSON] {
        ["id": .string(forwarding.id), "internal_port_id": .string(forwarding.internalPortID),
         "internal_ip_address": .string(forwarding.internalIPAddress), "internal_port": .number(Double(forwarding.internalPort)),
         "external_port": .number(Double(forwarding.externalPort)), "protocol": .string(forwarding.protocol),
         "description": .string(forwarding.description)]
    }

    func floatingIPJSON(_ fip: FloatingIP, port: Networking.Port?) -> [String: JSON] {
        let details: JSON = port.map { port in
            ["name": .string(port.name), "network_id": .string(port.networkID), "mac_address": .string(port.macAddress),
             "admin_state_up": .bool(port.adminStateUp), "status": .string(port.status), "device_id": .string(port.deviceID),
             "device_owner": .string(port.deviceOwner)]
        } ?? nil
        return [
            "id": .string(fip.id), "project_id": .string(fip.projectID), "tenant_id": .string(fip.projectID), "description": .string(fip.description),
            "floating_network_id": .string(fip.floatingNetworkID), "floating_ip_address": .string(fip.floatingIPAddress),
            "port_id": .string(fip.portID), "fixed_ip_address": .string(fip.fixedIPAddress), "router_id": .string(fip.routerID),
            "status": .string(fip.status), "dns_name": .string(fip.dnsName), "dns_domain": .string(fip.dnsDomain), "port_details": details,
            "port_forwardings": .array(fip.portForwardings.map { .object(forwardingJSON($0)) }),
            "tags": strings(fip.tags), "revision_number": .number(Double(fip.revision)),
            "created_at": resourceTime(fip.createdAt), "updated_at": resourceTime(fip.updatedAt),
        ]
    }

    /// Floating IPs as JSON, with the details of the ports they point at.
    func floatingIPsJSON(_ fips: [FloatingIP]) async throws -> [[String: JSON]] {
        let ports = Dictionary(uniqueKeysWithValues: try await service.ports(visibleTo: Viewer(projectID: nil, isAdmin: true), ids: fips.compactMap(\.portID))
            .map { ($0.id, $0) })
        return fips.map { floatingIPJSON($0, port: $0.portID.flatMap { ports[$0] }) }
    }

    func visibleRouter(_ id: String, _ context: APIRequestContext) async throws -> Networking.Router {
        let (_, viewer) = try viewer(context)
        let router = try await service.router(id, visibleTo: viewer)
        guard try context.allows("get_router", target: ["project_id": router.projectID]) else { throw NetworkingFailure.routerNotFound(id) }
        return router
    }

    func visibleFloatingIP(_ id: String, _ context: APIRequestContext) async throws -> FloatingIP {
        let (_, viewer) = try viewer(context)
        let fip = try await service.floatingIP(id, visibleTo: viewer)
        guard try context.allows("get_floatingip", target: ["project_id": fip.projectID]) else { throw NetworkingFailure.floatingIPNotFound(id) }
        return fip
    }

    /// `external_gateway_info` of a request: absent (nil), null or {} (.some(nil)), or a gateway
    /// (`NeutronType.gateway` checked its form); each part given is policy's to allow.
    func gatewayRequest(_ body: NeutronBody, action: String, _ context: APIRequestContext, project: String) throws -> NetworkService.GatewayRequest?? {
        guard let value = body.fields["external_gateway_info"] else { return nil }
        try context.enforce("\(action):external_gateway_info", target: ["project_id": project])
        guard let info = value.objectValue, let network = info["network_id"]?.stringValue else { return .some(nil) }
        var request = NetworkService.GatewayRequest(networkID: network)
        if let snat = info["enable_snat"] {
            try context.enforce("\(action):external_gateway_info:enable_snat", target: ["project_id": project])
            request.enableSNAT = NeutronValue.boolean(snat)
        }
        if let ips = info["external_fixed_ips"]?.arrayValue {
            try context.enforce("\(action):external_gateway_info:external_fixed_ips", target: ["project_id": project])
            request.fixedIPs = ips.compactMap(\.objectValue).map { entry in
                NetworkService.FixedIPRequest(subnetID: entry["subnet_id"]?.stringValue, ipAddress: entry["ip_address"]?.stringValue)
            }
        }
        return .some(request)
    }

    /// The `routes` of a router body (`{"router": {"routes": [...]}}`), in canonical form.
    func routes(_ body: NeutronBody) throws -> [HostRoute]? {
        try hostRoutes(body, "routes")?.compactMap { route in
            guard let destination = IPNetwork(route.destination, strict: false), let nexthop = IPAddress(route.nexthop) else { return nil }
            return HostRoute(destination: destination.description, nexthop: nexthop.description)
        }
    }

    func registerRouters(on v20: APIRoutes) {
        v20.get("routers") { request, context in
            let (_, viewer) = try viewer(context)
            let routers = try await service.routers(visibleTo: viewer).filter { try context.allows("get_router", target: ["project_id": $0.projectID]) }
            let listing = NeutronListing(collection: "routers", attributes: Self.routerAttributes, request: request,
                                         path: environment.publicURL + "/networking/v2.0/routers")
            return respond(.ok, try listing.page(routers.map(routerJSON), notFound: { NetworkingFailure.routerNotFound($0) }))
        }
        v20.get("routers/:id") { request, context in
            let router = try await visibleRouter(try context.parameters.require("id"), context)
            return respond(.ok, ["router": NeutronListing.shown(routerJSON(router), request: request)])
        }
        v20.post("routers", body: NeutronResource.router.body(.create)) { request, context in
            let (caller, _) = try viewer(context)
            let body = try NeutronBody(try await environment.body(request, context), .router, .create)
            let project = try owningProject(body, caller)
            try context.enforce("create_router", target: ["project_id": project])
            if project != caller.projectID { try context.enforce("admin_only") }
            for attribute in ["distributed", "ha"] where try body.bool(attribute) == true {
                throw APIFault(.badRequest, "Invalid input for operation: \(attribute) routers are not supported by this cloud.", type: "InvalidInput")
            }
            if let hints = try body.strings("availability_zone_hints"), !hints.isEmpty {
                throw APIFault(.badRequest, "Invalid input for operation: availability zone hints of routers are not supported.", type: "InvalidInput")
            }
            var create = NetworkService.RouterCreate(projectID: project)
            create.name = try body.string("name") ?? ""
            create.description = try body.string("description") ?? ""
            create.adminStateUp = try body.bool("admin_state_up") ?? true
            create.gateway = try gatewayRequest(body, action: "create_router", context, project: project) ?? nil
            create.tags = try body.tags()
            let router = try await service.createRouter(create)
            logger.info("router created", metadata: ["router": "\(router.id)"])
            return respond(.created, ["router": NeutronListing.shown(routerJSON(router), request: request)])
        }
        v20.put("routers/:id", body: NeutronResource.router.body(.update)) { request, context in
            _ = try context.caller()
            let body = try NeutronBody(try await environment.body(request, context), .router, .update)
            let existing = try await visibleRouter(try context.parameters.require("id"), context)
            try context.enforce("update_router", target: ["project_id": existing.projectID])
            for attribute in ["distributed", "ha"] where try body.bool(attribute) == true {
                throw APIFault(.badRequest, "Invalid input for operation: \(attribute) routers are not supported by this cloud.", type: "InvalidInput")
            }
            var update = NetworkService.RouterUpdate()
            update.name = try body.string("name")
            update.description = try body.string("description")
            update.adminStateUp = try body.bool("admin_state_up")
            update.gateway = try gatewayRequest(body, action: "update_router", context, project: existing.projectID)
            update.routes = try routes(body)
            let router = try await service.updateRouter(existing.id, update)
            return respond(.ok, ["router": NeutronListing.shown(routerJSON(router), request: request)])
        }
        v20.delete("routers/:id") { request, context in
            let existing = try await visibleRouter(try context.parameters.require("id"), context)
            try context.enforce("delete_router", target: ["project_id": existing.projectID])
            try await service.deleteRouter(existing.id)
            logger.info("router deleted", metadata: ["router": "\(existing.id)"])
            return noContent()
        }
        /// The subnet and port of an interface body (`NeutronBodies.routerInterface` checked them).
        @Sendable func interfaceBody(_ request: Request, _ context: APIRequestContext) async throws -> (subnet: String?, port: String?) {
            let body = try await environment.body(request, context)
            return (body["subnet_id"]?.stringValue, body["port_id"]?.stringValue)
        }
        @Sendable func interfaceJSON(_ interface: NetworkService.RouterInterface) -> JSON {
            ["id": .string(interface.routerID), "tenant_id": .string(interface.projectID), "project_id": .string(interface.projectID),
             "port_id": .string(interface.portID), "network_id": .string(interface.networkID),
             "subnet_id": .string(interface.subnetIDs.first), "subnet_ids": strings(interface.subnetIDs)]
        }
        v20.put("routers/:id/add_router_interface", body: .json(NeutronBodies.routerInterface, style: .neutron)) { request, context in
            let existing = try await visibleRouter(try context.parameters.require("id"), context)
            try context.enforce("add_router_interface", target: ["project_id": existing.projectID])
            let (subnet, port) = try await interfaceBody(request, context)
            let (_, viewer) = try viewer(context)
            let interface = try await service.addRouterInterface(existing.id, subnetID: subnet, portID: port, viewer: viewer)
            logger.info("router interface added", metadata: ["router": "\(existing.id)", "port": "\(interface.portID)"])
            return respond(.ok, interfaceJSON(interface))
        }
        v20.put("routers/:id/remove_router_interface", body: .json(NeutronBodies.routerInterface, style: .neutron)) { request, context in
            let existing = try await visibleRouter(try context.parameters.require("id"), context)
            try context.enforce("remove_router_interface", target: ["project_id": existing.projectID])
            let (subnet, port) = try await interfaceBody(request, context)
            let interface = try await service.removeRouterInterface(existing.id, subnetID: subnet, portID: port)
            logger.info("router interface removed", metadata: ["router": "\(existing.id)", "port": "\(interface.portID)"])
            return respond(.ok, interfaceJSON(interface))
        }
        for (path, action) in [("add_extraroutes", "add_extraroutes"), ("remove_extraroutes", "remove_extraroutes")] {
            v20.put("routers/:id/\(path)", body: NeutronResource.extraRoutes.body(.update)) { request, context in
                // Neutron checks the body (as a router update's) before it looks for the router.
                _ = try context.caller()
                let body = try NeutronBody(try await environment.body(request, context), .extraRoutes, .update)
                let existing = try await visibleRouter(try context.parameters.require("id"), context)
                try context.enforce(action, target: ["project_id": existing.projectID])
                guard let routes = try routes(body) else { throw body.invalid("routes", "routes is required") }
                let router = try await service.editRoutes(existing.id, adding: action == "add_extraroutes" ? routes : [],
                                                          removing: action == "remove_extraroutes" ? routes : [])
                return respond(.ok, ["router": .object(routerJSON(router))])
            }
        }
        registerTags(on: v20, "routers", kind: .routers) { id, viewer in
            let router = try await service.router(id, visibleTo: viewer)
            return (router.projectID, router.tags)
        }
        registerFloatingIPs(on: v20)
    }

    func registerFloatingIPs(on v20: APIRoutes) {
        v20.get("floatingips") { request, context in
            let (_, viewer) = try viewer(context)
            let fips = try await service.floatingIPs(visibleTo: viewer).filter { try context.allows("get_floatingip", target: ["project_id": $0.projectID]) }
            let listing = NeutronListing(collection: "floatingips", attributes: Self.floatingIPAttributes, request: request,
                                         path: environment.publicURL + "/networking/v2.0/floatingips")
            return respond(.ok, try listing.page(try await floatingIPsJSON(fips), notFound: { NetworkingFailure.floatingIPNotFound($0) }))
        }
        v20.get("floatingips/:id") { request, context in
            let fip = try await visibleFloatingIP(try context.parameters.require("id"), context)
            return respond(.ok, ["floatingip": NeutronListing.shown(try await floatingIPsJSON([fip])[0], request: request)])
        }
        v20.post("floatingips", body: NeutronResource.floatingIP.body(.create)) { request, context in
            let (caller, viewer) = try viewer(context)
            let body = try NeutronBody(try await environment.body(request, context), .floatingIP, .create)
            let project = try owningProject(body, caller)
            try context.enforce("create_floatingip", target: ["project_id": project])
            if project != caller.projectID { try context.enforce("admin_only") }
            var create = NetworkService.FloatingIPCreate(projectID: project, networkID: try body.required("floating_network_id"))
            if let address = try body.nullableString("floating_ip_address") ?? nil {
                try context.enforce("create_floatingip:floating_ip_address", target: ["project_id": project])
                create.address = address
            }
            create.subnetID = try body.nullableString("subnet_id") ?? nil
            create.portID = try body.nullableString("port_id") ?? nil
            create.fixedIPAddress = try body.nullableString("fixed_ip_address") ?? nil
            create.description = try body.string("description") ?? ""
            create.dnsName = try body.string("dns_name") ?? ""
            create.dnsDomain = try body.string("dns_domain") ?? ""
            create.tags = try body.tags()
            let fip = try await service.createFloatingIP(create, viewer: Viewer(projectID: project, isAdmin: viewer.isAdmin))
            logger.info("floating IP allocated", metadata: ["floatingip": "\(fip.id)", "address": "\(fip.floatingIPAddress)"])
            return respond(.created, ["floatingip": NeutronListing.shown(try await floatingIPsJSON([fip])[0], request: request)])
        }
        v20.put("floatingips/:id", body: NeutronResource.floatingIP.body(.update)) { request, context in
            _ = try context.caller()
            let body = try NeutronBody(try await environment.body(request, context), .floatingIP, .update)
            let existing = try await visibleFloatingIP(try context.parameters.require("id"), context)
            try context.enforce("update_floatingip", target: ["project_id": existing.projectID])
            let (_, viewer) = try viewer(context)
            let fip = try await service.updateFloatingIP(existing.id, portID: try body.nullableString("port_id"),
                                                         fixedIPAddress: try body.nullableString("fixed_ip_address") ?? nil,
                                                         description: try body.string("description"),
                                                         viewer: Viewer(projectID: existing.projectID, isAdmin: viewer.isAdmin))
            logger.info("floating IP updated", metadata: ["floatingip": "\(fip.id)", "port": "\(fip.portID ?? "none")"])
            return respond(.ok, ["floatingip": NeutronListing.shown(try await floatingIPsJSON([fip])[0], request: request)])
        }
        v20.delete("floatingips/:id") { request, context in
            let existing = try await visibleFloatingIP(try context.parameters.require("id"), context)
            try context.enforce("delete_floatingip", target: ["project_id": existing.projectID])
            try await service.deleteFloatingIP(existing.id)
            logger.info("floating IP released", metadata: ["floatingip": "\(existing.id)"])
            return noContent()
        }
        registerTags(on: v20, "floatingips", kind: .floatingIPs) { id, viewer in
            let fip = try await service.floatingIP(id, visibleTo: viewer)
            return (fip.projectID, fip.tags)
        }

        // Port forwardings of one floating IP.
        @Sendable func forwarding(_ fip: FloatingIP, _ context: APIRequestContext) throws -> PortForwarding {
            let id = try context.parameters.require("forwarding_id")
            guard let found = fip.portForwardings.first(where: { $0.id == id }) else { throw NetworkingFailure.portForwardingNotFound(id) }
            return found
        }
        v20.get("floatingips/:id/port_forwardings") { request, context in
            let fip = try await visibleFloatingIP(try context.parameters.require("id"), context)
            try context.enforce("get_floatingip_port_forwarding", target: ["project_id": fip.projectID])
            let listing = NeutronListing(collection: "port_forwardings", attributes: Self.forwardingAttributes, request: request,
                                         path: environment.publicURL + "/networking/v2.0/floatingips/\(fip.id)/port_forwardings")
            return respond(.ok, try listing.page(fip.portForwardings.map(forwardingJSON), notFound: { NetworkingFailure.portForwardingNotFound($0) }))
        }
        v20.get("floatingips/:id/port_forwardings/:forwarding_id") { request, context in
            let fip = try await visibleFloatingIP(try context.parameters.require("id"), context)
            try context.enforce("get_floatingip_port_forwarding", target: ["project_id": fip.projectID])
            return respond(.ok, ["port_forwarding": NeutronListing.shown(forwardingJSON(try forwarding(fip, context)), request: request)])
        }
        v20.post("floatingips/:id/port_forwardings", body: NeutronResource.portForwarding.body(.create)) { request, context in
            _ = try context.caller()
            let body = try NeutronBody(try await environment.body(request, context), .portForwarding, .create)
            let fip = try await visibleFloatingIP(try context.parameters.require("id"), context)
            try context.enforce("create_floatingip_port_forwarding", target: ["project_id": fip.projectID])
            guard let internalPortID = try body.string("internal_port_id"), let internalPort = try body.int("internal_port"),
                  let externalPort = try body.int("external_port"), let proto = try body.string("protocol") else {
                throw APIFault(.badRequest, "Failed to parse request. Required attributes 'internal_port_id', 'internal_port', 'external_port' and 'protocol' must be specified",
                               type: "HTTPBadRequest")
            }
            var create = NetworkService.PortForwardingCreate(internalPortID: internalPortID, internalIPAddress: try body.string("internal_ip_address"),
                                                             internalPort: internalPort, externalPort: externalPort, protocol: proto.lowercased())
            create.description = try body.string("description") ?? ""
            let (_, viewer) = try viewer(context)
            let made = try await service.createPortForwarding(fip.id, create, viewer: Viewer(projectID: fip.projectID, isAdmin: viewer.isAdmin))
            return respond(.created, ["port_forwarding": NeutronListing.shown(forwardingJSON(made), request: request)])
        }
        v20.put("floatingips/:id/port_forwardings/:forwarding_id", body: NeutronResource.portForwarding.body(.update)) { request, context in
            _ = try context.caller()
            let body = try NeutronBody(try await environment.body(request, context), .portForwarding, .update)
            let fip = try await visibleFloatingIP(try context.parameters.require("id"), context)
            try context.enforce("update_floatingip_port_forwarding", target: ["project_id": fip.projectID])
            let existing = try forwarding(fip, context)
            let updated = try await service.updatePortForwarding(fip.id, existing.id, internalPort: try body.int("internal_port"),
                                                                 externalPort: try body.int("external_port"), description: try body.string("description"))
            return respond(.ok, ["port_forwarding": NeutronListing.shown(forwardingJSON(updated), request: request)])
        }
        v20.delete("floatingips/:id/port_forwardings/:forwarding_id") { request, context in
            let fip = try await visibleFloatingIP(try context.parameters.require("id"), context)
            try context.enforce("delete_floatingip_port_forwarding", target: ["project_id": fip.projectID])
            try await service.deletePortForwarding(fip.id, try forwarding(fip, context).id)
            return noContent()
        }
    }
}
