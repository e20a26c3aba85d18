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

    public init(user: Named, userDomainID: String, project: Named?, projectDomainID: String?, domain: Named?, roles: [String],
                system: Bool, auditIDs: [String], token: any Sendable) {
        self.user = user; self.userDomainID = userDomainID; self.project = project; self.projectDomainID = projectDomainID
        self.domain = domain; self.roles = roles; self.system = system; self.auditIDs = auditIDs; self.token = token
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
    /// Whether policy allows `action` to the caller on `target`.
    func allows(_ action: String, for caller: Caller, target: [String: String]) -> Bool
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

    public init(_ validator: any TokenValidator) {
        self.validator = validator
    }

    public func handle(_ request: Request, context: APIRequestContext,
                       next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        var context = context
        context.validator = validator
        if let token = request.headers[.authToken], !token.isEmpty {
            do {
                context.authentication = .success(try await validator.validate(token: token))
            } catch {
                context.authentication = .failure(error)
            }
        }
        return try await next(request, context)
    }
}

/// What every API of the controller shares: its public URL, the largest request body it
/// reads, who checks tokens and policy, and the body each write route declared.
public struct APIEnvironment: Sendable {
    public let publicURL: String
    public let maxBodySize: Int
    public let validator: any TokenValidator
    public let schemas: RouteSchemas

    public init(publicURL: String, maxBodySize: Int, validator: any TokenValidator, schemas: RouteSchemas = RouteSchemas()) {
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.maxBodySize = maxBodySize
        self.validator = validator
        self.schemas = schemas
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
    public var authentication: AuthenticationMiddleware { AuthenticationMiddleware(validator) }
}
