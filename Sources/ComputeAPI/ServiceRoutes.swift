import Foundation
import Hosts
import Hummingbird
import PetrelHTTP

extension ComputeAPI {
    static func isCompute(_ binary: String) -> Bool { binary.hasPrefix("nova-") }

    func serviceJSON(_ service: ServiceStatus, _ version: Microversion) -> JSON {
        var object: [String: JSON] = [
            "id": Self.serviceID(service, version), "binary": .string(service.binary), "host": .string(service.host),
            "zone": service.binary == "nova-compute" ? "nova" : "internal",
            "status": service.enabled ? "enabled" : "disabled", "state": service.up ? "up" : "down",
            "disabled_reason": .string(service.record.disabledReason), "updated_at": novaTime(service.record.lastSeenAt ?? service.record.updatedAt),
        ]
        if version >= Microversion(2, 11) { object["forced_down"] = .bool(service.record.forcedDown) }
        return .object(object)
    }

    func registerServices(on v21: APIRoutes) {
        v21.get("os-services", query: NovaQuerySchemas.services) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-services:list")
            let host = request.query("host"), binary = request.query("binary")
            let services = try await hosts.services { record in
                Self.isCompute(record.binary) && (host == nil || record.host == host) && (binary == nil || record.binary == binary)
            }
            return answer(.ok, ["services": .array(services.map { serviceJSON($0, version) })], version)
        }
        v21.put("os-services/:service_id", body: .json(ServiceSchemas.update, style: .nova)) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-services:update")
            guard version >= Microversion(2, 53) else {
                throw APIFault(.notFound, "Updating a service by id needs microversion 2.53 or later.")
            }
            let id = try context.parameters.require("service_id")
            let body = try await environment.body(request, context)
            let known: Set<String> = ["status", "disabled_reason", "forced_down"]
            if let unknown = body.keys.first(where: { !known.contains($0) }) {
                throw APIFault(.badRequest, "Invalid input for field/attribute \(unknown). Additional properties are not allowed.")
            }
            guard !body.isEmpty else { throw APIFault(.badRequest, "No updates were requested. Fields 'status' or 'forced_down' should be specified.") }
            var status: String?
            if let value = body["status"] {
                guard let text = value.stringValue, ["enabled", "disabled"].contains(text) else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute status. Value: \(String(decoding: value.encoded(), as: UTF8.self)). It must be 'enabled' or 'disabled'.")
                }
                status = text
            }
            var reason: String?
            if let value = body["disabled_reason"] {
                guard let text = value.stringValue, !text.isEmpty, text.count <= 255 else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute disabled_reason: a string of 1 to 255 characters.")
                }
                guard status == "disabled" else {
                    throw APIFault(.badRequest, "Specifying 'disabled_reason' with status 'enabled' is invalid.")
                }
                reason = text
            }
            var forcedDown: Bool?
            if let value = body["forced_down"] {
                forcedDown = try Self.novaBoolean(value, field: "forced_down")
            }
            guard let existing = try await hosts.service(id: id), Self.isCompute(existing.record.binary) else {
                throw APIFault(.notFound, "Service \(id) could not be found.")
            }
            var updated = existing
            if let status { updated = try await hosts.setEnabled(id: id, status == "enabled", reason: reason) ?? updated }
            if let forcedDown { updated = try await hosts.setForcedDown(id: id, forcedDown) ?? updated }
            return answer(.ok, ["service": serviceJSON(updated, version)], version)
        }
        v21.delete("os-services/:service_id") { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-services:delete")
            let given = try context.parameters.require("service_id")
            // Before 2.53 a service is named by its integer id.
            let id = version >= Microversion(2, 53) ? given
                : try await hosts.services { $0.number == Int(given) }.first?.id ?? given
            if version >= Microversion(2, 53), UUID(uuidString: given) == nil { throw APIFault(.badRequest, "Invalid uuid \(given)") }
            guard let existing = try await hosts.service(id: id), Self.isCompute(existing.record.binary), try await hosts.delete(id: id) else {
                throw APIFault(.notFound, "Service \(id) could not be found.")
            }
            return Response(status: .noContent, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }
    }
}
