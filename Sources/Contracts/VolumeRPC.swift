import Foundation

/// The volume conversation between the controller and a node's volume service.
///
/// Controller → node, on `volume.<host>`: `VolumeWork` (a cast: create, delete or extend one
/// volume on one backend; the node answers later with `VolumeUpdate`) and `VolumeConnection`
/// (a call: where the volume is, for a guest on the same host), `ExportVolume` and
/// `UnexportVolume` (calls: an iSCSI target with a CHAP account per attachment, for a guest on
/// another host). Node → controller, on
/// `conductor`: `VolumeUpdate` (a cast) and `VolumesOnHost` (a call: what should be on the
/// host's backends, read at start and periodically so a lost message or a crash mid-work is
/// finished by the next reconcile).
public enum VolumeTopic {
    public static let name = "volume"
}

/// The node-side name of a volume on any backend (`volume-<id>`, as Cinder names them).
public enum VolumeNaming {
    public static func name(_ volumeID: String) -> String { "volume-" + volumeID }
    public static func snapshot(_ snapshotID: String) -> String { "snapshot-" + snapshotID }
}

/// One backend a node's volume service runs (`[<name>]` named in `enabled_backends`), with
/// its capacity as the backend measured it.
public struct VolumeBackendReport: Codable, Sendable, Equatable {
    /// The configuration section's name; Cinder's host of its volumes is `<host>@<name>#<pool>`.
    public var name: String
    /// `volume_backend_name`, which volume types select with their extra spec.
    public var backendName: String
    /// The driver's registry name (`file`, `lvm`).
    public var driver: String
    /// Whether volumes take space only as they are written (sparse files, thin LVs).
    public var thin: Bool
    public var totalBytes: UInt64
    public var freeBytes: UInt64
    public var reservedPercentage: Int
    public var maxOverSubscriptionRatio: Double

    public init(name: String, backendName: String, driver: String, thin: Bool, totalBytes: UInt64, freeBytes: UInt64,
                reservedPercentage: Int, maxOverSubscriptionRatio: Double) {
        self.name = name; self.backendName = backendName; self.driver = driver; self.thin = thin
        self.totalBytes = totalBytes; self.freeBytes = freeBytes; self.reservedPercentage = reservedPercentage
        self.maxOverSubscriptionRatio = maxOverSubscriptionRatio
    }
}

/// What should be true of one volume on a node, as the controller's database says.
public struct VolumeSpec: Codable, Sendable, Equatable {
    public var id: String
    /// The backend (configuration section) holding it.
    public var backend: String
    public var sizeGB: Int
    /// Cinder's status: `creating`, `available`, `in-use`, `deleting`, `extending`, `error`, …
    public var status: String
    /// What a volume being created starts from (nil: blank).
    public var source: VolumeSource?
    /// The image a volume in `uploading` fills (Cinder's upload to image).
    public var upload: VolumeImageUpload?

    public init(id: String, backend: String, sizeGB: Int, status: String, source: VolumeSource? = nil, upload: VolumeImageUpload? = nil) {
        self.id = id; self.backend = backend; self.sizeGB = sizeGB; self.status = status; self.source = source; self.upload = upload
    }
}

/// A volume's starting bytes: a snapshot's or another volume's (on the same backend), or an
/// image's (downloaded from the image API and converted to raw).
public struct VolumeSource: Codable, Sendable, Equatable {
    /// `snapshot`, `volume` or `image`.
    public var kind: String
    public var id: String
    /// An image's disk format (`raw`, `qcow2`): what the node converts from, never guessed from the bytes.
    public var diskFormat: String?
    /// An image's md5, checked after the download.
    public var checksum: String?
    public init(kind: String, id: String, diskFormat: String? = nil, checksum: String? = nil) {
        self.kind = kind
        self.id = id
        self.diskFormat = diskFormat
        self.checksum = checksum
    }

    /// The backend's name of the source (`snapshot-<id>`, `volume-<id>`).
    public var name: String { kind == "snapshot" ? VolumeNaming.snapshot(id) : VolumeNaming.name(id) }
}

/// Where a volume's bytes go on an upload to image: the queued image and the format to write.
public struct VolumeImageUpload: Codable, Sendable, Equatable {
    public var imageID: String
    /// `raw` or `qcow2`.
    public var diskFormat: String
    public init(imageID: String, diskFormat: String) {
        self.imageID = imageID
        self.diskFormat = diskFormat
    }
}

/// What should be true of one snapshot on a node.
public struct SnapshotSpec: Codable, Sendable, Equatable {
    public var id: String
    public var volumeID: String
    public var backend: String
    public var sizeGB: Int
    /// `creating`, `available`, `deleting`, `error`, …
    public var status: String

    public init(id: String, volumeID: String, backend: String, sizeGB: Int, status: String) {
        self.id = id; self.volumeID = volumeID; self.backend = backend; self.sizeGB = sizeGB; self.status = status
    }
}

/// What should be true of one backup on the node holding its volume: made (`creating`, from the
/// volume's bytes; only the chunks that changed since `parentID` when incremental), written back
/// (`restoring`, into `restoreVolumeID` on `restoreBackend`, made first when missing) or removed
/// (`deleting`).
public struct BackupSpec: Codable, Sendable, Equatable {
    public var id: String
    public var volumeID: String
    /// The backend of the volume backed up.
    public var backend: String
    public var sizeGB: Int
    public var status: String
    public var parentID: String?
    public var restoreVolumeID: String?
    public var restoreBackend: String?
    public var restoreSizeGB: Int?

    public init(id: String, volumeID: String, backend: String, sizeGB: Int, status: String, parentID: String? = nil,
                restoreVolumeID: String? = nil, restoreBackend: String? = nil, restoreSizeGB: Int? = nil) {
        self.id = id; self.volumeID = volumeID; self.backend = backend; self.sizeGB = sizeGB; self.status = status
        self.parentID = parentID; self.restoreVolumeID = restoreVolumeID; self.restoreBackend = restoreBackend
        self.restoreSizeGB = restoreSizeGB
    }
}

/// Asks a node to converge one backup with its spec. Repeating it changes nothing.
public struct BackupWork: RPCMethod {
    public typealias Arguments = BackupSpec
    public typealias Result = Nothing
    public static let name = "backup_work"
    public static let version = RPCVersion(1, 0)
}

/// A node finished (or failed) the work on a backup; applies only while the backup is still in
/// the status the work began from.
public struct BackupUpdate: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var backupID: String
        public var host: String
        public var from: String
        /// `available`, `error`, `deleted`, `error_deleting`; from `restoring`: `restored` or
        /// `restore_failed` (the backup is available again either way).
        public var outcome: String
        /// The chunks this backup wrote (Cinder's `object_count`).
        public var objectCount: Int?
        public var reason: String?
        public init(backupID: String, host: String, from: String, outcome: String, objectCount: Int? = nil, reason: String? = nil) {
            self.backupID = backupID; self.host = host; self.from = from; self.outcome = outcome
            self.objectCount = objectCount; self.reason = reason
        }
    }
    public typealias Result = Nothing
    public static let name = "backup_update"
    public static let version = RPCVersion(1, 0)
    public static let topic = "conductor"
}

/// Asks a node to converge one snapshot with its spec (take it, or remove it).
public struct SnapshotWork: RPCMethod {
    public typealias Arguments = SnapshotSpec
    public typealias Result = Nothing
    public static let name = "snapshot_work"
    public static let version = RPCVersion(1, 0)
}

/// A node finished (or failed) the work on a snapshot; applies only while the snapshot is still
/// in the status the work began from.
public struct SnapshotUpdate: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var snapshotID: String
        public var host: String
        public var from: String
        /// `available`, `error`, `error_deleting`, or `deleted`.
        public var outcome: String
        public var reason: String?
        public init(snapshotID: String, host: String, from: String, outcome: String, reason: String? = nil) {
            self.snapshotID = snapshotID; self.host = host; self.from = from; self.outcome = outcome; self.reason = reason
        }
    }
    public typealias Result = Nothing
    public static let name = "snapshot_update"
    public static let version = RPCVersion(1, 0)
    public static let topic = "conductor"
}

/// Asks a node to converge one volume with its spec: create it (`creating`), grow it
/// (`extending`), copy it into an image (`uploading`) or remove it (`deleting`). Repeating it
/// changes nothing.
public struct VolumeWork: RPCMethod {
    public typealias Arguments = VolumeSpec
    public typealias Result = Nothing
    public static let name = "volume_work"
    public static let version = RPCVersion(1, 0)
}

/// A node finished (or failed) the work on a volume. Applies only while the volume is still
/// in the status the work began from (`from`): a late or repeated update changes nothing.
public struct VolumeUpdate: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var volumeID: String
        public var host: String
        /// The status the work began from.
        public var from: String
        /// `available`, `error`, `error_extending`, `error_deleting`, `deleted`, or after an upload
        /// to image `uploaded` or `upload_failed` (the volume goes back to its status before).
        public var outcome: String
        public var sizeGB: Int?
        /// Why it failed, for the operator.
        public var reason: String?

        public init(volumeID: String, host: String, from: String, outcome: String, sizeGB: Int? = nil, reason: String? = nil) {
            self.volumeID = volumeID; self.host = host; self.from = from; self.outcome = outcome
            self.sizeGB = sizeGB; self.reason = reason
        }
    }

    public typealias Result = Nothing
    public static let name = "volume_update"
    public static let version = RPCVersion(1, 0)
    public static let topic = "conductor"
}

/// What the controller says should be on a host's backends: every volume placed there.
public struct VolumesOnHost: RPCMethod {
    public struct Arguments: Codable, Sendable, Equatable {
        public var host: String
        /// Only these volumes (nil: all of the host's).
        public var ids: [String]?
        public init(host: String, ids: [String]? = nil) {
            self.host = host
            self.ids = ids
        }
    }

    public struct Result: Codable, Sendable, Equatable {
        public var volumes: [VolumeSpec]
        /// The snapshots kept on the host's backends (of `ids` when given); absent from older controllers.
        public var snapshots: [SnapshotSpec]?
        /// The backups of the host's volumes (of `ids` when given); absent from older controllers.
        public var backups: [BackupSpec]?
        /// Every iSCSI export the host's volumes should have (all of them, whatever `ids` says):
        /// the node makes the missing ones and removes those of its volumes not listed.
        public var exports: [VolumeExport]?
        public init(volumes: [VolumeSpec], snapshots: [SnapshotSpec]? = nil, backups: [BackupSpec]? = nil, exports: [VolumeExport]? = nil) {
            self.volumes = volumes
            self.snapshots = snapshots
            self.backups = backups
            self.exports = exports
        }
    }

    public static let name = "volumes_on_host"
    public static let version = RPCVersion(1, 0)
    public static let topic = "conductor"
}

/// Where a volume is on its node, for a guest on the same host (Cinder's
/// `initialize_connection` with a local connector): its file or device path.
public struct VolumeConnection: RPCMethod {
    public typealias Arguments = VolumeSpec
    public struct Result: Codable, Sendable, Equatable {
        public var path: String
        public var block: Bool
        public init(path: String, block: Bool) {
            self.path = path
            self.block = block
        }
    }
    public static let name = "volume_connection"
    public static let version = RPCVersion(1, 0)
}

/// One attachment's access to a volume over iSCSI: the volume, and the CHAP account the
/// controller made for the attachment (kept in its database, so the volume's node can make
/// the export again after tgtd or the node restarted).
public struct VolumeExport: Codable, Sendable, Equatable {
    public var volume: VolumeSpec
    public var attachmentID: String
    public var username: String
    public var password: String

    public init(volume: VolumeSpec, attachmentID: String, username: String, password: String) {
        self.volume = volume; self.attachmentID = attachmentID; self.username = username; self.password = password
    }
}

/// Where a guest on another host reaches a volume: Cinder's iSCSI `connection_info` (target
/// portal, IQN, LUN, CHAP account).
public struct ISCSITarget: Codable, Sendable, Equatable {
    /// `address:port` of the volume node's target daemon.
    public var portal: String
    public var iqn: String
    public var lun: Int
    public var username: String
    public var password: String

    public init(portal: String, iqn: String, lun: Int, username: String, password: String) {
        self.portal = portal; self.iqn = iqn; self.lun = lun; self.username = username; self.password = password
    }

    /// The portal's address and port (an IPv6 address in brackets loses them).
    public var address: (host: String, port: Int) {
        guard let colon = portal.lastIndex(of: ":"), let port = Int(portal[portal.index(after: colon)...]) else { return (portal, 3260) }
        var host = String(portal[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }
}

/// Exports a volume over iSCSI for one attachment (Cinder's `initialize_connection` with a
/// remote connector): the volume's target (made when missing) with the attachment's CHAP
/// account bound to it. Repeating it changes nothing.
public struct ExportVolume: RPCMethod {
    public typealias Arguments = VolumeExport
    public typealias Result = ISCSITarget
    public static let name = "export_volume"
    public static let version = RPCVersion(1, 0)
}

/// Ends one attachment's iSCSI access (Cinder's `terminate_connection`): its account goes, and
/// the target with the last one. A volume no longer exported is not an error.
public struct UnexportVolume: RPCMethod {
    public typealias Arguments = VolumeExport
    public typealias Result = Nothing
    public static let name = "unexport_volume"
    public static let version = RPCVersion(1, 0)
}
