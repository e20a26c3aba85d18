import Compute
import Contracts
import Foundation
import Hummingbird
import PetrelCore
import PetrelHTTP

/// `os-instance-actions`: what was asked of a server and what its host did, as Nova shows them
/// (`openstack server event list/show`).
extension ComputeAPI {
    static let instanceActionPolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:os-instance-actions:list", ownerReader, "List a server's actions.",
                      ["GET /compute/v2.1/servers/{server_id}/os-instance-actions"]),
        PolicyDefault("os_compute_api:os-instance-actions:show", ownerReader, "Show one action of a server.",
                      ["GET /compute/v2.1/servers/{server_id}/os-instance-actions/{request_id}"]),
        PolicyDefault("os_compute_api:os-instance-actions:events", "rule:context_is_admin",
                      "See an action's events (before 2.51) and their tracebacks and hosts.",
                      ["GET /compute/v2.1/servers/{server_id}/os-instance-actions/{request_id}"]),
        PolicyDefault("os_compute_api:os-instance-actions:events:details", "rule:context_is_admin",
                      "See the details of an action's failed events (2.84).",
                      ["GET /compute/v2.1/servers/{server_id}/os-instance-actions/{request_id}"]),
    ]

    /// Nova's action names for what `Servers.begin` calls its transitions.
    static func actionName(_ key: String) -> String {
        switch key {
        case "reboot_soft", "reboot_hard": "reboot"
        case "os-stop": "stop"
        case "os-start": "start"
        default: key
        }
    }

    /// Records an action a caller asked of a server (a failure to record does not undo it).
    func recordAction(_ id: String, _ action: String, host: String?, _ context: Contracts.RequestContext) async {
        do {
            try await servers.recordAction(id, action, host: host, context: context)
        } catch {
            logger.warning("could not record an instance action", metadata: ["instance": "\(id)", "action": "\(action)", "error": "\(error)"])
        }
    }

    func actionJSON(_ row: ServerActionRecord, _ version: Microversion) -> [String: JSON] {
        var object: [String: JSON] = [
            "action": .string(row.action), "instance_uuid": .string(row.instanceID), "message": JSON.string(row.message),
            "project_id": .string(row.projectID), "request_id": .string(row.requestID), "start_time": novaTime(row.startTime),
            "user_id": .string(row.userID),
        ]
        if version >= Microversion(2, 58) { object["updated_at"] = novaTime(row.updatedAt) }
        return object
    }

    func registerInstanceActions(on v21: APIRoutes) {
        v21.get("servers/:server_id/os-instance-actions", query: NovaQuerySchemas.open) { request, context in
            let id = try context.parameters.require("server_id")
            let (server, _, version, _) = try await authorizedServer(request, context, id, "os_compute_api:os-instance-actions:list")
            var since: Int64?, before: Int64?
            if version >= Microversion(2, 58), let text = request.query("changes-since") {
                guard let date = UTCTime.parse(text) else { throw APIFault(.badRequest, "Invalid input for query parameters changes-since.") }
                since = Int64(date.timeIntervalSince1970 * 1000)
            }
            if version >= Microversion(2, 66), let text = request.query("changes-before") {
                guard let date = UTCTime.parse(text) else { throw APIFault(.badRequest, "Invalid input for query parameters changes-before.") }
                before = Int64(date.timeIntervalSince1970 * 1000)
            }
            if let since, let before, since > before {
                throw APIFault(.badRequest, "The value of changes-since must be less than or equal to changes-before.")
            }
            var list = try await servers.actions(of: server.id, changedSince: since, changedBefore: before)
            var body: [String: JSON] = [:]
            if version >= Microversion(2, 58) {
                if let marker = request.query("marker") {
                    guard let index = list.firstIndex(where: { $0.requestID == marker }) else {
                        throw APIFault(.badRequest, "Marker \(marker) could not be found.")
                    }
                    list = Array(list[(index + 1)...])
                }
                if let limit = try Paging.novaLimit(request), list.count > limit {
                    list = Array(list.prefix(limit))
                    if let last = list.last {
                        body["links"] = Paging.nextLinks(base + "/v2.1/servers/\(server.id)/os-instance-actions", limit: limit,
                                                         marker: last.requestID)
                    }
                }
            }
            body["instanceActions"] = .array(list.map { .object(actionJSON($0, version)) })
            return answer(.ok, .object(body), version)
        }
        v21.get("servers/:server_id/os-instance-actions/:request_id", query: NovaQuerySchemas.open) { request, context in
            let id = try context.parameters.require("server_id")
            let requestID = try context.parameters.require("request_id")
            let (server, _, version, _) = try await authorizedServer(request, context, id, "os_compute_api:os-instance-actions:show")
            guard let record = try await servers.action(of: server.id, requestID: requestID) else {
                throw APIFault(.notFound, "Action for request_id \(requestID) on instance \(server.id) not found")
            }
            var object = actionJSON(record, version)
            let seesEvents = try context.allows("os_compute_api:os-instance-actions:events", target: ["project_id": server.projectID])
            // Everyone sees the events from 2.51; the host and the traceback stay an admin's.
            if seesEvents || version >= Microversion(2, 51) {
                let seesDetails = try context.allows("os_compute_api:os-instance-actions:events:details", target: ["project_id": server.projectID])
                object["events"] = .array(record.events.map { event in
                    var body: [String: JSON] = [
                        "event": .string(event.event), "start_time": novaTime(event.startTime), "finish_time": novaTime(event.finishTime),
                        "result": JSON.string(event.result),
                    ]
                    if seesEvents { body["traceback"] = .null }
                    if version >= Microversion(2, 62) {
                        if seesEvents { body["host"] = JSON.string(event.host) }
                        body["hostId"] = .string(Self.hostID(project: server.projectID, host: event.host))
                    }
                    if version >= Microversion(2, 84), seesDetails { body["details"] = JSON.string(event.details) }
                    return .object(body)
                })
            }
            return answer(.ok, ["instanceAction": .object(object)], version)
        }
    }
}
