import Foundation
import Logging
import SQLKit
import Store
import TestSupport
import Testing

/// Store classifies driver failures by the driver's codes: a unique violation on both
/// backends, SQLite's busy lock (what transactions retry on).
@Suite struct DatabaseErrorTests {
    let logger = Logger(label: "database-error-test")

    @Test(arguments: TestDatabase.allCases)
    func aDuplicateKeyIsAUniqueViolation(backend: TestDatabase) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let database = try Database(url, logger: logger)
        try await withCleanup {
            try await database.withConnection { sql in
                try await sql.raw("CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT UNIQUE)").run()
                try await sql.raw("INSERT INTO t (id, name) VALUES ('a', 'x')").run()
            }
            for statement: SQLQueryString in ["INSERT INTO t (id, name) VALUES ('a', 'y')", "INSERT INTO t (id, name) VALUES ('b', 'x')"] {
                do {
                    try await database.withConnection { sql in try await sql.raw(statement).run() }
                    Issue.record("a duplicate was accepted")
                } catch {
                    #expect(DatabaseError.isUniqueViolation(error), "\(error)")
                    #expect(!DatabaseError.isBusy(error))
                }
            }
            // Other failures are neither.
            do {
                try await database.withConnection { sql in try await sql.raw("INSERT INTO t (id, name) VALUES (NULL, 'z', 1)").run() }
                Issue.record("a bad statement ran")
            } catch {
                #expect(!DatabaseError.isUniqueViolation(error) && !DatabaseError.isBusy(error), "\(error)")
            }
        } cleanup: {
            await database.shutdown()
            await drop()
        }
    }

    @Test func sqlitesWriteLockHeldElsewhereIsBusy() async throws {
        let (url, drop) = try await TestDatabase.sqlite.makeDatabase()
        let holder = try Database(url, logger: logger)
        let other = try Database(url, logger: logger)
        try await withCleanup {
            try await holder.withConnection { sql in try await sql.raw("CREATE TABLE t (id TEXT PRIMARY KEY)").run() }
            try await holder.withConnection { sql in
                try await sql.raw("BEGIN IMMEDIATE").run()
                do {
                    try await other.withConnection { sql in try await sql.raw("BEGIN IMMEDIATE").run() }
                    Issue.record("a second writer got the lock")
                } catch {
                    #expect(DatabaseError.isBusy(error), "\(error)")
                    #expect(!DatabaseError.isUniqueViolation(error))
                }
                try await sql.raw("ROLLBACK").run()
            }
        } cleanup: {
            await holder.shutdown()
            await other.shutdown()
            await drop()
        }
    }
}
