import DnsmasqDriver
import Foundation
import LVMDriver
import TestSupport
import Testing

/// dnsmasq reads its files as `nobody`, so every directory on their path must be open to
/// others. liblvm2cmd holds the process umask at 077 while each LVM command runs (even with
/// `global/umask=022`, during its start), and the volume role runs it in the same process as
/// the DHCP agent: measured here, about 1 in 70 directories made with FileManager meanwhile came
/// out 0700 — the intermittent "no DHCP lease" of full test runs.
/// Part of the serialized `LVMTests`: its LVM commands would otherwise overlap that suite's
/// check that LVM's umask does not leak into the process.
extension LVMTests {
    @Test func directoriesForDnsmasqStayOpenWhileLVMRuns() async throws {
        try Requirement.root()
        let lvm = LVM()
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-dirmode-\(UUID().uuidString)").path
        try DnsmasqDriver.makeDirectory(base)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let maker = Task.detached { () -> (made: Int, closed: [String]) in
            var made = 0
            var closed: [String] = []
            while !Task.isCancelled {
                let leaf = base + "/n\(made)/dhcp/net"
                do { try DnsmasqDriver.makeDirectory(leaf) } catch { closed.append("\(leaf): \(error)"); break }
                for path in [base + "/n\(made)", base + "/n\(made)/dhcp", leaf] {
                    var info = stat()
                    if stat(path, &info) != 0 || info.st_mode & 0o777 != 0o755 {
                        closed.append("\(path) \(String(info.st_mode & 0o777, radix: 8))")
                    }
                }
                made += 1
            }
            return (made, closed)
        }
        for _ in 0..<30 { _ = try await lvm.volumeGroups() }
        maker.cancel()
        let result = await maker.value
        #expect(result.made > 100, "only \(result.made) directories made while LVM ran")
        let closedCount = result.closed.count
        #expect(closedCount == 0, "\(closedCount) of \(result.made * 3) not 0755: \(result.closed.prefix(5))")
    }
}
