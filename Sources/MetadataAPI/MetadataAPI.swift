import Compute
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PetrelHTTP

/// Nova's metadata API under `/metadata`, for the metadata proxies of the nodes: a guest asks
/// 169.254.169.254, the node's proxy in that network's namespace names the instance in
/// `X-Instance-ID` (with `X-Tenant-ID`, `X-Forwarded-For`) and signs the id with the shared
/// secret, as Neutron's metadata agent does for Nova. The signature is the only credential:
/// there is no token, so an unsigned or wrongly signed request learns nothing.
public struct MetadataAPI: Sendable {
    public let metadata: MetadataService
    /// `[metadata] shared_secret`; without it every instance request is refused.
    let sharedSecret: String?
    let logger: Logger

    public static let instanceID = HTTPField.Name("X-Instance-ID")!
    public static let tenantID = HTTPField.Name("X-Tenant-ID")!
    public static let signature = HTTPField.Name("X-Instance-ID-Signature")!
    public static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    public init(metadata: MetadataService, sharedSecret: String?, logger: Logger) {
        self.metadata = metadata
        self.sharedSecret = sharedSecret.flatMap { $0.isEmpty ? nil : $0 }
        self.logger = logger
        if self.sharedSecret == nil {
            logger.warning("[metadata] shared_secret is not set: the metadata API refuses every instance request")
        }
    }

    /// What a proxy sends in `X-Instance-ID-Signature`: the lowercase hex HMAC-SHA256 of the
    /// instance id keyed with the shared secret (Nova's and Neutron's scheme).
    public static func sign(instanceID: String, secret: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data(instanceID.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return code.map { String(format: "%02x", $0) }.joined()
    }

    public func register(on router: Router<APIRequestContext>) {
        let group = router.group("metadata")
        // The root lists the EC2 versions to anyone, as Nova does; everything below needs a
        // signed instance.
        group.get { _, _ in
            text(.ok, Data((InstanceMetadata.ec2Versions + ["latest"]).joined(separator: "\n").utf8))
        }
        group.get("**") { request, _ in await serve(request, post: false) }
        group.post("**") { request, _ in await serve(request, post: true) }
    }

    /// A refusal, logged, in Nova's words; nil when the request is the instance's own.
    struct Refusal: Error {
        let status: HTTPResponse.Status
        let message: String
    }

    func serve(_ request: Request, post: Bool) async -> Response {
        let path = String(request.uri.path.dropFirst("/metadata".count))
        do {
            let (instance, address) = try await signedInstance(request, path: path)
            let item: InstanceMetadata.Item
            do {
                item = try instance.lookup(path, forwardedFor: address)
            } catch {
                return text(.notFound, Data("404 Not Found\n\nThe resource could not be found.".utf8))
            }
            switch (item, post) {
            case (.document(let data, let json), false):
                return json ? Response(status: .ok, headers: [.contentType: "application/json"],
                                       body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
                    : text(.ok, data)
            case (.password, false):
                return text(.ok, Data((instance.server.metadataPassword ?? "").utf8))
            case (.password, true):
                return try await storePassword(request, instance: instance)
            case (.document, true):
                return text(.methodNotAllowed, Data("405 Method Not Allowed\n\nOnly the password accepts POST.".utf8))
            }
        } catch let refusal as Refusal {
            return text(refusal.status, Data("\(refusal.status.code) \(refusal.status.reasonPhrase)\n\n\(refusal.message)".utf8))
        } catch {
            logger.error("metadata request failed", metadata: ["path": "\(path)", "error": "\(error)"])
            return text(.internalServerError,
                        Data("500 Internal Server Error\n\nAn unknown error has occurred. Please try your request again.".utf8))
        }
    }

    /// The instance the proxy names, once its headers, signature and project check out, and
    /// the guest's address (`X-Forwarded-For`). Nova's order: missing headers (400), the
    /// signature (403), the instance (404), its project (404).
    func signedInstance(_ request: Request, path: String) async throws -> (InstanceMetadata, String?) {
        let ids = request.headers[values: Self.instanceID], tenants = request.headers[values: Self.tenantID]
        let signatures = request.headers[values: Self.signature]
        let address = request.headers[Self.forwardedFor]
        let missing: String? = ids.isEmpty ? "X-Instance-ID header is missing from request."
            : signatures.isEmpty ? "X-Instance-ID-Signature header is missing from request."
            : tenants.isEmpty ? "X-Tenant-ID header is missing from request."
            : ids.count > 1 ? "Multiple X-Instance-ID headers found within request."
            : tenants.count > 1 ? "Multiple X-Tenant-ID headers found within request." : nil
        if let missing {
            logger.warning("metadata request refused", metadata: ["reason": "\(missing)", "path": "\(path)",
                                                                   "forwarded_for": "\(address ?? "-")"])
            throw Refusal(status: .badRequest, message: missing)
        }
        let id = ids[0], tenant = tenants[0]
        guard let sharedSecret else {
            logger.error("metadata request refused: [metadata] shared_secret is not set", metadata: ["instance_id": "\(id)"])
            throw Refusal(status: .forbidden, message: "Invalid proxy request signature.")
        }
        let expected = Self.sign(instanceID: id, secret: sharedSecret)
        guard signatures.count == 1, Self.constantTimeEqual(Array(expected.utf8), Array(signatures[0].utf8)) else {
            logger.warning("metadata request refused: X-Instance-ID-Signature does not match the expected signature",
                           metadata: ["instance_id": "\(id)", "forwarded_for": "\(address ?? "-")"])
            throw Refusal(status: .forbidden, message: "Invalid proxy request signature.")
        }
        guard let instance = try await metadata.instance(id) else {
            logger.warning("metadata request refused: no such instance", metadata: ["instance_id": "\(id)", "forwarded_for": "\(address ?? "-")"])
            throw Refusal(status: .notFound, message: "The resource could not be found.")
        }
        guard instance.server.projectID == tenant else {
            logger.warning("metadata request refused: X-Tenant-ID is not the instance's project",
                           metadata: ["instance_id": "\(id)", "tenant_id": "\(tenant)", "forwarded_for": "\(address ?? "-")"])
            throw Refusal(status: .notFound, message: "The resource could not be found.")
        }
        return (instance, address)
    }

    /// POST `password`: the guest's password, stored once (409 afterwards), at most Nova's
    /// 1020 bytes (400).
    func storePassword(_ request: Request, instance: InstanceMetadata) async throws -> Response {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: MetadataService.maxPasswordSize)
        } catch {
            throw Refusal(status: .badRequest, message: "Request is too large.")
        }
        do {
            try await metadata.setPassword(instance.server.id, String(decoding: buffer.readableBytesView, as: UTF8.self))
        } catch MetadataService.Failure.passwordAlreadySet {
            throw Refusal(status: .conflict, message: "There was a conflict when trying to complete your request.")
        } catch MetadataService.Failure.passwordTooLarge {
            throw Refusal(status: .badRequest, message: "Request is too large.")
        } catch MetadataService.Failure.notFound {
            throw Refusal(status: .badRequest, message: "Instance \(instance.server.id) could not be found.")
        }
        logger.info("metadata password stored", metadata: ["instance_id": "\(instance.server.id)"])
        return text(.ok, Data())
    }

    /// Compares without stopping at the first difference, so the time taken says nothing
    /// about how much of a guessed signature was right.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

func text(_ status: HTTPResponse.Status, _ data: Data) -> Response {
    Response(status: status, headers: [.contentType: "text/plain; charset=UTF-8"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}
