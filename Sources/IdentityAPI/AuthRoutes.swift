import Foundation
import HTTPTypes
import Hummingbird
import Identity
import PetrelHTTP

extension KeystoneAPI {
    /// The routes Keystone serves without a caller: issuing a token (its credentials are in
    /// the body) and the gone PKI revocation list. Registered before the authentication
    /// middleware, so an `X-Auth-Token` sent along is not validated for nothing.
    func registerOpenAuth(on router: APIRoutes) {
        router.post("/v3/auth/tokens", body: .json(KeystoneSchemas.tokenIssue, style: .keystone)) { request, context in
            var auth = try parseAuthRequest(try await environment.body(request, context))
            auth.receipt = request.headers[.authReceipt]
            let token: String, info: TokenInfo
            do {
                (token, info) = try await service.issue(auth)
            } catch let needed as AuthReceiptRequired {
                // Keystone's answer to a factor short of the user's rules: 401, a receipt in a
                // header and the rules in the body, to send back with the missing methods.
                let body: JSON = [
                    "receipt": ["methods": .array(needed.methods.map(JSON.string)),
                                "user": ["id": .string(needed.userID), "name": .string(needed.userName),
                                         "domain": ["id": .string(needed.userDomain.id), "name": .string(needed.userDomain.name)]],
                                "expires_at": timestamp(needed.expiresAt), "issued_at": timestamp(needed.issuedAt)],
                    "required_auth_methods": .array(needed.requiredMethods.map { .array($0.map(JSON.string)) }),
                ]
                return respond(.unauthorized, body, headers: [.authReceipt: needed.receipt])
            }
            let catalog = request.flag("nocatalog") ? nil : try await encodedCatalog(for: info)
            return respond(.created, tokenBody(info, catalog: catalog), headers: [.subjectToken: token])
        }
        router.get("/v3/auth/tokens/OS-PKI/revoked") { _, _ -> Response in
            throw HTTPError(.gone, message: "PKI token revocation lists are not supported.")
        }
    }

    func registerAuth(on router: APIRoutes) {
        router.get("/v3/auth/tokens") { request, context in
            let (subject, info) = try await subjectToken(request, context, action: "identity:validate_token")
            let catalog = request.flag("nocatalog") ? nil : try await encodedCatalog(for: info)
            return respond(.ok, tokenBody(info, catalog: catalog), headers: [.subjectToken: subject])
        }
        router.head("/v3/auth/tokens") { request, context in
            _ = try await subjectToken(request, context, action: "identity:check_token")
            return noContent(.ok)
        }
        router.delete("/v3/auth/tokens") { request, context in
            let (subject, _) = try await subjectToken(request, context, action: "identity:revoke_token")
            try await service.revoke(token: subject)
            return noContent()
        }
        router.get("/v3/auth/catalog") { request, context in
            let caller = try authenticate(context)
            try context.enforce("identity:get_auth_catalog")
            guard caller.payload.scope != .unscoped else {
                throw IdentityError.forbidden("A scoped token is required to see the catalog.")
            }
            return respond(.ok, ["catalog": try await encodedCatalog(for: caller), "links": listLinks(request)])
        }
        router.get("/v3/auth/projects") { request, context in
            let caller = try authenticate(context)
            try context.enforce("identity:get_auth_projects")
            let projects = try await service.projectsOf(userID: caller.user.id).filter(\.enabled)
            return respond(.ok, ["projects": try await projectsJSON(projects), "links": listLinks(request)])
        }
        router.get("/v3/auth/domains") { request, context in
            let caller = try authenticate(context)
            try context.enforce("identity:get_auth_domains")
            let domains = try await service.domainsOf(userID: caller.user.id).filter(\.enabled)
            return respond(.ok, ["domains": .array(domains.map(domainJSON)), "links": listLinks(request)])
        }
        router.get("/v3/auth/system") { request, context in
            let caller = try authenticate(context)
            try context.enforce("identity:get_auth_system")
            let roles = try await service.systemRoles(userID: caller.user.id)
            return respond(.ok, ["system": roles.isEmpty ? [] : [["all": true]], "links": listLinks(request)])
        }
    }

    /// The caller's token and the subject token (`X-Subject-Token`): a bad caller token is a
    /// 401, a bad subject token a 404.
    func subjectToken(_ request: Request, _ context: APIRequestContext, action: String) async throws -> (String, TokenInfo) {
        _ = try context.caller()
        guard let subject = request.headers[.subjectToken], !subject.isEmpty else {
            throw IdentityError.badRequest("The X-Subject-Token header is required.")
        }
        let info = try await service.validate(subject)
        try context.enforce(action, target: ["target.token.user_id": info.user.id])
        return (subject, info)
    }

    /// The catalog's JSON, encoded once per catalog version (it is in every token body).
    func encodedCatalog() async throws -> JSON {
        let (entries, version) = try await service.versionedCatalog()
        if version != 0, let bytes = catalogBytes.lookup(version) { return .raw(bytes) }
        let bytes = catalogJSON(entries).encoded()
        if version != 0 { catalogBytes.store(version, bytes) }
        return .raw(bytes)
    }

    func tokenBody(_ info: TokenInfo, catalog: JSON?) -> JSON {
        var token: [String: JSON] = [
            "methods": .array(info.payload.methods.names.map(JSON.string)),
            "user": ["id": .string(info.user.id), "name": .string(info.user.name),
                     "domain": ["id": .string(info.userDomain.id), "name": .string(info.userDomain.name)],
                     "password_expires_at": nil],
            "audit_ids": .array(info.payload.auditIDs.map(JSON.string)),
            "expires_at": timestamp(info.expiresAt),
            "issued_at": timestamp(info.issuedAt),
        ]
        if let project = info.project {
            token["project"] = ["id": .string(project.id), "name": .string(project.name),
                                "domain": ["id": .string(project.domain.id), "name": .string(project.domain.name)]]
            token["is_domain"] = false
        }
        if let domain = info.domain { token["domain"] = ["id": .string(domain.id), "name": .string(domain.name)] }
        if info.system { token["system"] = ["all": true] }
        if info.payload.scope != .unscoped {
            token["roles"] = .array(info.roles.map { ["id": .string($0.id), "name": .string($0.name)] })
            if let catalog { token["catalog"] = catalog }
        }
        if let trust = info.trust {
            token["OS-TRUST:trust"] = ["id": .string(trust.id), "impersonation": .bool(trust.impersonation),
                                       "trustee_user": ["id": .string(trust.trusteeUserID)],
                                       "trustor_user": ["id": .string(trust.trustorUserID)]]
        }
        if let credential = info.applicationCredential {
            var object: [String: JSON] = ["id": .string(credential.id), "name": .string(credential.name),
                                          "restricted": .bool(credential.restricted)]
            if !credential.accessRules.isEmpty {
                object["access_rules"] = .array(credential.accessRules.map {
                    ["id": .string($0.id), "service": .string($0.service), "path": .string($0.path), "method": .string($0.method)]
                })
            }
            token["application_credential"] = .object(object)
        }
        return ["token": .object(token)]
    }

    func catalogJSON(_ catalog: [CatalogEntry]) -> JSON {
        .array(catalog.map { entry in
            ["id": .string(entry.id), "type": .string(entry.type), "name": .string(entry.name),
             "endpoints": .array(entry.endpoints.map { endpoint in
                 ["id": .string(endpoint.id), "interface": .string(endpoint.interface), "url": .string(endpoint.url),
                  "region": .string(endpoint.regionID), "region_id": .string(endpoint.regionID)]
             })]
        })
    }

    // MARK: parsing POST /v3/auth/tokens

    func parseAuthRequest(_ body: [String: JSON]) throws -> AuthRequest {
        func missing(_ what: String, in place: String) -> IdentityError {
            .badRequest("Expecting to find \(what) in \(place). The server could not comply with the request since it is either malformed or otherwise incorrect.")
        }
        guard let auth = body["auth"]?.objectValue else { throw missing("auth", in: "the request body") }
        guard let identity = auth["identity"]?.objectValue else { throw missing("identity", in: "auth") }
        guard let methods = identity["methods"]?.arrayValue?.compactMap(\.stringValue), !methods.isEmpty else {
            throw missing("methods", in: "identity")
        }
        // Each method named is verified (password, token, application_credential, totp); naming
        // one that is not checked never lets a request through on the others. Several name
        // the factors of one user (Keystone's multi-factor rules).
        let unsupported = IdentityError.unauthorized("Attempted to authenticate with an unsupported method.")
        var parsed: [AuthRequest.Method] = []
        for name in methods where !parsed.contains(where: { Self.methodName($0) == name }) {
            parsed.append(try authMethod(name, identity, unsupported: unsupported))
        }
        return AuthRequest(method: parsed[0], scope: try scope(auth["scope"]), additional: Array(parsed.dropFirst()))
    }

    static func methodName(_ method: AuthRequest.Method) -> String {
        switch method {
        case .password: "password"
        case .token: "token"
        case .applicationCredential: "application_credential"
        case .totp: "totp"
        }
    }

    func authMethod(_ name: String, _ identity: [String: JSON], unsupported: IdentityError) throws -> AuthRequest.Method {
        func missing(_ what: String, in place: String) -> IdentityError {
            .badRequest("Expecting to find \(what) in \(place). The server could not comply with the request since it is either malformed or otherwise incorrect.")
        }
        let method: AuthRequest.Method
        switch name {
        case "totp":
            guard let totp = identity["totp"]?.objectValue, let user = totp["user"]?.objectValue else { throw missing("user", in: "totp") }
            guard let passcode = user["passcode"]?.stringValue else { throw missing("passcode", in: "user") }
            method = .totp(try userReference(user), passcode: passcode)
        case "password":
            guard let password = identity["password"]?.objectValue, let user = password["user"]?.objectValue else {
                throw missing("user", in: "password")
            }
            guard let secret = user["password"]?.stringValue else { throw missing("password", in: "user") }
            if secret.utf8.contains(0) { throw IdentityError.authenticationRequired }
            method = .password(try userReference(user), password: secret)
        case "token":
            guard let token = identity["token"]?.objectValue?["id"]?.stringValue else { throw missing("id", in: "token") }
            method = .token(token)
        case "application_credential":
            guard let credential = identity["application_credential"]?.objectValue else {
                throw missing("application_credential", in: "identity")
            }
            guard let secret = credential["secret"]?.stringValue else { throw missing("secret", in: "application_credential") }
            if secret.utf8.contains(0) { throw IdentityError.authenticationRequired }
            if let id = credential["id"]?.stringValue {
                method = .applicationCredential(.id(id), secret: secret)
            } else if let name = credential["name"]?.stringValue, let user = credential["user"]?.objectValue {
                method = .applicationCredential(.name(name, user: try userReference(user)), secret: secret)
            } else {
                throw missing("id or name and user", in: "application_credential")
            }
        default:
            throw unsupported
        }
        return method
    }

    func domainReference(_ object: [String: JSON]?) throws -> DomainReference {
        if let id = object?["id"]?.stringValue { return .id(id) }
        if let name = object?["name"]?.stringValue { return .name(name) }
        throw IdentityError.badRequest("Expecting to find domain id or name. The server could not comply with the request since it is either malformed or otherwise incorrect.")
    }

    func userReference(_ user: [String: JSON]) throws -> UserReference {
        if let id = user["id"]?.stringValue { return .id(id) }
        guard let name = user["name"]?.stringValue else {
            throw IdentityError.badRequest("Expecting to find user id or name. The server could not comply with the request since it is either malformed or otherwise incorrect.")
        }
        return .name(name, domain: try domainReference(user["domain"]?.objectValue))
    }

    func scope(_ value: JSON?) throws -> AuthRequest.ScopeRequest {
        guard let value else { return .unspecified }
        if value.stringValue == "unscoped" { return .unscoped }
        guard let scope = value.objectValue else { throw IdentityError.badRequest("Invalid scope.") }
        if scope.count > 1 {
            throw IdentityError.badRequest("Invalid input for field 'auth/scope': \(value.pythonRepr) has too many properties")
        }
        if let project = scope["project"]?.objectValue {
            if let id = project["id"]?.stringValue { return .project(.id(id)) }
            guard let name = project["name"]?.stringValue else {
                throw IdentityError.badRequest("Expecting to find project id or name in scope.")
            }
            return .project(.name(name, domain: try domainReference(project["domain"]?.objectValue)))
        }
        if let domain = scope["domain"]?.objectValue { return .domain(try domainReference(domain)) }
        if let system = scope["system"]?.objectValue {
            guard system["all"]?.boolValue == true else { throw IdentityError.badRequest("Only the system scope 'all' exists.") }
            return .system
        }
        if let trust = scope["OS-TRUST:trust"]?.objectValue {
            guard let id = trust["id"]?.stringValue else { throw IdentityError.badRequest("Expecting to find id in OS-TRUST:trust.") }
            return .trust(id)
        }
        throw IdentityError.badRequest("Invalid scope: expected project, domain or system.")
    }
}

extension HTTPField.Name {
    /// Keystone's multi-factor receipt (`Openstack-Auth-Receipt`).
    static let authReceipt = HTTPField.Name("Openstack-Auth-Receipt")!
}
