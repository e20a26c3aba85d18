import Compute
import Contracts
import Foundation
import Hummingbird
import PetrelCore
import PetrelHTTP

/// `os-server-diagnostics` (`GET /servers/{id}/diagnostics`, admins only) and the
/// `trigger_crash_dump` action (2.17): what a running server has used, as its host's
/// hypervisor counts it, and an NMI sent into it.
extension ComputeAPI {
    static let serverDiagnosticsPolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:os-server-diagnostics", "rule:context_is_admin", "Show a running server's diagnostics.",
                      ["GET /compute/v2.1/servers/{server_id}/diagnostics"]),
        PolicyDefault("os_compute_api:servers:trigger_crash_dump", ownerMember, "Send an NMI to a server: its guest may write a crash dump.",
                      ["POST /compute/v2.1/servers/{server_id}/action (trigger_crash_dump)"]),
    ]

    func registerServerDiagnostics(on v21: APIRoutes) {
        v21.get("servers/:server_id/diagnostics", query: NovaQuerySchemas.open) { request, context in
            let id = try context.parameters.require("server_id")
            let (server, caller, version, who) = try await authorizedServer(request, context, id, "os_compute_api:os-server-diagnostics")
            guard let host = server.host else { throw APIFault(.conflict, "Instance \(server.id) is not ready") }
            let reading = try await serverConductor.diagnostics(server.id, on: host, context: rpcContext(caller, who))
            guard let diagnostics = reading.diagnostics else {
                throw APIFault(.conflict, "Cannot 'get_diagnostics' instance \(server.id) while it is in power state \(Self.novaPowerState(reading.powerState))")
            }
            if version >= Microversion(2, 48) {
                return answer(.ok, Self.diagnosticsJSON(diagnostics, server: server), version)
            }
            return answer(.ok, Self.legacyDiagnosticsJSON(diagnostics), version)
        }
    }

    /// Nova's names of the power states (`power_state.STATE_MAP`).
    static func novaPowerState(_ state: PowerState) -> String {
        switch state {
        case .noState: "pending"
        case .running: "running"
        case .paused: "paused"
        case .shutdown: "shutdown"
        case .crashed: "crashed"
        case .suspended: "suspended"
        }
    }

    /// The standard format (2.48): state, driver and hypervisor, uptime, memory in MiB, and a
    /// list per vCPU, disk and NIC; what the hypervisor does not count is null.
    static func diagnosticsJSON(_ diagnostics: InstanceDiagnostics, server: Server) -> JSON {
        func number(_ value: Int64?) -> JSON { value.map { .number(Double($0)) } ?? .null }
        let uptime: JSON = server.launchedAt.map { .number(Double(max(0, (Int64(Date().timeIntervalSince1970 * 1000) - $0) / 1000))) } ?? .null
        let cpus: [JSON] = diagnostics.cpus.map { cpu in
            .object(["id": .number(Double(cpu.id)), "time": .number(Double(cpu.timeNanoseconds)), "utilisation": .null])
        }
        let disks: [JSON] = diagnostics.disks.map { disk in
            .object(["read_bytes": number(disk.readBytes), "read_requests": number(disk.readRequests), "write_bytes": number(disk.writeBytes),
                     "write_requests": number(disk.writeRequests), "errors_count": number(disk.errors)])
        }
        let nics: [JSON] = diagnostics.nics.map { nic in
            let counters = nic.counters
            return .object(["mac_address": .string(nic.macAddress),
                            "rx_octets": number(counters?.rxBytes), "rx_errors": number(counters?.rxErrors), "rx_drop": number(counters?.rxDrop),
                            "rx_packets": number(counters?.rxPackets), "rx_rate": .null,
                            "tx_octets": number(counters?.txBytes), "tx_errors": number(counters?.txErrors), "tx_drop": number(counters?.txDrop),
                            "tx_packets": number(counters?.txPackets), "tx_rate": .null])
        }
        return .object([
            "state": .string(novaPowerState(.running)), "driver": .string(diagnostics.driver), "hypervisor": .string(diagnostics.hypervisor),
            "hypervisor_os": "linux", "uptime": uptime, "config_drive": .bool(server.configDrive),
            "num_cpus": .number(Double(cpus.count)), "num_disks": .number(Double(disks.count)), "num_nics": .number(Double(nics.count)),
            "memory_details": .object(["maximum": .number(Double(diagnostics.maxMemoryKiB / 1024)),
                                       "used": .number(Double(diagnostics.memoryKiB / 1024))]),
            "cpu_details": .array(cpus), "disk_details": .array(disks), "nic_details": .array(nics),
        ])
    }

    /// The free-form dictionary of Nova's libvirt driver before 2.48: `cpu<N>_time`, per disk
    /// `<dev>_read_req`/`_read`/`_write_req`/`_write`/`_errors`, per NIC with a host device
    /// `<tap>_rx`/`_rx_packets`/…/`_tx_drop`, `memory` (KiB) and `memory-<statistic>`.
    static func legacyDiagnosticsJSON(_ diagnostics: InstanceDiagnostics) -> JSON {
        var object: [String: JSON] = [:]
        func set(_ key: String, _ value: Int64) { object[key] = .number(Double(value)) }
        for cpu in diagnostics.cpus { object["cpu\(cpu.id)_time"] = .number(Double(cpu.timeNanoseconds)) }
        for disk in diagnostics.disks {
            set(disk.device + "_read_req", disk.readRequests)
            set(disk.device + "_read", disk.readBytes)
            set(disk.device + "_write_req", disk.writeRequests)
            set(disk.device + "_write", disk.writeBytes)
            set(disk.device + "_errors", disk.errors)
        }
        for nic in diagnostics.nics {
            guard let device = nic.device, let counters = nic.counters else { continue }
            set(device + "_rx", counters.rxBytes)
            set(device + "_rx_packets", counters.rxPackets)
            set(device + "_rx_errors", counters.rxErrors)
            set(device + "_rx_drop", counters.rxDrop)
            set(device + "_tx", counters.txBytes)
            set(device + "_tx_packets", counters.txPackets)
            set(device + "_tx_errors", counters.txErrors)
            set(device + "_tx_drop", counters.txDrop)
        }
        object["memory"] = .number(Double(diagnostics.maxMemoryKiB))
        for (key, value) in diagnostics.memoryStatistics { object["memory-" + key] = .number(Double(value)) }
        return .object(object)
    }

    /// `trigger_crash_dump` (2.17): Nova's checks (lock, host, vm state), then the host sends
    /// the NMI. As Nova's cast, the answer is 202 once asked; what the host did is the
    /// action's event (`openstack server event show`).
    func triggerCrashDump(_ server: Server, _ argument: JSON, _ version: Microversion, _ context: APIRequestContext, _ who: ServerCaller,
                          _ messageContext: Contracts.RequestContext) async throws -> Response {
        guard version >= Microversion(2, 17) else { throw APIFault(.badRequest, "There is no such action: trigger_crash_dump") }
        guard argument.isNull else {
            let value = String(decoding: argument.encoded(), as: UTF8.self)
            throw APIFault(.badRequest, "Invalid input for field/attribute trigger_crash_dump. Value: \(value). \(value) is not of type 'null'")
        }
        try context.enforce("os_compute_api:servers:trigger_crash_dump", target: ["project_id": server.projectID, "user_id": server.userID])
        let host = try await serverCall { try servers.crashDumpHost(server, by: who) }
        let started = Servers.nowMilliseconds
        var failure: String?
        do {
            try await serverConductor.triggerCrashDump(server.id, on: host, context: messageContext)
        } catch {
            failure = "\(error)"
            logger.warning("crash dump not triggered", metadata: ["instance": "\(server.id)", "host": "\(host)", "error": "\(error)"])
        }
        do {
            try await servers.recordFinishedAction(server.id, "trigger_crash_dump", event: "compute_trigger_crash_dump", host: host,
                                                   started: started, failure: failure, context: messageContext)
        } catch {
            logger.warning("could not record an instance action", metadata: ["instance": "\(server.id)", "action": "trigger_crash_dump",
                                                                              "error": "\(error)"])
        }
        return Response(status: .accepted, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
    }
}
