import Foundation
import HTTPTypes
import Hummingbird
import PetrelCore
import PetrelHTTP
import Volumes

/// `/messages` (3.3+): the user messages failures left on a project's volumes, snapshots and
/// backups (list with Cinder's filters, sorting and pagination; show; delete).
extension VolumeAPI {
    static let messagesMinimum = Microversion(3, 3)

    static let messagePolicies: [PolicyDefault] = [
        PolicyDefault("message:get_all", "rule:admin_api or role:reader", "List the user messages.", ["GET /volume/v3/messages"]),
        PolicyDefault("message:get", reader, "Show a user message.", ["GET /volume/v3/messages/{id}"]),
        PolicyDefault("message:delete", member, "Delete a user message.", ["DELETE /volume/v3/messages/{id}"]),
    ]

    static let messageFilters: Set<String> = ["event_id", "resource_uuid", "resource_type", "request_id", "message_level",
                                              "all_tenants", "project_id", "limit", "marker", "sort", "sort_key", "sort_dir", "offset"]

    func registerMessages(on v3: APIRoutes, prefix: String) {
        v3.get(RouterPath(prefix + "messages")) { request, context in
            let version = try messagesVersion(request)
            try context.enforce("message:get_all")
            let projectID = try listScope(request, context, filters: Self.messageFilters)
            var list = try await volumes.messages(projectID: projectID)
            for (key, field) in [("event_id", \UserMessage.eventID), ("resource_type", \.resourceType), ("request_id", \.requestID),
                                 ("message_level", \.level)] as [(String, KeyPath<UserMessage, String>)] {
                if let wanted = request.query(key) { list = list.filter { $0[keyPath: field] == wanted } }
            }
            if let wanted = request.query("resource_uuid") { list = list.filter { $0.resourceID == wanted } }
            var body: [String: JSON] = [:]
            (list, body["messages_links"]) = try page(try Self.sortedMessages(list, request), request, id: \.id, path: "\(projectID ?? "")/messages")
            body["messages"] = .array(list.map(messageJSON))
            return ok(.object(body), version)
        }
        v3.get(RouterPath(prefix + "messages/:id")) { request, context in
            let (message, version) = try await messageTarget(request, context, "message:get")
            return ok(["message": messageJSON(message)], version)
        }
        v3.delete(RouterPath(prefix + "messages/:id")) { request, context in
            let (message, version) = try await messageTarget(request, context, "message:delete")
            try await volumes.deleteMessage(message.id, projectID: nil)
            return Response(status: .noContent, headers: version.headers(service: "volume", legacyHeader: nil))
        }
    }

    func messagesVersion(_ request: Request) throws -> Microversion {
        let version = try microversion(request)
        guard version >= Self.messagesMinimum else {
            throw APIFault(.notFound, "The resource could not be found. (messages need volume API 3.3 or later)")
        }
        return version
    }

    func messageTarget(_ request: Request, _ context: APIRequestContext, _ action: String) async throws -> (UserMessage, Microversion) {
        let version = try messagesVersion(request)
        let message = try await volumes.message(try context.parameters.require("id"), projectID: try scope(context))
        try context.enforce(action, target: ["project_id": message.projectID])
        return (message, version)
    }

    func messageJSON(_ message: UserMessage) -> JSON {
        var object: [String: JSON] = [
            "id": .string(message.id), "event_id": .string(message.eventID), "user_message": .string(message.userMessage),
            "message_level": .string(message.level), "created_at": Self.time(message.createdAt),
            "guaranteed_until": Self.time(message.expiresAt), "request_id": .string(message.requestID),
            "links": links(message.projectID, message.id, collection: "messages"),
        ]
        object["resource_type"] = .string(message.resourceType)
        if let id = message.resourceID { object["resource_uuid"] = .string(id) }
        return .object(object)
    }

    /// Newest first by default, as Cinder; `sort`/`sort_key` on created_at, id, event_id, resource_type, resource_uuid.
    static func sortedMessages(_ list: [UserMessage], _ request: Request) throws -> [UserMessage] {
        var key = "created_at", descending = true
        if let sort = request.query("sort")?.split(separator: ",").first {
            let pieces = sort.split(separator: ":").map(String.init)
            key = pieces[0]
            if pieces.count > 1 { descending = pieces[1].lowercased() != "asc" }
        } else {
            if let given = request.query("sort_key") { key = given }
            if let direction = request.query("sort_dir") { descending = direction.lowercased() != "asc" }
        }
        let value: (UserMessage) -> String
        switch key {
        case "created_at": value = { String(format: "%020lld", $0.createdAt) + $0.id }
        case "id": value = \.id
        case "event_id": value = \.eventID
        case "resource_type": value = \.resourceType
        case "resource_uuid": value = { $0.resourceID ?? "" }
        default: throw APIFault(.badRequest, "Invalid input received: sort key \(key) is not supported for messages")
        }
        return list.sorted { descending ? value($0) > value($1) : value($0) < value($1) }
    }
}
