import Foundation
@testable import IptablesDriver
import ProcessDriver
import TestSupport
import Testing

@Suite(.serialized) struct IptablesTests {
    /// A private prefix per run, so the test owns exactly its own chains.
    let prefix = TestNames.unique("pt") + "-"

    @Test(arguments: [Iptables.Family.ipv4, .ipv6])
    func applyReadBackAndRemove(family: Iptables.Family) async throws {
        try Requirement.root()
        try Requirement.tool(family == .ipv4 ? "iptables-restore" : "ip6tables-restore")
        let tables = Iptables(family: family, prefix: prefix)
        let save = family == .ipv4 ? "iptables-save" : "ip6tables-save"
        let cli = family == .ipv4 ? "iptables" : "ip6tables"
        // Something that is not ours, which every apply must leave alone.
        let foreign = "X" + prefix.dropLast()
        try await Command.check(cli, ["-w", "-N", foreign])
        try await Command.check(cli, ["-w", "-A", foreign, "-j", "RETURN"])
        try await withCleanup {

        let input = prefix + "INPUT", ssh = prefix + "ssh", old = prefix + "old"
        let first = OwnedRules(chains: [input: ["-p tcp -j \(ssh)", "-j \(old)"], ssh: ["-p tcp -m tcp --dport 22 -j ACCEPT"],
                                        old: ["-j RETURN"]],
                               jumps: [Jump(from: "INPUT", to: input)])
        try await tables.apply(first)
        let read = try await tables.read()
        #expect(read.chains[ssh] == ["-p tcp -m tcp --dport 22 -j ACCEPT"])
        #expect(read.chains[input] == ["-p tcp -j \(ssh)", "-j \(old)"])
        #expect(read.jumps == [Jump(from: "INPUT", to: input)])

        // Change: drop a chain, change rules, move the jump. Applying twice changes nothing more.
        let second = OwnedRules(chains: [input: ["-p tcp -j \(ssh)"], ssh: ["-p tcp -m tcp --dport 2222 -j ACCEPT"]],
                                jumps: [Jump(from: "FORWARD", to: input)])
        try await tables.apply(second)
        try await tables.apply(second)
        #expect(try await tables.read() == second)
        let dump = try await Command.check(save, ["-t", "filter"])
        #expect(!dump.contains(old) && !dump.contains("-A INPUT -j \(input)"))
        #expect(dump.contains("-A \(foreign) -j RETURN"), "a chain without the prefix was touched")

        // A bad rule fails the whole transaction, and nothing changes.
        await #expect(throws: IptablesError.self) {
            try await tables.apply(OwnedRules(chains: [input: ["-p nosuchproto -j ACCEPT"]], jumps: []))
        }
        #expect(try await tables.read() == second)
        await #expect(throws: IptablesError.self) { try await tables.apply(OwnedRules(chains: ["INPUT": []])) }

        try await tables.removeAll()
        #expect(try await tables.read() == OwnedRules())
        #expect(try await Command.check(save, ["-t", "filter"]).contains("-A \(foreign) -j RETURN"))
        } cleanup: {
            try? await tables.removeAll()
            _ = try? await Command.run(cli, ["-w", "-F", foreign])
            _ = try? await Command.run(cli, ["-w", "-X", foreign])
        }
    }

    @Test func transactionText() {
        let current = OwnedRules(chains: ["petrel-a": ["-j ACCEPT"], "petrel-gone": []], jumps: [Jump(from: "INPUT", to: "petrel-gone")])
        let desired = OwnedRules(chains: ["petrel-a": ["-j DROP"]], jumps: [Jump(from: "INPUT", to: "petrel-a")])
        #expect(Iptables.transaction(from: current, to: desired, table: "filter") == """
        *filter
        :petrel-a - [0:0]
        :petrel-gone - [0:0]
        -D INPUT -j petrel-gone
        -X petrel-gone
        -A petrel-a -j DROP
        -I INPUT 1 -j petrel-a
        COMMIT

        """)
    }
}
