import Foundation

/// An IPv4 or IPv6 address as one 128-bit number (IPv4 in the low 32 bits), so address
/// arithmetic (pools, ranges, the next free address) is the same for both families.
/// Parsing and printing go through the C library's `inet_pton`/`inet_ntop`, so the text
/// forms are the canonical ones (`2001:db8::1`, never `2001:0db8:0:0:…`).
public struct IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let version: Int
    public let value: UInt128

    public init?(_ text: some StringProtocol) {
        let text = String(text)
        if text.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
            let bytes = withUnsafeBytes(of: &raw) { Array($0) }
            self.init(version: 6, value: bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) })
        } else {
            var raw = in_addr()
            // inet_pton refuses the shorthand forms inet_aton takes ("10.1"), as Neutron does.
            guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
            self.init(version: 4, value: UInt128(UInt32(bigEndian: raw.s_addr)))
        }
    }

    public init(version: Int, value: UInt128) {
        self.version = version
        self.value = version == 4 ? value & 0xFFFF_FFFF : value
    }

    public var bits: Int { version == 4 ? 32 : 128 }

    public var description: String {
        if version == 4 {
            var raw = in_addr(s_addr: UInt32(truncatingIfNeeded: value).bigEndian)
            var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            inet_ntop(AF_INET, &raw, &buffer, socklen_t(buffer.count))
            return String(cString: buffer)
        }
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { bytes in
            for index in 0..<16 { bytes[index] = UInt8(truncatingIfNeeded: value >> UInt128(8 * (15 - index))) }
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
        return String(cString: buffer)
    }

    /// The address `offset` further on (wrapping is the caller's business: stay inside a network).
    public func advanced(by offset: UInt128) -> IPAddress { IPAddress(version: version, value: value &+ offset) }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        lhs.version != rhs.version ? lhs.version < rhs.version : lhs.value < rhs.value
    }
}

/// A network in CIDR form (`198.18.0.0/24`, `fd00::/64`). Parsing refuses host bits set
/// (`198.18.0.1/24`) unless asked to keep them, as Neutron refuses such subnet ranges.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public init?(_ text: some StringProtocol, strict: Bool = true) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddress(parts[0]), let length = Int(parts[1]),
              (0...address.bits).contains(length), !parts[1].hasPrefix("+"), !parts[1].hasPrefix("-") else { return nil }
        let network = IPAddress(version: address.version, value: address.value & Self.mask(length, bits: address.bits))
        if strict && network != address { return nil }
        self.address = network
        self.prefixLength = length
    }

    public init(address: IPAddress, prefixLength: Int) {
        self.address = IPAddress(version: address.version, value: address.value & Self.mask(prefixLength, bits: address.bits))
        self.prefixLength = prefixLength
    }

    static func mask(_ length: Int, bits: Int) -> UInt128 {
        let all: UInt128 = bits == 32 ? 0xFFFF_FFFF : .max
        guard length > 0 else { return 0 }
        return all & ~((UInt128(1) << UInt128(bits - length)) &- 1)
    }

    public var version: Int { address.version }
    public var description: String { "\(address)/\(prefixLength)" }
    /// How many addresses the network spans (2^host bits).
    public var size: UInt128 {
        let hostBits = address.bits - prefixLength
        return hostBits >= 128 ? .max : UInt128(1) << UInt128(hostBits)
    }
    public var first: IPAddress { address }
    public var last: IPAddress { address.advanced(by: size &- 1) }
    /// The dotted netmask of an IPv4 network (`255.255.255.0`).
    public var netmask: IPAddress { IPAddress(version: version, value: Self.mask(prefixLength, bits: address.bits)) }

    public func contains(_ other: IPAddress) -> Bool {
        other.version == version && other.value & Self.mask(prefixLength, bits: address.bits) == address.value
    }

    public func overlaps(_ other: IPNetwork) -> Bool {
        other.version == version && (contains(other.address) || other.contains(address))
    }
}
