import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PetrelCore

public func respond(_ status: HTTPResponse.Status, _ json: JSON, headers: HTTPFields = [:]) -> Response {
    var fields = headers
    fields[.contentType] = "application/json"
    return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: json.encoded())))
}

public func noContent(_ status: HTTPResponse.Status = .noContent) -> Response {
    Response(status: status)
}

extension HTTPField.Name {
    public static let authToken = HTTPField.Name("X-Auth-Token")!
    public static let subjectToken = HTTPField.Name("X-Subject-Token")!
    public static let serviceToken = HTTPField.Name("X-Service-Token")!
    public static let requestID = HTTPField.Name("X-Openstack-Request-Id")!
}

/// A request body over the API's size limit (413).
public struct RequestTooLarge: Error {
    public init() {}
}

/// A body in a media type the route cannot take: 415 (Keystone: its 400).
public struct UnsupportedMediaType: Error {
    public let given: String
    public init(_ given: String) { self.given = given }
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

/// An error of a service that knows its HTTP status and message (the identity service's).
public protocol HTTPDescribedError: Error {
    var httpStatus: HTTPResponse.Status { get }
    var httpMessage: String { get }
}

/// Policy refused `action` to the caller: a 403 in the words of the API that refused it.
public struct PolicyRefusal: Error, Sendable, Equatable {
    public let action: String

    public init(_ action: String) { self.action = action }
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
    /// `{"errors": [{"status", "title", "detail", "code", "request_id"}]}` (Placement; `APIFault.type`
    /// carries its error code, `placement.undefined_code` when none)
    case placement

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

    /// What this API says when policy refuses an action.
    func refusal(_ action: String) -> APIFault {
        switch self {
        case .keystone: return APIFault(.forbidden, "You are not authorized to perform the requested action: \(action).")
        case .nova: return APIFault(.forbidden, "Policy doesn't allow \(action) to be performed.")
        case .neutron: return APIFault(.forbidden, "(rule:\(action)) is disallowed by policy", type: "PolicyNotAuthorized")
        case .glance: return APIFault(.forbidden, "You are not authorized to complete \(action) action.")
        case .placement: return APIFault(.forbidden, "Policy does not allow \(action) to be performed.")
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
            response = render(error, request: request, requestID: requestID)
        }
        response.headers[.requestID] = requestID
        if let extraRequestIDHeader { response.headers[extraRequestIDHeader] = requestID }
        return response
    }

    func render(_ error: any Error, request: Request, requestID: String = "") -> Response {
        let status: HTTPResponse.Status, message: String
        var type: String?
        switch error {
        case let error as HTTPDescribedError:
            (status, message) = (error.httpStatus, error.httpMessage)
        case let refusal as PolicyRefusal:
            let fault = style.refusal(refusal.action)
            (status, message, type) = (fault.status, fault.message, fault.type)
        case let fault as APIFault:
            (status, message, type) = (fault.status, fault.message, fault.type)
        case is RequestTooLarge:
            (status, message) = (.contentTooLarge, "Request is too large.")
        case let unsupported as UnsupportedMediaType:
            switch style {
            case .keystone:
                (status, message) = (.badRequest, "Expecting to find application/json in Content-Type header. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
            case .nova:
                (status, message) = (.unsupportedMediaType, "Unsupported Content-Type")
            case .neutron, .glance, .placement:
                (status, message) = (.unsupportedMediaType, "The request media type \(unsupported.given) is not supported by this server.")
            }
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
        case .placement:
            // webob's detail: the status's explanation, a blank line, the message (what osc-placement prints).
            body = ["errors": [["status": code, "title": .string(status.reasonPhrase),
                                "detail": .string("\(status.reasonPhrase)\n\n \(message)  "),
                                "code": .string(type ?? "placement.undefined_code"), "request_id": .string(requestID)]]]
        }
        return respond(status, body, headers: headers)
    }
}

/// Keystone's timestamp form: 2026-11-25T15:00:00.123000Z (Petrel keeps milliseconds).
public func timestamp(_ date: Date) -> JSON {
    .string(UTCTime.format(date, fractionDigits: 3).dropLast() + "000Z")
}

public func timestamp(milliseconds: Int64) -> JSON {
    timestamp(Date(timeIntervalSince1970: TimeInterval(milliseconds) / 1000))
}
