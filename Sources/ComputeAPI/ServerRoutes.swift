import Compute
import Contracts
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Images
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
        PolicyDefault("os_compute_api:servers:update", ownerMember, "Rename a server.", ["PUT /compute/v2.1/servers/{server_id}"]),
        PolicyDefault("os_compute_api:servers:delete", ownerMember, "Delete a server.", ["DELETE /compute/v2.1/servers/{server_id}"]),
        PolicyDefault("os_compute_api:servers:action", ownerMember,
                      "Run an action on a server: reboot, os-stop, os-start, pause, unpause, suspend, resume, rebuild, createImage.",
                      ["POST /compute/v2.1/servers/{server_id}/action"]),
        PolicyDefault("os_compute_api:os-console-output", ownerMember, "Read a server's serial console log.",
                      ["POST /compute/v2.1/servers/{server_id}/action (os-getConsoleOutput)"]),
        PolicyDefault("os_compute_api:server-metadata:index", ownerReader, "Read a server's metadata.",
                      ["GET /compute/v2.1/servers/{server_id}/metadata", "GET /compute/v2.1/servers/{server_id}/metadata/{key}"]),
        PolicyDefault("os_compute_api:server-metadata:update", ownerMember, "Change a server's metadata.",
                      ["POST|PUT /compute/v2.1/servers/{server_id}/metadata", "PUT|DELETE /compute/v2.1/servers/{server_id}/metadata/{key}"]),
    ]

    /// Fields `POST /servers` accepts (Nova's schema); anything else is a 400.
    static let serverFields: Set<String> = [
        "name", "imageRef", "flavorRef", "adminPass", "metadata", "networks", "OS-DCF:diskConfig", "accessIPv4", "accessIPv6",
        "key_name", "user_data", "availability_zone", "min_count", "max_count", "return_reservation_id", "security_groups",
        "config_drive", "description", "tags", "hostname", "block_device_mapping_v2",
    ]

    func serverLinks(_ id: String) -> JSON {
        [["rel": "self", "href": .string(base + "/v2.1/servers/" + id)], ["rel": "bookmark", "href": .string(base + "/servers/" + id)]]
    }

    /// Nova's `hostId`: the host, hashed with the project so projects cannot compare hosts.
    static func hostID(project: String, host: String?) -> String {
        guard let host else { return "" }
        return SHA256.hash(data: Data((project + host).utf8)).map { String(format: "%02x", $0) }.joined().prefix(56).description
    }

    func serverJSON(_ server: Server, _ version: Microversion, admin: Bool, detail: Bool, hostUp: Bool?, listed: Bool = false) -> JSON {
        let row = server
        var object: [String: JSON] = ["id": .string(row.id), "name": .string(row.name), "links": serverLinks(row.id)]
        guard detail else { return .object(object) }
        let status = server.status
        object["status"] = .string(status)
        object["tenant_id"] = .string(row.projectID)
        object["user_id"] = .string(row.userID)
        object["metadata"] = .object(server.metadata.mapValues(JSON.string))
        object["hostId"] = .string(Self.hostID(project: row.projectID, host: row.host))
        object["image"] = row.imageID.map { ["id": .string($0), "links": [["rel": "bookmark", "href": .string(base + "/images/" + $0)]]] } ?? ""
        if version >= Microversion(2, 47) {
            var flavor: [String: JSON] = ["vcpus": .number(Double(row.vcpus)), "ram": .number(Double(row.memoryMB)),
                                          "disk": .number(Double(row.rootGB)), "ephemeral": .number(Double(row.ephemeralGB)),
                                          "swap": .number(Double(row.swap)), "original_name": .string(row.flavorName ?? row.flavorID)]
            flavor["extra_specs"] = .object(server.flavorExtraSpecs.mapValues(JSON.string))
            object["flavor"] = .object(flavor)
        } else {
            object["flavor"] = ["id": .string(row.flavorID), "links": [["rel": "bookmark", "href": .string(base + "/flavors/" + row.flavorID)]]]
        }
        object["created"] = .string(Self.isoTime(row.createdAt))
        object["updated"] = .string(Self.isoTime(row.updatedAt))
        // Ports plug in here with the networking issue: addresses come from a server's ports.
        object["addresses"] = [:]
        object["accessIPv4"] = ""
        object["accessIPv6"] = ""
        object["OS-DCF:diskConfig"] = "MANUAL"
        if status == "BUILD" || status == "ACTIVE" { object["progress"] = 0 }
        object["OS-EXT-AZ:availability_zone"] = .string(row.availabilityZone ?? (row.host == nil ? "" : defaultAvailabilityZone))
        object["config_drive"] = ""
        object["key_name"] = JSON.string(row.keyName)
        object["OS-SRV-USG:launched_at"] = novaTime(row.launchedAt)
        object["OS-SRV-USG:terminated_at"] = .null
        object["OS-EXT-STS:vm_state"] = JSON.string(row.vmState?.rawValue)
        object["OS-EXT-STS:task_state"] = JSON.string(row.taskState?.rawValue)
        object["OS-EXT-STS:power_state"] = .number(Double(row.powerState.rawValue))
        object["os-extended-volumes:volumes_attached"] = []
        if admin {
            object["OS-EXT-SRV-ATTR:host"] = JSON.string(row.host)
            object["OS-EXT-SRV-ATTR:hypervisor_hostname"] = JSON.string(row.host)
            object["OS-EXT-SRV-ATTR:instance_name"] = .string(DomainNaming.name(row.id))
            if version >= Microversion(2, 3) {
                object["OS-EXT-SRV-ATTR:reservation_id"] = JSON.string(row.reservationID)
                object["OS-EXT-SRV-ATTR:launch_index"] = 0
                object["OS-EXT-SRV-ATTR:hostname"] = JSON.string(row.hostname)
                object["OS-EXT-SRV-ATTR:kernel_id"] = ""
                object["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
                object["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
                object["OS-EXT-SRV-ATTR:user_data"] = JSON.string(row.userData)
            }
        }
        if version >= Microversion(2, 9) { object["locked"] = false }
        if version >= Microversion(2, 16), admin, let hostUp { object["host_status"] = hostUp ? "UP" : "DOWN" }
        if version >= Microversion(2, 19) { object["description"] = .null }
        if version >= Microversion(2, 26) { object["tags"] = [] }
        if version >= Microversion(2, 63) { object["trusted_image_certificates"] = .null }
        // Nova shows a server's groups when showing, updating or rebuilding it, not in lists.
        if version >= Microversion(2, 71), !listed { object["server_groups"] = [] }
        if version >= Microversion(2, 73) { object["locked_reason"] = .null }
        if let fault = server.fault, status == "ERROR" || status == "DELETED" {
            var body: [String: JSON] = ["code": .number(Double(fault.code)), "message": .string(fault.message),
                                        "created": .string(Self.isoTime(server.faultCreated ?? row.updatedAt))]
            if admin || fault.code != 500, let details = fault.details { body["details"] = .string(details) }
            object["fault"] = .object(body)
        }
        return .object(object)
    }

    /// Nova's server timestamps: `2026-11-25T16:00:00Z`.
    static func isoTime(_ milliseconds: Int64) -> String {
        UTCTime.format(Date(timeIntervalSince1970: TimeInterval(milliseconds) / 1000), fractionDigits: 0)
    }

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

    func registerServers(on v21: RouterGroup<APIRequestContext>) {
        v21.get("servers") { request, context in try await listServers(request, context, detail: false) }
        v21.get("servers/detail") { request, context in try await listServers(request, context, detail: true) }
        v21.post("servers") { request, context in try await createServer(request, context) }
        v21.get("servers/:server_id") { request, context in try await showServer(request, context) }
        v21.put("servers/:server_id") { request, context in try await updateServer(request, context) }
        v21.delete("servers/:server_id") { request, context in try await deleteServer(request, context) }
        v21.post("servers/:server_id/action") { request, context in try await serverAction(request, context) }
        registerServerMetadata(on: v21)
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
        body["servers"] = .array(list.map {
            serverJSON($0, version, admin: who.isAdmin, detail: detail, hostUp: $0.host.flatMap { up[$0] }, listed: true)
        })
        return answer(.ok, .object(body), version)
    }

    /// `POST /servers`: records the servers and starts their builds.
    func createServer(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (caller, version) = try await authenticated(request, context)
        let who = try serverCaller(caller, context)
        try context.enforce("os_compute_api:servers:create", target: ["project_id": who.projectID])
        guard let fields = try await environment.body(request)["server"]?.objectValue else {
            throw APIFault(.badRequest, "Invalid input for field/attribute server. 'server' is a required property.")
        }
        let create = try Self.serverRequest(fields, version, project: who.projectID)
        let created = try await serverCall { try await servers.create(create, by: who) }
        let messageContext = rpcContext(caller, who)
        for server in created {
            Task { await serverConductor.build(server.id, context: messageContext) }
        }
        if fields["return_reservation_id"]?.boolValue == true {
            return answer(.accepted, ["reservation_id": JSON.string(created.first?.reservationID)], version)
        }
        let first = created[0]
        var body: [String: JSON] = ["id": .string(first.id), "links": serverLinks(first.id), "OS-DCF:diskConfig": "MANUAL",
                                    "adminPass": .string(fields["adminPass"]?.stringValue ?? Self.password())]
        body["security_groups"] = [["name": "default"]]
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
        return answer(.ok, ["server": serverJSON(server, version, admin: who.isAdmin, detail: true, hostUp: up)], version)
    }

    /// `PUT /servers/{id}`: a new name.
    func updateServer(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("server_id")
        let (_, _, version, who) = try await authorizedServer(request, context, id, "os_compute_api:servers:update")
        guard let fields = try await environment.body(request)["server"]?.objectValue else {
            throw APIFault(.badRequest, "Invalid input for field/attribute server. 'server' is a required property.")
        }
        for key in fields.keys where !["name", "description", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig", "hostname"].contains(key) {
            throw APIFault(.badRequest, "Invalid input for field/attribute server. Additional properties are not allowed ('\(key)' was unexpected)")
        }
        let name = try fields["name"].map { try Self.serverName($0) }
        let server = try await serverCall {
            try await servers.change(id, by: who) { server in
                if let name { server.name = name }
            }
        }
        return answer(.ok, ["server": serverJSON(server, version, admin: who.isAdmin, detail: true, hostUp: nil)], version)
    }

    /// `DELETE /servers/{id}`
    func deleteServer(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("server_id")
        let (server, caller, version, who) = try await authorizedServer(request, context, id, "os_compute_api:servers:delete")
        let route = try await serverCall { try await servers.beginDelete(server, by: who) { try await hostIsUp($0) } }
        if case .host(let host) = route {
            try await serverConductor.delete(id, on: host, context: rpcContext(caller, who))
        }
        return Response(status: .noContent, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
    }

    /// `POST /servers/{id}/action`: one action, named by the body's only key.
    func serverAction(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("server_id")
        let body = try await environment.body(request)
        guard body.count == 1, let (name, argument) = body.first else {
            throw APIFault(.badRequest, "The server action body must name exactly one action.")
        }
        let policy = name == "os-getConsoleOutput" ? "os_compute_api:os-console-output" : "os_compute_api:servers:action"
        let (server, caller, version, who) = try await authorizedServer(request, context, id, policy)
        let messageContext = rpcContext(caller, who)
        func accepted() -> Response {
            Response(status: .accepted, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }
        switch name {
        case "os-getConsoleOutput":
            var length: Int?
            if let value = argument.objectValue?["length"], !value.isNull {
                let asked: Int? = switch value {
                case .number(let number): Int(exactly: number)
                case .string(let text): Int(text)
                default: nil
                }
                guard let asked, asked >= -1 else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute length. Value: \(String(decoding: value.encoded(), as: UTF8.self)). It must be an integer.")
                }
                length = asked < 0 ? nil : asked
            }
            guard let host = server.host, server.taskState != nil || [.active, .paused, .stopped, .suspended].contains(server.vmState) else {
                throw APIFault(.conflict, "Instance \(id) is not ready")
            }
            let output = try await serverConductor.consoleOutput(id, on: host, length: length, context: messageContext)
            return answer(.ok, ["output": .string(output)], version)
        case "reboot":
            guard let type = argument.objectValue?["type"]?.stringValue, ["SOFT", "HARD"].contains(type.uppercased()) else {
                throw APIFault(.badRequest, "Invalid input for field/attribute type. Value: None. It must be SOFT or HARD.")
            }
            let key = type.uppercased() == "HARD" ? "reboot_hard" : "reboot_soft"
            try await run(key, server.id, who, messageContext)
            return accepted()
        case "os-stop", "os-start", "pause", "unpause", "suspend", "resume":
            try await run(name, server.id, who, messageContext)
            return accepted()
        case "rebuild":
            guard let fields = argument.objectValue, let imageRef = fields["imageRef"]?.stringValue else {
                throw APIFault(.badRequest, "Invalid input for field/attribute rebuild. 'imageRef' is a required property.")
            }
            let newName = try fields["name"].map { try Self.serverName($0) }
            let metadata = try fields["metadata"].map { try Self.metadata($0) }
            if let metadata { try await serverCall { try await servers.checkMetadata(metadata, by: who) } }
            let image = try await serverCall { try await servers.rebuildImage(imageRef, for: server, by: who) }
            let changed = try await run("rebuild", server.id, who, messageContext) { server in
                server.imageID = image
                if let newName { server.name = newName }
                if let metadata { server.metadata = metadata }
            }
            var json = serverJSON(changed, version, admin: who.isAdmin, detail: true, hostUp: nil)
            if case .object(var object) = json {
                object["adminPass"] = .string(Self.password())
                if version >= Microversion(2, 57) { object["user_data"] = JSON.string(changed.userData) }
                json = .object(object)
            }
            return answer(.accepted, ["server": json], version)
        case "createImage":
            guard let fields = argument.objectValue, let imageName = fields["name"]?.stringValue,
                  !imageName.trimmingCharacters(in: .whitespaces).isEmpty, imageName.count <= 255 else {
                throw APIFault(.badRequest, "Invalid input for field/attribute name. 'name' is a required property.")
            }
            let properties = try fields["metadata"].map { try Self.metadata($0) } ?? [:]
            let imageID = try await snapshot(server, name: imageName, properties: properties, caller: who, context: messageContext)
            var headers = version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version")
            if version >= Microversion(2, 45) {
                return respond(.accepted, ["image_id": .string(imageID)], headers: headers)
            }
            headers[.location] = environment.publicURL + "/image/v2/images/" + imageID
            return Response(status: .accepted, headers: headers)
        default:
            throw APIFault(.badRequest, "There is no such action: \(name)")
        }
    }

    @discardableResult
    func run(_ key: String, _ id: String, _ who: ServerCaller, _ context: Contracts.RequestContext,
             prepare: @escaping @Sendable (inout Server) throws -> Void = { _ in }) async throws -> Server {
        let (server, host, action) = try await serverCall { try await servers.begin(key, on: id, by: who, prepare: prepare) }
        try await serverConductor.send(.init(instanceID: id, action: action), to: host, context: context)
        return server
    }

    /// Records the snapshot image (queued) and asks the host to upload the disk into it.
    func snapshot(_ server: Server, name: String, properties: [String: String], caller: ServerCaller, context: Contracts.RequestContext)
        async throws -> String {
        let (imageID, host) = try await serverCall { try await servers.beginSnapshot(server.id, name: name, properties: properties, by: caller) }
        do {
            // The conductor ends the task if the host cannot be asked; the image goes too.
            try await serverConductor.send(.init(instanceID: server.id, action: .snapshot, imageID: imageID), to: host, context: context)
        } catch {
            try? await servers.images.delete(imageID)
            throw error
        }
        return imageID
    }

    static func serverName(_ value: JSON) throws -> String {
        guard let name = value.stringValue, !name.isEmpty, name.count <= 255, !name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw APIFault(.badRequest, "Invalid input for field/attribute name. Value: \(value). It must be a non-empty string of at most 255 characters.")
        }
        return name
    }

    static func metadata(_ value: JSON) throws -> [String: String] {
        guard let object = value.objectValue else {
            throw APIFault(.badRequest, "Invalid input for field/attribute metadata. Value: \(value). It is not of type 'object'")
        }
        var result: [String: String] = [:]
        for (key, item) in object {
            guard !key.isEmpty, key.count <= 255 else {
                throw APIFault(.badRequest, "Invalid input for field/attribute metadata. Keys must be 1 to 255 characters.")
            }
            guard let text = item.stringValue, text.count <= 255 else {
                throw APIFault(.badRequest, "Invalid input for field/attribute metadata. The value of '\(key)' must be a string of at most 255 characters.")
            }
            result[key] = text
        }
        return result
    }

    /// `POST /servers`' body, checked field by field as Nova's schema does.
    static func serverRequest(_ fields: [String: JSON], _ version: Microversion, project: String) throws -> ServerRequest {
        for key in fields.keys where !serverFields.contains(key) {
            throw APIFault(.badRequest, "Invalid input for field/attribute server. Additional properties are not allowed ('\(key)' was unexpected)")
        }
        guard let nameValue = fields["name"] else {
            throw APIFault(.badRequest, "Invalid input for field/attribute server. 'name' is a required property.")
        }
        let name = try serverName(nameValue)
        guard let flavorRef = fields["flavorRef"].flatMap(Self.reference) else {
            throw APIFault(.badRequest, "Invalid input for field/attribute flavorRef. 'flavorRef' is a required property.")
        }
        var imageRef = fields["imageRef"].flatMap(Self.reference)
        if let mappings = fields["block_device_mapping_v2"] {
            // The mapping clients send for a boot from an image (an image copied to a local
            // disk) is what Petrel does anyway; volumes wait for the block storage service.
            guard let list = mappings.arrayValue else {
                throw APIFault(.badRequest, "Invalid input for field/attribute block_device_mapping_v2. It is not of type 'array'")
            }
            for mapping in list {
                guard let object = mapping.objectValue, object["source_type"]?.stringValue == "image",
                      object["destination_type"]?.stringValue ?? "local" == "local", let uuid = object["uuid"]?.stringValue else {
                    throw APIFault(.badRequest, "Block device mappings other than an image on the local disk are not supported yet.")
                }
                if imageRef == nil || imageRef == "" { imageRef = uuid }
            }
        }
        guard let imageRef, !imageRef.isEmpty else {
            throw APIFault(.badRequest, "Invalid input for field/attribute imageRef. 'imageRef' is a required property.")
        }
        switch fields["networks"] {
        case nil:
            if version >= Microversion(2, 37) {
                throw APIFault(.badRequest, "Invalid input for field/attribute server. 'networks' is a required property.")
            }
        case .string("none")?: break
        case .string("auto")?:
            // As Nova without networks to give and without auto-allocated topologies.
            throw APIFault(.badRequest, "Unable to automatically allocate a network for project \(project)")
        case .array(let list)?:
            if let first = list.first?.objectValue {
                let what = first["uuid"]?.stringValue ?? first["port"]?.stringValue ?? "requested"
                throw APIFault(.badRequest, "Network \(what) could not be found.")
            }
        case let other?:
            throw APIFault(.badRequest, "Invalid input for field/attribute networks. Value: \(other). It must be 'none', 'auto' or a list.")
        }
        let minCount = try ComputeAPI.integer(fields["min_count"], "min_count", minimum: 1) ?? 1
        let maxCount = try ComputeAPI.integer(fields["max_count"], "max_count", minimum: 1) ?? minCount
        guard minCount <= maxCount else { throw APIFault(.badRequest, "min_count must be <= max_count") }
        var keyName: String?
        if let value = fields["key_name"], !value.isNull {
            guard let text = value.stringValue, !text.isEmpty else { throw APIFault(.badRequest, "Invalid input for field/attribute key_name.") }
            keyName = text
        }
        var userData: String?
        if let value = fields["user_data"], !value.isNull {
            guard let text = value.stringValue, text.count <= 65535, Data(base64Encoded: text) != nil else {
                throw APIFault(.badRequest, "Invalid input for field/attribute user_data. Value: it must be base64 of at most 65535 characters.")
            }
            userData = text
        }
        var zone: String?
        if let value = fields["availability_zone"], !value.isNull {
            guard let text = value.stringValue, !text.isEmpty else {
                throw APIFault(.badRequest, "Invalid input for field/attribute availability_zone.")
            }
            zone = text.split(separator: ":", maxSplits: 1).first.map(String.init)
        }
        let metadata = try fields["metadata"].map(metadata) ?? [:]
        return ServerRequest(name: name, flavorRef: flavorRef, imageRef: imageRef, keyName: keyName, userData: userData, metadata: metadata,
                             availabilityZone: zone, minCount: minCount, maxCount: maxCount,
                             hostname: fields["hostname"]?.stringValue)
    }

    /// An id, or a URL ending in one.
    static func reference(_ value: JSON) -> String? {
        guard let text = value.stringValue ?? value.numberText else { return nil }
        return text.split(separator: "/").last.map(String.init) ?? text
    }

    static func password() -> String {
        let letters = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        return String((0..<12).map { _ in letters.randomElement()! })
    }


    func registerServerMetadata(on v21: RouterGroup<APIRequestContext>) {
        v21.get("servers/:server_id/metadata") { request, context in
            let (server, _, version, _) = try await authorizedServer(request, context, try context.parameters.require("server_id"),
                                                                    "os_compute_api:server-metadata:index")
            return answer(.ok, ["metadata": .object(server.metadata.mapValues(JSON.string))], version)
        }
        v21.get("servers/:server_id/metadata/:key") { request, context in
            let (server, _, version, _) = try await authorizedServer(request, context, try context.parameters.require("server_id"),
                                                                    "os_compute_api:server-metadata:index")
            let key = try context.parameters.require("key")
            guard let value = server.metadata[key] else { throw APIFault(.notFound, "Metadata item was not found") }
            return answer(.ok, ["meta": [key: .string(value)]], version)
        }
        @Sendable func write(_ request: Request, _ context: APIRequestContext, _ id: String, replace: Bool) async throws -> Response {
            let (_, _, version, who) = try await authorizedServer(request, context, id, "os_compute_api:server-metadata:update")
            guard let value = try await environment.body(request)["metadata"] else {
                throw APIFault(.badRequest, "Invalid input for field/attribute metadata. 'metadata' is a required property.")
            }
            let items = try Self.metadata(value)
            let server = try await serverCall { try await servers.setMetadata(id, items, replace: replace, by: who) }
            return answer(.ok, ["metadata": .object(server.metadata.mapValues(JSON.string))], version)
        }
        v21.post("servers/:server_id/metadata") { request, context in try await write(request, context, try context.parameters.require("server_id"), replace: false) }
        v21.put("servers/:server_id/metadata") { request, context in try await write(request, context, try context.parameters.require("server_id"), replace: true) }
        v21.put("servers/:server_id/metadata/:key") { request, context in
            let id = try context.parameters.require("server_id"), key = try context.parameters.require("key")
            let (_, _, version, who) = try await authorizedServer(request, context, id, "os_compute_api:server-metadata:update")
            guard let meta = try await environment.body(request)["meta"]?.objectValue, meta.count == 1, let item = meta[key] else {
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
            _ = try await serverCall { try await servers.change(id, by: who) { $0.metadata[key] = nil } }
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
