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
}
