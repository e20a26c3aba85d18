import Foundation
import Hummingbird
import Identity
import PetrelCore
import PetrelHTTP

/// Credentials (`/v3/credentials`), EC2 credentials (`/v3/users/{id}/credentials/OS-EC2`,
/// `/v3/ec2tokens`) and OS-TRUST trusts: the ways a user lets something else act for them.
extension KeystoneAPI {
    // MARK: credentials

    func credentialJSON(_ credential: Credential) -> JSON {
        var object = JSON.parse(Array(credential.extra.utf8))?.objectValue ?? [:]
        object["id"] = .string(credential.id)
        object["user_id"] = .string(credential.userID)
        object["project_id"] = .string(credential.projectID)
        object["type"] = .string(credential.type)
        object["blob"] = .string(credential.blob)
        object["links"] = ["self": link("/v3/credentials/\(credential.id)")]
        return .object(object)
    }

    /// The credential with this id, or nil when there is none. Only absence is nil: a
    /// credential that cannot be decrypted (no keys) stays the server error it is.
    func storedCredential(_ id: String) async throws -> Credential? {
        do {
            return try await service.credential(id)
        } catch IdentityError.notFound {
            return nil
        }
    }

    static let credentialAttributes: Set<String> = ["id", "user_id", "project_id", "type", "blob", "links"]

    /// Keystone's boundary for delegated tokens (trusts, application credentials): they reach
    /// only the credentials of the project they are scoped to.
    func checkDelegatedScope(_ caller: TokenInfo, projectID: String?, what: String = "Credential") throws {
        guard caller.trust != nil || caller.applicationCredential != nil else { return }
        if projectID != caller.project?.id {
            throw IdentityError.forbidden("You are not authorized to perform the requested action: \(what) project does not match the project scope of the delegated token.")
        }
    }

    /// An EC2 credential's blob must be a JSON object with an access key.
    func checkEC2Blob(_ blob: String) throws {
        guard let parsed = JSON.parse(Array(blob.utf8)) else { throw IdentityError.badRequest("Invalid blob in credential") }
        guard let object = parsed.objectValue, !object.isEmpty else {
            throw IdentityError.badRequest("Expecting to find blob in credential. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
        }
        guard let access = object["access"], !access.isNull else {
            throw IdentityError.badRequest("Expecting to find access in credential. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
        }
    }

    func registerCredentials(on router: APIRoutes) {
        router.get("/v3/credentials") { request, context in
            let caller = try authenticate(context)
            let ownOnly = caller.system ? [:] : ["target.credential.user_id": caller.user.id]
            try context.enforce("identity:list_credentials", target: ownOnly)
            let listed = try await service.credentials(userID: request.query("user_id"), type: request.query("type"))
            let visible = listed.filter { credential in
                (try? context.enforce("identity:get_credential", target: ["target.credential.user_id": credential.userID])) != nil
                    && (try? checkDelegatedScope(caller, projectID: credential.projectID)) != nil
            }
            return respond(.ok, ["credentials": .array(visible.map(credentialJSON)), "links": listLinks(request)])
        }
        router.post("/v3/credentials", body: .json(KeystoneSchemas.credentialCreate, style: .nova)) { request, context in
            let caller = try authenticate(context)
            let fields = try await resource(request, context, "credential")
            let userID = try fields.string("user_id", required: true)!
            try context.enforce("identity:create_credential", target: ["target.credential.user_id": userID])
            let type = try fields.string("type", required: true)!
            let blob = try fields.string("blob", required: true, maxLength: .max)!
            let projectID = try fields.string("project_id", nullable: true)
            if type == "ec2" {
                if let credential = caller.applicationCredential, credential.restricted {
                    throw IdentityError.forbidden("You are not authorized to perform the requested action: Using method 'application_credential' is not allowed for managing additional credentials.")
                }
                try checkEC2Blob(blob)
            }
            try checkDelegatedScope(caller, projectID: projectID)
            let extra = JSON.object(fields.extra(excluding: Self.credentialAttributes)).encodedText
            var credential = Credential(id: "", userID: userID, projectID: projectID, type: type, blob: blob, extra: extra)
            if type == "ec2", caller.trust != nil || caller.applicationCredential != nil,
               var object = JSON.parse(Array(blob.utf8))?.objectValue {
                // A delegated caller's EC2 credential stays within its delegation (as Keystone records it).
                if let trust = caller.trust { object["trust_id"] = .string(trust.id) }
                if let applicationCredential = caller.applicationCredential { object["app_cred_id"] = .string(applicationCredential.id) }
                credential.blob = JSON.object(object).encodedText
            }
            let created = try await service.createCredential(credential)
            return respond(.created, ["credential": credentialJSON(created)])
        }
        @Sendable func existing(_ context: APIRequestContext, _ action: String) async throws -> (TokenInfo, Credential) {
            let caller = try authenticate(context)
            let id = try context.parameters.require("credential_id")
            let found = try await storedCredential(id)
            try context.enforce(action, target: ["target.credential.user_id": found?.userID ?? ""])
            guard let found else { throw IdentityError.notFound(kind: "credential", id: id) }
            try checkDelegatedScope(caller, projectID: found.projectID)
            return (caller, found)
        }
        router.get("/v3/credentials/:credential_id") { request, context in
            let (_, credential) = try await existing(context, "identity:get_credential")
            return respond(.ok, ["credential": credentialJSON(credential)])
        }
        router.patch("/v3/credentials/:credential_id", body: .json(KeystoneSchemas.credentialUpdate, style: .nova)) { request, context in
            let (caller, current) = try await existing(context, "identity:update_credential")
            let fields = try await resource(request, context, "credential")
            try fields.refuseIDChange(current.id)
            var changed = current
            if fields.has("user_id") { changed.userID = try fields.string("user_id")! }
            if fields.has("type") { changed.type = try fields.string("type")! }
            if fields.has("blob") { changed.blob = try fields.string("blob", maxLength: .max)! }
            if fields.has("project_id") { changed.projectID = try fields.string("project_id", nullable: true) }
            if current.type == "ec2" {
                // An EC2 credential's delegation and access key are fixed.
                try checkEC2Blob(changed.blob)
                let before = current.ec2Blob, after = changed.ec2Blob
                for key in ["trust_id", "app_cred_id", "access_token_id", "access_id"] where before[key] != after[key] {
                    throw IdentityError.badRequest("\(key) can not be updated for credential")
                }
            }
            try context.enforce("identity:update_credential", target: ["target.credential.user_id": changed.userID])
            try checkDelegatedScope(caller, projectID: changed.projectID)
            var extra = JSON.parse(Array(current.extra.utf8))?.objectValue ?? [:]
            extra.merge(fields.extra(excluding: Self.credentialAttributes)) { $1 }
            changed.extra = JSON.object(extra).encodedText
            let result = changed
            let updated = try await service.updateCredential(current.id) { $0 = result }
            return respond(.ok, ["credential": credentialJSON(updated)])
        }
        router.delete("/v3/credentials/:credential_id") { request, context in
            let (_, credential) = try await existing(context, "identity:delete_credential")
            try await service.deleteCredential(credential.id)
            return noContent()
        }
        registerEC2Credentials(on: router)
        registerAccessRules(on: router)
    }

    /// `/v3/users/{id}/access_rules`: the rules a user's application credentials use.
    func registerAccessRules(on router: APIRoutes) {
        router.get("/v3/users/:user_id/access_rules") { request, context in
            let userID = try context.parameters.require("user_id")
            try context.enforce("identity:list_access_rules", target: ["target.user.id": userID])
            _ = try await service.users.get(userID)
            var rules = try await service.accessRules(userID: userID)
            if let filter = request.query("service") { rules = rules.filter { $0.service == filter } }
            if let filter = request.query("path") { rules = rules.filter { $0.path == filter } }
            if let filter = request.query("method") { rules = rules.filter { $0.method == filter } }
            return respond(.ok, ["access_rules": .array(rules.map(accessRuleJSON)), "links": listLinks(request)])
        }
        router.get("/v3/users/:user_id/access_rules/:access_rule_id") { _, context in
            let userID = try context.parameters.require("user_id")
            try context.enforce("identity:get_access_rule", target: ["target.user.id": userID])
            let rule = try await service.accessRule(userID: userID, id: try context.parameters.require("access_rule_id"))
            return respond(.ok, ["access_rule": accessRuleJSON(rule)])
        }
        router.delete("/v3/users/:user_id/access_rules/:access_rule_id") { _, context in
            let userID = try context.parameters.require("user_id")
            try context.enforce("identity:delete_access_rule", target: ["target.user.id": userID])
            try await service.deleteAccessRule(userID: userID, id: try context.parameters.require("access_rule_id"))
            return noContent()
        }
    }

    // MARK: EC2 credentials

    func ec2JSON(_ credential: Credential) -> JSON {
        let blob = credential.ec2Blob
        return ["user_id": .string(credential.userID), "tenant_id": .string(credential.projectID),
                "access": .string(blob["access"]), "secret": .string(blob["secret"]), "trust_id": .string(blob["trust_id"]),
                "links": ["self": link("/v3/users/\(credential.userID)/credentials/OS-EC2/\(blob["access"] ?? "")")]]
    }

    func registerEC2Credentials(on router: APIRoutes) {
        router.get("/v3/users/:user_id/credentials/OS-EC2") { request, context in
            let caller = try authenticate(context)
            let userID = try context.parameters.require("user_id")
            try context.enforce("identity:ec2_list_credentials", target: ["user_id": userID])
            _ = try await service.users.get(userID)
            let listed = try await service.credentials(userID: userID, type: "ec2")
                .filter { (try? checkDelegatedScope(caller, projectID: $0.projectID, what: "EC2 credential")) != nil }
            return respond(.ok, ["credentials": .array(listed.map(ec2JSON)), "links": listLinks(request)])
        }
        router.post("/v3/users/:user_id/credentials/OS-EC2", body: .json(KeystoneSchemas.ec2CredentialCreate, style: .nova)) { request, context in
            let caller = try authenticate(context)
            let userID = try context.parameters.require("user_id")
            try context.enforce("identity:ec2_create_credential", target: ["target.credential.user_id": userID])
            if let credential = caller.applicationCredential, credential.restricted {
                throw IdentityError.forbidden("You are not authorized to perform the requested action: Using method 'application_credential' is not allowed for managing additional application credentials.")
            }
            let body = try await environment.body(request, context)
            _ = try await service.users.get(userID)
            let projectID = body["tenant_id"]?.stringValue ?? ""
            _ = try await service.projects.get(projectID)
            try checkDelegatedScope(caller, projectID: projectID, what: "EC2 credential")
            var blob: [String: JSON] = ["access": .string(IdentityService.makeID()), "secret": .string(IdentityService.makeID()),
                                        "trust_id": .string(caller.trust?.id)]
            if let applicationCredential = caller.applicationCredential { blob["app_cred_id"] = .string(applicationCredential.id) }
            let created = try await service.createCredential(Credential(id: "", userID: userID, projectID: projectID, type: "ec2",
                                                                        blob: JSON.object(blob).encodedText))
            return respond(.created, ["credential": ec2JSON(created)])
        }
        @Sendable func existing(_ context: APIRequestContext, _ action: String) async throws -> Credential {
            let caller = try authenticate(context)
            let userID = try context.parameters.require("user_id")
            let access = try context.parameters.require("credential_id")
            let id = IdentityService.ec2CredentialID(access: access)
            let found = try await storedCredential(id)
            try context.enforce(action, target: ["target.credential.user_id": found?.userID ?? userID])
            _ = try await service.users.get(userID)
            guard let found, found.type == "ec2", found.userID == userID else {
                throw IdentityError.notFound(kind: "credential", id: id)
            }
            try checkDelegatedScope(caller, projectID: found.projectID, what: "EC2 credential")
            return found
        }
        router.get("/v3/users/:user_id/credentials/OS-EC2/:credential_id") { _, context in
            respond(.ok, ["credential": ec2JSON(try await existing(context, "identity:ec2_get_credential"))])
        }
        router.delete("/v3/users/:user_id/credentials/OS-EC2/:credential_id") { _, context in
            let credential = try await existing(context, "identity:ec2_delete_credential")
            try await service.deleteCredential(credential.id)
            return noContent()
        }
    }

    /// `POST /v3/ec2tokens` (no caller token: the signed request is the credential). Keystone
    /// takes the signed request under `credentials`, `credential` or `ec2Credentials`.
    func registerEC2Tokens(on router: APIRoutes) {
        router.post("/v3/ec2tokens", body: .json(KeystoneSchemas.ec2Tokens, style: .keystone)) { request, context in
            let body = try await environment.body(request, context)
            let signed = body["credentials"]?.objectValue ?? body["credential"]?.objectValue ?? body["ec2Credentials"]?.objectValue ?? [:]
            guard let access = signed["access"]?.stringValue else { throw IdentityError.unauthorized("EC2 Signature not supplied") }
            func strings(_ key: String) -> [String: String] {
                (signed[key]?.objectValue ?? [:]).compactMapValues { $0.stringValue ?? $0.encodedText }
            }
            let signedRequest = EC2SignedRequest(
                access: access, signature: signed["signature"]?.stringValue, verb: signed["verb"]?.stringValue ?? "",
                host: signed["host"]?.stringValue ?? "", path: signed["path"]?.stringValue ?? "", params: strings("params"),
                headers: strings("headers"), bodyHash: signed["body_hash"]?.stringValue ?? "")
            let (token, info) = try await service.issue(ec2: signedRequest)
            return respond(.ok, tokenBody(info, catalog: try await encodedCatalog(for: info)), headers: [.subjectToken: token])
        }
    }

    // MARK: trusts

    func trustJSON(_ row: TrustRecord, roles: [Role]?) -> JSON {
        var object: [String: JSON] = [
            "id": .string(row.id), "trustor_user_id": .string(row.trustorUserID), "trustee_user_id": .string(row.trusteeUserID),
            "project_id": .string(row.projectID), "impersonation": .bool(row.impersonation),
            "expires_at": row.expiresAt.map { timestamp(milliseconds: $0) } ?? nil,
            "remaining_uses": row.remainingUses.map { JSON.number(Double($0)) } ?? JSON.null,
            "allow_redelegation": .bool(row.allowRedelegation), "redelegation_count": .number(Double(row.redelegationCount)),
            "redelegated_trust_id": .string(row.redelegatedTrustID),
            "links": ["self": link("/v3/OS-TRUST/trusts/\(row.id)")],
        ]
        if let roles {
            object["roles"] = .array(roles.map(roleJSON))
            object["roles_links"] = ["self": link("/v3/OS-TRUST/trusts/\(row.id)/roles"), "next": nil, "previous": nil]
        }
        return .object(object)
    }

    func registerTrusts(on router: APIRoutes) {
        @Sendable func refuseApplicationCredential(_ caller: TokenInfo) throws {
            if caller.applicationCredential != nil {
                throw IdentityError.forbidden("You are not authorized to perform the requested action: Using method 'application_credential' is not allowed for managing trusts.")
            }
        }
        router.post("/v3/OS-TRUST/trusts", body: .json(KeystoneSchemas.trustCreate, style: .nova)) { request, context in
            let caller = try authenticate(context)
            let fields = try await resource(request, context, "trust")
            let trustor = try fields.string("trustor_user_id", required: true)!
            try context.enforce("identity:create_trust", target: ["trust.trustor_user_id": trustor])
            try refuseApplicationCredential(caller)
            var expiresAt: Int64?
            if let text = try fields.string("expires_at", nullable: true) {
                guard let date = UTCTime.parse(text) else { throw Fields.invalid("expires_at", "'\(text)' is not a timestamp.") }
                expiresAt = milliseconds(date)
            }
            let roles: [TrustRequest.RoleReference] = (fields.object["roles"]?.arrayValue ?? []).compactMap { role in
                if let id = role.objectValue?["id"]?.stringValue { return .id(id) }
                return role.objectValue?["name"]?.stringValue.map { .name($0) }
            }
            let trust = try await service.createTrust(TrustRequest(
                trustorUserID: trustor, trusteeUserID: try fields.string("trustee_user_id", required: true)!,
                projectID: try fields.string("project_id", nullable: true), impersonation: try fields.bool("impersonation") ?? false,
                roles: roles, expiresAt: expiresAt, remainingUses: fields.object["remaining_uses"]?.intValue,
                allowRedelegation: try fields.bool("allow_redelegation") ?? false,
                redelegationCount: fields.object["redelegation_count"]?.intValue), caller: caller)
            return respond(.created, ["trust": trustJSON(trust.row, roles: trust.roles)])
        }
        router.get("/v3/OS-TRUST/trusts") { request, context in
            let caller = try authenticate(context)
            let trustor = request.query("trustor_user_id"), trustee = request.query("trustee_user_id")
            if let trustor {
                try context.enforce("identity:list_trusts_for_trustor", target: ["target.trust.trustor_user_id": trustor])
            } else if let trustee {
                try context.enforce("identity:list_trusts_for_trustee", target: ["target.trust.trustee_user_id": trustee])
            } else {
                try context.enforce("identity:list_trusts")
            }
            try refuseApplicationCredential(caller)
            let rows = try await service.trusts(trustorUserID: trustor, trusteeUserID: trustor == nil ? trustee : nil)
            return respond(.ok, ["trusts": .array(rows.map { trustJSON($0, roles: nil) }), "links": listLinks(request)])
        }
        @Sendable func existing(_ context: APIRequestContext, _ action: String) async throws -> Trust {
            let caller = try authenticate(context)
            let id = try context.parameters.require("trust_id")
            let trust = try? await service.trust(id)
            try context.enforce(action, target: ["target.trust.trustor_user_id": trust?.row.trustorUserID ?? "",
                                                 "target.trust.trustee_user_id": trust?.row.trusteeUserID ?? ""])
            try refuseApplicationCredential(caller)
            guard let trust else { throw IdentityError.notFound(kind: "trust", id: id) }
            return trust
        }
        router.get("/v3/OS-TRUST/trusts/:trust_id") { _, context in
            let trust = try await existing(context, "identity:get_trust")
            return respond(.ok, ["trust": trustJSON(trust.row, roles: trust.roles)])
        }
        router.delete("/v3/OS-TRUST/trusts/:trust_id") { _, context in
            let trust = try await existing(context, "identity:delete_trust")
            try await service.deleteTrust(trust.row.id)
            return noContent()
        }
        router.get("/v3/OS-TRUST/trusts/:trust_id/roles") { request, context in
            let trust = try await existing(context, "identity:list_roles_for_trust")
            return respond(.ok, ["roles": .array(trust.roles.map(roleJSON)), "links": listLinks(request)])
        }
        @Sendable func role(_ request: Request, _ context: APIRequestContext) async throws -> Response {
            let trust = try await existing(context, "identity:get_role_for_trust")
            let roleID = try context.parameters.require("role_id")
            guard let role = trust.roles.first(where: { $0.id == roleID }) else { throw IdentityError.notFound(kind: "role", id: roleID) }
            return respond(.ok, ["role": roleJSON(role)])
        }
        router.get("/v3/OS-TRUST/trusts/:trust_id/roles/:role_id", use: role)
        router.head("/v3/OS-TRUST/trusts/:trust_id/roles/:role_id", use: role)
    }
}

extension KeystoneSchemas {
    /// keystone/credential/schema.py: blob, type and user_id required, other attributes kept.
    static let credentialProperties: [(String, Schema)] = [
        ("blob", .string()), ("project_id", nullableString), ("type", .string()), ("user_id", .string()),
    ]
    static let credentialCreate = wrapped("credential", .object(
        [("id", .string())] + credentialProperties, required: ["blob", "type", "user_id"], additional: true))
    static let credentialUpdate = wrapped("credential", .object(credentialProperties, additional: true, minProperties: 1))
    /// `POST /v3/users/{id}/credentials/OS-EC2`: the project the credential is for.
    static let ec2CredentialCreate = Schema.object([("tenant_id", .string())], required: ["tenant_id"], additional: true)
    /// `POST /v3/ec2tokens`: the signed request under one of Keystone's three keys.
    static let ec2Tokens = Schema.object([
        ("credentials", .object([], additional: true)), ("credential", .object([], additional: true)),
        ("ec2Credentials", .object([], additional: true)),
    ], additional: true)
    /// keystone/trust/schema.py.
    static let trustCreate = wrapped("trust", .object([
        ("trustor_user_id", .string(minLength: 1, maxLength: 64)), ("trustee_user_id", .string(minLength: 1, maxLength: 64)),
        ("impersonation", boolean), ("project_id", Schema(types: [.string, .null], minLength: 1, maxLength: 64)),
        ("roles", .array(.object([("id", .string(minLength: 1, maxLength: 64)), ("name", name(maxLength: 255))],
                                 additional: true, minProperties: 1))),
        ("expires_at", nullableString),
        ("remaining_uses", Schema(types: [.integer, .null], minimum: 1)),
        ("allow_redelegation", Schema(types: [.boolean, .null])),
        ("redelegation_count", Schema(types: [.integer, .null], minimum: 0)),
    ], required: ["trustor_user_id", "trustee_user_id", "impersonation"], additional: true))
}

extension JSON {
    /// A whole number, if this is one.
    var intValue: Int? {
        if case .number(let value) = self, value.rounded() == value, abs(value) < 1e15 { return Int(value) }
        return nil
    }

    /// This value as JSON text.
    var encodedText: String { String(decoding: encoded(), as: UTF8.self) }
}
