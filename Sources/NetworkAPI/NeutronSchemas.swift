import Foundation
import Networking
import PetrelCore
import PetrelHTTP

/// The request bodies of the Neutron API, declared once per resource (the attribute maps of
/// neutron-lib, trimmed to what this API implements): the routes declare the schemas made from
/// them, the handlers read the `NeutronBody` they let through.
extension NeutronResource {
    static let network = NeutronResource("network", shown: NetworkAPI.networkAttributes, [
        NeutronAttribute("name", .name),
        NeutronAttribute("description", .string()),
        NeutronAttribute("admin_state_up", .boolean),
        NeutronAttribute("shared", .boolean),
        NeutronAttribute("router:external", .boolean),
        NeutronAttribute("mtu", .integer),
        NeutronAttribute("port_security_enabled", .boolean),
        .createOnly("availability_zone_hints", .strings),
        NeutronAttribute("dns_domain", .string()),
        .createOnly("tags", .tags),
        .createOnly("project_id", .string()),
        .createOnly("tenant_id", .string()),
        .createOnly("segments", .segments),
        .createOnly("is_default", .boolean),
        // Updating them is refused by the handler, as Neutron's ML2 refuses it (after policy).
        NeutronAttribute("provider:network_type", .string()),
        NeutronAttribute("provider:physical_network", .string()),
        NeutronAttribute("provider:segmentation_id", .integer),
    ])

    static let subnet = NeutronResource("subnet", shown: NetworkAPI.subnetAttributes, [
        NeutronAttribute("name", .name),
        NeutronAttribute("description", .string()),
        .createOnly("network_id", .uuid, required: true),
        .createOnly("ip_version", .integer(oneOf: [4, 6]), required: true),
        .createOnly("cidr", NeutronType.string().orNull),
        NeutronAttribute("gateway_ip", NeutronType.string().orNull),
        NeutronAttribute("allocation_pools", .ipPools),
        NeutronAttribute("dns_nameservers", .strings),
        NeutronAttribute("host_routes", .hostRoutes),
        NeutronAttribute("enable_dhcp", .boolean),
        .createOnly("ipv6_address_mode", NeutronType.string().orNull),
        .createOnly("ipv6_ra_mode", NeutronType.string().orNull),
        .createOnly("tags", .tags),
        .createOnly("project_id", .string()),
        .createOnly("tenant_id", .string()),
        .createOnly("subnetpool_id", NeutronType.string().orNull),
        .createOnly("prefixlen", .integer),
        .createOnly("use_default_subnetpool", .boolean),
    ])

    static let port = NeutronResource("port", shown: NetworkAPI.portAttributes, [
        NeutronAttribute("name", .name),
        NeutronAttribute("description", .string()),
        .createOnly("network_id", .uuid, required: true),
        NeutronAttribute("admin_state_up", .boolean),
        NeutronAttribute("mac_address", .string()),
        NeutronAttribute("fixed_ips", .fixedIPs),
        NeutronAttribute("device_id", .string()),
        NeutronAttribute("device_owner", .string()),
        NeutronAttribute("binding:host_id", .string()),
        NeutronAttribute("binding:vnic_type", .string()),
        NeutronAttribute("binding:profile", .dictionaryOrNull),
        NeutronAttribute("allowed_address_pairs", .addressPairs),
        NeutronAttribute("extra_dhcp_opts", .dhcpOptions),
        NeutronAttribute("dns_name", .string()),
        NeutronAttribute("port_security_enabled", .boolean),
        NeutronAttribute("security_groups", .uuids),
        .createOnly("tags", .tags),
        .createOnly("project_id", .string()),
        .createOnly("tenant_id", .string()),
    ])

    static let router = NeutronResource("router", shown: NetworkAPI.routerAttributes, [
        NeutronAttribute("name", .name),
        NeutronAttribute("description", .string()),
        NeutronAttribute("admin_state_up", .boolean),
        NeutronAttribute("external_gateway_info", .gateway),
        .updateOnly("routes", .hostRoutes),
        // Either being true is refused by the handler: no DVR or HA routers here.
        NeutronAttribute("distributed", .boolean),
        NeutronAttribute("ha", .boolean),
        .createOnly("availability_zone_hints", .strings),
        .createOnly("tags", .tags),
        .createOnly("project_id", .string()),
        .createOnly("tenant_id", .string()),
    ])

    /// `PUT /routers/{id}/add_extraroutes` and `remove_extraroutes`: `{"router": {"routes": [...]}}`.
    static let extraRoutes = NeutronResource("router", [.updateOnly("routes", .hostRoutes)])

    static let floatingIP = NeutronResource("floatingip", shown: NetworkAPI.floatingIPAttributes, [
        .createOnly("floating_network_id", .uuid, required: true),
        .createOnly("floating_ip_address", NeutronType.ipAddress.orNull),
        .createOnly("subnet_id", NeutronType.uuid.orNull),
        NeutronAttribute("port_id", NeutronType.uuid.orNull),
        NeutronAttribute("fixed_ip_address", NeutronType.ipAddress.orNull),
        NeutronAttribute("description", .string()),
        .createOnly("dns_name", .string()),
        .createOnly("dns_domain", .string()),
        .createOnly("tags", .tags),
        .createOnly("project_id", .string()),
        .createOnly("tenant_id", .string()),
    ])

    /// A port forwarding of a floating IP; what it forwards to is fixed once made.
    static let portForwarding = NeutronResource("port_forwarding", shown: NetworkAPI.forwardingAttributes, [
        .createOnly("internal_port_id", .uuid),
        .createOnly("internal_ip_address", .string()),
        NeutronAttribute("internal_port", .integer),
        NeutronAttribute("external_port", .integer),
        .createOnly("protocol", .string()),
        NeutronAttribute("description", .string()),
    ])

    static let securityGroup = NeutronResource("security_group", shown: NetworkAPI.securityGroupAttributes, [
        NeutronAttribute("name", .string()),
        NeutronAttribute("description", .string()),
        NeutronAttribute("stateful", .boolean),
        .createOnly("tags", .tags),
        .createOnly("project_id", .string()),
        .createOnly("tenant_id", .string()),
    ])

    /// Rules are made and deleted, never updated. Direction, ethertype and the remote are
    /// checked by the service (as Neutron's plugin does, in its words).
    static let securityGroupRule = NeutronResource("security_group_rule", shown: NetworkAPI.ruleAttributes, [
        .createOnly("security_group_id", .string(), required: true),
        .createOnly("direction", .string(), required: true),
        .createOnly("ethertype", .string()),
        .createOnly("protocol", .ruleProtocol),
        .createOnly("port_range_min", .portValue),
        .createOnly("port_range_max", .portValue),
        .createOnly("remote_ip_prefix", NeutronType.string().orNull),
        .createOnly("remote_group_id", NeutronType.string().orNull),
        .createOnly("remote_address_group_id", NeutronType.string().orNull),
        .createOnly("description", .string()),
        .createOnly("project_id", .string()),
        .createOnly("tenant_id", .string()),
    ])

    static let addressGroup = NeutronResource("address_group", shown: NetworkAPI.addressGroupAttributes, [
        NeutronAttribute("name", .name),
        NeutronAttribute("description", .string()),
        .createOnly("addresses", .strings),
        .createOnly("project_id", .string()),
        .createOnly("tenant_id", .string()),
    ])

    /// Agents are only updated: enabled or disabled, with a reason.
    static let agent = NeutronResource("agent", shown: NetworkAPI.agentAttributes, [
        .updateOnly("admin_state_up", .boolean),
        .updateOnly("description", NeutronType.string().orNull),
    ])

    /// `PUT /quotas/{project_id}`: limits from -1 (unlimited) up to the database's integers,
    /// and the two flags of the quota-check-limit extension.
    static let quota = NeutronResource("quota", NetworkService.quotaResources.map { resource in
        NeutronAttribute.updateOnly(resource, .integer(in: -1...2_147_483_647))
    } + [.updateOnly("force", .boolean), .updateOnly("check_limit", .boolean)])
}

extension NeutronType {
    /// Tags as a create takes them (`list_of_unique_strings`, 255 characters each).
    static let tags = uniqueStrings(maxLength: 255)

    /// `type:ip_pools`.
    static let ipPools = validated { value in
        if value.isNull { return nil }
        guard let pools = value.arrayValue else { return "Invalid data format for IP pool: '\(NeutronValue.text(value))'" }
        for pool in pools {
            if let reason = NeutronValue.keys(["start", "end"], pool) { return reason }
            for key in ["start", "end"] { if let reason = NeutronValue.ipAddress(pool[key] ?? .null) { return reason } }
        }
        return nil
    }

    /// `type:hostroutes` (a subnet's host routes, a router's routes).
    static let hostRoutes = validated { value in
        if value.isNull { return nil }
        guard let routes = value.arrayValue else { return "Invalid data format for hostroute: '\(NeutronValue.text(value))'" }
        var seen: [JSON] = []
        for route in routes {
            if let reason = NeutronValue.keys(["destination", "nexthop"], route) { return reason }
            if let reason = NeutronValue.routeCIDR(route["destination"] ?? .null) { return reason }
            if let reason = NeutronValue.ipAddress(route["nexthop"] ?? .null) { return reason }
            if seen.contains(route) { return "Duplicate hostroute '\(NeutronValue.text(route))'" }
            seen.append(route)
        }
        return nil
    }

    /// `type:fixed_ips`, each entry naming a subnet, an address or both (and nothing else).
    static let fixedIPs = validated(fixedIPsReason)

    static func fixedIPsReason(_ value: JSON) -> String? {
        if value.isNull { return nil }
        guard let entries = value.arrayValue else { return "Invalid data format for fixed IP: '\(NeutronValue.text(value))'" }
        var addresses: [JSON] = []
        for entry in entries {
            guard let fields = entry.objectValue, !fields.isEmpty, fields.keys.allSatisfy({ ["subnet_id", "ip_address"].contains($0) }) else {
                return "Invalid data format for fixed IP: '\(NeutronValue.text(entry))'"
            }
            if let address = fields["ip_address"] {
                if addresses.contains(address) { return "Duplicate IP address '\(NeutronValue.text(address))'" }
                if let reason = NeutronValue.ipAddress(address) { return reason }
                addresses.append(address)
            }
            if let subnet = fields["subnet_id"], let reason = NeutronValue.uuid(subnet) { return reason }
        }
        return nil
    }

    /// `type:allowed_address_pairs`: its refusals are its own exceptions.
    static let addressPairs = NeutronType { attribute, value in
        if value.isNull { return nil }
        guard let pairs = value.arrayValue else { return NeutronFault.badRequest("Allowed address pairs must be a list.") }
        var seen: [JSON] = []
        for pair in pairs {
            guard let fields = pair.objectValue else {
                return NeutronFault.invalid(attribute, "'\(NeutronValue.text(pair))' is not a dictionary")
            }
            if let mac = fields["mac_address"], mac.stringValue == nil {
                return NeutronFault.badRequest("'\(NeutronValue.text(mac))' is not a valid MAC address")
            }
            guard let address = fields["ip_address"] else {
                return APIFault(.badRequest, "AllowedAddressPair must contain ip_address", type: "AllowedAddressPairsMissingIP")
            }
            let key: JSON = [fields["mac_address"] ?? .null, address]
            if seen.contains(key) {
                return APIFault(.badRequest, "Request contains duplicate address pair: mac_address \(NeutronValue.text(fields["mac_address"] ?? .null)) "
                                + "ip_address \(NeutronValue.text(address)).", type: "DuplicateAddressPairInRequest")
            }
            seen.append(key)
            let unknown = fields.keys.filter { !["ip_address", "mac_address"].contains($0) }.sorted()
            if !unknown.isEmpty { return NeutronFault.badRequest("Unrecognized attribute(s) '\(unknown.joined(separator: ", "))'") }
            let text = address.stringValue ?? ""
            if let reason = text.contains("/") ? NeutronValue.subnet(address) : NeutronValue.ipAddress(address) {
                return NeutronFault.badRequest(reason)
            }
        }
        return nil
    }

    /// `type:list_of_any_key_specs_or_none` with extra_dhcp_opt's two key specs (the options a
    /// blank value may clear, and the others); its refusals are InvalidInputs.
    static let dhcpOptions = NeutronType { _, value in
        if value.isNull { return nil }
        guard let options = value.arrayValue else { return NeutronFault.invalidInput("'\(NeutronValue.text(value))' is not a list") }
        if let repeated = NeutronValue.duplicates(options) { return NeutronFault.invalidInput(repeated) }
        for option in options {
            if let fields = option.objectValue, let version = fields["ip_version"], NeutronValue.integer(version) == nil {
                return NeutronFault.invalidInput("'\(NeutronValue.text(version))' is not an integer")
            }
            if !dhcpOptionMatches(option, blank: true) && !dhcpOptionMatches(option, blank: false) {
                return NeutronFault.invalidInput("No valid key specs matched for: \(NeutronValue.text(option))")
            }
        }
        return nil
    }

    static func dhcpOptionMatches(_ option: JSON, blank: Bool) -> Bool {
        guard let fields = option.objectValue, let name = fields["opt_name"], let value = fields["opt_value"],
              fields.keys.allSatisfy({ ["opt_name", "opt_value", "ip_version"].contains($0) }) else { return false }
        if let version = fields["ip_version"], ![4, 6].contains(NeutronValue.integer(version) ?? 0) { return false }
        func oneLine(_ text: String, _ maxLength: Int) -> Bool {
            text.count <= maxLength && !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty && !text.contains("\n") && !text.contains("\r")
        }
        if blank {
            guard let text = name.stringValue, ["router", "classless-static-route"].contains(text) else { return false }
            return value.isNull || NeutronValue.string(value, maxLength: 255) == nil
        }
        guard let text = name.stringValue, oneLine(text, 64) else { return false }
        return value.isNull || value.stringValue.map { oneLine($0, 255) } == true
    }

    /// `type:dict_or_nodata` of a router's `external_gateway_info`: null or {} clears the gateway.
    static let gateway = NeutronType { attribute, value in
        if value.isNull || value.objectValue?.isEmpty == true { return nil }
        guard let fields = value.objectValue else { return NeutronFault.invalid(attribute, "'\(NeutronValue.text(value))' is not a dictionary") }
        if let reason = NeutronValue.keys(["network_id"], value, strict: false) { return NeutronFault.invalid(attribute, reason) }
        let unexpected = fields.keys.filter { !["network_id", "external_fixed_ips", "enable_snat"].contains($0) }.sorted()
        if !unexpected.isEmpty { return NeutronFault.invalid(attribute, "Unexpected keys supplied: \(unexpected.joined(separator: ", "))") }
        if let reason = NeutronValue.uuid(fields["network_id"] ?? .null) { return NeutronFault.invalid(attribute, reason) }
        if let ips = fields["external_fixed_ips"], let reason = fixedIPsReason(ips) { return NeutronFault.invalid(attribute, reason) }
        if let snat = fields["enable_snat"] { return boolean.refusal("enable_snat", snat) }
        return nil
    }

    /// The multi-provider form of a network's segment (`segments`): the three provider attributes.
    static let segments = NeutronType { attribute, value in
        if value.isNull { return nil }
        guard let segments = value.arrayValue else { return NeutronFault.invalid(attribute, "'\(NeutronValue.text(value))' is not a list") }
        for segment in segments {
            guard let fields = segment.objectValue else {
                return NeutronFault.invalid(attribute, "'\(NeutronValue.text(segment))' is not a dictionary")
            }
            let unknown = fields.keys.filter { !NetworkAPI.providerAttributes.contains($0) }.sorted()
            if !unknown.isEmpty { return NeutronFault.badRequest("Unrecognized attribute(s) '\(unknown.joined(separator: ", "))'") }
            let types: [(String, NeutronType)] = [("provider:network_type", .string()), ("provider:physical_network", .string()),
                                                  ("provider:segmentation_id", NeutronType.integer.orNull)]
            for (name, type) in types {
                if let given = fields[name], let fault = type.refusal(name, given) { return fault }
            }
        }
        return nil
    }

    /// A rule's `protocol` (`convert_protocol`): null, a name or a number as JSON number or
    /// string; the names and the range are the service's to check, in the same words.
    static let ruleProtocol = NeutronType { _, value in
        switch value {
        case .null, .string: return nil
        case .number where NeutronValue.integer(value) != nil: return nil
        default:
            return APIFault(.badRequest, "Security group rule protocol \(NeutronValue.text(value)) not supported.",
                            type: "SecurityGroupRuleInvalidProtocol")
        }
    }

    /// A rule's port (`convert_validate_port_value`): null, or an integer from 0 to 65535.
    static let portValue = NeutronType { _, value in
        if value.isNull { return nil }
        guard let port = NeutronValue.integer(value), (0...65535).contains(port) else {
            return APIFault(.badRequest, "Invalid value for port \(NeutronValue.text(value)).", type: "SecurityGroupInvalidPortValue")
        }
        return nil
    }
}

/// The bodies that are no resource object: tags, router interfaces, an address group's
/// addresses, and the bulk form of security group rules.
enum NeutronBodies {
    /// `PUT …/{id}/tags`: `{"tags": [...]}`, as neutron's `validate_tags` checks it (and, as every
    /// tag here, none empty or with a comma: the tag filters split on commas).
    static let tags = Schema(fault: { body in
        guard let object = body.objectValue, let value = object["tags"] else { return NeutronFault.invalidInput("Invalid tags body") }
        guard let tags = value.arrayValue else { return NeutronFault.invalidInput("'\(NeutronValue.text(value))' is not a list") }
        if let repeated = NeutronValue.duplicates(tags) { return NeutronFault.invalidInput(repeated) }
        for tag in tags {
            if let reason = NeutronValue.string(tag, maxLength: 255) { return NeutronFault.invalidInput(reason) }
            if let reason = tagReason(tag.stringValue ?? "") { return NeutronFault.invalidInput(reason) }
        }
        return nil
    })

    /// Why a tag cannot be one here (empty, or with the filters' separator).
    static func tagReason(_ tag: String) -> String? {
        tag.isEmpty || tag.count > 255 || tag.contains(",") ? "'\(tag)' is not a valid tag" : nil
    }

    /// `PUT /routers/{id}/add_router_interface` and `remove_router_interface`: a subnet, a
    /// port or (to remove) both, by id; which of them must be given is the service's check.
    static let routerInterface = Schema(fault: { body in
        guard let object = body.objectValue else { return NeutronFault.badRequest("Body contains invalid data") }
        let unknown = object.keys.filter { !["subnet_id", "port_id"].contains($0) }.sorted()
        if !unknown.isEmpty { return NeutronFault.badRequest("Unrecognized attribute(s) '\(unknown.joined(separator: ", "))'") }
        for key in ["port_id", "subnet_id"] {
            if let value = object[key], let reason = NeutronValue.uuid(value) {
                return APIFault(.badRequest, "Bad router request: \(reason).", type: "BadRequest")
            }
        }
        return nil
    })

    /// `PUT /address-groups/{id}/add_addresses` and `remove_addresses`: `{"addresses": [...]}`
    /// at the top (the service checks and normalizes each CIDR).
    static let addresses = Schema(fault: { body in
        guard let object = body.objectValue, let list = object["addresses"]?.arrayValue, object.count == 1 else {
            return NeutronFault.invalidInput(#"the body must be {"addresses": [...]}"#)
        }
        if let item = list.first(where: { $0.stringValue == nil }) {
            return APIFault(.badRequest, "Invalid input for addresses. Reason: '\(NeutronValue.text(item))' is not a valid IP subnet.",
                            type: "InvalidInput")
        }
        return nil
    })

    /// `POST /security-group-rules`: one rule, or Neutron's bulk form `{"security_group_rules": [...]}`
    /// whose items are rules, bare or wrapped (`{"security_group_rule": {...}}`).
    static let securityGroupRules = Schema(fault: { body in
        guard let object = body.objectValue else { return NeutronFault.badRequest("Body contains invalid data") }
        guard object["security_group_rules"] != nil else { return NeutronResource.securityGroupRule.refusal(body, .create) }
        do {
            _ = try ruleItems(object)
            return nil
        } catch let fault as APIFault {
            return fault
        } catch {
            return NeutronFault.badRequest("Body contains invalid data")
        }
    })

    /// The rules of a rule create, each read as the schema checked it.
    static func ruleItems(_ body: [String: JSON]) throws -> [NeutronBody] {
        guard let bulk = body["security_group_rules"] else { return [try NeutronBody(body, .securityGroupRule, .create)] }
        guard let items = bulk.arrayValue else { throw NeutronFault.badRequest("Body contains invalid data") }
        if items.isEmpty { throw NeutronFault.badRequest("Resources required") }
        return try items.map { item in
            guard let fields = item.objectValue else { throw NeutronFault.badRequest("Body contains invalid data") }
            return try NeutronBody(resource: fields["security_group_rule"] ?? item, .securityGroupRule, .create)
        }
    }
}
