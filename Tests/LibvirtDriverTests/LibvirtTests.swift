import Foundation
import LibvirtDriver
import TestSupport
import Testing

func domainXML(name: String, uuid: String = UUID().uuidString.lowercased(), type: String) -> String {
    """
    <domain type='\(type)'>
      <name>\(name)</name>
      <uuid>\(uuid)</uuid>
      <memory unit='MiB'>32</memory>
      <vcpu>1</vcpu>
      <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
      <devices>\(type == "test" ? "" : "<emulator>/usr/bin/qemu-system-x86_64</emulator>")</devices>
    </domain>
    """
}

/// Collects lifecycle events for one domain into an actor-protected list.
actor EventLog {
    var events: [LifecycleEvent] = []
    func add(_ event: LifecycleEvent) { events.append(event) }
    func kinds() -> [LifecycleEvent.Kind] { events.map(\.kind) }

    /// Whether `expected` occurred in this order (QEMU adds events in between, e.g.
    /// `resumed` before `started` and `shutdown` before `stopped`).
    func saw(inOrder expected: [LifecycleEvent.Kind]) -> Bool {
        var remaining = expected[...]
        for kind in kinds() where kind == remaining.first { remaining = remaining.dropFirst() }
        return remaining.isEmpty
    }
}

func follow(_ connection: LibvirtConnection, domain name: String) throws -> (EventLog, Task<Void, Never>) {
    let log = EventLog()
    let stream = try connection.lifecycleEvents()
    let task = Task {
        for await event in stream where event.domainName == name { await log.add(event) }
    }
    return (log, task)
}

@Suite struct LibvirtTestDriverTests {
    @Test func lifecycleOnTheSimulatedHypervisor() async throws {
        let connection = try LibvirtConnection(uri: "test:///default")
        let name = TestNames.unique("petrel-test-")
        let uuid = UUID().uuidString.lowercased()
        let (events, follower) = try follow(connection, domain: name)
        defer { follower.cancel() }

        let domain = try connection.define(xml: domainXML(name: name, uuid: uuid, type: "test"))
        defer { if let d = try? connection.domain(named: name) { try? d.destroy(); try? d.undefine() } }
        #expect(domain.uuid == uuid)
        #expect(try domain.state() == .shutOff)
        let listed = try #require(try connection.listDomains().first { $0.name == name })
        #expect(listed.uuid == uuid && listed.state == .shutOff && listed.persistent)
        #expect(try connection.domain(uuid: uuid)?.name == name)

        try domain.start()
        #expect(try domain.state() == .running)
        try domain.suspend()
        #expect(try domain.state() == .paused)
        try domain.resume()
        try domain.shutdown()
        #expect(try domain.state() == .shutOff)
        try domain.start()
        try domain.destroy()
        #expect(try domain.state() == .shutOff)
        let xml = try domain.xml()
        #expect(xml.contains("<name>\(name)</name>") && xml.contains(uuid))
        try domain.undefine()
        #expect(try connection.domain(named: name) == nil)

        let sawAll = await eventually {
            let kinds = await events.kinds()
            return kinds == [.defined, .started, .suspended, .resumed, .stopped, .started, .stopped, .undefined]
        }
        let seen = await events.kinds()
        #expect(sawAll, "events: \(seen)")
    }

    @Test func errorsAreLibvirtErrors() throws {
        let connection = try LibvirtConnection(uri: "test:///default")
        #expect(try connection.domain(named: "petrel-no-such-domain") == nil)
        #expect(try connection.domain(uuid: UUID().uuidString) == nil)
        do {
            try connection.define(xml: "<domain type='test'><name>broken")
            Issue.record("bad XML accepted")
        } catch let error as LibvirtError {
            #expect(error.description.contains("define domain"))
        }
        #expect(throws: LibvirtError.self) { try LibvirtConnection(uri: "bogus:///nothing") }
        let host = try connection.hostInfo()
        #expect(host.cpus > 0 && host.memoryKiB > 0 && host.hypervisorType == "TEST")
    }
}

@Suite struct LibvirtQEMUTests {
    @Test func qemuDomainLifecycleThroughLibvirtd() async throws {
        try Requirement.root()
        try Requirement.libvirtd()
        let connection = try LibvirtConnection(uri: "qemu:///system")
        let host = try connection.hostInfo()
        #expect(host.hypervisorType == "QEMU" && host.cpus > 0)
        let name = TestNames.unique("petrel-test-")
        let (events, follower) = try follow(connection, domain: name)
        defer { follower.cancel() }

        let domain = try connection.define(xml: domainXML(name: name, type: "qemu"))
        defer { if let d = try? connection.domain(named: name) { try? d.destroy(); try? d.undefine() } }
        try domain.start()
        #expect(try domain.state() == .running)
        #expect(try connection.listDomains().first { $0.name == name }?.state == .running)
        #expect(try domain.xml().contains("<emulator>/usr/bin/qemu-system-x86_64</emulator>"))
        try domain.suspend()
        #expect(try domain.state() == .paused)
        try domain.resume()
        try domain.destroy()
        #expect(try domain.state() == .shutOff)
        #expect(throws: LibvirtError.self) { try domain.destroy() }
        try domain.undefine()
        #expect(try connection.domain(named: name) == nil)
        let sawAll = await eventually {
            await events.saw(inOrder: [.defined, .started, .suspended, .resumed, .stopped, .undefined])
        }
        let seen = await events.kinds()
        #expect(sawAll, "events: \(seen)")
    }

    @Test func crashIsReportedAsAnEvent() async throws {
        try Requirement.root()
        try Requirement.libvirtd()
        let connection = try LibvirtConnection(uri: "qemu:///system")
        let name = TestNames.unique("petrel-test-")
        let (events, follower) = try follow(connection, domain: name)
        defer { follower.cancel() }
        let domain = try connection.define(xml: domainXML(name: name, type: "qemu"))
        defer { if let d = try? connection.domain(named: name) { try? d.destroy(); try? d.undefine() } }
        try domain.start()
        // Kill QEMU behind libvirt's back: libvirt reports the domain stopped as crashed/failed.
        let pidFile = "/run/libvirt/qemu/\(name).pid"
        let pid = try #require(Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        kill(pid, SIGKILL)
        let stopped = await eventually { await events.events.contains { $0.kind == .stopped } }
        #expect(stopped)
        let stop = await events.events.first { $0.kind == .stopped }
        // detail 5 = VIR_DOMAIN_EVENT_STOPPED_FAILED (the emulator died), 2 = crashed.
        #expect(stop?.detail == 5 || stop?.isCrash == true, "\(String(describing: stop))")
        #expect(try domain.state() == .shutOff)
    }
}
