import LibvirtDriver
import NodeCompute

/// The double's counters: a running guest has used nothing yet, on one vCPU, with its
/// definition's memory; an NMI reaches only a guest that runs or is paused.
extension HypervisorDouble {
    func statistics(_ id: String) async throws -> DomainStatistics? {
        guard let guest = guest(id) else { return nil }
        let memoryKiB = UInt64(guest.definition.memoryMiB) * 1024
        return DomainStatistics(state: Self.domainState(guest.state), maxMemoryKiB: memoryKiB, memoryKiB: memoryKiB, vcpuCount: 1,
                                cpuTimeNanoseconds: 0, vcpus: [.init(number: 0, timeNanoseconds: 0)], memory: [:], disks: [], interfaces: [])
    }

    func injectNMI(_ id: String) async throws {
        guard let guest = guest(id) else { throw HypervisorError("no guest \(id)") }
        guard [.running, .paused].contains(guest.state) else { throw HypervisorError("Instance \(id) is not running.") }
    }

    static func domainState(_ state: GuestState) -> DomainState {
        DomainState(rawValue: state.rawValue) ?? .noState
    }
}
