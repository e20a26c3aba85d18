import Foundation
import Store

/// What a server keeps besides its build: the lock (Nova's `locked_by`, `locked_reason`),
/// its tags, and the fields a user may change in place.
extension Servers {
    /// Nova refuses most changes to a locked server, except from an admin.
    static func checkLock(_ row: InstanceRow, _ caller: ServerCaller) throws {
        if row.lockedBy != nil && !caller.isAdmin { throw Failure.conflict("Instance \(row.id) is locked") }
    }

    /// Nova's `is_expected_locked_by`: whoever locked it (the owner's project or an admin from
    /// another) may unlock it; anyone else needs the `unlock_override` policy.
    public static func unlocksOwnLock(_ server: Server, _ caller: ServerCaller) -> Bool {
        guard let lockedBy = server.lockedBy else { return true }
        return lockedBy == (server.projectID == caller.projectID ? "owner" : "admin")
    }

    /// Locks a server (already locked by its owner: nothing changes, as Nova's `lock`).
    public func lock(_ id: String, reason: String?, by caller: ServerCaller) async throws -> Server {
        try await change(id, by: caller) { server in
            let isOwner = server.projectID == caller.projectID
            if server.locked && isOwner { return }
            server.row.lockedBy = isOwner ? "owner" : "admin"
            if let reason { server.row.lockedReason = reason }
        }
    }

    public func unlock(_ id: String, by caller: ServerCaller) async throws -> Server {
        try await change(id, by: caller) { server in
            server.row.lockedBy = nil
            server.row.lockedReason = nil
        }
    }

    /// Deletes one metadata item (refused on a locked server, as Nova's).
    public func deleteMetadata(_ id: String, key: String, by caller: ServerCaller) async throws {
        try await change(id, by: caller) { server in
            try Self.checkLock(server.row, caller)
            server.metadata[key] = nil
        }
    }

    /// Nova's limit on a server's tags.
    public static let maximumTags = 50

    /// Replaces (`replace`) or adds to a server's tags, within Nova's limit of 50. Tags keep
    /// the order they were first given; a repeated one counts once.
    public func setTags(_ id: String, _ tags: [String], replace: Bool, by caller: ServerCaller) async throws -> Server {
        try await change(id, by: caller) { server in
            try Self.checkTaggable(server.row, replace ? "update tags" : "update tag")
            var list = replace ? [] : server.tags
            for tag in tags where !list.contains(tag) { list.append(tag) }
            guard list.count <= Self.maximumTags else {
                throw Failure.badRequest("The number of tags exceeded the per-server limit \(Self.maximumTags)")
            }
            server.tags = list
        }
    }

    /// Removes one tag (`nil`: every tag); false if the server does not have it.
    @discardableResult
    public func removeTag(_ id: String, _ tag: String?, by caller: ServerCaller) async throws -> Bool {
        if let tag, !(try await get(id, by: caller).tags.contains(tag)) { return false }
        try await change(id, by: caller) { server in
            try Self.checkTaggable(server.row, tag == nil ? "delete tags" : "delete tag")
            server.tags.removeAll { tag == nil || $0 == tag }
        }
        return true
    }

    /// Nova changes tags only while the server is in a stable state and no task runs.
    static func checkTaggable(_ row: InstanceRow, _ action: String) throws {
        guard row.task == nil, let state = row.vm, [.active, .paused, .stopped, .suspended].contains(state) else {
            throw stateConflict(action, row)
        }
    }
}

extension Servers {
    /// Forgets the password the guest posted to the metadata service (Nova's
    /// `os-server-password` clear): the guest may post a new one.
    public func clearPassword(_ id: String, by caller: ServerCaller) async throws {
        try await change(id, by: caller) { server in server.row.metadataPassword = nil }
    }
}
