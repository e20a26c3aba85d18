import Compute
import Foundation
import Logging
import SQLKit
import PetrelCore
import Store
import TestSupport
import Testing

/// Console tokens on a real database: hashed at rest, single-use, short-lived, valid only
/// while their server is active on the host the console was on; and the URLs in Nova's form.
@Suite struct ConsoleTokenTests {
    func withTokens(_ backend: TestDatabase, ttl: Int = 600,
                    _ body: @Sendable (Database, ConsoleTokens, String) async throws -> Void) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let database = try Database(url, logger: Logger(label: "console-test"))
        try await withCleanup {
            try await Migrator().migrate(database)
            var row = InstanceRow(id: UUID().uuidString.lowercased(), name: "vm", projectID: "p", userID: "u", flavorID: "f", vcpus: 1,
                                  memoryMB: 128, rootGB: 1, imageID: nil, availabilityZone: nil,
                                  createdAt: Int64(Date().timeIntervalSince1970 * 1000))
            row.host = "node-1"
            row.vmState = "active"
            row.taskState = nil
            let inserted = row
            try await database.withConnection { sql in try await ComputeTables.instances.insert(sql, inserted) }
            try await body(database, ConsoleTokens(database: database, ttl: ttl), row.id)
        } cleanup: {
            await database.shutdown()
            await drop()
        }
    }

    func console(_ instance: String, host: String = "node-1") -> ConsoleToken {
        ConsoleToken(consoleType: "novnc", instanceID: instance, computeHost: host, host: "127.0.0.1", port: 5901)
    }

    @Test(arguments: TestDatabase.allCases)
    func aTokenOpensOneConnectionAndIsStoredHashed(backend: TestDatabase) async throws {
        try await withTokens(backend) { database, tokens, instance in
            let token = try await tokens.issue(console(instance), accessURLBase: "http://proxy:6080/vnc_lite.html")
            #expect(token.count == 32)
            let other = try await tokens.issue(console(instance), accessURLBase: "http://proxy:6080/vnc_lite.html")
            #expect(other != token, "every URL gets its own token")
            // Only the hash is kept.
            let stored = try await database.withConnection { sql in
                try await sql.raw("SELECT token_hash, access_url_base FROM console_auth_tokens").all()
            }
            #expect(stored.count == 2)
            for row in stored {
                let hash = try row.decode(column: "token_hash", as: String.self)
                #expect(hash.count == 64 && hash != token && hash != other)
            }
            // The admin's view leaves it valid.
            let shown = try #require(try await tokens.show(token))
            #expect(shown.instanceID == instance && shown.host == "127.0.0.1" && shown.port == 5901 && shown.consoleType == "novnc")
            #expect(try await tokens.show(token) != nil)
            // The proxy takes it once.
            let taken = try #require(try await tokens.take(token))
            #expect(taken.port == 5901 && taken.computeHost == "node-1")
            #expect(try await tokens.take(token) == nil, "a second connection with the same token is refused")
            #expect(try await tokens.show(token) == nil)
            #expect(try await tokens.take("not-a-token") == nil)
            #expect(try await tokens.take(other) != nil, "the other token is its own")
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func twoProxiesRacingForOneTokenGetItOnce(backend: TestDatabase) async throws {
        try await withTokens(backend) { _, tokens, instance in
            let token = try await tokens.issue(console(instance), accessURLBase: "ws://proxy:6080/")
            let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 { group.addTask { try await tokens.take(token) != nil } }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(winners == 1)
        }
    }

    @Test func anExpiredTokenIsRefused() async throws {
        try await withTokens(.sqlite, ttl: 1) { database, tokens, instance in
            let token = try await tokens.issue(console(instance), accessURLBase: "ws://proxy:6080/")
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await tokens.show(token) == nil)
            #expect(try await tokens.take(token) == nil, "expired after token_ttl")
            // Expired rows go when the next token is made.
            _ = try await tokens.issue(console(instance), accessURLBase: "ws://proxy:6080/")
            let count = try await database.withConnection { sql in try await sql.raw("SELECT token_hash FROM console_auth_tokens").all().count }
            #expect(count == 1)
        }
    }

    @Test func aTokenOfAServerThatMovedOrStoppedIsRefused() async throws {
        try await withTokens(.sqlite) { database, tokens, instance in
            let elsewhere = try await tokens.issue(console(instance, host: "node-2"), accessURLBase: "ws://proxy:6080/")
            #expect(try await tokens.take(elsewhere) == nil, "the server is no longer on the console's host")
            let token = try await tokens.issue(console(instance), accessURLBase: "ws://proxy:6080/")
            try await database.withConnection { sql in
                try await sql.raw("UPDATE instances SET vm_state = 'stopped' WHERE id = \(bind: instance)").run()
            }
            #expect(try await tokens.take(token) == nil, "a stopped server's console is gone")
            let again = try await tokens.issue(console(instance), accessURLBase: "ws://proxy:6080/")
            try await tokens.revoke(instanceID: instance)
            #expect(try await tokens.show(again) == nil)
        }
    }

    @Test func urlsAreNovasShape() {
        // Nova's sample: http://127.0.0.1:6080/vnc_auto.html?path=%3Ftoken%3D<token>
        #expect(ConsoleTokens.accessURL(base: "http://127.0.0.1:6080/vnc_lite.html", consoleType: "novnc", token: "abc")
                == "http://127.0.0.1:6080/vnc_lite.html?path=%3Ftoken%3Dabc")
        #expect(ConsoleTokens.accessURL(base: "https://h:6080/vnc_lite.html?path=ws", consoleType: "novnc", token: "abc")
                == "https://h:6080/vnc_lite.html?path=ws%3Ftoken%3Dabc")
        #expect(ConsoleTokens.accessURL(base: "ws://127.0.0.1:6083/", consoleType: "serial", token: "abc") == "ws://127.0.0.1:6083/?token=abc")
    }
}
