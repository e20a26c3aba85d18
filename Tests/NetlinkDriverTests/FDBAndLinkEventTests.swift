import Foundation
@testable import NetlinkDriver
import ProcessDriver
import TestSupport
import Testing

/// FDB entries, VXLAN settings, bridge ports and link events, each test inside a fresh
/// network namespace of its own (removed at the end, which removes its links too).
@Suite struct FDBAndLinkEventTests {
    fileprivate func withNamespace(_ body: (NetworkNamespace, Netlink) async throws -> Void) async throws {
        try Requirement.root()
        let namespace = try NetworkNamespace.create(TestNames.unique("petrel-test-"))
        try await withCleanup {
            try await body(namespace, try Netlink(namespace: namespace))
        } cleanup: {
            try? namespace.delete()
        }
    }

    @Test func fdbEntriesOnAVXLANDevice() async throws {
        try await withNamespace { namespace, netlink in
            let vxlan = TestNames.unique("pt") + "x"
            try netlink.createVXLAN(vxlan, vni: 42, local: "198.18.0.1", port: 4789, learning: false)
            let info = try #require(try netlink.vxlanInfo(vxlan))
            #expect(info.vni == 42 && info.local == "198.18.0.1" && info.group == nil && info.port == 4789)
            #expect(!info.learning && info.parentIndex == 0)
            #expect(try netlink.link(named: vxlan)?.kind == "vxlan")
            #expect(try netlink.fdbEntries(device: vxlan) == [], "no group, no default entry")

            let zero = FDBEntry.flooding, vm = "fa:16:3e:00:00:01"
            try netlink.addFDB(mac: zero, device: vxlan, destination: "198.18.0.2")
            try netlink.addFDB(mac: zero, device: vxlan, destination: "198.18.0.3")
            try netlink.addFDB(mac: zero, device: vxlan, destination: "198.18.0.2")  // idempotent
            try netlink.addFDB(mac: vm, device: vxlan, destination: "198.18.0.2")
            try netlink.addFDB(mac: "FA:16:3E:00:00:01", device: vxlan, destination: "198.18.0.3")  // moved: replaced
            let entries = try netlink.fdbEntries(device: vxlan)
            #expect(entries == [
                FDBEntry(mac: zero, destination: "198.18.0.2"),
                FDBEntry(mac: zero, destination: "198.18.0.3"),
                FDBEntry(mac: vm, destination: "198.18.0.3"),
            ], "\(entries)")
            // iproute2 reads the same table.
            let shown = try await Command.check("bridge", ["fdb", "show", "dev", vxlan], namespace: namespace)
            #expect(shown.contains("00:00:00:00:00:00 dst 198.18.0.2 self permanent"), "\(shown)")
            #expect(shown.contains("00:00:00:00:00:00 dst 198.18.0.3 self permanent"), "\(shown)")
            #expect(shown.contains("\(vm) dst 198.18.0.3 self permanent") && !shown.contains("\(vm) dst 198.18.0.2"), "\(shown)")

            try netlink.removeFDB(mac: zero, device: vxlan, destination: "198.18.0.2")
            try netlink.removeFDB(mac: zero, device: vxlan, destination: "198.18.0.2")  // idempotent
            try netlink.removeFDB(mac: vm, device: vxlan, destination: "198.18.0.3")
            let remaining = try netlink.fdbEntries(device: vxlan)
            #expect(remaining == [FDBEntry(mac: zero, destination: "198.18.0.3")], "\(remaining)")

            #expect(throws: NetlinkError.self) { try netlink.addFDB(mac: "not-a-mac", device: vxlan, destination: "198.18.0.2") }
            #expect(throws: NetlinkError.self) { try netlink.addFDB(mac: zero, device: vxlan + "z", destination: "198.18.0.2") }
            #expect(throws: NetlinkError.self) { try netlink.fdbEntries(device: vxlan + "z") }
        }
    }

    @Test func bridgePortsAndOperState() async throws {
        try await withNamespace { _, netlink in
            let base = TestNames.unique("pt")
            let bridge = base + "b", veth = base + "v", peer = base + "p"
            try netlink.createBridge(bridge)
            try netlink.createVeth(veth, peer: peer)
            #expect(try netlink.bridgePorts(of: bridge) == [])
            try netlink.setMaster(veth, bridge: bridge)
            #expect(try netlink.bridgePorts(of: bridge) == [veth])
            #expect(throws: NetlinkError.self) { try netlink.bridgePorts(of: base + "z") }
            try netlink.setUp(veth)
            #expect(try netlink.link(named: veth)?.operState == .lowerLayerDown, "its peer is down")
            try netlink.setUp(peer)
            #expect(try await eventually { try netlink.link(named: veth)?.operState == .up })
        }
    }

    @Test func linkEventsFollowAVethThroughABridge() async throws {
        try await withNamespace { _, netlink in
            let base = TestNames.unique("pt")
            let bridge = base + "b", veth = base + "v", peer = base + "p"
            try netlink.createBridge(bridge)  // exists before the monitor: never "added"
            let monitor = try LinkMonitor(namespace: netlink.namespace)
            let seen = EventLog()
            let reader = Task {
                for await event in monitor.events { await seen.append(event) }
                await seen.markEnded()
            }
            defer { reader.cancel() }

            try netlink.createVeth(veth, peer: peer)
            #expect(await seen.waitFor { $0.change == .added && $0.link.name == veth && $0.link.kind == "veth" })
            #expect(await seen.waitFor { $0.change == .added && $0.link.name == peer })
            try netlink.setMaster(veth, bridge: bridge)
            let bridgeIndex = try #require(try netlink.link(named: bridge)?.index)
            #expect(await seen.waitFor { $0.change == .changed && $0.link.name == veth && $0.link.masterIndex == bridgeIndex && $0.masterName == bridge })
            try netlink.setUp(veth)
            try netlink.setUp(peer)
            #expect(await seen.waitFor { $0.change == .changed && $0.link.name == veth && $0.link.isUp && $0.link.operState == .up })
            // Released from the bridge: a change, not a removal (the kernel also sends an
            // AF_BRIDGE RTM_DELLINK for the port, which the monitor must not mistake).
            try netlink.setMaster(veth, bridge: nil)
            #expect(await seen.waitFor { $0.change == .changed && $0.link.name == veth && $0.link.masterIndex == 0 && $0.masterName == nil })
            #expect(await !seen.contains { $0.change == .removed })
            try netlink.deleteLink(veth)
            #expect(await seen.waitFor { $0.change == .removed && $0.link.name == veth })
            #expect(await seen.waitFor { $0.change == .removed && $0.link.name == peer })
            #expect(await !seen.contains { $0.change == .added && $0.link.name == bridge })

            // Stopping ends the stream, so the reading task finishes.
            monitor.stop()
            #expect(await eventually(timeout: .seconds(5)) { await seen.ended })
        }
    }
}


extension FDBAndLinkEventTests {
    /// A burst the socket cannot hold: the monitor notices the overflow, lists the links
    /// again, and a consumer that applies the events still ends with the kernel's truth.
    @Test func overflowIsRepairedByResynchronizing() async throws {
        try await withNamespace { _, netlink in
            let monitor = try LinkMonitor(namespace: netlink.namespace, receiveBuffer: 2048)
            defer { monitor.stop() }
            let view = LinkView(try netlink.links())
            let reader = Task { for await event in monitor.events { await view.apply(event) } }
            defer { reader.cancel() }
            let base = TestNames.unique("pt")
            let bridge = base + "b"
            try netlink.createBridge(bridge)
            for i in 0..<40 {
                try netlink.createVeth("\(base)v\(i)", peer: "\(base)p\(i)")
                try netlink.setMaster("\(base)v\(i)", bridge: bridge)
            }
            // One kernel operation, some 80 messages at once: deleting the bridge releases every port.
            try netlink.deleteLink(bridge)
            for i in 0..<40 where i % 2 == 0 { try netlink.deleteLink("\(base)v\(i)") }
            let truth = Set(try netlink.links().map { "\($0.name)@\($0.masterIndex)" })
            #expect(truth.count == 41)  // lo and 20 pairs, none on a bridge
            #expect(await eventually { await view.names == truth }, "the view converges on the kernel's links")
            #expect(monitor.resynchronizations > 0, "a 2 KiB buffer overflows when a bridge with 40 ports goes")
        }
    }
}

/// A consumer's picture of the links, built from events only.
private actor LinkView {
    private var links: [Int32: String]
    init(_ initial: [LinkInfo]) { links = Dictionary(initial.map { ($0.index, "\($0.name)@\($0.masterIndex)") }, uniquingKeysWith: { $1 }) }
    /// "name@master index" of every link.
    var names: Set<String> { Set(links.values) }
    func apply(_ event: LinkEvent) {
        links[event.link.index] = event.change == .removed ? nil : "\(event.link.name)@\(event.link.masterIndex)"
    }
}

/// Events the reading task has received, for the test to wait on.
private actor EventLog {
    private var events: [LinkEvent] = []

    func append(_ event: LinkEvent) { events.append(event) }

    func contains(_ predicate: (LinkEvent) -> Bool) -> Bool { events.contains(where: predicate) }

    func waitFor(timeout: Duration = .seconds(5), _ predicate: @escaping @Sendable (LinkEvent) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if events.contains(where: predicate) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        if events.contains(where: predicate) { return true }
        print("events seen: \(events)")
        return false
    }

    private(set) var ended = false
    func markEnded() { ended = true }
}
