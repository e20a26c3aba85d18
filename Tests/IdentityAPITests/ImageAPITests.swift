import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
@testable import Identity
@testable import IdentityAPI
import ImageAPI
import Images
import Logging
import NIOCore
import PetrelHTTP
import Store
import TestSupport
import Testing

/// Glance v2 in-process on a real database and image directory: uploads (and interrupted
/// ones), pagination, JSON-patch, visibility between projects.
@Suite struct ImageAPITests {
    struct Setup: Sendable {
        let images: ImageService
        let adminToken: String
        let memberToken: String
        let directory: String
    }

    func withImages(_ body: @Sendable (any TestClientProtocol, Setup) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-images-\(UUID().uuidString)").path
        try await withBootstrappedIdentity { database, service in
            try await withCleanup {
                // A second project with a member.
                let (_, member) = try await addProjectUser(service, project: "other", user: "m")
                let policy = try Policy(defaults: KeystonePolicy.defaults + ImageAPI.policyDefaults)
                let identity = KeystoneAPI(service: service, policy: policy, publicURL: "http://controller:5000", logger: Logger(label: "image-test"))
                let images = try ImageService(database: database, directory: directory + "/store", sizeCap: 1 << 20)
                let router = Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
                ImageAPI(environment: identity.environment, images: images, propertyQuota: 100, logger: Logger(label: "image-test")).register(on: router)
                identity.register(on: router)
                let admin = try await adminToken(service)
                try await Application(router: router).test(.router) { client in
                    try await body(client, Setup(images: images, adminToken: admin, memberToken: member, directory: directory + "/store"))
                }
            } cleanup: {
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
    }

    func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, _ token: String, body: [UInt8]? = nil,
              type: String = "application/json") async throws -> (HTTPResponse.Status, HTTPFields, [UInt8]) {
        try await client.execute(uri: path, method: method,
                                 headers: [HTTPField.Name("X-Auth-Token")!: token, .contentType: type],
                                 body: body.map { ByteBuffer(bytes: $0) }) { ($0.status, $0.headers, Array($0.body.readableBytesView)) }
    }

    func json(_ bytes: [UInt8]) -> JSON? { JSON.parse(bytes) }

    /// A minimal qcow2 header announcing a 1 GiB disk, then data.
    static let qcow2: [UInt8] = {
        var bytes: [UInt8] = [0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 3] + [UInt8](repeating: 0, count: 16)
        bytes += [0, 0, 0, 0, 0x40, 0, 0, 0]  // size: 1 GiB, big-endian
        bytes += (0..<5000).map { UInt8($0 % 251) }
        return bytes
    }()

    @Test func uploadDownloadAndInterruptedUploads() async throws {
        try await withImages { client, setup in
            let created = try await call(client, .post, "/image/v2/images", setup.adminToken,
                                         body: Array(#"{"name": "q", "disk_format": "qcow2", "container_format": "bare"}"#.utf8))
            #expect(created.0 == .created)
            let id = try #require(json(created.2)?["id"]?.stringValue)
            #expect(json(created.2)?["status"] == "queued" && json(created.2)?["visibility"] == "shared")
            let asJSON = try await call(client, .put, "/image/v2/images/\(id)/file", setup.adminToken, body: Self.qcow2)
            #expect(asJSON.0 == .unsupportedMediaType, "an upload is application/octet-stream")
            let upload = try await call(client, .put, "/image/v2/images/\(id)/file", setup.adminToken, body: Self.qcow2,
                                        type: "application/octet-stream")
            #expect(upload.0 == .noContent)
            let shown = try #require(json(try await call(client, .get, "/image/v2/images/\(id)", setup.adminToken).2))
            #expect(shown["status"] == "active" && shown["size"] == .number(Double(Self.qcow2.count)))
            #expect(shown["virtual_size"] == .number(Double(1 << 30)), "read from the qcow2 header")
            let again = try await call(client, .put, "/image/v2/images/\(id)/file", setup.adminToken, body: Self.qcow2,
                                       type: "application/octet-stream")
            #expect(again.0 == .conflict, "an active image takes no more data")
            let download = try await call(client, .get, "/image/v2/images/\(id)/file", setup.adminToken)
            #expect(download.0 == .ok && download.2 == Self.qcow2)
            #expect(download.1[HTTPField.Name("Content-MD5")!] == shown["checksum"]?.stringValue)

            // Bytes that are not qcow2: refused, the image stays queued, no file is left.
            let second = try #require(json(try await call(client, .post, "/image/v2/images", setup.adminToken,
                                                          body: Array(#"{"name": "bad", "disk_format": "qcow2", "container_format": "bare"}"#.utf8)).2)?["id"]?.stringValue)
            let refused = try await call(client, .put, "/image/v2/images/\(second)/file", setup.adminToken, body: Array(repeating: 7, count: 4096),
                                         type: "application/octet-stream")
            #expect(refused.0 == .badRequest)
            #expect(json(try await call(client, .get, "/image/v2/images/\(second)", setup.adminToken).2)?["status"] == "queued")
            let files = try FileManager.default.contentsOfDirectory(atPath: setup.directory)
            #expect(files == [id], "only the active image has a file: \(files)")
            // Over the size cap (1 MiB here): 413, still queued.
            let big = try await call(client, .put, "/image/v2/images/\(second)/file", setup.adminToken,
                                     body: Self.qcow2 + [UInt8](repeating: 1, count: 1 << 20), type: "application/octet-stream")
            #expect(big.0 == .contentTooLarge)
            // An upload cut short (the controller dies mid-stream): the image goes back to queued.
            let upload3 = try await setup.images.beginUpload(second)
            try Self.qcow2.withUnsafeBytes { try upload3.write($0) }
            #expect(try await setup.images.get(second).status == "saving")
            try await setup.images.recoverInterruptedUploads()
            #expect(try await setup.images.get(second).status == "queued")
            #expect(!FileManager.default.fileExists(atPath: setup.images.path(of: second) + ".partial"))
        }
    }

    @Test func listingPatchingAndVisibility() async throws {
        try await withImages { client, setup in
            var ids: [String] = []
            for index in 0..<5 {
                let visibility = index == 0 ? "public" : "private"
                let body = #"{"name": "img-\#(index)", "disk_format": "raw", "container_format": "bare", "visibility": "\#(visibility)", "tags": ["t\#(index % 2)"]}"#
                let answer = try await call(client, .post, "/image/v2/images", setup.adminToken, body: Array(body.utf8))
                ids.append(try #require(json(answer.2)?["id"]?.stringValue))
                try await Task.sleep(for: .milliseconds(3))  // distinct creation times
            }
            let page = try #require(json(try await call(client, .get, "/image/v2/images?limit=2&sort=name:asc", setup.adminToken).2))
            #expect(page["images"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["img-0", "img-1"])
            let next = try #require(page["next"]?.stringValue)
            let rest = try #require(json(try await call(client, .get, "/image" + next, setup.adminToken).2))
            #expect(rest["images"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["img-2", "img-3"])
            for bad in ["sort=:", "sort=name:sideways", "sort_key=nope"] {
                #expect(try await call(client, .get, "/image/v2/images?\(bad)", setup.adminToken).0 == .badRequest, "\(bad)")
            }
            let newest = try #require(json(try await call(client, .get, "/image/v2/images", setup.adminToken).2))
            #expect(newest["images"]?.arrayValue?.first?["name"] == "img-4", "newest first by default")
            let tagged = try #require(json(try await call(client, .get, "/image/v2/images?tag=t1", setup.adminToken).2))
            #expect(tagged["images"]?.arrayValue?.count == 2)

            let patch = #"[{"op": "replace", "path": "/name", "value": "renamed"}, {"op": "add", "path": "/hw_architecture", "value": "x86_64"}]"#
            let patched = try await call(client, .patch, "/image/v2/images/\(ids[1])", setup.adminToken, body: Array(patch.utf8),
                                         type: "application/openstack-images-v2.1-json-patch")
            #expect(patched.0 == .ok && json(patched.2)?["name"] == "renamed" && json(patched.2)?["hw_architecture"] == "x86_64")
            let readOnly = try await call(client, .patch, "/image/v2/images/\(ids[1])", setup.adminToken,
                                          body: Array(#"[{"op": "replace", "path": "/status", "value": "active"}]"#.utf8),
                                          type: "application/openstack-images-v2.1-json-patch")
            let plainJSON = try await call(client, .patch, "/image/v2/images/\(ids[1])", setup.adminToken,
                                           body: Array(#"[{"op": "replace", "path": "/name", "value": "x"}]"#.utf8))
            #expect(plainJSON.0 == .unsupportedMediaType, "a PATCH needs the json-patch media type")
            #expect(readOnly.0 == .forbidden)
            #expect(json(readOnly.2)?["code"] == "403 Forbidden", "Glance's error body")
            // Property names empty or with NUL, nested or badly escaped pointers, too many properties:
            // refused, nothing changed.
            for bad in [#"[{"op": "add", "path": "/", "value": "x"}]"#, #"[{"op": "add", "path": "/a\u0000b", "value": "x"}]"#,
                        #"[{"op": "add", "path": "/a/b", "value": "x"}]"#, #"[{"op": "add", "path": "/a~2b", "value": "x"}]"#,
                        #"[{"op": "add", "path": "/tags", "value": ["\#(String(repeating: "t", count: 256))"]}]"#] {
                let refused = try await call(client, .patch, "/image/v2/images/\(ids[1])", setup.adminToken, body: Array(bad.utf8),
                                             type: "application/openstack-images-v2.1-json-patch")
                #expect(refused.0 == .badRequest, "\(bad)")
            }
            let many = "[" + (0..<100).map { #"{"op": "add", "path": "/p\#($0)", "value": "v"}"# }.joined(separator: ",") + "]"
            let overQuota = try await call(client, .patch, "/image/v2/images/\(ids[1])", setup.adminToken, body: Array(many.utf8),
                                           type: "application/openstack-images-v2.1-json-patch")
            #expect(overQuota.0 == .contentTooLarge)
            #expect(json(overQuota.2)?["message"]?.stringValue?.contains("Attempted: 101, Maximum: 100") == true, "\(json(overQuota.2) ?? nil)")
            let unchanged = try #require(json(try await call(client, .get, "/image/v2/images/\(ids[1])", setup.adminToken).2))
            #expect(unchanged["p0"] == nil && unchanged["a"] == nil && unchanged["name"] == "renamed")

            // Another project's member sees the public image only, and cannot make one public.
            let seen = try #require(json(try await call(client, .get, "/image/v2/images", setup.memberToken).2))
            #expect(seen["images"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["img-0"])
            #expect(try await call(client, .get, "/image/v2/images/\(ids[2])", setup.memberToken).0 == .notFound)
            #expect(try await call(client, .delete, "/image/v2/images/\(ids[0])", setup.memberToken).0 == .forbidden)
            let publicize = try await call(client, .post, "/image/v2/images", setup.memberToken,
                                           body: Array(#"{"name": "mine", "visibility": "public"}"#.utf8))
            #expect(publicize.0 == .forbidden)
            #expect(try await call(client, .post, "/image/v2/images", setup.memberToken, body: Array(#"{"name": "mine"}"#.utf8)).0 == .created)
        }
    }

    /// An image create is held to Glance's image schema (read-only attributes first, with its
    /// 403), in Glance's words, and a refused one makes nothing.
    @Test func createFollowsGlancesSchema() async throws {
        try await withImages { client, setup in
            let longTag = String(repeating: "t", count: 256)
            for (body, status, message) in [
                (#"{"name": "a", "tags": ["\#(longTag)"]}"#, HTTPResponse.Status.badRequest,
                 "Provided object does not match schema 'image': '\(longTag)' is too long"),
                (#"{"name": "a", "disk_format": "vmdk"}"#, .badRequest,
                 "Provided object does not match schema 'image': 'vmdk' is not one of [None, 'qcow2', 'raw']"),
                (#"{"name": "a", "min_ram": "512"}"#, .badRequest, "Provided object does not match schema 'image': '512' is not of type 'integer'"),
                (#"{"name": "a", "hypervisor_type": 1}"#, .badRequest, "Provided object does not match schema 'image': 1 is not of type 'string'"),
                (#"{"name": "a", "id": "not-a-uuid"}"#, .badRequest,
                 "Provided object does not match schema 'image': 'not-a-uuid' does not match '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$'"),
                (#"{"name": "a", "size": 1, "min_ram": "x"}"#, .forbidden, "Attribute 'size' is read-only."),
            ] {
                let answer = try await call(client, .post, "/image/v2/images", setup.adminToken, body: Array(body.utf8))
                #expect(answer.0 == status, "\(body)")
                #expect(json(answer.2)?["message"]?.stringValue == message, "\(body)")
            }
            let listed = try #require(json(try await call(client, .get, "/image/v2/images", setup.adminToken).2))
            #expect(listed["images"]?.arrayValue?.isEmpty == true, "nothing was made by the refused requests")
        }
    }
}
