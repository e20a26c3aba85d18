import Crypto
import Foundation
import PetrelCore
import ProcessDriver

/// Volume backups in a directory, in the shape of cinder-backup's posix driver: one directory
/// per backup holding the chunks it wrote (`chunk-000012`, 4 MiB of the volume each) and a
/// manifest that says, for every chunk of the volume, which object holds its bytes (its own, or
/// its parent's for an incremental backup where the chunk did not change) and their SHA-256.
/// Chunks of zeros (holes of a sparse file included) are not stored. The manifest is written
/// last: a backup without one is unfinished, and is redone from scratch.
struct BackupStore: Sendable {
    static let chunkSize = 4 << 20
    let directory: String
    /// Backups read and write whole volumes: off the cooperative threads.
    let thread = BlockingExecutor(label: "petrel.backup")

    struct Manifest: Codable, Equatable {
        var backupID: String
        var volumeID: String
        var sizeBytes: UInt64
        var chunkSize: Int
        /// Per chunk of the volume: where its bytes are, nil for zeros.
        var chunks: [Chunk?]
    }

    struct Chunk: Codable, Equatable {
        /// Relative to the store's directory: `<backup id>/chunk-000012`.
        var object: String
        var sha256: String
    }

    func folder(_ id: String) -> String { directory + "/" + id }
    func manifestPath(_ id: String) -> String { folder(id) + "/manifest.json" }

    func manifest(_ id: String) throws -> Manifest? {
        guard let data = FileManager.default.contents(atPath: manifestPath(id)) else { return nil }
        return try JSONDecoder().decode(Manifest.self, from: data)
    }

    /// Backs up the volume at `source` (a file or a device) as backup `id`, only the chunks that
    /// differ from `parent`'s when given. Returns how many chunks it wrote. A finished backup is
    /// left as it is.
    func create(_ id: String, volumeID: String, from source: String, parent: Manifest?) async throws -> Int {
        try await thread.run { try self.createNow(id, volumeID: volumeID, from: source, parent: parent) }
    }

    private func createNow(_ id: String, volumeID: String, from source: String, parent: Manifest?) throws -> Int {
        if let done = try manifest(id) { return done.chunks.compactMap { $0 }.filter { $0.object.hasPrefix(id + "/") }.count }
        let folder = folder(id)
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let fd = open(source, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw VolumeDriverError("cannot read \(source): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let size = UInt64(max(0, lseek(fd, 0, SEEK_END)))
        var buffer = [UInt8](repeating: 0, count: Self.chunkSize)
        let zeros = [UInt8](repeating: 0, count: Self.chunkSize)
        var chunks: [Chunk?] = []
        var written = 0
        var offset: UInt64 = 0
        while offset < size {
            let length = Int(min(UInt64(Self.chunkSize), size - offset))
            defer { offset += UInt64(length) }
            let index = chunks.count
            // A hole of a sparse file: nothing to read.
            let data = lseek(fd, off_t(offset), Self.seekData)
            if data < 0 || UInt64(data) >= offset + UInt64(length) {
                chunks.append(nil)
                continue
            }
            try Self.readFully(fd, into: &buffer, length: length, at: offset, source: source)
            if memcmp(buffer, zeros, length) == 0 {
                chunks.append(nil)
                continue
            }
            let hash = SHA256.hash(data: buffer[0..<length]).map { String(format: "%02x", $0) }.joined()
            if let parent, index < parent.chunks.count, let old = parent.chunks[index], old.sha256 == hash {
                chunks.append(old)
                continue
            }
            let name = String(format: "chunk-%06d", index)
            try Self.write(Data(buffer[0..<length]), to: folder + "/" + name)
            chunks.append(Chunk(object: id + "/" + name, sha256: hash))
            written += 1
        }
        let manifest = Manifest(backupID: id, volumeID: volumeID, sizeBytes: size, chunkSize: Self.chunkSize, chunks: chunks)
        try Self.write(try JSONEncoder().encode(manifest), to: manifestPath(id))
        return written
    }

    /// Writes backup `id` back into the volume at `target`: every chunk checked against its
    /// hash, the zero chunks made holes again (or written as zeros where the target cannot
    /// have holes).
    func restore(_ id: String, to target: String) async throws {
        guard let manifest = try manifest(id) else { throw VolumeDriverError("backup \(id) is not in \(directory) (no manifest)") }
        // Deallocating the whole range first leaves only the stored chunks to write; a target
        // that cannot have holes (a device) gets its zero chunks written.
        let punched = (try? await Command.check("fallocate", ["--punch-hole", "--keep-size", "--offset", "0",
                                                               "--length", "\(manifest.sizeBytes)", target])) != nil
        try await thread.run { try self.restoreNow(manifest, to: target, punched: punched) }
    }

    private func restoreNow(_ manifest: Manifest, to target: String, punched: Bool) throws {
        let id = manifest.backupID
        let fd = open(target, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw VolumeDriverError("cannot write \(target): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let zeros = Data(count: manifest.chunkSize)
        for (index, chunk) in manifest.chunks.enumerated() {
            let offset = UInt64(index) * UInt64(manifest.chunkSize)
            let length = Int(min(UInt64(manifest.chunkSize), manifest.sizeBytes - offset))
            let bytes: Data
            if let chunk {
                guard let stored = FileManager.default.contents(atPath: directory + "/" + chunk.object) else {
                    throw VolumeDriverError("backup \(id) misses its object \(chunk.object)")
                }
                guard SHA256.hash(data: stored).map({ String(format: "%02x", $0) }).joined() == chunk.sha256 else {
                    throw VolumeDriverError("backup \(id): object \(chunk.object) does not match its hash")
                }
                bytes = stored
            } else if punched {
                continue
            } else {
                bytes = zeros.prefix(length)
            }
            try Self.writeFully(fd, bytes, at: offset, target: target)
        }
        guard fsync(fd) == 0 else { throw VolumeDriverError("cannot flush \(target): \(String(cString: strerror(errno)))") }
    }

    /// Removes backup `id`'s directory; one already gone is not an error.
    func delete(_ id: String) async throws {
        try await thread.run {
            guard FileManager.default.fileExists(atPath: self.folder(id)) else { return }
            try FileManager.default.removeItem(atPath: self.folder(id))
        }
    }

    // MARK: Files

    /// `lseek`'s SEEK_DATA (Linux): the next offset holding data.
    static let seekData: Int32 = 3

    static func readFully(_ fd: Int32, into buffer: inout [UInt8], length: Int, at offset: UInt64, source: String) throws {
        var done = 0
        while done < length {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, length - done, off_t(offset) + off_t(done)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw VolumeDriverError("cannot read \(source) at \(offset): \(count < 0 ? String(cString: strerror(errno)) : "end of file")") }
            done += count
        }
    }

    static func writeFully(_ fd: Int32, _ data: Data, at offset: UInt64, target: String) throws {
        var done = 0
        while done < data.count {
            let count = data.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, data.count - done, off_t(offset) + off_t(done)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw VolumeDriverError("cannot write \(target) at \(offset): \(String(cString: strerror(errno)))") }
            done += count
        }
    }

    /// Writes a file whole under a temporary name, then renames it into place.
    static func write(_ data: Data, to path: String) throws {
        let partial = path + ".partial"
        guard FileManager.default.createFile(atPath: partial, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw VolumeDriverError("cannot write \(partial): \(String(cString: strerror(errno)))")
        }
        guard rename(partial, path) == 0 else {
            unlink(partial)
            throw VolumeDriverError("cannot move \(partial) into place: \(String(cString: strerror(errno)))")
        }
    }
}
