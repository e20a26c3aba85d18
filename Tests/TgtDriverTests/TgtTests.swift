import Foundation
import ProcessDriver
import TestSupport
import TgtDriver
import Testing

/// tgtd for real: a file exported as LUN 1 of its own target, read through QEMU's iSCSI
/// initiator with the CHAP account bound to it, refused without it, and removed again.
@Suite struct TgtTests {
    @Test func parsesTargetsAsTgtadmPrintsThem() {
        let text = """
            Target 3: iqn.2010-10.org.openstack:volume-abc
                System information:
                    Driver: iscsi
                    State: ready
                I_T nexus information:
                LUN information:
                    LUN: 0
                        Type: controller
                        Backing store path: None
                    LUN: 1
                        Type: disk
                        Backing store path: /var/lib/petrel/volumes/volume-abc
                Account information:
                    petrel-1
                    petrel-out (outgoing)
                ACL information:
                    ALL
            Target 4: iqn.x:y
                System information:
                LUN information:
                    LUN: 0
                        Backing store path: None
                Account information:
                ACL information:
                    ALL

            """
        #expect(Tgt.parseTargets(text) == [
            TgtTarget(tid: 3, iqn: "iqn.2010-10.org.openstack:volume-abc", luns: [1: "/var/lib/petrel/volumes/volume-abc"], accounts: ["petrel-1"]),
            TgtTarget(tid: 4, iqn: "iqn.x:y", luns: [:], accounts: []),
        ])
    }

    @Test func exportsAFileBehindCHAPAndRemovesIt() async throws {
        try await withTgtdAlone { try await exportsAFileBehindCHAP() }
    }

    func exportsAFileBehindCHAP() async throws {
        try Requirement.root()
        try Requirement.tgtd()
        try Requirement.tool("qemu-img")
        let tgt = Tgt()
        let name = TestNames.unique("tgt-")
        let iqn = "iqn.2010-10.org.petrel.test:\(name)"
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).img").path
        let user = "\(name)-a", password = "Pw\(UInt64.random(in: 1 << 40...1 << 50))"
        #expect(FileManager.default.createFile(atPath: file, contents: Data("petrel-iscsi-marker".utf8)))
        try await Command.check("truncate", ["-s", "16M", file])
        defer { try? FileManager.default.removeItem(atPath: file) }
        do {
            let export = try await tgt.ensure(iqn: iqn, path: file, user: user, password: password)
            #expect(export.lun == 1)
            // Idempotent: the same target, LUN and account.
            #expect(try await tgt.ensure(iqn: iqn, path: file, user: user, password: password) == export)
            let target = try #require(try await tgt.targets().first { $0.iqn == iqn })
            #expect(target.luns == [1: file] && target.accounts == [user])

            let url = "iscsi://\(user)%\(password)@127.0.0.1:3260/\(iqn)/1"
            let read = try await Command.run("qemu-io", ["-f", "raw", "-c", "read -v 0 32", url])
            #expect(read.status == 0 && read.stdout.contains("70 65 74 72 65 6c 2d 69 73 63 73 69"), "\(read.stdout) \(read.stderr)")
            let denied = try await Command.run("qemu-img", ["info", "iscsi://127.0.0.1:3260/\(iqn)/1"])
            #expect(denied.status != 0 && denied.stderr.contains("Authentication failure"), "\(denied.stderr)")
            let wrong = try await Command.run("qemu-img", ["info", "iscsi://\(user)%wrong\(password)@127.0.0.1:3260/\(iqn)/1"])
            #expect(wrong.status != 0, "a wrong CHAP secret was let in")

            // Another path on the same target is refused; nothing changes.
            await #expect(throws: TgtError.self) { try await tgt.ensure(iqn: iqn, path: file + "-other", user: user, password: password) }

            try await tgt.release(iqn: iqn, user: user)
            #expect(try await tgt.targets().contains { $0.iqn == iqn } == false)
            #expect(try await tgt.accounts().contains(user) == false)
            try await tgt.release(iqn: iqn, user: user)  // gone already: no error
        } catch {
            try? await tgt.release(iqn: iqn, user: user)
            throw error
        }
    }

    @Test func aMissingBackingFileLeavesNoTarget() async throws {
        try await withTgtdAlone { try await missingBackingFile() }
    }

    func missingBackingFile() async throws {
        try Requirement.root()
        try Requirement.tgtd()
        let tgt = Tgt()
        let iqn = "iqn.2010-10.org.petrel.test:\(TestNames.unique("tgt-"))"
        await #expect(throws: TgtError.self) {
            try await tgt.ensure(iqn: iqn, path: "/nonexistent/\(UUID().uuidString)", user: "u-\(UUID().uuidString.prefix(8))", password: "p")
        }
        #expect(try await tgt.targets().contains { $0.iqn == iqn } == false)
    }
}
