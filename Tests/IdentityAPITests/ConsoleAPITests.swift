import Compute
import ComputeAPI
import Foundation
import HTTPTypes
import Hosts
import Hummingbird
import HummingbirdTesting
import Images
@testable import IdentityAPI
import Identity
import Logging
import Networking
import PetrelCore
import PetrelHTTP
import RPC
import Store
import TestSupport
import Testing
import Volumes

/// Nova's remote consoles API in process: schemas, errors and policies in Nova's words, and the
/// admins' view of a token. (Reaching a real guest's console is ServersCLITests' part.)
@Suite struct ConsoleAPITests {
    struct Cloud: Sendable {
        let client: any TestClientProtocol
        let admin: String
        let member: String
        let otherMember: String
        let tokens: ConsoleTokens
        let active: String
        let stopped: String
        let unplaced: String
    }

    func withCloud(_ body: @Sendable (Cloud) async throws -> Void) async throws {
        try await withBootstrappedIdentity { database, service in
            let logger = Logger(label: "console-test")
            let defaults = KeystonePolicy.defaults + ComputeAPI.policyDefaults
            let identity = KeystoneAPI(service: service, policy: try Policy(defaults: defaults), publicURL: "http://controller:5000", logger: logger)
            let router = Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
            let hosts = HostInventory(database: database, serviceDownTime: 3600)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-console-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let images = try ImageService(database: database, directory: directory, sizeCap: 1 << 20)
            let networking = NetworkService(database: database, settings: .defaults, quotaDefaults: [:], hosts: hosts)
            let volumes = VolumeService(database: database, settings: .init(quotaDefaults: [:]), hosts: hosts,
                                        connect: { _, _ in throw CancellationError() }, sendSnapshot: { _, _ in },
                                        sendBackup: { _, _ in }) { _, _ in }
            let servers = Servers(database: database, images: images, quotas: Quotas(database: database, defaults: [:]),
                                  networking: networking, volumes: volumes)
            // Nothing reaches a node: the link never connects.
            let link = BrokerLink(transport: try #require(TransportURL(parsing: "rabbit://guest:guest@127.0.0.1:1/")), name: "console-test",
                                  logger: logger)
            let conductor = Conductor(servers: servers, scheduler: Scheduler(hosts: hosts, options: SchedulerOptions()),
                                      client: RPCClient(link: link, logger: logger), maxAttempts: 1, logger: logger)
            let tokens = ConsoleTokens(database: database, ttl: 600)
            var compute = ComputeAPI(environment: identity.environment, hosts: hosts, conductor: conductor, logger: logger)
            compute.consoles = ConsoleAccess(tokens: tokens, novncBaseURL: "http://controller:6080/vnc_lite.html",
                                             serialBaseURL: "ws://controller:6080/")
            compute.register(on: router)
            identity.register(on: router)
            let admin = try await adminToken(service)
            let (project, member) = try await addProjectUser(service, project: "demo", user: "alice")
            let (_, otherMember) = try await addProjectUser(service, project: "other", user: "bob")
            func server(_ state: String, host: String?) async throws -> String {
                var row = InstanceRow(id: UUID().uuidString.lowercased(), name: "vm-\(state)", projectID: project, userID: "u", flavorID: "f",
                                      vcpus: 1, memoryMB: 128, rootGB: 1, imageID: nil, availabilityZone: nil,
                                      createdAt: Int64(Date().timeIntervalSince1970 * 1000))
                row.host = host
                row.vmState = state
                row.taskState = nil
                let inserted = row
            try await database.withConnection { sql in try await ComputeTables.instances.insert(sql, inserted) }
                return row.id
            }
            let active = try await server("active", host: "node-1")
            let stopped = try await server("stopped", host: "node-1")
            let unplaced = try await server("error", host: nil)
            try await Application(router: router).test(.router) { client in
                try await body(Cloud(client: client, admin: admin, member: member, otherMember: otherMember, tokens: tokens,
                                     active: active, stopped: stopped, unplaced: unplaced))
            }
        }
    }

    func call(_ cloud: Cloud, _ path: String, token: String, method: HTTPRequest.Method = .post, body: String? = nil,
              version: String = "2.87") async throws -> (HTTPResponse.Status, JSON?) {
        let headers: HTTPFields = [HTTPField.Name("X-Auth-Token")!: token, .contentType: "application/json",
                                   HTTPField.Name("OpenStack-API-Version")!: "compute \(version)"]
        return try await cloud.client.execute(uri: "/compute/v2.1" + path, method: method, headers: headers,
                                              body: body.map { ByteBuffer(string: $0) }) {
            ($0.status, JSON.parse(Array($0.body.readableBytesView)))
        }
    }

    func message(_ json: JSON?) -> String? { json?.objectValue?.values.first?["message"]?.stringValue }

    @Test func remoteConsolesAnswerInNovasWords() async throws {
        try await withCloud { cloud in
            let vnc = #"{"remote_console": {"protocol": "vnc", "type": "novnc"}}"#
            // Nova's schema.
            var (status, json) = try await call(cloud, "/servers/\(cloud.active)/remote-consoles", token: cloud.member,
                                                body: #"{"remote_console": {"protocol": "telnet", "type": "novnc"}}"#)
            #expect(status == .badRequest)
            #expect(message(json)?.hasPrefix("Invalid input for field/attribute protocol. Value: telnet. 'telnet' is not one of") == true,
                    "\(String(describing: json))")
            (status, json) = try await call(cloud, "/servers/\(UUID().uuidString.lowercased())/remote-consoles", token: cloud.member,
                                            body: #"{"remote_console": {"protocol": "vnc"}}"#)
            #expect(status == .badRequest && message(json)?.contains("'type' is a required property") == true, "\(String(describing: json))")
            (status, json) = try await call(cloud, "/servers/\(cloud.active)/remote-consoles", token: cloud.member,
                                            body: #"{"remote_console": {"protocol": "mks", "type": "webmks"}}"#, version: "2.6")
            #expect(status == .badRequest, "mks only from 2.8")
            // Types the schema takes but this cloud does not serve.
            for (proto, type, words) in [("vnc", "xvpvnc", "Invalid console type xvpvnc"), ("spice", "spice-html5", "Unavailable console type spice-html5."),
                                         ("rdp", "rdp-html5", "Unavailable console type rdp."), ("serial", "novnc", "Invalid console type novnc")] {
                (status, json) = try await call(cloud, "/servers/\(cloud.active)/remote-consoles", token: cloud.member,
                                                body: #"{"remote_console": {"protocol": "\#(proto)", "type": "\#(type)"}}"#)
                #expect(status == .badRequest && message(json) == words, "\(proto)/\(type): \(String(describing: json))")
            }
            // State: not on a host, not active → 409.
            (status, json) = try await call(cloud, "/servers/\(cloud.unplaced)/remote-consoles", token: cloud.member, body: vnc)
            #expect(status == .conflict && message(json) == "Instance \(cloud.unplaced) is not ready", "\(String(describing: json))")
            (status, json) = try await call(cloud, "/servers/\(cloud.stopped)/remote-consoles", token: cloud.member, body: vnc)
            #expect(status == .conflict && message(json) == "Instance \(cloud.stopped) is not ready", "\(String(describing: json))")
            // Another project's server does not exist for the caller.
            (status, json) = try await call(cloud, "/servers/\(cloud.stopped)/remote-consoles", token: cloud.otherMember, body: vnc)
            #expect(status == .notFound && message(json) == "Instance \(cloud.stopped) could not be found.", "\(String(describing: json))")
            // Before 2.6 the resource does not exist; the old actions serve instead, and only there.
            (status, _) = try await call(cloud, "/servers/\(cloud.stopped)/remote-consoles", token: cloud.member, body: vnc, version: "2.5")
            #expect(status == .notFound)
            (status, json) = try await call(cloud, "/servers/\(cloud.stopped)/action", token: cloud.member,
                                            body: #"{"os-getVNCConsole": {"type": "novnc"}}"#, version: "2.5")
            #expect(status == .conflict && message(json) == "Instance \(cloud.stopped) is not ready", "\(String(describing: json))")
            (status, json) = try await call(cloud, "/servers/\(cloud.stopped)/action", token: cloud.member,
                                            body: #"{"os-getSerialConsole": {"type": "novnc"}}"#, version: "2.1")
            #expect(status == .badRequest && message(json)?.hasPrefix("Invalid input for field/attribute type. Value: novnc. 'novnc' is not one of") == true,
                    "\(String(describing: json))")
            (status, json) = try await call(cloud, "/servers/\(cloud.stopped)/action", token: cloud.member,
                                            body: #"{"os-getVNCConsole": {}}"#, version: "2.1")
            #expect(status == .badRequest && message(json)?.contains("'type' is a required property") == true, "\(String(describing: json))")
            (status, _) = try await call(cloud, "/servers/\(cloud.stopped)/action", token: cloud.member,
                                         body: #"{"os-getVNCConsole": {"type": "novnc"}}"#, version: "2.6")
            #expect(status == .notFound, "the action is gone from 2.6")
        }
    }

    @Test func consoleAuthTokensAreForAdmins() async throws {
        try await withCloud { cloud in
            let token = try await cloud.tokens.issue(
                ConsoleToken(consoleType: "novnc", instanceID: cloud.active, computeHost: "node-1", host: "127.0.0.1", port: 5900),
                accessURLBase: "http://controller:6080/vnc_lite.html")
            var (status, json) = try await call(cloud, "/os-console-auth-tokens/\(token)", token: cloud.admin, method: .get)
            #expect(status == .ok)
            #expect(json == ["console": ["instance_uuid": .string(cloud.active), "host": "127.0.0.1", "port": 5900, "internal_access_path": nil]],
                    "\(String(describing: json))")
            (status, _) = try await call(cloud, "/os-console-auth-tokens/\(token)", token: cloud.member, method: .get)
            #expect(status == .forbidden, "admin only by default")
            (status, json) = try await call(cloud, "/os-console-auth-tokens/\(token)", token: cloud.admin, method: .get, version: "2.30")
            #expect(status == .badRequest, "before 2.31 only rdp-html5 tokens were shown")
            (status, json) = try await call(cloud, "/os-console-auth-tokens/unknown", token: cloud.admin, method: .get)
            #expect(status == .notFound && message(json) == "Token not found")
            // Looking does not use it up.
            #expect(try await cloud.tokens.take(token) != nil)
            (status, _) = try await call(cloud, "/os-console-auth-tokens/\(token)", token: cloud.admin, method: .get)
            #expect(status == .notFound, "a taken token is gone")
        }
    }
}
