import Foundation

/// The remote consoles' settings (Nova's `[vnc]`, `[serial_console]`, `[consoleauth]`, and the
/// console proxy's `[console]`), for the controller's proxy and the nodes' guests.
public struct ConsoleSettings: Sendable, Equatable {
    /// `[console] proxy_listen`: the console proxy's one listener (nil: no proxy, so no consoles).
    public var proxyListen: HostPort?
    /// `[console] web`: noVNC's files, served by the proxy.
    public var webDirectory: String
    /// `[console] allowed_origins`: host names a browser's WebSocket may come from besides the proxy's own.
    public var allowedOrigins: [String]
    /// `[vnc] novncproxy_base_url`.
    public var novncBaseURL: String
    /// `[serial_console] base_url`.
    public var serialBaseURL: String
    /// `[consoleauth] token_ttl`, seconds.
    public var tokenTTL: Int
    /// `[vnc] server_proxyclient_address`.
    public var vncProxyClientAddress: String
    /// `[serial_console] enabled`.
    public var serialEnabled: Bool
    /// `[serial_console] port_range`.
    public var serialPorts: ClosedRange<Int>
    /// `[serial_console] proxyclient_address`.
    public var serialProxyClientAddress: String

    public static let options: [ConfigOption] = [
        .init("vnc", "server_proxyclient_address", .ipAddress, default: "127.0.0.1",
              help: "Address of this node's VNC listeners as the controller's console proxy reaches them."),
        .init("vnc", "novncproxy_base_url", .httpURL, default: nil,
              help: "URL of noVNC's page on the console proxy, handed out (with a token) by `openstack console url show --novnc`. Defaults to http(s)://<host of [api] public_url>:<port of [console] proxy_listen>/vnc_lite.html, https when the API serves TLS."),
        .init("serial_console", "enabled", .boolean, default: "false",
              help: "Serve each guest's first serial port over TCP for `openstack console url show --serial` (its output still goes to the console log). Applies to guests defined from then on."),
        .init("serial_console", "port_range", .string, default: "10000:20000",
              help: "TCP ports (first:last) this node gives its guests' serial consoles."),
        .init("serial_console", "proxyclient_address", .ipAddress, default: "127.0.0.1",
              help: "Address the guests' serial consoles listen on, as the controller's console proxy reaches them."),
        .init("serial_console", "base_url", .string, default: nil,
              help: "WebSocket URL of the console proxy for serial consoles (ws:// or wss://). Defaults to ws(s)://<host of [api] public_url>:<port of [console] proxy_listen>/."),
        .init("consoleauth", "token_ttl", .integer(1...86400), default: "600",
              help: "Seconds a console URL's token stays valid (it opens one connection)."),
        .init("console", "proxy_listen", .hostPort, default: nil,
              help: "Address of the controller's console proxy (noVNC's page, and the WebSockets of VNC and serial consoles, e.g. 0.0.0.0:6080). It serves TLS when the API does, with the same certificate. Unset: no console proxy, and remote consoles are unavailable."),
        .init("console", "web", .absolutePath, default: "/usr/share/novnc",
              help: "Directory of noVNC's files (Debian's novnc package) that the console proxy serves."),
        .init("console", "allowed_origins", .string, default: nil,
              help: "Comma-separated host names whose pages may open console WebSockets, besides the proxy's own host (a browser's Origin header is checked, as Nova's proxy does)."),
    ]

    /// Reads the settings through the configuration's validated `string` reader.
    init(_ string: (String, String) throws -> String?, publicURL: String, tls: Bool) throws {
        proxyListen = try string("console", "proxy_listen").flatMap(HostPort.init(parsing:))
        webDirectory = try string("console", "web")!
        allowedOrigins = (try string("console", "allowed_origins") ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        tokenTTL = Int(try string("consoleauth", "token_ttl")!)!
        vncProxyClientAddress = try string("vnc", "server_proxyclient_address")!
        serialEnabled = PetrelConfig.boolean(try string("serial_console", "enabled")!)!
        serialProxyClientAddress = try string("serial_console", "proxyclient_address")!
        let range = try string("serial_console", "port_range")!
        let bounds = range.split(separator: ":").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard bounds.count == 2, bounds[0] >= 1, bounds[0] <= bounds[1], bounds[1] <= 65535 else {
            throw ConfigError(origin: "[serial_console] port_range", message: "'\(range)' is not first:last with 1 <= first <= last <= 65535")
        }
        serialPorts = bounds[0]...bounds[1]
        // The proxy's address as clients reach it: the API's host, the proxy's port.
        let host = URLComponents(string: publicURL)?.host ?? "127.0.0.1"
        let reachable = HostPort(host: host, port: proxyListen?.port ?? 6080).description
        novncBaseURL = try string("vnc", "novncproxy_base_url") ?? "\(tls ? "https" : "http")://\(reachable)/vnc_lite.html"
        let serial = try string("serial_console", "base_url") ?? "\(tls ? "wss" : "ws")://\(reachable)/"
        guard serial.hasPrefix("ws://") || serial.hasPrefix("wss://") else {
            throw ConfigError(origin: "[serial_console] base_url", message: "'\(serial)' is not a ws:// or wss:// URL")
        }
        serialBaseURL = serial
    }
}
