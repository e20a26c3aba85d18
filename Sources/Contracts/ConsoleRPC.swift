/// Where a running instance's remote console listens on its host (Nova's `get_vnc_console` /
/// `get_serial_console` of the compute service): the node reads the live domain, since libvirt
/// chooses the VNC port when the guest starts. A call on `compute.<host>`.
public struct ConsoleConnection: RPCMethod {
    public enum Kind: String, Codable, Sendable {
        case vnc, serial
    }

    public struct Arguments: Codable, Sendable, Equatable {
        public var instanceID: String
        public var kind: Kind
        public init(instanceID: String, kind: Kind) {
            self.instanceID = instanceID
            self.kind = kind
        }
    }

    /// Why there is no console to reach.
    public enum Problem: String, Codable, Sendable {
        /// This host does not serve that kind of console (`[serial_console] enabled` is off), or
        /// the guest has no such device.
        case unavailable
        /// The guest does not run (or is not on this host).
        case notRunning = "not_running"
    }

    public struct Result: Codable, Sendable, Equatable {
        /// The address the console proxy connects to, and the TCP port there.
        public var host: String
        public var port: Int
        public var problem: Problem?

        public init(host: String, port: Int, problem: Problem? = nil) {
            self.host = host
            self.port = port
            self.problem = problem
        }

        public static func failed(_ problem: Problem) -> Result { Result(host: "", port: 0, problem: problem) }
    }

    public static let name = "console_connection"
    public static let version = RPCVersion(1, 0)
}
