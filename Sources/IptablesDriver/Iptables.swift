import Foundation
import NetlinkDriver
import PetrelCore
import ProcessDriver

/// A rule in a built-in chain (INPUT, FORWARD, PREROUTING…) that sends packets into one of
/// Petrel's chains, e.g. `Jump(from: "FORWARD", rule: "-j petrel-FORWARD")`.
public struct Jump: Sendable, Hashable {
    public let from: String
    /// The rule specification as `iptables-save` prints it after `-A <from> `.
    public let rule: String

    public init(from: String, rule: String) {
        self.from = from
        self.rule = rule
    }

    public init(from: String, to chain: String) {
        self.init(from: from, rule: "-j \(chain)")
    }
}

/// The part of one table Petrel owns: chains whose names carry the prefix, and the jumps
/// into them from built-in chains.
public struct OwnedRules: Sendable, Equatable {
    /// Chain name → its rules, each as written after `-A <chain> `.
    public var chains: [String: [String]]
    public var jumps: Set<Jump>

    public init(chains: [String: [String]] = [:], jumps: Set<Jump> = []) {
        self.chains = chains
        self.jumps = jumps
    }
}

public struct IptablesError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// Applies Petrel's packet-filter rules with `iptables-restore --noflush` (or
/// `ip6tables-restore`): one atomic transaction per change, touching only chains whose
/// names start with `prefix` and the jumps into them. Everything else in the table is
/// left exactly as it was.
public struct Iptables: Sendable {
    public enum Family: Sendable { case ipv4, ipv6 }

    public let family: Family
    public let prefix: String
    /// The network namespace whose tables these are (nil: this process's).
    public let namespace: NetworkNamespace?

    public init(family: Family = .ipv4, prefix: String = "petrel-", namespace: NetworkNamespace? = nil) {
        self.family = family
        self.prefix = prefix
        self.namespace = namespace
    }

    private var save: String { family == .ipv4 ? "iptables-save" : "ip6tables-save" }
    private var restore: String { family == .ipv4 ? "iptables-restore" : "ip6tables-restore" }

    /// Makes `table` hold exactly `desired` among Petrel's chains and jumps. `current` is what
    /// the caller knows the table holds (read from the kernel when nil); only the chains whose
    /// rules differ are rewritten. Nothing to change: nothing is run.
    public func apply(_ desired: OwnedRules, over current: OwnedRules? = nil, table: String = "filter") async throws {
        for chain in desired.chains.keys where !chain.hasPrefix(prefix) || chain.count > 28 {
            throw IptablesError(message: "chain '\(chain)' must start with '\(prefix)' and be at most 28 characters")
        }
        for jump in desired.jumps where jump.from.hasPrefix(prefix) {
            throw IptablesError(message: "jumps come from built-in chains, not '\(jump.from)'")
        }
        let current = if let current { current } else { try await read(table: table) }
        guard current != desired else { return }
        do {
            try await Command.check(restore, ["--noflush", "--wait"], input: Self.transaction(from: current, to: desired, table: table),
                                    namespace: namespace)
        } catch let failure as CommandError {
            throw IptablesError(message: "\(restore) refused the \(table) table: \(failure)")
        }
    }

    /// Removes every Petrel chain and jump from `table`.
    public func removeAll(table: String = "filter") async throws {
        try await apply(OwnedRules(), table: table)
    }

    /// Petrel's chains and jumps as the kernel has them now.
    public func read(table: String = "filter") async throws -> OwnedRules {
        let dump = try await Command.check(save, ["-t", table], namespace: namespace)
        return parse(dump)
    }

    func parse(_ dump: String) -> OwnedRules {
        var owned = OwnedRules()
        for line in dump.split(separator: "\n").map(String.init) {
            if line.hasPrefix(":\(prefix)") {
                let name = String(line.dropFirst().prefix { $0 != " " })
                owned.chains[name, default: []] = owned.chains[name] ?? []
            } else if line.hasPrefix("-A ") {
                let rest = line.dropFirst(3)
                let chain = String(rest.prefix { $0 != " " })
                let rule = String(rest.dropFirst(chain.count + 1))
                if chain.hasPrefix(prefix) {
                    owned.chains[chain, default: []].append(rule)
                } else if Self.target(of: rule)?.hasPrefix(prefix) == true {
                    owned.jumps.insert(Jump(from: chain, rule: rule))
                }
            }
        }
        return owned
    }

    /// The `-j`/`-g` target of a rule, if any.
    static func target(of rule: String) -> String? {
        let words = rule.split(separator: " ")
        guard let index = words.firstIndex(where: { $0 == "-j" || $0 == "-g" }), index + 1 < words.count else { return nil }
        return String(words[index + 1])
    }

    /// The restore input turning `current` into `desired`: declaring a chain flushes it
    /// (in --noflush mode), so only new and changed chains are declared and refilled; stale
    /// jumps are deleted before stale chains are flushed and removed.
    static func transaction(from current: OwnedRules, to desired: OwnedRules, table: String) -> String {
        var lines = ["*\(table)"]
        let stale = current.chains.keys.filter { desired.chains[$0] == nil }.sorted()
        let changed = desired.chains.keys.filter { current.chains[$0] != desired.chains[$0] }.sorted()
        for chain in (changed + stale) { lines.append(":\(chain) - [0:0]") }
        for jump in current.jumps.subtracting(desired.jumps).sorted(by: { ($0.from, $0.rule) < ($1.from, $1.rule) }) {
            lines.append("-D \(jump.from) \(jump.rule)")
        }
        for chain in stale { lines.append("-X \(chain)") }
        for chain in changed {
            for rule in desired.chains[chain]! { lines.append("-A \(chain) \(rule)") }
        }
        for jump in desired.jumps.subtracting(current.jumps).sorted(by: { ($0.from, $0.rule) < ($1.from, $1.rule) }) {
            lines.append("-I \(jump.from) 1 \(jump.rule)")
        }
        lines.append("COMMIT")
        return lines.joined(separator: "\n") + "\n"
    }
}
