import Foundation

/// The compute conversation between the controller and a node's compute service.
///
/// Controller → node, on `compute.<host>`: `BuildInstance`, `InstanceAction`,
/// `DeleteInstance` (casts: the node answers later with `InstanceUpdate`), and
/// `ConsoleOutput`, `AttachInterface`, `DetachInterface` (calls). Node → controller, on `conductor`: `InstanceUpdate`,
/// `BuildFailed` (casts) and `InstancesOnHost` (a call: what should be on a host).
///
/// A node receiving a cast first asks `InstancesOnHost` for the instance: the controller's
/// database is the truth, so a redelivered or stale message cannot resurrect a deleted server.
public enum ComputeTopic {
    public static let name = "compute"
}

/// The libvirt domain name of an instance, as the API (`instance_name`) and the node use it.
public enum DomainNaming {
    public static func name(_ instanceID: String) -> String { "petrel-" + instanceID }
    /// Whether a domain's name is an instance's (Petrel's metadata inside says for certain).
    public static func isInstance(_ domainName: String) -> Bool { domainName.hasPrefix("petrel-") }
}

/// Everything a node needs to create, rebuild or reconcile one instance.
public struct InstanceSpec: Codable, Sendable, Equatable {
    public struct Flavor: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        public var vcpus: Int
        public var memoryMB: Int
        public var rootGB: Int
        public var ephemeralGB: Int
        public var swapMB: Int
        public var extraSpecs: [String: String]

        public init(id: String, name: String, vcpus: Int, memoryMB: Int, rootGB: Int, ephemeralGB: Int, swapMB: Int,
                    extraSpecs: [String: String]) {
            self.id = id; self.name = name; self.vcpus = vcpus; self.memoryMB = memoryMB; self.rootGB = rootGB
            self.ephemeralGB = ephemeralGB; self.swapMB = swapMB; self.extraSpecs = extraSpecs
        }
    }

    public struct Image: Codable, Sendable, Equatable {
        public var id: String
        public var diskFormat: String
        /// md5 of the image's bytes, as the image API reports it.
        public var checksum: String?
        public var size: Int64?
        public var properties: [String: String]

        public init(id: String, diskFormat: String, checksum: String?, size: Int64?, properties: [String: String]) {
            self.id = id; self.diskFormat = diskFormat; self.checksum = checksum; self.size = size; self.properties = properties
        }
    }

    public var id: String
    public var name: String
    public var projectID: String
    public var userID: String
    public var host: String?
    public var flavor: Flavor
    public var image: Image?
    public var vmState: VMState
    public var taskState: TaskState?
    /// The highest `InstanceUpdate.stamp` the controller has applied.
    public var stamp: Int64
    /// The config drive's files (path below its root, e.g. `openstack/latest/meta_data.json`,
    /// and contents) when the server has one; nil otherwise.
    public var configDrive: [ConfigDriveFile]?

    public struct ConfigDriveFile: Codable, Sendable, Equatable {
        public var path: String
        public var contents: Data
        public init(path: String, contents: Data) { self.path = path; self.contents = contents }
    }

    /// The instance's network interfaces, in order: its Neutron ports bound to this host.
    public var nics: [NIC]
    /// While it is shelved (or being shelved): the image holding its disk.
    public var shelvedImageID: String?
    /// While a resize (or cold migration) runs or is reverted: the flavor the node gives the
    /// domain, and whether the guest runs afterwards. Absent from older controllers.
    public var resize: Resize?
    /// While it is rescued (or being rescued): the image its rescue disk is made from.
    public var rescueImage: Image?

    public struct Resize: Codable, Sendable, Equatable {
        public var flavor: Flavor
        public var powerOn: Bool
        public init(flavor: Flavor, powerOn: Bool) { self.flavor = flavor; self.powerOn = powerOn }
    }

    public struct NIC: Codable, Sendable, Equatable {
        public var portID: String
        public var networkID: String
        public var macAddress: String
        public var mtu: Int
        /// How the port is plugged (`bridge`: a tap on the network's Linux bridge).
        public var vifType: String

        public init(portID: String, networkID: String, macAddress: String, mtu: Int, vifType: String) {
            self.portID = portID; self.networkID = networkID; self.macAddress = macAddress; self.mtu = mtu; self.vifType = vifType
        }

        /// Neutron's names: the tap `tap<port[:11]>` on the bridge `brq<network[:11]>`.
        public var tapName: String { "tap" + portID.prefix(11) }
        public var bridgeName: String { "brq" + networkID.prefix(11) }
    }

    /// The volumes attached to the instance, as disks after its own; absent from older controllers.
    /// One attached as `vda` is the root disk: the instance then has no local root disk.
    public var volumes: [VolumeDisk]?
    /// The volumes being attached to the instance right now (reserved for it, not yet plugged):
    /// a disk of one of these on the domain is not a stray. Absent from older controllers.
    public var attachingVolumes: [String]?

    /// The root disk's volume, when the instance boots from a volume.
    public var rootVolume: VolumeDisk? { volumes?.first { $0.device == "vda" } }

    public init(id: String, name: String, projectID: String, userID: String, host: String?, flavor: Flavor, image: Image?,
                vmState: VMState, taskState: TaskState?, stamp: Int64, configDrive: [ConfigDriveFile]? = nil, nics: [NIC] = [],
                volumes: [VolumeDisk]? = nil, attachingVolumes: [String]? = nil) {
        self.id = id; self.name = name; self.projectID = projectID; self.userID = userID; self.host = host
        self.flavor = flavor; self.image = image; self.vmState = vmState; self.taskState = taskState; self.stamp = stamp
        self.configDrive = configDrive
        self.nics = nics
        self.volumes = volumes
        self.attachingVolumes = attachingVolumes
    }
}

/// A volume as a disk of an instance: where it is on the host (a file or a block device, as the
/// volume's backend serves it on the same host) or, for a volume on another host, the iSCSI
/// target QEMU's own initiator logs in to; and the guest's device name once attached.
public struct VolumeDisk: Codable, Sendable, Equatable {
    public var volumeID: String
    /// The file or device on this host ("" for a volume reached over iSCSI).
    public var path: String
    /// A block device (an LV) rather than a file.
    public var block: Bool
    /// `vdb`, …: chosen by the node at attach time, kept so every later definition has it there.
    public var device: String?
    /// The volume is on another host, exported there over iSCSI; absent from older controllers.
    public var iscsi: ISCSITarget?

    public init(volumeID: String, path: String, block: Bool, device: String? = nil, iscsi: ISCSITarget? = nil) {
        self.volumeID = volumeID; self.path = path; self.block = block; self.device = device; self.iscsi = iscsi
    }
}

/// Hot-plugs a volume into an instance on this host (Nova's `attach_volume`): the disk goes into
/// the running guest and its stored definition. Answers with the device the guest got;
/// repeating it changes nothing.
public struct AttachVolume: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var instanceID: String
        public var disk: VolumeDisk
        public init(instanceID: String, disk: VolumeDisk) {
            self.instanceID = instanceID
            self.disk = disk
        }
    }
    public struct Result: Codable, Sendable, Equatable {
        public var device: String
        public init(device: String) { self.device = device }
    }
    public static let name = "attach_volume"
    public static let version = RPCVersion(1, 0)
}

/// Unplugs a volume from an instance on this host: answers once the guest let go of the disk,
/// or fails when it would not (the disk then stays, in the stored definition too).
public struct DetachVolume: RPCMethod {
    public typealias Arguments = AttachVolume.Arguments
    public typealias Result = Nothing
    public static let name = "detach_volume"
    public static let version = RPCVersion(1, 0)
}

/// Replaces one of an instance's volumes by another (Nova's `swap_volume`): a running guest's
/// disk is copied into the new volume and switched over while it runs; a stopped instance's
/// definition names the new volume. The new volume takes the old one's device.
public struct SwapVolume: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var instanceID: String
        public var old: VolumeDisk
        public var new: VolumeDisk
        public init(instanceID: String, old: VolumeDisk, new: VolumeDisk) {
            self.instanceID = instanceID; self.old = old; self.new = new
        }
    }
    public typealias Result = AttachVolume.Result
    public static let name = "swap_volume"
    public static let version = RPCVersion(1, 0)
}

/// A volume attached to an instance on this host grew (Nova's `volume-extended` event): the
/// running guest is told the disk's new size. A stopped guest sees it at its next start.
public struct VolumeExtended: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var instanceID: String
        public var volumeID: String
        public var sizeBytes: UInt64
        public init(instanceID: String, volumeID: String, sizeBytes: UInt64) {
            self.instanceID = instanceID; self.volumeID = volumeID; self.sizeBytes = sizeBytes
        }
    }
    public typealias Result = Nothing
    public static let name = "volume_extended"
    public static let version = RPCVersion(1, 0)
}

/// Build the instance the controller has scheduled here (its spec comes from `InstancesOnHost`).
public struct BuildInstance: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var instanceID: String
        public init(instanceID: String) { self.instanceID = instanceID }
    }

    public typealias Result = Nothing
    public static let name = "build_instance"
    public static let version = RPCVersion(1, 0)
}

/// A lifecycle action on an instance of this host.
public struct InstanceAction: RPCMethod {
    public enum Action: String, Codable, Sendable, CaseIterable {
        case rebootSoft = "reboot_soft", rebootHard = "reboot_hard", stop, start, pause, unpause, suspend, resume, rebuild, snapshot
        /// Snapshot the disk into `imageID`, then remove the domain and its files (offload).
        case shelve
        /// Remove a shelved instance's domain and files.
        case shelveOffload = "shelve_offload"
        /// Power a shelved (not offloaded) instance on again.
        case unshelve
        /// Resize (or cold-migrate, on the same host) to `InstanceSpec.resize`'s flavor,
        /// keeping the disks as they were until it is confirmed or reverted.
        case resize
        /// Drop what a revert would have needed.
        case confirmResize = "confirm_resize"
        /// Go back to the disks and the flavor (`InstanceSpec.resize`) of before the resize.
        case revertResize = "revert_resize"
        /// Boot from a disk of `InstanceSpec.rescueImage`, the instance's own disk attached second.
        case rescue
        /// Boot from the instance's own disks again; the rescue disk goes.
        case unrescue
        /// A snapshot into `imageID` made as a backup (createBackup; the controller rotates).
        case backup
        /// Power a deleted server off, keeping it restorable (`reclaim_instance_interval`).
        case softDelete = "soft_delete"
        /// Power a soft-deleted server on again.
        case restore

        /// Nova's task state while the action runs: the controller sets it, the node's
        /// update ends it.
        public var task: TaskState {
            switch self {
            case .rebootSoft: return .rebooting
            case .rebootHard: return .rebootingHard
            case .stop: return .poweringOff
            case .start: return .poweringOn
            case .pause: return .pausing
            case .unpause: return .unpausing
            case .suspend: return .suspending
            case .resume: return .resuming
            case .rebuild: return .rebuilding
            case .snapshot: return .imageSnapshot
            case .shelve: return .shelving
            case .shelveOffload: return .shelvingOffloading
            case .unshelve: return .unshelving
            case .resize: return .resizeMigrating
            case .confirmResize: return .resizeConfirming
            case .revertResize: return .resizeReverting
            case .rescue: return .rescuing
            case .unrescue: return .unrescuing
            case .backup: return .imageBackup
            case .softDelete: return .softDeleting
            case .restore: return .restoring
            }
        }

        /// The action a task state belongs to.
        public init?(task: TaskState) {
            guard let action = Self.allCases.first(where: { $0.task == task }) else { return nil }
            self = action
        }
    }

    public struct Arguments: Codable, Sendable, Equatable {
        public var instanceID: String
        public var action: Action
        /// For `snapshot` and `shelve`: the (queued) image to upload the disk to.
        public var imageID: String?

        public init(instanceID: String, action: Action, imageID: String? = nil) {
            self.instanceID = instanceID
            self.action = action
            self.imageID = imageID
        }
    }

    public typealias Result = Nothing
    public static let name = "instance_action"
    public static let version = RPCVersion(1, 0)
}

/// Remove an instance from this host: domain, disks, directory. Idempotent.
public struct DeleteInstance: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var instanceID: String
        public init(instanceID: String) { self.instanceID = instanceID }
    }

    public typealias Result = Nothing
    public static let name = "delete_instance"
    public static let version = RPCVersion(1, 0)
}

/// The tail of an instance's serial console log.
public struct ConsoleOutput: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var instanceID: String
        /// Lines from the end; nil for all of it.
        public var length: Int?

        public init(instanceID: String, length: Int?) {
            self.instanceID = instanceID
            self.length = length
        }
    }

    public struct Result: Codable, Sendable, Equatable {
        public var output: String
        public init(output: String) { self.output = output }
    }

    public static let name = "console_output"
    public static let version = RPCVersion(1, 0)
}

/// A fault, as Nova shows it on a server in ERROR.
public struct InstanceFault: Codable, Sendable, Equatable {
    public var code: Int
    public var message: String
    public var details: String?

    public init(code: Int, message: String, details: String? = nil) {
        self.code = code
        self.message = message
        self.details = details
    }
}

/// A node's news about an instance. `stamp` (the node's clock in microseconds) orders them:
/// the controller applies an update only when it is newer than the last one it applied.
public struct InstanceUpdate: RPCMethod {
    public enum Kind: String, Codable, Sendable {
        /// The build or an action finished: `vmState` is the new state and the task is over.
        case taskDone = "task_done"
        /// An action failed; the instance stays in `vmState` and the task is over.
        case taskFailed = "task_failed"
        /// libvirt reported a change the node did not ask for (a guest that powered itself
        /// off): the power state, and the VM state when no task is running.
        case powerChanged = "power_changed"
        /// The instance is gone from the host (delete finished).
        case deleted
    }

    public struct Arguments: Codable, Sendable, Equatable {
        public var instanceID: String
        public var host: String
        public var kind: Kind
        public var vmState: VMState?
        public var powerState: PowerState
        /// The task this update ends (taskDone/taskFailed): it applies only while that task runs.
        public var endsTask: TaskState?
        public var fault: InstanceFault?
        public var stamp: Int64

        public init(instanceID: String, host: String, kind: Kind, vmState: VMState?, powerState: PowerState, endsTask: TaskState? = nil,
                    fault: InstanceFault? = nil, stamp: Int64) {
            self.instanceID = instanceID; self.host = host; self.kind = kind; self.vmState = vmState
            self.powerState = powerState; self.endsTask = endsTask; self.fault = fault; self.stamp = stamp
        }
    }

    public typealias Result = Nothing
    public static let name = "instance_update"
    public static let version = RPCVersion(1, 0)
    public static let topic = "conductor"
}

/// A build failed on a host; the controller tries another (up to `max_attempts`) or puts the
/// instance in ERROR with the reason.
public struct BuildFailed: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var instanceID: String
        public var host: String
        public var reason: String
        /// False when no other host would do better (e.g. the image is broken).
        public var retryable: Bool

        public init(instanceID: String, host: String, reason: String, retryable: Bool) {
            self.instanceID = instanceID; self.host = host; self.reason = reason; self.retryable = retryable
        }
    }

    public typealias Result = Nothing
    public static let name = "build_failed"
    public static let version = RPCVersion(1, 0)
    public static let topic = "conductor"
}

/// What the controller says should be on `host`: every instance placed there (or just the
/// ones in `ids`), with its spec and state.
public struct InstancesOnHost: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var host: String
        public var ids: [String]?

        public init(host: String, ids: [String]? = nil) {
            self.host = host
            self.ids = ids
        }
    }

    public struct Result: Codable, Sendable, Equatable {
        public var instances: [InstanceSpec]
        public init(instances: [InstanceSpec]) { self.instances = instances }
    }

    public static let name = "instances_on_host"
    public static let version = RPCVersion(1, 0)
    public static let topic = "conductor"
}

/// Which NIC of which instance an interface attach or detach is about.
public struct InterfaceChange: Codable, Sendable, Equatable {
    public var instanceID: String
    public var nic: InstanceSpec.NIC

    public init(instanceID: String, nic: InstanceSpec.NIC) {
        self.instanceID = instanceID
        self.nic = nic
    }
}

/// Hot-plugs a port into an instance on this host (Nova's `attach_interface`): the node wires
/// the port's network, then adds the NIC to the running guest and to its stored definition.
/// Answers once libvirt has the device; repeating it changes nothing.
public struct AttachInterface: RPCMethod {
    public typealias Arguments = InterfaceChange
    public typealias Result = Nothing
    public static let name = "attach_interface"
    public static let version = RPCVersion(1, 0)
}

/// Unplugs a port from an instance on this host (Nova's `detach_interface`): answers once the
/// guest has let go of the NIC, or fails when it would not within the node's timeout (the
/// NIC then stays, in the stored definition too, so nothing disagrees).
public struct DetachInterface: RPCMethod {
    public typealias Arguments = InterfaceChange
    public typealias Result = Nothing
    public static let name = "detach_interface"
    public static let version = RPCVersion(1, 0)
}
