import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PetrelCore
import PetrelHTTP
import Placement

/// The Placement API under `/placement`: resource providers and their inventories, traits
/// and aggregates, resource classes, allocations per consumer, usages and allocation
/// candidates, microversions 1.0 to `maximum` (each version's documented change).
public struct PlacementAPI: Sendable {
    public let environment: APIEnvironment
    public let service: PlacementService
    let logger: Logger

    public static let minimum = Microversion(1, 0)
    /// Every change up to 1.39 is served: nested allocation candidates (1.29), the reshaper
    /// (1.30), `in_tree` (1.31), forbidden aggregates (1.32), named group suffixes (1.33),
    /// mappings (1.34), `root_required` (1.35), `same_subtree` (1.36), re-parenting (1.37),
    /// consumer types (1.38) and any-of traits (1.39).
    public static let maximum = Microversion(1, 39)

    static let adminOrService = "rule:admin_or_service_api"
    public static let policyDefaults: [PolicyDefault] = {
        var rules = [
            PolicyDefault("service_api", "role:service", "Default rule for service-to-service placement APIs."),
            PolicyDefault("admin_or_service_api", "role:admin or role:service", "Default rule for most placement APIs."),
            PolicyDefault("project_reader_api", "role:reader and project_id:%(project_id)s", "Default rule for Project level reader APIs."),
            PolicyDefault("admin_or_project_reader_or_service_api", "role:admin or rule:project_reader_api or role:service",
                          "Default rule for project level reader APIs."),
        ]
        let base = "/placement"
        let operations: [(String, String, [String])] = [
            ("placement:resource_providers:list", "List resource providers.", ["GET \(base)/resource_providers"]),
            ("placement:resource_providers:create", "Create a resource provider.", ["POST \(base)/resource_providers"]),
            ("placement:resource_providers:show", "Show a resource provider.", ["GET \(base)/resource_providers/{uuid}"]),
            ("placement:resource_providers:update", "Update a resource provider.", ["PUT \(base)/resource_providers/{uuid}"]),
            ("placement:resource_providers:delete", "Delete a resource provider.", ["DELETE \(base)/resource_providers/{uuid}"]),
            ("placement:resource_providers:inventories:list", "List a provider's inventories.", ["GET \(base)/resource_providers/{uuid}/inventories"]),
            ("placement:resource_providers:inventories:create", "Create one inventory of a provider.", ["POST \(base)/resource_providers/{uuid}/inventories"]),
            ("placement:resource_providers:inventories:show", "Show one inventory of a provider.",
             ["GET \(base)/resource_providers/{uuid}/inventories/{resource_class}"]),
            ("placement:resource_providers:inventories:update", "Update a provider's inventories.",
             ["PUT \(base)/resource_providers/{uuid}/inventories", "PUT \(base)/resource_providers/{uuid}/inventories/{resource_class}"]),
            ("placement:resource_providers:inventories:delete", "Delete a provider's inventories.",
             ["DELETE \(base)/resource_providers/{uuid}/inventories", "DELETE \(base)/resource_providers/{uuid}/inventories/{resource_class}"]),
            ("placement:resource_providers:aggregates:list", "List a provider's aggregates.", ["GET \(base)/resource_providers/{uuid}/aggregates"]),
            ("placement:resource_providers:aggregates:update", "Set a provider's aggregates.", ["PUT \(base)/resource_providers/{uuid}/aggregates"]),
            ("placement:resource_providers:usages", "Show a provider's usages.", ["GET \(base)/resource_providers/{uuid}/usages"]),
            ("placement:resource_providers:allocations:list", "List the allocations on a provider.",
             ["GET \(base)/resource_providers/{uuid}/allocations"]),
            ("placement:resource_providers:traits:list", "List a provider's traits.", ["GET \(base)/resource_providers/{uuid}/traits"]),
            ("placement:resource_providers:traits:update", "Set a provider's traits.", ["PUT \(base)/resource_providers/{uuid}/traits"]),
            ("placement:resource_providers:traits:delete", "Remove a provider's traits.", ["DELETE \(base)/resource_providers/{uuid}/traits"]),
            ("placement:resource_classes:list", "List resource classes.", ["GET \(base)/resource_classes"]),
            ("placement:resource_classes:create", "Create a custom resource class.", ["POST \(base)/resource_classes"]),
            ("placement:resource_classes:show", "Show a resource class.", ["GET \(base)/resource_classes/{name}"]),
            ("placement:resource_classes:update", "Create or rename a custom resource class.", ["PUT \(base)/resource_classes/{name}"]),
            ("placement:resource_classes:delete", "Delete a custom resource class.", ["DELETE \(base)/resource_classes/{name}"]),
            ("placement:traits:list", "List traits.", ["GET \(base)/traits"]),
            ("placement:traits:show", "Show a trait.", ["GET \(base)/traits/{name}"]),
            ("placement:traits:update", "Create a custom trait.", ["PUT \(base)/traits/{name}"]),
            ("placement:traits:delete", "Delete a custom trait.", ["DELETE \(base)/traits/{name}"]),
            ("placement:allocations:manage", "Write the allocations of several consumers.", ["POST \(base)/allocations"]),
            ("placement:allocations:list", "Show a consumer's allocations.", ["GET \(base)/allocations/{consumer_uuid}"]),
            ("placement:allocations:update", "Write a consumer's allocations.", ["PUT \(base)/allocations/{consumer_uuid}"]),
            ("placement:allocations:delete", "Delete a consumer's allocations.", ["DELETE \(base)/allocations/{consumer_uuid}"]),
            ("placement:allocation_candidates:list", "List allocation candidates.", ["GET \(base)/allocation_candidates"]),
        ]
        rules += operations.map { PolicyDefault($0.0, adminOrService, $0.1, $0.2) }
        rules.append(PolicyDefault("placement:reshaper:reshape", "rule:service_api", "Reshape Inventory and Allocations.", ["POST \(base)/reshaper"]))
        rules.append(PolicyDefault("placement:usages", "rule:admin_or_project_reader_or_service_api", "Show a project's (or user's) usages.",
                                   ["GET \(base)/usages"]))
        return rules
    }()

    public init(environment: APIEnvironment, service: PlacementService, logger: Logger) {
        self.environment = environment
        self.service = service
        self.logger = logger
    }

    public func register(on router: Router<APIRequestContext>) {
        let routes = environment.routes(router, "placement")
            .add(middleware: OpenStackErrorMiddleware(style: .placement, publicURL: environment.publicURL, logger: logger))
            .add(middleware: PlacementVersionMiddleware())
            .add(middleware: environment.authentication)
        let document: JSON = ["versions": [["id": "v1.0", "max_version": .string(Self.maximum.description),
                                            "min_version": .string(Self.minimum.description), "status": "CURRENT",
                                            "links": [["rel": "self", "href": ""]]]]]
        // The version document needs no token, as Placement's.
        routes.get { _, _ in respond(.ok, document) }
        registerProviders(on: routes)
        registerInventories(on: routes)
        registerProviderDetails(on: routes)
        registerClassesAndTraits(on: routes)
        registerAllocations(on: routes)
    }

    /// The microversion the request asks for (the middleware refused those outside the range).
    static func version(_ request: Request) -> Microversion {
        (try? Microversion.requested(by: request.headers, service: "placement", legacyHeader: nil, minimum: minimum, maximum: maximum)) ?? minimum
    }

    /// A route that appeared in `major.minor`: before it, Placement answers 404.
    static func require(_ request: Request, _ major: Int, _ minor: Int) throws -> Microversion {
        let version = version(request)
        guard version >= Microversion(major, minor) else { throw APIFault(.notFound, "The resource could not be found.") }
        return version
    }

    /// Runs a Placement operation, turning its refusals into Placement's errors.
    static func run<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let failure as PlacementFailure {
            throw APIFault(HTTPResponse.Status(code: failure.status), failure.message, type: failure.code)
        }
    }

    /// A body checked against a schema of the request's microversion (any JSON value: before
    /// 1.19 an aggregates body is a list).
    static func body(_ schema: @escaping @Sendable (Microversion) -> Schema) -> BodySchema {
        .json(style: .placement) { request in schema(version(request)) }
    }

    func json(_ request: Request, _ context: APIRequestContext) async throws -> JSON {
        guard let path = context.endpointPath, case .json(let style, let schema)? = environment.schemas.body(request.method, path) else {
            throw APIFault(.internalServerError, "The route declares no JSON body.")
        }
        if let type = request.mediaType, type != "application/json" {
            throw APIFault(.unsupportedMediaType, "The media type \(type) is not supported, use application/json")
        }
        let json = try await request.json(maxSize: environment.maxBodySize)
        if let violation = schema(request).violation(json) { throw violation.fault(style) }
        return json
    }

    /// A GET answer: from 1.15 with `Last-Modified` and `Cache-Control: no-cache`.
    static func answer(_ request: Request, _ json: JSON, status: HTTPResponse.Status = .ok, modified: Int64? = nil,
                       headers: HTTPFields = [:]) -> Response {
        var fields = headers
        if request.method == .get, version(request) >= Microversion(1, 15) {
            let date = modified.map { Date(timeIntervalSince1970: TimeInterval($0) / 1000) } ?? Date()
            fields[.lastModified] = httpDate(date)
            fields[.cacheControl] = "no-cache"
        }
        return respond(status, json, headers: fields)
    }

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}

/// Placement's microversion handling for every route: a version outside 1.0…maximum is a 406
/// naming the range (what osc-placement negotiates with), a malformed one a 400; every answer
/// says which version it speaks.
struct PlacementVersionMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: APIRequestContext, next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        let version: Microversion
        do {
            version = try Microversion.requested(by: request.headers, service: "placement", legacyHeader: nil,
                                                 minimum: PlacementAPI.minimum, maximum: PlacementAPI.maximum)
        } catch let fault as APIFault {
            let detail = fault.status == .notAcceptable
                ? "Unacceptable version header: \(requestedText(request) ?? "")" : fault.message
            let body: JSON = ["errors": [["status": .number(Double(fault.status.code)), "title": .string(fault.status.reasonPhrase),
                                          "detail": .string("\(fault.status.reasonPhrase)\n\n \(detail)  "),
                                          "code": "placement.undefined_code", "request_id": .string(APIRequest.id ?? ""),
                                          "max_version": .string(PlacementAPI.maximum.description),
                                          "min_version": .string(PlacementAPI.minimum.description)]]]
            return respond(fault.status, body)
        }
        var response = try await next(request, context)
        response.headers[HTTPField.Name("OpenStack-API-Version")!] = "placement \(version)"
        response.headers[HTTPField.Name("Vary")!] = "openstack-api-version"
        return response
    }

    func requestedText(_ request: Request) -> String? {
        request.headers[HTTPField.Name("OpenStack-API-Version")!]?.split(separator: ",")
            .map { $0.split(separator: " ").map(String.init) }.first { $0.count == 2 && $0[0].lowercased() == "placement" }?[1]
    }
}

extension JSON {
    static func int(_ value: Int) -> JSON { .number(Double(value)) }

    var numberValue: Double? { if case .number(let value) = self { return value }; return nil }
}
