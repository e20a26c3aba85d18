import Foundation
import NetlinkDriver
import PetrelCore
import ProcessDriver

/// One ipset set as Petrel keeps it: a `hash:net` of one family.
public struct IPSet: Sendable, Equatable {
    public enum Family: String, Sendable { case inet, inet6 }
    public var family: Family
    /// Networks in CIDR form (`10.0.0.5/32`).
    public var members: Set<String>
    public init(family: Family, members: Set<String>) { self.family = family; self.members = members }
}

/// Petrel's ipset sets (names starting with `prefix`), changed by one `ipset restore` per
/// call: new sets created, members added and removed one by one (a membership change touches
/// the set, never the rules that match it). Stale sets are destroyed in a second step, once
/// no rule refers to them any more.
public struct Ipsets: Sendable {
    public let prefix: String
    /// The network namespace whose sets these are (nil: this process's).
    public let namespace: NetworkNamespace?

    public init(prefix: String, namespace: NetworkNamespace? = nil) { self.prefix = prefix; self.namespace = namespace }

    /// The sets as the kernel has them now.
    public func read() async throws -> [String: IPSet] {
        let dump = try await Command.check("ipset", ["save"], namespace: namespace)
        return parse(dump)
    }

    func parse(_ dump: String) -> [String: IPSet] {
        var sets: [String: IPSet] = [:]
        for line in dump.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            guard words.count >= 3, words[1].hasPrefix(prefix) else { continue }
            if words[0] == "create" {
                let family = words.firstIndex(of: "family").flatMap { words.indices.contains($0 + 1) ? IPSet.Family(rawValue: words[$0 + 1]) : nil }
                sets[words[1]] = IPSet(family: family ?? .inet, members: [])
            } else if words[0] == "add" {
                sets[words[1], default: IPSet(family: .inet, members: [])].members.insert(Self.canonical(words[2]))
            }
        }
        return sets
    }

    /// `ipset save` prints single addresses without their /32 or /128.
    static func canonical(_ member: String) -> String {
        if member.contains("/") { return member }
        return member + (member.contains(":") ? "/128" : "/32")
    }

    /// `hash:net` takes prefixes of 1 to 32 (128) bits: the whole space is two halves.
    static func storable(_ member: String) -> [String] {
        switch member {
        case "0.0.0.0/0": return ["0.0.0.0/1", "128.0.0.0/1"]
        case "::/0": return ["::/1", "8000::/1"]
        default: return [member]
        }
    }

    /// Creates the sets of `desired` that `current` lacks and brings every desired set's
    /// members to what it should hold. Sets only in `current` are left for `destroy`.
    public func update(to desired: [String: IPSet], from current: [String: IPSet]) async throws {
        var lines: [String] = []
        for (name, set) in desired.sorted(by: { $0.key < $1.key }) {
            let wanted = Set(set.members.flatMap(Self.storable))
            let had = current[name]
            if had == nil || had?.family != set.family {
                if had != nil { lines.append("destroy \(name)") }
                lines.append("create \(name) hash:net family \(set.family.rawValue)")
            }
            let existing = had?.family == set.family ? had!.members : []
            for member in wanted.subtracting(existing).sorted() { lines.append("add \(name) \(member)") }
            for member in existing.subtracting(wanted).sorted() { lines.append("del \(name) \(member)") }
        }
        guard !lines.isEmpty else { return }
        do {
            try await Command.check("ipset", ["restore", "-exist"], input: lines.joined(separator: "\n") + "\n", namespace: namespace)
        } catch let failure as CommandError {
            throw IptablesError(message: "ipset refused the sets: \(failure)")
        }
    }

    /// Destroys the sets named (no rule may refer to them any more).
    public func destroy(_ names: [String]) async throws {
        guard !names.isEmpty else { return }
        do {
            try await Command.check("ipset", ["restore"], input: names.sorted().map { "destroy \($0)" }.joined(separator: "\n") + "\n",
                                    namespace: namespace)
        } catch let failure as CommandError {
            throw IptablesError(message: "ipset could not destroy \(names): \(failure)")
        }
    }
}
