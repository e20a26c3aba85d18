import Foundation
import Logging
import PetrelCore
import RabbitMQDriver

/// Keeps a connection to the broker: hands out the open one, or reconnects — trying each
/// broker of `transport_url` in turn, with exponential backoff and jitter between rounds.
public actor BrokerLink {
    public let transport: TransportURL
    public let name: String
    let heartbeat: Int
    let logger: Logger
    private var current: AMQPConnection?
    private var connecting: Task<AMQPConnection, any Error>?
    private var nextBroker = 0

    public init(transport: TransportURL, name: String, heartbeat: Int = 10, logger: Logger) {
        self.transport = transport
        self.name = name
        self.heartbeat = heartbeat
        self.logger = logger
    }

    /// The open connection, reconnecting first if it is gone. Waits up to `patience`
    /// for a broker to answer, then throws the last connection error.
    public func connection(patience: Duration = .seconds(30)) async throws -> AMQPConnection {
        if let current, current.isOpen { return current }
        if let connecting { return try await connecting.value }
        let task = Task { try await self.reconnect(patience: patience) }
        connecting = task
        defer { connecting = nil }
        let connection = try await task.value
        current = connection
        return connection
    }

    /// Closes the connection (consumers' streams end).
    public func close() async {
        await current?.close()
        current = nil
    }

    private func reconnect(patience: Duration) async throws -> AMQPConnection {
        let deadline = ContinuousClock.now + patience
        var delay = Duration.milliseconds(100)
        var lastError: (any Error)?
        while true {
            for _ in transport.brokers {
                let broker = transport.brokers[nextBroker % transport.brokers.count]
                nextBroker += 1
                do {
                    let connection = try await AMQPConnection.connect(ConnectionOptions(
                        host: broker.host, port: broker.port, user: broker.user, password: broker.password,
                        virtualHost: transport.virtualHost, heartbeat: heartbeat, connectTimeout: .seconds(3)))
                    if lastError != nil {
                        logger.info("reconnected to RabbitMQ", metadata: ["broker": "\(broker.host):\(broker.port)", "link": "\(name)"])
                    }
                    return connection
                } catch let error as AMQPError {
                    lastError = error
                    // Wrong credentials will not get better by retrying.
                    if case .authenticationRefused = error { throw error }
                    logger.warning("RabbitMQ unreachable", metadata: ["broker": "\(broker.host):\(broker.port)", "error": "\(error)"])
                }
            }
            let jitter = Duration.milliseconds(Int.random(in: 0...Int(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000) / 2 + 1))
            if ContinuousClock.now + delay > deadline { throw lastError ?? AMQPError.connectionLost(reason: "no broker") }
            try await Task.sleep(for: delay + jitter)
            delay = min(delay * 2, .seconds(5))
        }
    }
}
