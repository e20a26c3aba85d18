import Contracts
import Foundation
import Glibc
import RPC

/// How this node serves its guests' remote consoles (Nova's `[vnc]` and `[serial_console]`).
public struct ConsoleOptions: Sendable, Equatable {
    /// `[vnc] server_proxyclient_address`: the address the console proxy reaches the VNC
    /// listeners at.
    public var vncProxyClientAddress = "127.0.0.1"
    /// `[serial_console] enabled`: each guest's first serial port is a TCP listener.
    public var serialEnabled = false
    /// `[serial_console] proxyclient_address`: where the serial listeners bind, and the proxy connects.
    public var serialListen = "127.0.0.1"
    /// `[serial_console] port_range`.
    public var serialPorts: ClosedRange<Int> = 10000...20000

    public init() {}
}

extension InstanceDomain {
    /// This domain model with the node's console options.
    public func with(consoles: ConsoleOptions) -> InstanceDomain {
        var copy = self
        copy.consoles = consoles
        return copy
    }

    /// The port of the VNC listener in a running domain's XML (libvirt writes the port it
    /// chose; -1 or nothing while the guest does not run).
    static func vncPort(in xml: String) -> Int? {
        guard let element = element(in: xml, opening: "<graphics type='vnc'"),
              let port = attribute("port", in: element).flatMap(Int.init), port > 0 else { return nil }
        return port
    }

    /// The host and port of the first TCP serial listener in a domain's XML.
    static func serialListener(in xml: String) -> (host: String, port: Int)? {
        guard let element = element(in: xml, opening: "<serial type='tcp'"),
              let source = self.element(in: element, opening: "<source "),
              let port = attribute("service", in: source).flatMap(Int.init) else { return nil }
        return (attribute("host", in: source) ?? "127.0.0.1", port)
    }

    private static func element(in xml: String, opening: String) -> String? {
        guard let start = xml.range(of: opening) else { return nil }
        let rest = xml[start.lowerBound...]
        guard let end = rest.firstIndex(of: ">") else { return nil }
        // The whole element up to its closing tag when it has children.
        let tag = opening.dropFirst().prefix { $0 != " " }
        if rest[rest.index(before: end)] != "/", let close = rest.range(of: "</\(tag)>") {
            return String(rest[..<close.upperBound])
        }
        return String(rest[...end])
    }

    private static func attribute(_ name: String, in element: String) -> String? {
        guard let head = element.split(separator: ">", maxSplits: 1).first, let start = head.range(of: " \(name)='") else { return nil }
        let after = head[start.upperBound...]
        guard let end = after.firstIndex(of: "'") else { return nil }
        return String(after[..<end])
    }
}

/// The serial ports handed to domains being defined: a port stays reserved for a minute, so two
/// builds at once never get the same one before their domains show it.
actor SerialPortPool {
    static let shared = SerialPortPool()
    private var reserved: [Int: ContinuousClock.Instant] = [:]

    func reserve(in range: ClosedRange<Int>, excluding used: Set<Int>, host: String) -> Int? {
        let now = ContinuousClock.now
        reserved = reserved.filter { now - $0.value < .seconds(60) }
        for port in range where !used.contains(port) && reserved[port] == nil && Self.bindable(host: host, port: port) {
            reserved[port] = now
            return port
        }
        return nil
    }

    /// Whether nothing listens on `host:port` now (Nova's test: bind a socket there).
    static func bindable(host: String, port: Int) -> Bool {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return true }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

extension ComputeService {
    func registerConsoles(on server: RPCServer) {
        server.register(ConsoleConnection.self) { [self] arguments, _ in
            try await consoleConnection(arguments)
        }
    }

    /// Where a guest's console listens, from its live domain (libvirt chose the VNC port when
    /// the guest started).
    func consoleConnection(_ arguments: ConsoleConnection.Arguments) async throws -> ConsoleConnection.Result {
        let options = settings.domain.consoles
        if arguments.kind == .serial, !options.serialEnabled { return .failed(.unavailable) }
        guard let state = try await hypervisor.state(arguments.instanceID), [.running, .paused, .blocked].contains(state),
              let xml = try await hypervisor.liveDefinition(arguments.instanceID), InstanceDomain.isPetrels(xml, host: host) else {
            return .failed(.notRunning)
        }
        switch arguments.kind {
        case .vnc:
            guard let port = InstanceDomain.vncPort(in: xml) else { return .failed(.unavailable) }
            return .init(host: options.vncProxyClientAddress, port: port)
        case .serial:
            // A guest defined before the serial console was enabled has none until it is defined again.
            guard let listener = InstanceDomain.serialListener(in: xml) else { return .failed(.unavailable) }
            return .init(host: listener.host, port: listener.port)
        }
    }

    /// The TCP port of the instance's serial console (nil when this node serves none): the one
    /// its definition has, else a free one of `[serial_console] port_range`.
    func serialConsolePort(_ id: String) async throws -> Int? {
        let options = settings.domain.consoles
        guard options.serialEnabled, settings.domain.domainType != "test" else { return nil }
        if let stored = try await hypervisor.definition(id), let listener = InstanceDomain.serialListener(in: stored) {
            return listener.port
        }
        var used = Set<Int>()
        for guest in try await hypervisor.guests() {
            if let xml = try await hypervisor.definition(guest.id), let listener = InstanceDomain.serialListener(in: xml) {
                used.insert(listener.port)
            }
        }
        guard let port = await SerialPortPool.shared.reserve(in: options.serialPorts, excluding: used, host: options.serialListen) else {
            throw Refused(description: "no free port in [serial_console] port_range \(options.serialPorts.lowerBound):\(options.serialPorts.upperBound)",
                          retryable: true)
        }
        return port
    }
}
