import Foundation
import PetrelCore
import ProcessDriver

public struct TgtError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One iSCSI target of tgtd, as `tgtadm --op show --mode target` prints it.
public struct TgtTarget: Sendable, Equatable {
    public var tid: Int
    public var iqn: String
    /// Each logical unit's backing store (LUN 0, tgt's controller, has none and is left out).
    public var luns: [Int: String]
    /// The CHAP accounts bound to the target (incoming).
    public var accounts: [String]

    public init(tid: Int, iqn: String, luns: [Int: String], accounts: [String]) {
        self.tid = tid; self.iqn = iqn; self.luns = luns; self.accounts = accounts
    }
}

/// What an initiator needs to reach an exported file or block device.
public struct TgtExport: Sendable, Equatable {
    public var tid: Int
    public var iqn: String
    public var lun: Int
}

/// The Linux SCSI target daemon (tgtd) through its administration tool, `tgtadm`, as Cinder's
/// `tgtadm` target helper drives it: one target per exported volume, its data on LUN 1,
/// every initiator address allowed, and access guarded by CHAP accounts bound to the target.
///
/// tgtd keeps its targets in memory only: a restarted tgtd has none, and whoever exported
/// them exports them again (`ensure` is idempotent). Several callers may share one tgtd (two
/// nodes on one machine): targets are found by IQN, never by a remembered tid, and a tid
/// taken by someone else between our look and our create is retried with the next one.
public struct Tgt: Sendable {
    public init() {}

    /// The data LUN of every target this driver makes.
    public static let dataLUN = 1

    func tgtadm(_ arguments: [String]) async throws -> String {
        let result = try await Command.run("tgtadm", ["--lld", "iscsi"] + arguments)
        guard result.status == 0 else {
            let message = (result.stderr + result.stdout).trimmingCharacters(in: .whitespacesAndNewlines)
            throw TgtError("tgtadm \(arguments.prefix(4).joined(separator: " ")): \(message.replacingOccurrences(of: "tgtadm: ", with: ""))")
        }
        return result.stdout
    }

    public func targets() async throws -> [TgtTarget] {
        Self.parseTargets(try await tgtadm(["--op", "show", "--mode", "target"]))
    }

    /// Every CHAP account tgtd knows (bound or not).
    public func accounts() async throws -> [String] {
        try await tgtadm(["--op", "show", "--mode", "account"]).split(separator: "\n").dropFirst()
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Exports `path` as LUN 1 of target `iqn` (made when missing, with every initiator
    /// allowed) and binds the CHAP account `user`/`password` to it (made when missing; an
    /// existing account keeps its password, so callers name accounts by what they guard).
    public func ensure(iqn: String, path: String, user: String, password: String) async throws -> TgtExport {
        let present = try await targets()
        var target: TgtTarget
        if let found = present.first(where: { $0.iqn == iqn }) { target = found } else { target = try await create(iqn: iqn, present: present) }
        if let existing = target.luns[Self.dataLUN], existing != path {
            throw TgtError("target \(iqn) exports \(existing), not \(path)")
        }
        if target.luns[Self.dataLUN] == nil {
            do {
                _ = try await tgtadm(["--op", "new", "--mode", "logicalunit", "--tid", "\(target.tid)", "--lun", "\(Self.dataLUN)",
                                      "--backing-store", path])
            } catch {
                // A target without its data is of no use to anyone: remove it again.
                try? await deleteTarget(tid: target.tid)
                throw TgtError("cannot export \(path) on \(iqn): \(error)")
            }
            target.luns[Self.dataLUN] = path
        }
        if !target.accounts.contains(user) {
            if try await !accounts().contains(user) {
                do {
                    _ = try await tgtadm(["--op", "new", "--mode", "account", "--user", user, "--password", password])
                } catch let error as TgtError where error.description.contains("already exists") {}
            }
            _ = try await tgtadm(["--op", "bind", "--mode", "account", "--tid", "\(target.tid)", "--user", user])
        }
        return TgtExport(tid: target.tid, iqn: iqn, lun: Self.dataLUN)
    }

    /// Makes the target at the lowest free tid (of `present`, tgtd's targets as just read),
    /// every initiator address allowed (CHAP guards it).
    func create(iqn: String, present: [TgtTarget]) async throws -> TgtTarget {
        var present = present
        for attempt in 0..<16 {
            if attempt > 0 { present = try await targets() }
            if let target = present.first(where: { $0.iqn == iqn }) { return target }
            let used = Set(present.map(\.tid))
            let tid = (1...).first { !used.contains($0) }!
            do {
                _ = try await tgtadm(["--op", "new", "--mode", "target", "--tid", "\(tid)", "--targetname", iqn])
            } catch let error as TgtError where error.description.contains("already exists") {
                continue  // that tid (or this IQN) was taken meanwhile: look again
            }
            _ = try await tgtadm(["--op", "bind", "--mode", "target", "--tid", "\(tid)", "--initiator-address", "ALL"])
            return TgtTarget(tid: tid, iqn: iqn, luns: [:], accounts: [])
        }
        throw TgtError("no free target id for \(iqn) after 16 tries")
    }

    /// Unbinds and removes the account `user`; the target goes too once no account is bound
    /// to it. A target or account that is gone already is not an error.
    public func release(iqn: String, user: String) async throws {
        guard let target = try await targets().first(where: { $0.iqn == iqn }) else {
            try await deleteAccount(user)
            return
        }
        if target.accounts.contains(user) {
            do {
                _ = try await tgtadm(["--op", "unbind", "--mode", "account", "--tid", "\(target.tid)", "--user", user])
            } catch let error as TgtError where error.description.contains("can't find") {}
        }
        try await deleteAccount(user)
        if target.accounts.allSatisfy({ $0 == user }) {
            try await deleteTarget(tid: target.tid)
        }
    }

    public func deleteAccount(_ user: String) async throws {
        do {
            _ = try await tgtadm(["--op", "delete", "--mode", "account", "--user", user])
        } catch let error as TgtError where error.description.contains("can't find") {}
    }

    /// Removes the target even while initiators are logged in (they lose the disk).
    public func deleteTarget(tid: Int) async throws {
        do {
            _ = try await tgtadm(["--op", "delete", "--force", "--mode", "target", "--tid", "\(tid)"])
        } catch let error as TgtError where error.description.contains("can't find") {}
    }

    /// Reads `tgtadm --op show --mode target`.
    public static func parseTargets(_ text: String) -> [TgtTarget] {
        var targets: [TgtTarget] = []
        var section = "", lun: Int?
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            let indent = raw.prefix { $0 == " " }.count
            if indent == 0, line.hasPrefix("Target "), let colon = line.firstIndex(of: ":") {
                let tid = Int(line[line.index(line.startIndex, offsetBy: 7)..<colon]) ?? 0
                let iqn = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                targets.append(TgtTarget(tid: tid, iqn: iqn, luns: [:], accounts: []))
                section = ""; lun = nil
                continue
            }
            guard !targets.isEmpty else { continue }
            if indent == 4 {
                section = line
                lun = nil
                continue
            }
            switch section {
            case "LUN information:":
                if line.hasPrefix("LUN: ") { lun = Int(line.dropFirst(5)) }
                if line.hasPrefix("Backing store path: "), let lun, lun != 0 {
                    targets[targets.count - 1].luns[lun] = String(line.dropFirst("Backing store path: ".count))
                }
            case "Account information:":
                // Outgoing (mutual CHAP) accounts are marked; only incoming ones guard the target.
                if !line.hasSuffix("(outgoing)") { targets[targets.count - 1].accounts.append(line) }
            default:
                break
            }
        }
        return targets
    }
}
