import Foundation
import Hosts
import Hummingbird
import PetrelCore
import PetrelHTTP

extension ComputeAPI {
    static let aggregatePolicies: [PolicyDefault] = [
        ("index", "GET /compute/v2.1/os-aggregates", "List host aggregates."),
        ("create", "POST /compute/v2.1/os-aggregates", "Create a host aggregate."),
        ("show", "GET /compute/v2.1/os-aggregates/{aggregate_id}", "Show a host aggregate."),
        ("update", "PUT /compute/v2.1/os-aggregates/{aggregate_id}", "Rename a host aggregate or change its availability zone."),
        ("delete", "DELETE /compute/v2.1/os-aggregates/{aggregate_id}", "Delete an empty host aggregate."),
        ("add_host", "POST /compute/v2.1/os-aggregates/{aggregate_id}/action (add_host)", "Add a compute host to an aggregate."),
        ("remove_host", "POST /compute/v2.1/os-aggregates/{aggregate_id}/action (remove_host)", "Remove a host from an aggregate."),
        ("set_metadata", "POST /compute/v2.1/os-aggregates/{aggregate_id}/action (set_metadata)", "Set an aggregate's metadata."),
    ].map { PolicyDefault("os_compute_api:os-aggregates:\($0.0)", "rule:context_is_admin", $0.2, [$0.1]) }

    func aggregateJSON(_ aggregate: Aggregates.Aggregate) -> JSON {
        ["id": .number(Double(aggregate.id)), "uuid": .string(aggregate.uuid), "name": .string(aggregate.name),
         "availability_zone": .string(aggregate.availabilityZone), "hosts": .array(aggregate.hosts.map(JSON.string)),
         "metadata": .object(aggregate.metadata.mapValues(JSON.string)), "created_at": novaTime(aggregate.createdAt),
         "updated_at": novaTime(aggregate.updatedAt), "deleted": false, "deleted_at": nil]
    }

    static func fault(_ failure: Aggregates.Failure) -> APIFault {
        switch failure {
        case .notFound(let id): return APIFault(.notFound, "Aggregate \(id) could not be found.")
        case .duplicateName(let name): return APIFault(.conflict, "Aggregate \(name) already exists.")
        case .unknownHost(let host): return APIFault(.notFound, "Compute host \(host) could not be found.")
        case .hostAlreadyMember(let host, let id): return APIFault(.conflict, "Aggregate \(id) already has host \(host).")
        case .hostNotMember(let host, let id): return APIFault(.notFound, "Cannot remove host \(host) in aggregate \(id)")
        case .notEmpty(let id): return APIFault(.badRequest, "Cannot delete aggregate \(id): it still has hosts.")
        }
    }

    func aggregateName(_ value: JSON?, required: Bool) throws -> String? {
        guard let value else {
            if required { throw APIFault(.badRequest, "Invalid input for field/attribute aggregate. 'name' is a required property.") }
            return nil
        }
        guard let name = value.stringValue, !name.trimmingCharacters(in: .whitespaces).isEmpty, name.count <= 255 else {
            throw APIFault(.badRequest, "Invalid input for field/attribute name: a string of 1 to 255 characters.")
        }
        return name
    }

    func zone(_ value: JSON?) throws -> String?? {
        guard let value else { return .none }
        if value.isNull { return .some(nil) }
        guard let zone = value.stringValue, !zone.isEmpty, zone.count <= 255, !zone.contains(":") else {
            throw APIFault(.badRequest, "Invalid input for field/attribute availability_zone: a string of 1 to 255 characters without ':'.")
        }
        return .some(zone)
    }

    func registerAggregates(on v21: APIRoutes) {
        let aggregates = Aggregates(database: hosts.store.database)
        @Sendable func id(_ context: APIRequestContext) throws -> Int {
            let text = try context.parameters.require("aggregate_id")
            guard let id = Int(text) else { throw APIFault(.notFound, "Aggregate \(text) could not be found.") }
            return id
        }
        @Sendable func run<T>(_ body: () async throws -> T) async throws -> T {
            do { return try await body() } catch let failure as Aggregates.Failure { throw Self.fault(failure) }
        }
        v21.get("os-aggregates", query: NovaQuerySchemas.open) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-aggregates:index")
            return answer(.ok, ["aggregates": .array(try await aggregates.list().map(aggregateJSON))], version)
        }
        v21.post("os-aggregates", body: .json(AggregateSchemas.create, style: .nova)) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-aggregates:create")
            guard let fields = try await environment.body(request, context)["aggregate"]?.objectValue else {
                throw APIFault(.badRequest, "Invalid input for field/attribute aggregate. 'aggregate' is a required property.")
            }
            let name = try aggregateName(fields["name"], required: true)!
            let availabilityZone = try zone(fields["availability_zone"]) ?? nil
            let created = try await run { try await aggregates.create(name: name, availabilityZone: availabilityZone) }
            return answer(.ok, ["aggregate": aggregateJSON(created)], version)
        }
        v21.get("os-aggregates/:aggregate_id", query: NovaQuerySchemas.open) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-aggregates:show")
            let aggregate = try await run { try await aggregates.get(try id(context)) }
            return answer(.ok, ["aggregate": aggregateJSON(aggregate)], version)
        }
        v21.put("os-aggregates/:aggregate_id", body: .json(AggregateSchemas.update, style: .nova)) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-aggregates:update")
            guard let fields = try await environment.body(request, context)["aggregate"]?.objectValue, !fields.isEmpty else {
                throw APIFault(.badRequest, "Invalid input for field/attribute aggregate: name or availability_zone is required.")
            }
            let name = try aggregateName(fields["name"], required: false)
            let availabilityZone = try zone(fields["availability_zone"])
            let updated = try await run {
                try await aggregates.change(try id(context)) { aggregate, _ in
                    if let name { aggregate.name = name }
                    if let availabilityZone { aggregate.metadata["availability_zone"] = availabilityZone }
                }
            }
            return answer(.ok, ["aggregate": aggregateJSON(updated)], version)
        }
        v21.delete("os-aggregates/:aggregate_id") { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-aggregates:delete")
            try await run { try await aggregates.delete(try id(context)) }
            return Response(status: .ok, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }
        v21.post("os-aggregates/:aggregate_id/action", body: .json(AggregateSchemas.action, style: .nova)) { request, context in
            let body = try await environment.body(request, context)
            guard body.count == 1, let (action, argument) = body.first, let fields = argument.objectValue else {
                throw APIFault(.badRequest, "The action body must hold exactly one of add_host, remove_host, set_metadata.")
            }
            let aggregateID = try id(context)
            switch action {
            case "add_host", "remove_host":
                let (_, version) = try await begin(request, context, "os_compute_api:os-aggregates:\(action)")
                guard let host = fields["host"]?.stringValue, !host.isEmpty else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute host. 'host' is a required property.")
                }
                let updated = try await run {
                    action == "add_host" ? try await aggregates.addHost(host, to: aggregateID)
                                         : try await aggregates.removeHost(host, from: aggregateID)
                }
                return answer(.ok, ["aggregate": aggregateJSON(updated)], version)
            case "set_metadata":
                let (_, version) = try await begin(request, context, "os_compute_api:os-aggregates:set_metadata")
                guard let metadata = fields["metadata"]?.objectValue else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute metadata. 'metadata' is a required property.")
                }
                var changes: [String: String?] = [:]
                for (key, value) in metadata {
                    guard !key.isEmpty, key.count <= 255 else { throw APIFault(.badRequest, "Invalid metadata key '\(key)'.") }
                    if value.isNull { changes[key] = .some(nil); continue }
                    guard let text = value.stringValue, text.count <= 255 else {
                        throw APIFault(.badRequest, "Invalid metadata value for '\(key)': a string of at most 255 characters or null.")
                    }
                    changes[key] = .some(text)
                }
                let frozen = changes
                let updated = try await run {
                    try await aggregates.change(aggregateID) { aggregate, _ in
                        for (key, value) in frozen { aggregate.metadata[key] = value }
                    }
                }
                return answer(.ok, ["aggregate": aggregateJSON(updated)], version)
            default:
                throw APIFault(.badRequest, "Unknown aggregate action '\(action)'.")
            }
        }
    }
}
