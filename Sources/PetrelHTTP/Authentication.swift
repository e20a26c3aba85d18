import Foundation
import Hummingbird

/// Who is calling: the user their token names, its scope and roles. Built by the identity
/// service's `TokenValidator` and carried in `APIRequestContext`.
public struct Caller: Sendable {
    public struct Named: Sendable, Equatable {
        public let id: String
        public let name: String

        public init(id: String, name: String) {
            self.id = id
            self.name = name
        }
    }

    public let user: Named
    public let userDomainID: String
    /// The project of a project-scoped token, and its domain's id.
    public let project: Named?
    public let projectDomainID: String?
    /// The domain of a domain-scoped token.
    public let domain: Named?
    /// The role names of the token, as the identity service resolved them.
    public let roles: [String]
    /// A system-scoped token (`system: all`).
    public let system: Bool
    public let auditIDs: [String]
    /// The validator's own record of the token (the identity service's), for the routes of
    /// the identity API that show or act on the token itself.
    public let token: any Sendable
    /// An application credential's access rules: the only calls the token may make (nil: any).
    public let accessRules: [AccessRule]?
    /// The roles of the service token (`X-Service-Token`) that came with the user's, if any
    /// (oslo.policy's `service_roles`).
    public let serviceRoles: [String]

    /// One call an application credential allows: a service type, a path pattern relative to
    /// the service (`*` one segment, `**` one or more, `{name}` one), an HTTP method.
    public struct AccessRule: Sendable, Equatable {
        public let service: String
        public let path: String
        public let method: String

        public init(service: String, path: String, method: String) {
            self.service = service; self.path = path; self.method = method
        }

        /// Whether `path` (relative to the service) matches this rule's pattern, as keystonemiddleware
        /// matches it: `{name}` and `*` stand for one segment's text, `**` for anything.
        public func matches(path requestPath: String) -> Bool {
            var regex = "^"
            let characters = Array(self.path)
            var index = 0
            while index < characters.count {
                let character = characters[index]
                if character == "{", let close = characters[index...].firstIndex(of: "}") {
                    regex += "[^/]+"
                    index = close + 1
                } else if character == "*" && index + 1 < characters.count && characters[index + 1] == "*" {
                    regex += ".*"
                    index += 2
                } else if character == "*" {
                    regex += "[^/]+"
                    index += 1
                } else {
                    regex += NSRegularExpression.escapedPattern(for: String(character))
                    index += 1
                }
            }
            guard let expression = try? NSRegularExpression(pattern: regex + "$") else { return false }
            return expression.firstMatch(in: requestPath, range: NSRange(requestPath.startIndex..., in: requestPath)) != nil
        }
    }

    public init(user: Named, userDomainID: String, project: Named?, projectDomainID: String?, domain: Named?, roles: [String],
                system: Bool, auditIDs: [String], token: any Sendable, accessRules: [AccessRule]? = nil,
                serviceRoles: [String] = []) {
        self.user = user; self.userDomainID = userDomainID; self.project = project; self.projectDomainID = projectDomainID
        self.domain = domain; self.roles = roles; self.system = system; self.auditIDs = auditIDs; self.token = token
        self.accessRules = accessRules
        self.serviceRoles = serviceRoles
    }

    public var userID: String { user.id }
    public var projectID: String? { project?.id }

    /// Whether the token carries the role (names compare case-insensitively, as policy does).
    public func hasRole(_ name: String) -> Bool { roles.contains { $0.lowercased() == name.lowercased() } }
}

/// Checks tokens and policy for the APIs: the identity service implements it.
public protocol TokenValidator: Sendable {
    /// The caller a token (`X-Auth-Token`) names; throws a 401 for an invalid or expired one.
    func validate(token: String) async throws -> Caller
    /// The caller of a user token sent with a service token (`X-Service-Token`): both are
    /// checked; a valid service token lets a recently expired user token through.
    func validate(token: String, serviceToken: String) async throws -> Caller
    /// Whether policy allows `action` to the caller on `target`.
    func allows(_ action: String, for caller: Caller, target: [String: String]) -> Bool
}

extension TokenValidator {
    public func validate(token: String, serviceToken: String) async throws -> Caller { try await validate(token: token) }
}

/// The request context of every API router: the caller, once the authentication middleware
/// has read the token.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    var validator: (any TokenValidator)?
    var authentication: Result<Caller, any Error>?

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    /// The authenticated caller: a request without a valid token is refused here (401), so
    /// routes that need no token simply never ask.
    public func caller() throws -> Caller {
        switch authentication {
        case .success(let caller)?: return caller
        case .failure(let error)?: throw error
        case nil: throw APIFault(.unauthorized, "The request you have made requires authentication.")
        }
    }

    /// Whether policy allows `action` to the authenticated caller (401 without one).
    public func allows(_ action: String, target: [String: String] = [:]) throws -> Bool {
        let caller = try caller()
        guard let validator else { return false }
        return validator.allows(action, for: caller, target: target)
    }

    /// Refuses (403, in the API's words) unless policy allows `action` on `target`; returns the caller.
    @discardableResult
    public func enforce(_ action: String, target: [String: String] = [:]) throws -> Caller {
        guard try allows(action, target: target) else { throw PolicyRefusal(action) }
        return try caller()
    }
}

/// Reads `X-Auth-Token` once per request and puts the caller (or why there is none) into the
/// context. It refuses nothing itself: routes that need a caller ask `context.caller()`, so
/// the routes Keystone serves without a token stay open and every route reports its own
/// failures in the order it always did.
public struct AuthenticationMiddleware: RouterMiddleware {
    public typealias Context = APIRequestContext
    let validator: any TokenValidator
    let mounts: [ServiceMount]

    /// Where each service's API is served (for access rules): its path prefix and catalog types.
    public struct ServiceMount: Sendable {
        public let prefix: String
        public let types: Set<String>

        public init(prefix: String, types: Set<String>) { self.prefix = prefix; self.types = types }
    }

    public init(_ validator: any TokenValidator, mounts: [ServiceMount] = []) {
        self.validator = validator
        self.mounts = mounts
    }

    /// A token limited by access rules may make only the calls they name: anything else is a
    /// 401, as keystonemiddleware answers it.
    func permits(_ caller: Caller, _ request: Request) -> Bool {
        guard let rules = caller.accessRules, !rules.isEmpty else { return true }
        let path = request.uri.path
        guard let mount = mounts.filter({ $0.prefix.isEmpty || path == $0.prefix || path.hasPrefix($0.prefix + "/") })
            .max(by: { $0.prefix.count < $1.prefix.count }) else { return false }
        let relative = String(path.dropFirst(mount.prefix.count))
        return rules.contains { rule in
            mount.types.contains(rule.service) && rule.method == request.method.rawValue && rule.matches(path: relative)
        }
    }

    public func handle(_ request: Request, context: APIRequestContext,
                       next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        var context = context
        context.validator = validator
        if let token = request.headers[.authToken], !token.isEmpty {
            do {
                let caller: Caller
                if let service = request.headers[.serviceToken], !service.isEmpty {
                    caller = try await validator.validate(token: token, serviceToken: service)
                } else {
                    caller = try await validator.validate(token: token)
                }
                // A call its access rules do not allow is refused before any route, whatever
                // the path (as keystonemiddleware refuses it in front of the service).
                guard permits(caller, request) else {
                    throw AccessRuleRefusal()
                }
                context.authentication = .success(caller)
            } catch is AccessRuleRefusal {
                throw APIFault(.unauthorized, "The request you have made requires authentication.")
            } catch {
                context.authentication = .failure(error)
            }
        }
        return try await next(request, context)
    }
}

struct AccessRuleRefusal: Error {}

/// What every API of the controller shares: its public URL, the largest request body it
/// reads, who checks tokens and policy, and the body each write route declared.
public struct APIEnvironment: Sendable {
    public let publicURL: String
    public let maxBodySize: Int
    public let validator: any TokenValidator
    public let schemas: RouteSchemas
    /// Where each service is served, for application credentials' access rules.
    public let mounts: [AuthenticationMiddleware.ServiceMount]

    public init(publicURL: String, maxBodySize: Int, validator: any TokenValidator, schemas: RouteSchemas = RouteSchemas(),
                mounts: [AuthenticationMiddleware.ServiceMount] = []) {
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.maxBodySize = maxBodySize
        self.validator = validator
        self.schemas = schemas
        self.mounts = mounts
    }

    /// The routes of an API under `path`, declaring their bodies in this environment.
    public func routes(_ router: Router<APIRequestContext>, _ path: RouterPath) -> APIRoutes {
        APIRoutes(router, path, schemas: schemas)
    }

    /// The request body as the route that matched declared it: a JSON object checked against
    /// the route's schema before anything reads it (a violation is a 400 in the words of its
    /// API). A route that declared none, or no JSON, has no body to read: a 500.
    public func body(_ request: Request, _ context: APIRequestContext) async throws -> [String: JSON] {
        guard let path = context.endpointPath, case .json(let style, let schema)? = schemas.body(request.method, path) else {
            throw APIFault(.internalServerError, "The route \(request.method.rawValue) \(context.endpointPath ?? "") declares no JSON body.")
        }
        return try await request.jsonObject(maxSize: maxBodySize, schema: schema(request), style: style)
    }

    /// The request body as a JSON object (400 if it is not one, 413 if too large), for the
    /// routes that do not declare their body yet (`RouteSchemaTests.pending`).
    public func body(_ request: Request) async throws -> [String: JSON] {
        try await request.jsonObject(maxSize: maxBodySize)
    }

    /// The authentication middleware for this environment's validator.
    public var authentication: AuthenticationMiddleware { AuthenticationMiddleware(validator, mounts: mounts) }
}
