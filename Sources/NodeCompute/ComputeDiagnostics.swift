import Contracts
import Foundation
import LibvirtDriver
import RPC

/// Nova's server diagnostics and crash dumps, on the node: what a running guest has used (from
/// the hypervisor's counters) and a non-maskable interrupt sent into it.
extension ComputeService {
    func registerDiagnostics(on server: RPCServer) {
        server.register(GetDiagnostics.self) { [self] arguments, _ in
            try await diagnostics(arguments.instanceID)
        }
        server.register(TriggerCrashDump.self) { [self] arguments, context in
            try await triggerCrashDump(arguments.instanceID, context: context)
            return Nothing()
        }
    }

    /// The instance's domain state, when this node's instance has one here.
    func ownState(_ id: String) async throws -> GuestState {
        guard let state = try await hypervisor.state(id), let xml = try await hypervisor.definition(id),
              InstanceDomain.isPetrels(xml, host: host) else {
            throw Refused(description: "instance \(id) has no domain on \(host)", retryable: false)
        }
        return state
    }

    /// The diagnostics of a running guest; only its power state otherwise (no state when this
    /// node has no domain for it, as Nova's reads an instance the hypervisor does not have).
    func diagnostics(_ id: String) async throws -> GetDiagnostics.Result {
        let power: PowerState
        do {
            power = Self.power(try await ownState(id))
        } catch is Refused {
            return GetDiagnostics.Result(powerState: .noState, diagnostics: nil)
        }
        guard power == .running, let statistics = try await hypervisor.statistics(id), statistics.state == .running else {
            return GetDiagnostics.Result(powerState: power, diagnostics: nil)
        }
        return GetDiagnostics.Result(powerState: .running, diagnostics: Self.diagnostics(statistics, info: hypervisor.info))
    }

    static func diagnostics(_ statistics: DomainStatistics, info: HypervisorInfo) -> InstanceDiagnostics {
        InstanceDiagnostics(
            driver: info.name, hypervisor: info.domainType, maxMemoryKiB: statistics.maxMemoryKiB, memoryKiB: statistics.memoryKiB,
            cpus: statistics.vcpus.map { InstanceDiagnostics.CPU(id: $0.number, timeNanoseconds: $0.timeNanoseconds) },
            memoryStatistics: statistics.memory,
            disks: statistics.disks.map {
                InstanceDiagnostics.Disk(device: $0.device, readRequests: $0.readRequests, readBytes: $0.readBytes,
                                         writeRequests: $0.writeRequests, writeBytes: $0.writeBytes, errors: $0.errors)
            },
            nics: statistics.interfaces.map { nic in
                InstanceDiagnostics.NIC(macAddress: nic.macAddress, device: nic.device, counters: nic.counters.map {
                    .init(rxBytes: $0.rxBytes, rxPackets: $0.rxPackets, rxErrors: $0.rxErrors, rxDrop: $0.rxDrop,
                          txBytes: $0.txBytes, txPackets: $0.txPackets, txErrors: $0.txErrors, txDrop: $0.txDrop)
                })
            })
    }

    /// Sends the NMI (Nova's `trigger_crash_dump`): the guest must be running or paused.
    func triggerCrashDump(_ id: String, context: RequestContext) async throws {
        let state = try await ownState(id)
        guard [.running, .blocked, .paused].contains(state) else {
            throw Refused(description: "Instance \(id) is not running.", retryable: false)
        }
        try await hypervisor.injectNMI(id)
        logger.info("crash dump triggered (NMI sent)", metadata: ["instance": "\(id)", "request_id": "\(context.requestID)"])
    }
}
