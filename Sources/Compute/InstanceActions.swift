import Contracts
import Foundation
import SQLKit
import Store

/// Nova's instance actions: each thing asked of a server is recorded with its request id and
/// who asked; the compute host's work for it is an event that ends in `Success` or `Error`.
public struct ServerActionRecord: Sendable, Equatable {
    public var action: String
    public var instanceID: String
    public var requestID: String
    public var userID: String
    public var projectID: String
    /// Unix milliseconds.
    public var startTime: Int64
    public var updatedAt: Int64
    /// "Error" once one of its events failed.
    public var message: String?
    public var events: [ServerActionEvent]

    init(_ row: InstanceActionRow, events: [InstanceActionEventRow] = []) {
        action = row.action; instanceID = row.instanceID; requestID = row.requestID; userID = row.userID; projectID = row.projectID
        startTime = row.startTime; updatedAt = row.updatedAt; message = row.message
        self.events = events.map(ServerActionEvent.init)
    }
}

/// What a compute host did for an action.
public struct ServerActionEvent: Sendable, Equatable {
    public var event: String
    public var startTime: Int64
    public var finishTime: Int64?
    /// "Success" or "Error" once finished.
    public var result: String?
    public var host: String?
    public var details: String?

    init(_ row: InstanceActionEventRow) {
        event = row.event; startTime = row.startTime; finishTime = row.finishTime; result = row.result; host = row.host; details = row.details
    }
}

extension Servers {
    /// Nova's name for the event the compute host runs for an action (nil: the action has no
    /// work on a host, as lock and unlock).
    static func eventName(_ action: String) -> String? {
        switch action {
        case "create": "compute__do_build_and_run_instance"
        case "reboot": "compute_reboot_instance"
        case "stop": "compute_stop_instance"
        case "start": "compute_start_instance"
        case "pause": "compute_pause_instance"
        case "unpause": "compute_unpause_instance"
        case "suspend": "compute_suspend_instance"
        case "resume": "compute_resume_instance"
        case "rebuild": "compute_rebuild_instance"
        case "createImage": "compute_snapshot_instance"
        case "shelve": "compute_shelve_instance"
        case "shelveOffload": "compute_shelve_offload_instance"
        case "unshelve": "compute_unshelve_instance"
        default: nil
        }
    }

    /// Records that `action` was asked of a server (with its host's event started when the
    /// action has one).
    public func recordAction(_ instanceID: String, _ action: String, host: String?, context: RequestContext) async throws {
        let now = Self.now()
        let row = InstanceActionRow(id: UUID().uuidString.lowercased(), instanceID: instanceID, action: action,
                                    requestID: context.requestID, userID: context.userID ?? "", projectID: context.projectID ?? "",
                                    startTime: now)
        try await database.transaction { sql in
            try await ComputeTables.instanceActions.insert(sql, row)
            if let event = Self.eventName(action) {
                try await ComputeTables.instanceActionEvents.insert(sql, InstanceActionEventRow(
                    id: UUID().uuidString.lowercased(), actionID: row.id, event: event, startTime: now, host: host))
            }
        }
    }

    /// Ends the open events of a server's actions (its task ended), on `sql`.
    static func finishEvents(_ sql: any SQLDatabase, instanceID: String, succeeded: Bool, host: String?, details: String? = nil) async throws {
        let now = now()
        let actions = try await ComputeTables.instanceActions.all(sql, where: [.equals("instance_id", instanceID)])
        for var action in actions {
            var touched = false
            for var event in try await ComputeTables.instanceActionEvents.all(sql, where: [.equals("action_id", action.id), .isNull("finish_time")]) {
                event.finishTime = now
                event.result = succeeded ? "Success" : "Error"
                if event.host == nil { event.host = host }
                if !succeeded { event.details = details }
                try await ComputeTables.instanceActionEvents.update(sql, id: event.id, event)
                touched = true
            }
            guard touched else { continue }
            action.updatedAt = now
            if !succeeded { action.message = "Error" }
            try await ComputeTables.instanceActions.update(sql, id: action.id, action)
        }
    }

    /// A server's actions, newest first (Nova's order), with `changedSince`/`changedBefore`
    /// (Unix milliseconds) on their last update.
    public func actions(of instanceID: String, changedSince: Int64? = nil, changedBefore: Int64? = nil) async throws -> [ServerActionRecord] {
        try await database.withConnection { sql in
            try await ComputeTables.instanceActions.all(sql, where: [.equals("instance_id", instanceID)])
        }
        .filter { row in (changedSince.map { row.updatedAt >= $0 } ?? true) && (changedBefore.map { row.updatedAt <= $0 } ?? true) }
        .sorted { ($0.startTime, $0.id) > ($1.startTime, $1.id) }
        .map { ServerActionRecord($0) }
    }

    /// One action of a server by its request id, with its events.
    public func action(of instanceID: String, requestID: String) async throws -> ServerActionRecord? {
        try await database.withConnection { sql in
            guard let action = try await ComputeTables.instanceActions.first(
                sql, where: [.equals("instance_id", instanceID), .equals("request_id", requestID)]) else { return nil }
            let events = try await ComputeTables.instanceActionEvents.all(sql, where: [.equals("action_id", action.id)])
                .sorted { $0.startTime > $1.startTime }
            return ServerActionRecord(action, events: events)
        }
    }

    /// Forgets a deleted server's actions, on `sql`.
    static func forgetActions(_ sql: any SQLDatabase, instanceID: String) async throws {
        let actions = try await ComputeTables.instanceActions.all(sql, where: [.equals("instance_id", instanceID)])
        for action in actions {
            _ = try await ComputeTables.instanceActionEvents.delete(sql, where: [.equals("action_id", action.id)])
        }
        _ = try await ComputeTables.instanceActions.delete(sql, where: [.equals("instance_id", instanceID)])
    }
}
