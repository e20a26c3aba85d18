import Contracts
import Foundation
import Store

/// Nova's server diagnostics and crash dumps on the controller's side: the checks Nova's
/// compute API makes, the calls to the server's host, and the instance action a crash dump
/// leaves (`trigger_crash_dump`, with the host's event `compute_trigger_crash_dump`).
extension Conductor {
    /// The host's reading of a server's diagnostics: its power state there, and the
    /// diagnostics when it runs.
    public func diagnostics(_ id: String, on host: String, context: RequestContext) async throws -> GetDiagnostics.Result {
        try await client.call(GetDiagnostics.self, .init(instanceID: id), topic: Self.topic(host), context: context, timeout: .seconds(30))
    }

    /// Asks the host to send the NMI; throws what the host or the broker answered.
    public func triggerCrashDump(_ id: String, on host: String, context: RequestContext) async throws {
        _ = try await client.call(TriggerCrashDump.self, .init(instanceID: id), topic: Self.topic(host), context: context,
                                  timeout: .seconds(30))
    }
}

extension Servers {
    /// Nova's vm states in which a crash dump may be triggered (`ALLOW_TRIGGER_CRASH_DUMP`).
    public static let crashDumpStates = ["active", "paused", "rescued", "resized", "error"]

    /// Nova's checks before a crash dump, in its order: the lock, a host, then the VM state
    /// (one of `crashDumpStates`) with no task running. Answers the host.
    public func crashDumpHost(_ server: Server, by caller: ServerCaller) throws -> String {
        try Self.checkLock(server.row, caller)
        guard let host = server.host else { throw Failure.conflict("Instance \(server.id) is not ready") }
        let vmState = server.row.vmState ?? "None"
        guard Self.crashDumpStates.contains(vmState) else {
            throw Failure.conflict("Cannot 'trigger_crash_dump' instance \(server.id) while it is in vm_state \(vmState)")
        }
        if let task = server.row.taskState {
            throw Failure.conflict("Cannot 'trigger_crash_dump' instance \(server.id) while it is in task_state \(task)")
        }
        return host
    }

    /// Records an action whose work on `host` already ended (a crash dump is done once the
    /// host answered): the action, and its event finished with `Success`, or `Error` and the
    /// reason.
    public func recordFinishedAction(_ instanceID: String, _ action: String, event: String, host: String, started: Int64,
                                     failure: String?, context: RequestContext) async throws {
        let now = Self.now()
        var row = InstanceActionRow(id: UUID().uuidString.lowercased(), instanceID: instanceID, action: action,
                                    requestID: context.requestID, userID: context.userID ?? "", projectID: context.projectID ?? "",
                                    startTime: started)
        row.updatedAt = now
        if failure != nil { row.message = "Error" }
        var eventRow = InstanceActionEventRow(id: UUID().uuidString.lowercased(), actionID: row.id, event: event, startTime: started, host: host)
        eventRow.finishTime = now
        eventRow.result = failure == nil ? "Success" : "Error"
        eventRow.details = failure
        let (action, event) = (row, eventRow)
        try await database.transaction { sql in
            try await ComputeTables.instanceActions.insert(sql, action)
            try await ComputeTables.instanceActionEvents.insert(sql, event)
        }
    }

    /// Unix milliseconds now, as actions record their times.
    public static var nowMilliseconds: Int64 { now() }
}
