import Foundation
import Hummingbird
import Networking
import PetrelCore
import PetrelHTTP

/// Security groups, their rules and address groups (`/security-groups`,
/// `/security-group-rules`, `/address-groups`), with Neutron's bodies, policy and errors.
extension NetworkAPI {
    static let ruleReader = "rule:admin_only or (role:reader and project_id:%(project_id)s) or (role:reader and project_id:%(security_group:project_id)s)"
    static let ruleOwner = "rule:admin_only or (role:member and project_id:%(project_id)s) or (role:member and project_id:%(security_group:project_id)s)"

    static let securityGroupPolicies: [PolicyDefault] = [
        PolicyDefault("create_security_group", owner, "Create a security group.", ["POST /networking/v2.0/security-groups"]),
        PolicyDefault("get_security_group", reader, "Show a security group.",
                      ["GET /networking/v2.0/security-groups", "GET /networking/v2.0/security-groups/{id}"]),
        PolicyDefault("update_security_group", owner, "Change a security group.", ["PUT /networking/v2.0/security-groups/{id}"]),
        PolicyDefault("delete_security_group", owner, "Delete a security group.", ["DELETE /networking/v2.0/security-groups/{id}"]),
        PolicyDefault("create_security_group_rule", ruleOwner, "Add a rule to a security group.", ["POST /networking/v2.0/security-group-rules"]),
        PolicyDefault("get_security_group_rule", ruleReader, "Show a security group rule.",
                      ["GET /networking/v2.0/security-group-rules", "GET /networking/v2.0/security-group-rules/{id}"]),
        PolicyDefault("delete_security_group_rule", ruleOwner, "Delete a security group rule.",
                      ["DELETE /networking/v2.0/security-group-rules/{id}"]),
        PolicyDefault("create_address_group", owner, "Create an address group.", ["POST /networking/v2.0/address-groups"]),
        PolicyDefault("get_address_group", reader, "Show an address group.",
                      ["GET /networking/v2.0/address-groups", "GET /networking/v2.0/address-groups/{id}"]),
        PolicyDefault("update_address_group", owner, "Change an address group, add or remove its addresses.",
                      ["PUT /networking/v2.0/address-groups/{id}", "PUT /networking/v2.0/address-groups/{id}/add_addresses",
                       "PUT /networking/v2.0/address-groups/{id}/remove_addresses"]),
        PolicyDefault("delete_address_group", owner, "Delete an address group.", ["DELETE /networking/v2.0/address-groups/{id}"]),
    ] + tagPolicies("security_group")

    static let securityGroupAttributes: Set<String> = [
        "id", "name", "description", "project_id", "tenant_id", "stateful", "shared", "security_group_rules", "tags", "revision_number",
        "created_at", "updated_at",
    ]
    static let ruleAttributes: Set<String> = [
        "id", "security_group_id", "project_id", "tenant_id", "description", "direction", "ethertype", "protocol", "port_range_min",
        "port_range_max", "remote_ip_prefix", "normalized_cidr", "remote_group_id", "remote_address_group_id", "revision_number",
        "created_at", "updated_at", "belongs_to_default_sg",
    ]
    static let addressGroupAttributes: Set<String> = [
        "id", "name", "description", "project_id", "tenant_id", "addresses", "revision_number", "created_at", "updated_at",
    ]

    func ruleJSON(_ rule: SecurityGroupRule) -> [String: JSON] {
        func number(_ value: Int?) -> JSON { value.map { .number(Double($0)) } ?? nil }
        return [
            "id": .string(rule.id), "security_group_id": .string(rule.securityGroupID), "project_id": .string(rule.projectID),
            "tenant_id": .string(rule.projectID), "description": .string(rule.description), "direction": .string(rule.direction),
            "ethertype": .string(rule.ethertype), "protocol": .string(rule.protocol), "port_range_min": number(rule.portRangeMin),
            "port_range_max": number(rule.portRangeMax), "remote_ip_prefix": .string(rule.remoteIPPrefix),
            "normalized_cidr": .string(rule.normalizedCIDR), "remote_group_id": .string(rule.remoteGroupID),
            "remote_address_group_id": .string(rule.remoteAddressGroupID), "revision_number": .number(Double(rule.revision)),
            "belongs_to_default_sg": .bool(rule.belongsToDefaultGroup),
            "created_at": resourceTime(rule.createdAt), "updated_at": resourceTime(rule.updatedAt),
        ]
    }

    func securityGroupJSON(_ group: SecurityGroup) -> [String: JSON] {
        [
            "id": .string(group.id), "name": .string(group.name), "description": .string(group.description),
            "project_id": .string(group.projectID), "tenant_id": .string(group.projectID), "stateful": .bool(group.stateful),
            // No RBAC sharing of groups: each is its project's alone.
            "shared": false,
            "security_group_rules": .array(group.rules.map { .object(ruleJSON($0)) }), "tags": strings(group.tags),
            "revision_number": .number(Double(group.revision)),
            "created_at": resourceTime(group.createdAt), "updated_at": resourceTime(group.updatedAt),
        ]
    }

    func addressGroupJSON(_ group: AddressGroup) -> [String: JSON] {
        [
            "id": .string(group.id), "name": .string(group.name), "description": .string(group.description),
            "project_id": .string(group.projectID), "tenant_id": .string(group.projectID), "addresses": strings(group.addresses),
            "revision_number": .number(Double(group.revision)),
            "created_at": resourceTime(group.createdAt), "updated_at": resourceTime(group.updatedAt),
        ]
    }

    func visibleGroup(_ id: String, _ context: APIRequestContext) async throws -> SecurityGroup {
        let (_, viewer) = try viewer(context)
        let group = try await service.securityGroup(id, visibleTo: viewer)
        guard try context.allows("get_security_group", target: ["project_id": group.projectID]) else {
            throw NetworkingFailure.securityGroupNotFound(id)
        }
        return group
    }

    func ruleTarget(_ rule: SecurityGroupRule) -> [String: String] {
        ["project_id": rule.projectID, "security_group:project_id": rule.projectID]
    }

    /// A rule's `protocol`: a name, a number (as JSON number or string), or null for any
    /// (`NeutronType.ruleProtocol` refused anything else).
    static func protocolText(_ body: NeutronBody) -> String? {
        switch body.fields["protocol"] {
        case .string(let text)?: return text
        case let value?: return NeutronValue.integer(value).map(String.init)
        case nil: return nil
        }
    }

    func registerSecurityGroups(on v20: APIRoutes) {
        v20.get("security-groups") { request, context in
            let (_, viewer) = try viewer(context)
            let groups = try await service.securityGroups(visibleTo: viewer)
                .filter { try context.allows("get_security_group", target: ["project_id": $0.projectID]) }
            let listing = NeutronListing(collection: "security_groups", attributes: Self.securityGroupAttributes, request: request,
                                         path: environment.publicURL + "/networking/v2.0/security-groups")
            return respond(.ok, try listing.page(groups.map(securityGroupJSON), notFound: { NetworkingFailure.securityGroupNotFound($0) }))
        }
        v20.get("security-groups/:id") { request, context in
            let group = try await visibleGroup(try context.parameters.require("id"), context)
            return respond(.ok, ["security_group": NeutronListing.shown(securityGroupJSON(group), request: request)])
        }
        v20.post("security-groups", body: NeutronResource.securityGroup.body(.create)) { request, context in
            let (caller, _) = try viewer(context)
            let body = try NeutronBody(try await environment.body(request, context), .securityGroup, .create)
            let project = try owningProject(body, caller)
            try context.enforce("create_security_group", target: ["project_id": project])
            if project != caller.projectID { try context.enforce("admin_only") }
            let group = try await service.createSecurityGroup(projectID: project, name: try body.string("name") ?? "",
                                                              description: try body.string("description") ?? "",
                                                              stateful: try body.bool("stateful") ?? true, tags: try body.tags())
            logger.info("security group created", metadata: ["security_group": "\(group.id)"])
            return respond(.created, ["security_group": NeutronListing.shown(securityGroupJSON(group), request: request)])
        }
        v20.put("security-groups/:id", body: NeutronResource.securityGroup.body(.update)) { request, context in
            _ = try context.caller()
            let body = try NeutronBody(try await environment.body(request, context), .securityGroup, .update)
            let existing = try await visibleGroup(try context.parameters.require("id"), context)
            try context.enforce("update_security_group", target: ["project_id": existing.projectID])
            let group = try await service.updateSecurityGroup(existing.id, name: try body.string("name"), description: try body.string("description"),
                                                              stateful: try body.bool("stateful"))
            return respond(.ok, ["security_group": NeutronListing.shown(securityGroupJSON(group), request: request)])
        }
        v20.delete("security-groups/:id") { request, context in
            let existing = try await visibleGroup(try context.parameters.require("id"), context)
            try context.enforce("delete_security_group", target: ["project_id": existing.projectID])
            try await service.deleteSecurityGroup(existing.id, byAdmin: try context.allows("admin_only"))
            logger.info("security group deleted", metadata: ["security_group": "\(existing.id)"])
            return noContent()
        }
        registerTags(on: v20, "security-groups", kind: .securityGroups, resource: "security_group") { id, viewer in
            let group = try await service.securityGroup(id, visibleTo: viewer)
            return (group.projectID, group.tags)
        }
        registerRules(on: v20)
        registerAddressGroups(on: v20)
    }

    func registerRules(on v20: APIRoutes) {
        v20.get("security-group-rules") { request, context in
            let (_, viewer) = try viewer(context)
            let rules = try await service.securityGroupRules(visibleTo: viewer).filter { try context.allows("get_security_group_rule", target: ruleTarget($0)) }
            let listing = NeutronListing(collection: "security_group_rules", attributes: Self.ruleAttributes, request: request,
                                         path: environment.publicURL + "/networking/v2.0/security-group-rules")
            return respond(.ok, try listing.page(rules.map(ruleJSON), notFound: { NetworkingFailure.ruleNotFound($0) }))
        }
        v20.get("security-group-rules/:id") { request, context in
            let (_, viewer) = try viewer(context)
            let id = try context.parameters.require("id")
            let rule = try await service.securityGroupRule(id, visibleTo: viewer)
            guard try context.allows("get_security_group_rule", target: ruleTarget(rule)) else { throw NetworkingFailure.ruleNotFound(id) }
            return respond(.ok, ["security_group_rule": NeutronListing.shown(ruleJSON(rule), request: request)])
        }
        v20.post("security-group-rules", body: .json(NeutronBodies.securityGroupRules, style: .neutron)) { request, context in
            let (caller, viewer) = try viewer(context)
            let whole = try await environment.body(request, context)
            // One rule, or Neutron's bulk form {"security_group_rules": [...]}: all or none.
            var requests: [NetworkService.RuleCreate] = []
            for body in try NeutronBodies.ruleItems(whole) {
                let groupID = try body.required("security_group_id")
                let direction = try body.required("direction")
                let group = try await service.securityGroup(groupID, visibleTo: viewer)
                try context.enforce("create_security_group_rule", target: ["project_id": group.projectID, "security_group:project_id": group.projectID])
                var rule = NetworkService.RuleCreate(securityGroupID: group.id, projectID: group.projectID)
                _ = try owningProject(body, caller)
                rule.description = try body.string("description") ?? ""
                rule.direction = direction
                rule.ethertype = try body.string("ethertype") ?? "IPv4"
                rule.protocol = Self.protocolText(body)
                rule.portRangeMin = try body.int("port_range_min")
                rule.portRangeMax = try body.int("port_range_max")
                rule.remoteIPPrefix = try body.nullableString("remote_ip_prefix") ?? nil
                rule.remoteGroupID = try body.nullableString("remote_group_id") ?? nil
                rule.remoteAddressGroupID = try body.nullableString("remote_address_group_id") ?? nil
                requests.append(rule)
            }
            let rules = try await service.createSecurityGroupRules(requests, byAdmin: try context.allows("admin_only"))
            logger.info("security group rules created", metadata: ["rules": "\(rules.map(\.id))"])
            if whole["security_group_rules"] != nil {
                return respond(.created, ["security_group_rules": .array(rules.map { .object(ruleJSON($0)) })])
            }
            return respond(.created, ["security_group_rule": NeutronListing.shown(ruleJSON(rules[0]), request: request)])
        }
        v20.delete("security-group-rules/:id") { request, context in
            let (_, viewer) = try viewer(context)
            let id = try context.parameters.require("id")
            let rule = try await service.securityGroupRule(id, visibleTo: viewer)
            guard try context.allows("get_security_group_rule", target: ruleTarget(rule)) else { throw NetworkingFailure.ruleNotFound(id) }
            try context.enforce("delete_security_group_rule", target: ruleTarget(rule))
            try await service.deleteSecurityGroupRule(id)
            logger.info("security group rule deleted", metadata: ["rule": "\(id)"])
            return noContent()
        }
    }

    func registerAddressGroups(on v20: APIRoutes) {
        @Sendable func visible(_ context: APIRequestContext) async throws -> AddressGroup {
            let (_, viewer) = try viewer(context)
            let id = try context.parameters.require("id")
            let group = try await service.addressGroup(id, visibleTo: viewer)
            guard try context.allows("get_address_group", target: ["project_id": group.projectID]) else {
                throw NetworkingFailure.addressGroupNotFound(id)
            }
            return group
        }
        v20.get("address-groups") { request, context in
            let (_, viewer) = try viewer(context)
            let groups = try await service.addressGroups(visibleTo: viewer)
                .filter { try context.allows("get_address_group", target: ["project_id": $0.projectID]) }
            let listing = NeutronListing(collection: "address_groups", attributes: Self.addressGroupAttributes, request: request,
                                         path: environment.publicURL + "/networking/v2.0/address-groups")
            return respond(.ok, try listing.page(groups.map(addressGroupJSON), notFound: { NetworkingFailure.addressGroupNotFound($0) }))
        }
        v20.get("address-groups/:id") { request, context in
            respond(.ok, ["address_group": NeutronListing.shown(addressGroupJSON(try await visible(context)), request: request)])
        }
        v20.post("address-groups", body: NeutronResource.addressGroup.body(.create)) { request, context in
            let (caller, _) = try viewer(context)
            let body = try NeutronBody(try await environment.body(request, context), .addressGroup, .create)
            let project = try owningProject(body, caller)
            try context.enforce("create_address_group", target: ["project_id": project])
            if project != caller.projectID { try context.enforce("admin_only") }
            let group = try await service.createAddressGroup(projectID: project, name: try body.string("name") ?? "",
                                                             description: try body.string("description") ?? "",
                                                             addresses: try body.strings("addresses") ?? [])
            return respond(.created, ["address_group": NeutronListing.shown(addressGroupJSON(group), request: request)])
        }
        v20.put("address-groups/:id", body: NeutronResource.addressGroup.body(.update)) { request, context in
            _ = try context.caller()
            let body = try NeutronBody(try await environment.body(request, context), .addressGroup, .update)
            let existing = try await visible(context)
            try context.enforce("update_address_group", target: ["project_id": existing.projectID])
            let group = try await service.updateAddressGroup(existing.id, name: try body.string("name"), description: try body.string("description"))
            return respond(.ok, ["address_group": NeutronListing.shown(addressGroupJSON(group), request: request)])
        }
        for (action, adding) in [("add_addresses", true), ("remove_addresses", false)] {
            v20.put("address-groups/:id/\(action)", body: .json(NeutronBodies.addresses, style: .neutron)) { request, context in
                let existing = try await visible(context)
                try context.enforce("update_address_group", target: ["project_id": existing.projectID])
                // Neutron's member actions take their bodies as they are, after policy; the schema checked the form.
                let addresses = (try await environment.body(request, context)["addresses"]?.arrayValue ?? []).compactMap(\.stringValue)
                let group = try await service.updateAddressGroup(existing.id, adding: adding ? addresses : [], removing: adding ? [] : addresses)
                return respond(.ok, ["address_group": .object(addressGroupJSON(group))])
            }
        }
        v20.delete("address-groups/:id") { request, context in
            let existing = try await visible(context)
            try context.enforce("delete_address_group", target: ["project_id": existing.projectID])
            try await service.deleteAddressGroup(existing.id)
            return noContent()
        }
    }
}
