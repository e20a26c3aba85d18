import Foundation

/// The version of an RPC method, `major.minor`. A server accepts a request whose major
/// equals its own and whose minor is not newer than its own.
public struct RPCVersion: Codable, Sendable, Equatable, CustomStringConvertible {
    public let major: Int
    public let minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    public var description: String { "\(major).\(minor)" }

    public func accepts(_ request: RPCVersion) -> Bool { request.major == major && request.minor <= minor }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        let parts = text.split(separator: ".").compactMap { Int($0) }
        guard parts.count == 2 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "version '\(text)' is not major.minor"))
        }
        self.init(parts[0], parts[1])
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// One method that crosses the wire between controller and nodes: its name, version,
/// argument and result types. Both sides name methods only through these types.
public protocol RPCMethod: Sendable {
    associatedtype Arguments: Codable & Sendable
    associatedtype Result: Codable & Sendable
    static var name: String { get }
    static var version: RPCVersion { get }
}

/// A method with no meaningful result.
public struct Nothing: Codable, Sendable, Equatable {
    public init() {}
}

/// Who asked, carried with every message so the node logs each action with the request
/// id the API returned to the user (`x-openstack-request-id`).
public struct RequestContext: Codable, Sendable, Equatable {
    public var requestID: String
    public var userID: String?
    public var projectID: String?
    public var roles: [String]

    public init(requestID: String = "req-" + UUID().uuidString.lowercased(), userID: String? = nil, projectID: String? = nil,
                roles: [String] = []) {
        self.requestID = requestID
        self.userID = userID
        self.projectID = projectID
        self.roles = roles
    }
}
