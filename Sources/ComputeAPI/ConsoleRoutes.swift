import Compute
import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import PetrelCore
import PetrelHTTP

/// Where the console proxy is reached, and the tokens it takes: what the remote consoles API
/// hands out URLs with.
public struct ConsoleAccess: Sendable {
    public var tokens: ConsoleTokens
    /// `[vnc] novncproxy_base_url`: noVNC's page on the proxy.
    public var novncBaseURL: String
    /// `[serial_console] base_url`: the proxy's WebSocket for serial consoles.
    public var serialBaseURL: String

    public init(tokens: ConsoleTokens, novncBaseURL: String, serialBaseURL: String) {
        self.tokens = tokens
        self.novncBaseURL = novncBaseURL
        self.serialBaseURL = serialBaseURL
    }
}

/// Nova's remote consoles: `POST /servers/{id}/remote-consoles` (2.6+), the older actions
/// `os-getVNCConsole` / `os-getSerialConsole` (before 2.6), and `GET /os-console-auth-tokens/{token}`
/// (2.31+, admins). Every URL carries a new single-use token the console proxy takes.
extension ComputeAPI {
    static let consolePolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:os-remote-consoles", ownerMember, "Get a URL of a server's VNC or serial console.",
                      ["POST /compute/v2.1/servers/{server_id}/remote-consoles",
                       "POST /compute/v2.1/servers/{server_id}/action (os-getVNCConsole)",
                       "POST /compute/v2.1/servers/{server_id}/action (os-getSerialConsole)"]),
        PolicyDefault("os_compute_api:os-console-auth-tokens", "rule:context_is_admin",
                      "Show the connection a console token opens.", ["GET /compute/v2.1/os-console-auth-tokens/{console_token}"]),
    ]

    /// The protocols and types Nova's schema takes at a microversion (Petrel serves vnc/novnc
    /// and serial/serial; the rest are refused the way Nova refuses a console it does not run).
    static func remoteConsoleSchema(_ version: Microversion) -> Schema {
        guard version >= Microversion(2, 6) else { return .object([], additional: true) }
        var protocols: [JSON] = ["vnc", "spice", "serial", "rdp"]
        var types: [JSON] = ["novnc", "xvpvnc", "spice-html5", "serial", "rdp-html5"]
        if version >= Microversion(2, 8) { protocols.append("mks"); types.append("webmks") }
        if version >= Microversion(2, 99) { types.append("spice-direct") }
        return .object([("remote_console", .object([("protocol", .choice(protocols, types: [.string])),
                                                      ("type", .choice(types, types: [.string]))],
                                                     required: ["protocol", "type"]))],
                       required: ["remote_console"])
    }

    func registerConsoles(on v21: APIRoutes) {
        v21.post("servers/:server_id/remote-consoles", body: Self.body(Self.remoteConsoleSchema)) { request, context in
            let id = try context.parameters.require("server_id")
            let version = try Self.microversion(request)
            guard version >= Microversion(2, 6) else { throw APIFault(.notFound, "The resource could not be found.") }
            // The body is checked against Nova's schema before anything else.
            let body = try await environment.body(request, context)
            let (server, caller, _, who) = try await authorizedServer(request, context, id, "os_compute_api:os-remote-consoles")
            let fields = body["remote_console"]?.objectValue ?? [:]
            let proto = fields["protocol"]?.stringValue ?? ""
            let type = fields["type"]?.stringValue ?? ""
            let url = try await consoleURL(server, protocol: proto, type: type, context: rpcContext(caller, who))
            return answer(.ok, ["remote_console": ["protocol": .string(proto), "type": .string(type), "url": .string(url)]], version)
        }
        v21.get("os-console-auth-tokens/:console_token", query: NovaQuerySchemas.open) { request, context in
            let token = try context.parameters.require("console_token")
            let version = try Self.microversion(request)
            // Before 2.31 the API served only rdp-html5 consoles, which Nova no longer has.
            guard version >= Microversion(2, 31) else {
                throw APIFault(.badRequest, "The server could not comply with the request since it is either malformed or otherwise incorrect.")
            }
            try context.enforce("os_compute_api:os-console-auth-tokens")
            guard let consoles, let console = try await consoles.tokens.show(token) else {
                throw APIFault(.notFound, "Token not found")
            }
            return answer(.ok, ["console": ["instance_uuid": .string(console.instanceID), "host": .string(console.host),
                                            "port": .number(Double(console.port)),
                                            "internal_access_path": console.internalAccessPath.map { .string($0) } ?? nil]], version)
        }
    }

    /// The old actions (before 2.6): `os-getVNCConsole` and `os-getSerialConsole`, each with
    /// its `type`. The server action route has checked the caller may act on the server.
    func consoleAction(_ name: String, _ argument: JSON, server: Server, caller: Caller, who: ServerCaller, context: APIRequestContext,
                       version: Microversion) async throws -> Response {
        guard version < Microversion(2, 6) else { throw APIFault(.notFound, "The resource could not be found.") }
        try context.enforce("os_compute_api:os-remote-consoles", target: ["project_id": server.projectID])
        let types: [JSON] = name == "os-getVNCConsole" ? ["novnc", "xvpvnc"] : ["serial"]
        let schema = Schema.object([(name, .object([("type", .choice(types, types: [.string]))], required: ["type"]))], required: [name])
        if let violation = schema.violation([name: argument]) { throw violation.fault(.nova) }
        let type = argument.objectValue?["type"]?.stringValue ?? ""
        let url = try await consoleURL(server, protocol: name == "os-getVNCConsole" ? "vnc" : "serial", type: type,
                                       context: rpcContext(caller, who))
        return answer(.ok, ["console": ["type": .string(type), "url": .string(url)]], version)
    }

    /// Asks the server's host where its console listens, and makes a token for it.
    func consoleURL(_ server: Server, protocol proto: String, type: String, context: Contracts.RequestContext) async throws -> String {
        if proto == "rdp" { throw APIFault(.badRequest, "Unavailable console type \(proto).") }
        guard let host = server.host else { throw APIFault(.conflict, "Instance \(server.id) is not ready") }
        if let task = server.taskState, task == .deleting {
            throw APIFault(.conflict, "Cannot 'get_\(proto)_console' instance \(server.id) while it is in task_state \(task.rawValue)")
        }
        let kind: ConsoleConnection.Kind
        switch (proto, type) {
        case ("vnc", "novnc"): kind = .vnc
        case ("serial", "serial"): kind = .serial
        case ("vnc", _), ("serial", _): throw APIFault(.badRequest, "Invalid console type \(type)")
        // SPICE and VMware's MKS are not served by this cloud's hypervisors.
        default: throw APIFault(.badRequest, "Unavailable console type \(type).")
        }
        guard let consoles else { throw APIFault(.badRequest, "Unavailable console type \(type).") }
        guard server.vmState == .active else { throw APIFault(.conflict, "Instance \(server.id) is not ready") }
        let connection = try await serverConductor.consoleConnection(server.id, on: host, kind: kind, context: context)
        switch connection.problem {
        case .unavailable: throw APIFault(.badRequest, "Unavailable console type \(type).")
        case .notRunning: throw APIFault(.conflict, "Instance \(server.id) is not ready")
        case nil: break
        }
        let base = kind == .vnc ? consoles.novncBaseURL : consoles.serialBaseURL
        let token = try await consoles.tokens.issue(
            ConsoleToken(consoleType: type, instanceID: server.id, computeHost: host, host: connection.host, port: connection.port,
                         internalAccessPath: nil, expiresAt: 0),
            accessURLBase: base)
        return ConsoleTokens.accessURL(base: base, consoleType: type, token: token)
    }
}
