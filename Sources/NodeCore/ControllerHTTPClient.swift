import AsyncHTTPClient
import NIOSSL
import Synchronization

/// The HTTP client a node reaches the controller with (identity, image transfers, the
/// metadata proxy): HTTPS verified against `[service_user] cafile` when set (as keystoneauth's
/// `cafile`: that bundle alone), else against the system's trust store; TLS 1.2 or newer.
public enum ControllerHTTPClient {
    /// A CA bundle that cannot be used, with the file and the reason.
    public struct CAFileError: Error, CustomStringConvertible {
        public let description: String
    }

    /// TLS towards the controller: TLS 1.2 or newer, the peer's certificate and name verified,
    /// against the CA bundle alone when one is given.
    public static func tlsConfiguration(cafile: String?) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        if let cafile {
            let roots: [NIOSSLCertificate]
            do {
                roots = try NIOSSLCertificate.fromPEMFile(cafile)
            } catch {
                throw CAFileError(description: "[service_user] cafile \(cafile): cannot read PEM certificates from it: \(error)")
            }
            guard !roots.isEmpty else { throw CAFileError(description: "[service_user] cafile \(cafile) holds no PEM certificate") }
            tls.trustRoots = .certificates(roots)
        }
        return tls
    }

    private static let clients = Mutex<[String: HTTPClient]>([:])

    /// One client per CA bundle for the node's lifetime, as `HTTPClient.shared` is without one
    /// (never shut down: it lives as long as the process). The bundle is read at the first call.
    public static func shared(cafile: String?) throws -> HTTPClient {
        guard let cafile else { return HTTPClient.shared }
        return try clients.withLock { clients in
            if let client = clients[cafile] { return client }
            // HTTPClient.shared's configuration (redirects, decompression, timeouts) with the bundle.
            var configuration = HTTPClient.Configuration.singletonConfiguration
            configuration.tlsConfiguration = try tlsConfiguration(cafile: cafile)
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[cafile] = client
            return client
        }
    }
}
