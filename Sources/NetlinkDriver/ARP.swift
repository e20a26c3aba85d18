import CNetlink
import Foundation
import PetrelCore

extension NetworkNamespace {
    /// Announces that `address` (IPv4) is at `mac` on `device` of this namespace with one
    /// gratuitous ARP, so neighbours stop sending to the address's previous holder.
    public func announce(address: String, mac: String, device: String) throws {
        var ip = in_addr()
        guard inet_pton(AF_INET, address, &ip) == 1 else { throw SystemCallError("parse \(address)") }
        let bytes = mac.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        guard bytes.count == 6 else { throw SystemCallError("parse MAC \(mac)") }
        let raw = ip.s_addr
        try perform {
            let index = if_nametoindex(device)
            guard index > 0 else { throw SystemCallError("find \(device)") }
            let sent = bytes.withUnsafeBufferPointer { petrel_send_garp(Int32(index), $0.baseAddress, raw) }
            guard sent == 0 else { throw SystemCallError("send a gratuitous ARP for \(address) on \(device)") }
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
