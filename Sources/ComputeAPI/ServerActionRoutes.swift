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

/// `POST /servers/{id}/action`: reboot, stop, start, pause, suspend, rebuild, createImage, console output.
extension ComputeAPI {
    /// `POST /servers/{id}/action`: one action, named by the body's only key.
    func serverAction(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("server_id")
        let body = try await environment.body(request, context)
        guard body.count == 1, let (name, argument) = body.first else {
            throw APIFault(.badRequest, "The server action body must name exactly one action.")
        }
        let policy = switch name {
        case "os-getConsoleOutput": "os_compute_api:os-console-output"
        case "lock": "os_compute_api:os-lock-server:lock"
        case "unlock": "os_compute_api:os-lock-server:unlock"
        case "shelve": "os_compute_api:os-shelve:shelve"
        case "shelveOffload": "os_compute_api:os-shelve:shelve_offload"
        case "unshelve": "os_compute_api:os-shelve:unshelve"
        case "resize": "os_compute_api:servers:resize"
        case "confirmResize": "os_compute_api:servers:confirm_resize"
        case "revertResize": "os_compute_api:servers:revert_resize"
        case "migrate": "os_compute_api:os-migrate-server:migrate"
        case "rescue": "os_compute_api:os-rescue"
        case "createBackup": "os_compute_api:os-create-backup"
        case "unrescue": "os_compute_api:os-unrescue"
        case "restore": "os_compute_api:os-deferred-delete:restore"
        case "forceDelete": "os_compute_api:os-deferred-delete:force"
        default: "os_compute_api:servers:action"
        }
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
            guard let host = server.host, server.taskState != nil || [.active, .paused, .stopped, .suspended, .rescued, .resized].contains(server.vmState) else {
                throw APIFault(.conflict, "Instance \(id) is not ready")
            }
            let output = try await serverConductor.consoleOutput(id, on: host, length: length, context: messageContext)
            return answer(.ok, ["output": .string(output)], version)
        case "os-getVNCConsole", "os-getSerialConsole":
            return try await consoleAction(name, argument, server: server, caller: caller, who: who, context: context, version: version)
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
            try Self.refuseTrustedCertificates(fields["trusted_image_certificates"])
            let changes = ServerFieldChanges(fields)
            if let metadata { try await serverCall { try await servers.checkMetadata(metadata, by: who) } }
            let image = try await serverCall { try await servers.rebuildImage(imageRef, for: server, by: who) }
            let changed = try await run("rebuild", server.id, who, messageContext) { server in
                server.imageID = image
                if let newName { server.name = newName }
                if let metadata { server.metadata = metadata }
                changes.apply(to: &server)
            }
            let addresses = try await servers.addresses([changed.id])[changed.id] ?? []
            var json = serverJSON(changed, version, admin: who.isAdmin, detail: true, hostUp: nil, addresses: addresses,
                                  imageProperties: try await imageProperties(changed, version),
                                  serverGroups: try await serverGroups.groups(of: changed.id))
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
        case "addSecurityGroup", "removeSecurityGroup":
            try context.enforce(name == "addSecurityGroup" ? "os_compute_api:os-security-groups:add" : "os_compute_api:os-security-groups:remove",
                                target: ["project_id": server.projectID])
            guard let group = argument.objectValue?["name"]?.stringValue, !group.isEmpty else {
                throw APIFault(.badRequest, "Invalid input for field/attribute name. Value: None. None is not of type 'string'")
            }
            do {
                try await serverCall { try await servers.changeSecurityGroup(group, of: server, adding: name == "addSecurityGroup") }
            } catch let failure as NetworkingFailure {
                throw APIFault(failure.status == 404 ? .notFound : .badRequest, failure.message)
            }
            return accepted()
        case "lock":
            // From 2.73 a reason may come with it (an object with `locked_reason`, or null).
            let reason = version >= Microversion(2, 73) ? argument.objectValue?["locked_reason"]?.stringValue : nil
            try await serverCall { _ = try await servers.lock(server.id, reason: reason, by: who) }
            await recordAction(server.id, "lock", host: server.host, messageContext)
            return accepted()
        case "unlock":
            if !Servers.unlocksOwnLock(server, who) {
                try context.enforce("os_compute_api:os-lock-server:unlock:unlock_override", target: ["project_id": server.projectID])
            }
            try await serverCall { _ = try await servers.unlock(server.id, by: who) }
            await recordAction(server.id, "unlock", host: server.host, messageContext)
            return accepted()
        case "shelve":
            let (_, host, imageID) = try await serverCall { try await servers.beginShelve(server.id, by: who) }
            await recordAction(server.id, "shelve", host: host, messageContext)
            do {
                try await serverConductor.send(.init(instanceID: server.id, action: .shelve, imageID: imageID), to: host, context: messageContext)
            } catch {
                try? await servers.images.delete(imageID)
                throw error
            }
            return accepted()
        case "shelveOffload":
            try await run("shelveOffload", server.id, who, messageContext)
            return accepted()
        case "unshelve":
            try await unshelve(server, argument, version, context, who, messageContext)
            return accepted()
        case "resize", "migrate":
            try await resize(server, name, argument, version, context, who, messageContext)
            return accepted()
        case "rescue":
            let options = argument.objectValue ?? [:]
            let (_, host, action) = try await serverCall {
                try await servers.beginRescue(server.id, imageRef: options["rescue_image_ref"]?.stringValue,
                                              allowVolumeBacked: version >= Microversion(2, 87), by: who)
            }
            await recordAction(server.id, "rescue", host: host, messageContext)
            try await serverConductor.send(.init(instanceID: server.id, action: action), to: host, context: messageContext)
            // Nova answers with the password it would set (enable_instance_password).
            return answer(.ok, ["adminPass": .string(options["adminPass"]?.stringValue ?? Self.password())], version)
        case "unrescue":
            try await run("unrescue", server.id, who, messageContext)
            return accepted()
        case "createBackup":
            return try await backup(server, argument, version, who, messageContext)
        case "confirmResize", "revertResize":
            let (_, host, action) = try await serverCall { try await servers.beginResizeEnd(name, on: server.id, by: who) }
            await recordAction(server.id, name, host: host, messageContext)
            try await serverConductor.send(.init(instanceID: server.id, action: action), to: host, context: messageContext)
            if name == "confirmResize" {
                return Response(status: .noContent, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
            }
            return accepted()
        case "restore":
            // Counted again: the quota must have room for it (403 otherwise, as Nova).
            let (_, host, action) = try await serverCall { try await servers.beginRestore(server, by: who) }
            await recordAction(server.id, "restore", host: host, messageContext)
            try await serverConductor.send(.init(instanceID: server.id, action: action), to: host, context: messageContext)
            return accepted()
        case "forceDelete":
            // Any VM state, no task running (Nova's force_delete).
            if let task = server.taskState { throw APIFault(.conflict, "Cannot 'forceDelete' instance \(server.id) while it is in task_state \(task.rawValue)") }
            try await hardDelete(server, caller, who)
            return accepted()
        case "trigger_crash_dump":
            return try await triggerCrashDump(server, argument, version, context, who, messageContext)
        default:
            throw APIFault(.badRequest, "There is no such action: \(name)")
        }
    }

    @discardableResult
    func run(_ key: String, _ id: String, _ who: ServerCaller, _ context: Contracts.RequestContext,
             prepare: @escaping @Sendable (inout Server) throws -> Void = { _ in }) async throws -> Server {
        let (server, host, action) = try await serverCall { try await servers.begin(key, on: id, by: who, prepare: prepare) }
        await recordAction(id, Self.actionName(key), host: host, context)
        try await serverConductor.send(.init(instanceID: id, action: action), to: host, context: context)
        return server
    }

    /// Records the snapshot image (queued) and asks the host to upload the disk into it.
    func snapshot(_ server: Server, name: String, properties: [String: String], caller: ServerCaller, context: Contracts.RequestContext)
        async throws -> String {
        let (imageID, host) = try await serverCall { try await servers.beginSnapshot(server.id, name: name, properties: properties, by: caller) }
        await recordAction(server.id, "createImage", host: host, context)
        do {
            // The conductor ends the task if the host cannot be asked; the image goes too.
            try await serverConductor.send(.init(instanceID: server.id, action: .snapshot, imageID: imageID), to: host, context: context)
        } catch {
            try? await servers.images.delete(imageID)
            throw error
        }
        return imageID
    }

    /// `unshelve`: a shelved server is powered on where it is; an offloaded one is scheduled
    /// again (2.77: into an availability zone; 2.91: onto a host an admin names, or unpinned
    /// with a null zone) and built from its snapshot.
    func unshelve(_ server: Server, _ argument: JSON, _ version: Microversion, _ context: APIRequestContext, _ who: ServerCaller,
                  _ messageContext: Contracts.RequestContext) async throws {
        let options = argument.objectValue ?? [:]
        var zone: String??
        if version >= Microversion(2, 77), let value = options["availability_zone"] {
            zone = .some(value.stringValue)
        }
        var host: String?
        if version >= Microversion(2, 91), let value = options["host"]?.stringValue {
            try context.enforce("os_compute_api:os-shelve:unshelve_to_host", target: ["project_id": server.projectID])
            host = value
        }
        if server.vmState == .shelved {
            guard zone == nil, host == nil else {
                throw APIFault(.conflict, "The server \(server.id) is shelved but not offloaded: it can only be unshelved where it is.")
            }
            try await run("unshelve", server.id, who, messageContext)
            return
        }
        let waiting = try await serverCall { try await servers.beginUnshelve(server.id, host: host, zone: zone, by: who) }
        await recordAction(server.id, "unshelve", host: nil, messageContext)
        let conductor = serverConductor
        Task { await conductor.build(waiting.id, context: messageContext) }
    }
}
