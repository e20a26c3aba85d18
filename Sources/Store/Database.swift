import Foundation
import Logging
import NIOCore
import NIOPosix
import PetrelCore
import PostgresKit
import SQLiteKit
import SQLKit
import Synchronization

public enum StoreError: Error, CustomStringConvertible, Equatable {
    /// The database has no schema yet, or an older one: `db-sync` brings it up to date.
    case notMigrated(current: Int, latest: Int)
    /// The database was migrated by a newer Petrel than this one.
    case newerThanThisProgram(current: Int, latest: Int)
    case cannotOpen(String)

    public var description: String {
        switch self {
        case .notMigrated(let current, let latest):
            return current == 0
                ? "the database has no Petrel schema; run `petrel-controller --config <file> db-sync` first"
                : "the database schema is at version \(current), this controller needs \(latest); run `petrel-controller --config <file> db-sync`"
        case .newerThanThisProgram(let current, let latest):
            return "the database schema is at version \(current), newer than this controller knows (\(latest)); upgrade this controller"
        case .cannotOpen(let why):
            return "cannot open the database: \(why)"
        }
    }
}

/// The controller's SQL database: SQLite (one file, the default) or PostgreSQL (for
/// several controllers). The same SQLKit code runs on both.
/// (`@unchecked`: AsyncKit's pool is internally locked but not annotated Sendable.)
public final class Database: @unchecked Sendable {
    public enum Backend: String, Sendable { case sqlite, postgresql }

    public let backend: Backend
    private let sqlite: EventLoopGroupConnectionPool<SQLiteConnectionSource>?
    private let postgres: EventLoopGroupConnectionPool<PostgresConnectionSource>?
    private let logger: Logger
    private let walEnabled = Mutex(false)
    /// SQLite: bumped by every schema change this process makes, and the generation each pooled
    /// connection last refreshed at. A connection caches the schema, and SQLiteNIO reads a
    /// statement's columns before SQLite notices a newer one, so a stale connection would answer
    /// `SELECT *` without a column a migration just added.
    private let schema = Mutex<(generation: Int, seen: [ObjectIdentifier: Int])>((0, [:]))

    /// How long a request waits for a pooled connection: long enough for a burst of writers
    /// (fifty port creations at once queue on SQLite's one writer) on a loaded host.
    public static let connectionWait = TimeAmount.seconds(30)
    /// How long `transaction` retries while the database is busy before it gives up.
    public static let busyBudget = Duration.seconds(60)
    /// This database's `busyBudget`.
    let busyBudget: Duration

    /// `connectionWait`: how long a request may wait for a pooled connection; `busyBudget`: how
    /// long a transaction retries a busy SQLite file. Tests that put fifty writers of two
    /// "controllers" on one file, on a CI host running every suite at once, give both more:
    /// the writers of one pool can keep the file's lock from the other's for a long while.
    public init(_ url: DatabaseURL, logger: Logger, connectionWait: TimeAmount = Database.connectionWait,
                busyBudget: Duration = Database.busyBudget) throws {
        self.logger = logger
        self.busyBudget = busyBudget
        switch url {
        case .sqlite(let path):
            let directory = (path as NSString).deletingLastPathComponent
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw StoreError.cannotOpen("\(directory): \(error.localizedDescription)")
            }
            backend = .sqlite
            sqlite = EventLoopGroupConnectionPool(
                source: SQLiteConnectionSource(configuration: .init(storage: .file(path: path), enableForeignKeys: true)),
                maxConnectionsPerEventLoop: 1, requestTimeout: connectionWait, pruneInterval: nil, logger: logger,
                on: MultiThreadedEventLoopGroup.singleton)
            postgres = nil
        case .postgresql(let text):
            let configuration: SQLPostgresConfiguration
            do {
                configuration = try SQLPostgresConfiguration(url: text)
            } catch {
                throw StoreError.cannotOpen("\(error)")
            }
            backend = .postgresql
            postgres = EventLoopGroupConnectionPool(source: PostgresConnectionSource(sqlConfiguration: configuration),
                                                    maxConnectionsPerEventLoop: 4, requestTimeout: connectionWait,
                                                    pruneInterval: nil, logger: logger,
                                                    on: MultiThreadedEventLoopGroup.singleton)
            sqlite = nil
        }
    }

    /// Runs `body` on one connection of the pool.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        if let sqlite {
            if !walEnabled.withLock({ $0 }) {
                // Write-ahead logging: readers never wait for a writer (persistent in the file).
                try await sqlite.withConnection { connection in
                    connection.eventLoop.makeFutureWithTask { try await connection.sql().raw("PRAGMA journal_mode = WAL").run() }
                }.get()
                walEnabled.withLock { $0 = true }
            }
            return try await sqlite.withConnection { connection in
                connection.eventLoop.makeFutureWithTask {
                    let database = connection.sql()
                    // Wait briefly for a writer in another connection. Briefly: SQLite waits on one of
                    // the few threads of NIO's pool, which the writer may need to finish; longer
                    // waits happen in `transaction`, off the pool.
                    try await database.raw("PRAGMA busy_timeout = 200").run()
                    let key = ObjectIdentifier(connection)
                    let generation = self.schema.withLock { $0.seen[key] == $0.generation ? nil : $0.generation }
                    if let generation {
                        // Any statement that reads the catalog reloads a stale schema cache.
                        try await database.raw("SELECT COUNT(*) FROM sqlite_master").run()
                        self.schema.withLock { $0.seen[key] = generation }
                    }
                    return try await body(database)
                }
            }.get()
        }
        return try await postgres!.withConnection { connection in
            connection.eventLoop.makeFutureWithTask { try await body(connection.sql()) }
        }.get()
    }

    /// Runs `body` in one transaction: committed if it returns, rolled back if it throws.
    /// On SQLite the transaction takes the write lock at once (`BEGIN IMMEDIATE`), so two
    /// writers queue instead of failing halfway. A busy database is retried for up to
    /// `busyBudget` (a time, not a count of attempts: how many attempts fit in it depends on how
    /// long the other writers' transactions take, which a loaded host stretches).
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let begin = backend == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN"
        let clock = ContinuousClock(), start = clock.now
        var attempt = 0
        while true {
            do {
                return try await withConnection { database in
                    try await database.raw(SQLQueryString(begin)).run()
                    do {
                        let result = try await body(database)
                        try await database.raw("COMMIT").run()
                        return result
                    } catch {
                        try? await database.raw("ROLLBACK").run()
                        throw error
                    }
                }
            } catch where clock.now - start < busyBudget && DatabaseError.isBusy(error) {
                // Another connection holds the write lock (or PostgreSQL undid the transaction for a
                // concurrent one): wait off the thread pool and retry.
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 5...(20 + min(attempt, 40) * 5))))
            }
        }
    }

    /// Tells every pooled connection to reload the schema before its next statement (SQLite);
    /// the migrator calls it after each migration it applies.
    public func schemaDidChange() {
        schema.withLock { $0.generation += 1 }
    }

    public func shutdown() async {
        try? await sqlite?.shutdownAsync()
        try? await postgres?.shutdownAsync()
    }
}
