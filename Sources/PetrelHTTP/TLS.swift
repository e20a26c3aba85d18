import Foundation
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The certificate and key of an HTTPS listener, as one TLS context that every new
/// connection takes at accept time. `reload()` reads the files again and swaps the context:
/// connections accepted afterwards get the new certificate, open ones keep theirs. A pair
/// that does not load leaves the current one in place.
///
/// (HummingbirdTLS's `TLSChannel` fixes one context for the server's lifetime, so the
/// listener wraps Hummingbird's HTTP/1.1 channel itself: `ReloadableTLSChannel`.)
public final class ListenerCertificate: Sendable {
    /// A certificate or key file that cannot be used, with the file and the reason.
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// What is being served, for the logs.
    public struct Summary: Sendable, CustomStringConvertible {
        /// The leaf certificate's serial number, uppercase hex (as `openssl x509 -serial`).
        public let serial: String
        public let subject: String
        public let notValidAfter: Date

        public var description: String {
            "\(subject) serial \(serial), valid until \(ISO8601DateFormatter().string(from: notValidAfter))"
        }
    }

    public let certificateFile: String
    public let keyFile: String
    private let state: Mutex<(context: NIOSSLContext, summary: Summary)>

    /// Loads the pair; a file that is missing, unreadable, not PEM, or a key that does not
    /// belong to the certificate throws a `LoadError` naming it.
    public init(certificateFile: String, keyFile: String) throws {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        state = Mutex(try Self.load(certificateFile: certificateFile, keyFile: keyFile))
    }

    /// The context new connections are given.
    var context: NIOSSLContext { state.withLock { $0.context } }

    /// What the listener serves now.
    public var summary: Summary { state.withLock { $0.summary } }

    /// Reads both files again and serves them to new connections; on failure nothing changes.
    @discardableResult
    public func reload() throws -> Summary {
        let loaded = try Self.load(certificateFile: certificateFile, keyFile: keyFile)
        state.withLock { $0 = loaded }
        return loaded.summary
    }

    static func load(certificateFile: String, keyFile: String) throws -> (context: NIOSSLContext, summary: Summary) {
        func readable(_ path: String, _ what: String) throws {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw LoadError(description: FileManager.default.fileExists(atPath: path)
                                ? "\(what) \(path) is not readable by this process"
                                : "\(what) \(path) does not exist")
            }
        }
        try readable(certificateFile, "[api] tls_cert_file")
        try readable(keyFile, "[api] tls_key_file")
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        } catch {
            throw LoadError(description: "[api] tls_cert_file \(certificateFile) holds no usable PEM certificate: \(error)")
        }
        guard let leaf = chain.first else {
            throw LoadError(description: "[api] tls_cert_file \(certificateFile) holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw LoadError(description: "[api] tls_key_file \(keyFile) holds no usable unencrypted PEM private key: \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw LoadError(description: "[api] tls_key_file \(keyFile) is not the private key of the certificate in \(certificateFile): \(error)")
        }
        let serial = leaf.serialNumber.map { String(format: "%02X", $0) }.joined()
        return (context, Summary(serial: serial.isEmpty ? "0" : serial, subject: Self.subject(of: leaf),
                                 notValidAfter: Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))))
    }

    /// The common name from the certificate's description (`<NIOSSLCertificate;serial_number=…;common_name=…>`).
    static func subject(of certificate: NIOSSLCertificate) -> String {
        let text = certificate.description
        guard let range = text.range(of: "common_name=") else { return "certificate" }
        let name = text[range.upperBound...].prefix { $0 != ";" && $0 != ">" }
        return name.isEmpty ? "certificate" : "CN=\(name)"
    }
}

/// Hummingbird's HTTP/1.1 child channel behind a TLS handler whose context is the
/// listener's current one when the connection is accepted.
struct ReloadableTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let certificate: ListenerCertificate

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let context = certificate.context
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// On SIGHUP, reads the listener's certificate and key again (`ListenerCertificate.reload`);
/// without TLS there is nothing to re-read and SIGHUP is only logged. Runs until graceful shutdown.
public struct ListenerReload: Service {
    let certificate: ListenerCertificate?
    let logger: Logger

    public init(certificate: ListenerCertificate?, logger: Logger) {
        self.certificate = certificate
        self.logger = logger
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            guard let certificate else {
                logger.info("SIGHUP: the listener serves plain HTTP, no certificate to re-read")
                continue
            }
            do {
                let summary = try certificate.reload()
                logger.notice("SIGHUP: TLS certificate reloaded; new connections get it", metadata: [
                    "certificate": "\(summary)", "tls_cert_file": "\(certificate.certificateFile)"])
            } catch {
                logger.error("SIGHUP: TLS certificate not reloaded, still serving the previous one", metadata: [
                    "error": "\(error)", "serving": "\(certificate.summary)"])
            }
        }
    }
}
