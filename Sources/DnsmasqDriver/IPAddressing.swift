import Foundation

/// An IPv4 or IPv6 address, parsed with inet_pton so dnsmasq never sees text it would
/// misread (and IPv6 addresses come out in one canonical spelling).
struct IPAddress: Equatable, CustomStringConvertible {
    let bytes: [UInt8]
    var version: Int { bytes.count == 4 ? 4 : 6 }

    init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        bytes = withUnsafeBytes(of: &v6) { Array($0) }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = version == 4 ? AF_INET : AF_INET6
        return bytes.withUnsafeBytes { raw in
            buffer.withUnsafeMutableBufferPointer { out in
                inet_ntop(family, raw.baseAddress, out.baseAddress, socklen_t(out.count)).map { String(cString: $0) } ?? ""
            }
        }
    }

    /// The address as dnsmasq wants it in host and option lists: IPv6 in brackets.
    var dnsmasqLiteral: String { version == 6 ? "[\(self)]" : description }

    var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }
}

/// "198.18.0.0/24": the network address (host bits cleared) and prefix length.
struct IPPrefix: Equatable, CustomStringConvertible {
    let network: IPAddress
    let length: Int

    init?(_ cidr: String) {
        let parts = cidr.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddress(String(parts[0])), let length = Int(parts[1]),
              length >= 0, length <= address.bytes.count * 8 else { return nil }
        var bytes = address.bytes
        for bit in length..<(bytes.count * 8) { bytes[bit / 8] &= ~(0x80 >> UInt8(bit % 8)) }
        network = IPAddress(bytes: bytes)
        self.length = length
    }

    var version: Int { network.version }
    var description: String { "\(network)/\(length)" }

    /// The IPv4 netmask, "255.255.255.0".
    var netmask: String {
        let mask: UInt32 = length == 0 ? 0 : UInt32.max << UInt32(32 - length)
        return (0..<4).map { String((mask >> UInt32(24 - 8 * $0)) & 0xff) }.joined(separator: ".")
    }

    /// Number of addresses, saturating (an IPv6 /64 does not fit any integer we need).
    var size: UInt64 {
        let hostBits = network.bytes.count * 8 - length
        return hostBits >= 63 ? UInt64(1) << 63 : UInt64(1) << UInt64(hostBits)
    }

    func contains(_ address: IPAddress) -> Bool {
        guard address.version == version else { return false }
        return IPPrefix("\(address)/\(length)")?.network == network
    }
}
