import Foundation
import NetlinkDriver
import TestSupport
import Testing

@Suite(.serialized) struct NetlinkTests {
    @Test func linksAddressesAndRoutes() throws {
        try Requirement.root()
        let netlink = try Netlink()
        let base = TestNames.unique("pt")
        let bridge = base + "b", veth = base + "v", peer = base + "p", vlan = base + "l", vxlan = base + "x"
        defer { for name in [vxlan, vlan, veth, bridge] { try? netlink.deleteLink(name) } }

        try netlink.createBridge(bridge)
        try netlink.setMTU(bridge, 1400)
        try netlink.setMAC(bridge, "02:00:00:aa:bb:cc")
        try netlink.setUp(bridge)
        let b = try #require(try netlink.link(named: bridge))
        #expect(b.kind == "bridge" && b.mtu == 1400 && b.mac == "02:00:00:aa:bb:cc" && b.isUp)
        #expect(throws: NetlinkError.self) { try netlink.createBridge(bridge) }

        try netlink.createVeth(veth, peer: peer)
        #expect(try netlink.link(named: peer)?.kind == "veth")
        try netlink.setMaster(veth, bridge: bridge)
        #expect(try netlink.link(named: veth)?.masterIndex == b.index)
        try netlink.setMaster(veth, bridge: nil)
        #expect(try netlink.link(named: veth)?.masterIndex == 0)

        if FileManager.default.fileExists(atPath: "/proc/net/vlan") {
            try netlink.createVLAN(vlan, parent: veth, id: 101)
            #expect(try netlink.link(named: vlan)?.kind == "vlan")
        } else {
            // This kernel has no 802.1Q support (no 8021q module): the driver says so plainly.
            do {
                try netlink.createVLAN(vlan, parent: veth, id: 101)
                Issue.record("VLAN created on a kernel without /proc/net/vlan")
            } catch let error as NetlinkError {
                #expect(error.description.contains("create vlan \(vlan)") && error.description.contains("not supported"), "\(error)")
            }
        }
        try netlink.createVXLAN(vxlan, vni: 4242, local: "127.0.0.1", group: "127.0.0.2", port: 4789)
        #expect(try netlink.link(named: vxlan)?.kind == "vxlan")
        let names = Set(try netlink.links().map(\.name))
        #expect(names.isSuperset(of: [bridge, veth, peer, vxlan]))

        try netlink.addAddress("198.18.250.1/24", to: bridge)
        try netlink.addAddress("fd00:250:7::1/64", to: bridge)
        #expect(Set(try netlink.addresses(of: bridge)).isSuperset(of: ["198.18.250.1/24", "fd00:250:7::1/64"]))
        try netlink.addRoute("198.18.251.0/24", via: "198.18.250.254", device: bridge)
        try netlink.addRoute("fd00:250:8::/64", via: "fd00:250:7::fe", device: bridge, family: .ipv6)
        #expect(try netlink.routes().contains { $0.destination == "198.18.251.0/24" && $0.gateway == "198.18.250.254" && $0.deviceIndex == b.index })
        #expect(try netlink.routes(family: .ipv6).contains { $0.destination == "fd00:250:8::/64" && $0.gateway == "fd00:250:7::fe" })
        try netlink.removeRoute("198.18.251.0/24", via: "198.18.250.254", device: bridge)
        #expect(try !netlink.routes().contains { $0.destination == "198.18.251.0/24" })
        try netlink.removeAddress("198.18.250.1/24", from: bridge)
        #expect(try !netlink.addresses(of: bridge).contains("198.18.250.1/24"))
        #expect(throws: NetlinkError.self) { try netlink.addAddress("198.18.250.1", to: bridge) }
        #expect(throws: NetlinkError.self) { try netlink.setUp(base + "zz") }

        try netlink.setUp(bridge, false)
        #expect(try netlink.link(named: bridge)?.isUp == false)
        try netlink.deleteLink(veth)
        #expect(try netlink.link(named: peer) == nil, "deleting one end of a veth removes both")
        try netlink.deleteLink(veth)  // idempotent
    }

    @Test func namespacesLinksAndSockets() throws {
        try Requirement.root()
        let netlink = try Netlink()
        let name = TestNames.unique("petrel-test-")
        let veth = TestNames.unique("pt") + "v", peer = veth.dropLast() + "p"
        let namespace = try NetworkNamespace.create(name)
        defer {
            try? netlink.deleteLink(veth)
            try? namespace.delete()
        }
        #expect(NetworkNamespace.list().contains(name))
        #expect(NetworkNamespace(existing: name) == namespace)
        #expect(throws: (any Error).self) { try NetworkNamespace.create(name) }

        let inside = try Netlink(namespace: namespace)
        #expect(try inside.links().map(\.name) == ["lo"])
        try netlink.createVeth(veth, peer: String(peer))
        try netlink.move(String(peer), to: namespace)
        #expect(try netlink.link(named: String(peer)) == nil)
        #expect(try inside.link(named: String(peer))?.kind == "veth")
        try inside.setUp("lo")
        try inside.setUp(String(peer))
        try inside.addAddress("10.251.0.2/24", to: String(peer))
        try netlink.addAddress("10.251.0.1/24", to: veth)
        try netlink.setUp(veth)

        // A socket opened inside the namespace binds to the namespace's address, which
        // the host's side does not have.
        let fd = try namespace.openSocket(domain: AF_INET, type: Int32(SOCK_DGRAM.rawValue))
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("10.251.0.2")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(rc == 0, "bind inside the namespace: errno \(errno)")

        // Code run inside sees the namespace's links only.
        let seen = try namespace.perform { try Netlink().links().map(\.name) }
        #expect(Set(seen) == ["lo", String(peer)])
        let ownInode = try namespace.perform { () -> UInt64 in
            var info = stat()
            stat("/proc/thread-self/ns/net", &info)
            return UInt64(info.st_ino)
        }
        #expect(ownInode == (try namespace.inode()))

        try namespace.delete()
        #expect(!NetworkNamespace.list().contains(name))
        try namespace.delete()  // idempotent
    }
}
