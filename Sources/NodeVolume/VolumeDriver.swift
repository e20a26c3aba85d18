import Foundation
import PetrelCore

/// What a volume backend is and can do, so the volume service (and later the export of
/// volumes to guests) asks instead of guessing.
public struct VolumeDriverInfo: Sendable, Equatable {
    /// The configuration name (`file`, `lvm`).
    public var name: String
    /// Volumes take space only as they are written (sparse files): the scheduler may
    /// over-subscribe the backend up to its ratio.
    public var thin: Bool
    /// Volumes are block devices (LVs) rather than files.
    public var block: Bool
}

public struct VolumeDriverError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The space a backend has, as it measures it.
public struct VolumeCapacity: Sendable, Equatable {
    public var totalBytes: UInt64
    public var freeBytes: UInt64
}

/// One volume backend: it makes, grows, copies and removes volumes named `volume-<id>` (and
/// snapshots, `snapshot-<id>`: copies of a volume). Every call is
/// idempotent (creating a volume that exists at its size, or removing one that is gone,
/// changes nothing), and a failed call leaves no half-made volume behind.
public protocol VolumeDriver: Sendable {
    var info: VolumeDriverInfo { get }
    /// Checks the backend can serve (its directory or volume group exists).
    func prepare() async throws
    func capacity() async throws -> VolumeCapacity
    /// Creates the volume of `sizeGB`, or finds it already there.
    func create(_ name: String, sizeGB: Int) async throws
    /// Grows the volume to `sizeGB` (a volume already that large is left alone).
    func extend(_ name: String, sizeGB: Int) async throws
    /// Makes `name` a copy of `source` (a volume or a snapshot on this backend), grown to
    /// `sizeGB` when given; finds it already there when it exists.
    func copy(_ source: String, to name: String, sizeGB: Int?) async throws
    /// Makes `name` from an image's bytes in `file` (of `format`, `raw` or `qcow2`, as the
    /// image API says: never probed), converted to raw and sized to `sizeGB`; finds it already
    /// there when it exists. An image whose virtual size exceeds `sizeGB` is refused.
    func importImage(_ file: String, format: String, to name: String, sizeGB: Int) async throws
    /// Writes the volume's bytes to `file` in `format` (`raw` or `qcow2`), also while a guest
    /// uses the volume.
    func exportImage(_ name: String, format: String, to file: String) async throws
    /// Removes the volume (or snapshot); one that does not exist is not an error.
    func delete(_ name: String) async throws
    /// The volume's size in bytes, nil when it does not exist.
    func size(_ name: String) async throws -> UInt64?
    /// Where the volume is on this host (a file or a device path).
    func path(_ name: String) -> String
}

/// The volume backends by configuration name.
public enum VolumeDrivers {
    public typealias Settings = PetrelConfig.VolumeBackendSettings

    public static let registry: [String: @Sendable (Settings) throws -> any VolumeDriver] = [
        "file": { settings in FileVolumeDriver(directory: settings.volumesDirectory) },
        "lvm": { settings in LVMVolumeDriver(volumeGroup: settings.volumeGroup) },
    ]

    public static func make(_ settings: Settings) throws -> any VolumeDriver {
        guard let make = registry[settings.driver] else {
            throw VolumeDriverError("no volume driver '\(settings.driver)' (known: \(registry.keys.sorted().joined(separator: ", ")))")
        }
        return try make(settings)
    }
}

extension Int {
    /// GB (GiB, as Cinder counts) in bytes.
    var gigabytes: UInt64 { UInt64(self) << 30 }
}
