import Foundation
import HTTPTypes
import Hummingbird
import Identity
import Logging
import NIOCore
import PetrelCore
import PetrelHTTP
import Store
import Synchronization

/// The Keystone v3 API: version discovery at `/` and `/v3`, authentication and tokens, the
/// catalog and the identity resources, with Keystone's JSON shapes, status codes and error
/// bodies. Every other API of the controller authenticates callers and checks policy
/// through `authenticate` and `enforce` here.
public struct KeystoneAPI: Sendable {
    public let service: IdentityService
    public let policy: Policy
    /// Base URL of the controller, without a trailing slash.
    public let publicURL: String
    /// Largest request body accepted (Keystone's `max_request_body_size`, 114688 by default).
    public let maxBodySize: Int
    let logger: Logger
    let catalogBytes = EncodedCatalog()

    public init(service: IdentityService, policy: Policy, publicURL: String, maxBodySize: Int = 114_688, logger: Logger) {
        self.service = service
        self.policy = policy
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.maxBodySize = maxBodySize
        self.logger = logger
    }

    /// Adds every identity route to `router`.
    public func register(on router: Router<BasicRequestContext>) {
        router.add(middleware: OpenStackErrorMiddleware(style: .keystone, publicURL: publicURL, logger: logger))
        registerDiscovery(on: router)
        registerAuth(on: router)
        registerProjectsAndDomains(on: router)
        registerUsersAndGroups(on: router)
        registerRoles(on: router)
        registerCatalog(on: router)
        registerApplicationCredentials(on: router)
    }

    // MARK: discovery

    var versionV3: JSON {
        [
            "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [["rel": "self", "href": .string(publicURL + "/v3/")]],
            "media-types": [["base": "application/json", "type": "application/vnd.openstack.identity-v3+json"]],
        ]
    }

    func registerDiscovery(on router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in respond(.multipleChoices, ["versions": ["values": [versionV3]]]) }
        router.get("/v3") { _, _ in respond(.ok, ["version": versionV3]) }
    }

    // MARK: shared by every API

    /// The caller's token (`X-Auth-Token`), validated. A missing or invalid token is a 401.
    public func authenticate(_ request: Request) async throws -> TokenInfo {
        guard let token = request.headers[.authToken], !token.isEmpty else { throw IdentityError.authenticationRequired }
        do {
            return try await service.validate(token)
        } catch IdentityError.notFound {
            throw IdentityError.unauthorized("The request you have made requires authentication.")
        }
    }

    /// Refuses (403) unless policy allows `action` for the token on `target`.
    public func enforce(_ action: String, _ token: TokenInfo, target: [String: String] = [:]) throws {
        guard policy.enforce(action, credentials: token.credentials, target: target) else {
            throw IdentityError.forbidden("You are not authorized to perform the requested action: \(action).")
        }
    }

    /// The request body as a JSON object (400 if it is not one, 413 if too large).
    public func body(_ request: Request) async throws -> [String: JSON] {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBodySize)
        } catch {
            throw RequestTooLarge()
        }
        guard let json = JSON.parse(Array(buffer.readableBytesView)) else {
            throw IdentityError.badRequest("The request body is not valid JSON.")
        }
        guard let object = json.objectValue else { throw IdentityError.badRequest("The request body must be a JSON object.") }
        return object
    }

    /// `body[key]` as an object: the resource of a create or update request.
    func resource(_ request: Request, _ key: String) async throws -> Fields {
        let object = try await body(request)
        guard let value = object[key] else {
            throw IdentityError.badRequest("Invalid input for field '\(key)': '\(key)' is a required property.")
        }
        guard let fields = value.objectValue else {
            throw IdentityError.badRequest("Invalid input for field '\(key)': expected an object.")
        }
        return Fields(fields)
    }

    func link(_ path: String) -> JSON { .string(publicURL + path) }

    func listLinks(_ request: Request) -> JSON {
        ["self": .string(publicURL + request.uri.description), "previous": nil, "next": nil]
    }

    /// A query parameter, decoded as a form (`+` is a space, as Python's clients send it).
    public func query(_ request: Request, _ key: String) -> String? {
        guard let raw = request.uri.query else { return nil }
        func decode(_ part: Substring) -> String {
            let text = part.replacingOccurrences(of: "+", with: " ")
            return text.removingPercentEncoding ?? text
        }
        for pair in raw.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if decode(parts[0]) == key { return parts.count > 1 ? decode(parts[1]) : "" }
        }
        return nil
    }

    /// A boolean query flag: present without a value, or with a true-ish value.
    func flag(_ request: Request, _ key: String) -> Bool {
        guard let value = query(request, key) else { return false }
        return ["", "true", "1", "yes", "on"].contains(value.lowercased())
    }

    func boolQuery(_ request: Request, _ key: String) -> Bool? {
        guard let value = query(request, key) else { return nil }
        return !["false", "0", "no", "off"].contains(value.lowercased())
    }
}

extension HTTPField.Name {
    static let authToken = HTTPField.Name("X-Auth-Token")!
    static let subjectToken = HTTPField.Name("X-Subject-Token")!
    static let requestID = HTTPField.Name("X-Openstack-Request-Id")!
    static let wwwAuthenticate = HTTPField.Name("WWW-Authenticate")!
}

struct RequestTooLarge: Error {}

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

public func respond(_ status: HTTPResponse.Status, _ json: JSON, headers: HTTPFields = [:]) -> Response {
    var fields = headers
    fields[.contentType] = "application/json"
    return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: json.encoded())))
}

public func noContent(_ status: HTTPResponse.Status = .noContent) -> Response {
    Response(status: status)
}

/// A failure an API reports itself, in its own words: the status, the message and, for
/// Neutron, the exception type its clients read (`NetworkNotFound`, …).
public struct APIFault: Error, Sendable {
    public let status: HTTPResponse.Status
    public let message: String
    public let type: String?

    public init(_ status: HTTPResponse.Status, _ message: String, type: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
    }
}

/// How an API writes its errors.
public enum FaultStyle: Sendable {
    /// `{"error": {"code", "title", "message"}}`
    case keystone
    /// `{"itemNotFound": {"code", "message"}}` and the other fault names of Nova and Cinder.
    case nova
    /// `{"NeutronError": {"type", "message", "detail"}}`
    case neutron
    /// `{"code": "404 Not Found", "title": "Not Found", "message"}` (Glance)
    case glance

    static func novaName(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: return "badRequest"
        case 401: return "unauthorized"
        case 403: return "forbidden"
        case 404: return "itemNotFound"
        case 405: return "badMethod"
        case 409: return "conflictingRequest"
        case 413, 429: return "overLimit"
        case 415: return "badMediaType"
        case 501: return "notImplemented"
        case 503: return "serviceUnavailable"
        default: return "computeFault"
        }
    }
}

/// The request being served, for handlers that pass its id on (to RPC messages, so a node
/// logs each action with the id the API returned to the user).
public enum APIRequest {
    @TaskLocal public static var id: String?
}

/// Turns every failure of an API's routes into that API's error body, and puts a request id
/// on every answer (`X-Openstack-Request-Id`).
public struct OpenStackErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let style: FaultStyle
    let publicURL: String
    let logger: Logger
    let extraRequestIDHeader: HTTPField.Name?

    public init(style: FaultStyle, publicURL: String, logger: Logger, extraRequestIDHeader: String? = nil) {
        self.style = style
        self.publicURL = publicURL
        self.logger = logger
        self.extraRequestIDHeader = extraRequestIDHeader.flatMap { HTTPField.Name($0) }
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requestID = "req-" + UUID().uuidString.lowercased()
        var response: Response
        do {
            response = try await APIRequest.$id.withValue(requestID) { try await next(request, context) }
        } catch {
            response = render(error, request: request)
        }
        response.headers[.requestID] = requestID
        if let extraRequestIDHeader { response.headers[extraRequestIDHeader] = requestID }
        return response
    }

    func render(_ error: any Error, request: Request) -> Response {
        let status: HTTPResponse.Status, message: String
        var type: String?
        switch error {
        case let error as IdentityError:
            switch error {
            case .badRequest(let text): (status, message) = (.badRequest, text)
            case .unauthorized(let text): (status, message) = (.unauthorized, text)
            case .forbidden(let text): (status, message) = (.forbidden, text)
            case .notFound: (status, message) = (.notFound, error.description)
            case .conflict(let text): (status, message) = (.conflict, text)
            }
        case let fault as APIFault:
            (status, message, type) = (fault.status, fault.message, fault.type)
        case is RequestTooLarge:
            (status, message) = (.contentTooLarge, "Request is too large.")
        case let error as HTTPError:
            (status, message) = (error.status, error.body ?? error.status.reasonPhrase)
        default:
            logger.error("request failed", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)",
                                                      "error": "\(error)"])
            (status, message) = (.internalServerError, "An unexpected error prevented the server from fulfilling your request.")
        }
        var headers: HTTPFields = [:]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Keystone uri=\"\(publicURL)\"" }
        let code = JSON.number(Double(status.code))
        let body: JSON
        // An unauthenticated request gets keystonemiddleware's body whatever the API.
        switch status == .unauthorized ? .keystone : style {
        case .keystone:
            let title = status == .contentTooLarge ? "Request Entity Too Large" : status.reasonPhrase
            body = ["error": ["code": code, "title": .string(title), "message": .string(message)]]
        case .nova:
            body = [FaultStyle.novaName(status): ["code": code, "message": .string(message)]]
        case .glance:
            body = ["code": .string("\(status.code) \(status.reasonPhrase)"), "title": .string(status.reasonPhrase), "message": .string(message)]
        case .neutron:
            let neutronType = type ?? (status == .forbidden ? "PolicyNotAuthorized" : "HTTP" + status.reasonPhrase.replacingOccurrences(of: " ", with: ""))
            body = ["NeutronError": ["type": .string(neutronType), "message": .string(message), "detail": ""]]
        }
        return respond(status, body, headers: headers)
    }
}

/// The fields of a request's resource object, checked one by one with Keystone-style messages.
struct Fields: Sendable {
    let object: [String: JSON]

    init(_ object: [String: JSON]) { self.object = object }

    func has(_ key: String) -> Bool { object[key] != nil }

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

    func bool(_ key: String) throws -> Bool? {
        guard let value = object[key] else { return nil }
        guard let flag = value.boolValue else { throw Self.invalid(key, "\(String(decoding: value.encoded(), as: UTF8.self)) is not of type 'boolean'.") }
        return flag
    }

    /// Keys of the object not in `known`: Keystone keeps them as extra attributes.
    func extra(excluding known: Set<String>) -> [String: JSON] {
        object.filter { !known.contains($0.key) }
    }
}

/// Keystone's timestamp form: 2026-11-25T15:00:00.123000Z (Petrel keeps milliseconds).
public func timestamp(_ date: Date) -> JSON {
    .string(UTCTime.format(date, fractionDigits: 3).dropLast() + "000Z")
}

public func timestamp(milliseconds: Int64) -> JSON {
    timestamp(Date(timeIntervalSince1970: TimeInterval(milliseconds) / 1000))
}

