import Contracts
import Foundation
import Logging
import RabbitMQDriver

/// Serves RPC methods on a topic: the shared queue `<topic>` (work any host may take),
/// this host's queue `<topic>.<host>`, and the topic's fanout exchange.
///
/// A message is acknowledged only after its handler has finished and its reply (if the
/// caller wants one) has been published: a crash mid-handling means redelivery, so
/// handlers must be idempotent. Unknown methods, incompatible versions and handler
/// failures are answered with an error reply, never a crash.
public final class RPCServer: @unchecked Sendable {
    typealias Handler = @Sendable (Data, RequestContext) async -> Data
    let link: BrokerLink
    let topic: String
    let host: String?
    let logger: Logger
    let prefetch: UInt16
    private let lock = NSLock()
    private var handlers: [String: (version: RPCVersion, handle: Handler)] = [:]
    private var readyWaiters: [CheckedContinuation<Void, Never>] = []
    private var isReady = false

    public init(link: BrokerLink, topic: String, host: String?, prefetch: UInt16 = 64, logger: Logger) {
        self.link = link
        self.topic = topic
        self.host = host
        self.prefetch = prefetch
        self.logger = logger
    }

    /// Registers the handler of `method`. Register every method before `run`.
    public func register<M: RPCMethod>(_ method: M.Type,
                                       _ handler: @escaping @Sendable (M.Arguments, RequestContext) async throws -> M.Result) {
        let logger = self.logger
        let handle: Handler = { body, context in
            let request: RPCRequest<M.Arguments>
            do {
                request = try JSONDecoder().decode(RPCRequest<M.Arguments>.self, from: body)
            } catch {
                return Self.encode(RPCReply<M.Result>(messageID: "", result: nil,
                                                      error: RPCRemoteError(kind: .badMessage, message: "arguments of \(M.name): \(error)")))
            }
            do {
                let result = try await handler(request.args, context)
                return Self.encode(RPCReply(messageID: request.messageID, result: result, error: nil))
            } catch {
                logger.error("RPC handler failed", metadata: ["method": "\(M.name)", "request_id": "\(context.requestID)",
                                                              "error": "\(error)"])
                return Self.encode(RPCReply<M.Result>(messageID: request.messageID, result: nil,
                                                      error: RPCRemoteError(kind: .handlerFailed, message: "\(error)")))
            }
        }
        lock.lock()
        handlers[M.name] = (M.version, handle)
        lock.unlock()
    }

    static func encode<R>(_ reply: RPCReply<R>) -> Data {
        (try? JSONEncoder().encode(reply)) ?? Data()
    }

    /// Waits until the server's queues exist and it consumes them.
    public func ready() async {
        await withCheckedContinuation { continuation in
            lock.lock()
            if isReady {
                lock.unlock()
                continuation.resume()
                return
            }
            readyWaiters.append(continuation)
            lock.unlock()
        }
    }

    /// Consumes until cancelled, reconnecting whenever the broker goes away.
    public func run() async {
        while !Task.isCancelled {
            do {
                try await serveOnce()
            } catch is CancellationError {
                return
            } catch {
                logger.warning("RPC server lost the broker; reconnecting", metadata: ["topic": "\(topic)", "error": "\(error)"])
            }
            lock.withLock { isReady = false }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private func serveOnce() async throws {
        let connection = try await link.connection(patience: .seconds(3600))
        try await connection.declareExchange(RPCTopology.exchange, type: .topic, durable: true)
        try await connection.declareExchange(RPCTopology.fanoutExchange(topic), type: .fanout, durable: true)
        var queues = [topic]
        if let host { queues.append(RPCTopology.hostTopic(topic, host: host)) }
        for queue in queues {
            try await connection.declareQueue(queue, durable: true)
            try await connection.bindQueue(queue, exchange: RPCTopology.exchange, routingKey: queue)
        }
        let broadcast = try await connection.declareQueue("", durable: false, exclusive: true, autoDelete: true)
        try await connection.bindQueue(broadcast, exchange: RPCTopology.fanoutExchange(topic), routingKey: "")
        var streams: [AsyncThrowingStream<Delivery, any Error>] = []
        for queue in queues + [broadcast] { streams.append(try await connection.consume(queue, prefetch: prefetch)) }
        let waiting = lock.withLock {
            isReady = true
            defer { readyWaiters.removeAll() }
            return readyWaiters
        }
        for waiter in waiting { waiter.resume() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for stream in streams {
                group.addTask {
                    try await withThrowingTaskGroup(of: Void.self) { handlers in
                        for try await delivery in stream {
                            handlers.addTask { await self.handle(delivery, on: connection) }
                        }
                        try await handlers.waitForAll()
                    }
                }
            }
            // The first stream to end (connection lost) ends this round.
            try await group.next()
            group.cancelAll()
        }
    }

    private func handle(_ delivery: Delivery, on connection: AMQPConnection) async {
        let body = Data(delivery.body)
        let reply: Data
        var context = RequestContext(requestID: "unknown")
        var replyTo: String?
        var messageID = delivery.properties.messageID ?? ""
        do {
            let header = try JSONDecoder().decode(RPCRequestHeader.self, from: body)
            context = header.context
            replyTo = header.replyTo
            messageID = header.messageID
            if header.envelope > RPCRequestHeader.currentEnvelope {
                reply = Self.error(messageID, .badMessage, "envelope format \(header.envelope) is newer than this receiver's \(RPCRequestHeader.currentEnvelope)")
            } else if let handler = lookup(header.method) {
                if handler.version.accepts(header.version) {
                    var log = logger
                    log[metadataKey: "request_id"] = "\(context.requestID)"
                    log.debug("RPC", metadata: ["method": "\(header.method)", "redelivered": "\(delivery.redelivered)"])
                    reply = await handler.handle(body, context)
                } else {
                    reply = Self.error(messageID, .incompatibleVersion,
                                       "\(header.method) \(header.version) requested; this receiver serves \(handler.version)")
                }
            } else {
                reply = Self.error(messageID, .unknownMethod, "no method '\(header.method)' on topic \(topic)")
            }
        } catch {
            reply = Self.error(messageID, .badMessage, "undecodable request: \(error)")
        }
        do {
            if let replyTo {
                try await connection.publish(exchange: "", routingKey: replyTo, body: Array(reply),
                                             properties: MessageProperties(correlationID: messageID))
            }
            try await delivery.ack()
        } catch {
            // Not acknowledged: the broker redelivers it (to us after reconnecting, or to a peer).
            logger.warning("RPC reply or ack failed", metadata: ["request_id": "\(context.requestID)", "error": "\(error)"])
        }
    }

    private func lookup(_ method: String) -> (version: RPCVersion, handle: Handler)? {
        lock.lock()
        defer { lock.unlock() }
        return handlers[method]
    }

    static func error(_ id: String, _ kind: RPCRemoteError.Kind, _ message: String) -> Data {
        encode(RPCReply<Nothing>(messageID: id, result: nil, error: RPCRemoteError(kind: kind, message: message)))
    }
}
