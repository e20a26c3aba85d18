import Contracts
import Foundation
import ProcessDriver

/// An instance's directory: `<instances>/<id>/` with `disk` (a qcow2 overlay on the cached
/// base image), `disk.eph0`, `disk.swap`, `disk.config` (the config drive, as Nova names it),
/// `console.log` and `image` (the base image id, so the cache knows what is in use).
public struct InstanceFiles: Sendable {
    public let root: String
    public let id: String

    public init(root: String, id: String) {
        self.root = root
        self.id = id
    }

    public var directory: String { root + "/" + id }
    public var disk: String { directory + "/disk" }
    public var ephemeral: String { directory + "/disk.eph0" }
    public var swap: String { directory + "/disk.swap" }
    public var configDrive: String { directory + "/disk.config" }
    /// A rescued instance's boot disk (Nova's name), a qcow2 overlay on the rescue image.
    public var rescueDisk: String { directory + "/disk.rescue" }
    public var console: String { directory + "/console.log" }
    var imageMarker: String { directory + "/image" }

    public var exists: Bool { FileManager.default.fileExists(atPath: directory) }

    /// Creates the directory and the disks for `spec`: the root disk on `base` (none when
    /// `base` is nil: the root is a volume), the flavor's ephemeral and swap disks, the config drive.
    public func create(_ spec: InstanceSpec, base: String?) async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        if let base, let image = spec.image {
            try await Self.overlay(disk, on: base, of: image, rootGB: spec.flavor.rootGB)
        }
        if spec.flavor.ephemeralGB > 0 {
            try await Command.check("qemu-img", ["create", "-q", "-f", "qcow2", ephemeral, "\(spec.flavor.ephemeralGB)G"])
        }
        if spec.flavor.swapMB > 0 {
            try await Command.check("qemu-img", ["create", "-q", "-f", "raw", swap, "\(spec.flavor.swapMB)M"])
            _ = try? await Command.run("mkswap", [swap])
        }
        if let drive = spec.configDrive { try await writeConfigDrive(drive) }
        FileManager.default.createFile(atPath: console, contents: nil)
        try Data((spec.image?.id ?? "").utf8).write(to: URL(fileURLWithPath: imageMarker))
    }

    /// A qcow2 overlay at `path` on the cached `base` of `image`, sized to `rootGB` (0: the image's size).
    static func overlay(_ path: String, on base: String, of image: InstanceSpec.Image, rootGB: Int) async throws {
        let format = image.diskFormat == "raw" ? "raw" : "qcow2"
        var arguments = ["create", "-q", "-f", "qcow2", "-b", base, "-F", format, path]
        if rootGB > 0 { arguments.append("\(rootGB)G") }
        try await Command.check("qemu-img", arguments)
    }

    /// Removes the disks (not the console log), for a rebuild.
    /// The config drive: the files in a directory tree, made into an ISO 9660 image labelled
    /// `config-2` with Rock Ridge and Joliet names (what Nova's `genisoimage` call makes, and
    /// what cloud-init looks for).
    func writeConfigDrive(_ files: [InstanceSpec.ConfigDriveFile]) async throws {
        let tree = directory + "/config-drive.tmp"
        try? FileManager.default.removeItem(atPath: tree)
        defer { try? FileManager.default.removeItem(atPath: tree) }
        for file in files {
            // Paths come from the controller; none may leave the tree.
            guard !file.path.hasPrefix("/"), !file.path.split(separator: "/").contains("..") else {
                throw CocoaError(.fileWriteInvalidFileName, userInfo: [NSFilePathErrorKey: file.path])
            }
            let path = tree + "/" + file.path
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try file.contents.write(to: URL(fileURLWithPath: path))
        }
        try await Command.check("genisoimage", ["-quiet", "-o", configDrive, "-ldots", "-allow-lowercase", "-allow-multidot", "-l",
                                                "-publisher", "Petrel", "-input-charset", "utf-8", "-J", "-r", "-V", "config-2", tree])
    }

    public func removeDisks() {
        for file in [disk, ephemeral, swap, configDrive, rescueDisk] { try? FileManager.default.removeItem(atPath: file) }
    }

    public func remove() throws {
        if exists { try FileManager.default.removeItem(atPath: directory) }
    }

    /// The base image this instance's disk is on.
    public var baseImage: String? {
        (try? String(contentsOfFile: imageMarker, encoding: .utf8)).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// While rescued: the base image the rescue disk is on (the cache keeps it).
    var rescueImageMarker: String { directory + "/rescue-image" }
    public var rescueBaseImage: String? {
        (try? String(contentsOfFile: rescueImageMarker, encoding: .utf8)).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The last `lines` lines of the serial console log (all of it for nil).
    public func consoleTail(lines: Int?) -> String {
        guard let data = FileManager.default.contents(atPath: console) else { return "" }
        let text = String(decoding: data, as: UTF8.self)
        guard let lines else { return text }
        // A serial console writes "\r\n", one Character in Swift.
        var parts = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        if parts.last == "" { parts.removeLast() }
        return parts.suffix(lines).joined(separator: "\n")
    }

    /// Copies the root disk, flattened, into a standalone qcow2 file (a snapshot).
    public func snapshot(to path: String) async throws {
        try await Command.check("qemu-img", ["convert", "-U", "-q", "-f", "qcow2", "-O", "qcow2", disk, path])
    }

    /// Instance directories under `root` (the cache's `_base` is not one).
    public static func all(in root: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0 != "_base" && UUID(uuidString: $0) != nil }
    }
}
