import Compute
import Foundation
import Hummingbird
import PetrelCore
import PetrelHTTP

extension ComputeAPI {
    static let keyPairPolicies: [PolicyDefault] = ["index", "create", "show", "delete"].map { action in
        PolicyDefault("os_compute_api:os-keypairs:\(action)", "(rule:context_is_admin) or user_id:%(user_id)s",
                      "\(action == "index" ? "List" : action.capitalized) key pairs (one's own; an admin names other users).",
                      [action == "create" ? "POST /compute/v2.1/os-keypairs" : action == "index" ? "GET /compute/v2.1/os-keypairs"
                       : "\(action == "show" ? "GET" : "DELETE") /compute/v2.1/os-keypairs/{keypair_name}"])
    }

    func keyPairJSON(_ row: KeyPair, _ version: Microversion, full: Bool) -> JSON {
        var object: [String: JSON] = ["name": .string(row.name), "public_key": .string(row.publicKey), "fingerprint": .string(row.fingerprint)]
        if version >= Microversion(2, 2) { object["type"] = .string(row.type) }
        if full {
            object["user_id"] = .string(row.userID)
            object["id"] = .number(Double(row.id))
            object["created_at"] = novaTime(row.createdAt)
            object["updated_at"] = .null
            object["deleted"] = false
            object["deleted_at"] = .null
        }
        return .object(object)
    }

    func registerKeyPairs(on v21: APIRoutes) {
        @Sendable func run<T>(_ body: () async throws -> T) async throws -> T {
            do {
                return try await body()
            } catch let failure as KeyPairs.Failure {
                switch failure {
                case .notFound(let name): throw APIFault(.notFound, "Keypair \(name) not found for this user.")
                case .duplicate(let message): throw APIFault(.conflict, message)
                case .invalidKey(let message): throw APIFault(.badRequest, message)
                }
            }
        }
        /// The user a request acts for: the caller, or (admin, 2.10+) `user_id`.
        /// The user whose key pairs `action` is on: the caller, or (2.10+) the one named.
        @Sendable func owner(_ caller: Caller, _ version: Microversion, _ request: Request, _ context: APIRequestContext, _ action: String,
                             given: String? = nil) throws -> String {
            var user = caller.user.id
            if let other = given ?? request.query("user_id") {
                guard version >= Microversion(2, 10) else { throw APIFault(.badRequest, "user_id needs microversion 2.10 or later.") }
                user = other
            }
            try context.enforce(action, target: ["user_id": user])
            return user
        }
        @Sendable func subject(_ request: Request, _ context: APIRequestContext, _ action: String) async throws -> (String, Microversion) {
            let (caller, version) = try await authenticated(request, context)
            return (try owner(caller, version, request, context, action), version)
        }
        v21.get("os-keypairs", query: NovaQuerySchemas.keyPairs) { request, context in
            let (user, version) = try await subject(request, context, "os_compute_api:os-keypairs:index")
            var list = try await keyPairs.list(userID: user)
            if let marker = request.query("marker") {
                guard let index = list.firstIndex(where: { $0.name == marker }) else { throw APIFault(.badRequest, "marker [\(marker)] not found") }
                list = Array(list[(index + 1)...])
            }
            if let limit = try Paging.novaLimit(request) { list = Array(list.prefix(limit)) }
            return answer(.ok, ["keypairs": .array(list.map { ["keypair": keyPairJSON($0, version, full: false)] })], version)
        }
        v21.post("os-keypairs", body: Self.body { KeyPairSchemas.create($0) }) { request, context in
            let (caller, version) = try await authenticated(request, context)
            guard let fields = try await environment.body(request, context)["keypair"]?.objectValue else {
                throw APIFault(.badRequest, "Invalid input for field/attribute keypair. 'keypair' is a required property.")
            }
            let user = try owner(caller, version, request, context, "os_compute_api:os-keypairs:create", given: fields["user_id"]?.stringValue)
            // 2.92 lets '@' and '.' into names (and stops generating keys: the schema requires one).
            let allowed = version >= Microversion(2, 92) ? "^[a-zA-Z0-9 _.@-]+$" : "^[a-zA-Z0-9 _-]+$"
            guard let name = fields["name"]?.stringValue, !name.isEmpty, name.count <= 255,
                  name.range(of: allowed, options: .regularExpression) != nil, name.trimmingCharacters(in: .whitespaces) == name else {
                throw APIFault(.badRequest, version >= Microversion(2, 92)
                               ? "Keypair data is invalid: the name must be 1 to 255 letters, digits, spaces, '_', '.', '@' or '-'."
                               : "Keypair data is invalid: the name must be 1 to 255 letters, digits, spaces, '_' or '-'.")
            }
            let type = fields["type"]?.stringValue ?? "ssh"
            guard type == "ssh" || (type == "x509" && version >= Microversion(2, 2)) else {
                throw APIFault(.badRequest, "Invalid input for field/attribute type. Value: \(type). It must be 'ssh' or 'x509'.")
            }
            var privateKey: String?
            var publicKey = fields["public_key"]?.stringValue
            if publicKey == nil {
                // Generated (before 2.92): an RSA key, or (x509) a self-signed certificate with its key as PKCS#12.
                if type == "x509" {
                    let generated = try await KeyPairs.generateX509(userID: user)
                    (publicKey, privateKey) = (generated.certificate, generated.privateKey)
                } else {
                    let generated = try KeyPairs.generate()
                    (publicKey, privateKey) = (generated.publicKey, generated.privateKey)
                }
            }
            let row = try await run { try await keyPairs.create(userID: user, name: name, type: type, publicKey: publicKey!) }
            var object = keyPairJSON(row, version, full: false).objectValue ?? [:]
            object["user_id"] = .string(user)
            if let privateKey { object["private_key"] = .string(privateKey) }
            return answer(version >= Microversion(2, 2) ? .created : .ok, ["keypair": .object(object)], version)
        }
        v21.get("os-keypairs/:name", query: NovaQuerySchemas.keyPair) { request, context in
            let (user, version) = try await subject(request, context, "os_compute_api:os-keypairs:show")
            let row = try await run { try await keyPairs.get(userID: user, name: try context.parameters.require("name")) }
            return answer(.ok, ["keypair": keyPairJSON(row, version, full: true)], version)
        }
        v21.delete("os-keypairs/:name") { request, context in
            let (user, version) = try await subject(request, context, "os_compute_api:os-keypairs:delete")
            try await run { try await keyPairs.delete(userID: user, name: try context.parameters.require("name")) }
            return Response(status: version >= Microversion(2, 2) ? .noContent : .accepted,
                            headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }
    }
}
