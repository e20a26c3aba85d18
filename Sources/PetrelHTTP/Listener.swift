import Hummingbird
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

    /// An application (a swift-service-lifecycle service) listening on `address`.
    public static func application<Context: RequestContext>(router: Router<Context>, address: HostPort, serverName: String,
                                   logger: Logger) -> some ApplicationProtocol where Context.Source == ApplicationRequestContextSource {
        Application(router: router,
                    configuration: .init(address: .hostname(address.host, port: address.port), serverName: serverName),
                    logger: logger)
    }
}
