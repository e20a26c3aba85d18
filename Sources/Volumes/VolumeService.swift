import Contracts
import Foundation
import Hosts
import Images
import PetrelCore
import SQLKit
import Store

/// Cinder on the controller: volume types, volumes and where they are placed, the backends
/// the nodes report, and the quotas. The database is the truth; each change is one
/// transaction, after which the node holding the volume hears what to do (`send`).
public struct VolumeService: Sendable {
    public struct Settings: Sendable {
        public var quotaDefaults: [String: Int]
        /// `[DEFAULT] default_volume_type`.
        public var defaultTypeName: String
        /// `[DEFAULT] storage_availability_zone`.
        public var availabilityZone: String
        /// `[DEFAULT] message_ttl`: seconds a user message is kept.
        public var messageTTL: Int
        public init(quotaDefaults: [String: Int], defaultTypeName: String = "__DEFAULT__", availabilityZone: String = "nova",
                    messageTTL: Int = 2_592_000) {
            self.quotaDefaults = quotaDefaults
            self.defaultTypeName = defaultTypeName
            self.availabilityZone = availabilityZone
            self.messageTTL = messageTTL
        }
    }

    let database: Database
    public let settings: Settings
    /// Which volume services are alive: a volume is placed only on a live one.
    let hosts: HostInventory
    /// Glance: the images volumes are made from and uploaded to (nil: neither is offered).
    let images: ImageService?
    /// Hands a node work on a volume (a cast to `volume.<host>`); throws when it cannot be delivered.
    let send: @Sendable (_ host: String, _ work: VolumeSpec) async throws -> Void
    /// Asks a node where a volume is (a call to `volume.<host>`).
    let connect: @Sendable (_ host: String, _ volume: VolumeSpec) async throws -> VolumeConnection.Result
    /// Hands a node work on a snapshot (a cast to `volume.<host>`).
    let sendSnapshot: @Sendable (_ host: String, _ work: SnapshotSpec) async throws -> Void
    /// Hands a node work on a backup (a cast to `volume.<host>`).
    let sendBackup: @Sendable (_ host: String, _ work: BackupSpec) async throws -> Void
    /// Has a node export a volume over iSCSI for one attachment, and end that (calls to
    /// `volume.<host>`); nil: volumes reach only guests on their own node.
    let export: (@Sendable (_ host: String, _ export: VolumeExport) async throws -> ISCSITarget)?
    let unexport: (@Sendable (_ host: String, _ export: VolumeExport) async throws -> Void)?

    public static let volumeBinary = "cinder-volume"

    public init(database: Database, settings: Settings, hosts: HostInventory, images: ImageService? = nil,
                connect: @escaping @Sendable (_ host: String, _ volume: VolumeSpec) async throws -> VolumeConnection.Result,
                sendSnapshot: @escaping @Sendable (_ host: String, _ work: SnapshotSpec) async throws -> Void,
                sendBackup: @escaping @Sendable (_ host: String, _ work: BackupSpec) async throws -> Void,
                export: (@Sendable (_ host: String, _ export: VolumeExport) async throws -> ISCSITarget)? = nil,
                unexport: (@Sendable (_ host: String, _ export: VolumeExport) async throws -> Void)? = nil,
                send: @escaping @Sendable (_ host: String, _ work: VolumeSpec) async throws -> Void) {
        self.database = database
        self.export = export
        self.unexport = unexport
        self.settings = settings
        self.hosts = hosts
        self.images = images
        self.connect = connect
        self.sendSnapshot = sendSnapshot
        self.sendBackup = sendBackup
        self.send = send
    }

    // MARK: Volumes

    public struct VolumeCreate: Sendable {
        public var projectID: String
        public var userID: String
        public var size: Int
        public var name: String?
        public var description: String?
        /// A type's id or name; nil: the default type.
        public var type: String?
        public var availabilityZone: String?
        public var metadata: [String: String] = [:]
        /// Start from a snapshot's or another volume's bytes (placed on its backend).
        public var snapshotID: String?
        public var sourceVolumeID: String?
        /// Start from an image's bytes (Cinder's `imageRef`).
        public var imageID: String?
        /// The API request asking (for the user messages a failure leaves).
        public var requestID: String?
        /// Whether the caller is an administrator (who sees every image).
        public var isAdmin = false
        /// Only a backend of this node will do (a server's volume, on the server's host while
        /// volumes are reachable only from their own node).
        public var host: String?
        public init(projectID: String, userID: String, size: Int) {
            self.projectID = projectID
            self.userID = userID
            self.size = size
        }
    }

    /// Creates a volume: checks the quota, places it on a live backend with room (in the same
    /// transaction, so two creates cannot both take the last space), then asks the node to make
    /// it. With no backend that fits, the volume is kept in `error` with the reason, as Cinder does.
    public func create(_ request: VolumeCreate) async throws -> Volume {
        guard request.size >= 1 else {
            throw VolumeFailure.invalid("Invalid input received: Volume size '\(request.size)' must be an integer and greater than 0")
        }
        if let zone = request.availabilityZone, zone != settings.availabilityZone {
            throw VolumeFailure.invalid("Invalid input received: Availability zone '\(zone)' is invalid.")
        }
        let live = try await liveVolumeHosts().filter { host in request.host.map { $0 == host } ?? true }
        // A volume from a snapshot or a volume goes where its source is, with the source's type
        // unless one is named.
        var found: (host: String, backend: String, type: String, size: Int)?
        if let id = request.snapshotID {
            let snapshot = try await snapshot(id, projectID: request.projectID)
            guard snapshot.status == "available" else {
                throw VolumeFailure(400, "Invalid snapshot: Originating snapshot status must be one of 'available' values")
            }
            found = (snapshot.host, snapshot.backend, snapshot.volumeTypeID, snapshot.size)
        } else if let id = request.sourceVolumeID {
            let source = try await volume(id, projectID: request.projectID)
            guard [VolumeStatus.available, VolumeStatus.inUse].contains(source.status) else {
                throw VolumeFailure.invalidVolume("Volume \(id) status must be available or in-use, but current status is: \(source.status).")
            }
            found = (source.host, source.backend, source.volumeTypeID, source.size)
        }
        let origin = found
        let image: Image?
        if let id = request.imageID {
            image = try await imageForVolume(id, size: request.size, projectID: request.projectID, isAdmin: request.isAdmin)
        } else {
            image = nil
        }
        if let origin, request.size < origin.size {
            throw VolumeFailure.invalid("Invalid input received: Volume size '\(request.size)'GB cannot be smaller than the \(request.snapshotID != nil ? "snapshot" : "source volume") size \(origin.size)GB. They must be >= original size.")
        }
        let type = try await volumeType(request.type ?? origin?.type ?? settings.defaultTypeName, projectID: request.projectID)
        let volume: Volume = try await database.transaction { sql in
            try await checkQuota(sql, project: request.projectID, type: type.name, volumes: 1, gigabytes: request.size)
            let backend: VolumeBackend?
            if let origin {
                backend = live.contains(origin.host) ? try await backends(sql).first { $0.host == origin.host && $0.name == origin.backend } : nil
            } else {
                backend = try await place(sql, size: request.size, type: type, liveHosts: live)
            }
            let time = now()
            var volume = Volume(
                id: UUID().uuidString.lowercased(), projectID: request.projectID, userID: request.userID, name: request.name,
                description: request.description, size: request.size,
                status: backend == nil ? VolumeStatus.error : VolumeStatus.creating, host: backend?.host ?? "",
                backend: backend?.name ?? "", volumeTypeID: type.id, availabilityZone: settings.availabilityZone, bootable: false,
                metadata: request.metadata, imageMetadata: image.map(Self.imageMetadata) ?? [:], sourceVolID: request.sourceVolumeID,
                snapshotID: request.snapshotID, imageID: image?.id,
                fault: backend == nil ? "No valid backend was found. No weighed backends available" : nil,
                createdAt: time, updatedAt: time)
            // A volume made from an image is bootable, as Cinder marks it.
            if image != nil { volume.bootable = true }
            volume.pool = backend?.backendName ?? ""
            try await Tables.volumes.insert(sql, VolumeRow(volume))
            if backend == nil {
                try await recordMessage(sql, projectID: volume.projectID, resourceID: volume.id, action: .scheduleAllocateVolume,
                                        detail: .noBackendAvailable, requestID: request.requestID)
            }
            return volume
        }
        guard volume.status == VolumeStatus.creating else { return volume }
        return try await dispatch(volume, from: VolumeStatus.creating)
    }

    /// Hands the node the work a volume's new status asks for; when the node's queue cannot
    /// be reached the volume goes to the status's error with the reason.
    func dispatch(_ volume: Volume, from status: String) async throws -> Volume {
        do {
            try await send(volume.host, Self.spec(volume, status: status))
            return volume
        } catch {
            let failed = status == VolumeStatus.deleting ? VolumeStatus.errorDeleting
                : status == VolumeStatus.extending ? VolumeStatus.errorExtending
                : status == VolumeStatus.uploading ? "upload_failed" : VolumeStatus.error
            try await apply(VolumeUpdate.Arguments(volumeID: volume.id, host: volume.host, from: status, outcome: failed,
                                                   reason: "the volume service of \(volume.host) could not be reached: \(error)"))
            return try await self.volume(volume.id, projectID: nil)
        }
    }

    /// What a node is told of a volume.
    static func spec(_ volume: Volume, status: String? = nil) -> VolumeSpec {
        VolumeSpec(id: volume.id, backend: volume.backend, sizeGB: volume.size, status: status ?? volume.status, source: source(volume),
                   upload: volume.upload)
    }

    /// Where a volume's first bytes come from: a snapshot, another volume, or an image.
    static func source(_ volume: Volume) -> VolumeSource? {
        if let id = volume.snapshotID { return VolumeSource(kind: "snapshot", id: id) }
        if let id = volume.sourceVolID { return VolumeSource(kind: "volume", id: id) }
        if let id = volume.imageID {
            return VolumeSource(kind: "image", id: id, diskFormat: volume.imageMetadata["disk_format"], checksum: volume.imageMetadata["checksum"])
        }
        return nil
    }

    // MARK: Images

    /// The image a volume is made from, by Cinder's rules: one the caller may see, active, and
    /// fitting the volume (its size and its `min_disk`).
    func imageForVolume(_ id: String, size: Int, projectID: String, isAdmin: Bool) async throws -> Image {
        guard let images else { throw VolumeFailure.invalid("Invalid input received: this cloud has no image service to make volumes from") }
        let invalid = VolumeFailure.invalid("Invalid image identifier or unable to access requested image.")
        let image: Image
        do {
            image = try await images.get(id)
        } catch ImageService.Failure.notFound {
            throw invalid
        }
        guard isAdmin || image.visibility == "public" || image.visibility == "community" || image.owner == projectID else { throw invalid }
        guard image.status == "active" else { throw VolumeFailure.invalid("Invalid input received: Image \(id) is not active.") }
        let imageGB = Int(((image.virtualSize ?? image.size ?? 0) + (1 << 30) - 1) >> 30)
        guard imageGB <= size else {
            throw VolumeFailure.invalid("Invalid input received: Size of specified image \(imageGB)GB is larger than volume size \(size)GB.")
        }
        guard image.minDisk <= size else {
            throw VolumeFailure.invalid("Invalid input received: Volume size \(size)GB cannot be smaller than the image minDisk size \(image.minDisk)GB.")
        }
        return image
    }

    /// Cinder's `volume_image_metadata` of a volume made from `image`: the image's own
    /// properties and its core fields.
    static func imageMetadata(_ image: Image) -> [String: String] {
        var metadata = image.properties
        metadata["image_id"] = image.id
        metadata["image_name"] = image.name ?? ""
        metadata["checksum"] = image.checksum
        metadata["container_format"] = image.containerFormat
        metadata["disk_format"] = image.diskFormat
        metadata["min_disk"] = String(image.minDisk)
        metadata["min_ram"] = String(image.minRam)
        metadata["size"] = image.size.map { String($0) }
        return metadata
    }

    /// The core fields of `volume_image_metadata`, which an uploaded image gets from Glance itself.
    static let coreImageFields: Set<String> = ["image_id", "image_name", "checksum", "container_format", "disk_format", "min_disk",
                                               "min_ram", "size", "os_hash_algo", "os_hash_value", "os_hidden"]

    public struct ImageUpload: Sendable {
        public var imageName: String
        public var diskFormat = "raw"
        public var containerFormat = "bare"
        public var visibility = "private"
        public var protected = false
        /// Upload an in-use volume too.
        public var force = false
        public init(imageName: String) { self.imageName = imageName }
    }

    /// Cinder's upload to image: a queued image of the volume's project, then the volume goes to
    /// `uploading` and its node writes its bytes into the image; the volume goes back to its
    /// status when the node is done (the image then active), or failed (the image removed).
    public func uploadToImage(_ id: String, projectID: String?, _ upload: ImageUpload) async throws -> (volume: Volume, image: Image) {
        guard let images else { throw VolumeFailure.invalid("Invalid input received: this cloud has no image service to upload to") }
        guard ImageService.diskFormats.contains(upload.diskFormat) else {
            throw VolumeFailure.invalid("Invalid input received: Invalid disk-format '\(upload.diskFormat)' is specified. Allowed disk-formats are \(ImageService.diskFormats.sorted().joined(separator: ", ")).")
        }
        guard ImageService.containerFormats.contains(upload.containerFormat) else {
            throw VolumeFailure.invalid("Invalid input received: Invalid container-format '\(upload.containerFormat)' is specified. Allowed container-formats are \(ImageService.containerFormats.sorted().joined(separator: ", ")).")
        }
        @Sendable func check(_ volume: Volume) throws {
            guard volume.status == VolumeStatus.available || volume.status == VolumeStatus.inUse else {
                throw VolumeFailure.invalidVolume("Volume status must be available/in-use.")
            }
            guard volume.status == VolumeStatus.available || upload.force else { throw VolumeFailure.invalidVolume("Volume status is in-use.") }
        }
        let current = try await volume(id, projectID: projectID)
        try check(current)
        var image = Image.queued(id: UUID().uuidString.lowercased(), name: upload.imageName, owner: current.projectID,
                                 visibility: upload.visibility, diskFormat: upload.diskFormat, containerFormat: upload.containerFormat,
                                 minDisk: current.size, properties: current.imageMetadata.filter { !Self.coreImageFields.contains($0.key) })
        image.protected = upload.protected
        image = try await images.create(image)
        let imageID = image.id
        let uploading: Volume
        do {
            uploading = try await database.transaction { sql in
                var volume = try await self.volume(sql, id, projectID: projectID, locked: true)
                try check(volume)
                volume.previousStatus = volume.status
                volume.status = VolumeStatus.uploading
                volume.upload = VolumeImageUpload(imageID: imageID, diskFormat: upload.diskFormat)
                volume.updatedAt = now()
                try await Tables.volumes.update(sql, id: id, VolumeRow(volume))
                return volume
            }
        } catch {
            try? await removeImage(imageID)
            throw error
        }
        return (try await dispatch(uploading, from: VolumeStatus.uploading), image)
    }

    /// Removes an image an upload did not fill (even a protected one: the user never got it).
    func removeImage(_ id: String) async throws {
        guard let images, let image = try? await images.get(id), image.status != "active" else { return }
        if image.protected { _ = try await images.change(id) { $0.protected = false } }
        try await images.delete(id)
    }

    /// The hosts whose volume service is up and enabled.
    /// The nodes whose volume service is up and enabled.
    public func liveVolumeHosts() async throws -> Set<String> {
        Set(try await hosts.services { $0.binary == Self.volumeBinary }.filter { $0.up && $0.enabled }.map(\.host))
    }

    /// The backend a new volume of `size` GB goes to: on a live host, matching the type's
    /// `volume_backend_name`, with room (thin: within the over-subscription ratio; thick: within
    /// the free space less what is still being created there), the one with the most room.
    func place(_ sql: any SQLDatabase, size: Int, type: VolumeType, liveHosts: Set<String>) async throws -> VolumeBackend? {
        let wanted = type.extraSpecs["volume_backend_name"]
        var best: (backend: VolumeBackend, room: Double)?
        for var backend in try await backends(sql) where liveHosts.contains(backend.host) {
            if let wanted, wanted != backend.backendName { continue }
            let reserved = backend.totalGB * Double(backend.reservedPercentage) / 100
            let room: Double
            if backend.thin {
                // Virtual room (Cinder's thin check), while some real space is left above the reserve.
                room = backend.freeGB > reserved ? backend.totalGB * backend.maxOverSubscriptionRatio - Double(backend.provisionedGB) : 0
            } else {
                let pending = try await sql.raw("""
                    SELECT COALESCE(SUM(size), 0) AS n FROM volumes
                    WHERE host = \(bind: backend.host) AND backend = \(bind: backend.name) AND status = 'creating'
                    """).first()!.decode(column: "n", as: Int.self)
                room = backend.freeGB - reserved - Double(pending)
            }
            guard room >= Double(size), best.map({ room > $0.room }) ?? true else { continue }
            best = (backend, room)
        }
        return best?.backend
    }

    public func volumes(projectID: String?) async throws -> [Volume] {
        try await database.withConnection { sql in
            let rows: [VolumeRow]
            if let projectID {
                rows = try await Tables.volumes.all(sql, where: "project_id = \(bind: projectID)", orderBy: "created_at DESC, id DESC")
            } else {
                rows = try await Tables.volumes.all(sql, where: "1 = 1", orderBy: "created_at DESC, id DESC")
            }
            let pools = try await poolNames(sql)
            return rows.map { row in
                var volume = row.value
                volume.pool = pools["\(volume.host)@\(volume.backend)"] ?? ""
                return volume
            }
        }
    }

    /// One volume, of `projectID` when given (another project's is "not found").
    public func volume(_ id: String, projectID: String?) async throws -> Volume {
        try await database.withConnection { sql in try await volume(sql, id, projectID: projectID) }
    }

    func volume(_ sql: any SQLDatabase, _ id: String, projectID: String?, locked: Bool = false) async throws -> Volume {
        guard let row = locked ? try await Tables.volumes.lockedGet(sql, id: id) : try await Tables.volumes.get(sql, id: id),
              projectID == nil || row.projectId == projectID else {
            throw VolumeFailure.volumeNotFound(id)
        }
        var volume = row.value
        volume.pool = try await poolNames(sql)["\(volume.host)@\(volume.backend)"] ?? ""
        return volume
    }

    func poolNames(_ sql: any SQLDatabase) async throws -> [String: String] {
        Dictionary(try await Tables.backends.all(sql).map { ("\($0.host)@\($0.backend)", $0.backendName) }) { a, _ in a }
    }

    public struct VolumeChange: Sendable {
        public var name: String??
        public var description: String??
        public var metadata: [String: String]?
        public var bootable: Bool?
        public init() {}
    }

    public func update(_ id: String, projectID: String?, _ change: VolumeChange) async throws -> Volume {
        try await database.transaction { sql in
            var volume = try await self.volume(sql, id, projectID: projectID, locked: true)
            if let name = change.name { volume.name = name }
            if let description = change.description { volume.description = description }
            if let metadata = change.metadata { volume.metadata = metadata }
            if let bootable = change.bootable { volume.bootable = bootable }
            volume.updatedAt = now()
            try await Tables.volumes.update(sql, id: id, VolumeRow(volume))
            return volume
        }
    }

    /// Deletes a volume: one never placed goes at once; another goes to `deleting` and its node
    /// removes it (the row goes when the node says it is gone). Refused while attached, busy
    /// or (as yet) with snapshots, in Cinder's words.
    public func delete(_ id: String, projectID: String?, force: Bool = false) async throws {
        let deletable: Set<String> = ["available", "error", "error_restoring", "error_extending", "error_managing"]
        let deleting: Volume? = try await database.transaction { sql in
            var volume = try await self.volume(sql, id, projectID: projectID, locked: true)
            guard force || deletable.contains(volume.status) else {
                throw VolumeFailure.invalidVolume("Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.")
            }
            guard try await snapshotCount(sql, volumeID: id) == 0 else {
                throw VolumeFailure.invalidVolume("Volume \(id) still has dependent snapshots.")
            }
            // Not even a forced delete takes a volume from under a guest, as Cinder.
            guard try await Tables.attachments.first(sql, where: [.equals("volume_id", id)]) == nil else {
                throw VolumeFailure(400, "Volume \(id) is still attached, detach volume first.")
            }
            if volume.host.isEmpty {
                _ = try await Tables.volumes.delete(sql, where: [.equals("id", id)])
                return nil
            }
            volume.status = VolumeStatus.deleting
            volume.updatedAt = now()
            try await Tables.volumes.update(sql, id: id, VolumeRow(volume))
            return volume
        }
        if let deleting { _ = try await dispatch(deleting, from: VolumeStatus.deleting) }
    }

    /// Grows an available volume to `newSize` GB (Cinder's `os-extend`), within the quota; an
    /// attached one too when `inUse` (microversion 3.42): once its backend grew it, the guest is
    /// told (`VolumeExtended`) and the volume is in-use again.
    public func extend(_ id: String, projectID: String?, newSize: Int, inUse: Bool = false) async throws {
        let extending: Volume = try await database.transaction { sql in
            var volume = try await self.volume(sql, id, projectID: projectID, locked: true)
            guard volume.status == VolumeStatus.available || (inUse && volume.status == VolumeStatus.inUse) else {
                throw VolumeFailure.invalidVolume(inUse
                    ? "Volume status must be 'available' or 'in-use' to extend, but current status is: \(volume.status)."
                    : "Volume status must be 'available' to extend, but current status is: \(volume.status).")
            }
            guard newSize > volume.size else {
                throw VolumeFailure.invalid("Invalid input received: New size for extend must be greater than current size. (current: \(volume.size), extended: \(newSize)).")
            }
            let type = try await Tables.types.get(sql, id: volume.volumeTypeID)?.name ?? ""
            try await checkQuota(sql, project: volume.projectID, type: type, volumes: 0, gigabytes: newSize - volume.size, perVolume: newSize)
            // The row holds the size asked for while the node works (a reconcile after a crash
            // reads it there); a failed extend puts back the size the node found.
            volume.previousStatus = volume.status
            volume.status = VolumeStatus.extending
            volume.size = newSize
            volume.updatedAt = now()
            try await Tables.volumes.update(sql, id: id, VolumeRow(volume))
            return volume
        }
        _ = try await dispatch(extending, from: VolumeStatus.extending)
    }

    /// Sets a volume's status (an administrator's `os-reset_status`); nothing on the node changes.
    public func resetStatus(_ id: String, status: String) async throws {
        guard VolumeStatus.resettable.contains(status) else {
            throw VolumeFailure.invalid("Invalid input received: Must specify a valid status")
        }
        try await database.transaction { sql in
            var volume = try await self.volume(sql, id, projectID: nil, locked: true)
            volume.status = status
            if status != VolumeStatus.error { volume.fault = nil }
            volume.updatedAt = now()
            try await Tables.volumes.update(sql, id: id, VolumeRow(volume))
        }
    }

    // MARK: The nodes' side

    /// A node's news about the work on a volume; applied only while the volume is still in the
    /// status that work began from.
    /// The user message a failed piece of work on a volume leaves, as Cinder words it.
    static func message(from status: String, outcome: String, fromImage: Bool) -> (MessageAction, MessageDetail)? {
        switch (status, outcome) {
        case (VolumeStatus.creating, VolumeStatus.error):
            return fromImage ? (.copyImageToVolume, .unknownError) : (.createVolumeFromBackend, .driverFailedCreate)
        case (VolumeStatus.extending, VolumeStatus.errorExtending): return (.extendVolume, .driverFailedExtend)
        case (VolumeStatus.uploading, "upload_failed"): return (.copyVolumeToImage, .failedToUploadVolume)
        default: return nil
        }
    }

    @discardableResult
    public func apply(_ update: VolumeUpdate.Arguments, requestID: String? = nil) async throws -> Bool {
        let (applied, upload): (Bool, VolumeImageUpload?) = try await database.transaction { sql in
            guard let row = try await Tables.volumes.lockedGet(sql, id: update.volumeID), row.status == update.from,
                  row.host == update.host else { return (false, nil) }
            if update.outcome == "deleted" {
                _ = try await Tables.volumes.delete(sql, where: [.equals("id", update.volumeID)])
                return (true, nil)
            }
            var volume = row.value
            let upload = volume.upload
            if update.from == VolumeStatus.uploading {
                // Uploaded or not, the volume itself is as it was.
                guard ["uploaded", "upload_failed"].contains(update.outcome) else { return (false, nil) }
                volume.status = volume.previousStatus ?? VolumeStatus.available
                volume.previousStatus = nil
                volume.upload = nil
            } else if update.from == VolumeStatus.extending, update.outcome == VolumeStatus.available {
                // An attached volume that grew is in-use again.
                volume.status = volume.previousStatus == VolumeStatus.inUse ? VolumeStatus.inUse : VolumeStatus.available
                volume.previousStatus = nil
            } else {
                volume.status = update.outcome
            }
            if let size = update.sizeGB { volume.size = size }
            volume.fault = update.reason
            volume.updatedAt = now()
            try await Tables.volumes.update(sql, id: volume.id, VolumeRow(volume))
            if let (action, detail) = Self.message(from: update.from, outcome: update.outcome, fromImage: volume.imageID != nil) {
                try await recordMessage(sql, projectID: volume.projectID, resourceID: volume.id, action: action, detail: detail,
                                        requestID: requestID)
            }
            return (true, upload)
        }
        if applied, update.outcome == "upload_failed", let imageID = upload?.imageID { try? await removeImage(imageID) }
        return applied
    }

    /// Every volume placed on `host` (or those of `ids`), for its node's reconcile.
    public func specs(host: String, ids: [String]? = nil) async throws -> [VolumeSpec] {
        try await database.withConnection { sql in
            try await Tables.volumes.all(sql, where: [.equals("host", host)] + (ids.map { [.inList("id", $0)] } ?? [])).map {
                Self.spec($0.value)
            }
        }
    }

    /// Records the backends a node reports (replacing what it reported before).
    public func recordBackends(host: String, _ reports: [VolumeBackendReport]) async throws {
        let time = now()
        try await database.transaction { sql in
            try await sql.raw("DELETE FROM volume_backends WHERE host = \(bind: host)").run()
            for report in reports {
                try await Tables.backends.insert(sql, VolumeBackendRow(
                    host: host, backend: report.name, backendName: report.backendName, driver: report.driver, thin: report.thin,
                    totalBytes: Int64(clamping: report.totalBytes), freeBytes: Int64(clamping: report.freeBytes),
                    reservedPercentage: report.reservedPercentage, maxOverSubscriptionRatio: report.maxOverSubscriptionRatio,
                    updatedAt: time))
            }
        }
    }

    /// The backends every node reports, with what is placed on each.
    public func backends() async throws -> [VolumeBackend] {
        try await database.withConnection { sql in try await backends(sql) }
    }

    func backends(_ sql: any SQLDatabase) async throws -> [VolumeBackend] {
        var provisioned: [String: Int] = [:]
        for row in try await sql.raw("SELECT host, backend, COALESCE(SUM(size), 0) AS n FROM volumes GROUP BY host, backend").all() {
            let key = "\(try row.decode(column: "host", as: String.self))@\(try row.decode(column: "backend", as: String.self))"
            provisioned[key] = try row.decode(column: "n", as: Int.self)
        }
        return try await Tables.backends.all(sql, orderBy: "host").map { row in
            var backend = row.value
            backend.provisionedGB = provisioned["\(row.host)@\(row.backend)"] ?? 0
            return backend
        }
    }
}
