import Compute
import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Networking
import PetrelCore
import PetrelHTTP

/// Nova's os-interface: `/servers/{id}/os-interface`, a server's ports listed, hot-plugged
/// (`openstack server add port|network|fixed ip`) and unplugged (`server remove port|network`).
extension ComputeAPI {
    static let interfacePolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:os-attach-interfaces:list", ownerReader, "List a server's interfaces.",
                      ["GET /compute/v2.1/servers/{server_id}/os-interface"]),
        PolicyDefault("os_compute_api:os-attach-interfaces:show", ownerReader, "Show one interface of a server.",
                      ["GET /compute/v2.1/servers/{server_id}/os-interface/{port_id}"]),
        PolicyDefault("os_compute_api:os-attach-interfaces:create", ownerMember, "Attach an interface to a server.",
                      ["POST /compute/v2.1/servers/{server_id}/os-interface"]),
        PolicyDefault("os_compute_api:os-attach-interfaces:delete", ownerMember, "Detach an interface from a server.",
                      ["DELETE /compute/v2.1/servers/{server_id}/os-interface/{port_id}"]),
        PolicyDefault("os_compute_api:os-security-groups:list", ownerReader, "List the security groups of a server's ports.",
                      ["GET /compute/v2.1/servers/{server_id}/os-security-groups"]),
        PolicyDefault("os_compute_api:os-security-groups:add", ownerMember, "Put a server's ports in a security group.",
                      ["POST /compute/v2.1/servers/{server_id}/action (addSecurityGroup)"]),
        PolicyDefault("os_compute_api:os-security-groups:remove", ownerMember, "Take a server's ports out of a security group.",
                      ["POST /compute/v2.1/servers/{server_id}/action (removeSecurityGroup)"]),
    ]

    func registerInterfaces(on v21: APIRoutes) {
        v21.get("servers/:server_id/os-security-groups", query: NovaQuerySchemas.open) { request, context in
            let id = try context.parameters.require("server_id")
            let (server, _, version, _) = try await authorizedServer(request, context, id, "os_compute_api:os-security-groups:list")
            let groups = try await servers.securityGroups(of: server)
            return answer(.ok, ["security_groups": .array(groups.map { group -> JSON in
                let rules: [JSON] = group.rules.filter { $0.direction == "ingress" }.map { rule in
                    var ipRange: JSON = [:]
                    if let prefix = rule.remoteIPPrefix { ipRange = ["cidr": .string(prefix)] }
                    let remote = rule.remoteGroupID.flatMap { remote in groups.first { $0.id == remote } }
                    return ["id": .string(rule.id), "parent_group_id": .string(group.id), "ip_protocol": .string(rule.protocol),
                            "from_port": rule.portRangeMin.map { .number(Double($0)) } ?? nil,
                            "to_port": rule.portRangeMax.map { .number(Double($0)) } ?? nil,
                            "ip_range": ipRange,
                            "group": remote.map { ["name": .string($0.name), "tenant_id": .string($0.projectID)] } ?? [:]]
                }
                return ["id": .string(group.id), "name": .string(group.name), "description": .string(group.description),
                        "tenant_id": .string(group.projectID), "rules": .array(rules)]
            })], version)
        }
        v21.get("servers/:server_id/os-interface", query: NovaQuerySchemas.open) { request, context in
            let id = try context.parameters.require("server_id")
            let (_, _, version, who) = try await authorizedServer(request, context, id, "os_compute_api:os-attach-interfaces:list")
            let ports = try await interfaceCall { try await servers.interfaces(id, by: who) }
            return answer(.ok, ["interfaceAttachments": .array(ports.map { interfaceJSON($0, version) })], version)
        }
        v21.get("servers/:server_id/os-interface/:port_id", query: NovaQuerySchemas.open) { request, context in
            let id = try context.parameters.require("server_id")
            let portID = try context.parameters.require("port_id")
            let (_, _, version, who) = try await authorizedServer(request, context, id, "os_compute_api:os-attach-interfaces:show")
            guard let port = try await interfaceCall({ try await servers.interfaces(id, by: who) }).first(where: { $0.id == portID }) else {
                throw APIFault(.notFound, "Instance \(id) has no interface with port id \(portID)")
            }
            return answer(.ok, ["interfaceAttachment": interfaceJSON(port, version)], version)
        }
        v21.post("servers/:server_id/os-interface", body: Self.body { InterfaceSchemas.create($0) }) { request, context in
            let id = try context.parameters.require("server_id")
            let (_, caller, version, who) = try await authorizedServer(request, context, id, "os_compute_api:os-attach-interfaces:create")
            let asked = try Self.interfaceRequest(try await environment.body(request, context), version)
            var wanted = asked
            if asked.networkID == nil && asked.portID == nil {
                // Nothing named: the one network the project may use, as Nova chooses it.
                let choice = try await resolveNetworks(.auto(explicit: true), project: who.projectID, isAdmin: who.isAdmin, count: 1)
                wanted.networkID = choice.first?.networkID
            }
            let port = try await interfaceCall {
                try await serverConductor.attachInterface(id, wanted, by: who, context: rpcContext(caller, who))
            }
            return answer(.ok, ["interfaceAttachment": interfaceJSON(port, version)], version)
        }
        v21.delete("servers/:server_id/os-interface/:port_id") { request, context in
            let id = try context.parameters.require("server_id")
            let portID = try context.parameters.require("port_id")
            let (_, caller, version, who) = try await authorizedServer(request, context, id, "os_compute_api:os-attach-interfaces:delete")
            try await interfaceCall { try await serverConductor.detachInterface(id, portID: portID, by: who, context: rpcContext(caller, who)) }
            return Response(status: .accepted, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }
    }

    /// The body of an attach, by Nova's schema: `port_id` or `net_id` (not both), at most one
    /// `fixed_ips` entry (with `net_id`).
    static func interfaceRequest(_ body: [String: JSON], _ version: Microversion) throws -> InterfaceRequest {
        if let unknown = body.keys.sorted().first(where: { $0 != "interfaceAttachment" }) {
            throw APIFault(.badRequest, "Invalid input for field/attribute body. Additional properties are not allowed ('\(unknown)' was unexpected)")
        }
        guard let value = body["interfaceAttachment"] else { return InterfaceRequest() }
        guard let fields = value.objectValue else {
            throw APIFault(.badRequest, "Invalid input for field/attribute interfaceAttachment. It is not of type 'object'")
        }
        let known: Set<String> = version >= Microversion(2, 49) ? ["port_id", "net_id", "fixed_ips", "tag"] : ["port_id", "net_id", "fixed_ips"]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw APIFault(.badRequest, "Invalid input for field/attribute interfaceAttachment. Additional properties are not allowed ('\(unknown)' was unexpected)")
        }
        if fields["tag"] != nil {
            // Device tags reach a guest through the metadata's devices list, which Petrel does not fill yet.
            throw APIFault(.badRequest, "Tagged network interface attach is not supported by this hypervisor.")
        }
        func uuid(_ key: String) throws -> String? {
            guard let field = fields[key], !field.isNull else { return nil }
            guard let text = field.stringValue, UUID(uuidString: text) != nil else {
                throw APIFault(.badRequest, "Invalid input for field/attribute \(key). Value: \(String(decoding: field.encoded(), as: UTF8.self)). It is not a 'uuid'")
            }
            return text.lowercased()
        }
        var request = InterfaceRequest(networkID: try uuid("net_id"), portID: try uuid("port_id"))
        if request.networkID != nil && request.portID != nil {
            throw APIFault(.badRequest, "Must not input both network_id and port_id")
        }
        if let value = fields["fixed_ips"] {
            guard let list = value.arrayValue, list.count <= 1 else {
                throw APIFault(.badRequest, "Invalid input for field/attribute fixed_ips. It must be a list of at most one address.")
            }
            if let entry = list.first {
                guard let object = entry.objectValue, object.keys.allSatisfy({ $0 == "ip_address" }),
                      let address = object["ip_address"]?.stringValue, IPAddress(address) != nil else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute fixed_ips. Each entry must be an object with an 'ip_address'.")
                }
                guard request.networkID != nil else { throw APIFault(.badRequest, "Must input network_id when request IP address") }
                request.fixedIP = address
            }
        }
        return request
    }

    func interfaceJSON(_ port: Networking.Port, _ version: Microversion) -> JSON {
        var object: [String: JSON] = [
            "port_id": .string(port.id), "net_id": .string(port.networkID), "mac_addr": .string(port.macAddress),
            "port_state": .string(port.status),
            "fixed_ips": .array(port.fixedIPs.map { ["ip_address": .string($0.ipAddress), "subnet_id": .string($0.subnetID)] }),
        ]
        if version >= Microversion(2, 70) { object["tag"] = .null }
        return .object(object)
    }

    /// The servers service's and Neutron's refusals in Nova's words (Neutron's own status:
    /// a network or port not found is a 404, a port in use a 409, no address left a 400).
    func interfaceCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await serverCall(body)
        } catch let failure as NetworkingFailure {
            switch failure.status {
            case 404: throw APIFault(.notFound, failure.message)
            case 409 where failure.type != "OverQuota": throw APIFault(.conflict, failure.message)
            case 409: throw APIFault(.forbidden, failure.message)
            default: throw APIFault(.badRequest, failure.message)
            }
        }
    }
}
