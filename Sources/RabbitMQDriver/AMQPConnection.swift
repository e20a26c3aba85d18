import CRabbitMQ
import Foundation
import PetrelCore

/// One AMQP 0-9-1 connection to RabbitMQ through librabbitmq.
///
/// librabbitmq is blocking and not thread-safe, so each connection owns a dedicated
/// thread that makes every librabbitmq call; the async methods below hand it work and
/// resume when the broker has answered. The thread also reads incoming frames
/// (deliveries, publisher confirms, broker-side closes) and services heartbeats.
///
/// Channels: 1 publishes (in confirm mode), 2 consumes, 3 declares and binds. A broker
/// error closes only the channel it happened on; the driver reopens it on next use.
public final class AMQPConnection: @unchecked Sendable {
    public let options: ConnectionOptions

    // Shared between callers and the connection thread.
    private let lock = NSLock()
    private var jobs: [(run: (AMQPConnection) -> Void, fail: (AMQPError) -> Void)] = []
    private var failure: AMQPError?
    private let wakeFD: Int32

    // Owned by the connection thread.
    private var state: amqp_connection_state_t?
    private var openChannels: Set<UInt16> = []
    private var publishSequence: UInt64 = 0
    private var pendingConfirms: [UInt64: (id: String, exchange: String, key: String, done: CheckedContinuation<Void, any Error>)] = [:]
    private var returnedMessageIDs: Set<String> = []
    private var consumers: [String: AsyncThrowingStream<Delivery, any Error>.Continuation] = [:]
    private var stopRequested = false
    private var closeWaiters: [CheckedContinuation<Void, Never>] = []

    static let publishChannel: UInt16 = 1
    static let consumeChannel: UInt16 = 2
    static let controlChannel: UInt16 = 3

    private init(options: ConnectionOptions) {
        self.options = options
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
    }

    deinit {
        Glibc.close(wakeFD)
        if let state { amqp_destroy_connection(state) }
    }

    /// Connects, logs in and opens the channels. Throws `.brokerUnreachable` or
    /// `.authenticationRefused` with the broker's reason.
    public static func connect(_ options: ConnectionOptions) async throws -> AMQPConnection {
        let connection = AMQPConnection(options: options)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let thread = Thread { connection.threadMain(connected: continuation) }
            thread.name = "amqp-\(options.host):\(options.port)"
            thread.start()
        }
        return connection
    }

    /// Why the connection is no longer usable, or nil while it is.
    public var closedReason: AMQPError? {
        lock.lock()
        defer { lock.unlock() }
        return failure
    }

    public var isOpen: Bool { closedReason == nil }

    /// Closes the connection politely; pending operations fail with `.connectionLost`.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            enqueue(onFailure: { _ in continuation.resume() }) { connection in
                connection.stopRequested = true
                connection.closeWaiters.append(continuation)
            }
        }
    }

    // MARK: topology

    public func declareExchange(_ name: String, type: ExchangeType, durable: Bool = true, autoDelete: Bool = false) async throws {
        try await perform { connection in
            try connection.rpc(Self.controlChannel, "declare exchange \(name)") { state in
                AMQPBytes.with(name) { exchange in
                    AMQPBytes.with(type.rawValue) { kind in
                        amqp_exchange_declare(state, Self.controlChannel, exchange, kind, 0, durable ? 1 : 0, autoDelete ? 1 : 0, 0,
                                              amqp_empty_table) != nil
                    }
                }
            }
        }
    }

    public func deleteExchange(_ name: String) async throws {
        try await perform { connection in
            try connection.rpc(Self.controlChannel, "delete exchange \(name)") { state in
                AMQPBytes.with(name) { amqp_exchange_delete(state, Self.controlChannel, $0, 0) != nil }
            }
        }
    }

    /// Declares a queue and returns its name (the broker names it when `name` is empty).
    /// `messageTTL` drops messages older than that; `expires` deletes the queue after that long unused.
    @discardableResult
    public func declareQueue(_ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
                             messageTTL: Duration? = nil, expires: Duration? = nil) async throws -> String {
        try await perform { connection in
            var arguments: [(String, Int32)] = []
            if let messageTTL { arguments.append(("x-message-ttl", Self.milliseconds(messageTTL))) }
            if let expires { arguments.append(("x-expires", Self.milliseconds(expires))) }
            var declared = name
            try connection.rpc(Self.controlChannel, "declare queue \(name)") { state in
                AMQPBytes.with(name) { queue in
                    AMQPTable.withIntegers(arguments) { table in
                        guard let ok = amqp_queue_declare(state, Self.controlChannel, queue, 0, durable ? 1 : 0, exclusive ? 1 : 0,
                                                          autoDelete ? 1 : 0, table) else { return false }
                        declared = AMQPBytes.string(ok.pointee.queue)
                        return true
                    }
                }
            }
            return declared
        }
    }

    public func deleteQueue(_ name: String) async throws {
        try await perform { connection in
            try connection.rpc(Self.controlChannel, "delete queue \(name)") { state in
                AMQPBytes.with(name) { amqp_queue_delete(state, Self.controlChannel, $0, 0, 0) != nil }
            }
        }
    }

    public func bindQueue(_ queue: String, exchange: String, routingKey: String) async throws {
        try await perform { connection in
            try connection.rpc(Self.controlChannel, "bind \(queue) to \(exchange)") { state in
                AMQPBytes.with(queue) { q in
                    AMQPBytes.with(exchange) { e in
                        AMQPBytes.with(routingKey) { k in
                            amqp_queue_bind(state, Self.controlChannel, q, e, k, amqp_empty_table) != nil
                        }
                    }
                }
            }
        }
    }

    // MARK: publishing

    /// Publishes a message and returns once the broker has confirmed it (publisher
    /// confirms): from then on the broker is responsible for it. With `mandatory`, a
    /// message no queue takes fails with `.unroutable` instead of vanishing.
    public func publish(exchange: String, routingKey: String, body: [UInt8], properties: MessageProperties = .init(),
                        mandatory: Bool = false) async throws {
        let messageID = properties.messageID ?? UUID().uuidString
        var properties = properties
        properties.messageID = messageID
        let sendProperties = properties
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            enqueue(onFailure: { continuation.resume(throwing: $0) }) { connection in
                do {
                    try connection.ensureChannel(Self.publishChannel)
                    connection.publishSequence += 1
                    let sequence = connection.publishSequence
                    let rc = AMQPBytes.with(exchange) { e in
                        AMQPBytes.with(routingKey) { k in
                            AMQPBytes.withBody(body) { b in
                                AMQPProperties.with(sendProperties) { p in
                                    amqp_basic_publish(connection.state, Self.publishChannel, e, k, mandatory ? 1 : 0, 0, p, b)
                                }
                            }
                        }
                    }
                    guard rc == AMQP_STATUS_OK.rawValue else {
                        connection.publishSequence -= 1
                        throw connection.fail(AMQPError.connectionLost(reason: Self.errorString(rc)))
                    }
                    connection.pendingConfirms[sequence] = (messageID, exchange, routingKey, continuation)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    // MARK: consuming

    /// Starts consuming `queue` with manual acknowledgements; at most `prefetch` messages
    /// are unacknowledged at once. The stream ends with an error if the connection dies
    /// (unacknowledged messages then go back to the queue).
    public func consume(_ queue: String, prefetch: UInt16 = 64, exclusive: Bool = false) async throws -> AsyncThrowingStream<Delivery, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: Delivery.self)
        let tag: String = try await perform { connection in
            try connection.ensureChannel(Self.consumeChannel)
            try connection.rpc(Self.consumeChannel, "set prefetch") { state in
                amqp_basic_qos(state, Self.consumeChannel, 0, prefetch, 0) != nil
            }
            var tag = ""
            try connection.rpc(Self.consumeChannel, "consume \(queue)") { state in
                AMQPBytes.with(queue) { q in
                    guard let ok = amqp_basic_consume(state, Self.consumeChannel, q, amqp_empty_bytes, 0, 0, exclusive ? 1 : 0,
                                                      amqp_empty_table) else { return false }
                    tag = AMQPBytes.string(ok.pointee.consumer_tag)
                    return true
                }
            }
            connection.consumers[tag] = continuation
            return tag
        }
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            self.enqueue(onFailure: { _ in }) { connection in
                guard connection.consumers.removeValue(forKey: tag) != nil, connection.openChannels.contains(Self.consumeChannel) else { return }
                _ = try? connection.rpc(Self.consumeChannel, "cancel consumer") { state in
                    AMQPBytes.with(tag) { amqp_basic_cancel(state, Self.consumeChannel, $0) != nil }
                }
            }
        }
        return stream
    }

    enum AckOutcome { case ack, requeue, discard }

    func acknowledge(_ deliveryTag: UInt64, outcome: AckOutcome) async throws {
        try await perform { connection in
            guard connection.openChannels.contains(Self.consumeChannel) else {
                // The channel the message came on is gone; the broker requeues it by itself.
                throw AMQPError.channelClosed(code: 0, text: "the delivery's channel was closed; the broker will redeliver it")
            }
            let rc: Int32
            switch outcome {
            case .ack: rc = amqp_basic_ack(connection.state, Self.consumeChannel, deliveryTag, 0)
            case .requeue: rc = amqp_basic_reject(connection.state, Self.consumeChannel, deliveryTag, 1)
            case .discard: rc = amqp_basic_reject(connection.state, Self.consumeChannel, deliveryTag, 0)
            }
            guard rc == AMQP_STATUS_OK.rawValue else { throw connection.fail(.connectionLost(reason: Self.errorString(rc))) }
        }
    }

    // MARK: the connection thread

    /// Runs `body` on the connection thread and returns its result.
    private func perform<T: Sendable>(_ body: @escaping (AMQPConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            enqueue(onFailure: { continuation.resume(throwing: $0) }) { connection in
                continuation.resume(with: Result { try body(connection) })
            }
        }
    }

    private func enqueue(onFailure: @escaping (AMQPError) -> Void, _ job: @escaping (AMQPConnection) -> Void) {
        lock.lock()
        if let failure {
            lock.unlock()
            onFailure(failure)
            return
        }
        jobs.append((job, onFailure))
        lock.unlock()
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    private func threadMain(connected: CheckedContinuation<Void, any Error>) {
        do {
            try open()
        } catch let error as AMQPError {
            markFailed(error)
            connected.resume(throwing: error)
            return
        } catch {
            connected.resume(throwing: error)
            return
        }
        connected.resume()
        run()
    }

    private func open() throws {
        guard let state = amqp_new_connection() else { throw AMQPError.library(operation: "new connection", reason: "out of memory") }
        self.state = state
        guard let socket = amqp_tcp_socket_new(state) else { throw AMQPError.library(operation: "new socket", reason: "out of memory") }
        var timeout = Self.timeval(options.connectTimeout)
        let rc = amqp_socket_open_noblock(socket, options.host, Int32(options.port), &timeout)
        guard rc == AMQP_STATUS_OK.rawValue else {
            throw AMQPError.brokerUnreachable(host: options.host, port: options.port, reason: Self.errorString(rc))
        }
        var rpcTimeout = Self.timeval(options.operationTimeout)
        amqp_set_rpc_timeout(state, &rpcTimeout)
        let login = petrel_amqp_login_plain(state, options.virtualHost, 0, 131_072, Int32(options.heartbeat),
                                            options.user, options.password)
        if login.reply_type != AMQP_RESPONSE_NORMAL {
            let reason: String
            switch login.reply_type {
            case AMQP_RESPONSE_SERVER_EXCEPTION:
                reason = Self.describe(serverReply: login.reply)
            default:
                reason = Self.errorString(login.library_error)
            }
            throw AMQPError.authenticationRefused(user: options.user, virtualHost: options.virtualHost, reason: reason)
        }
        for channel in [Self.publishChannel, Self.consumeChannel, Self.controlChannel] { try ensureChannel(channel) }
    }

    /// Opens `channel` if it is not open (after a broker-side close, for example).
    private func ensureChannel(_ channel: UInt16) throws {
        guard !openChannels.contains(channel) else { return }
        try rpc(channel, "open channel \(channel)", reopen: false) { state in amqp_channel_open(state, channel) != nil }
        openChannels.insert(channel)
        if channel == Self.publishChannel {
            try rpc(channel, "enable publisher confirms", reopen: false) { state in amqp_confirm_select(state, channel) != nil }
            publishSequence = 0
        }
    }

    /// Runs a synchronous librabbitmq method call; maps its failure to an AMQPError.
    private func rpc(_ channel: UInt16, _ operation: String, reopen: Bool = true, _ call: (amqp_connection_state_t) -> Bool) throws {
        if reopen { try ensureChannel(channel) }
        guard let state else { throw AMQPError.connectionLost(reason: "not connected") }
        if call(state) { return }
        let reply = amqp_get_rpc_reply(state)
        switch reply.reply_type {
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == Method.channelClose {
                let close = reply.reply.decoded!.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                var ok = amqp_channel_close_ok_t()
                amqp_send_method(state, channel, Method.channelCloseOK, &ok)
                channelClosed(channel, AMQPError.channelClosed(code: Int(close.reply_code), text: AMQPBytes.string(close.reply_text)))
                throw AMQPError.channelClosed(code: Int(close.reply_code), text: AMQPBytes.string(close.reply_text))
            }
            throw fail(connectionClose(reply.reply))
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw fail(.connectionLost(reason: "\(operation): \(Self.errorString(reply.library_error))"))
        default:
            throw AMQPError.library(operation: operation, reason: "no reply")
        }
    }

    private func connectionClose(_ method: amqp_method_t) -> AMQPError {
        if method.id == Method.connectionClose, let decoded = method.decoded {
            let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            var ok = amqp_connection_close_ok_t()
            amqp_send_method(state, 0, Method.connectionCloseOK, &ok)
            return .connectionClosed(code: Int(close.reply_code), text: AMQPBytes.string(close.reply_text))
        }
        return .connectionLost(reason: "unexpected method 0x\(String(method.id, radix: 16))")
    }

    /// The broker closed `channel`: fail whatever depended on it.
    private func channelClosed(_ channel: UInt16, _ error: AMQPError) {
        openChannels.remove(channel)
        if channel == Self.publishChannel {
            let pending = pendingConfirms
            pendingConfirms.removeAll()
            for (_, entry) in pending { entry.done.resume(throwing: error) }
        }
        if channel == Self.consumeChannel {
            let streams = consumers
            consumers.removeAll()
            for (_, stream) in streams { stream.finish(throwing: error) }
        }
    }

    /// Records a fatal error, and returns it for throwing.
    @discardableResult
    private func fail(_ error: AMQPError) -> AMQPError {
        if error.isConnectionFatal { stopRequested = true; markFailed(error) }
        return error
    }

    private func markFailed(_ error: AMQPError) {
        lock.lock()
        if failure == nil { failure = error }
        lock.unlock()
    }

    private func run() {
        while !stopRequested {
            lock.lock()
            let batch = jobs
            jobs.removeAll()
            lock.unlock()
            for job in batch {
                if stopRequested {
                    job.fail(closedReason ?? .connectionLost(reason: "closed by Petrel"))
                } else {
                    job.run(self)
                }
            }
            if stopRequested { break }
            guard let state else { break }
            if amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0 {
                readFrame()
                continue
            }
            var fds = [pollfd(fd: amqp_get_sockfd(state), events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
            let interval = options.heartbeat > 0 ? max(options.heartbeat * 1000 / 4, 100) : 1000
            let ready = poll(&fds, 2, Int32(interval))
            if ready < 0 && errno != EINTR {
                fail(.connectionLost(reason: String(cString: strerror(errno))))
                break
            }
            if fds[1].revents & Int16(POLLIN) != 0 {
                var value: UInt64 = 0
                _ = read(wakeFD, &value, 8)
            }
            // Read what arrived; with nothing to read this still sends a due heartbeat and
            // notices a broker that has gone silent.
            if fds[0].revents != 0 || ready == 0 { readFrame() }
        }
        shutDown()
    }

    private func shutDown() {
        let error = closedReason ?? .connectionLost(reason: "closed by Petrel")
        if closedReason == nil, let state {
            // A polite close; failures here do not matter any more.
            amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        }
        markFailed(error)
        for (_, entry) in pendingConfirms { entry.done.resume(throwing: error) }
        pendingConfirms.removeAll()
        for (_, stream) in consumers { stream.finish(throwing: error) }
        consumers.removeAll()
        lock.lock()
        let remaining = jobs
        jobs.removeAll()
        lock.unlock()
        for job in remaining { job.fail(error) }
        openChannels.removeAll()
        for waiter in closeWaiters { waiter.resume() }
        closeWaiters.removeAll()
    }

    /// Reads one incoming message or method frame, without waiting.
    private func readFrame() {
        guard let state else { return }
        amqp_maybe_release_buffers(state)
        var envelope = amqp_envelope_t()
        var zero = Foundation.timeval(tv_sec: 0, tv_usec: 0)
        let result = amqp_consume_message(state, &envelope, &zero, 0)
        if result.reply_type == AMQP_RESPONSE_NORMAL {
            defer { amqp_destroy_envelope(&envelope) }
            deliver(envelope)
            return
        }
        guard result.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION else { return }
        if result.library_error == AMQP_STATUS_TIMEOUT.rawValue { return }
        guard result.library_error == AMQP_STATUS_UNEXPECTED_STATE.rawValue else {
            fail(.connectionLost(reason: Self.errorString(result.library_error)))
            return
        }
        var frame = amqp_frame_t()
        let rc = amqp_simple_wait_frame_noblock(state, &frame, &zero)
        guard rc == AMQP_STATUS_OK.rawValue else {
            if rc != AMQP_STATUS_TIMEOUT.rawValue { fail(.connectionLost(reason: Self.errorString(rc))) }
            return
        }
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { return }
        handle(method: frame.payload.method, channel: frame.channel)
    }

    private func handle(method: amqp_method_t, channel: UInt16) {
        switch method.id {
        case Method.basicAck:
            let ack = method.decoded!.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            confirm(upTo: ack.delivery_tag, multiple: ack.multiple != 0, nacked: false)
        case Method.basicNack:
            let nack = method.decoded!.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            confirm(upTo: nack.delivery_tag, multiple: nack.multiple != 0, nacked: true)
        case Method.basicReturn:
            // The returned message's content follows; its message id tells which publish it was.
            var message = amqp_message_t()
            let reply = amqp_read_message(state, channel, &message, 0)
            if reply.reply_type == AMQP_RESPONSE_NORMAL {
                if message.properties._flags & PropertyFlag.messageID != 0 {
                    returnedMessageIDs.insert(AMQPBytes.string(message.properties.message_id))
                }
                amqp_destroy_message(&message)
            }
        case Method.basicCancel:
            let cancel = method.decoded!.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            let tag = AMQPBytes.string(cancel.consumer_tag)
            consumers.removeValue(forKey: tag)?.finish(throwing: AMQPError.channelClosed(code: 0, text: "the broker cancelled consumer \(tag) (queue deleted?)"))
        case Method.channelClose:
            let close = method.decoded!.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            var ok = amqp_channel_close_ok_t()
            amqp_send_method(state, channel, Method.channelCloseOK, &ok)
            channelClosed(channel, .channelClosed(code: Int(close.reply_code), text: AMQPBytes.string(close.reply_text)))
        case Method.connectionClose:
            fail(connectionClose(method))
        default:
            break
        }
    }

    private func confirm(upTo tag: UInt64, multiple: Bool, nacked: Bool) {
        let tags = multiple ? pendingConfirms.keys.filter { $0 <= tag } : [tag]
        for sequence in tags {
            guard let entry = pendingConfirms.removeValue(forKey: sequence) else { continue }
            if nacked {
                entry.done.resume(throwing: AMQPError.publishNacked)
            } else if returnedMessageIDs.remove(entry.id) != nil {
                entry.done.resume(throwing: AMQPError.unroutable(exchange: entry.exchange, routingKey: entry.key))
            } else {
                entry.done.resume()
            }
        }
    }

    private func deliver(_ envelope: amqp_envelope_t) {
        let tag = AMQPBytes.string(envelope.consumer_tag)
        guard let consumer = consumers[tag] else {
            // Its consumer was cancelled meanwhile: give the message back.
            amqp_basic_reject(state, Self.consumeChannel, envelope.delivery_tag, 1)
            return
        }
        let body = AMQPBytes.array(envelope.message.body)
        consumer.yield(Delivery(body: body, properties: AMQPProperties.read(envelope.message.properties),
                                exchange: AMQPBytes.string(envelope.exchange), routingKey: AMQPBytes.string(envelope.routing_key),
                                redelivered: envelope.redelivered != 0, deliveryTag: envelope.delivery_tag, connection: self))
    }

    // MARK: helpers

    static func errorString(_ code: Int32) -> String { String(cString: amqp_error_string2(code)) }

    static func describe(serverReply method: amqp_method_t) -> String {
        if method.id == Method.connectionClose, let decoded = method.decoded {
            let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            return "\(close.reply_code) \(AMQPBytes.string(close.reply_text))"
        }
        return "server exception 0x\(String(method.id, radix: 16))"
    }

    static func timeval(_ duration: Duration) -> Foundation.timeval {
        let (seconds, attoseconds) = duration.components
        return Foundation.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }

    static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}

/// AMQP 0-9-1 method ids (class << 16 | method), from the protocol specification.
enum Method {
    static let connectionClose: amqp_method_number_t = 0x000A_0032
    static let connectionCloseOK: amqp_method_number_t = 0x000A_0033
    static let channelClose: amqp_method_number_t = 0x0014_0028
    static let channelCloseOK: amqp_method_number_t = 0x0014_0029
    static let basicCancel: amqp_method_number_t = 0x003C_001E
    static let basicReturn: amqp_method_number_t = 0x003C_0032
    static let basicAck: amqp_method_number_t = 0x003C_0050
    static let basicNack: amqp_method_number_t = 0x003C_0078
}

/// Basic-properties presence flags, from the protocol specification.
enum PropertyFlag {
    static let contentType: amqp_flags_t = 1 << 15
    static let deliveryMode: amqp_flags_t = 1 << 12
    static let correlationID: amqp_flags_t = 1 << 10
    static let replyTo: amqp_flags_t = 1 << 9
    static let expiration: amqp_flags_t = 1 << 8
    static let messageID: amqp_flags_t = 1 << 7
}
