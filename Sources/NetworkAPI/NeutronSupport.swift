import Foundation
import Hummingbird
import Networking
import PetrelCore
import PetrelHTTP

/// Turns the network service's refusals into Neutron's error bodies.
struct NetworkingFailureMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: APIRequestContext,
                next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let failure as NetworkingFailure {
            throw failure.fault
        }
    }
}

/// One API extension as `GET /v2.0/extensions` lists it. Only what this API implements is listed:
/// clients decide what to send by these aliases.
struct NeutronExtension {
    let alias: String
    let name: String
    let description: String

    var json: JSON {
        ["alias": .string(alias), "name": .string(name), "description": .string(description),
         "updated": "2026-12-01T10:00:00-00:00", "links": []]
    }
}

extension NetworkAPI {
    static let extensions: [NeutronExtension] = [
        .init(alias: "address-group", name: "Address group", description: "Support address group"),
        .init(alias: "agent", name: "agent", description: "The agent management extension."),
        .init(alias: "allowed-address-pairs", name: "Allowed Address Pairs", description: "Provides allowed address pairs"),
        .init(alias: "availability_zone", name: "Availability Zone", description: "The availability zone extension."),
        .init(alias: "network_availability_zone", name: "Network Availability Zone", description: "Availability zone support for network."),
        .init(alias: "binding", name: "Port Binding", description: "Expose port bindings of a virtual port to external application"),
        .init(alias: "dns-integration", name: "DNS Integration", description: "Provides integration with DNS."),
        .init(alias: "expose-port-forwarding-in-fip", name: "Expose port forwardings in a floating IP",
              description: "Expose port forwardings of a floating IP in its body"),
        .init(alias: "ext-gw-mode", name: "Neutron L3 Configurable external gateway mode",
              description: "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway"),
        .init(alias: "external-net", name: "Neutron external network", description: "Adds external network attribute to network resource."),
        .init(alias: "extra_dhcp_opt", name: "Neutron Extra DHCP options", description: "Extra options configuration for DHCP."),
        .init(alias: "extraroute", name: "Neutron Extra Route", description: "Extra routes configuration for L3 router"),
        .init(alias: "extraroute-atomic", name: "Atomically add/remove extra routes",
              description: "Edit extra routes of a router on server side by atomically adding/removing extra routes"),
        .init(alias: "fields", name: "Fields", description: "Supports the fields parameter of GET requests."),
        .init(alias: "fip-port-details", name: "Floating IP Port Details Extension", description: "Add port_details attribute to Floating IP resource"),
        .init(alias: "floating-ip-port-forwarding", name: "Floating IP Port Forwarding",
              description: "Allow forwarding of a port of a floating IP to a port of an internal address"),
        .init(alias: "floating-ip-port-forwarding-description", name: "Floating IP Port Forwarding new attribute description",
              description: "Add a description field to Port Forwarding rules"),
        .init(alias: "filter-validation", name: "Filter parameters validation", description: "Refuses filters on unknown attributes."),
        .init(alias: "net-mtu", name: "Network MTU", description: "Provides MTU attribute for a network resource."),
        .init(alias: "net-mtu-writable", name: "Network MTU (writable)", description: "Provides a writable MTU attribute for a network resource."),
        .init(alias: "network-ip-availability", name: "Network IP Availability", description: "Provides IP availability data for each network and subnet."),
        .init(alias: "pagination", name: "Pagination support", description: "Extension that indicates that pagination is enabled."),
        .init(alias: "port-security", name: "Port Security", description: "Provides port security"),
        .init(alias: "project-id", name: "project_id field enabled", description: "Extension that indicates that project_id field is enabled."),
        .init(alias: "provider", name: "Provider Network", description: "Expose mapping of virtual networks to physical networks"),
        .init(alias: "quotas", name: "Quota management support", description: "Expose functions for quotas management per project"),
        .init(alias: "quota_details", name: "Quota details management support", description: "Expose functions for quotas usage statistics per project"),
        .init(alias: "router", name: "Neutron L3 Router",
              description: "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway."),
        .init(alias: "security-group", name: "security-group", description: "The security groups extension."),
        .init(alias: "security-groups-remote-address-group", name: "Remote address group id field for security group rules",
              description: "Add new field of remote address group id in security group rules"),
        .init(alias: "security-groups-rules-belongs-to-default-sg", name: "Security group rule belongs to the project's default security group",
              description: "Flag to determine if the security group rule belongs to the project's default security group"),
        .init(alias: "security-groups-normalized-cidr", name: "Normalized CIDR field for security group rules",
              description: "Add new field with normalized remote_ip_prefix cidr in SG rule"),
        .init(alias: "stateful-security-group", name: "Stateful security group", description: "Indicates if the security group is stateful or not"),
        .init(alias: "quota-check-limit", name: "Quota engine limit check", description: "Support for checking the resource usage before applying a new quota limit"),
        .init(alias: "sorting", name: "Sorting support", description: "Extension that indicates that sorting is enabled."),
        .init(alias: "standard-attr-description", name: "standard-attr-description", description: "Extension to add descriptions to standard attributes"),
        .init(alias: "standard-attr-revisions", name: "Resource revision numbers", description: "This extension will display the revision number of neutron resources."),
        .init(alias: "standard-attr-tag", name: "Tag support for resources with standard attribute", description: "Enables to set tag on resources with standard attribute."),
        .init(alias: "standard-attr-timestamp", name: "Resource timestamps", description: "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
    ]

    /// Who is asking, for the service's visibility rules.
    func viewer(_ context: APIRequestContext) throws -> (Caller, Viewer) {
        let caller = try context.caller()
        return (caller, Viewer(projectID: caller.projectID, isAdmin: try context.allows("admin_only")))
    }

    /// The attributes of `resource` the caller may not see (`get_network:provider:network_type`…).
    func hiddenAttributes(_ context: APIRequestContext, _ action: String, _ attributes: [String]) throws -> Set<String> {
        Set(try attributes.filter { !(try context.allows("\(action):\($0)")) })
    }

    /// The project a new resource belongs to: the caller's, or the one an admin names.
    func owningProject(_ body: NeutronBody, _ caller: Caller) throws -> String {
        let named = try body.string("project_id") ?? body.string("tenant_id")
        if let project = try body.string("project_id"), let tenant = try body.string("tenant_id"), project != tenant {
            throw NeutronFault.projectMismatch
        }
        guard let project = named ?? caller.projectID else {
            throw APIFault(.badRequest, "Invalid input for operation: a project is required.", type: "InvalidInput")
        }
        return project
    }
}

/// Neutron's timestamps of resources: 2026-11-25T16:00:00Z.
func resourceTime(_ milliseconds: Int64) -> JSON {
    let date = Date(timeIntervalSince1970: TimeInterval(milliseconds / 1000))
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return .string(formatter.string(from: date))
}

/// A string list attribute.
func strings(_ values: [String]) -> JSON { .array(values.map(JSON.string)) }

/// The tag sub-resource of networks, subnets and ports: `GET/PUT/DELETE …/{id}/tags[/{tag}]`.
extension NetworkAPI {
    func registerTags(on v20: APIRoutes, _ collection: String, kind: NetworkService.TaggedKind, resource: String? = nil,
                      find: @escaping @Sendable (String, Viewer) async throws -> (project: String, tags: [String])) {
        let resource = resource ?? String(collection.dropLast())
        @Sendable func target(_ request: Request, _ context: APIRequestContext, _ action: String) async throws -> String {
            let (_, viewer) = try viewer(context)
            let id = try context.parameters.require("id")
            let found = try await find(id, viewer)
            try context.enforce(action, target: ["project_id": found.project])
            return id
        }
        @Sendable func validTag(_ tag: String) throws -> String {
            if let reason = NeutronBodies.tagReason(tag) { throw NeutronFault.invalidInput(reason) }
            return tag
        }
        v20.get("\(collection)/:id/tags") { request, context in
            let (_, viewer) = try viewer(context)
            let found = try await find(try context.parameters.require("id"), viewer)
            return respond(.ok, ["tags": strings(found.tags)])
        }
        v20.get("\(collection)/:id/tags/:tag") { request, context in
            let (_, viewer) = try viewer(context)
            let tag = try context.parameters.require("tag")
            let found = try await find(try context.parameters.require("id"), viewer)
            guard found.tags.contains(tag) else {
                throw APIFault(.notFound, "Tag \(tag) could not be found for \(resource) \(try context.parameters.require("id")).", type: "TagNotFound")
            }
            return noContent()
        }
        v20.put("\(collection)/:id/tags", body: .json(NeutronBodies.tags, style: .neutron)) { request, context in
            // Neutron checks the tags before it looks for the resource.
            _ = try context.caller()
            let list = try await environment.body(request, context)["tags"]?.arrayValue ?? []
            let tags = try list.map { item -> String in try validTag(item.stringValue ?? "") }
            let id = try await target(request, context, "update_\(resource)_tags")
            let updated = try await service.editTags(kind, id) { _ in tags }
            return respond(.ok, ["tags": strings(updated)])
        }
        v20.put("\(collection)/:id/tags/:tag", body: .none) { request, context in
            let id = try await target(request, context, "update_\(resource)_tags")
            let tag = try validTag(try context.parameters.require("tag"))
            _ = try await service.editTags(kind, id) { $0 + [tag] }
            return noContent(.created)
        }
        v20.delete("\(collection)/:id/tags") { request, context in
            let id = try await target(request, context, "delete_\(resource)_tags")
            _ = try await service.editTags(kind, id) { _ in [] }
            return noContent()
        }
        v20.delete("\(collection)/:id/tags/:tag") { request, context in
            let id = try await target(request, context, "delete_\(resource)_tags")
            let tag = try context.parameters.require("tag")
            _ = try await service.editTags(kind, id) { tags in
                guard tags.contains(tag) else {
                    throw NetworkingFailure(404, "TagNotFound", "Tag \(tag) could not be found for \(resource) \(id).")
                }
                return tags.filter { $0 != tag }
            }
            return noContent()
        }
    }

    static func tagPolicies(_ resource: String) -> [PolicyDefault] {
        [PolicyDefault("update_\(resource)_tags", owner, "Set tags of a \(resource).",
                       ["PUT /networking/v2.0/\(resource)s/{id}/tags", "PUT /networking/v2.0/\(resource)s/{id}/tags/{tag}"]),
         PolicyDefault("delete_\(resource)_tags", owner, "Remove tags of a \(resource).",
                       ["DELETE /networking/v2.0/\(resource)s/{id}/tags", "DELETE /networking/v2.0/\(resource)s/{id}/tags/{tag}"])]
    }
}
