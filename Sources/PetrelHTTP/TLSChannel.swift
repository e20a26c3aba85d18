import HummingbirdCore
import NIOCore

extension PetrelHTTPListener {
    /// Any child channel (HTTP/1.1 with a WebSocket upgrade, say) behind TLS with the
    /// listener's current certificate, as the API listener serves it.
    public static func tls(_ base: some ServerChildChannel, certificate: ListenerCertificate) -> any ServerChildChannel {
        ReloadableTLSChannel(base: base, certificate: certificate)
    }
}
