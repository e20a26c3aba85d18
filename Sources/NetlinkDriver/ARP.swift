import CNetlink
import Foundation
import PetrelCore

extension NetworkNamespace {
    /// Announces that each of `addresses` (IPv4) is at `mac` on `device` of this namespace
    /// with one gratuitous ARP, so neighbours stop sending to an address's previous holder.
    /// Returns the addresses whose announcement could not be sent.
    @discardableResult
    public func announce(addresses: [String], mac: String, device: String) throws -> [String] {
        let raws: [(String, UInt32)] = try addresses.map { address in
            var ip = in_addr()
            guard inet_pton(AF_INET, address, &ip) == 1 else { throw SystemCallError("parse \(address)") }
            return (address, ip.s_addr)
        }
        let bytes = mac.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        guard bytes.count == 6 else { throw SystemCallError("parse MAC \(mac)") }
        guard !raws.isEmpty else { return [] }
        return try perform {
            let index = if_nametoindex(device)
            guard index > 0 else { throw SystemCallError("find \(device)") }
            let fd = petrel_garp_socket()
            guard fd >= 0 else { throw SystemCallError("open a packet socket") }
            defer { close(fd) }
            return raws.filter { _, raw in bytes.withUnsafeBufferPointer { petrel_send_garp(fd, Int32(index), $0.baseAddress, raw) } != 0 }.map(\.0)
        }
    }

    /// Writes a sysctl of this namespace (`net/ipv4/ip_forward`…): /proc/sys/net is the
    /// namespace of the thread that opens it.
    public func setSysctl(_ key: String, _ value: String) throws {
        try perform {
            let path = "/proc/sys/" + key
            guard let handle = FileHandle(forWritingAtPath: path) else { throw SystemCallError("open \(path)") }
            defer { try? handle.close() }
            try handle.write(contentsOf: Data(value.utf8))
        }
    }
}
