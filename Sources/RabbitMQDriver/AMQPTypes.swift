import Foundation

/// Everything that can go wrong talking to RabbitMQ, in words an operator understands.
public enum AMQPError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No TCP connection could be made (broker down, wrong host or port).
    case brokerUnreachable(host: String, port: Int, reason: String)
    /// The broker refused the user name or password (or the vhost).
    case authenticationRefused(user: String, virtualHost: String, reason: String)
    /// The broker closed a channel: 404 NOT_FOUND, 406 PRECONDITION_FAILED, 403 ACCESS_REFUSED, …
    case channelClosed(code: Int, text: String)
    /// The broker closed the connection (e.g. 320 CONNECTION_FORCED on shutdown).
    case connectionClosed(code: Int, text: String)
    /// The connection is gone (socket error, missed heartbeats, or closed by us).
    case connectionLost(reason: String)
    /// The broker did not take responsibility for a published message.
    case publishNacked
    /// A mandatory message matched no queue.
    case unroutable(exchange: String, routingKey: String)
    /// librabbitmq reported a failure.
    case library(operation: String, reason: String)

    public var description: String {
        switch self {
        case .brokerUnreachable(let host, let port, let reason): return "RabbitMQ at \(host):\(port) is unreachable: \(reason)"
        case .authenticationRefused(let user, let vhost, let reason): return "RabbitMQ refused user '\(user)' on vhost '\(vhost)': \(reason)"
        case .channelClosed(let code, let text): return "RabbitMQ closed the channel: \(code) \(text)"
        case .connectionClosed(let code, let text): return "RabbitMQ closed the connection: \(code) \(text)"
        case .connectionLost(let reason): return "RabbitMQ connection lost: \(reason)"
        case .publishNacked: return "RabbitMQ did not confirm the message (nack)"
        case .unroutable(let exchange, let key): return "no queue is bound to exchange '\(exchange)' with routing key '\(key)'"
        case .library(let operation, let reason): return "librabbitmq \(operation): \(reason)"
        }
    }

    /// Whether the connection as a whole is unusable after this error.
    public var isConnectionFatal: Bool {
        switch self {
        case .brokerUnreachable, .authenticationRefused, .connectionClosed, .connectionLost: return true
        default: return false
        }
    }
}

public enum ExchangeType: String, Sendable {
    case direct, fanout, topic, headers
}

/// The AMQP basic properties Petrel uses.
public struct MessageProperties: Sendable, Equatable {
    public var contentType: String?
    public var persistent: Bool
    public var messageID: String?
    public var correlationID: String?
    public var replyTo: String?
    /// Per-message TTL in milliseconds.
    public var expirationMilliseconds: Int?

    public init(contentType: String? = "application/json", persistent: Bool = false, messageID: String? = nil,
                correlationID: String? = nil, replyTo: String? = nil, expirationMilliseconds: Int? = nil) {
        self.contentType = contentType
        self.persistent = persistent
        self.messageID = messageID
        self.correlationID = correlationID
        self.replyTo = replyTo
        self.expirationMilliseconds = expirationMilliseconds
    }
}

/// A message delivered to a consumer. Acknowledge it once handled; until then the broker
/// keeps it, and redelivers it if this connection dies.
public struct Delivery: Sendable {
    public let body: [UInt8]
    public let properties: MessageProperties
    public let exchange: String
    public let routingKey: String
    public let redelivered: Bool
    public let deliveryTag: UInt64
    let connection: AMQPConnection

    public func ack() async throws { try await connection.acknowledge(deliveryTag, outcome: .ack) }
    /// Rejects the message; with `requeue` the broker delivers it again (perhaps elsewhere).
    public func reject(requeue: Bool) async throws {
        try await connection.acknowledge(deliveryTag, outcome: requeue ? .requeue : .discard)
    }
}

public struct ConnectionOptions: Sendable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var virtualHost: String
    /// Heartbeat interval in seconds the client proposes (0 disables heartbeats).
    public var heartbeat: Int
    public var connectTimeout: Duration
    /// How long a synchronous broker operation (declare, bind, consume…) may take.
    public var operationTimeout: Duration
    /// Shown in the management UI's connection list.
    public var connectionName: String

    public init(host: String = "127.0.0.1", port: Int = 5672, user: String = "guest", password: String = "guest",
                virtualHost: String = "/", heartbeat: Int = 10, connectTimeout: Duration = .seconds(5),
                operationTimeout: Duration = .seconds(30), connectionName: String = "petrel") {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.virtualHost = virtualHost
        self.heartbeat = heartbeat
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
        self.connectionName = connectionName
    }
}
