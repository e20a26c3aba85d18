import Compute
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOPosix
import PetrelCore
import PetrelHTTP

/// The console proxy: nova-novncproxy and nova-serialproxy in one listener. It serves noVNC's
/// page and files, and on `/?token=…` upgrades to a WebSocket once the token (single-use,
/// short-lived, in the database so any controller takes it) is taken, then bridges the
/// WebSocket's binary frames to the instance's VNC or serial port on its host and back.
public struct ConsoleProxy: Sendable {
    let tokens: ConsoleTokens
    let listen: HostPort
    let webDirectory: String
    /// Host names (lower case) a browser page may open a console from, besides the proxy's own.
    let allowedOrigins: [String]
    let logger: Logger

    public init(tokens: ConsoleTokens, listen: HostPort, webDirectory: String, allowedOrigins: [String] = [], logger: Logger) {
        self.tokens = tokens
        self.listen = listen
        self.webDirectory = webDirectory
        self.allowedOrigins = allowedOrigins
        self.logger = logger
    }

    /// Whether a browser's `Origin` may open a console here: a page of the proxy's own host (the
    /// one the request names) or of an allowed one. Clients that send no Origin are not browsers.
    func originAllowed(_ request: Request) -> Bool {
        guard let origin = request.headers[.origin] else { return true }
        guard let originHost = URLComponents(string: origin)?.host?.lowercased() else { return false }
        let authority = request.head.authority ?? ""
        let host: Substring = authority.hasPrefix("[")
            ? authority.dropFirst().prefix { $0 != "]" }
            : authority.prefix { $0 != ":" }
        let bare = originHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return bare == host.lowercased() || allowedOrigins.contains(bare)
    }

    /// What a WebSocket request learnt when its token was taken, for the upgraded connection.
    final class Target: @unchecked Sendable {
        private let lock = NSLock()
        private var console: ConsoleToken?
        var value: ConsoleToken? {
            get { lock.withLock { console } }
            set { lock.withLock { console = newValue } }
        }
    }

    struct Context: RequestContext, WebSocketRequestContext {
        var coreContext: CoreRequestContextStorage
        let webSocket: WebSocketHandlerReference<Context>
        let target = Target()

        init(source: ApplicationRequestContextSource) {
            coreContext = .init(source: source)
            webSocket = .init()
        }
    }

    /// The listener, over TLS with `certificate` when given (the API's).
    public func application(certificate: ListenerCertificate?) -> some ApplicationProtocol {
        let sockets = Router(context: Context.self)
        sockets.ws("/") { request, context in
            guard let token = request.uri.queryParameters.get("token"), !token.isEmpty else { return .dontUpgrade }
            // Checked before the token is taken: a page elsewhere cannot use up a user's token.
            guard originAllowed(request) else {
                logger.warning("console connection refused: Origin \(request.headers[.origin] ?? "") is not this proxy's host nor in [console] allowed_origins")
                return .dontUpgrade
            }
            guard let console = try await tokens.take(token) else {
                logger.info("console connection refused: the token is invalid, expired or already used")
                return .dontUpgrade
            }
            context.target.value = console
            // noVNC (and websockify's clients) ask for the `binary` subprotocol.
            let asked = request.headers[.secWebSocketProtocol]?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? []
            return .upgrade(asked.contains("binary") ? [.secWebSocketProtocol: "binary"] : [:])
        } onUpgrade: { inbound, outbound, context in
            guard let console = context.requestContext.target.value else { return }
            await bridge(console, inbound: inbound, outbound: outbound)
        }
        let pages = Router(context: Context.self)
        pages.add(middleware: FileMiddleware(webDirectory, searchForIndexHtml: false, logger: logger))
        pages.get("/") { request, _ -> Response in
            // A WebSocket request arrives here only when its token was refused.
            if request.headers[.upgrade] != nil || request.uri.queryParameters.get("token") != nil {
                return Response(status: .forbidden, headers: [.contentType: "text/plain"],
                                body: .init(byteBuffer: ByteBuffer(string: "The token has expired or is invalid.\n")))
            }
            return Response(status: .found, headers: [.location: "/vnc_lite.html"])
        }
        let responder = sockets.buildResponder()
        let server = HTTPServerBuilder { http in
            let channel = HTTP1WebSocketUpgradeChannel(responder: http, webSocketResponder: responder, configuration: .init())
            if let certificate { return PetrelHTTPListener.tls(channel, certificate: certificate) }
            return channel
        }
        return Application(router: pages, server: server,
                           configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "petrel-console-proxy"),
                           logger: logger)
    }

    /// Copies bytes both ways between the WebSocket and the console's TCP port until either side closes.
    func bridge(_ console: ConsoleToken, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        var log = logger
        log[metadataKey: "instance"] = "\(console.instanceID)"
        log[metadataKey: "console"] = "\(console.consoleType)"
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .connect(host: console.host, port: console.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            log.info("console connected", metadata: ["target": "\(console.host):\(console.port)"])
            try await channel.executeThenClose { fromConsole, toConsole in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await buffer in fromConsole { try await outbound.write(.binary(buffer)) }
                        // The console went away: the client hears it, and its close ends the other direction.
                        try? await outbound.close(.normalClosure, reason: "console closed")
                    }
                    group.addTask {
                        for try await message in inbound.messages(maxSize: 1 << 20) {
                            switch message {
                            case .binary(let buffer): try await toConsole.write(buffer)
                            case .text(let text): try await toConsole.write(ByteBuffer(string: text))
                            }
                        }
                    }
                    // Either side closing ends both.
                    try await group.next()
                    group.cancelAll()
                }
            }
            log.info("console closed")
        } catch {
            log.warning("console connection ended", metadata: ["target": "\(console.host):\(console.port)", "error": "\(error)"])
        }
    }
}
