import Contracts
import Foundation

/// What an L2 backend is and can do, so the network service asks instead of guessing.
public struct L2DriverInfo: Sendable, Equatable {
    /// The configuration name (`linuxbridge`; `openvswitch` is the next).
    public var name: String
    /// The agent the node reports while the backend runs (`neutron-linuxbridge-agent`).
    public var agentBinary: String
    /// The VIF type Nova plugs for it (`bridge`).
    public var vifType: String
    /// The network types it wires.
    public var networkTypes: Set<String>
}

public struct L2Error: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One L2 backend: it makes a network's segment reachable on this host (a bridge per
/// network, its uplink or tunnel), keeps the tunnel's forwarding entries towards the other
/// nodes, and says which of its devices exist so reconciliation can remove Petrel's orphans.
/// Every call is idempotent: asking for what exists changes nothing and disturbs no traffic.
public protocol L2Driver: Sendable {
    var info: L2DriverInfo { get }
    /// The device guests' and DHCP's ports attach to for `network` (the bridge).
    func attachmentPoint(_ network: NetworkWiring) -> String
    /// Wires the segment: creates what is missing, sets the MTU, and makes the tunnel's
    /// flooding entries exactly `endpoints` (the other nodes with ports on the network).
    func ensure(_ network: NetworkWiring, endpoints: [String]) async throws
    /// Removes the network's devices from this host.
    func remove(networkPrefix: String) async throws
    /// Whether the network whose id starts with `networkPrefix` (11 characters, as the device
    /// names hold them) is wired here now.
    func isWired(networkPrefix: String) async throws -> Bool
    /// Whether `device` is attached to the network's attachment point.
    func isAttached(_ device: String, to network: NetworkWiring) async throws -> Bool
}

/// The L2 backends by configuration name.
public enum L2Drivers {
    public struct Settings: Sendable {
        public var tunnelIP: String?
        public var interfaceMappings: [String: String]
        public init(tunnelIP: String?, interfaceMappings: [String: String]) {
            self.tunnelIP = tunnelIP
            self.interfaceMappings = interfaceMappings
        }
    }

    public static let registry: [String: @Sendable (Settings) throws -> any L2Driver] = [
        "linuxbridge": { settings in try LinuxBridgeDriver(settings: settings) },
    ]

    public static func make(_ name: String, settings: Settings) throws -> any L2Driver {
        guard let make = registry[name] else {
            throw L2Error("no L2 driver '\(name)' (known: \(registry.keys.sorted().joined(separator: ", ")))")
        }
        return try make(settings)
    }
}
