import HTTPTypes
import Hummingbird
import Synchronization

/// What a write route takes as its body, declared where the route is registered.
public enum BodySchema: Sendable {
    /// A JSON body checked against the schema for this request (one per microversion range),
    /// before the handler reads it; a violation is a 400 in the words of `style`'s API.
    case json(style: FaultStyle, schema: @Sendable (Request) -> Schema)
    /// No body is read (a grant, a tag, a membership: the path says it all).
    case none
    /// Bytes of this media type, streamed by the handler (an image upload).
    case bytes(mediaType: String)
    /// A JSON-patch document (RFC 6902) of one of these media types, applied by the handler
    /// operation by operation (Glance's image update).
    case jsonPatch(mediaTypes: [String])

    /// One schema for every request.
    public static func json(_ schema: Schema, style: FaultStyle) -> BodySchema { .json(style: style) { _ in schema } }
}

/// What a route takes in its query string, declared where the route is registered and
/// checked before its handler runs (after the caller's token: a query is no reason to answer
/// an anonymous caller with anything but 401). Parameters the schema does not name pass unless
/// it closes the object (the handlers read only the ones they know).
public struct QuerySchema: Sendable {
    /// How an API hands its query to its schema, and words a refusal.
    public enum Reading: Sendable {
        /// `{name: [value, …]}`, each parameter the list of its values; "Invalid input for query
        /// parameters x. Value: … . <reason>" (Nova, Cinder).
        case lists
        /// `{name: value}`, the first value of each; "Invalid input for field/attribute x. Value:
        /// … . <reason>" (Keystone, which checks its query as it checks a body).
        case firstValues
    }

    let reading: Reading
    let schema: @Sendable (Request) throws -> Schema

    public init(reading: Reading = .lists, _ schema: @escaping @Sendable (Request) throws -> Schema) {
        self.reading = reading
        self.schema = schema
    }

    public init(_ schema: Schema, reading: Reading = .lists) { self.init(reading: reading) { _ in schema } }

    /// The query of `request` as the schema sees it.
    public func parameters(_ request: Request) -> JSON {
        var values: [String: [JSON]] = [:]
        for (name, value) in request.queryPairs { values[name, default: []].append(.string(value)) }
        switch reading {
        case .lists: return .object(values.mapValues(JSON.array))
        case .firstValues: return .object(values.compactMapValues(\.first))
        }
    }

    /// Refuses the request's query when it breaks the schema, in its API's words.
    public func check(_ request: Request) throws {
        guard let violation = try schema(request).violation(parameters(request)) else { return }
        if let exact = violation.exact { throw exact }
        switch reading {
        case .lists:
            guard let name = violation.path.first else { throw APIFault(.badRequest, violation.message) }
            throw APIFault(.badRequest, "Invalid input for query parameters \(name). Value: \(violation.value.pythonStr). \(violation.message)")
        case .firstValues:
            throw violation.fault(.nova)
        }
    }
}

/// The body each write route takes, by method and route path: routes declare theirs as they
/// are registered (through `APIRoutes`), the body reader looks it up by the route that matched,
/// and a test holds the declarations against the router's own list of routes.
public final class RouteSchemas: Sendable {
    private let entries = Mutex<[String: BodySchema]>([:])

    public init() {}

    static func key(_ method: HTTPRequest.Method, _ path: String) -> String { "\(method.rawValue) \(path)" }

    private let queries = Mutex<[String: QuerySchema]>([:])

    public func declare(_ method: HTTPRequest.Method, _ path: RouterPath, _ body: BodySchema) {
        entries.withLock { $0[Self.key(method, path.description)] = body }
    }

    public func declare(_ method: HTTPRequest.Method, _ path: RouterPath, query: QuerySchema) {
        queries.withLock { $0[Self.key(method, path.description)] = query }
    }

    /// Every route that declared its query, as "METHOD /path".
    public var declaredQueries: Set<String> { queries.withLock { Set($0.keys) } }

    /// The body declared for a route (`path` as the router prints it).
    public func body(_ method: HTTPRequest.Method, _ path: String) -> BodySchema? {
        entries.withLock { $0[Self.key(method, path)] }
    }

    /// Every declared route, as "METHOD /path".
    public var declared: Set<String> { entries.withLock { Set($0.keys) } }
}

/// A group of an API's routes that knows its whole path, so that each write route registered
/// with `post`, `put` or `patch(_:body:use:)` declares its body in `schemas`.
public struct APIRoutes: RouterMethods, Sendable {
    public typealias Context = APIRequestContext
    let routes: RouterGroup<APIRequestContext>
    /// The group's path from the root of the router.
    public let path: RouterPath
    public let schemas: RouteSchemas

    public init(_ router: Router<APIRequestContext>, _ path: RouterPath, schemas: RouteSchemas) {
        self.routes = router.group(path)
        self.path = path
        self.schemas = schemas
    }

    init(routes: RouterGroup<APIRequestContext>, path: RouterPath, schemas: RouteSchemas) {
        self.routes = routes; self.path = path; self.schemas = schemas
    }

    @discardableResult
    public func on<Responder: HTTPResponder>(_ path: RouterPath, method: HTTPRequest.Method, responder: Responder) -> APIRoutes
    where Responder.Context == APIRequestContext {
        routes.on(path, method: method, responder: responder)
        return self
    }

    public func add(middleware: any MiddlewareProtocol<Request, Response, APIRequestContext>) -> APIRoutes {
        APIRoutes(routes: routes.add(middleware: middleware), path: path, schemas: schemas)
    }

    /// A group inside this one.
    public func group(_ path: RouterPath = "") -> APIRoutes {
        APIRoutes(routes: routes.group(path), path: self.path.appendingPath(path), schemas: schemas)
    }

    /// Registers a write route with the body it takes.
    @discardableResult
    public func on(_ path: RouterPath, method: HTTPRequest.Method, body: BodySchema,
                   use handler: @Sendable @escaping (Request, APIRequestContext) async throws -> some ResponseGenerator) -> APIRoutes {
        schemas.declare(method, self.path.appendingPath(path), body)
        return on(path, method: method, use: handler)
    }

    /// Registers a route whose query is checked against `query` before `handler` runs.
    @discardableResult
    public func on(_ path: RouterPath, method: HTTPRequest.Method, query: QuerySchema,
                   use handler: @Sendable @escaping (Request, APIRequestContext) async throws -> some ResponseGenerator) -> APIRoutes {
        schemas.declare(method, self.path.appendingPath(path), query: query)
        return on(path, method: method) { request, context in
            _ = try context.caller()
            try query.check(request)
            return try await handler(request, context)
        }
    }

    @discardableResult
    public func get(_ path: RouterPath = "", query: QuerySchema,
                    use handler: @Sendable @escaping (Request, APIRequestContext) async throws -> some ResponseGenerator) -> APIRoutes {
        on(path, method: .get, query: query, use: handler)
    }

    @discardableResult
    public func post(_ path: RouterPath = "", body: BodySchema,
                     use handler: @Sendable @escaping (Request, APIRequestContext) async throws -> some ResponseGenerator) -> APIRoutes {
        on(path, method: .post, body: body, use: handler)
    }

    @discardableResult
    public func put(_ path: RouterPath = "", body: BodySchema,
                    use handler: @Sendable @escaping (Request, APIRequestContext) async throws -> some ResponseGenerator) -> APIRoutes {
        on(path, method: .put, body: body, use: handler)
    }

    @discardableResult
    public func patch(_ path: RouterPath = "", body: BodySchema,
                      use handler: @Sendable @escaping (Request, APIRequestContext) async throws -> some ResponseGenerator) -> APIRoutes {
        on(path, method: .patch, body: body, use: handler)
    }
}
