import Foundation
import HTTPTypes
import Hosts
import Networking
import Hummingbird
import PetrelCore
import Logging
import PetrelHTTP

/// The Neutron v2.0 API under `/networking`: version discovery, the core resources
/// (networks, subnets, ports), their tags, quotas, IP availability, availability zones,
/// the extensions list, and the agents every node reports.
public struct NetworkAPI: Sendable {
    public let environment: APIEnvironment
    public let hosts: HostInventory
    public let service: NetworkService
    let logger: Logger

    static let adminOnly = "rule:admin_only"
    static let owner = "rule:admin_only or (role:member and project_id:%(project_id)s)"
    static let reader = "rule:admin_only or (role:reader and project_id:%(project_id)s)"
    static let networkOwner = "rule:admin_only or (role:member and project_id:%(network:project_id)s)"

    public static let policyDefaults: [PolicyDefault] = [
        PolicyDefault("admin_only", "rule:context_is_admin", "Neutron's administrators."),
        PolicyDefault("shared", "'True':%(shared)s", "The network is shared with every project."),
        PolicyDefault("external", "'True':%(router:external)s", "The network is an external network."),
        PolicyDefault("get_agent", "rule:admin_only", "List or show network agents.",
                      ["GET /networking/v2.0/agents", "GET /networking/v2.0/agents/{id}"]),
        PolicyDefault("update_agent", "rule:admin_only", "Change an agent's admin_state_up or description.",
                      ["PUT /networking/v2.0/agents/{id}"]),
        PolicyDefault("delete_agent", "rule:admin_only", "Delete an agent.", ["DELETE /networking/v2.0/agents/{id}"]),
    ] + networkPolicies + subnetPolicies + portPolicies + securityGroupPolicies + routerPolicies + [
        PolicyDefault("get_network_ip_availability", "rule:admin_only", "Show how many addresses networks' subnets have left.",
                      ["GET /networking/v2.0/network-ip-availabilities", "GET /networking/v2.0/network-ip-availabilities/{id}"]),
        PolicyDefault("get_quota", reader, "Show a project's network quotas.", ["GET /networking/v2.0/quotas/{project_id}"]),
        PolicyDefault("update_quota", adminOnly, "Change a project's network quotas.", ["PUT /networking/v2.0/quotas/{project_id}"]),
        PolicyDefault("delete_quota", adminOnly, "Reset a project's network quotas.", ["DELETE /networking/v2.0/quotas/{project_id}"]),
        PolicyDefault("get_availability_zone", "rule:admin_only or role:reader", "List availability zones.",
                      ["GET /networking/v2.0/availability_zones"]),
    ]

    public init(environment: APIEnvironment, hosts: HostInventory, service: NetworkService, logger: Logger) {
        self.environment = environment
        self.hosts = hosts
        self.service = service
        self.logger = logger
    }

    /// Neutron's names of the agents a node runs: type and RPC topic as Neutron shows them.
    static let agents: [String: (type: String, topic: String)] = [
        "neutron-linuxbridge-agent": ("Linux bridge agent", "N/A"),
        "neutron-openvswitch-agent": ("Open vSwitch agent", "N/A"),
        "neutron-dhcp-agent": ("DHCP agent", "dhcp_agent"),
        "neutron-l3-agent": ("L3 agent", "l3_agent"),
        "neutron-metadata-agent": ("Metadata agent", "N/A"),
    ]

    static let resources = ["network": "networks", "subnet": "subnets", "port": "ports", "agent": "agents",
                            "quota": "quotas", "network_ip_availability": "network-ip-availabilities",
                            "availability_zone": "availability_zones", "extension": "extensions", "security_group": "security-groups",
                            "security_group_rule": "security-group-rules", "address_group": "address-groups", "router": "routers",
                            "floatingip": "floatingips"]

    public func register(on router: Hummingbird.Router<APIRequestContext>) {
        let network = environment.routes(router, "networking")
            .add(middleware: OpenStackErrorMiddleware(style: .neutron, publicURL: environment.publicURL, logger: logger))
            .add(middleware: NetworkingFailureMiddleware())
            .add(middleware: environment.authentication)
        let version: JSON = ["id": "v2.0", "status": "CURRENT",
                             "links": [["rel": "self", "href": .string(environment.publicURL + "/networking/v2.0/")]]]
        network.get { _, _ in respond(.ok, ["versions": [version]]) }
        let v20 = network.group("v2.0")
        v20.get { _, _ in
            let list: [JSON] = Self.resources.sorted { $0.key < $1.key }.map { name, collection in
                ["name": .string(name), "collection": .string(collection),
                 "links": [["rel": "self", "href": .string(environment.publicURL + "/networking/v2.0/" + collection)]]]
            }
            return respond(.ok, ["resources": .array(list)])
        }
        v20.get("extensions") { request, context in
            _ = try context.caller()
            return respond(.ok, ["extensions": .array(Self.extensions.map(\.json))])
        }
        v20.get("extensions/:alias") { request, context in
            _ = try context.caller()
            let alias = try context.parameters.require("alias")
            guard let found = Self.extensions.first(where: { $0.alias == alias }) else {
                throw APIFault(.notFound, "Extension with alias \(alias) does not exist", type: "HTTPNotFound")
            }
            return respond(.ok, ["extension": found.json])
        }
        registerAgents(on: v20)
        registerNetworks(on: v20)
        registerSubnets(on: v20)
        registerPorts(on: v20)
        registerSecurityGroups(on: v20)
        registerRouters(on: v20)
        registerQuotas(on: v20)
    }

    func begin(_ request: Request, _ context: APIRequestContext, _ action: String) async throws -> Caller {
        try context.enforce(action)
    }

    static func isAgent(_ binary: String) -> Bool { agents[binary] != nil }

    /// What an agent shows (`agentJSON`): none of it is set by a request but what `NeutronResource.agent` says.
    static let agentAttributes: Set<String> = [
        "id", "binary", "agent_type", "host", "topic", "admin_state_up", "alive", "availability_zone", "description", "configurations",
        "resources_synced", "created_at", "started_at", "heartbeat_timestamp",
    ]

    func agentJSON(_ service: ServiceStatus) -> JSON {
        let names = Self.agents[service.binary] ?? (type: service.binary, topic: "N/A")
        return ["id": .string(service.id), "binary": .string(service.binary), "agent_type": .string(names.type),
                "host": .string(service.host), "topic": .string(names.topic), "admin_state_up": .bool(service.enabled),
                "alive": .bool(service.up), "availability_zone": service.binary == "neutron-dhcp-agent" || service.binary == "neutron-l3-agent" ? "nova" : nil,
                "description": .string(service.record.disabledReason), "configurations": [:], "resources_synced": nil,
                "created_at": neutronTime(service.record.createdAt), "started_at": neutronTime(service.record.createdAt),
                "heartbeat_timestamp": neutronTime(service.record.lastSeenAt)]
    }

    func registerAgents(on v20: APIRoutes) {
        v20.get("agents") { request, context in
            _ = try await begin(request, context, "get_agent")
            let filters = ["host", "binary", "agent_type", "admin_state_up", "alive", "id", "topic"].compactMap { key in
                request.query(key).map { (key, $0) }
            }
            let agents = try await hosts.services(where: { Self.isAgent($0.binary) }).map(agentJSON).filter { agent in
                filters.allSatisfy { key, value in
                    switch agent[key] {
                    case .string(let text)?: return text == value
                    case .bool(let flag)?: return (value.lowercased() == "true") == flag
                    default: return false
                    }
                }
            }
            return respond(.ok, ["agents": .array(agents)])
        }
        @Sendable func agent(_ context: APIRequestContext) async throws -> ServiceStatus {
            let id = try context.parameters.require("agent_id")
            guard let service = try await hosts.service(id: id), Self.isAgent(service.record.binary) else {
                throw APIFault(.notFound, "Agent \(id) could not be found.", type: "AgentNotFound")
            }
            return service
        }
        v20.get("agents/:agent_id") { request, context in
            _ = try await begin(request, context, "get_agent")
            return respond(.ok, ["agent": agentJSON(try await agent(context))])
        }
        v20.put("agents/:agent_id", body: NeutronResource.agent.body(.update)) { request, context in
            _ = try context.caller()
            let body = try NeutronBody(try await environment.body(request, context), .agent, .update)
            _ = try await begin(request, context, "update_agent")
            let existing = try await agent(context)
            var updated = existing
            if let flag = try body.bool("admin_state_up") {
                let description = try body.nullableString("description") ?? existing.record.disabledReason
                updated = try await hosts.setEnabled(id: existing.id, flag, reason: flag ? nil : description) ?? updated
            }
            return respond(.ok, ["agent": agentJSON(updated)])
        }
        v20.delete("agents/:agent_id") { request, context in
            _ = try await begin(request, context, "delete_agent")
            let existing = try await agent(context)
            guard try await hosts.delete(id: existing.id) else {
                throw APIFault(.notFound, "Agent \(existing.id) could not be found.", type: "AgentNotFound")
            }
            return noContent()
        }
    }
}

/// Neutron's timestamps: 2026-11-25 16:00:00.
func neutronTime(_ milliseconds: Int64?) -> JSON {
    guard let milliseconds, case .string(let text) = timestamp(milliseconds: milliseconds) else { return nil }
    return .string(String(text.prefix(19)).replacingOccurrences(of: "T", with: " "))
}
