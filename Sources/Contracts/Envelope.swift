import Foundation

/// What every RPC message carries around its arguments. `envelope` is the format's own
/// version; a receiver refuses formats newer than it knows.
public struct RPCRequestHeader: Codable, Sendable {
    public static let currentEnvelope = 1
    public var envelope: Int
    public var method: String
    public var version: RPCVersion
    public var messageID: String
    public var replyTo: String?
    public var context: RequestContext
}

public struct RPCRequest<Arguments: Codable & Sendable>: Codable, Sendable {
    public var envelope: Int
    public var method: String
    public var version: RPCVersion
    public var messageID: String
    public var replyTo: String?
    public var context: RequestContext
    public var args: Arguments

    public init(method: String, version: RPCVersion, messageID: String, replyTo: String?, context: RequestContext,
                args: Arguments) {
        self.envelope = RPCRequestHeader.currentEnvelope
        self.method = method
        self.version = version
        self.messageID = messageID
        self.replyTo = replyTo
        self.context = context
        self.args = args
    }
}

/// An error a remote handler (or the RPC layer on the far side) returned.
public struct RPCRemoteError: Error, Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable {
        /// The receiver has no such method.
        case unknownMethod
        /// The receiver's version of the method cannot serve this request.
        case incompatibleVersion
        /// The message could not be decoded.
        case badMessage
        /// The handler ran and threw.
        case handlerFailed
    }

    public let kind: Kind
    public let message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "remote \(kind.rawValue): \(message)" }
}

public struct RPCReply<Result: Codable & Sendable>: Codable, Sendable {
    public var messageID: String
    public var result: Result?
    public var error: RPCRemoteError?

    public init(messageID: String, result: Result?, error: RPCRemoteError?) {
        self.messageID = messageID
        self.result = result
        self.error = error
    }
}

/// The part of a reply read before its result type is known.
public struct RPCReplyHeader: Codable, Sendable {
    public var messageID: String
    public var error: RPCRemoteError?
}
