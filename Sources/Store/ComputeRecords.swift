import Foundation
import SQLKit

/// A row of `flavors`. `extraSpecs` is a JSON object of strings.
public struct FlavorRow: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var memoryMB: Int
    public var vcpus: Int
    public var rootGB: Int
    public var ephemeralGB: Int
    public var swap: Int
    public var rxtxFactor: Double
    public var isPublic: Bool
    public var disabled: Bool
    public var description: String?
    public var extraSpecs: String
    public var createdAt: Int64

    public init(id: String, name: String, memoryMB: Int, vcpus: Int, rootGB: Int, ephemeralGB: Int, swap: Int, rxtxFactor: Double,
                isPublic: Bool, description: String?, createdAt: Int64) {
        self.id = id; self.name = name; self.memoryMB = memoryMB; self.vcpus = vcpus; self.rootGB = rootGB
        self.ephemeralGB = ephemeralGB; self.swap = swap; self.rxtxFactor = rxtxFactor; self.isPublic = isPublic
        self.disabled = false; self.description = description; self.extraSpecs = "{}"; self.createdAt = createdAt
    }
}

public struct FlavorProjectRow: Codable, Sendable, Equatable {
    public var flavorID: String
    public var projectID: String

    public init(flavorID: String, projectID: String) { self.flavorID = flavorID; self.projectID = projectID }
}

/// A row of `key_pairs`.
public struct KeyPairRow: Codable, Sendable, Equatable {
    public var id: Int
    public var name: String
    public var userID: String
    public var type: String
    public var fingerprint: String
    public var publicKey: String
    public var createdAt: Int64

    public init(id: Int, name: String, userID: String, type: String, fingerprint: String, publicKey: String, createdAt: Int64) {
        self.id = id; self.name = name; self.userID = userID; self.type = type; self.fingerprint = fingerprint
        self.publicKey = publicKey; self.createdAt = createdAt
    }
}

public enum ComputeTables {
    public static let flavors = Table<FlavorRow>("flavors")
    public static let flavorProjects = Table<FlavorProjectRow>("flavor_projects")
    public static let keyPairs = Table<KeyPairRow>("key_pairs")
}

/// A row of `instances` (a Nova server). With a `host`, it holds that host's resources.
public struct InstanceRow: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var projectID: String
    public var userID: String
    public var host: String?
    public var flavorID: String
    public var vcpus: Int
    public var memoryMB: Int
    public var rootGB: Int
    public var ephemeralGB: Int
    public var swap: Int
    public var imageID: String?
    public var availabilityZone: String?
    /// building, active, stopped, paused, suspended, error, deleted, …
    public var vmState: String
    public var taskState: String?
    public var powerState: Int
    /// A JSON object: message, code, created.
    public var fault: String?
    public var metadata: String
    public var keyName: String?
    public var userData: String?
    public var createdAt: Int64
    public var updatedAt: Int64
    /// A JSON array of the hosts a build of this instance failed on.
    public var triedHosts: String = "[]"
    /// The stamp of the last node update applied.
    public var stateStamp: Int64 = 0
    public var launchedAt: Int64?
    /// Shared by the servers one request created (`min_count`/`max_count`).
    public var reservationID: String?
    public var hostname: String?
    /// The flavor as it was when the server was created (flavors may change or go).
    public var flavorName: String?
    public var flavorExtraSpecs: String = "{}"
    /// The key pair's public key and type when the server was created.
    public var keyData: String?
    public var keyType: String?
    /// Its index among the servers one request created (Nova's `launch_index`).
    public var launchIndex: Int = 0
    /// What the guest posted to the metadata API's `password` (Nova's `password_0…3`).
    public var metadataPassword: String?
    /// Nova's `config_drive`: the node attaches the metadata as an ISO 9660 disk labelled config-2.
    public var configDrive: Bool = false
    /// JSON list of the networks and ports the server asked for (Compute's `RequestedNetwork`).
    public var requestedNetworks: String = "[]"
    /// JSON list of the volumes the server asked for (Compute's `BlockDeviceRequest`), each
    /// with the volume made for it once made.
    public var blockDevices: String = "[]"
    /// The root disk is a volume (`vda`), not a file on the host: the scheduler does not count
    /// the flavor's root disk against the host.
    public var rootOnVolume: Bool = false
    /// Nova's `accessIPv4`/`accessIPv6`: addresses the user records, never configured.
    public var accessIPv4: String?
    public var accessIPv6: String?
    public var description: String?
    /// 'owner' or 'admin' while locked (Nova's `locked_by`), and the reason given.
    public var lockedBy: String?
    public var lockedReason: String?
    /// JSON array of the server's tags, in the order added.
    public var tags: String = "[]"
    /// JSON object: the `os:scheduler_hints` the server was created with.
    public var schedulerHints: String = "{}"
    /// The image holding a shelved server's disk.
    public var shelvedImageID: String?
    /// The image a rescued server boots from (its rescue disk's), while it is rescued.
    public var rescueImageID: String?
    /// While a backup (createBackup) runs: JSON {"image", "type", "rotation"}, for the rotation
    /// that follows it.
    public var pendingBackup: String?
    /// When the server was soft-deleted (Nova's `deleted_at` of a `soft-delete` instance): it
    /// is reclaimed `reclaim_instance_interval` later unless restored.
    public var deletedAt: Int64?

    public init(id: String, name: String, projectID: String, userID: String, flavorID: String, vcpus: Int, memoryMB: Int,
                rootGB: Int, ephemeralGB: Int = 0, swap: Int = 0, imageID: String?, availabilityZone: String?, createdAt: Int64) {
        self.id = id; self.name = name; self.projectID = projectID; self.userID = userID; self.host = nil
        self.flavorID = flavorID; self.vcpus = vcpus; self.memoryMB = memoryMB; self.rootGB = rootGB
        self.ephemeralGB = ephemeralGB; self.swap = swap; self.imageID = imageID; self.availabilityZone = availabilityZone
        self.vmState = "building"; self.taskState = "scheduling"; self.powerState = 0; self.fault = nil; self.metadata = "{}"
        self.keyName = nil; self.userData = nil; self.createdAt = createdAt; self.updatedAt = createdAt
    }
}

extension ComputeTables {
    public static let instances = Table<InstanceRow>("instances")
}

/// A row of `instance_actions`: one thing asked of a server (Nova's instance action).
public struct InstanceActionRow: Codable, Sendable, Equatable {
    public var id: String
    public var instanceID: String
    public var action: String
    public var requestID: String
    public var userID: String
    public var projectID: String
    public var startTime: Int64
    public var updatedAt: Int64
    /// "Error" once one of its events failed (Nova's `message`).
    public var message: String?

    public init(id: String, instanceID: String, action: String, requestID: String, userID: String, projectID: String, startTime: Int64) {
        self.id = id; self.instanceID = instanceID; self.action = action; self.requestID = requestID
        self.userID = userID; self.projectID = projectID; self.startTime = startTime; self.updatedAt = startTime
    }
}

/// A row of `instance_action_events`: what the compute host did for an action.
public struct InstanceActionEventRow: Codable, Sendable, Equatable {
    public var id: String
    public var actionID: String
    public var event: String
    public var startTime: Int64
    public var finishTime: Int64?
    /// "Success" or "Error" once finished.
    public var result: String?
    public var host: String?
    public var details: String?

    public init(id: String, actionID: String, event: String, startTime: Int64, host: String?) {
        self.id = id; self.actionID = actionID; self.event = event; self.startTime = startTime; self.host = host
    }
}

extension ComputeTables {
    public static let instanceActions = Table<InstanceActionRow>("instance_actions")
    public static let instanceActionEvents = Table<InstanceActionEventRow>("instance_action_events")
}

/// A row of `server_groups`.
public struct ServerGroupRow: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var projectID: String
    public var userID: String
    /// affinity, anti-affinity, soft-affinity or soft-anti-affinity.
    public var policy: String
    /// JSON object: `max_server_per_host` for anti-affinity (2.64).
    public var rules: String
    public var createdAt: Int64

    public init(id: String, name: String, projectID: String, userID: String, policy: String, rules: String, createdAt: Int64) {
        self.id = id; self.name = name; self.projectID = projectID; self.userID = userID; self.policy = policy
        self.rules = rules; self.createdAt = createdAt
    }
}

/// A row of `server_group_members`.
public struct ServerGroupMemberRow: Codable, Sendable, Equatable {
    public var groupID: String
    public var instanceID: String

    public init(groupID: String, instanceID: String) {
        self.groupID = groupID
        self.instanceID = instanceID
    }
}

extension ComputeTables {
    public static let serverGroups = Table<ServerGroupRow>("server_groups")
    public static let serverGroupMembers = Table<ServerGroupMemberRow>("server_group_members")
}
