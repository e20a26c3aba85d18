import LibvirtDriver
import TestSupport
import Testing

/// The host CPU's features as Placement's traits come from them: libvirt's capabilities,
/// expanded by the model's implied features.
@Suite struct CPUFeatureTests {
    @Test func theHostCPUsFeaturesThroughLibvirtd() throws {
        try Requirement.root()
        try Requirement.libvirtd()
        let connection = try LibvirtConnection(uri: "qemu:///system")
        let (arch, features) = try connection.hostCPUFeatures()
        #expect(arch == "x86_64")
        // Every x86-64 CPU has SSE2; the expansion lists it even when the model implies it.
        #expect(features.contains("sse2"), "\(features)")
        #expect(features.count > 10 && features == features.sorted())
        // The simulated hypervisor answers too (a test node's provider gets its flags, if any).
        _ = try LibvirtConnection(uri: "test:///default").hostCPUFeatures()
    }
}
