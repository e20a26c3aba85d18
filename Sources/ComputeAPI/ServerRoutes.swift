import Compute
import Contracts
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Images
import Networking
import PetrelCore
import PetrelHTTP

extension ComputeAPI {
    static let ownerReader = "rule:context_is_admin or (role:reader and project_id:%(project_id)s)"
    static let ownerMember = "rule:context_is_admin or (role:member and project_id:%(project_id)s)"

    static let serverPolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:servers:index", ownerReader, "List one's project's servers.", ["GET /compute/v2.1/servers"]),
        PolicyDefault("os_compute_api:servers:detail", ownerReader, "List one's project's servers with details.",
                      ["GET /compute/v2.1/servers/detail"]),
        PolicyDefault("os_compute_api:servers:index:get_all_tenants", "rule:context_is_admin", "List the servers of every project.",
                      ["GET /compute/v2.1/servers?all_tenants=1"]),
        PolicyDefault("os_compute_api:servers:show", ownerReader, "Show a server.", ["GET /compute/v2.1/servers/{server_id}"]),
        PolicyDefault("os_compute_api:servers:create", ownerMember, "Create servers.", ["POST /compute/v2.1/servers"]),
        PolicyDefault("os_compute_api:servers:create:forced_host", "rule:context_is_admin",
                      "Create servers on a named host or node (availability_zone \"zone:host\", \"zone::node\"), bypassing the scheduler's filters.",
                      ["POST /compute/v2.1/servers"]),
        PolicyDefault("os_compute_api:servers:update", ownerMember, "Rename a server.", ["PUT /compute/v2.1/servers/{server_id}"]),
        PolicyDefault("os_compute_api:servers:delete", ownerMember, "Delete a server.", ["DELETE /compute/v2.1/servers/{server_id}"]),
        PolicyDefault("os_compute_api:servers:action", ownerMember,
                      "Run an action on a server: reboot, os-stop, os-start, pause, unpause, suspend, resume, rebuild, createImage.",
                      ["POST /compute/v2.1/servers/{server_id}/action"]),
        PolicyDefault("os_compute_api:os-console-output", ownerMember, "Read a server's serial console log.",
                      ["POST /compute/v2.1/servers/{server_id}/action (os-getConsoleOutput)"]),
        PolicyDefault("os_compute_api:os-lock-server:lock", ownerMember, "Lock a server: only admins may then change it.",
                      ["POST /compute/v2.1/servers/{server_id}/action (lock)"]),
        PolicyDefault("os_compute_api:os-lock-server:unlock", ownerMember, "Unlock a server one locked oneself.",
                      ["POST /compute/v2.1/servers/{server_id}/action (unlock)"]),
        PolicyDefault("os_compute_api:os-lock-server:unlock:unlock_override", "rule:context_is_admin",
                      "Unlock a server someone else locked (its owner or an admin of another project).",
                      ["POST /compute/v2.1/servers/{server_id}/action (unlock)"]),
        PolicyDefault("os_compute_api:os-shelve:shelve", ownerMember, "Shelve a server: its disk goes to an image, it leaves its host.",
                      ["POST /compute/v2.1/servers/{server_id}/action (shelve)"]),
        PolicyDefault("os_compute_api:os-shelve:shelve_offload", "rule:context_is_admin", "Offload a shelved server from its host.",
                      ["POST /compute/v2.1/servers/{server_id}/action (shelveOffload)"]),
        PolicyDefault("os_compute_api:os-shelve:unshelve", ownerMember, "Unshelve a server.",
                      ["POST /compute/v2.1/servers/{server_id}/action (unshelve)"]),
        PolicyDefault("os_compute_api:os-shelve:unshelve_to_host", "rule:context_is_admin", "Unshelve a server onto a named host (2.91).",
                      ["POST /compute/v2.1/servers/{server_id}/action (unshelve)"]),
        PolicyDefault("os_compute_api:os-server-tags:index", ownerReader, "List a server's tags.", ["GET /compute/v2.1/servers/{server_id}/tags"]),
        PolicyDefault("os_compute_api:os-server-tags:show", ownerReader, "Check one tag of a server.",
                      ["GET /compute/v2.1/servers/{server_id}/tags/{tag}"]),
        PolicyDefault("os_compute_api:os-server-tags:update", ownerMember, "Add a tag to a server.", ["PUT /compute/v2.1/servers/{server_id}/tags/{tag}"]),
        PolicyDefault("os_compute_api:os-server-tags:update_all", ownerMember, "Replace a server's tags.", ["PUT /compute/v2.1/servers/{server_id}/tags"]),
        PolicyDefault("os_compute_api:os-server-tags:delete", ownerMember, "Remove a tag from a server.",
                      ["DELETE /compute/v2.1/servers/{server_id}/tags/{tag}"]),
        PolicyDefault("os_compute_api:os-server-tags:delete_all", ownerMember, "Remove every tag of a server.",
                      ["DELETE /compute/v2.1/servers/{server_id}/tags"]),
        PolicyDefault("os_compute_api:server-metadata:index", ownerReader, "Read a server's metadata.",
                      ["GET /compute/v2.1/servers/{server_id}/metadata", "GET /compute/v2.1/servers/{server_id}/metadata/{key}"]),
        PolicyDefault("os_compute_api:server-metadata:update", ownerMember, "Change a server's metadata.",
                      ["POST|PUT /compute/v2.1/servers/{server_id}/metadata", "PUT|DELETE /compute/v2.1/servers/{server_id}/metadata/{key}"]),
    ]

    /// The context RPC messages carry: the API's request id, the caller.
    func rpcContext(_ caller: Caller, _ who: ServerCaller) -> Contracts.RequestContext {
        Contracts.RequestContext(requestID: APIRequest.id ?? "req-" + UUID().uuidString.lowercased(), userID: caller.user.id,
                                 projectID: who.projectID, roles: caller.roles)
    }

    func serverCaller(_ caller: Caller, _ context: APIRequestContext) throws -> ServerCaller {
        ServerCaller(projectID: caller.project?.id ?? "", userID: caller.user.id,
                     isAdmin: try context.allows("context_is_admin"))
    }

    /// Errors of the servers service in Nova's words.
    func serverCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let failure as Servers.Failure {
            switch failure {
            case .notFound: throw APIFault(.notFound, failure.description)
            case .badRequest(let message): throw APIFault(.badRequest, message)
            case .conflict(let message): throw APIFault(.conflict, message)
            case .quota(let message): throw APIFault(.forbidden, message)
            case .internalError(let message): throw APIFault(.internalServerError, message)
            }
        }
    }

    /// The server, after the caller passed `action`'s policy for its project.
    func authorizedServer(_ request: Request, _ context: APIRequestContext, _ id: String, _ action: String) async throws -> (Server, Caller, Microversion, ServerCaller) {
        let (caller, version) = try await authenticated(request, context)
        let who = try serverCaller(caller, context)
        let server = try await serverCall { try await servers.get(id, by: who) }
        try context.enforce(action, target: ["project_id": server.projectID])
        return (server, caller, version, who)
    }

    func hostIsUp(_ host: String) async throws -> Bool {
        try await hosts.services { $0.host == host && $0.binary == "nova-compute" }.contains { $0.up }
    }

    func registerServers(on v21: APIRoutes) {
        v21.get("servers", query: NovaQuerySchemas.servers) { request, context in try await listServers(request, context, detail: false) }
        v21.get("servers/detail", query: NovaQuerySchemas.servers) { request, context in try await listServers(request, context, detail: true) }
        v21.post("servers", body: Self.body { ServerSchemas.create($0) }) { request, context in try await createServer(request, context) }
        v21.get("servers/:server_id", query: NovaQuerySchemas.open) { request, context in try await showServer(request, context) }
        v21.put("servers/:server_id", body: Self.body { ServerSchemas.update($0) }) { request, context in try await updateServer(request, context) }
        v21.delete("servers/:server_id") { request, context in try await deleteServer(request, context) }
        v21.post("servers/:server_id/action", body: Self.body { ServerActionSchemas.action($0) }) { request, context in try await serverAction(request, context) }
        registerServerMetadata(on: v21)
        registerServerTags(on: v21)
        registerInstanceActions(on: v21)
        registerServerPassword(on: v21)
        registerServerGroups(on: v21)
        registerMigrations(on: v21)
    }

    /// `GET /servers` and `GET /servers/detail`, with Nova's filters, sort key and paging.
    func listServers(_ request: Request, _ context: APIRequestContext, detail: Bool) async throws -> Response {
        let (caller, version) = try await authenticated(request, context)
        let who = try serverCaller(caller, context)
        let action = detail ? "os_compute_api:servers:detail" : "os_compute_api:servers:index"
        try context.enforce(action, target: ["project_id": who.projectID])
        var project: String? = who.projectID
        let allTenants = request.query("all_tenants").map { !["0", "false", "False"].contains($0) } ?? false
        if allTenants || (request.query("project_id") ?? request.query("tenant_id")) != nil {
            if try context.allows("os_compute_api:servers:index:get_all_tenants") {
                project = request.query("project_id") ?? request.query("tenant_id")
            }
        }
        var query = ServerListQuery(projectID: project)
        query.name = request.query("name")
        query.status = request.query("status")?.uppercased()
        if who.isAdmin { query.host = request.query("host") }
        query.imageID = request.query("image")
        query.flavorID = request.query("flavor")
        query.reservationID = request.query("reservation_id")
        query.availabilityZone = request.query("availability_zone")
        query.userID = request.query("user_id")
        if version >= Microversion(2, 26) {
            func list(_ name: String) -> [String]? {
                request.query(name).map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
            }
            query.tags = list("tags")
            query.tagsAny = list("tags-any")
            query.notTags = list("not-tags")
            query.notTagsAny = list("not-tags-any")
        }
        if version >= Microversion(2, 73), let text = request.query("locked") {
            guard let locked = try? Self.novaBoolean(.string(text), field: "locked") else {
                throw APIFault(.badRequest, "Unrecognized value '\(text)', acceptable values are: '1', 't', 'true', 'on', 'y', 'yes', '0', 'f', 'false', 'off', 'n', 'no'")
            }
            query.locked = locked
        }
        // Admins only (Nova drops the filter for others); anything but a true word is false.
        if who.isAdmin, let text = request.query("deleted") {
            query.deleted = ["1", "t", "true", "on", "y", "yes"].contains(text.lowercased())
        }
        if let since = request.query("changes-since") {
            guard let date = UTCTime.parse(since) else { throw APIFault(.badRequest, "Invalid input for query parameters changes-since.") }
            query.changedSince = Int64(date.timeIntervalSince1970 * 1000)
        }
        if let key = request.query("sort_key") {
            switch key {
            case "display_name", "name": query.sortKey = .name
            case "created_at": query.sortKey = .createdAt
            case "updated_at": query.sortKey = .updatedAt
            case "vm_state": query.sortKey = .vmState
            case "host": query.sortKey = .host
            case "uuid": query.sortKey = .uuid
            default: throw APIFault(.badRequest, "Invalid input for query parameters sort_key. Value: \(key).")
            }
            query.ascending = request.query("sort_dir") == "asc"
        }
        query.marker = request.query("marker")
        if let text = request.query("limit") {
            guard let limit = Int(text), limit >= 0 else {
                // An unknown marker is reported first.
                if query.marker != nil {
                    query.limit = 0
                    _ = try await serverCall { try await servers.page(query) }
                }
                throw APIFault(.badRequest, "Invalid input for query parameters limit.")
            }
            query.limit = limit
        }
        let page = try await serverCall { try await servers.page(query) }
        let list = page.servers
        var body: [String: JSON] = [:]
        if page.more, let limit = query.limit, let last = list.last {
            body["servers_links"] = Paging.nextLinks(base + "/v2.1/servers" + (detail ? "/detail" : ""), limit: limit, marker: last.id)
        }
        var up: [String: Bool] = [:]
        if detail && who.isAdmin {
            for service in try await hosts.services(where: { $0.binary == "nova-compute" }) { up[service.host] = service.up }
        }
        let addresses = detail ? try await servers.addresses(list.map(\.id)) : [:]
        let groups = detail ? try await servers.securityGroupNames(list.map(\.id)) : [:]
        let volumes = detail ? try await servers.attachedVolumes(list.map(\.id)) : [:]
        let images = detail ? try await imageProperties(list, version) : [:]
        body["servers"] = .array(list.map {
            serverJSON($0, version, admin: who.isAdmin, detail: detail, hostUp: $0.host.flatMap { up[$0] }, listed: true,
                       addresses: addresses[$0.id] ?? [], securityGroups: groups[$0.id] ?? [], volumes: volumes[$0.id] ?? [],
                       imageProperties: images[$0.imageID ?? ""])
        })
        return answer(.ok, .object(body), version)
    }

    /// `POST /servers`: records the servers and starts their builds.
    func createServer(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (caller, version) = try await authenticated(request, context)
        let who = try serverCaller(caller, context)
        try context.enforce("os_compute_api:servers:create", target: ["project_id": who.projectID])
        let whole = try await environment.body(request, context)
        guard let fields = whole["server"]?.objectValue else {
            throw APIFault(.badRequest, "Invalid input for field/attribute server. 'server' is a required property.")
        }
        var create = try Self.serverRequest(fields, version, project: who.projectID)
        if let hints = whole["os:scheduler_hints"] ?? whole["OS-SCH-HNT:scheduler_hints"], !hints.isNull {
            create.schedulerHints = String(decoding: hints.encoded(), as: UTF8.self)
            // `group`: the server group the servers join (a string, or a list of one as some clients send).
            if let group = hints["group"] {
                guard let id = group.stringValue ?? group.arrayValue?.first?.stringValue, UUID(uuidString: id) != nil else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute group. Value: \(String(decoding: group.encoded(), as: UTF8.self)). It is not a valid UUID")
                }
                create.groupID = id.lowercased()
            }
        }
        if create.forcedHost != nil || create.forcedNode != nil {
            try context.enforce("os_compute_api:servers:create:forced_host", target: ["project_id": who.projectID])
        }
        create.networks = try await resolveNetworks(try Self.networkChoice(fields["networks"], version), project: who.projectID,
                                                    isAdmin: who.isAdmin, count: create.maxCount)
        // Nova's `security_groups: [{"name": …}]` (names or ids in the project): the ports Nova makes get them.
        var groupNames = ["default"]
        if let list = fields["security_groups"], !list.isNull {
            guard let entries = list.arrayValue, !entries.isEmpty else {
                throw APIFault(.badRequest, "Invalid input for field/attribute security_groups. Value: \(String(decoding: list.encoded(), as: UTF8.self)). It must be a non-empty array of objects with a name.")
            }
            groupNames = try entries.map { entry in
                guard let name = entry.objectValue?["name"]?.stringValue, !name.isEmpty else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute security_groups. Value: \(String(decoding: entry.encoded(), as: UTF8.self)). 'name' is a required property")
                }
                return name
            }
            if let networking = servers.networking {
                let ids: [String]
                do {
                    ids = try await networking.resolveSecurityGroups(groupNames, project: who.projectID)
                } catch let failure as NetworkingFailure {
                    throw APIFault(.badRequest, failure.status == 404
                                   ? "Security group \(groupNames.joined(separator: ", ")) not found for project \(who.projectID)." : failure.message)
                }
                create.networks = create.networks.map { entry in
                    var entry = entry
                    if entry.networkID != nil && entry.portID == nil { entry.securityGroups = ids }
                    return entry
                }
            }
        }
        let created = try await serverCall { try await servers.create(create, by: who) }
        let messageContext = rpcContext(caller, who)
        for server in created {
            await recordAction(server.id, "create", host: nil, messageContext)
            Task { await serverConductor.build(server.id, context: messageContext) }
        }
        if try Self.novaBoolean(fields["return_reservation_id"], field: "return_reservation_id") {
            return answer(.accepted, ["reservation_id": JSON.string(created.first?.reservationID)], version)
        }
        let first = created[0]
        var body: [String: JSON] = ["id": .string(first.id), "links": serverLinks(first.id), "OS-DCF:diskConfig": "MANUAL",
                                    "adminPass": .string(fields["adminPass"]?.stringValue ?? Self.password())]
        body["security_groups"] = .array(groupNames.map { ["name": .string($0)] })
        var headers = version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version")
        headers[.location] = base + "/v2.1/servers/" + first.id
        return respond(.accepted, ["server": .object(body)], headers: headers)
    }

    /// `GET /servers/{id}`
    func showServer(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("server_id")
        let (server, _, version, who) = try await authorizedServer(request, context, id, "os_compute_api:servers:show")
        var up: Bool?
        if let host = server.host { up = try await hostIsUp(host) }
        let addresses = try await servers.addresses([server.id])[server.id] ?? []
        let groups = try await servers.securityGroupNames([server.id])[server.id] ?? []
        let volumes = try await servers.attachedVolumes([server.id])[server.id] ?? []
        let image = try await imageProperties(server, version)
        return answer(.ok, ["server": serverJSON(server, version, admin: who.isAdmin, detail: true, hostUp: up, addresses: addresses,
                                                 securityGroups: groups, volumes: volumes, imageProperties: image,
                                                 serverGroups: try await serverGroups.groups(of: server.id))], version)
    }

    /// `PUT /servers/{id}`: a new name.
    func updateServer(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("server_id")
        let (_, _, version, who) = try await authorizedServer(request, context, id, "os_compute_api:servers:update")
        guard let fields = try await environment.body(request, context)["server"]?.objectValue else {
            throw APIFault(.badRequest, "Invalid input for field/attribute server. 'server' is a required property.")
        }
        let name = try fields["name"].map { try Self.serverName($0) }
        let changes = ServerFieldChanges(fields)
        let server = try await serverCall {
            try await servers.change(id, by: who) { server in
                if let name { server.name = name }
                changes.apply(to: &server)
            }
        }
        let addresses = try await servers.addresses([server.id])[server.id] ?? []
        let groups = try await servers.securityGroupNames([server.id])[server.id] ?? []
        let volumes = try await servers.attachedVolumes([server.id])[server.id] ?? []
        let image = try await imageProperties(server, version)
        return answer(.ok, ["server": serverJSON(server, version, admin: who.isAdmin, detail: true, hostUp: nil, addresses: addresses,
                                                 securityGroups: groups, volumes: volumes, imageProperties: image,
                                                 serverGroups: try await serverGroups.groups(of: server.id))], version)
    }

    /// `DELETE /servers/{id}`
    func deleteServer(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("server_id")
        let (server, caller, version, who) = try await authorizedServer(request, context, id, "os_compute_api:servers:delete")
        // With reclaim_instance_interval, a server that ran is only powered off and kept (SOFT_DELETED).
        if servers.reclaimInstanceInterval > 0 {
            switch try await serverCall({ try await servers.beginSoftDelete(server, by: who) { try await hostIsUp($0) } }) {
            case .soft(let host):
                let messageContext = rpcContext(caller, who)
                await recordAction(id, "delete", host: host, messageContext)
                try await serverConductor.send(.init(instanceID: id, action: .softDelete), to: host, context: messageContext)
                return Response(status: .noContent, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
            case .underWay:
                return Response(status: .noContent, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
            case .hard:
                break
            }
        }
        try await hardDelete(server, caller, who)
        return Response(status: .noContent, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
    }

    /// Deletes a server for good: on its host, or here when it has none or it is down.
    func hardDelete(_ server: Server, _ caller: Caller, _ who: ServerCaller) async throws {
        let route = try await serverCall { try await servers.beginDelete(server, by: who) { try await hostIsUp($0) } }
        if case .host(let host) = route {
            try await serverConductor.delete(server.id, on: host, context: rpcContext(caller, who))
        }
    }

    func registerServerMetadata(on v21: APIRoutes) {
        v21.get("servers/:server_id/metadata", query: NovaQuerySchemas.open) { request, context in
            let (server, _, version, _) = try await authorizedServer(request, context, try context.parameters.require("server_id"),
                                                                    "os_compute_api:server-metadata:index")
            return answer(.ok, ["metadata": .object(server.metadata.mapValues(JSON.string))], version)
        }
        v21.get("servers/:server_id/metadata/:key", query: NovaQuerySchemas.open) { request, context in
            let (server, _, version, _) = try await authorizedServer(request, context, try context.parameters.require("server_id"),
                                                                    "os_compute_api:server-metadata:index")
            let key = try context.parameters.require("key")
            guard let value = server.metadata[key] else { throw APIFault(.notFound, "Metadata item was not found") }
            return answer(.ok, ["meta": [key: .string(value)]], version)
        }
        @Sendable func write(_ request: Request, _ context: APIRequestContext, _ id: String, replace: Bool) async throws -> Response {
            let (_, _, version, who) = try await authorizedServer(request, context, id, "os_compute_api:server-metadata:update")
            guard let value = try await environment.body(request, context)["metadata"] else {
                throw APIFault(.badRequest, "Invalid input for field/attribute metadata. 'metadata' is a required property.")
            }
            let items = try Self.metadata(value)
            let server = try await serverCall { try await servers.setMetadata(id, items, replace: replace, by: who) }
            return answer(.ok, ["metadata": .object(server.metadata.mapValues(JSON.string))], version)
        }
        v21.post("servers/:server_id/metadata", body: .json(MetadataSchemas.all, style: .nova)) { request, context in try await write(request, context, try context.parameters.require("server_id"), replace: false) }
        v21.put("servers/:server_id/metadata", body: .json(MetadataSchemas.all, style: .nova)) { request, context in try await write(request, context, try context.parameters.require("server_id"), replace: true) }
        v21.put("servers/:server_id/metadata/:key", body: .json(MetadataSchemas.item, style: .nova)) { request, context in
            let id = try context.parameters.require("server_id"), key = try context.parameters.require("key")
            let (_, _, version, who) = try await authorizedServer(request, context, id, "os_compute_api:server-metadata:update")
            guard let meta = try await environment.body(request, context)["meta"]?.objectValue, meta.count == 1, let item = meta[key] else {
                throw APIFault(.badRequest, "Request body and URI mismatch")
            }
            let value = try Self.metadata([key: item])[key]!
            _ = try await serverCall { try await servers.setMetadata(id, [key: value], replace: false, by: who) }
            return answer(.ok, ["meta": [key: .string(value)]], version)
        }
        v21.delete("servers/:server_id/metadata/:key") { request, context in
            let id = try context.parameters.require("server_id"), key = try context.parameters.require("key")
            let (server, _, version, who) = try await authorizedServer(request, context, id, "os_compute_api:server-metadata:update")
            guard server.metadata[key] != nil else { throw APIFault(.notFound, "Metadata item was not found") }
            try await serverCall { try await servers.deleteMetadata(id, key: key, by: who) }
            return Response(status: .noContent, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }
    }
}

extension JSON {
    var numberText: String? {
        if case .number(let value) = self, let integer = Int64(exactly: value) { return String(integer) }
        return nil
    }
}
