import Contracts
import Foundation
import Glibc
import LibvirtDriver
@testable import NodeCompute
import TestSupport
import Testing

/// The guest side of remote consoles: a serial port over TCP that still logs to the console
/// file, libvirt taking it as written, the listeners read back from domain XML, and the ports
/// handed out.
@Suite struct ConsoleDomainTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-console-\(UUID().uuidString)").path

    func spec() -> InstanceSpec {
        InstanceSpec(id: UUID().uuidString.lowercased(), name: "console", projectID: "p", userID: "u", host: "h",
                     flavor: .init(id: "f", name: "m1.tiny", vcpus: 1, memoryMB: 128, rootGB: 1, ephemeralGB: 0, swapMB: 0, extraSpecs: [:]),
                     image: .init(id: "img", diskFormat: "qcow2", checksum: nil, size: nil, properties: [:]),
                     vmState: .building, taskState: .spawning, stamp: 0)
    }

    @Test func aSerialConsoleIsATCPPortThatStillLogs() async throws {
        try Requirement.root()
        try Requirement.libvirtd()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = ConsoleOptions()
        options.serialEnabled = true
        options.serialListen = "127.0.0.1"
        let domain = InstanceDomain(domainType: "qemu", cpuMode: "none", vncListen: "127.0.0.1", emulator: nil).with(consoles: options)
        let spec = spec()
        let files = InstanceFiles(root: directory, id: spec.id)
        // Without a port: the console file as before.
        let plain = domain.definition(spec, files: files, host: "h").xml
        #expect(plain.contains("<serial type='file'>") && InstanceDomain.serialListener(in: plain) == nil)
        // With one: libvirt stores the TCP listener with its log.
        let connection = try LibvirtConnection(uri: "qemu:///system")
        let defined = try connection.define(xml: domain.definition(spec, files: files, host: "h", serialPort: 10_777).xml)
        defer { try? defined.undefine() }
        let stored = try defined.xml(inactive: true)
        #expect(stored.contains("<serial type='tcp'>") && stored.contains("<log file='\(files.console)' append='off'/>"), "\(stored)")
        #expect(!stored.contains("<serial type='file'>"))
        let listener = try #require(InstanceDomain.serialListener(in: stored))
        #expect(listener.host == "127.0.0.1" && listener.port == 10_777)
        #expect(stored.contains("<graphics type='vnc'"))
        #expect(InstanceDomain.vncPort(in: stored) == nil, "no VNC port until the guest runs")
    }

    @Test func theLiveVNCPortIsReadFromTheRunningDomain() {
        // As libvirt writes a running guest's graphics (the port it chose with autoport).
        let live = """
            <domain type='qemu' id='7'><devices>
                <graphics type='vnc' port='5907' autoport='yes' listen='127.0.0.1'>
                  <listen type='address' address='127.0.0.1'/>
                </graphics>
                <serial type='tcp'>
                  <source mode='bind' host='127.0.0.1' service='10003' tls='no'/>
                  <protocol type='raw'/>
                  <target type='isa-serial' port='0'><model name='isa-serial'/></target>
                </serial>
            </devices></domain>
            """
        #expect(InstanceDomain.vncPort(in: live) == 5907)
        #expect(InstanceDomain.serialListener(in: live)?.port == 10003)
        #expect(InstanceDomain.vncPort(in: "<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>") == nil)
    }

    @Test func serialPortsAreNeverHandedOutTwice() async throws {
        // A port something listens on is skipped, as are the domains' ports and those just given.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound)
        let busy = Int(UInt16(bigEndian: address.sin_port))
        #expect(!SerialPortPool.bindable(host: "127.0.0.1", port: busy))
        let pool = SerialPortPool()
        let range = busy...(busy + 3)
        let first = await pool.reserve(in: range, excluding: [busy + 1], host: "127.0.0.1")
        let second = await pool.reserve(in: range, excluding: [busy + 1], host: "127.0.0.1")
        let third = await pool.reserve(in: range, excluding: [busy + 1], host: "127.0.0.1")
        #expect(first == busy + 2 && second == busy + 3, "\(String(describing: first)) \(String(describing: second))")
        #expect(third == nil, "the range is used up")
    }
}
