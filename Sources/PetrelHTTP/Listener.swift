import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import PetrelCore

/// Builds the HTTP listeners of both programs. Every listener answers `/metrics`
/// (Prometheus text) and `/healthcheck` (oslo.middleware's plain "OK").
public enum PetrelHTTPListener {
    public static func observabilityRouter<Context: RequestContext>(context: Context.Type = BasicRequestContext.self,
                                                                    options: RouterOptions = []) -> Router<Context> {
        let router = Router(context: context, options: options)
        router.add(middleware: MetricsMiddleware())
        router.get("/metrics") { _, _ in
            Response(status: .ok,
                     headers: [.contentType: PetrelMetrics.contentType],
                     body: ResponseBody(byteBuffer: ByteBuffer(bytes: PetrelMetrics.render())))
        }
        router.get("/healthcheck") { _, _ in "OK" }
        return router
    }

    /// An application (a swift-service-lifecycle service) listening on `address`: HTTP/1.1,
    /// over TLS 1.2+ with `tls`'s current certificate when given.
    public static func application<Context: RequestContext>(router: Router<Context>, address: HostPort, serverName: String,
                                                            tls: ListenerCertificate? = nil,
                                                            logger: Logger) -> some ApplicationProtocol where Context.Source == ApplicationRequestContextSource {
        let server: HTTPServerBuilder = if let tls {
            HTTPServerBuilder { responder in
                ReloadableTLSChannel(base: HTTP1Channel(responder: responder, configuration: .init()), certificate: tls)
            }
        } else {
            .http1()
        }
        return Application(router: router, server: server,
                           configuration: .init(address: .hostname(address.host, port: address.port), serverName: serverName),
                           logger: logger)
    }
}
