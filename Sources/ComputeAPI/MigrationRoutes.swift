import Compute
import Contracts
import Foundation
import Hummingbird
import PetrelCore
import PetrelHTTP

/// Resizes and cold migrations (`resize`, `migrate`, `confirmResize`, `revertResize`) and the
/// `os-migrations` listing (`openstack server migration list`); the policies of rescue,
/// backups and deferred delete too.
extension ComputeAPI {
    static let managerOrAdmin = "rule:context_is_admin or (role:manager and project_id:%(project_id)s)"

    static let migrationPolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:servers:resize", ownerMember, "Resize a server to another flavor.",
                      ["POST /compute/v2.1/servers/{server_id}/action (resize)"]),
        PolicyDefault("os_compute_api:servers:confirm_resize", ownerMember, "Confirm a resize (or cold migration).",
                      ["POST /compute/v2.1/servers/{server_id}/action (confirmResize)"]),
        PolicyDefault("os_compute_api:servers:revert_resize", ownerMember, "Revert a resize (or cold migration).",
                      ["POST /compute/v2.1/servers/{server_id}/action (revertResize)"]),
        PolicyDefault("os_compute_api:os-migrate-server:migrate", managerOrAdmin, "Cold-migrate a server.",
                      ["POST /compute/v2.1/servers/{server_id}/action (migrate)"]),
        PolicyDefault("os_compute_api:os-migrate-server:migrate:host", "rule:context_is_admin",
                      "Cold-migrate a server to a host one names (2.56).", ["POST /compute/v2.1/servers/{server_id}/action (migrate)"]),
        PolicyDefault("os_compute_api:os-rescue", ownerMember, "Rescue a server (boot it from a rescue image, its disk attached).",
                      ["POST /compute/v2.1/servers/{server_id}/action (rescue)"]),
        PolicyDefault("os_compute_api:os-unrescue", ownerMember, "Unrescue a server.",
                      ["POST /compute/v2.1/servers/{server_id}/action (unrescue)"]),
        PolicyDefault("os_compute_api:os-create-backup", ownerMember, "Back a server up into an image, rotating older backups.",
                      ["POST /compute/v2.1/servers/{server_id}/action (createBackup)"]),
        PolicyDefault("os_compute_api:os-deferred-delete:restore", ownerMember, "Restore a soft-deleted server.",
                      ["POST /compute/v2.1/servers/{server_id}/action (restore)"]),
        PolicyDefault("os_compute_api:os-deferred-delete:force", ownerMember, "Delete a soft-deleted (or any) server for good at once.",
                      ["POST /compute/v2.1/servers/{server_id}/action (forceDelete)"]),
        PolicyDefault("os_compute_api:os-migrations:index", managerOrAdmin, "List migrations.", ["GET /compute/v2.1/os-migrations"]),
        PolicyDefault("os_compute_api:os-migrations:index:all_projects", "rule:context_is_admin",
                      "List the migrations of every project.", ["GET /compute/v2.1/os-migrations"]),
        PolicyDefault("os_compute_api:os-migrations:index:host", "rule:context_is_admin",
                      "See the hosts of migrations.", ["GET /compute/v2.1/os-migrations"]),
    ]

    /// `resize` (a new flavor) and `migrate` (the same flavor; 2.56: onto a host an admin names):
    /// checked and recorded now, scheduled and done in the background (Nova answers 202 before
    /// the conductor has a host).
    func resize(_ server: Server, _ name: String, _ argument: JSON, _ version: Microversion, _ context: APIRequestContext,
                _ who: ServerCaller, _ messageContext: Contracts.RequestContext) async throws {
        var flavorRef: String?
        var host: String?
        if name == "resize" {
            switch argument.objectValue?["flavorRef"] {
            case .string(let text)?: flavorRef = text
            case .number(let number)?: flavorRef = Int(exactly: number).map(String.init) ?? "\(number)"
            default: throw APIFault(.badRequest, "Invalid input for field/attribute resize. 'flavorRef' is a required property.")
            }
        } else if version >= Microversion(2, 56), let named = argument.objectValue?["host"]?.stringValue {
            try context.enforce("os_compute_api:os-migrate-server:migrate:host", target: ["project_id": server.projectID])
            host = named
        }
        let allowSameHost = serverConductor.scheduler.options.allowResizeToSameHost
        _ = try await serverCall {
            try await servers.beginResize(server.id, flavorRef: flavorRef, host: host, allowSameHost: allowSameHost, by: who)
        }
        await recordAction(server.id, name, host: server.host, messageContext)
        let conductor = serverConductor
        Task { await conductor.resize(server.id, context: messageContext) }
    }

    /// `createBackup`: a snapshot marked as a backup; the oldest backups of its type beyond
    /// `rotation` are deleted once it is uploaded. 2.45 answers with the image id, before that
    /// a `Location` header (when the rotation keeps any).
    func backup(_ server: Server, _ argument: JSON, _ version: Microversion, _ who: ServerCaller,
                _ messageContext: Contracts.RequestContext) async throws -> Response {
        guard let fields = argument.objectValue, let name = fields["name"]?.stringValue, let type = fields["backup_type"]?.stringValue else {
            throw APIFault(.badRequest, "Invalid input for field/attribute createBackup. 'name' is a required property.")
        }
        let rotation: Int? = switch fields["rotation"] {
        case .number(let number)?: Int(exactly: number)
        case .string(let text)?: Int(text)
        default: nil
        }
        guard let rotation, rotation >= 0 else {
            throw APIFault(.badRequest, "Invalid input for field/attribute rotation. It must be an integer greater than or equal to 0.")
        }
        let properties = try fields["metadata"].map { try Self.metadata($0) } ?? [:]
        let (imageID, host) = try await serverCall {
            try await servers.beginBackup(server.id, name: name, type: type, rotation: rotation, properties: properties, by: who)
        }
        await recordAction(server.id, "createBackup", host: host, messageContext)
        do {
            try await serverConductor.send(.init(instanceID: server.id, action: .backup, imageID: imageID), to: host, context: messageContext)
        } catch {
            try? await servers.images.delete(imageID)
            throw error
        }
        var headers = version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version")
        if version >= Microversion(2, 45) { return respond(.accepted, ["image_id": .string(imageID)], headers: headers) }
        if rotation > 0 { headers[.location] = environment.publicURL + "/image/v2/images/" + imageID }
        return Response(status: .accepted, headers: headers)
    }

    func migrationJSON(_ migration: MigrationRecord, _ version: Microversion, showHosts: Bool) -> JSON {
        // Nova's flavor ids here are its database's integers; Petrel's flavor ids are the ones
        // clients use, numbers where they are numbers.
        func flavor(_ id: String) -> JSON { Int(id).map { .number(Double($0)) } ?? .string(id) }
        func host(_ value: String?) -> JSON { showHosts ? JSON.string(value) : .null }
        var object: [String: JSON] = [
            "created_at": novaTime(migration.createdAt), "updated_at": novaTime(migration.updatedAt),
            "dest_compute": host(migration.destCompute), "dest_host": host(migration.destHost), "dest_node": host(migration.destNode),
            "source_compute": host(migration.sourceCompute), "source_node": host(migration.sourceNode),
            "id": .number(Double(migration.id)), "instance_uuid": .string(migration.instanceID),
            "new_instance_type_id": flavor(migration.newFlavorID), "old_instance_type_id": flavor(migration.oldFlavorID),
            "status": .string(migration.status),
        ]
        if version >= Microversion(2, 23) { object["migration_type"] = .string(migration.type) }
        if version >= Microversion(2, 59) { object["uuid"] = .string(migration.uuid) }
        if version >= Microversion(2, 80) {
            object["user_id"] = .string(migration.userID)
            object["project_id"] = .string(migration.projectID)
        }
        return .object(object)
    }

    func registerMigrations(on v21: APIRoutes) {
        v21.get("os-migrations", query: NovaQuerySchemas.open) { request, context in
            let (caller, version) = try await authenticated(request, context)
            let project = caller.project?.id ?? ""
            try context.enforce("os_compute_api:os-migrations:index", target: ["project_id": project])
            let allProjects = try context.allows("os_compute_api:os-migrations:index:all_projects", target: ["project_id": project])
            let showHosts = try context.allows("os_compute_api:os-migrations:index:host", target: ["project_id": project])
            var query = MigrationQuery()
            query.host = request.query("host")
            query.status = request.query("status")
            query.instanceID = request.query("instance_uuid")
            query.sourceCompute = request.query("source_compute")
            if version >= Microversion(2, 23) { query.type = request.query("migration_type") }
            if version >= Microversion(2, 59) {
                if let text = request.query("changes-since") {
                    guard let date = UTCTime.parse(text) else { throw APIFault(.badRequest, "Invalid input for query parameters changes-since.") }
                    query.changesSince = Int64(date.timeIntervalSince1970 * 1000)
                }
                query.limit = try Paging.novaLimit(request)
                query.marker = request.query("marker")
            }
            if version >= Microversion(2, 66), let text = request.query("changes-before") {
                guard let date = UTCTime.parse(text) else { throw APIFault(.badRequest, "Invalid input for query parameters changes-before.") }
                query.changesBefore = Int64(date.timeIntervalSince1970 * 1000)
            }
            if let since = query.changesSince, let before = query.changesBefore, since > before {
                throw APIFault(.badRequest, "The value of changes-since must be less than or equal to changes-before.")
            }
            if version >= Microversion(2, 80) {
                query.userID = request.query("user_id")
                query.projectID = request.query("project_id")
            }
            if !allProjects { query.projectID = project }
            // One more than asked tells whether a next page exists.
            let limit = query.limit
            if let limit { query.limit = limit + 1 }
            var list: [MigrationRecord]
            do {
                list = try await servers.migrations(query)
            } catch Servers.MigrationFailure.markerNotFound(let marker) {
                throw APIFault(.badRequest, "Marker \(marker) could not be found.")
            }
            var body: [String: JSON] = [:]
            if let limit, list.count > limit {
                list = Array(list.prefix(limit))
                if let last = list.last {
                    body["migrations_links"] = Paging.nextLinks(base + "/v2.1/os-migrations", limit: limit, marker: last.uuid)
                }
            }
            body["migrations"] = .array(list.map { migrationJSON($0, version, showHosts: showHosts) })
            return answer(.ok, .object(body), version)
        }
    }
}
