import Crypto
import Foundation
import Store

/// An image as the API shows it, with its properties and tags decoded. Its database row
/// stays inside Images; the fields a user may change are settable.
public struct Image: Sendable, Equatable {
    var row: ImageRow
    public var properties: [String: String]
    public var tags: [String]

    public var id: String { row.id }
    /// queued, saving, active, killed, deleted.
    public var status: String { row.status }
    public var size: Int64? { row.size }
    public var virtualSize: Int64? { row.virtualSize }
    public var checksum: String? { row.checksum }
    public var osHashAlgo: String? { row.osHashAlgo }
    public var osHashValue: String? { row.osHashValue }
    /// Unix milliseconds.
    public var createdAt: Int64 { row.createdAt }
    public var updatedAt: Int64 { row.updatedAt }
    public var name: String? {
        get { row.name }
        set { row.name = newValue }
    }
    /// private, shared, community, public.
    public var visibility: String {
        get { row.visibility }
        set { row.visibility = newValue }
    }
    public var protected: Bool {
        get { row.protected }
        set { row.protected = newValue }
    }
    public var osHidden: Bool {
        get { row.osHidden }
        set { row.osHidden = newValue }
    }
    public var owner: String? {
        get { row.owner }
        set { row.owner = newValue }
    }
    public var diskFormat: String? {
        get { row.diskFormat }
        set { row.diskFormat = newValue }
    }
    public var containerFormat: String? {
        get { row.containerFormat }
        set { row.containerFormat = newValue }
    }
    public var minDisk: Int {
        get { row.minDisk }
        set { row.minDisk = newValue }
    }
    public var minRam: Int {
        get { row.minRam }
        set { row.minRam = newValue }
    }

    init(row: ImageRow, properties: [String: String], tags: [String]) {
        self.row = row
        self.properties = properties
        self.tags = tags
    }

    /// A new image of `owner`, queued for its data: Glance's `POST /v2/images` before its
    /// fields apply (shared, no formats), or a snapshot as Compute starts it.
    public static func queued(id: String, name: String? = nil, owner: String?, visibility: String = "shared", diskFormat: String? = nil,
                              containerFormat: String? = nil, minDisk: Int = 0, properties: [String: String] = [:]) -> Image {
        Image(row: ImageRow(id: id, name: name, status: "queued", visibility: visibility, protected: false, osHidden: false, owner: owner,
                            diskFormat: diskFormat, containerFormat: containerFormat, minDisk: minDisk, minRam: 0, properties: "{}",
                            tags: "[]", createdAt: ImageService.now()),
              properties: properties, tags: [])
    }
}

/// Glance's logic: image records, their bytes in a directory (one file per image, named by
/// id), uploads streamed to disk with size, md5 and sha512 computed on the way and the disk
/// format checked against the bytes.
public final class ImageService: Sendable {
    public enum Failure: Error, Equatable {
        case notFound(String)
        /// The image is not in a state that allows this (e.g. an upload to an active image).
        case conflict(String)
        case invalid(String)
        case protected(String)
        case tooLarge(Int64)
    }

    public static let diskFormats: Set<String> = ["raw", "qcow2"]
    public static let containerFormats: Set<String> = ["bare"]

    let database: Database
    public let directory: String
    public let sizeCap: Int64

    public init(database: Database, directory: String, sizeCap: Int64) throws {
        self.database = database
        self.directory = directory
        self.sizeCap = sizeCap
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    static func decode(_ row: ImageRow) -> Image {
        Image(row: row,
              properties: JSONColumn.decode(row.properties, fallback: [:]), tags: JSONColumn.decode(row.tags, fallback: []))
    }

    static func encoded(_ image: Image) -> ImageRow {
        var row = image.row
        row.properties = JSONColumn.encode(image.properties, fallback: "{}")
        row.tags = JSONColumn.encode(image.tags, fallback: "[]")
        return row
    }

    public func path(of id: String) -> String { directory + "/" + id }

    public func create(_ image: Image) async throws -> Image {
        let row = Self.encoded(image)
        do {
            try await database.withConnection { sql in try await ImageTables.images.insert(sql, row) }
        } catch is DuplicateRowError {
            throw Failure.conflict("An image with identifier \(image.id) already exists")
        }
        return Self.decode(row)
    }

    public func get(_ id: String) async throws -> Image {
        let row = try await database.withConnection { sql in try await ImageTables.images.get(sql, id: id) }
        guard let row, row.status != "deleted" else { throw Failure.notFound(id) }
        return Self.decode(row)
    }

    /// Reads, changes and writes one image in a transaction.
    @discardableResult
    public func change(_ id: String, _ body: @escaping @Sendable (inout Image) throws -> Void) async throws -> Image {
        try await database.transaction { sql in
            guard let row = try await ImageTables.images.get(sql, id: id), row.status != "deleted" else { throw Failure.notFound(id) }
            var image = Self.decode(row)
            try body(&image)
            image.row.updatedAt = Self.now()
            try await ImageTables.images.update(sql, id: id, Self.encoded(image))
            return image
        }
    }

    /// Deletes the record and the file. A protected image is refused.
    public func delete(_ id: String) async throws {
        let image = try await get(id)
        if image.row.protected { throw Failure.protected(id) }
        try await database.withConnection { sql in try await ImageTables.images.delete(sql, where: [.equals("id", id)]) }
        try? FileManager.default.removeItem(atPath: path(of: id))
        try? FileManager.default.removeItem(atPath: path(of: id) + ".partial")
    }

    // MARK: upload

    /// An upload in progress: bytes go to `<id>.partial`, hashed as they pass.
    public final class Upload: @unchecked Sendable {
        let service: ImageService
        let image: Image
        let handle: FileHandle
        var md5 = Insecure.MD5()
        var sha512 = SHA512()
        var size: Int64 = 0
        var head: [UInt8] = []

        init(service: ImageService, image: Image, handle: FileHandle) {
            self.service = service
            self.image = image
            self.handle = handle
        }

        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            size += Int64(bytes.count)
            if size > service.sizeCap { throw Failure.tooLarge(service.sizeCap) }
            if head.count < 512 { head += bytes.prefix(512 - head.count) }
            md5.update(bufferPointer: bytes)
            sha512.update(bufferPointer: bytes)
            try handle.write(contentsOf: bytes)
        }

        /// Checks the format, moves the file in place and makes the image active.
        public func finish() async throws -> Image {
            try handle.synchronize()
            try handle.close()
            let partial = service.path(of: image.id) + ".partial"
            var virtualSize = size
            if image.row.diskFormat == "qcow2" {
                guard head.count >= 32, head[0..<4].elementsEqual([0x51, 0x46, 0x49, 0xFB]) else {
                    throw Failure.invalid("The image's data is not qcow2 (no QFI\\xfb header), but its disk_format is qcow2.")
                }
                virtualSize = head[24..<32].reduce(Int64(0)) { $0 << 8 | Int64($1) }
            }
            try FileManager.default.moveItem(atPath: partial, toPath: service.path(of: image.id))
            let checksum = md5.finalize().map { String(format: "%02x", $0) }.joined()
            let hash = sha512.finalize().map { String(format: "%02x", $0) }.joined()
            let (size, finalVirtualSize) = (size, virtualSize)
            return try await service.change(image.id) { image in
                image.row.status = "active"
                image.row.size = size
                image.row.virtualSize = finalVirtualSize
                image.row.checksum = checksum
                image.row.osHashAlgo = "sha512"
                image.row.osHashValue = hash
            }
        }

        /// Throws the partial file away and puts the image back in `queued`.
        public func abort() async {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: service.path(of: image.id) + ".partial")
            _ = try? await service.change(image.id) { image in
                if image.row.status == "saving" { image.row.status = "queued" }
            }
        }
    }

    /// Starts an upload: only a `queued` image takes data (it becomes `saving`).
    public func beginUpload(_ id: String) async throws -> Upload {
        let image = try await change(id) { image in
            guard image.row.status == "queued" else {
                throw Failure.conflict("Image status transition from \(image.row.status) to saving is not allowed")
            }
            guard image.row.diskFormat != nil, image.row.containerFormat != nil else {
                throw Failure.invalid("Properties disk_format, container_format must be set prior to saving data.")
            }
            image.row.status = "saving"
        }
        let partial = path(of: id) + ".partial"
        guard FileManager.default.createFile(atPath: partial, contents: nil), let handle = FileHandle(forWritingAtPath: partial) else {
            _ = try? await change(id) { $0.row.status = "queued" }
            throw Failure.invalid("Cannot write to the image store \(directory).")
        }
        return Upload(service: self, image: image, handle: handle)
    }

    /// Images left `saving` by a crash go back to `queued` (run at start).
    public func recoverInterruptedUploads() async throws {
        let saving = try await database.withConnection { sql in try await ImageTables.images.all(sql, where: [.equals("status", "saving")]) }
        for row in saving {
            try? FileManager.default.removeItem(atPath: path(of: row.id) + ".partial")
            try await change(row.id) { $0.row.status = "queued" }
        }
    }
}
