import Compute
import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import PetrelCore
import PetrelHTTP

/// `POST /os-server-external-events`: other services tell Nova about servers (what each event
/// does here is told in `ExternalEvents`).
extension ComputeAPI {
    static let externalEventPolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:os-server-external-events:create", "role:admin or role:service",
                      "Tell the compute service about servers (Neutron, Cinder, Ironic, Cyborg).",
                      ["POST /compute/v2.1/os-server-external-events"]),
    ]

    func registerExternalEvents(on v21: APIRoutes) {
        let events = ExternalEvents(database: hosts.store.database)
        v21.post("os-server-external-events", body: Self.body(ExternalEventSchemas.create)) { request, context in
            let (caller, version) = try await begin(request, context, "os_compute_api:os-server-external-events:create")
            let list = try await environment.body(request, context)["events"]?.arrayValue ?? []
            let asked = list.map { item in
                ExternalEvents.Event(name: item["name"]?.stringValue ?? "", serverID: item["server_uuid"]?.stringValue ?? "",
                                     status: item["status"]?.stringValue ?? "completed", tag: item["tag"]?.stringValue)
            }
            let rpc = Contracts.RequestContext(requestID: APIRequest.id ?? "req-" + UUID().uuidString.lowercased(), userID: caller.user.id,
                                               projectID: caller.project?.id, roles: caller.roles)
            let codes = try await events.deliver(asked, context: rpc)
            // Each event as sent, with its code; the status says whether it was accepted.
            let answered: [JSON] = zip(list, codes).map { item, code in
                var object = item.objectValue ?? [:]
                object["code"] = .number(Double(code))
                object["status"] = code == 200 ? "completed" : "failed"
                return .object(object)
            }
            let status: HTTPResponse.Status = codes.allSatisfy { $0 == 200 } ? .ok : .init(code: 207)
            return answer(status, ["events": .array(answered)], version)
        }
    }
}

/// Nova's event names per microversion: 2.51 adds volume-extended, 2.76 power-update, 2.82
/// accelerator-request-bound (2.93's volume-reimaged is above this cloud's top).
enum ExternalEventSchemas {
    static func create(_ version: Microversion) -> Schema { creates[version] }
    private static let creates = PerMicroversion { version in
        var names: [JSON] = ["network-changed", "network-vif-plugged", "network-vif-unplugged", "network-vif-deleted"]
        if version >= Microversion(2, 51) { names.append("volume-extended") }
        if version >= Microversion(2, 76) { names.append("power-update") }
        if version >= Microversion(2, 82) { names.append("accelerator-request-bound") }
        let event = Schema.object([
            ("name", .choice(names, types: [.string])), ("server_uuid", NovaTypes.uuid),
            ("status", .choice(["failed", "completed", "in-progress"], types: [.string])), ("tag", .string(maxLength: 255)),
        ], required: ["name", "server_uuid"])
        return .object([("events", .array(event, minItems: 1))], required: ["events"])
    }
}
