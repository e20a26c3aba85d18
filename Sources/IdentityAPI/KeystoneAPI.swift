import Foundation
import HTTPTypes
import Hummingbird
import Identity
import Logging
import NIOCore
import PetrelCore
import PetrelHTTP
import Synchronization

/// The Keystone v3 API: version discovery at `/` and `/v3`, authentication and tokens, the
/// catalog and the identity resources, with Keystone's JSON shapes, status codes and error
/// bodies. It is the `TokenValidator` every API's authentication middleware asks (see
/// `environment`).
public struct KeystoneAPI: Sendable {
    public let service: IdentityService
    public let policy: Policy
    /// Base URL of the controller, without a trailing slash.
    public let publicURL: String
    /// Largest request body accepted (Keystone's `max_request_body_size`, 114688 by default).
    public let maxBodySize: Int
    let logger: Logger
    let catalogBytes = EncodedCatalog()
    /// The body of every write route of every API sharing this one's environment.
    public let schemas = RouteSchemas()

    public init(service: IdentityService, policy: Policy, publicURL: String, maxBodySize: Int = 114_688, logger: Logger) {
        self.service = service
        self.policy = policy
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.maxBodySize = maxBodySize
        self.logger = logger
    }

    /// Adds every identity route to `router`. Its middlewares (Keystone's errors and the
    /// caller's authentication) apply to the routes added after it.
    public func register(on router: Router<APIRequestContext>) {
        router.add(middleware: OpenStackErrorMiddleware(style: .keystone, publicURL: publicURL, logger: logger))
        registerDiscovery(on: router)
        // (A group without middleware of its own: each route gets the router's as it is now.)
        let routes = APIRoutes(router, "", schemas: schemas)
        registerOpenAuth(on: routes)
        registerEC2Tokens(on: routes)
        router.add(middleware: AuthenticationMiddleware(self, mounts: Self.serviceMounts))
        registerAuth(on: routes)
        registerProjectsAndDomains(on: routes)
        registerUsersAndGroups(on: routes)
        registerRoles(on: routes)
        registerCatalog(on: routes)
        registerApplicationCredentials(on: routes)
        registerPolicies(on: routes)
        registerDomainConfig(on: routes)
        registerEndpointFilter(on: routes)
        registerCredentials(on: routes)
        registerTrusts(on: routes)
    }

    /// Where each API is served, for application credentials' access rules: a rule's path is
    /// relative to its service's mount (`/v2.1/servers` for compute), Keystone's is `/v3/…`.
    static let serviceMounts: [AuthenticationMiddleware.ServiceMount] = [
        .init(prefix: "", types: ["identity"]), .init(prefix: "/compute", types: ["compute"]),
        .init(prefix: "/networking", types: ["network"]), .init(prefix: "/volume", types: ["block-storage", "volumev3", "volume"]),
        .init(prefix: "/image", types: ["image"]),
        .init(prefix: "/placement", types: ["placement"]),
    ]

    // MARK: discovery

    var versionV3: JSON {
        [
            "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [["rel": "self", "href": .string(publicURL + "/v3/")]],
            "media-types": [["base": "application/json", "type": "application/vnd.openstack.identity-v3+json"]],
        ]
    }

    func registerDiscovery(on router: Router<APIRequestContext>) {
        router.get("/") { _, _ in respond(.multipleChoices, ["versions": ["values": [versionV3]]]) }
        router.get("/v3") { _, _ in respond(.ok, ["version": versionV3]) }
    }

    // MARK: shared by every API

    /// The caller's token (`X-Auth-Token`), as the authentication middleware validated it. A
    /// missing or invalid token is a 401.
    public func authenticate(_ context: APIRequestContext) throws -> TokenInfo {
        guard let token = try context.caller().token as? TokenInfo else { throw IdentityError.authenticationRequired }
        return token
    }

    /// `body[key]`, the resource of a create or update request, once the body passed the
    /// schema its route declared (which requires it to be an object).
    func resource(_ request: Request, _ context: APIRequestContext, _ key: String) async throws -> Fields {
        let object = try await environment.body(request, context)
        guard let fields = object[key]?.objectValue else {
            throw IdentityError.badRequest("Invalid input for field '\(key)': '\(key)' is a required property.")
        }
        return Fields(fields)
    }

    func link(_ path: String) -> JSON { .string(publicURL + path) }

    func listLinks(_ request: Request) -> JSON {
        ["self": .string(publicURL + request.uri.description), "previous": nil, "next": nil]
    }

    /// The environment the other APIs share with this one: its URL, body limit and token checks.
    public var environment: APIEnvironment {
        APIEnvironment(publicURL: publicURL, maxBodySize: maxBodySize, validator: self, schemas: schemas, mounts: Self.serviceMounts)
    }
}

/// The last catalog encoded, by the identity service's catalog version.
final class EncodedCatalog: Sendable {
    private let last = Mutex<(version: UInt64, bytes: [UInt8])?>(nil)

    func lookup(_ version: UInt64) -> [UInt8]? {
        last.withLock { $0?.version == version ? $0?.bytes : nil }
    }

    func store(_ version: UInt64, _ bytes: [UInt8]) {
        last.withLock { $0 = (version, bytes) }
    }
}

/// The fields of a request's resource object, checked one by one with Keystone-style messages.
struct Fields: Sendable {
    let object: [String: JSON]

    init(_ object: [String: JSON]) { self.object = object }

    func has(_ key: String) -> Bool { object[key] != nil }

    /// Keystone's answer to a PATCH body naming another id than the path's: 400, nothing changed.
    func refuseIDChange(_ id: String) throws {
        if let given = object["id"], given != .string(id) { throw IdentityError.badRequest("Cannot change ID") }
    }

    static func invalid(_ key: String, _ reason: String) -> IdentityError {
        .badRequest("Invalid input for field '\(key)': \(reason)")
    }

    /// A string field; `required` ones must be present and non-empty.
    func string(_ key: String, required: Bool = false, maxLength: Int = 255, nullable: Bool = false) throws -> String? {
        guard let value = object[key] else {
            if required { throw Self.invalid(key, "'\(key)' is a required property.") }
            return nil
        }
        if value.isNull {
            if nullable && !required { return nil }
            throw Self.invalid(key, "None is not of type 'string'.")
        }
        guard let text = value.stringValue else { throw Self.invalid(key, "expected a string.") }
        if required && text.trimmingCharacters(in: .whitespaces).isEmpty { throw Self.invalid(key, "must not be empty.") }
        if text.count > maxLength { throw Self.invalid(key, "is longer than \(maxLength) characters.") }
        return text
    }

    /// A boolean field: JSON's, or one of the strings Keystone's schema lets through (oslo's
    /// reading of them: "1", "y", "on", "yes" and "true" in any case are true, the rest false).
    func bool(_ key: String) throws -> Bool? {
        guard let value = object[key] else { return nil }
        switch value {
        case .bool(let flag): return flag
        case .string(let text): return ["1", "y", "on", "yes", "true"].contains(text.lowercased())
        default: throw Self.invalid(key, "\(value.pythonRepr) is not of type 'boolean'.")
        }
    }

    /// Keys of the object not in `known`: Keystone keeps them as extra attributes.
    func extra(excluding known: Set<String>) -> [String: JSON] {
        object.filter { !known.contains($0.key) }
    }
}

extension KeystoneAPI: TokenValidator {
    public func validate(token: String) async throws -> Caller {
        try await caller(token, serviceToken: nil)
    }

    /// keystonemiddleware's service tokens: the service token must be valid; when it carries
    /// the service role, the user's token may have expired within `[token] allow_expired_window`
    /// (a long operation started with it does not fail halfway). Policy sees `service_roles`.
    public func validate(token: String, serviceToken: String) async throws -> Caller {
        let service: TokenInfo
        do {
            service = try await self.service.validate(serviceToken)
        } catch IdentityError.notFound {
            throw IdentityError.unauthorized("The request you have made requires authentication.")
        }
        return try await caller(token, serviceToken: service)
    }

    func caller(_ token: String, serviceToken: TokenInfo?) async throws -> Caller {
        let serviceRoles = serviceToken?.roles.map(\.name) ?? []
        let info: TokenInfo
        do {
            info = try await service.validate(token, allowExpired: serviceRoles.contains { $0.lowercased() == "service" })
        } catch IdentityError.notFound {
            throw IdentityError.unauthorized("The request you have made requires authentication.")
        }
        return Caller(user: .init(id: info.user.id, name: info.user.name), userDomainID: info.userDomain.id,
                      project: info.project.map { .init(id: $0.id, name: $0.name) }, projectDomainID: info.project?.domain.id,
                      domain: info.domain.map { .init(id: $0.id, name: $0.name) }, roles: info.roles.map(\.name),
                      system: info.system, auditIDs: info.payload.auditIDs, token: info,
                      accessRules: info.applicationCredential.flatMap { credential in
                          credential.accessRules.isEmpty ? nil
                              : credential.accessRules.map { .init(service: $0.service, path: $0.path, method: $0.method) }
                      }, serviceRoles: serviceRoles)
    }

    public func allows(_ action: String, for caller: Caller, target: [String: String]) -> Bool {
        guard let token = caller.token as? TokenInfo else { return false }
        var credentials = token.credentials
        credentials.lists["service_roles"] = Set(caller.serviceRoles.map { $0.lowercased() })
        return policy.enforce(action, credentials: credentials, target: target)
    }
}

extension IdentityError: HTTPDescribedError {
    public var httpStatus: HTTPResponse.Status {
        switch self {
        case .badRequest: return .badRequest
        case .unauthorized: return .unauthorized
        case .forbidden: return .forbidden
        case .notFound, .missing: return .notFound
        case .conflict: return .conflict
        }
    }

    public var httpMessage: String { description }
}
