import Contracts
import Foundation
import Logging
import RabbitMQDriver

/// Errors of the calling side.
public enum RPCError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No reply within the call's timeout (the receiver is down, slow, or the broker was away).
    case timeout(method: String, topic: String, after: Duration)
    /// No queue takes messages for this topic: no service of that kind on that host.
    case noReceiver(topic: String)
    /// The receiver answered with an error.
    case remote(RPCRemoteError)
    /// The reply could not be decoded as the method's result.
    case badReply(String)

    public var description: String {
        switch self {
        case .timeout(let method, let topic, let after): return "RPC \(method) to \(topic) got no reply within \(after)"
        case .noReceiver(let topic): return "no service listens on '\(topic)'"
        case .remote(let error): return error.description
        case .badReply(let why): return "undecodable RPC reply: \(why)"
        }
    }
}

/// The names RPC uses on the broker.
public enum RPCTopology {
    /// Durable topic exchange every call and cast goes through.
    public static let exchange = "petrel"
    /// Fanout exchange of a topic, for broadcasts to every listener.
    public static func fanoutExchange(_ topic: String) -> String { "petrel.fanout.\(topic)" }
    /// The queue of one service on one host, e.g. `compute.node-1`.
    public static func hostTopic(_ topic: String, host: String) -> String { "\(topic).\(host)" }
}

/// Calls, casts and broadcasts RPC methods. Replies come back on one exclusive queue of
/// this process, matched to their call by message id.
public final class RPCClient: @unchecked Sendable {
    let link: BrokerLink
    let logger: Logger
    private let lock = NSLock()
    private var pending: [String: (continuation: CheckedContinuation<[UInt8], any Error>, timer: Task<Void, Never>?)] = [:]
    private var replyQueue: String?
    private var replyWaiters: [CheckedContinuation<String, Never>] = []
    private var replyLoop: Task<Void, Never>?
    private let encoder = JSONEncoder()

    public init(link: BrokerLink, logger: Logger) {
        self.link = link
        self.logger = logger
    }

    /// Starts receiving replies (and keeps doing so across reconnects).
    public func start() {
        lock.lock()
        defer { lock.unlock() }
        guard replyLoop == nil else { return }
        replyLoop = Task { await self.receiveReplies() }
    }

    public func stop() {
        lock.lock()
        let loop = replyLoop
        replyLoop = nil
        let waiting = pending
        pending.removeAll()
        lock.unlock()
        loop?.cancel()
        for (_, entry) in waiting {
            entry.timer?.cancel()
            entry.continuation.resume(throwing: CancellationError())
        }
    }

    /// Calls `method` on whoever serves `topic` and waits for the result.
    public func call<M: RPCMethod>(_ method: M.Type, _ arguments: M.Arguments, topic: String,
                                   context: RequestContext = RequestContext(), timeout: Duration = .seconds(60)) async throws -> M.Result {
        start()
        let replyTo = await currentReplyQueue()
        let (id, body) = try request(M.self, arguments, replyTo: replyTo, context: context)
        // A cancelled caller (e.g. a program shutting down) stops waiting at once.
        let reply: [UInt8] = try await withTaskCancellationHandler { try await withCheckedThrowingContinuation { continuation in
            lock.withLock { pending[id] = (continuation, nil) }
            if Task.isCancelled {
                finish(id, with: .failure(CancellationError()))
                return
            }
            // Publishes, then stands guard over the deadline; cancelled as soon as the reply is in.
            let deadline = ContinuousClock.now + timeout
            let timer = Task {
                do {
                    let connection = try await link.connection(patience: timeout)
                    try await connection.publish(exchange: RPCTopology.exchange, routingKey: topic, body: body,
                                                 properties: MessageProperties(messageID: id, correlationID: id, replyTo: replyTo,
                                                                               expirationMilliseconds: Self.milliseconds(timeout)),
                                                 mandatory: true)
                } catch AMQPError.unroutable {
                    self.finish(id, with: .failure(RPCError.noReceiver(topic: topic)))
                    return
                } catch {
                    // The broker may be away: the reply deadline below still applies.
                    logger.warning("RPC publish failed", metadata: ["method": "\(M.name)", "topic": "\(topic)", "error": "\(error)"])
                }
                do {
                    try await Task.sleep(until: deadline)
                } catch {
                    return  // the reply arrived
                }
                self.finish(id, with: .failure(RPCError.timeout(method: M.name, topic: topic, after: timeout)))
            }
            let stillPending = lock.withLock {
                guard pending[id] != nil else { return false }
                pending[id]?.timer = timer
                return true
            }
            if !stillPending { timer.cancel() }
        } } onCancel: {
            self.finish(id, with: .failure(CancellationError()))
        }
        let header = try JSONDecoder().decode(RPCReplyHeader.self, from: Data(reply))
        if let error = header.error { throw RPCError.remote(error) }
        do {
            guard let result = try JSONDecoder().decode(RPCReply<M.Result>.self, from: Data(reply)).result else {
                throw RPCError.badReply("reply to \(M.name) has neither result nor error")
            }
            return result
        } catch let error as DecodingError {
            throw RPCError.badReply("\(error)")
        }
    }

    /// Sends `method` to `topic` without waiting for a result. The message is persistent
    /// and confirmed by the broker before this returns; across a broker outage it is
    /// retried until `patience` runs out (receivers are idempotent, so a repeat is safe).
    /// A topic no queue takes fails with `noReceiver` instead of vanishing.
    public func cast<M: RPCMethod>(_ method: M.Type, _ arguments: M.Arguments, topic: String,
                                   context: RequestContext = RequestContext(), patience: Duration = .seconds(60)) async throws {
        let (id, body) = try request(M.self, arguments, replyTo: nil, context: context)
        try await publishReliably(exchange: RPCTopology.exchange, key: topic, body: body, id: id, mandatory: true,
                                  patience: patience, describe: "cast \(M.name) to \(topic)")
    }

    /// Broadcasts `method` to every listener of `topic` (e.g. every L2 agent); with no
    /// listener at all, there is nobody to tell and nothing fails.
    public func fanout<M: RPCMethod>(_ method: M.Type, _ arguments: M.Arguments, topic: String,
                                     context: RequestContext = RequestContext(), patience: Duration = .seconds(60)) async throws {
        let (id, body) = try request(M.self, arguments, replyTo: nil, context: context)
        try await publishReliably(exchange: RPCTopology.fanoutExchange(topic), key: "", body: body, id: id, mandatory: false,
                                  patience: patience, describe: "fanout \(M.name) to \(topic)", declareFanout: topic)
    }

    /// A new message id and the encoded request envelope.
    private func request<M: RPCMethod>(_ method: M.Type, _ arguments: M.Arguments, replyTo: String?,
                                       context: RequestContext) throws -> (id: String, body: [UInt8]) {
        let id = UUID().uuidString.lowercased()
        let body = try encoder.encode(RPCRequest(method: M.name, version: M.version, messageID: id, replyTo: replyTo,
                                                 context: context, args: arguments))
        return (id, Array(body))
    }

    private func publishReliably(exchange: String, key: String, body: [UInt8], id: String, mandatory: Bool, patience: Duration,
                                 describe: String, declareFanout: String? = nil) async throws {
        let deadline = ContinuousClock.now + patience
        while true {
            do {
                let connection = try await link.connection(patience: deadline - ContinuousClock.now)
                if let topic = declareFanout {
                    try await connection.declareExchange(RPCTopology.fanoutExchange(topic), type: .fanout)
                }
                try await connection.publish(exchange: exchange, routingKey: key, body: body,
                                             properties: MessageProperties(persistent: true, messageID: id), mandatory: mandatory)
                return
            } catch AMQPError.unroutable {
                throw RPCError.noReceiver(topic: key)
            } catch let error as AMQPError where ContinuousClock.now < deadline && Self.isTransient(error) {
                logger.warning("RPC \(describe) not confirmed; retrying", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Broker outages and nacks pass; a channel error (missing exchange, refused access) will
    /// not get better by repeating the same publish.
    private static func isTransient(_ error: AMQPError) -> Bool {
        if case .channelClosed = error { return false }
        return true
    }

    private func finish(_ id: String, with result: Result<[UInt8], any Error>) {
        let entry = lock.withLock { pending.removeValue(forKey: id) }
        entry?.timer?.cancel()
        entry?.continuation.resume(with: result)
    }

    /// Calls waiting for their reply (for tests and metrics).
    var callsInFlight: Int { lock.withLock { pending.count } }

    private func currentReplyQueue() async -> String {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let replyQueue {
                lock.unlock()
                continuation.resume(returning: replyQueue)
                return
            }
            replyWaiters.append(continuation)
            lock.unlock()
        }
    }

    private func receiveReplies() async {
        while !Task.isCancelled {
            do {
                let connection = try await link.connection(patience: .seconds(3600))
                let queue = try await connection.declareQueue("", durable: false, exclusive: true, autoDelete: true)
                let replies = try await connection.consume(queue, prefetch: 1000, exclusive: true)
                let waiting = lock.withLock {
                    replyQueue = queue
                    defer { replyWaiters.removeAll() }
                    return replyWaiters
                }
                for waiter in waiting { waiter.resume(returning: queue) }
                for try await delivery in replies {
                    try? await delivery.ack()
                    guard let id = delivery.properties.correlationID else { continue }
                    finish(id, with: .success(delivery.body))
                }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("RPC reply queue lost; reconnecting", metadata: ["error": "\(error)"])
            }
            lock.withLock { replyQueue = nil }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
