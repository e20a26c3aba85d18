import Compute
import ComputeAPI
import Contracts
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

/// A node's compute queue in a test: answers diagnostics as a hypervisor would (the running
/// server's, the power state of the others) and records the NMIs it is asked to send.
final class DiagnosticsNode: @unchecked Sendable {
    let host = TestNames.unique("diag-node-")
    let lock = NSLock()
    var running: Set<String> = []
    var refusing: Set<String> = []
    private(set) var nmis: [String] = []
    let sample = InstanceDiagnostics(
        driver: "libvirt", hypervisor: "qemu", maxMemoryKiB: 131_072, memoryKiB: 131_072,
        cpus: [.init(id: 0, timeNanoseconds: 17_300_000_000)], memoryStatistics: ["actual": 131_072, "rss": 50_000],
        disks: [.init(device: "vda", readRequests: 112, readBytes: 262_144, writeRequests: 488, writeBytes: 5_778_432, errors: -1)],
        nics: [.init(macAddress: "fa:16:3e:00:00:01", device: "tapabcdef01-23",
                     counters: .init(rxBytes: 2_070_139, rxPackets: 26_701, rxErrors: 0, rxDrop: 1, txBytes: 140_208, txPackets: 662,
                                     txErrors: 0, txDrop: 0)),
               .init(macAddress: "fa:16:3e:00:00:02", device: nil, counters: nil)])

    func serve(on server: RPCServer) {
        server.register(GetDiagnostics.self) { [self] arguments, _ in
            lock.withLock { running.contains(arguments.instanceID) }
                ? .init(powerState: .running, diagnostics: sample) : .init(powerState: .shutdown, diagnostics: nil)
        }
        server.register(TriggerCrashDump.self) { [self] arguments, _ in
            try lock.withLock {
                if refusing.contains(arguments.instanceID) { throw HypervisorRefusal() }
                nmis.append(arguments.instanceID)
            }
            return Nothing()
        }
    }

    var sent: [String] { lock.withLock { nmis } }

    struct HypervisorRefusal: Error, CustomStringConvertible { var description: String { "Triggering crash dump is not supported" } }
}

/// Nova's server diagnostics and `trigger_crash_dump` in process, against a node faked on
/// RabbitMQ: both formats, admin-only policy, Nova's 409s and the action they leave.
@Suite struct ServerDiagnosticsAPITests {
    struct Cloud: Sendable {
        let client: any TestClientProtocol
        let node: DiagnosticsNode
        let servers: Servers
        let admin: String
        let member: String
        let active: String
        let stopped: String
        let unplaced: String
        let refusing: String
    }

    func withCloud(_ body: @Sendable (Cloud) async throws -> Void) async throws {
        try Requirement.rabbitmq()
        try await BrokerUse.shared.withShared {
            try await withBootstrappedIdentity { database, service in
                let logger = Logger(label: "diagnostics-test")
                let defaults = KeystonePolicy.defaults + ComputeAPI.policyDefaults
                let identity = KeystoneAPI(service: service, policy: try Policy(defaults: defaults), publicURL: "http://controller:5000", logger: logger)
                let router = Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
                let hosts = HostInventory(database: database, serviceDownTime: 3600)
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-diag-\(UUID().uuidString)").path
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let images = try ImageService(database: database, directory: directory, sizeCap: 1 << 20)
                let networking = NetworkService(database: database, settings: .defaults, quotaDefaults: [:], hosts: hosts)
                let volumes = VolumeService(database: database, settings: .init(quotaDefaults: [:]), hosts: hosts,
                                            connect: { _, _ in throw CancellationError() }, sendSnapshot: { _, _ in },
                                            sendBackup: { _, _ in }) { _, _ in }
                let servers = Servers(database: database, images: images, quotas: Quotas(database: database, defaults: [:]),
                                      networking: networking, volumes: volumes)
                let transport = try #require(TransportURL(parsing: "rabbit://guest:guest@127.0.0.1:5672/"))
                let clientLink = BrokerLink(transport: transport, name: "diagnostics-test", logger: logger)
                let client = RPCClient(link: clientLink, logger: logger)
                let conductor = Conductor(servers: servers, scheduler: Scheduler(hosts: hosts, options: SchedulerOptions()),
                                          client: client, maxAttempts: 1, logger: logger)
                // The node's own queue only (`compute.<host>`), so no other test's messages come here.
                let node = DiagnosticsNode()
                let queue = RPCTopology.hostTopic(ComputeTopic.name, host: node.host)
                let nodeLink = BrokerLink(transport: transport, name: node.host, logger: logger)
                let rpcServer = RPCServer(link: nodeLink, topic: queue, host: nil, logger: logger)
                node.serve(on: rpcServer)
                let serving = Task { await rpcServer.run() }
                await rpcServer.ready()
                try await withCleanup {
                    ComputeAPI(environment: identity.environment, hosts: hosts, conductor: conductor, logger: logger).register(on: router)
                    identity.register(on: router)
                    let admin = try await adminToken(service)
                    let (project, member) = try await addProjectUser(service, project: "demo", user: "alice")
                    func server(_ state: String, host: String?) async throws -> String {
                        var row = InstanceRow(id: UUID().uuidString.lowercased(), name: "vm-\(state)", projectID: project, userID: "u",
                                              flavorID: "f", vcpus: 1, memoryMB: 128, rootGB: 1, imageID: nil, availabilityZone: nil,
                                              createdAt: Int64(Date().timeIntervalSince1970 * 1000))
                        row.host = host
                        row.vmState = state
                        row.taskState = nil
                        row.launchedAt = Int64(Date().timeIntervalSince1970 * 1000) - 90_000
                        row.configDrive = true
                        let inserted = row
                        try await database.withConnection { sql in try await ComputeTables.instances.insert(sql, inserted) }
                        return row.id
                    }
                    let active = try await server("active", host: node.host)
                    let stopped = try await server("stopped", host: node.host)
                    let unplaced = try await server("error", host: nil)
                    let refusing = try await server("paused", host: node.host)
                    node.lock.withLock {
                        node.running.insert(active)
                        node.refusing.insert(refusing)
                    }
                    try await Application(router: router).test(.router) { http in
                        try await body(Cloud(client: http, node: node, servers: servers, admin: admin, member: member, active: active,
                                             stopped: stopped, unplaced: unplaced, refusing: refusing))
                    }
                } cleanup: {
                    client.stop()
                    serving.cancel()
                    if let connection = try? await clientLink.connection(patience: .seconds(10)) {
                        try? await connection.deleteQueue(queue)
                        try? await connection.deleteExchange(RPCTopology.fanoutExchange(queue))
                    }
                    await nodeLink.close()
                    await clientLink.close()
                }
            }
        }
    }

    func call(_ cloud: Cloud, _ path: String, token: String, method: HTTPRequest.Method = .get, body: String? = nil,
              version: String = "2.48") async throws -> (HTTPResponse.Status, JSON?) {
        let headers: HTTPFields = [HTTPField.Name("X-Auth-Token")!: token, .contentType: "application/json",
                                   HTTPField.Name("OpenStack-API-Version")!: "compute \(version)"]
        return try await cloud.client.execute(uri: "/compute/v2.1" + path, method: method, headers: headers,
                                              body: body.map { ByteBuffer(string: $0) }) {
            ($0.status, JSON.parse(Array($0.body.readableBytesView)))
        }
    }

    func message(_ json: JSON?) -> String? { json?.objectValue?.values.first?["message"]?.stringValue }

    @Test func diagnosticsInBothFormatsForAdmins() async throws {
        try await withCloud { cloud in
            // 2.48: Nova's standard format, the keys of its API sample.
            var (status, json) = try await call(cloud, "/servers/\(cloud.active)/diagnostics", token: cloud.admin)
            #expect(status == .ok, "\(String(describing: json))")
            let standard = try #require(json?.objectValue)
            #expect(Set(standard.keys) == ["config_drive", "cpu_details", "disk_details", "driver", "hypervisor", "hypervisor_os",
                                            "memory_details", "nic_details", "num_cpus", "num_disks", "num_nics", "state", "uptime"])
            #expect(standard["state"] == "running" && standard["driver"] == "libvirt" && standard["hypervisor"] == "qemu")
            #expect(standard["hypervisor_os"] == "linux" && standard["config_drive"] == true)
            #expect(standard["num_cpus"] == 1 && standard["num_disks"] == 1 && standard["num_nics"] == 2)
            if case .number(let uptime)? = standard["uptime"] { #expect(uptime >= 89 && uptime < 200) } else { Issue.record("uptime") }
            #expect(standard["memory_details"] == ["maximum": 128, "used": 128])
            #expect(standard["cpu_details"] == [["id": 0, "time": 17_300_000_000, "utilisation": nil]])
            #expect(standard["disk_details"] == [["read_bytes": 262_144, "read_requests": 112, "write_bytes": 5_778_432,
                                                  "write_requests": 488, "errors_count": -1]])
            #expect(standard["nic_details"] == [
                ["mac_address": "fa:16:3e:00:00:01", "rx_octets": 2_070_139, "rx_errors": 0, "rx_drop": 1, "rx_packets": 26_701, "rx_rate": nil,
                 "tx_octets": 140_208, "tx_errors": 0, "tx_drop": 0, "tx_packets": 662, "tx_rate": nil],
                ["mac_address": "fa:16:3e:00:00:02", "rx_octets": nil, "rx_errors": nil, "rx_drop": nil, "rx_packets": nil, "rx_rate": nil,
                 "tx_octets": nil, "tx_errors": nil, "tx_drop": nil, "tx_packets": nil, "tx_rate": nil],
            ])
            // Before 2.48: the libvirt driver's free-form dictionary.
            (status, json) = try await call(cloud, "/servers/\(cloud.active)/diagnostics", token: cloud.admin, version: "2.47")
            #expect(status == .ok)
            #expect(json == ["cpu0_time": 17_300_000_000, "vda_read_req": 112, "vda_read": 262_144, "vda_write_req": 488,
                             "vda_write": 5_778_432, "vda_errors": -1, "tapabcdef01-23_rx": 2_070_139, "tapabcdef01-23_rx_packets": 26_701,
                             "tapabcdef01-23_rx_errors": 0, "tapabcdef01-23_rx_drop": 1, "tapabcdef01-23_tx": 140_208,
                             "tapabcdef01-23_tx_packets": 662, "tapabcdef01-23_tx_errors": 0, "tapabcdef01-23_tx_drop": 0,
                             "memory": 131_072, "memory-actual": 131_072, "memory-rss": 50_000], "\(String(describing: json))")
            // Admins only, by Nova's default policy.
            (status, _) = try await call(cloud, "/servers/\(cloud.active)/diagnostics", token: cloud.member)
            #expect(status == .forbidden)
            // Not running, not on a host: Nova's 409s.
            (status, json) = try await call(cloud, "/servers/\(cloud.stopped)/diagnostics", token: cloud.admin)
            #expect(status == .conflict && message(json) == "Cannot 'get_diagnostics' instance \(cloud.stopped) while it is in power state shutdown",
                    "\(String(describing: json))")
            (status, json) = try await call(cloud, "/servers/\(cloud.unplaced)/diagnostics", token: cloud.admin)
            #expect(status == .conflict && message(json) == "Instance \(cloud.unplaced) is not ready", "\(String(describing: json))")
            (status, _) = try await call(cloud, "/servers/\(UUID().uuidString.lowercased())/diagnostics", token: cloud.admin)
            #expect(status == .notFound)
        }
    }

    @Test func triggerCrashDumpAsNova() async throws {
        try await withCloud { cloud in
            let dump = #"{"trigger_crash_dump": null}"#
            // Before 2.17 there is no such action.
            var (status, json) = try await call(cloud, "/servers/\(cloud.active)/action", token: cloud.member, method: .post, body: dump,
                                                version: "2.16")
            #expect(status == .badRequest && message(json) == "There is no such action: trigger_crash_dump", "\(String(describing: json))")
            #expect(cloud.node.sent.isEmpty)
            (status, json) = try await call(cloud, "/servers/\(cloud.active)/action", token: cloud.member, method: .post,
                                            body: #"{"trigger_crash_dump": {}}"#, version: "2.17")
            #expect(status == .badRequest, "\(String(describing: json))")
            // The owner may; the host sends the NMI; the action is recorded with its host's event.
            (status, json) = try await call(cloud, "/servers/\(cloud.active)/action", token: cloud.member, method: .post, body: dump,
                                            version: "2.17")
            #expect(status == .accepted, "\(String(describing: json))")
            #expect(cloud.node.sent == [cloud.active])
            var actions = try await cloud.servers.actions(of: cloud.active)
            #expect(actions.map(\.action) == ["trigger_crash_dump"] && actions.first?.message == nil)
            var requestID = try #require(actions.first?.requestID)
            var record = try #require(try await cloud.servers.action(of: cloud.active, requestID: requestID))
            #expect(record.events.map(\.event) == ["compute_trigger_crash_dump"] && record.events.first?.result == "Success")
            #expect(record.events.first?.host == cloud.node.host)
            // What the host could not do is the event's error; the API still answers 202 (Nova casts).
            (status, _) = try await call(cloud, "/servers/\(cloud.refusing)/action", token: cloud.member, method: .post, body: dump)
            #expect(status == .accepted)
            actions = try await cloud.servers.actions(of: cloud.refusing)
            #expect(actions.first?.message == "Error")
            requestID = try #require(actions.first?.requestID)
            record = try #require(try await cloud.servers.action(of: cloud.refusing, requestID: requestID))
            #expect(record.events.first?.result == "Error" && record.events.first?.details?.contains("not supported") == true,
                    "\(record.events)")
            // Nova's states: not when stopped, nor before a host was found.
            (status, json) = try await call(cloud, "/servers/\(cloud.stopped)/action", token: cloud.member, method: .post, body: dump)
            #expect(status == .conflict && message(json) == "Cannot 'trigger_crash_dump' instance \(cloud.stopped) while it is in vm_state stopped",
                    "\(String(describing: json))")
            (status, json) = try await call(cloud, "/servers/\(cloud.unplaced)/action", token: cloud.member, method: .post, body: dump)
            #expect(status == .conflict && message(json) == "Instance \(cloud.unplaced) is not ready", "\(String(describing: json))")
            // Locked: refused to its owner, not to an admin.
            (status, _) = try await call(cloud, "/servers/\(cloud.active)/action", token: cloud.admin, method: .post, body: #"{"lock": null}"#)
            #expect(status == .accepted)
            (status, json) = try await call(cloud, "/servers/\(cloud.active)/action", token: cloud.member, method: .post, body: dump)
            #expect(status == .conflict && message(json) == "Instance \(cloud.active) is locked", "\(String(describing: json))")
            (status, _) = try await call(cloud, "/servers/\(cloud.active)/action", token: cloud.admin, method: .post, body: dump)
            #expect(status == .accepted)
            #expect(cloud.node.sent == [cloud.active, cloud.active])
            #expect(cloud.node.sent.count == 2 && !cloud.node.sent.contains(cloud.stopped))
        }
    }
}
