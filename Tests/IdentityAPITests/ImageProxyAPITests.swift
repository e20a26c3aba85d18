import Compute
import ComputeAPI
import Foundation
import HTTPTypes
import Hosts
import Hummingbird
import HummingbirdTesting
@testable import IdentityAPI
import Identity
import ImageAPI
import Images
import Logging
import NIOCore
import PetrelCore
import PetrelHTTP
import Store
import TestSupport
import Testing

/// Nova's image proxy (`/compute/v2.1/images`, before 2.36) and image metadata proxy (before
/// 2.39) in process, on Petrel's Glance service: Nova's bodies, Glance's visibility and
/// policies for the caller, Nova's filters and paging, its errors and its metadata quota.
@Suite struct ImageProxyAPITests {
    struct Cloud: Sendable {
        let client: any TestClientProtocol
        let database: Database
        let images: ImageService
        let admin: String
        let adminProject: String
        /// A member of demo, and a member of other.
        let member: String
        let project: String
        let otherMember: String
        let otherProject: String
    }

    func withCloud(_ backend: TestDatabase = .sqlite, _ body: @Sendable (Cloud) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-proxy-\(UUID().uuidString)").path
        try await withBootstrappedIdentity(backend) { database, service in
            try await withCleanup {
                let logger = Logger(label: "image-proxy-test")
                let policy = try Policy(defaults: KeystonePolicy.defaults + ComputeAPI.policyDefaults + ImageAPI.policyDefaults)
                let identity = KeystoneAPI(service: service, policy: policy, publicURL: "http://controller:5000", logger: logger)
                let router = Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
                let images = try ImageService(database: database, directory: directory, sizeCap: 1 << 20)
                var compute = ComputeAPI(environment: identity.environment, hosts: HostInventory(database: database, serviceDownTime: 3600),
                                         logger: logger)
                compute.images = images
                compute.register(on: router)
                identity.register(on: router)
                let admin = try await adminToken(service)
                let adminProject = try await service.write { sql in
                    try await IdentityTables.projects.first(sql, where: [.equals("name", "admin")])!.id
                }
                let (project, member) = try await addProjectUser(service, project: "demo", user: "alice")
                let (otherProject, otherMember) = try await addProjectUser(service, project: "other", user: "bob")
                try await Application(router: router).test(.router) { client in
                    try await body(Cloud(client: client, database: database, images: images, admin: admin, adminProject: adminProject,
                                         member: member, project: project, otherMember: otherMember, otherProject: otherProject))
                }
            } cleanup: {
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
    }

    func call(_ cloud: Cloud, _ path: String, token: String, method: HTTPRequest.Method = .get, body: String? = nil,
              version: String = "2.1") async throws -> (HTTPResponse.Status, JSON?) {
        let headers: HTTPFields = [HTTPField.Name("X-Auth-Token")!: token, .contentType: "application/json",
                                   HTTPField.Name("OpenStack-API-Version")!: "compute \(version)"]
        return try await cloud.client.execute(uri: path.hasPrefix("/") ? "/compute/v2.1" + path : path, method: method, headers: headers,
                                              body: body.map { ByteBuffer(string: $0) }) {
            ($0.status, JSON.parse(Array($0.body.readableBytesView)))
        }
    }

    static let data: [UInt8] = (0..<3000).map { UInt8($0 % 251) }

    /// An image made through Glance's service: active with `data` unless `active` is false.
    @discardableResult
    func image(_ cloud: Cloud, _ name: String, owner: String?, visibility: String = "private", properties: [String: String] = [:],
               active: Bool = true, minRam: Int = 0, minDisk: Int = 0, protected: Bool = false) async throws -> String {
        let id = UUID().uuidString.lowercased()
        _ = try await cloud.images.create(Image.queued(id: id, name: name, owner: owner, visibility: visibility, diskFormat: "raw",
                                                       containerFormat: "bare", minDisk: minDisk, properties: properties))
        if active {
            let upload = try await cloud.images.beginUpload(id)
            try Self.data.withUnsafeBytes { try upload.write($0) }
            _ = try await upload.finish()
        }
        try await cloud.images.change(id) { image in
            image.minRam = minRam
            image.protected = protected
        }
        try await Task.sleep(for: .milliseconds(3))  // distinct creation times
        return id
    }

    func message(_ json: JSON?) -> String? { json?.objectValue?.values.first?["message"]?.stringValue }
    func names(_ json: JSON?) -> [String] { json?["images"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? [] }
    func isSecondsTime(_ value: JSON?) -> Bool {
        guard let text = value?.stringValue else { return false }
        return text.range(of: #"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"#, options: .regularExpression) != nil
    }

    // MARK: bodies

    @Test func bodiesAreNovasSamples() async throws {
        try await withCloud { cloud in
            let properties = ["architecture": "x86_64", "auto_disk_config": "True", "kernel_id": "nokernel", "ramdisk_id": "nokernel"]
            let id = try await image(cloud, "fakeimage7", owner: cloud.adminProject, visibility: "public", properties: properties)
            var (status, json) = try await call(cloud, "/images/\(id)", token: cloud.admin)
            #expect(status == .ok)
            let shown = try #require(json?["image"]?.objectValue, "\(String(describing: json))")
            // image-get-resp.json's members, exactly.
            #expect(Set(shown.keys) == ["OS-DCF:diskConfig", "OS-EXT-IMG-SIZE:size", "created", "id", "links", "metadata", "minDisk", "minRam",
                                        "name", "progress", "status", "updated"])
            #expect(shown["id"] == .string(id) && shown["name"] == "fakeimage7")
            #expect(shown["status"] == "ACTIVE" && shown["progress"] == 100)
            #expect(shown["OS-EXT-IMG-SIZE:size"] == .number(Double(Self.data.count)))
            #expect(shown["OS-DCF:diskConfig"] == "AUTO")
            #expect(shown["metadata"] == .object(properties.mapValues(JSON.string)))
            #expect(shown["minDisk"] == 0 && shown["minRam"] == 0)
            #expect(isSecondsTime(shown["created"]) && isSecondsTime(shown["updated"]), "\(String(describing: shown["created"]))")
            #expect(shown["links"] == [["rel": "self", "href": .string("http://controller:5000/compute/v2.1/images/\(id)")],
                                       ["rel": "bookmark", "href": .string("http://controller:5000/compute/images/\(id)")],
                                       ["rel": "alternate", "type": "application/vnd.openstack.image",
                                        "href": .string("http://controller:5000/image/images/\(id)")]])

            // A snapshot being made: SAVING at 25 %, no size yet, its server linked; diskConfig
            // MANUAL for a false auto_disk_config; JSON properties read back as JSON.
            let server = UUID().uuidString.lowercased()
            let snapshot = try await image(cloud, "snap", owner: cloud.adminProject,
                                           properties: ["instance_uuid": server, "image_type": "snapshot", "auto_disk_config": "no",
                                                        "block_device_mapping": #"[{"boot_index": 0, "source_type": "snapshot"}]"#],
                                           active: false, minRam: 512, minDisk: 3)
            (status, json) = try await call(cloud, "/images/\(snapshot)", token: cloud.admin)
            let snap = try #require(json?["image"])
            #expect(snap["status"] == "SAVING" && snap["progress"] == 25 && snap["OS-EXT-IMG-SIZE:size"] == 0)
            #expect(snap["minRam"] == 512 && snap["minDisk"] == 3 && snap["OS-DCF:diskConfig"] == "MANUAL")
            #expect(snap["server"] == ["id": .string(server),
                                       "links": [["rel": "self", "href": .string("http://controller:5000/compute/v2.1/servers/\(server)")],
                                                 ["rel": "bookmark", "href": .string("http://controller:5000/compute/servers/\(server)")]]])
            #expect(snap["metadata"]?["block_device_mapping"] == [["boot_index": 0, "source_type": "snapshot"]])
            #expect(snap["metadata"]?["image_type"] == "snapshot")

            // The list has id, name and links only; the detailed list Nova's whole view; newest first.
            (status, json) = try await call(cloud, "/images", token: cloud.admin)
            #expect(status == .ok && names(json) == ["snap", "fakeimage7"])
            for entry in json?["images"]?.arrayValue ?? [] { #expect(Set((entry.objectValue ?? [:]).keys) == ["id", "links", "name"]) }
            #expect(json?["images_links"] == nil, "no next link for a short page")
            (status, json) = try await call(cloud, "/images/detail", token: cloud.admin)
            #expect(status == .ok && json?["images"]?.arrayValue?.last == .object(shown))
            // Its size field is listed as Nova lists it.
            (status, json) = try await call(cloud, "/extensions/OS-EXT-IMG-SIZE", token: cloud.member)
            #expect(status == .ok && json?["extension"]?["name"] == "ImageSize")
        }
    }

    @Test func goneFromTheirLastMicroversions() async throws {
        try await withCloud { cloud in
            let id = try await image(cloud, "img", owner: cloud.project, properties: ["k": "v"])
            let notFound: JSON = ["itemNotFound": ["code": 404, "message": "The resource could not be found."]]
            for path in ["/images", "/images/detail", "/images/\(id)"] {
                #expect(try await call(cloud, path, token: cloud.member, version: "2.35").0 == .ok, "\(path)")
                let (status, json) = try await call(cloud, path, token: cloud.member, version: "2.36")
                #expect(status == .notFound && json == notFound, "\(path): \(String(describing: json))")
            }
            // From 2.36 nothing is checked before the route says it is gone, not even a bad limit.
            #expect(try await call(cloud, "/images?limit=-1", token: cloud.member, version: "2.36").0 == .notFound)
            #expect(try await call(cloud, "/images/\(id)", token: cloud.member, method: .delete, version: "2.36").0 == .notFound)
            // The metadata proxy lasts until 2.38.
            for version in ["2.36", "2.38"] {
                #expect(try await call(cloud, "/images/\(id)/metadata", token: cloud.member, version: version).1 == ["metadata": ["k": "v"]])
                #expect(try await call(cloud, "/images/\(id)/metadata/k", token: cloud.member, version: version).1 == ["meta": ["k": "v"]])
            }
            for (method, path, body) in [(HTTPRequest.Method.get, "/images/\(id)/metadata", nil), (.get, "/images/\(id)/metadata/k", nil),
                                         (.post, "/images/\(id)/metadata", #"{"metadata": {"a": "b"}}"#),
                                         (.put, "/images/\(id)/metadata", #"{"metadata": {"a": "b"}}"#),
                                         (.put, "/images/\(id)/metadata/a", #"{"meta": {"a": "b"}}"#), (.delete, "/images/\(id)/metadata/k", nil)] {
                let (status, json) = try await call(cloud, path, token: cloud.member, method: method, body: body, version: "2.39")
                #expect(status == .notFound && json == notFound, "\(method) \(path)")
            }
            #expect(try await cloud.images.get(id).properties == ["k": "v"], "nothing changed at 2.39")
            // Without a token: 401 before anything else.
            #expect(try await call(cloud, "/images", token: "bogus").0 == .unauthorized)
        }
    }

    // MARK: visibility

    @Test func theCallerSeesWhatGlanceWouldShowThem() async throws {
        try await withCloud { cloud in
            let adminPrivate = try await image(cloud, "admin-private", owner: cloud.adminProject)
            let adminPublic = try await image(cloud, "admin-public", owner: cloud.adminProject, visibility: "public")
            let otherCommunity = try await image(cloud, "other-community", owner: cloud.otherProject, visibility: "community")
            let mine = try await image(cloud, "mine", owner: cloud.project, visibility: "shared")
            let hidden = try await image(cloud, "hidden", owner: cloud.project)
            try await cloud.images.change(hidden) { $0.osHidden = true }

            var (status, json) = try await call(cloud, "/images", token: cloud.member)
            #expect(status == .ok && names(json) == ["mine", "admin-public"], "own and public; not others' community ones, not hidden ones")
            (_, json) = try await call(cloud, "/images/detail", token: cloud.admin)
            #expect(Set(names(json)) == ["admin-private", "admin-public", "mine"], "an admin sees every project's")
            #expect(try await call(cloud, "/images/\(otherCommunity)", token: cloud.member).0 == .ok, "a community image is shown by id")
            #expect(try await call(cloud, "/images/\(mine)", token: cloud.member).0 == .ok)
            for id in [adminPrivate, "nope", UUID().uuidString.lowercased()] {
                (status, json) = try await call(cloud, "/images/\(id)", token: cloud.member)
                #expect(status == .notFound && json == ["itemNotFound": ["code": 404, "message": "Image not found."]], "\(id)")
                (status, json) = try await call(cloud, "/images/\(id)/metadata", token: cloud.member)
                #expect(status == .notFound && json == ["itemNotFound": ["code": 404, "message": "Image not found."]], "\(id)")
            }

            // Delete: only what Glance lets the caller delete; protected images stay.
            (status, json) = try await call(cloud, "/images/\(adminPublic)", token: cloud.member, method: .delete)
            #expect(status == .forbidden && json == ["forbidden": ["code": 403, "message": "You are not allowed to delete the image."]])
            (status, _) = try await call(cloud, "/images/\(adminPrivate)", token: cloud.member, method: .delete)
            #expect(status == .notFound)
            let guarded = try await image(cloud, "guarded", owner: cloud.project, protected: true)
            (status, json) = try await call(cloud, "/images/\(guarded)", token: cloud.member, method: .delete)
            #expect(status == .forbidden && message(json) == "You are not allowed to delete the image.")
            #expect(try await cloud.images.get(adminPublic).name == "admin-public")
            #expect(try await cloud.images.get(guarded).name == "guarded")
            (status, json) = try await call(cloud, "/images/\(mine)", token: cloud.member, method: .delete)
            #expect(status == .noContent && json == nil)
            #expect(try await call(cloud, "/images/\(mine)", token: cloud.member).0 == .notFound)
            await #expect(throws: ImageService.Failure.notFound(mine)) { _ = try await cloud.images.get(mine) }
            #expect(try await call(cloud, "/images/\(adminPublic)", token: cloud.admin, method: .delete).0 == .noContent)
        }
    }

    // MARK: filters and paging

    /// On both databases: the property filters are JSON in SQL, each database's own.
    @Test(arguments: TestDatabase.allCases)
    func filtersAndPagesAsNovaPassesThemToGlance(backend: TestDatabase) async throws {
        try await withCloud(backend) { cloud in
            let server = UUID().uuidString.lowercased()
            let before = Date()
            try await Task.sleep(for: .milliseconds(1100))
            try await image(cloud, "base", owner: cloud.project, minRam: 512, minDisk: 1)
            try await image(cloud, "snap", owner: cloud.project, properties: ["instance_uuid": server, "image_type": "snapshot", "os_distro": "cirros"])
            try await image(cloud, "queued", owner: cloud.project, active: false)
            try await image(cloud, "other-snap", owner: cloud.project, properties: ["instance_uuid": UUID().uuidString.lowercased(),
                                                                                     "image_type": "snapshot"])
            try await image(cloud, "two words", owner: cloud.project, minRam: 1024)
            func listed(_ query: String, detail: Bool = false) async throws -> [String] {
                let (status, json) = try await call(cloud, "/images\(detail ? "/detail" : "")?\(query)", token: cloud.member)
                #expect(status == .ok, "\(query): \(String(describing: json))")
                return names(json)
            }
            #expect(try await listed("name=base") == ["base"])
            #expect(try await listed("name=two%20words") == ["two words"])
            #expect(try await listed("name=in:base,queued") == ["queued", "base"])
            #expect(try await listed("status=SAVING") == [], "Glance knows no status 'saving' here: nothing saves")
            #expect(try await listed("status=QUEUED") == ["queued"], "lowercased for Glance")
            #expect(try await listed("status=active").count == 4)
            #expect(try await listed("server=\(server)") == ["snap"])
            #expect(try await listed("server=http://controller:5000/compute/v2.1/servers/\(server)", detail: true) == ["snap"], "a server's URL")
            #expect(try await listed("type=snapshot") == ["other-snap", "snap"])
            #expect(try await listed("property-os_distro=cirros") == ["snap"])
            #expect(try await listed("property-os_distro=ubuntu") == [])
            #expect(try await listed("minRam=512") == ["base"])
            #expect(try await listed("minRam=1024&minDisk=0") == ["two words"])
            #expect(try await listed("minDisk=1") == ["base"])
            #expect(try await listed("minRam=lots") == [])
            #expect(try await listed("changes-since=\(UTCTime.format(before, fractionDigits: 0))").count == 5)
            #expect(try await listed("changes-since=\(UTCTime.format(Date().addingTimeInterval(60), fractionDigits: 0))") == [])
            // Parameters Nova does not pass on are ignored.
            #expect(try await listed("colour=red&visibility=public").count == 5)

            // Pages: a next link when the page is full, with the request's parameters in order and the marker replaced.
            var (status, json) = try await call(cloud, "/images/detail?status=active&limit=2", token: cloud.member)
            #expect(status == .ok && names(json) == ["two words", "other-snap"])
            let last = try #require(json?["images"]?.arrayValue?.last?["id"]?.stringValue)
            let next = try #require(json?["images_links"]?.arrayValue?.first)
            #expect(next == ["rel": "next", "href": .string("http://controller:5000/compute/v2.1/images/detail?limit=2&status=active&marker=\(last)")])
            let href = try #require(next["href"]?.stringValue).replacingOccurrences(of: "http://controller:5000/compute/v2.1", with: "")
            (status, json) = try await call(cloud, href, token: cloud.member)
            #expect(status == .ok && names(json) == ["snap", "base"])
            let last2 = try #require(json?["images"]?.arrayValue?.last?["id"]?.stringValue)
            #expect(json?["images_links"]?.arrayValue?.first?["href"] == .string("http://controller:5000/compute/v2.1/images/detail?limit=2&marker=\(last2)&status=active"),
                    "a given marker keeps its place")
            (status, json) = try await call(cloud, "/images?limit=2&marker=\(last2)&status=active", token: cloud.member)
            #expect(status == .ok && names(json) == [] && json?["images_links"] == nil)
            (status, json) = try await call(cloud, "/images?name=two+words&limit=1", token: cloud.member)
            #expect(json?["images_links"]?.arrayValue?.first?["href"]?.stringValue?.hasSuffix("images?limit=1&name=two+words&marker=" + (json?["images"]?.arrayValue?.first?["id"]?.stringValue ?? "-")) == true,
                    "\(String(describing: json))")
            #expect(try await listed("limit=5000").count == 5)

            // Refusals in Nova's and Glance's words.
            (status, json) = try await call(cloud, "/images?marker=\(UUID().uuidString.lowercased())", token: cloud.member)
            #expect(status == .badRequest && message(json)?.hasPrefix("Invalid marker.") == true, "\(String(describing: json))")
            (status, json) = try await call(cloud, "/images?limit=0", token: cloud.member)
            #expect(status == .badRequest && message(json) == "Invalid input for query parameters limit. Value: 0. 0 is less than the minimum of 1",
                    "\(String(describing: message(json)))")
            (status, json) = try await call(cloud, "/images/detail?limit=x", token: cloud.member)
            #expect(status == .badRequest && message(json)?.hasPrefix("Invalid input for query parameters limit.") == true)
            (status, json) = try await call(cloud, "/images?name=neq:base", token: cloud.member)
            #expect(status == .badRequest && message(json) == "Unable to filter by unknown operator 'neq'.")
            (status, json) = try await call(cloud, "/images?changes-since=yesterday", token: cloud.member)
            #expect(status == .badRequest && message(json) == "Bad \"updated_at\" query filter format. Use ISO 8601 DateTime notation.")
        }
    }

    // MARK: metadata

    @Test func metadataIsTheImagesPropertiesAsNovaWritesThem() async throws {
        try await withCloud { cloud in
            let sample = ["architecture": "x86_64", "auto_disk_config": "True", "kernel_id": "nokernel", "ramdisk_id": "nokernel"]
            let id = try await image(cloud, "img", owner: cloud.project, properties: sample)
            var (status, json) = try await call(cloud, "/images/\(id)/metadata", token: cloud.member)
            #expect(status == .ok && json == ["metadata": .object(sample.mapValues(JSON.string))])
            (status, json) = try await call(cloud, "/images/\(id)/metadata/kernel_id", token: cloud.member)
            #expect(status == .ok && json == ["meta": ["kernel_id": "nokernel"]])
            (status, json) = try await call(cloud, "/images/\(id)/metadata/nope", token: cloud.member)
            #expect(status == .notFound && message(json) == "The resource could not be found.")

            // POST merges (image-metadata-post-req/resp.json), answering with the stored metadata.
            (status, json) = try await call(cloud, "/images/\(id)/metadata", token: cloud.member, method: .post,
                                            body: #"{"metadata": {"kernel_id": "False", "Label": "UpdatedImage"}}"#)
            #expect(status == .ok && json == ["metadata": ["Label": "UpdatedImage", "architecture": "x86_64", "auto_disk_config": "True",
                                                           "kernel_id": "False", "ramdisk_id": "nokernel"]], "\(String(describing: json))")
            #expect(try await cloud.images.get(id).properties["Label"] == "UpdatedImage")
            // PUT of one key (image-meta-key-put-req/resp.json), then a key and body that differ.
            (status, json) = try await call(cloud, "/images/\(id)/metadata/auto_disk_config", token: cloud.member, method: .put,
                                            body: #"{"meta": {"auto_disk_config": "False"}}"#)
            #expect(status == .ok && json == ["meta": ["auto_disk_config": "False"]])
            #expect(try await call(cloud, "/images/\(id)", token: cloud.member).1?["image"]?["OS-DCF:diskConfig"] == "MANUAL")
            (status, json) = try await call(cloud, "/images/\(id)/metadata/other", token: cloud.member, method: .put,
                                            body: #"{"meta": {"auto_disk_config": "True"}}"#)
            #expect(status == .badRequest && message(json) == "Request body and URI mismatch")
            (status, json) = try await call(cloud, "/images/\(id)/metadata/a", token: cloud.member, method: .put,
                                            body: #"{"meta": {"a": "1", "b": "2"}}"#)
            #expect(status == .badRequest && message(json)?.hasPrefix("Invalid input for field/attribute meta.") == true, "\(String(describing: json))")
            // PUT replaces all (image-metadata-put-req/resp.json).
            (status, json) = try await call(cloud, "/images/\(id)/metadata", token: cloud.member, method: .put,
                                            body: #"{"metadata": {"auto_disk_config": "True", "Label": "Changed"}}"#)
            #expect(status == .ok && json == ["metadata": ["Label": "Changed", "auto_disk_config": "True"]])
            #expect(try await cloud.images.get(id).properties == ["Label": "Changed", "auto_disk_config": "True"])
            // DELETE one key; an unknown one in Nova's words.
            (status, json) = try await call(cloud, "/images/\(id)/metadata/Label", token: cloud.member, method: .delete)
            #expect(status == .noContent && json == nil)
            (status, json) = try await call(cloud, "/images/\(id)/metadata/Label", token: cloud.member, method: .delete)
            #expect(status == .notFound && json == ["itemNotFound": ["code": 404, "message": "Invalid metadata key"]])
            #expect(try await cloud.images.get(id).properties == ["auto_disk_config": "True"])
            // Nova does not send a kernel_id or ramdisk_id of "none" or "": the stored value stays (none here).
            (status, json) = try await call(cloud, "/images/\(id)/metadata", token: cloud.member, method: .post,
                                            body: #"{"metadata": {"kernel_id": "None", "x": "y"}}"#)
            #expect(status == .ok && json == ["metadata": ["auto_disk_config": "True", "x": "y"]])

            // Bodies held to Nova's schema before anything is read or written.
            for body in [#"{"metadata": {"bad/key": "x"}}"#, #"{"metadata": {"k": 1}}"#, #"{"metadata": {"k": "v"}, "extra": 1}"#, #"{}"#,
                         #"{"metadata": {"k": "\#(String(repeating: "v", count: 256))"}}"#] {
                (status, json) = try await call(cloud, "/images/\(id)/metadata", token: cloud.member, method: .post, body: body)
                #expect(status == .badRequest && json?["badRequest"] != nil, "\(body): \(String(describing: json))")
            }
            #expect(try await cloud.images.get(id).properties == ["auto_disk_config": "True", "x": "y"])
        }
    }

    @Test func metadataWritesNeedGlancesConsentAndNovasQuota() async throws {
        try await withCloud { cloud in
            let shared = try await image(cloud, "public", owner: cloud.adminProject, visibility: "public", properties: ["a": "1"])
            // A member sees the admin's public image's metadata but may not change it.
            #expect(try await call(cloud, "/images/\(shared)/metadata", token: cloud.member).1 == ["metadata": ["a": "1"]])
            for (method, path, body) in [(HTTPRequest.Method.post, "/images/\(shared)/metadata", #"{"metadata": {"b": "2"}}"#),
                                         (.put, "/images/\(shared)/metadata", #"{"metadata": {"b": "2"}}"#),
                                         (.put, "/images/\(shared)/metadata/b", #"{"meta": {"b": "2"}}"#),
                                         (.delete, "/images/\(shared)/metadata/a", nil)] {
                let (status, json) = try await call(cloud, path, token: cloud.member, method: method, body: body)
                #expect(status == .forbidden && json == ["forbidden": ["code": 403, "message": .string("Not authorized for image \(shared).")]],
                        "\(method) \(path): \(String(describing: json))")
            }
            #expect(try await cloud.images.get(shared).properties == ["a": "1"])

            // metadata_items (maxImageMeta) bounds the image's metadata after the change, as Nova checks it.
            let mine = try await image(cloud, "mine", owner: cloud.project, properties: ["a": "1"])
            _ = try await Quotas(database: cloud.database, defaults: ComputeAPI.defaultQuotas).set(project: cloud.project, ["metadata_items": 2])
            var (status, json) = try await call(cloud, "/images/\(mine)/metadata", token: cloud.member, method: .post,
                                                body: #"{"metadata": {"b": "2"}}"#)
            #expect(status == .ok)
            (status, json) = try await call(cloud, "/images/\(mine)/metadata", token: cloud.member, method: .post,
                                            body: #"{"metadata": {"c": "3"}}"#)
            #expect(status == .forbidden && json == ["forbidden": ["code": 403, "message": "Image metadata limit exceeded"]])
            (status, json) = try await call(cloud, "/images/\(mine)/metadata/c", token: cloud.member, method: .put, body: #"{"meta": {"c": "3"}}"#)
            #expect(status == .forbidden && message(json) == "Image metadata limit exceeded")
            (status, json) = try await call(cloud, "/images/\(mine)/metadata", token: cloud.member, method: .put,
                                            body: #"{"metadata": {"x": "1", "y": "2", "z": "3"}}"#)
            #expect(status == .forbidden && message(json) == "Image metadata limit exceeded")
            #expect(try await cloud.images.get(mine).properties == ["a": "1", "b": "2"])
            (status, json) = try await call(cloud, "/images/\(mine)/metadata", token: cloud.member, method: .put,
                                            body: #"{"metadata": {"x": "1", "y": "2"}}"#)
            #expect(status == .ok && json == ["metadata": ["x": "1", "y": "2"]])
            // Another project's quota is its own.
            let theirs = try await image(cloud, "theirs", owner: cloud.otherProject)
            (status, json) = try await call(cloud, "/images/\(theirs)/metadata", token: cloud.otherMember, method: .put,
                                            body: #"{"metadata": {"x": "1", "y": "2", "z": "3"}}"#)
            #expect(status == .ok)
        }
    }
}
