import Contracts
import Foundation
@testable import NodeCompute
import Testing

/// The node's side of Nova's diagnostics and crash dumps on the hypervisor double: a running
/// guest's counters, only its power state otherwise; an NMI only into a guest that runs.
@Suite struct ComputeDiagnosticsTests {
    @Test func diagnosticsOfARunningGuestOnly() async throws {
        let rig = try await ComputeStateMachineTests.Rig()
        defer { rig.remove() }
        let id = try await rig.built()
        let running = try await rig.compute.diagnostics(id)
        #expect(running.powerState == .running)
        let diagnostics = try #require(running.diagnostics)
        #expect(diagnostics.driver == "double" && diagnostics.hypervisor == "test")
        #expect(diagnostics.maxMemoryKiB == 128 * 1024 && diagnostics.cpus.map(\.id) == [0])

        try await rig.compute.triggerCrashDump(id, context: RequestContext())
        _ = try await rig.act(id, .stop)
        let stopped = try await rig.compute.diagnostics(id)
        #expect(stopped == GetDiagnostics.Result(powerState: .shutdown, diagnostics: nil))
        await #expect(throws: (any Error).self) { try await rig.compute.triggerCrashDump(id, context: RequestContext()) }
        // A guest this node does not have has no state here.
        let unknown = try await rig.compute.diagnostics(UUID().uuidString.lowercased())
        #expect(unknown == GetDiagnostics.Result(powerState: .noState, diagnostics: nil))
    }
}
