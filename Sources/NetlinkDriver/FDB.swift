import CNetlink
import Foundation

/// One forwarding entry of a VXLAN device: frames for `mac` are sent to the VTEP at
/// `destination` (`bridge fdb show dev vxlan-42`).
public struct FDBEntry: Sendable, Hashable {
    /// `aa:bb:cc:dd:ee:ff`, lower case; `00:00:00:00:00:00` is the flooding entry
    /// (broadcast, unknown unicast and multicast go to every such destination).
    public let mac: String
    /// The remote VTEP's IP address; nil for an entry without one.
    public let destination: String?

    public init(mac: String, destination: String?) {
        self.mac = mac
        self.destination = destination
    }

    /// The all-zero MAC of Neutron's l2population flooding entries.
    public static let flooding = "00:00:00:00:00:00"
}

/// Bridge FDB entries on VXLAN devices (family AF_BRIDGE, NTF_SELF: the device's own
/// table, not the table of the bridge it is a port of) — what l2population writes with
/// `bridge fdb append|replace|del … dev vxlan-<vni> dst <vtep>`.
extension Netlink {
    /// Adds an entry; safe to repeat. The all-zero MAC and multicast MACs *append* a
    /// destination (flooding goes to every VTEP of the network); a unicast MAC lives
    /// behind exactly one VTEP, so its entry is *replaced* (a migrated port moves).
    public func addFDB(mac: String, device: String, destination: String) throws {
        try locked {
            let neighbour = try fdbObject(mac: mac, device: device, destination: destination)
            defer { rtnl_neigh_put(neighbour) }
            let lladdr = try Self.parseMAC(mac)
            defer { nl_addr_put(lladdr) }
            let first = nl_addr_get_binary_addr(lladdr).assumingMemoryBound(to: UInt8.self).pointee
            let floods = mac.lowercased() == FDBEntry.flooding || first & 1 == 1
            let flags = NLM_F_CREATE | (floods ? NLM_F_APPEND : NLM_F_REPLACE)
            try check(rtnl_neigh_add(socket, neighbour, flags), "add fdb \(mac) dst \(destination) on \(device)")
        }
    }

    /// Removes the entry for `mac` towards `destination` (only that destination of a
    /// flooding entry). Removing a missing entry is not an error.
    public func removeFDB(mac: String, device: String, destination: String) throws {
        try locked {
            let neighbour = try fdbObject(mac: mac, device: device, destination: destination)
            defer { rtnl_neigh_put(neighbour) }
            let rc = rtnl_neigh_delete(socket, neighbour, 0)
            if rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NOADDR { return }
            try check(rc, "remove fdb \(mac) dst \(destination) from \(device)")
        }
    }

    /// The device's own FDB entries (the kernel's default entry from a `group`/`remote`
    /// included), sorted by MAC then destination.
    public func fdbEntries(device: String) throws -> [FDBEntry] {
        try locked {
            let index = try requireIndex(device)
            // A neighbour cache dumps AF_UNSPEC (ARP/NDP) unless told AF_BRIDGE, which makes
            // libnl send the bridge FDB dump request instead.
            var cache: OpaquePointer?
            try check(nl_cache_alloc_name("route/neigh", &cache), "allocate neighbour cache")
            defer { nl_cache_free(cache) }
            nl_cache_set_arg1(cache, AF_BRIDGE)
            try check(nl_cache_refill(socket, cache), "list fdb entries")
            var result: [FDBEntry] = []
            var object = nl_cache_get_first(cache)
            while let neighbour = object {
                object = nl_cache_get_next(neighbour)
                guard rtnl_neigh_get_family(neighbour) == AF_BRIDGE, rtnl_neigh_get_ifindex(neighbour) == index,
                      rtnl_neigh_get_flags(neighbour) & petrel_ntf_self() != 0,
                      let lladdr = rtnl_neigh_get_lladdr(neighbour) else { continue }
                result.append(FDBEntry(mac: Self.macString(lladdr),
                                       destination: rtnl_neigh_get_dst(neighbour).map(Self.string)))
            }
            return result.sorted { ($0.mac, $0.destination ?? "") < ($1.mac, $1.destination ?? "") }
        }
    }

    private func fdbObject(mac: String, device: String, destination: String) throws -> OpaquePointer {
        let index = try requireIndex(device)
        let lladdr = try Self.parseMAC(mac)
        defer { nl_addr_put(lladdr) }
        let dst = try Self.parseAddress(destination)
        defer { nl_addr_put(dst) }
        guard let neighbour = rtnl_neigh_alloc() else { throw NetlinkError(operation: "allocate neighbour", code: -NLE_NOMEM) }
        // The destination first: libnl takes the neighbour's family from it (and refuses a
        // destination of another family), then AF_BRIDGE replaces it for the message.
        let rc = rtnl_neigh_set_dst(neighbour, dst)
        if rc < 0 {
            rtnl_neigh_put(neighbour)
            throw NetlinkError(operation: "fdb destination \(destination)", code: rc)
        }
        rtnl_neigh_set_family(neighbour, AF_BRIDGE)
        rtnl_neigh_set_ifindex(neighbour, index)
        rtnl_neigh_set_flags(neighbour, petrel_ntf_self())
        rtnl_neigh_set_state(neighbour, Int32(NUD_PERMANENT))
        rtnl_neigh_set_lladdr(neighbour, lladdr)
        return neighbour
    }

    static func parseMAC(_ mac: String) throws -> OpaquePointer {
        var address: OpaquePointer?
        let rc = nl_addr_parse(mac, AF_LLC, &address)
        guard rc == 0, let address, nl_addr_get_len(address) == 6 else {
            if let address { nl_addr_put(address) }
            throw NetlinkError(operation: "parse MAC '\(mac)'", code: rc == 0 ? -NLE_INVAL : rc)
        }
        return address
    }

    /// Formats the bytes ourselves: libnl prints an all-zero address as "none" in places.
    static func macString(_ address: OpaquePointer) -> String {
        let length = Int(nl_addr_get_len(address))
        let bytes = UnsafeRawBufferPointer(start: nl_addr_get_binary_addr(address), count: length)
        return bytes.map { String(format: "%02x", $0) }.joined(separator: ":")
    }
}
