import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import PetrelCore

/// The node's view of the cloud's APIs, as its service user: a token (renewed before it
/// expires), the image endpoint from the token's catalog, and streamed image transfers.
public actor CloudClient {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    let user: PetrelConfig.ServiceUser
    let http: HTTPClient
    let logger: Logger
    typealias Session = (token: String, imageURL: String, expires: Date)
    private var session: Session?
    /// The authentication under way: callers that find the token expired together share one.
    private var authenticating: Task<Session, any Error>?

    /// `http` reaches the controller (`ControllerHTTPClient.shared(cafile:)` verifies it against
    /// `[service_user] cafile`).
    public init(user: PetrelConfig.ServiceUser, http: HTTPClient = .shared, logger: Logger) {
        self.user = user
        self.logger = logger
        self.http = http
    }

    /// A valid token and the image API's base URL.
    func current() async throws -> (token: String, imageURL: String) {
        if let session, session.expires.timeIntervalSinceNow > 60 { return (session.token, session.imageURL) }
        let task = authenticating ?? Task { try await self.authenticate() }
        authenticating = task
        defer { authenticating = nil }
        let fresh = try await task.value
        session = fresh
        return (fresh.token, fresh.imageURL)
    }

    /// A new token for the service user, with the image endpoint of its catalog.
    nonisolated func authenticate() async throws -> Session {
        let base = user.authURL.hasSuffix("/") ? String(user.authURL.dropLast()) : user.authURL
        var request = HTTPClientRequest(url: base + "/auth/tokens")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        let body: [String: Any] = ["auth": [
            "identity": ["methods": ["password"], "password": ["user": [
                "name": user.username, "password": user.password, "domain": ["name": user.userDomainName]]]],
            "scope": ["project": ["name": user.projectName, "domain": ["name": user.projectDomainName]]],
        ]]
        request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)))
        let response = try await http.execute(request, timeout: .seconds(30))
        let data = Data(buffer: try await response.body.collect(upTo: 4 << 20))
        guard response.status == .created, let token = response.headers.first(name: "X-Subject-Token") else {
            throw Failure(description: "the service user cannot authenticate at \(base): HTTP \(response.status.code) \(String(decoding: data.prefix(300), as: UTF8.self))")
        }
        guard let document = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let content = document["token"] as? [String: Any],
              let catalog = content["catalog"] as? [[String: Any]],
              let image = catalog.first(where: { $0["type"] as? String == "image" }),
              let endpoints = image["endpoints"] as? [[String: Any]],
              let endpoint = endpoints.first(where: { $0["interface"] as? String == "internal" })
                ?? endpoints.first(where: { $0["interface"] as? String == "public" }),
              let url = endpoint["url"] as? String else {
            throw Failure(description: "the service catalog has no image endpoint")
        }
        let expires = (content["expires_at"] as? String).flatMap(UTCTime.parse)
            ?? Date().addingTimeInterval(600)
        let imageURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        return (token, imageURL, expires)
    }

    /// Streams an image's bytes into `path` and returns their md5 (hex).
    public nonisolated func download(image id: String, to path: String) async throws -> String {
        let (token, imageURL) = try await current()
        var request = HTTPClientRequest(url: "\(imageURL)/v2/images/\(id)/file")
        request.headers.add(name: "X-Auth-Token", value: token)
        let response = try await http.execute(request, timeout: .seconds(3600))
        guard response.status == .ok else {
            throw Failure(description: "downloading image \(id) failed: HTTP \(response.status.code)")
        }
        guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path) else {
            throw Failure(description: "cannot write \(path)")
        }
        defer { try? file.close() }
        var md5 = Insecure.MD5()
        for try await chunk in response.body {
            chunk.withUnsafeReadableBytes { md5.update(bufferPointer: $0) }
            try file.write(contentsOf: Data(buffer: chunk))
        }
        try file.synchronize()
        return md5.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Uploads a file as the data of a queued image.
    public nonisolated func upload(image id: String, from path: String) async throws {
        let (token, imageURL) = try await current()
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
        var request = HTTPClientRequest(url: "\(imageURL)/v2/images/\(id)/file")
        request.method = .PUT
        request.headers.add(name: "X-Auth-Token", value: token)
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        request.body = .stream(FileChunks(path: path), length: .known(size))
        let response = try await http.execute(request, timeout: .seconds(3600))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status == .noContent || response.status == .ok else {
            throw Failure(description: "uploading image \(id) failed: HTTP \(response.status.code) \(text.prefix(300))")
        }
    }
}

extension CloudClient {
    /// An image's status (`queued`, `saving`, `active`, …), nil if there is no such image.
    public nonisolated func imageStatus(_ id: String) async throws -> String? {
        let (token, imageURL) = try await current()
        var request = HTTPClientRequest(url: "\(imageURL)/v2/images/\(id)")
        request.headers.add(name: "X-Auth-Token", value: token)
        let response = try await http.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 20)
        if response.status == .notFound { return nil }
        guard response.status == .ok,
              let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] else {
            throw Failure(description: "reading image \(id) failed: HTTP \(response.status.code)")
        }
        return object["status"] as? String
    }

    /// Deletes an image (a snapshot that failed); a missing image is not an error.
    public nonisolated func deleteImage(_ id: String) async throws {
        let (token, imageURL) = try await current()
        var request = HTTPClientRequest(url: "\(imageURL)/v2/images/\(id)")
        request.method = .DELETE
        request.headers.add(name: "X-Auth-Token", value: token)
        let response = try await http.execute(request, timeout: .seconds(60))
        _ = try? await response.body.collect(upTo: 1 << 20)
        guard response.status == .noContent || response.status == .notFound else {
            throw Failure(description: "deleting image \(id) failed: HTTP \(response.status.code)")
        }
    }
}

/// A file read in 1 MiB chunks, as an upload body.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String

    struct AsyncIterator: AsyncIteratorProtocol {
        let file: FileHandle?

        mutating func next() async throws -> ByteBuffer? {
            guard let file, let data = try file.read(upToCount: 1 << 20), !data.isEmpty else {
                try? file?.close()
                return nil
            }
            return ByteBuffer(data: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(file: FileHandle(forReadingAtPath: path)) }
}

/// Where a node's images come from and its snapshots go: the image API, as the node's
/// service user. `CloudClient` is the real one; tests substitute their own.
public protocol ImageTransfer: Sendable {
    /// Downloads the image to `path` and returns the md5 of its bytes.
    func download(image id: String, to path: String) async throws -> String
    func upload(image id: String, from path: String) async throws
    func deleteImage(_ id: String) async throws
    /// An image's status, nil if there is no such image.
    func imageStatus(_ id: String) async throws -> String?
}

extension CloudClient: ImageTransfer {}
