import Foundation
import ProcessDriver

/// Volumes as sparse raw files in one directory (Cinder's local-file/NFS shape): a volume takes
/// space as the guest writes it, so the backend is thin. The directory may be an NFS mount.
public struct FileVolumeDriver: VolumeDriver {
    public let directory: String
    public var info: VolumeDriverInfo { VolumeDriverInfo(name: "file", thin: true, block: false) }

    public init(directory: String) {
        self.directory = directory
    }

    public func prepare() async throws {
        do {
            // QEMU (its own user) must reach a volume's file through the directory: search
            // permission only, no listing. libvirt hands it the file itself at attach time.
            // The directories made here get the same (createDirectory applies the mode to every
            // one it makes); existing parents are left as the operator set them.
            var missing: [String] = []
            var path = directory
            while !path.isEmpty, path != "/", !FileManager.default.fileExists(atPath: path) {
                missing.append(path)
                path = (path as NSString).deletingLastPathComponent
            }
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o711])
            for made in missing + [directory] { _ = chmod(made, 0o711) }
        } catch {
            throw VolumeDriverError("cannot create the volumes directory \(directory): \(error)")
        }
    }

    public func capacity() async throws -> VolumeCapacity {
        var stats = statvfs()
        guard statvfs(directory, &stats) == 0 else {
            throw VolumeDriverError("cannot measure \(directory): \(String(cString: strerror(errno)))")
        }
        let block = UInt64(stats.f_frsize)
        return VolumeCapacity(totalBytes: UInt64(stats.f_blocks) * block, freeBytes: UInt64(stats.f_bavail) * block)
    }

    public func path(_ name: String) -> String { directory + "/" + name }

    public func size(_ name: String) async throws -> UInt64? {
        var info = stat()
        guard stat(path(name), &info) == 0 else {
            if errno == ENOENT { return nil }
            throw VolumeDriverError("cannot read \(path(name)): \(String(cString: strerror(errno)))")
        }
        return UInt64(info.st_size)
    }

    /// Made under a temporary name and renamed into place: a crash leaves either no volume or a
    /// whole one (the temporary file is removed by the next create).
    public func create(_ name: String, sizeGB: Int) async throws {
        if let existing = try await size(name), existing >= sizeGB.gigabytes { return }
        let partial = path("." + name + ".partial")
        unlink(partial)
        let fd = open(partial, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VolumeDriverError("cannot create \(partial): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(sizeGB.gigabytes)) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(partial)
            throw VolumeDriverError("cannot size \(partial) to \(sizeGB) GB: \(reason)")
        }
        guard rename(partial, path(name)) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(partial)
            throw VolumeDriverError("cannot move \(partial) into place: \(reason)")
        }
    }

    /// A sparse copy (a reflink where the file system can), made under a temporary name and
    /// renamed into place, like a create.
    public func copy(_ source: String, to name: String, sizeGB: Int?) async throws {
        if try await size(name) != nil { return }
        guard let sourceSize = try await size(source) else { throw VolumeDriverError("\(path(source)) does not exist") }
        try await write(name, sizeGB: sizeGB.flatMap { $0.gigabytes > sourceSize ? $0 : nil }) { partial in
            try await Command.check("cp", ["--sparse=always", "--reflink=auto", path(source), partial])
        }
    }

    public func importImage(_ file: String, format: String, to name: String, sizeGB: Int) async throws {
        if try await size(name) != nil { return }
        let virtualSize = try await ImageFile.virtualSize(file, format: format)
        guard virtualSize <= sizeGB.gigabytes else {
            throw VolumeDriverError("the image's virtual size (\(virtualSize) bytes) is larger than the volume (\(sizeGB) GB)")
        }
        try await write(name, sizeGB: sizeGB) { partial in
            // qemu-img writes raw output sparse: the image's zeros take no space.
            try await Command.check("qemu-img", ["convert", "-q", "-f", format, "-O", "raw", file, partial])
        }
    }

    /// Makes `name` by `fill`ing a temporary file (grown to `sizeGB` when given), then renames
    /// it into place: a crash or a failure leaves no half-made volume.
    func write(_ name: String, sizeGB: Int?, fill: (_ partial: String) async throws -> Void) async throws {
        let partial = path("." + name + ".partial")
        unlink(partial)
        do {
            try await fill(partial)
            if let sizeGB, truncate(partial, off_t(sizeGB.gigabytes)) != 0 {
                throw VolumeDriverError("cannot size \(partial) to \(sizeGB) GB: \(String(cString: strerror(errno)))")
            }
            _ = chmod(partial, 0o600)
            guard rename(partial, path(name)) == 0 else {
                throw VolumeDriverError("cannot move \(partial) into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(partial)
            throw error
        }
    }

    public func exportImage(_ name: String, format: String, to file: String) async throws {
        guard try await size(name) != nil else { throw VolumeDriverError("\(path(name)) does not exist") }
        // -U: a guest may hold the file open (an upload of an in-use volume).
        try await Command.check("qemu-img", ["convert", "-q", "-U", "-f", "raw", "-O", format, path(name), file])
    }

    public func extend(_ name: String, sizeGB: Int) async throws {
        guard let existing = try await size(name) else { throw VolumeDriverError("\(path(name)) does not exist") }
        guard existing < sizeGB.gigabytes else { return }
        guard truncate(path(name), off_t(sizeGB.gigabytes)) == 0 else {
            throw VolumeDriverError("cannot grow \(path(name)) to \(sizeGB) GB: \(String(cString: strerror(errno)))")
        }
    }

    public func delete(_ name: String) async throws {
        unlink(path("." + name + ".partial"))
        guard unlink(path(name)) == 0 || errno == ENOENT else {
            throw VolumeDriverError("cannot remove \(path(name)): \(String(cString: strerror(errno)))")
        }
    }
}

/// What `qemu-img info` says of an image file.
enum ImageFile {
    /// The disk size the image describes (a qcow2's virtual size; a raw file's length).
    static func virtualSize(_ file: String, format: String) async throws -> UInt64 {
        let output = try await Command.check("qemu-img", ["info", "-U", "--output=json", "-f", format, file])
        guard let info = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
              let size = (info["virtual-size"] as? NSNumber)?.uint64Value else {
            throw VolumeDriverError("qemu-img cannot read \(file) as \(format)")
        }
        return size
    }
}
