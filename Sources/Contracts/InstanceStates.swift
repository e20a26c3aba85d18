/// Nova's VM states (`OS-EXT-STS:vm_state`): where an instance is at rest.
/// On the wire and in the database they are Nova's own strings.
public enum VMState: String, Codable, Sendable, CaseIterable {
    case building, active, stopped, paused, suspended, error, deleted
    /// Shelved: a snapshot in the image service; offloaded: no domain and no host either.
    case shelved, shelvedOffloaded = "shelved_offloaded"
    /// Resized (or cold-migrated) and waiting for the user to confirm or revert it.
    case resized
    /// Booted from a rescue image, its own disk attached second.
    case rescued
    /// Deleted while `reclaim_instance_interval` keeps deleted servers: powered off, its
    /// resources still held, restorable until it is reclaimed (Nova's `soft-delete`).
    case softDeleted = "soft-delete"
}

/// Nova's task states (`OS-EXT-STS:task_state`): what is being done to an instance.
public enum TaskState: String, Codable, Sendable, CaseIterable {
    case scheduling, spawning, deleting
    case rebooting, rebootingHard = "rebooting_hard", rebuilding
    case poweringOff = "powering-off", poweringOn = "powering-on"
    case pausing, unpausing, suspending, resuming
    case imageSnapshot = "image_snapshot", imageBackup = "image_backup"
    case shelving, shelvingOffloading = "shelving_offloading", unshelving
    /// A resize or cold migration: waiting for a host (prep), then done on the host (migrating);
    /// its confirmation and its revert.
    case resizePrep = "resize_prep", resizeMigrating = "resize_migrating", resizeConfirming = "resize_confirming",
         resizeReverting = "resize_reverting"
    case rescuing, unrescuing
    /// Powering a deleted server off while it waits to be reclaimed, and back on.
    case softDeleting = "soft-deleting", restoring
}

/// Nova's power states, as `OS-EXT-STS:power_state` shows them.
public enum PowerState: Int, Codable, Sendable {
    case noState = 0, running = 1, paused = 3, shutdown = 4, crashed = 6, suspended = 7

    /// The VM state a power state implies when no task runs (`managedSave`: the guest's
    /// memory is saved, i.e. it was suspended).
    public func impliedVMState(managedSave: Bool) -> VMState {
        switch self {
        case .running: return .active
        case .paused: return .paused
        case .shutdown, .crashed, .noState: return managedSave ? .suspended : .stopped
        case .suspended: return .suspended
        }
    }
}

/// Nova's server `status`, from the VM and task states (nova.api.openstack.common's map).
public enum ServerStatus: String, Codable, Sendable {
    case build = "BUILD", active = "ACTIVE", reboot = "REBOOT", hardReboot = "HARD_REBOOT", rebuild = "REBUILD",
         shutoff = "SHUTOFF", paused = "PAUSED", suspended = "SUSPENDED", error = "ERROR", deleted = "DELETED",
         shelved = "SHELVED", shelvedOffloaded = "SHELVED_OFFLOADED", unknown = "UNKNOWN",
         resize = "RESIZE", verifyResize = "VERIFY_RESIZE", revertResize = "REVERT_RESIZE", rescue = "RESCUE",
         softDeleted = "SOFT_DELETED"

    public init(vmState: VMState?, taskState: TaskState?) {
        switch vmState {
        case .building: self = .build
        case .active:
            switch taskState {
            case .rebooting: self = .reboot
            case .rebootingHard: self = .hardReboot
            case .rebuilding: self = .rebuild
            case .resizePrep, .resizeMigrating: self = .resize
            default: self = .active
            }
        case .stopped:
            switch taskState {
            case .rebuilding: self = .rebuild
            case .resizePrep, .resizeMigrating: self = .resize
            default: self = .shutoff
            }
        case .resized: self = taskState == .resizeReverting ? .revertResize : .verifyResize
        case .rescued: self = .rescue
        case .softDeleted: self = .softDeleted
        case .paused: self = .paused
        case .suspended: self = .suspended
        case .error: self = taskState == .rebuilding ? .rebuild : .error
        case .deleted: self = .deleted
        case .shelved: self = .shelved
        case .shelvedOffloaded: self = .shelvedOffloaded
        case nil: self = .unknown
        }
    }

}
