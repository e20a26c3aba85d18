import Compute
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Images
import Logging
import MetadataAPI
import NIOCore
import PetrelHTTP
import Store
import TestSupport
import Testing

/// Nova's metadata API as a node's proxy reaches it, in-process on a real SQLite store: a
/// server created through Compute (flavor, active image, key pair, user data), then asked for
/// with signed and unsigned, right and wrong headers.
@Suite struct MetadataAPITests {
    static let secret = "petrel-test-shared-secret"
    static let userData = "#!/bin/sh\necho hello from user data\n"

    struct Cloud: Sendable {
        let client: any TestClientProtocol
        let server: Server
        let publicKey: String
        let servers: Servers
        let database: Database
        let imageID: String
    }

    func withCloud(secret: String? = MetadataAPITests.secret, _ body: @Sendable (Cloud) async throws -> Void) async throws {
        let (url, drop) = try await TestDatabase.sqlite.makeDatabase()
        let logger = Logger(label: "metadata-test")
        let database = try Database(url, logger: logger)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestNames.unique("images")).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try await withCleanup {
            try await Migrator().migrate(database)
            let images = try ImageService(database: database, directory: directory, sizeCap: 1 << 30)
            let image = try await images.create(.queued(id: UUID().uuidString.lowercased(), name: "tiny", owner: "p1", visibility: "public",
                                                        diskFormat: "raw", containerFormat: "bare"))
            let upload = try await images.beginUpload(image.id)
            try [UInt8](repeating: 7, count: 4096).withUnsafeBytes { try upload.write($0) }
            _ = try await upload.finish()
            _ = try await Flavors(database: database).create(Flavor(id: "f1", name: "m1.tiny", memoryMB: 128, vcpus: 1, rootGB: 1,
                                                                     ephemeralGB: 0, swap: 0, rxtxFactor: 1, isPublic: true, description: nil))
            let (publicKey, _) = try KeyPairs.generate()
            _ = try await KeyPairs(database: database).create(userID: "u1", name: "k1", type: "ssh", publicKey: publicKey)
            let servers = Servers(database: database, images: images, quotas: Quotas(database: database, defaults: [:]))
            let caller = ServerCaller(projectID: "p1", userID: "u1", isAdmin: false)
            let created = try await servers.create(
                ServerRequest(name: "VM One", flavorRef: "f1", imageRef: image.id, keyName: "k1",
                              userData: Data(Self.userData.utf8).base64EncodedString(), metadata: ["role": "test"]), by: caller)
            // Deleting the key pair afterwards changes nothing the guest sees (Nova keeps a copy).
            try await KeyPairs(database: database).delete(userID: "u1", name: "k1")
            let router = Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
            MetadataAPI(metadata: MetadataService(database: database), sharedSecret: secret, logger: logger).register(on: router)
            try await Application(router: router).test(.router) { client in
                try await body(Cloud(client: client, server: created[0], publicKey: publicKey, servers: servers, database: database,
                                     imageID: image.id))
            }
        } cleanup: {
            await database.shutdown()
            try? FileManager.default.removeItem(atPath: directory)
            await drop()
        }
    }

    /// Nova's proxy headers for `id`, signed with `secret`.
    static func headers(_ id: String, tenant: String, secret: String = MetadataAPITests.secret) -> HTTPFields {
        let signature = HMAC<SHA256>.authenticationCode(for: Data(id.utf8), using: SymmetricKey(data: Data(secret.utf8)))
            .map { String(format: "%02x", $0) }.joined()
        return [HTTPField.Name("X-Instance-ID")!: id, HTTPField.Name("X-Tenant-ID")!: tenant,
                HTTPField.Name("X-Instance-ID-Signature")!: signature, HTTPField.Name("X-Forwarded-For")!: "10.0.0.5"]
    }

    func get(_ cloud: Cloud, _ path: String, headers: HTTPFields?, method: HTTPRequest.Method = .get, body: String? = nil) async throws
        -> (status: HTTPResponse.Status, type: String?, body: String) {
        let fields = headers ?? Self.headers(cloud.server.id, tenant: cloud.server.projectID)
        return try await cloud.client.execute(uri: "/metadata" + path, method: method, headers: fields,
                                              body: body.map { ByteBuffer(string: $0) }) {
            ($0.status, $0.headers[.contentType], String(buffer: $0.body))
        }
    }

    @Test func aSignedRequestGetsTheServersMetadata() async throws {
        try await withCloud { cloud in
            let (status, type, body) = try await get(cloud, "/openstack/latest/meta_data.json", headers: nil)
            #expect(status == .ok && type == "application/json")
            let json = try #require(JSON.parse(Array(body.utf8)))
            #expect(json["uuid"] == .string(cloud.server.id))
            #expect(json["name"] == "VM One" && json["hostname"] == "vm-one" && json["project_id"] == "p1")
            #expect(json["availability_zone"] == "nova" && json["launch_index"] == 0)
            #expect(json["public_keys"]?["k1"] == .string(cloud.publicKey), "the key pair's public key, kept after its deletion")
            #expect(json["keys"]?.arrayValue?.first?["data"] == .string(cloud.publicKey) && json["keys"]?.arrayValue?.first?["type"] == "ssh")
            #expect(json["meta"]?["role"] == "test" && json["devices"]?.arrayValue == [])
            let seed = try #require(json["random_seed"]?.stringValue.flatMap { Data(base64Encoded: $0) })
            #expect(seed.count == 512)

            // An old version lacks what came later (project_id from Liberty, random_seed from Grizzly).
            let folsom = try await get(cloud, "/openstack/2012-08-10/meta_data.json", headers: nil)
            let old = try #require(JSON.parse(Array(folsom.body.utf8)))
            #expect(old["uuid"] == .string(cloud.server.id) && old["project_id"] == nil && old["random_seed"] == nil)

            let versions = try await get(cloud, "/openstack", headers: nil)
            #expect(versions.body.split(separator: "\n").first == "2012-08-10" && versions.body.hasSuffix("2020-10-14\n2025-04-04\nlatest"))
            #expect(versions.type?.hasPrefix("text/plain") == true)
            let files = try await get(cloud, "/openstack/latest", headers: nil)
            #expect(files.body == "meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json")
            #expect(try await get(cloud, "/openstack/latest/vendor_data.json", headers: nil).body == "{}")
            #expect(try await get(cloud, "/openstack/latest/network_data.json", headers: nil).body == "{}", "no NICs yet")
            #expect(try await get(cloud, "/openstack/2013-04-04/vendor_data.json", headers: nil).status == .notFound, "from Havana on")
            #expect(try await get(cloud, "/openstack/1999-01-01/meta_data.json", headers: nil).status == .notFound)
            #expect(try await get(cloud, "/openstack/latest/nothing", headers: nil).status == .notFound)
        }
    }

    @Test func userDataRoundTrips() async throws {
        try await withCloud { cloud in
            let (status, type, body) = try await get(cloud, "/openstack/latest/user_data", headers: nil)
            #expect(status == .ok && body == Self.userData && type?.hasPrefix("text/plain") == true)
            #expect(try await get(cloud, "/latest/user-data", headers: nil).body == Self.userData)
            #expect(try await get(cloud, "/2009-04-04/user-data", headers: nil).body == Self.userData)
        }
    }

    @Test func theEC2Tree() async throws {
        try await withCloud { cloud in
            let listing = try await get(cloud, "/latest/meta-data/", headers: nil)
            let entries = listing.body.split(separator: "\n").map(String.init)
            for entry in ["ami-launch-index", "hostname", "instance-id", "instance-type", "local-hostname", "local-ipv4", "placement/",
                          "public-keys/", "reservation-id", "block-device-mapping/"] {
                #expect(entries.contains(entry), "\(entry) in \(entries)")
            }
            #expect(try await get(cloud, "/latest/meta-data/hostname", headers: nil).body == "vm-one")
            #expect(try await get(cloud, "/latest/meta-data/instance-type", headers: nil).body == "m1.tiny")
            #expect(try await get(cloud, "/latest/meta-data/placement/availability-zone", headers: nil).body == "nova")
            #expect(try await get(cloud, "/latest/meta-data/public-keys", headers: nil).body == "0=k1")
            #expect(try await get(cloud, "/latest/meta-data/public-keys/0/openssh-key", headers: nil).body == cloud.publicKey)
            #expect(try await get(cloud, "/latest/meta-data/local-ipv4", headers: nil).body == "10.0.0.5", "no port: the forwarded address")
            #expect(try await get(cloud, "/latest/meta-data/instance-id", headers: nil).body.hasPrefix("i-"))
            #expect(try await get(cloud, "/latest/meta-data/reservation-id", headers: nil).body == cloud.server.reservationID)
            #expect(try await get(cloud, "/latest", headers: nil).body == "meta-data/\nuser-data")
            // 1.0 predates local-hostname (2007-01-19).
            #expect(try await get(cloud, "/1.0/meta-data/local-hostname", headers: nil).status == .notFound)
            #expect(try await get(cloud, "/2009-04-04/meta-data/local-hostname", headers: nil).body == "vm-one")
            #expect(try await get(cloud, "/latest/meta-data/nothing", headers: nil).status == .notFound)
            // The root lists the EC2 versions without any header, as Nova's does.
            #expect(try await get(cloud, "", headers: [:]).body.hasSuffix("2009-04-04\nlatest"))
        }
    }

    @Test func refusals() async throws {
        try await withCloud { cloud in
            let id = cloud.server.id
            let path = "/openstack/latest/meta_data.json"
            #expect(try await get(cloud, path, headers: [:]).status == .badRequest, "no headers")
            var unsigned = Self.headers(id, tenant: "p1")
            unsigned[HTTPField.Name("X-Instance-ID-Signature")!] = nil
            #expect(try await get(cloud, path, headers: unsigned).status == .badRequest)
            let forged = Self.headers(id, tenant: "p1", secret: "not-the-secret")
            let refused = try await get(cloud, path, headers: forged)
            #expect(refused.status == .forbidden && !refused.body.contains(id), "a wrong signature")
            // Another instance's signature does not open this one.
            var swapped = Self.headers(id, tenant: "p1")
            swapped[HTTPField.Name("X-Instance-ID-Signature")!] = Self.headers(UUID().uuidString.lowercased(), tenant: "p1")[
                HTTPField.Name("X-Instance-ID-Signature")!]
            #expect(try await get(cloud, path, headers: swapped).status == .forbidden)
            #expect(try await get(cloud, path, headers: Self.headers(id, tenant: "other-project")).status == .notFound)
            #expect(try await get(cloud, path, headers: Self.headers(UUID().uuidString.lowercased(), tenant: "p1")).status == .notFound)
            #expect(try await get(cloud, "/openstack/latest/user_data", headers: Self.headers(id, tenant: "p1", secret: "x")).status == .forbidden)
        }
    }

    @Test func withoutASecretNothingIsServed() async throws {
        try await withCloud(secret: nil) { cloud in
            let emptyKey = try await get(cloud, "/openstack/latest/meta_data.json", headers: Self.headers(cloud.server.id, tenant: "p1", secret: ""))
            let signed = try await get(cloud, "/openstack/latest/meta_data.json", headers: nil)
            #expect(emptyKey.status == .forbidden && signed.status == .forbidden)
        }
    }

    @Test func thePasswordIsPostedOnce() async throws {
        try await withCloud { cloud in
            let path = "/openstack/latest/password"
            let empty = try await get(cloud, path, headers: nil)
            #expect(empty.status == .ok && empty.body.isEmpty)
            #expect(try await get(cloud, path, headers: nil, method: .post, body: String(repeating: "x", count: 1021)).status == .badRequest)
            #expect(try await get(cloud, path, headers: nil, method: .post, body: "encrypted-password").status == .ok)
            #expect(try await get(cloud, path, headers: nil).body == "encrypted-password")
            #expect(try await get(cloud, path, headers: nil, method: .post, body: "another").status == .conflict)
            #expect(try await get(cloud, path, headers: nil).body == "encrypted-password")
            #expect(try await get(cloud, path, headers: Self.headers(cloud.server.id, tenant: "p1", secret: "x"), method: .post,
                                  body: "forged").status == .forbidden)
            #expect(try await get(cloud, "/openstack/latest/meta_data.json", headers: nil, method: .post, body: "x").status == .methodNotAllowed)
            #expect(try await get(cloud, "/openstack/2012-08-10/password", headers: nil).status == .notFound, "from Grizzly on")
        }
    }

    /// A server created with `config_drive` gets a spec whose config drive holds what the
    /// metadata API serves; one without gets none.
    @Test func theConfigDriveHoldsTheMetadata() async throws {
        try await withCloud { cloud in
            #expect(!cloud.server.configDrive)
            let plain = try #require(try await cloud.database.withConnection { sql in try await ComputeTables.instances.get(sql, id: cloud.server.id) })
            #expect(try await cloud.servers.spec(plain).configDrive == nil)

            let created = try await cloud.servers.create(
                ServerRequest(name: "drive", flavorRef: "f1", imageRef: cloud.imageID, userData: Data(Self.userData.utf8).base64EncodedString(),
                              configDrive: true), by: ServerCaller(projectID: "p1", userID: "u1", isAdmin: false))
            #expect(created[0].configDrive)
            let row = try #require(try await cloud.database.withConnection { sql in try await ComputeTables.instances.get(sql, id: created[0].id) })
            let files = try #require(try await cloud.servers.spec(row).configDrive)
            let byPath = Dictionary(files.map { ($0.path, $0.contents) }, uniquingKeysWith: { a, _ in a })
            let metadata = try #require(byPath["openstack/latest/meta_data.json"].flatMap { JSON.parse(Array($0)) })
            #expect(metadata["uuid"] == .string(created[0].id) && metadata["hostname"] == "drive")
            #expect(byPath["openstack/latest/user_data"] == Data(Self.userData.utf8))
            #expect(byPath["openstack/2012-08-10/meta_data.json"] != nil && byPath["openstack/latest/password"] == nil)
            #expect(byPath["ec2/latest/user-data"] == Data(Self.userData.utf8))
            let ec2 = try #require(byPath["ec2/2009-04-04/meta-data.json"].flatMap { JSON.parse(Array($0)) })
            #expect(ec2["hostname"] == "drive" && ec2["placement"]?["availability-zone"] == "nova")
        }
    }

    @Test func theSignatureIsNovas() {
        // Python: hmac.new(b"secret", b"instance", hashlib.sha256).hexdigest()
        #expect(MetadataAPI.sign(instanceID: "instance", secret: "secret")
                == "fac450cbc556373851e9f5755126936b598b1749a007d96b7e0b7f1a5cd274e9")
    }
}

/// `network_data.json` from NICs, in Nova's shape: one link per NIC with a subnet, a DHCP
/// network without an address, a static one with its address, mask, default and extra
/// routes and DNS, and the DNS servers once each under `services`.
@Suite struct NetworkDataTests {
    @Test func novasShapeFromTheNICs() throws {
        let dhcp = GuestInterface(portID: "port-a", macAddress: "fa:16:3e:00:00:01", networkID: "net-a", deviceName: "tapport-a",
                                  vifType: "bridge", mtu: 1450,
                                  subnets: [.init(cidr: "10.0.0.0/24", ipVersion: 4, addresses: ["10.0.0.5"], gateway: "10.0.0.1",
                                                  dnsServers: ["10.0.0.2"], dhcp: true)])
        let fixed = GuestInterface(portID: "port-b", macAddress: "fa:16:3e:00:00:02", networkID: "net-b", deviceName: nil,
                                   vifType: "unbound", mtu: 1500,
                                   subnets: [.init(cidr: "192.168.7.0/26", ipVersion: 4, addresses: ["192.168.7.9"], gateway: "192.168.7.1",
                                                   dnsServers: ["10.0.0.2", "8.8.8.8"], dhcp: false,
                                                   routes: [(cidr: "172.16.0.0/12", gateway: "192.168.7.2")]),
                                             .init(cidr: "fd00::/64", ipVersion: 6, addresses: ["fd00::9"], gateway: nil, dhcp: false)])
        let none = GuestInterface(portID: "port-c", macAddress: "fa:16:3e:00:00:03", networkID: "net-c", deviceName: nil, vifType: "ovs",
                                  mtu: nil, subnets: [])
        #expect(InstanceMetadata.networkData([none]) == nil, "no subnet, no document (Nova serves {})")
        let document = try #require(InstanceMetadata.networkData([dhcp, fixed, none]))
        let json = try #require(JSON.parse(Array(try JSONSerialization.data(withJSONObject: document))))
        let links = try #require(json["links"]?.arrayValue)
        #expect(links.count == 2)
        #expect(links[0]["id"] == "tapport-a" && links[0]["type"] == "bridge" && links[0]["mtu"] == .null, "DHCP gives the MTU")
        #expect(links[1]["id"] == "interface1" && links[1]["type"] == "phy" && links[1]["mtu"] == 1500
                && links[1]["ethernet_mac_address"] == "fa:16:3e:00:00:02" && links[1]["vif_id"] == "port-b")
        let networks = try #require(json["networks"]?.arrayValue)
        #expect(networks.map { $0["id"] } == ["network0", "network1", "network2"])
        #expect(networks[0]["type"] == "ipv4_dhcp" && networks[0]["link"] == "tapport-a" && networks[0]["ip_address"] == nil)
        #expect(networks[1]["type"] == "ipv4" && networks[1]["ip_address"] == "192.168.7.9" && networks[1]["netmask"] == "255.255.255.192")
        #expect(networks[1]["routes"] == [["network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.168.7.1"],
                                          ["network": "172.16.0.0", "netmask": "255.240.0.0", "gateway": "192.168.7.2"]])
        #expect(networks[2]["type"] == "ipv6" && networks[2]["netmask"] == "ffff:ffff:ffff:ffff::" && networks[2]["routes"] == [])
        #expect(json["services"] == [["type": "dns", "address": "10.0.0.2"], ["type": "dns", "address": "8.8.8.8"]])
    }
}
