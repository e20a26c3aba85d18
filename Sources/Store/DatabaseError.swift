import PostgresKit
import SQLiteKit

/// What a failure of the SQL driver means to Petrel, read from the driver's own error codes
/// (SQLite's result codes, PostgreSQL's SQLSTATE), never from message text.
public enum DatabaseError {
    /// Another connection holds the lock (SQLite `BUSY`/`LOCKED`) or the server gave up a
    /// transaction because of a concurrent one (PostgreSQL 40001 serialization failure, 40P01
    /// deadlock): the transaction may be retried.
    public static func isBusy(_ error: any Error) -> Bool {
        switch error {
        case let error as SQLiteError:
            switch error.reason {
            case .busy, .busyTimeout, .busyInRecovery, .busyInSnapshot, .locked, .lockedBySharedCache, .lockedVirtualTable:
                return true
            default:
                return false
            }
        case let error as PSQLError:
            let state = error.serverInfo?[.sqlState]
            return state == PostgresError.Code.serializationFailure.raw || state == PostgresError.Code.deadlockDetected.raw
        default:
            return false
        }
    }

    /// A unique index or primary key refused the row (SQLite `CONSTRAINT_UNIQUE`/`_PRIMARYKEY`,
    /// PostgreSQL 23505 unique_violation).
    public static func isUniqueViolation(_ error: any Error) -> Bool {
        switch error {
        case let error as SQLiteError:
            return error.reason == .constraintUniqueFailed || error.reason == .constraintPrimaryKeyFailed
        case let error as PSQLError:
            return error.serverInfo?[.sqlState] == PostgresError.Code.uniqueViolation.raw
        default:
            return false
        }
    }
}
