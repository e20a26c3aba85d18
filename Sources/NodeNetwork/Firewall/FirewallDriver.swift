import Contracts
import Foundation

/// What one apply did, for the log and the benchmarks.
public struct FirewallReport: Sendable, Equatable {
    /// Ports filtered, rules in Petrel's chains, chains rewritten, set members changed.
    public var ports: Int
    public var rules: Int
    public var chainsRewritten: Int
    public var setsChanged: Int

    public init(ports: Int, rules: Int, chainsRewritten: Int, setsChanged: Int) {
        self.ports = ports; self.rules = rules; self.chainsRewritten = chainsRewritten; self.setsChanged = setsChanged
    }
}

public struct FirewallError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One firewall backend: it makes the host's packet filter equal to the desired state (the
/// ports bound here, their security groups' rules, the members of the groups those rules
/// name), touching only its own chains and sets. A refused change leaves the previous
/// firewall in force and throws. Each call is a whole desired state, so calls are
/// idempotent and the last one wins.
public protocol FirewallDriver: Sendable {
    /// The configuration name (`iptables`).
    var name: String { get }
    func apply(_ state: FirewallState) async throws -> FirewallReport
    /// Removes everything the backend made.
    func removeAll() async throws
}

/// The firewall backends by `[securitygroup] firewall_driver` name.
public enum FirewallDrivers {
    public static let registry: [String: @Sendable () -> any FirewallDriver] = [
        "iptables": { IptablesFirewall() },
    ]

    public static func make(_ name: String) throws -> any FirewallDriver {
        guard let make = registry[name] else {
            throw FirewallError("no firewall driver '\(name)' (known: \(registry.keys.sorted().joined(separator: ", ")))")
        }
        return make()
    }
}

/// Runs one job at a time and folds the requests that arrive meanwhile into one more run:
/// a burst of change notices costs two syncs, not one per notice. A caller returns once a
/// run that started after its request has finished.
actor Coalescer {
    private var requested = 0
    private var completed = 0
    private var running = false
    private var waiters: [(generation: Int, continuation: CheckedContinuation<Void, Never>)] = []

    func run(_ job: @Sendable () async -> Void) async {
        requested += 1
        let mine = requested
        guard !running else {
            await withCheckedContinuation { waiters.append((mine, $0)) }
            return
        }
        running = true
        while completed < requested {
            let target = requested
            await job()
            completed = target
            let done = waiters.filter { $0.generation <= target }
            waiters.removeAll { $0.generation <= target }
            for waiter in done { waiter.continuation.resume() }
        }
        running = false
    }
}
