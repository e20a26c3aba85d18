import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NodeCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// The node's metadata agent, in the daemon (no haproxy, no separate process): one listener
/// on 169.254.169.254:80 opened inside each `qdhcp-` namespace. A request is tied to an
/// instance by its source address on that network — never by anything the guest sends — and
/// forwarded to the controller's metadata API with Nova's headers and the instance id signed
/// with `[metadata] shared_secret`.
final class MetadataProxy: @unchecked Sendable {
    static let address = "169.254.169.254"

    /// Who a guest is: the instance and project of the port holding an address.
    struct Guest: Sendable {
        var instanceID: String
        var projectID: String
    }

    let controllerURL: String
    let secret: String
    let client: HTTPClient
    let logger: Logger
    private let lock = NSLock()
    private var listeners: [String: Channel] = [:]
    /// network → (address → guest), replaced at each sync of the network.
    private var guests: [String: [String: Guest]] = [:]

    /// `cafile` verifies an https controller (`[service_user] cafile`; nil: the system's trust store).
    init(controllerURL: String, secret: String, cafile: String? = nil, logger: Logger) throws {
        self.controllerURL = controllerURL.hasSuffix("/") ? String(controllerURL.dropLast()) : controllerURL
        self.secret = secret
        self.logger = logger
        client = HTTPClient(eventLoopGroupProvider: .singleton,
                            configuration: .init(tlsConfiguration: try ControllerHTTPClient.tlsConfiguration(cafile: cafile)))
    }

    func setGuests(_ network: String, _ table: [String: Guest]) {
        lock.withLock { guests[network] = table }
    }

    func guest(network: String, address: String) -> Guest? {
        lock.withLock { guests[network]?[address] }
    }

    var serving: Set<String> { lock.withLock { Set(listeners.keys) } }

    /// Serves `network` from `socket` (already listening inside its namespace); idempotent.
    func serve(network: String, socket: Int32) async throws {
        if lock.withLock({ listeners[network] != nil }) {
            close(socket)
            return
        }
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(proxy: self, network: network))
                }
            }
            .withBoundSocket(socket).get()
        lock.withLock { listeners[network] = channel }
    }

    func stop(network: String) async {
        let channel = lock.withLock { () -> Channel? in
            guests[network] = nil
            return listeners.removeValue(forKey: network)
        }
        try? await channel?.close()
    }

    func shutdown() async {
        for network in serving { await stop(network: network) }
        try? await client.shutdown()
    }

    static func signature(_ instanceID: String, secret: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Data(instanceID.utf8), using: SymmetricKey(data: Data(secret.utf8)))
            .map { String(format: "%02x", $0) }.joined()
    }

    /// Forwards one guest request; the answer is the controller's, or a 404 for an address
    /// that is no instance's.
    func forward(network: String, source: String, head: HTTPRequestHead, body: ByteBuffer?) async -> (HTTPResponseStatus, String, ByteBuffer) {
        guard let guest = guest(network: network, address: source) else {
            logger.info("metadata request from an address no instance holds", metadata: ["network": "\(network)", "source": "\(source)"])
            return (.notFound, "text/plain", ByteBuffer(string: "404 Not Found\n"))
        }
        var request = HTTPClientRequest(url: controllerURL + "/metadata" + head.uri)
        request.method = head.method == .POST ? .POST : .GET
        request.headers.add(name: "X-Instance-ID", value: guest.instanceID)
        request.headers.add(name: "X-Tenant-ID", value: guest.projectID)
        request.headers.add(name: "X-Forwarded-For", value: source)
        request.headers.add(name: "X-Instance-ID-Signature", value: Self.signature(guest.instanceID, secret: secret))
        if let type = head.headers.first(name: "Content-Type") { request.headers.add(name: "Content-Type", value: type) }
        if let body { request.body = .bytes(body) }
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            return (HTTPResponseStatus(statusCode: Int(response.status.code)), response.headers.first(name: "Content-Type") ?? "text/plain", bytes)
        } catch {
            logger.warning("metadata request not forwarded", metadata: ["instance": "\(guest.instanceID)", "error": "\(error)"])
            return (.badGateway, "text/plain", ByteBuffer(string: "502 Bad Gateway\n"))
        }
    }

    /// One connection's requests (HTTP/1.1, one at a time).
    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let proxy: MetadataProxy
        let network: String
        var head: HTTPRequestHead?
        var body: ByteBuffer?

        init(proxy: MetadataProxy, network: String) {
            self.proxy = proxy
            self.network = network
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = nil
            case .body(var part):
                if body == nil { body = part } else { body!.writeBuffer(&part) }
            case .end:
                guard let head else { return }
                let source = context.remoteAddress?.ipAddress ?? ""
                let body = self.body
                let proxy = self.proxy, network = self.network
                let loop = context.eventLoop
                let bound = NIOLoopBound(context, eventLoop: loop)
                Task {
                    let (status, type, bytes) = await proxy.forward(network: network, source: source, head: head, body: body)
                    loop.execute {
                        let context = bound.value
                        var headers = HTTPHeaders()
                        headers.add(name: "Content-Type", value: type)
                        headers.add(name: "Content-Length", value: String(bytes.readableBytes))
                        let keepAlive = head.isKeepAlive
                        if !keepAlive { headers.add(name: "Connection", value: "close") }
                        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
                        context.write(self.wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
                        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                            if !keepAlive { context.close(promise: nil) }
                        }
                    }
                }
            }
        }
    }
}
