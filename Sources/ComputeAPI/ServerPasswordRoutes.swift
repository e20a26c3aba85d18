import Compute
import Foundation
import Hummingbird
import PetrelCore
import PetrelHTTP

/// `os-server-password`: the (encrypted) password a guest posted to the metadata service.
extension ComputeAPI {
    static let serverPasswordPolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:os-server-password:show", ownerReader, "Read the encrypted password a server's guest posted.",
                      ["GET /compute/v2.1/servers/{server_id}/os-server-password"]),
        PolicyDefault("os_compute_api:os-server-password:clear", ownerMember, "Forget the password a server's guest posted.",
                      ["DELETE /compute/v2.1/servers/{server_id}/os-server-password"]),
    ]

    func registerServerPassword(on v21: APIRoutes) {
        v21.get("servers/:server_id/os-server-password", query: NovaQuerySchemas.open) { request, context in
            let id = try context.parameters.require("server_id")
            let (server, _, version, _) = try await authorizedServer(request, context, id, "os_compute_api:os-server-password:show")
            return answer(.ok, ["password": .string(server.metadataPassword ?? "")], version)
        }
        v21.delete("servers/:server_id/os-server-password") { request, context in
            let id = try context.parameters.require("server_id")
            let (server, _, version, who) = try await authorizedServer(request, context, id, "os_compute_api:os-server-password:clear")
            try await serverCall { try await servers.clearPassword(server.id, by: who) }
            return Response(status: .noContent, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }
    }
}
