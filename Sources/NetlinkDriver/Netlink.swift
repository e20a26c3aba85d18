import CNetlink
import Foundation
import PetrelCore

/// An error from the kernel or libnl, with libnl's explanation.
public struct NetlinkError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    /// libnl's (negative) error code, e.g. -NLE_EXIST.
    public let code: Int32

    public var description: String { "\(operation): \(String(cString: nl_geterror(code)))" }
    public var alreadyExists: Bool { code == -NLE_EXIST }
    public var notFound: Bool { code == -NLE_OBJ_NOTFOUND || code == -NLE_NODEV || code == -NLE_NOADDR }
}

/// A network link as the kernel lists it.
public struct LinkInfo: Sendable, Equatable {
    public let index: Int32
    public let name: String
    /// "bridge", "veth", "vlan", "vxlan", …; nil for links without a kind (e.g. `lo`, physical NICs).
    public let kind: String?
    public let mtu: UInt32
    public let mac: String
    public let isUp: Bool
    /// Index of the bridge this link is a port of, 0 when none.
    public let masterIndex: Int32
    /// Whether the link can carry traffic (RFC 2863): `isUp` is what was asked for
    /// (IFF_UP), this is what the kernel sees, e.g. a tap stays `.down` until QEMU opens it.
    public let operState: OperState
}

/// RFC 2863 operational state, as the kernel reports it (IF_OPER_*).
public enum OperState: UInt8, Sendable, Equatable {
    case unknown = 0, notPresent, down, lowerLayerDown, testing, dormant, up
}

/// A VXLAN link's settings as the kernel has them, so reconcile can tell whether an
/// existing `vxlan-<vni>` is the one it wants or must be recreated.
public struct VXLANInfo: Sendable, Equatable {
    public let vni: UInt32
    public let local: String?
    /// Multicast group or unicast remote; nil for l2population (FDB entries instead).
    public let group: String?
    public let port: UInt16
    public let learning: Bool
    /// Index of the underlay device, 0 when none was given.
    public let parentIndex: UInt32
}

public struct RouteInfo: Sendable, Equatable {
    /// "default" or an address/prefix, e.g. "10.1.0.0/24".
    public let destination: String
    public let gateway: String?
    public let deviceIndex: Int32?
    public let table: UInt32
}

public enum AddressFamily: Sendable {
    case ipv4, ipv6
    var raw: Int32 { self == .ipv4 ? AF_INET : AF_INET6 }
}

/// Links, addresses and routes through rtnetlink (libnl-route-3), in the host's
/// namespace or in a given network namespace. One socket per instance; calls are
/// serialized on it.
public final class Netlink: @unchecked Sendable {
    let socket: OpaquePointer
    private let lock = NSLock()
    public let namespace: NetworkNamespace?

    public init(namespace: NetworkNamespace? = nil) throws {
        self.namespace = namespace
        if let namespace {
            // A netlink socket talks to the namespace it was created in.
            socket = try namespace.perform { try SocketBox(Netlink.openSocket()) }.socket
        } else {
            socket = try Netlink.openSocket()
        }
    }

    deinit { nl_socket_free(socket) }

    static func openSocket() throws -> OpaquePointer {
        guard let socket = nl_socket_alloc() else { throw NetlinkError(operation: "allocate netlink socket", code: -NLE_NOMEM) }
        let rc = nl_connect(socket, NETLINK_ROUTE)
        guard rc == 0 else {
            nl_socket_free(socket)
            throw NetlinkError(operation: "connect rtnetlink", code: rc)
        }
        return socket
    }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws {
        if rc < 0 { throw NetlinkError(operation: operation(), code: rc) }
    }

    // MARK: links

    public func links() throws -> [LinkInfo] {
        try locked {
            var cache: OpaquePointer?
            try check(rtnl_link_alloc_cache(socket, AF_UNSPEC, &cache), "list links")
            defer { nl_cache_free(cache) }
            var result: [LinkInfo] = []
            var object = nl_cache_get_first(cache)
            while let current = object {
                result.append(Self.info(current))
                object = nl_cache_get_next(current)
            }
            return result
        }
    }

    public func link(named name: String) throws -> LinkInfo? {
        try locked {
            guard let link = try kernelLink(name) else { return nil }
            defer { rtnl_link_put(link) }
            return Self.info(link)
        }
    }

    func kernelLink(_ name: String) throws -> OpaquePointer? {
        var link: OpaquePointer?
        let rc = rtnl_link_get_kernel(socket, 0, name, &link)
        if rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV { return nil }
        try check(rc, "look up link \(name)")
        return link
    }

    func requireIndex(_ name: String) throws -> Int32 {
        guard let link = try kernelLink(name) else {
            throw NetlinkError(operation: "look up link \(name)", code: -NLE_OBJ_NOTFOUND)
        }
        defer { rtnl_link_put(link) }
        return rtnl_link_get_ifindex(link)
    }

    static func info(_ link: OpaquePointer) -> LinkInfo {
        var mac = ""
        if let address = rtnl_link_get_addr(link) {
            var buffer = [CChar](repeating: 0, count: 64)
            mac = String(cString: nl_addr2str(address, &buffer, buffer.count))
        }
        return LinkInfo(index: rtnl_link_get_ifindex(link),
                        name: rtnl_link_get_name(link).map { String(cString: $0) } ?? "",
                        kind: rtnl_link_get_type(link).map { String(cString: $0) },
                        mtu: rtnl_link_get_mtu(link),
                        mac: mac,
                        isUp: rtnl_link_get_flags(link) & petrel_iff_up() != 0,
                        masterIndex: rtnl_link_get_master(link),
                        operState: OperState(rawValue: rtnl_link_get_operstate(link)) ?? .unknown)
    }

    private func add(_ link: OpaquePointer, _ operation: String) throws {
        try check(rtnl_link_add(socket, link, NLM_F_CREATE | NLM_F_EXCL), operation)
    }

    public func createBridge(_ name: String) throws {
        try locked {
            guard let link = rtnl_link_alloc() else { throw NetlinkError(operation: "allocate link", code: -NLE_NOMEM) }
            defer { rtnl_link_put(link) }
            rtnl_link_set_name(link, name)
            try check(rtnl_link_set_type(link, "bridge"), "bridge type")
            try add(link, "create bridge \(name)")
        }
    }

    /// Creates a veth pair; both ends start in this instance's namespace.
    public func createVeth(_ name: String, peer: String) throws {
        try locked {
            guard let link = rtnl_link_veth_alloc() else { throw NetlinkError(operation: "allocate veth", code: -NLE_NOMEM) }
            defer { rtnl_link_put(link) }
            rtnl_link_set_name(link, name)
            rtnl_link_set_name(rtnl_link_veth_get_peer(link), peer)
            try add(link, "create veth \(name)/\(peer)")
        }
    }

    public func createVLAN(_ name: String, parent: String, id: UInt16) throws {
        try locked {
            let parentIndex = try requireIndex(parent)
            guard let link = rtnl_link_vlan_alloc() else { throw NetlinkError(operation: "allocate vlan", code: -NLE_NOMEM) }
            defer { rtnl_link_put(link) }
            rtnl_link_set_name(link, name)
            rtnl_link_set_link(link, parentIndex)
            try check(rtnl_link_vlan_set_id(link, id), "vlan id \(id)")
            try add(link, "create vlan \(name) (\(parent).\(id))")
        }
    }

    /// Creates a VXLAN link. `group` is a multicast group or unicast remote; `local` the
    /// source address; `parent` the underlay device. With l2population (Neutron's
    /// `vxlan-<vni>` devices) pass no group and `learning: false`: the agent writes the
    /// FDB (`addFDB`) from what the controller knows instead of learning from floods.
    public func createVXLAN(_ name: String, vni: UInt32, local: String? = nil, group: String? = nil,
                            port: UInt16 = 4789, parent: String? = nil, learning: Bool = true) throws {
        try locked {
            guard let link = rtnl_link_vxlan_alloc() else { throw NetlinkError(operation: "allocate vxlan", code: -NLE_NOMEM) }
            defer { rtnl_link_put(link) }
            rtnl_link_set_name(link, name)
            try check(rtnl_link_vxlan_set_id(link, vni), "vxlan id \(vni)")
            try check(rtnl_link_vxlan_set_port(link, UInt32(port)), "vxlan port \(port)")
            if let local {
                let address = try Self.parseAddress(local)
                defer { nl_addr_put(address) }
                try check(rtnl_link_vxlan_set_local(link, address), "vxlan local \(local)")
            }
            if let group {
                let address = try Self.parseAddress(group)
                defer { nl_addr_put(address) }
                try check(rtnl_link_vxlan_set_group(link, address), "vxlan group \(group)")
            }
            if let parent { try check(rtnl_link_vxlan_set_link(link, UInt32(try requireIndex(parent))), "vxlan parent") }
            try check(rtnl_link_vxlan_set_learning(link, learning ? 1 : 0), "vxlan learning")
            try add(link, "create vxlan \(name) (vni \(vni))")
        }
    }

    /// The VXLAN settings of `name`; nil when there is no such link, throws when it is
    /// not a VXLAN link.
    public func vxlanInfo(_ name: String) throws -> VXLANInfo? {
        try locked {
            guard let link = try kernelLink(name) else { return nil }
            defer { rtnl_link_put(link) }
            var vni: UInt32 = 0, port: UInt32 = 0, parent: UInt32 = 0
            try check(rtnl_link_vxlan_get_id(link, &vni), "vxlan id of \(name)")
            _ = rtnl_link_vxlan_get_port(link, &port)
            _ = rtnl_link_vxlan_get_link(link, &parent)
            func address(_ get: (OpaquePointer?, UnsafeMutablePointer<OpaquePointer?>) -> Int32) -> String? {
                var address: OpaquePointer?
                guard get(link, &address) == 0, let address else { return nil }
                defer { nl_addr_put(address) }
                return Self.string(address)
            }
            return VXLANInfo(vni: vni, local: address(rtnl_link_vxlan_get_local),
                             group: address(rtnl_link_vxlan_get_group),
                             port: UInt16(truncatingIfNeeded: port),
                             learning: rtnl_link_vxlan_get_learning(link) > 0, parentIndex: parent)
        }
    }

    /// Names of the links that are ports of `bridge` (taps, veths, the VXLAN device).
    public func bridgePorts(of bridge: String) throws -> [String] {
        guard let master = try link(named: bridge) else {
            throw NetlinkError(operation: "look up bridge \(bridge)", code: -NLE_OBJ_NOTFOUND)
        }
        return try links().filter { $0.masterIndex == master.index }.map(\.name).sorted()
    }

    /// Deletes a link (for a veth, both ends). Deleting a missing link is not an error.
    public func deleteLink(_ name: String) throws {
        try locked {
            guard let link = rtnl_link_alloc() else { throw NetlinkError(operation: "allocate link", code: -NLE_NOMEM) }
            defer { rtnl_link_put(link) }
            rtnl_link_set_name(link, name)
            let rc = rtnl_link_delete(socket, link)
            if rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV { return }
            try check(rc, "delete link \(name)")
        }
    }

    private func change(_ name: String, _ operation: String, _ edit: (OpaquePointer) throws -> Void) throws {
        try locked {
            guard let original = try kernelLink(name) else {
                throw NetlinkError(operation: "\(operation) \(name)", code: -NLE_OBJ_NOTFOUND)
            }
            defer { rtnl_link_put(original) }
            guard let changes = rtnl_link_alloc() else { throw NetlinkError(operation: "allocate link", code: -NLE_NOMEM) }
            defer { rtnl_link_put(changes) }
            try edit(changes)
            try check(rtnl_link_change(socket, original, changes, 0), "\(operation) \(name)")
        }
    }

    public func setUp(_ name: String, _ up: Bool = true) throws {
        try change(name, up ? "set up" : "set down") { changes in
            if up { rtnl_link_set_flags(changes, petrel_iff_up()) } else { rtnl_link_unset_flags(changes, petrel_iff_up()) }
        }
    }

    public func setMTU(_ name: String, _ mtu: UInt32) throws {
        try change(name, "set mtu \(mtu) on") { rtnl_link_set_mtu($0, mtu) }
    }

    /// Sets the link-layer address, `aa:bb:cc:dd:ee:ff`.
    public func setMAC(_ name: String, _ mac: String) throws {
        var address: OpaquePointer?
        try check(nl_addr_parse(mac, AF_LLC, &address), "parse MAC \(mac)")
        defer { nl_addr_put(address) }
        try change(name, "set MAC \(mac) on") { rtnl_link_set_addr($0, address) }
    }

    /// Makes `name` a port of `bridge`, or releases it from its bridge when `bridge` is nil.
    public func setMaster(_ name: String, bridge: String?) throws {
        try locked {
            let index = try requireIndex(name)
            if let bridge {
                try check(rtnl_link_enslave_ifindex(socket, try requireIndex(bridge), index), "add \(name) to \(bridge)")
            } else {
                try check(rtnl_link_release_ifindex(socket, index), "release \(name)")
            }
        }
    }

    /// Moves a link into another network namespace (it disappears from this one).
    public func move(_ name: String, to target: NetworkNamespace) throws {
        let fd = open(target.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError("open \(target.path)") }
        defer { close(fd) }
        try change(name, "move to namespace \(target.name)") { rtnl_link_set_ns_fd($0, fd) }
    }

    // MARK: addresses

    static func parseAddress(_ text: String, family: Int32 = AF_UNSPEC) throws -> OpaquePointer {
        var address: OpaquePointer?
        let rc = nl_addr_parse(text, family, &address)
        guard rc == 0, let address else { throw NetlinkError(operation: "parse address '\(text)'", code: rc == 0 ? -NLE_INVAL : rc) }
        return address
    }

    private func addressObject(_ cidr: String, on link: String) throws -> OpaquePointer {
        let index = try requireIndex(link)
        guard cidr.contains("/") else { throw NetlinkError(operation: "address '\(cidr)' needs a /prefix", code: -NLE_INVAL) }
        let local = try Self.parseAddress(cidr)
        defer { nl_addr_put(local) }
        guard let address = rtnl_addr_alloc() else { throw NetlinkError(operation: "allocate address", code: -NLE_NOMEM) }
        rtnl_addr_set_ifindex(address, index)
        rtnl_addr_set_family(address, nl_addr_get_family(local))
        let rc = rtnl_addr_set_local(address, local)
        if rc < 0 {
            rtnl_addr_put(address)
            throw NetlinkError(operation: "address \(cidr)", code: rc)
        }
        return address
    }

    /// Adds `cidr` (e.g. "10.0.0.1/24", "fd00::1/64") to a link. IPv6 addresses skip
    /// duplicate address detection, so they are usable at once.
    public func addAddress(_ cidr: String, to link: String) throws {
        try locked {
            let address = try addressObject(cidr, on: link)
            defer { rtnl_addr_put(address) }
            if rtnl_addr_get_family(address) == AF_INET6 { rtnl_addr_set_flags(address, UInt32(IFA_F_NODAD)) }
            try check(rtnl_addr_add(socket, address, 0), "add address \(cidr) to \(link)")
        }
    }

    public func removeAddress(_ cidr: String, from link: String) throws {
        try locked {
            let address = try addressObject(cidr, on: link)
            defer { rtnl_addr_put(address) }
            try check(rtnl_addr_delete(socket, address, 0), "remove address \(cidr) from \(link)")
        }
    }

    /// Addresses of a link as "address/prefix" strings.
    public func addresses(of link: String) throws -> [String] {
        try locked {
            let index = try requireIndex(link)
            var cache: OpaquePointer?
            try check(rtnl_addr_alloc_cache(socket, &cache), "list addresses")
            defer { nl_cache_free(cache) }
            var result: [String] = []
            var object = nl_cache_get_first(cache)
            while let current = object {
                if rtnl_addr_get_ifindex(current) == index, let local = rtnl_addr_get_local(current) {
                    result.append(Self.string(local))
                }
                object = nl_cache_get_next(current)
            }
            return result
        }
    }

    static func string(_ address: OpaquePointer) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        return String(cString: nl_addr2str(address, &buffer, buffer.count))
    }

    // MARK: routes

    private func routeObject(destination: String, gateway: String?, device: String?, family: AddressFamily) throws -> OpaquePointer {
        guard let route = rtnl_route_alloc() else { throw NetlinkError(operation: "allocate route", code: -NLE_NOMEM) }
        do {
            let dst = try Self.parseAddress(destination, family: family.raw)
            defer { nl_addr_put(dst) }
            try check(rtnl_route_set_dst(route, dst), "route destination \(destination)")
            try check(rtnl_route_set_family(route, UInt8(family.raw)), "route family")
            rtnl_route_set_table(route, UInt32(RT_TABLE_MAIN.rawValue))
            guard let hop = rtnl_route_nh_alloc() else { throw NetlinkError(operation: "allocate next hop", code: -NLE_NOMEM) }
            if let gateway {
                let address = try Self.parseAddress(gateway, family: family.raw)
                defer { nl_addr_put(address) }
                rtnl_route_nh_set_gateway(hop, address)
            }
            if let device { rtnl_route_nh_set_ifindex(hop, try requireIndex(device)) }
            rtnl_route_add_nexthop(route, hop)
            return route
        } catch {
            rtnl_route_put(route)
            throw error
        }
    }

    /// Adds a route to the main table. `destination` is "default" or a prefix.
    public func addRoute(_ destination: String, via gateway: String? = nil, device: String? = nil,
                         family: AddressFamily = .ipv4) throws {
        try locked {
            let route = try routeObject(destination: destination, gateway: gateway, device: device, family: family)
            defer { rtnl_route_put(route) }
            rtnl_route_set_protocol(route, UInt8(RTPROT_STATIC))
            try check(rtnl_route_add(socket, route, NLM_F_EXCL), "add route \(destination)")
        }
    }

    public func removeRoute(_ destination: String, via gateway: String? = nil, device: String? = nil,
                            family: AddressFamily = .ipv4) throws {
        try locked {
            let route = try routeObject(destination: destination, gateway: gateway, device: device, family: family)
            defer { rtnl_route_put(route) }
            try check(rtnl_route_delete(socket, route, 0), "remove route \(destination)")
        }
    }

    /// Routes of the main table for a family.
    public func routes(family: AddressFamily = .ipv4) throws -> [RouteInfo] {
        try locked {
            var cache: OpaquePointer?
            try check(rtnl_route_alloc_cache(socket, family.raw, 0, &cache), "list routes")
            defer { nl_cache_free(cache) }
            var result: [RouteInfo] = []
            var object = nl_cache_get_first(cache)
            while let route = object {
                object = nl_cache_get_next(route)
                let table = rtnl_route_get_table(route)
                guard table == UInt32(RT_TABLE_MAIN.rawValue), let dst = rtnl_route_get_dst(route) else { continue }
                let destination = nl_addr_get_prefixlen(dst) == 0 ? "default" : Self.string(dst)
                var gateway: String?
                var device: Int32?
                if rtnl_route_get_nnexthops(route) > 0, let hop = rtnl_route_nexthop_n(route, 0) {
                    gateway = rtnl_route_nh_get_gateway(hop).map(Self.string)
                    let index = rtnl_route_nh_get_ifindex(hop)
                    device = index > 0 ? index : nil
                }
                result.append(RouteInfo(destination: destination, gateway: gateway, deviceIndex: device, table: table))
            }
            return result
        }
    }
}

/// Carries a socket handle out of the namespace thread that opened it.
struct SocketBox: @unchecked Sendable {
    let socket: OpaquePointer
    init(_ socket: OpaquePointer) { self.socket = socket }
}

extension Netlink {
    /// This host's IPv4 address on the interface of its default route (what other hosts
    /// most likely reach it at); nil without a default route.
    public func defaultRouteAddress() throws -> String? {
        guard let route = try routes(family: .ipv4).first(where: { $0.destination == "default" }), let index = route.deviceIndex,
              let link = try links().first(where: { $0.index == index }),
              let address = try addresses(of: link.name).first(where: { !$0.contains(":") }) else { return nil }
        return String(address.prefix { $0 != "/" })
    }
}
