import Foundation
import HTTPTypes
import Hosts
import Hummingbird
import PetrelCore
import Logging
import PetrelHTTP

/// The Neutron v2.0 API under `/networking`: version discovery and (so far) the agents, which
/// are the network services every node reports.
public struct NetworkAPI: Sendable {
    public let environment: APIEnvironment
    public let hosts: HostInventory
    let logger: Logger

    public static let policyDefaults: [PolicyDefault] = [
        PolicyDefault("admin_only", "rule:context_is_admin", "Neutron's administrators."),
        PolicyDefault("get_agent", "rule:admin_only", "List or show network agents.",
                      ["GET /networking/v2.0/agents", "GET /networking/v2.0/agents/{id}"]),
        PolicyDefault("update_agent", "rule:admin_only", "Change an agent's admin_state_up or description.",
                      ["PUT /networking/v2.0/agents/{id}"]),
        PolicyDefault("delete_agent", "rule:admin_only", "Delete an agent.", ["DELETE /networking/v2.0/agents/{id}"]),
    ]

    /// Neutron's names of the agents a node runs: type and RPC topic as Neutron shows them.
    static let agents: [String: (type: String, topic: String)] = [
        "neutron-linuxbridge-agent": ("Linux bridge agent", "N/A"),
        "neutron-openvswitch-agent": ("Open vSwitch agent", "N/A"),
        "neutron-dhcp-agent": ("DHCP agent", "dhcp_agent"),
        "neutron-l3-agent": ("L3 agent", "l3_agent"),
        "neutron-metadata-agent": ("Metadata agent", "N/A"),
    ]

    public init(environment: APIEnvironment, hosts: HostInventory, logger: Logger) {
        self.environment = environment
        self.hosts = hosts
        self.logger = logger
    }

    public func register(on router: Router<APIRequestContext>) {
        let network = router.group("networking")
            .add(middleware: OpenStackErrorMiddleware(style: .neutron, publicURL: environment.publicURL, logger: logger))
            .add(middleware: environment.authentication)
        let version: JSON = ["id": "v2.0", "status": "CURRENT",
                             "links": [["rel": "self", "href": .string(environment.publicURL + "/networking/v2.0/")]]]
        network.get { _, _ in respond(.ok, ["versions": [version]]) }
        let v20 = network.group("v2.0")
        v20.get { _, _ in
            respond(.ok, ["resources": [["name": "agent", "collection": "agents",
                                         "links": [["rel": "self", "href": .string(environment.publicURL + "/networking/v2.0/agents")]]]]])
        }
        v20.get("extensions") { request, context in
            _ = try context.caller()
            return respond(.ok, ["extensions": [["alias": "agent", "name": "agent", "description": "The agent management extension.",
                                                 "updated": "2013-02-03T10:00:00-00:00", "links": []]]])
        }
        registerAgents(on: v20)
    }

    func begin(_ request: Request, _ context: APIRequestContext, _ action: String) async throws -> Caller {
        try context.enforce(action)
    }

    static func isAgent(_ binary: String) -> Bool { agents[binary] != nil }

    func agentJSON(_ service: ServiceStatus) -> JSON {
        let names = Self.agents[service.binary] ?? (type: service.binary, topic: "N/A")
        return ["id": .string(service.id), "binary": .string(service.binary), "agent_type": .string(names.type),
                "host": .string(service.host), "topic": .string(names.topic), "admin_state_up": .bool(service.enabled),
                "alive": .bool(service.up), "availability_zone": service.binary == "neutron-dhcp-agent" || service.binary == "neutron-l3-agent" ? "nova" : nil,
                "description": .string(service.record.disabledReason), "configurations": [:], "resources_synced": nil,
                "created_at": neutronTime(service.record.createdAt), "started_at": neutronTime(service.record.createdAt),
                "heartbeat_timestamp": neutronTime(service.record.lastSeenAt)]
    }

    func registerAgents(on v20: RouterGroup<APIRequestContext>) {
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
        v20.put("agents/:agent_id") { request, context in
            _ = try await begin(request, context, "update_agent")
            let existing = try await agent(context)
            guard let fields = try await environment.body(request)["agent"]?.objectValue else {
                throw APIFault(.badRequest, "Resource body required", type: "HTTPBadRequest")
            }
            if let unknown = fields.keys.first(where: { !["admin_state_up", "description"].contains($0) }) {
                throw APIFault(.badRequest, "Cannot update read-only attribute \(unknown)", type: "HTTPBadRequest")
            }
            var updated = existing
            if let value = fields["admin_state_up"] {
                guard let flag = value.boolValue else {
                    throw APIFault(.badRequest, "Invalid input for admin_state_up. Reason: '\(String(decoding: value.encoded(), as: UTF8.self))' cannot be converted to boolean.", type: "HTTPBadRequest")
                }
                let description = fields["description"]?.stringValue ?? existing.record.disabledReason
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
