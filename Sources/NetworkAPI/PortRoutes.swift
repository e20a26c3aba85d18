import Foundation
import Hummingbird
import Networking
import PetrelCore
import PetrelHTTP

extension NetworkAPI {
    static let bindingAttributes = ["binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details"]
    static let portOwner = "rule:admin_only or (role:member and project_id:%(project_id)s) or (role:member and project_id:%(network:project_id)s)"
    static let portReader = "rule:admin_only or (role:reader and project_id:%(project_id)s) or (role:reader and project_id:%(network:project_id)s)"

    static let portPolicies: [PolicyDefault] = [
        PolicyDefault("create_port", owner, "Create a port.", ["POST /networking/v2.0/ports"]),
        PolicyDefault("create_port:device_owner", networkOwner, "Create a port owned by the network (device_owner network:…).",
                      ["POST /networking/v2.0/ports"]),
        PolicyDefault("create_port:mac_address", networkOwner, "Choose a new port's MAC address.", ["POST /networking/v2.0/ports"]),
        PolicyDefault("create_port:fixed_ips:ip_address", networkOwner, "Choose a new port's addresses.", ["POST /networking/v2.0/ports"]),
        PolicyDefault("create_port:port_security_enabled", networkOwner, "Turn port security off on a new port.", ["POST /networking/v2.0/ports"]),
        PolicyDefault("create_port:allowed_address_pairs", networkOwner, "Give a new port allowed address pairs.", ["POST /networking/v2.0/ports"]),
        PolicyDefault("create_port:binding:host_id", adminOnly, "Bind a new port to a host.", ["POST /networking/v2.0/ports"]),
        PolicyDefault("create_port:binding:profile", adminOnly, "Set a new port's binding profile.", ["POST /networking/v2.0/ports"]),
        PolicyDefault("get_port", portReader, "Show a port.", ["GET /networking/v2.0/ports", "GET /networking/v2.0/ports/{id}"]),
        PolicyDefault("update_port", portOwner, "Change a port.", ["PUT /networking/v2.0/ports/{id}"]),
        PolicyDefault("update_port:device_owner", networkOwner, "Make a port owned by the network.", ["PUT /networking/v2.0/ports/{id}"]),
        PolicyDefault("update_port:mac_address", adminOnly, "Change a port's MAC address.", ["PUT /networking/v2.0/ports/{id}"]),
        PolicyDefault("update_port:fixed_ips:ip_address", networkOwner, "Choose a port's addresses.", ["PUT /networking/v2.0/ports/{id}"]),
        PolicyDefault("update_port:port_security_enabled", networkOwner, "Turn a port's port security on or off.", ["PUT /networking/v2.0/ports/{id}"]),
        PolicyDefault("update_port:allowed_address_pairs", networkOwner, "Change a port's allowed address pairs.", ["PUT /networking/v2.0/ports/{id}"]),
        PolicyDefault("update_port:binding:host_id", adminOnly, "Bind a port to a host.", ["PUT /networking/v2.0/ports/{id}"]),
        PolicyDefault("update_port:binding:profile", adminOnly, "Change a port's binding profile.", ["PUT /networking/v2.0/ports/{id}"]),
        PolicyDefault("delete_port", portOwner, "Delete a port.", ["DELETE /networking/v2.0/ports/{id}"]),
    ] + bindingAttributes.map { attribute in
        PolicyDefault("get_port:\(attribute)", adminOnly, "See a port's \(attribute).", ["GET /networking/v2.0/ports/{id}"])
    } + tagPolicies("port")

    static let portAttributes: Set<String> = [
        "id", "name", "description", "project_id", "tenant_id", "network_id", "admin_state_up", "mac_address", "fixed_ips",
        "device_owner", "device_id", "status", "binding:host_id", "binding:vif_type", "binding:vif_details", "binding:vnic_type",
        "binding:profile", "allowed_address_pairs", "extra_dhcp_opts", "dns_name", "dns_assignment", "port_security_enabled",
        "security_groups", "tags", "revision_number", "created_at", "updated_at",
    ]

    func portJSON(_ port: Networking.Port, dnsDomain: String?) -> [String: JSON] {
        let domain = (dnsDomain?.isEmpty ?? true) ? service.settings.dnsDomain : dnsDomain!
        let trimmed = domain.hasSuffix(".") ? String(domain.dropLast()) : domain
        let assignment: [JSON] = port.fixedIPs.map { fixed in
            let host = port.dnsName.isEmpty
                ? "host-" + fixed.ipAddress.replacingOccurrences(of: ".", with: "-").replacingOccurrences(of: ":", with: "-")
                : port.dnsName
            return ["hostname": .string(host), "ip_address": .string(fixed.ipAddress), "fqdn": .string("\(host).\(trimmed).")]
        }
        var json: [String: JSON] = [
            "id": .string(port.id), "name": .string(port.name), "description": .string(port.description),
            "project_id": .string(port.projectID), "tenant_id": .string(port.projectID), "network_id": .string(port.networkID),
            "admin_state_up": .bool(port.adminStateUp), "mac_address": .string(port.macAddress),
            "device_owner": .string(port.deviceOwner), "device_id": .string(port.deviceID), "status": .string(port.status),
        ]
        json["fixed_ips"] = .array(port.fixedIPs.map { fixed -> JSON in
            ["subnet_id": .string(fixed.subnetID), "ip_address": .string(fixed.ipAddress)]
        })
        json["binding:host_id"] = .string(port.host)
        json["binding:vif_type"] = .string(port.vifType)
        json["binding:vif_details"] = JSON.parse(Array(port.vifDetails.utf8)) ?? [:]
        json["binding:vnic_type"] = .string(port.vnicType)
        json["binding:profile"] = JSON.parse(Array(port.profile.utf8)) ?? [:]
        json["allowed_address_pairs"] = .array(port.allowedAddressPairs.map { pair -> JSON in
            ["ip_address": .string(pair.ipAddress), "mac_address": .string(pair.macAddress.isEmpty ? port.macAddress : pair.macAddress)]
        })
        json["extra_dhcp_opts"] = .array(port.extraDHCPOpts.map { option -> JSON in
            ["opt_name": .string(option.name), "opt_value": .string(option.value), "ip_version": .number(Double(option.ipVersion))]
        })
        json["dns_name"] = .string(port.dnsName)
        json["dns_assignment"] = .array(assignment)
        json["port_security_enabled"] = .bool(port.portSecurityEnabled)
        json["security_groups"] = strings(port.securityGroups)
        json["tags"] = strings(port.tags)
        json["revision_number"] = .number(Double(port.revision))
        json["created_at"] = resourceTime(port.createdAt)
        json["updated_at"] = resourceTime(port.updatedAt)
        return json
    }

    static func portTarget(_ port: Networking.Port, _ network: Network?) -> [String: String] {
        ["project_id": port.projectID, "network:project_id": network?.projectID ?? port.projectID]
    }

    func visiblePort(_ id: String, _ context: APIRequestContext) async throws -> (Networking.Port, Network?) {
        let (_, viewer) = try viewer(context)
        let port = try await service.port(id, visibleTo: viewer)
        let network = try await service.networks(visibleTo: Viewer(projectID: nil, isAdmin: true), ids: [port.networkID]).first
        guard try context.allows("get_port", target: Self.portTarget(port, network)) else { throw NetworkingFailure.portNotFound(id) }
        return (port, network)
    }

    /// The fixed IPs of a port body (`NeutronType.fixedIPs` checked their form).
    func fixedIPRequests(_ body: NeutronBody) throws -> [NetworkService.FixedIPRequest]? {
        try body.objects("fixed_ips")?.map { entry in
            NetworkService.FixedIPRequest(subnetID: entry["subnet_id"]?.stringValue, ipAddress: entry["ip_address"]?.stringValue)
        }
    }

    /// The allowed address pairs of a port body (`NeutronType.addressPairs` checked their form).
    func addressPairs(_ body: NeutronBody) throws -> [AddressPair]? {
        try body.objects("allowed_address_pairs")?.compactMap { pair in
            pair["ip_address"]?.stringValue.map { AddressPair(ipAddress: $0, macAddress: pair["mac_address"]?.stringValue ?? "") }
        }
    }

    /// The extra DHCP options of a port body (`NeutronType.dhcpOptions` checked their form); one
    /// with a null value is one the port does not have.
    func dhcpOptions(_ body: NeutronBody) throws -> [DHCPOption]? {
        try body.objects("extra_dhcp_opts")?.compactMap { option in
            guard let name = option["opt_name"]?.stringValue, let value = option["opt_value"]?.stringValue else { return nil }
            let version = option["ip_version"].flatMap(NeutronValue.integer) ?? 4
            return DHCPOption(name: name, value: value, ipVersion: version)
        }
    }

    func registerPorts(on v20: APIRoutes) {
        v20.get("ports") { request, context in
            let (_, viewer) = try viewer(context)
            let ports = try await service.ports(visibleTo: viewer)
            let networks = Dictionary(uniqueKeysWithValues: try await service.networks(visibleTo: Viewer(projectID: nil, isAdmin: true),
                                                                                       ids: Array(Set(ports.map(\.networkID)))).map { ($0.id, $0) })
            let visible = try ports.filter { try context.allows("get_port", target: Self.portTarget($0, networks[$0.networkID])) }
            let listing = NeutronListing(collection: "ports", attributes: Self.portAttributes, request: request,
                                         path: environment.publicURL + "/networking/v2.0/ports")
            let hidden = try hiddenAttributes(context, "get_port", Self.bindingAttributes)
            let items = visible.map { portJSON($0, dnsDomain: networks[$0.networkID]?.dnsDomain) }
            return respond(.ok, try listing.page(items, hidden: hidden, notFound: { NetworkingFailure.portNotFound($0) }))
        }
        v20.get("ports/:id") { request, context in
            let (port, network) = try await visiblePort(try context.parameters.require("id"), context)
            let hidden = try hiddenAttributes(context, "get_port", Self.bindingAttributes)
            return respond(.ok, ["port": NeutronListing.shown(portJSON(port, dnsDomain: network?.dnsDomain), request: request, hidden: hidden)])
        }
        v20.post("ports", body: NeutronResource.port.body(.create)) { request, context in
            let (caller, _) = try viewer(context)
            let body = try NeutronBody(try await environment.body(request, context), .port, .create)
            let network = try await visibleNetwork(try body.required("network_id"), context)
            var create = NetworkService.PortCreate(networkID: network.id, projectID: try owningProject(body, caller))
            let target = ["project_id": create.projectID, "network:project_id": network.projectID]
            try context.enforce("create_port", target: target)
            if create.projectID != caller.projectID { try context.enforce("admin_only") }
            create.name = try body.string("name") ?? ""
            create.description = try body.string("description") ?? ""
            create.adminStateUp = try body.bool("admin_state_up") ?? true
            create.macAddress = try body.string("mac_address")
            create.fixedIPs = try fixedIPRequests(body)
            create.deviceOwner = try body.string("device_owner") ?? ""
            create.deviceID = try body.string("device_id") ?? ""
            create.host = try body.string("binding:host_id") ?? ""
            create.vnicType = try body.string("binding:vnic_type") ?? "normal"
            create.profile = try body.objectText("binding:profile") ?? "{}"
            create.allowedAddressPairs = try addressPairs(body) ?? []
            create.extraDHCPOpts = try dhcpOptions(body) ?? []
            create.dnsName = try body.string("dns_name") ?? ""
            create.portSecurityEnabled = try body.bool("port_security_enabled")
            create.securityGroups = try body.strings("security_groups")
            create.tags = try body.tags()
            if create.deviceOwner.hasPrefix("network:") { try context.enforce("create_port:device_owner", target: target) }
            if body.has("mac_address") { try context.enforce("create_port:mac_address", target: target) }
            if create.fixedIPs?.contains(where: { $0.ipAddress != nil }) == true {
                try context.enforce("create_port:fixed_ips:ip_address", target: target)
            }
            if create.portSecurityEnabled == false { try context.enforce("create_port:port_security_enabled", target: target) }
            if !create.allowedAddressPairs.isEmpty { try context.enforce("create_port:allowed_address_pairs", target: target) }
            if body.has("binding:host_id") { try context.enforce("create_port:binding:host_id", target: target) }
            if body.has("binding:profile") { try context.enforce("create_port:binding:profile", target: target) }
            let port = try await service.createPort(create)
            logger.info("port created", metadata: ["port": "\(port.id)", "network": "\(network.id)",
                                                   "addresses": "\(port.fixedIPs.map(\.ipAddress).joined(separator: ","))"])
            let hidden = try hiddenAttributes(context, "get_port", Self.bindingAttributes)
            return respond(.created, ["port": NeutronListing.shown(portJSON(port, dnsDomain: network.dnsDomain), request: request, hidden: hidden)])
        }
        v20.put("ports/:id", body: NeutronResource.port.body(.update)) { request, context in
            _ = try context.caller()
            let body = try NeutronBody(try await environment.body(request, context), .port, .update)
            let (existing, network) = try await visiblePort(try context.parameters.require("id"), context)
            let target = Self.portTarget(existing, network)
            try context.enforce("update_port", target: target)
            var update = NetworkService.PortUpdate()
            update.name = try body.string("name")
            update.description = try body.string("description")
            update.adminStateUp = try body.bool("admin_state_up")
            update.macAddress = try body.string("mac_address")
            update.fixedIPs = try fixedIPRequests(body)
            update.deviceOwner = try body.string("device_owner")
            update.deviceID = try body.string("device_id")
            update.host = try body.string("binding:host_id")
            update.vnicType = try body.string("binding:vnic_type")
            update.profile = try body.objectText("binding:profile")
            update.allowedAddressPairs = try addressPairs(body)
            update.extraDHCPOpts = try dhcpOptions(body)
            update.dnsName = try body.string("dns_name")
            update.portSecurityEnabled = try body.bool("port_security_enabled")
            update.securityGroups = try body.strings("security_groups")
            if update.deviceOwner?.hasPrefix("network:") == true { try context.enforce("update_port:device_owner", target: target) }
            if body.has("mac_address") { try context.enforce("update_port:mac_address", target: target) }
            if update.fixedIPs?.contains(where: { $0.ipAddress != nil }) == true {
                try context.enforce("update_port:fixed_ips:ip_address", target: target)
            }
            if body.has("port_security_enabled") { try context.enforce("update_port:port_security_enabled", target: target) }
            if body.has("allowed_address_pairs") { try context.enforce("update_port:allowed_address_pairs", target: target) }
            if body.has("binding:host_id") { try context.enforce("update_port:binding:host_id", target: target) }
            if body.has("binding:profile") { try context.enforce("update_port:binding:profile", target: target) }
            let port = try await service.updatePort(existing.id, update)
            let hidden = try hiddenAttributes(context, "get_port", Self.bindingAttributes)
            return respond(.ok, ["port": NeutronListing.shown(portJSON(port, dnsDomain: network?.dnsDomain), request: request, hidden: hidden)])
        }
        v20.delete("ports/:id") { request, context in
            let (existing, network) = try await visiblePort(try context.parameters.require("id"), context)
            try context.enforce("delete_port", target: Self.portTarget(existing, network))
            if [NetworkService.interfaceOwner, NetworkService.gatewayOwner, NetworkService.floatingIPOwner].contains(existing.deviceOwner) {
                throw APIFault(.conflict, "Port \(existing.id) cannot be deleted directly via the port API: has device owner \(existing.deviceOwner).",
                               type: "ServicePortInUse")
            }
            _ = try await service.deletePort(existing.id)
            logger.info("port deleted", metadata: ["port": "\(existing.id)"])
            return noContent()
        }
        registerTags(on: v20, "ports", kind: .ports) { id, viewer in
            let port = try await service.port(id, visibleTo: viewer)
            return (port.projectID, port.tags)
        }
    }
}
