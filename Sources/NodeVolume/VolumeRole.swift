import Contracts
import Foundation
import Logging
import NodeCore
import PetrelCore
import RPC
import TgtDriver

/// The volume service as one of the node's services (cinder-volume): its RPC queue
/// (`volume.<host>`), the backends of `[DEFAULT] enabled_backends`, and their capacity in the
/// node's report. The controller's database says what each volume should be; the node
/// converges each one it holds (at start, on every message, and every `reconcileInterval`, so
/// a lost message or a crash mid-work is finished by the next pass).
public final class VolumeRole: NodeService {
    public let name = "volume"
    public let reports = [ServiceReport(binary: "cinder-volume", topic: VolumeTopic.name),
                          ServiceReport(binary: "cinder-backup", topic: "backup")]

    public struct Backend: Sendable {
        public var settings: PetrelConfig.VolumeBackendSettings
        public var driver: any VolumeDriver
        public init(settings: PetrelConfig.VolumeBackendSettings, driver: any VolumeDriver) {
            self.settings = settings
            self.driver = driver
        }
    }

    let host: String
    let backends: [String: Backend]
    let client: RPCClient
    let server: RPCServer
    let logger: Logger
    let locks = KeyedLocks()
    /// Each backend's capacity as last measured: at start, after each piece of work, and every
    /// `capacityInterval`. The node's report reads it and never waits for a measurement (an LVM
    /// scan can take seconds under load, and a late report makes the service look dead).
    let capacities = Capacities()
    let capacityInterval: Duration = .seconds(10)
    let reconcileInterval: Duration
    /// The image API as the node's service user: images into volumes, volumes into images
    /// (nil without a `[service_user]`: both are refused with that reason).
    let images: (any ImageTransfer)?
    /// Where downloaded images and images being uploaded wait (emptied at start).
    let scratchDirectory: String
    /// The backups of this node's volumes (`[backup] directory`).
    let backups: BackupStore
    /// tgtd, which exports volumes to guests on other hosts.
    let tgt: Tgt
    /// The node's own address: the portal's when a backend names none.
    let nodeAddress: String?
    let wantedExports = WantedExports()

    public init(context: NodeServiceContext, backends: [Backend], images: (any ImageTransfer)? = nil,
                scratchDirectory: String = NSTemporaryDirectory() + "petrel-volume-transfers",
                backupDirectory: String = NSTemporaryDirectory() + "petrel-backups", reconcileInterval: Duration = .seconds(60),
                nodeAddress: String? = nil, tgt: Tgt = Tgt()) {
        host = context.host
        self.nodeAddress = nodeAddress
        self.tgt = tgt
        self.backends = Dictionary(backends.map { ($0.settings.name, $0) }) { a, _ in a }
        client = context.client
        logger = context.logger
        self.images = images
        self.scratchDirectory = scratchDirectory
        backups = BackupStore(directory: backupDirectory)
        self.reconcileInterval = reconcileInterval
        server = RPCServer(link: context.link, topic: VolumeTopic.name, host: context.host, logger: context.logger)
    }

    public func start() async throws {
        for backend in backends.values.sorted(by: { $0.settings.name < $1.settings.name }) {
            try await backend.driver.prepare()
            logger.info("volume backend ready", metadata: [
                "backend": "\(backend.settings.name)", "driver": "\(backend.driver.info.name)",
                "volume_backend_name": "\(backend.settings.backendName)",
            ])
        }
        try? FileManager.default.removeItem(atPath: scratchDirectory)
        try FileManager.default.createDirectory(atPath: scratchDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try FileManager.default.createDirectory(atPath: backups.directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        await measureCapacities()
        server.register(VolumeWork.self) { [self] work, context in try await converge(id: work.id, context: context) }
        server.register(VolumeConnection.self) { [self] volume, _ in try await connection(volume) }
        server.register(ExportVolume.self) { [self] export, _ in try await self.export(export) }
        server.register(UnexportVolume.self) { [self] export, _ in
            try await unexport(export)
            return Nothing()
        }
        server.register(SnapshotWork.self) { [self] work, context in try await converge(id: work.id, context: context) }
        server.register(BackupWork.self) { [self] work, context in try await converge(id: work.id, context: context) }
    }

    /// Converges the volume, snapshot or backup a message names. The message says which; the
    /// controller's database says what it should be (a late or repeated message cannot bring
    /// back a deleted one).
    func converge(id: String, context: RequestContext) async throws -> Nothing {
        let current = try await client.call(VolumesOnHost.self, .init(host: host, ids: [id]), topic: VolumesOnHost.topic,
                                            context: context, timeout: .seconds(30))
        for spec in current.snapshots ?? [] { await converge(spec, context: context) }
        for spec in current.volumes { await converge(spec, context: context) }
        for spec in current.backups ?? [] { await converge(spec, context: context) }
        await measureCapacities()
        return Nothing()
    }

    /// Where a volume is on this host, for a guest here (Cinder's local connection).
    func connection(_ spec: VolumeSpec) async throws -> VolumeConnection.Result {
        guard let backend = backends[spec.backend] else { throw VolumeDriverError("backend \(spec.backend) is not enabled on \(host)") }
        let name = VolumeNaming.name(spec.id)
        guard try await backend.driver.size(name) != nil else {
            throw VolumeDriverError("volume \(spec.id) is not on backend \(spec.backend) of \(host)")
        }
        return VolumeConnection.Result(path: backend.driver.path(name), block: backend.driver.info.block)
    }

    public func reconcile() async throws {
        // Replies to our calls come through the broker: wait until it is reached.
        await server.ready()
        try await reconcileAll()
    }

    func reconcileAll() async throws {
        let asked = ContinuousClock.now
        let state = try await client.call(VolumesOnHost.self, .init(host: host), topic: VolumesOnHost.topic, timeout: .seconds(30))
        // Snapshots first: a volume being made from one needs it.
        for spec in state.snapshots ?? [] { await converge(spec, context: RequestContext()) }
        for spec in state.volumes { await converge(spec, context: RequestContext()) }
        for spec in state.backups ?? [] { await converge(spec, context: RequestContext()) }
        if let exports = state.exports {
            await convergeExports(await wantedExports.replace(with: exports, asOf: asked), removeOthers: true)
        }
        await measureCapacities()
    }

    /// Measures every backend's capacity; a backend that cannot say it is left out of the
    /// reports (and gets no new volumes) until it can.
    func measureCapacities() async {
        for backend in backends.values {
            do {
                await capacities.set(backend.settings.name, try await backend.driver.capacity())
            } catch {
                await capacities.set(backend.settings.name, nil)
                logger.warning("volume backend capacity unavailable", metadata: ["backend": "\(backend.settings.name)", "error": "\(error)"])
            }
        }
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.server.run() }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: self.capacityInterval)
                    await self.measureCapacities()
                    // A restarted tgtd has no targets: make the wanted ones again.
                    await self.convergeExports(await self.wantedExports.all, removeOthers: false)
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: self.reconcileInterval)
                    do { try await self.reconcileAll() } catch is CancellationError { return } catch {
                        self.logger.warning("volume reconcile failed", metadata: ["error": "\(error)"])
                    }
                }
            }
            _ = try await group.next()
            group.cancelAll()
        }
    }

    public func contribute(to report: inout ReportState.Arguments) async {
        var reports: [VolumeBackendReport] = []
        for backend in backends.values.sorted(by: { $0.settings.name < $1.settings.name }) {
            guard let capacity = await capacities.get(backend.settings.name) else { continue }
            reports.append(VolumeBackendReport(
                name: backend.settings.name, backendName: backend.settings.backendName, driver: backend.driver.info.name,
                thin: backend.driver.info.thin, totalBytes: capacity.totalBytes, freeBytes: capacity.freeBytes,
                reservedPercentage: backend.settings.reservedPercentage,
                maxOverSubscriptionRatio: backend.settings.maxOverSubscriptionRatio))
        }
        report.volumeBackends = reports
    }

    /// Brings one volume to what its status asks, and tells the controller how it went.
    func converge(_ spec: VolumeSpec, context: RequestContext) async {
        await locks.with(spec.id) {
            let metadata: Logger.Metadata = ["volume": "\(spec.id)", "status": "\(spec.status)", "request_id": "\(context.requestID)"]
            guard let backend = backends[spec.backend] else {
                logger.error("volume on a backend this node does not run", metadata: metadata.merging(["backend": "\(spec.backend)"]) { $1 })
                if ["creating", "extending", "deleting"].contains(spec.status) {
                    await tell(spec, outcome: spec.status == "deleting" ? "error_deleting" : spec.status == "extending" ? "error_extending" : "error",
                               reason: "backend \(spec.backend) is not enabled on \(host)", context: context)
                }
                return
            }
            let driver = backend.driver, name = VolumeNaming.name(spec.id)
            let started = ContinuousClock.now
            switch spec.status {
            case "creating":
                do {
                    if let source = spec.source, source.kind == "image" {
                        try await fromImage(source, to: name, sizeGB: spec.sizeGB, driver: driver)
                    } else if let source = spec.source {
                        try await driver.copy(source.name, to: name, sizeGB: spec.sizeGB)
                    } else {
                        try await driver.create(name, sizeGB: spec.sizeGB)
                    }
                    logger.info("volume created", metadata: metadata.merging([
                        "size_gb": "\(spec.sizeGB)", "backend_us": "\(Self.microseconds(ContinuousClock.now - started))",
                    ]) { $1 })
                    await tell(spec, outcome: "available", size: spec.sizeGB, context: context)
                } catch {
                    try? await driver.delete(name)
                    logger.error("volume create failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                    await tell(spec, outcome: "error", reason: "\(error)", context: context)
                }
            case "extending":
                do {
                    try await driver.extend(name, sizeGB: spec.sizeGB)
                    logger.info("volume extended", metadata: metadata.merging(["size_gb": "\(spec.sizeGB)"]) { $1 })
                    await tell(spec, outcome: "available", size: spec.sizeGB, context: context)
                } catch {
                    let actual = (try? await driver.size(name)).flatMap { $0 }.map { Int($0 >> 30) }
                    logger.error("volume extend failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                    await tell(spec, outcome: "error_extending", size: actual, reason: "\(error)", context: context)
                }
            case "deleting":
                do {
                    try await driver.delete(name)
                    logger.info("volume deleted", metadata: metadata)
                    await tell(spec, outcome: "deleted", context: context)
                } catch {
                    logger.error("volume delete failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                    await tell(spec, outcome: "error_deleting", reason: "\(error)", context: context)
                }
            case "uploading":
                guard let upload = spec.upload else { return }
                do {
                    try await toImage(name, upload: upload, driver: driver)
                    logger.info("volume uploaded to an image", metadata: metadata.merging([
                        "image": "\(upload.imageID)", "disk_format": "\(upload.diskFormat)",
                        "took_ms": "\(Self.microseconds(ContinuousClock.now - started) / 1000)",
                    ]) { $1 })
                    await tell(spec, outcome: "uploaded", context: context)
                } catch {
                    logger.error("volume upload to an image failed", metadata: metadata.merging([
                        "image": "\(upload.imageID)", "error": "\(error)"]) { $1 })
                    await tell(spec, outcome: "upload_failed", reason: "upload to image \(upload.imageID) failed: \(error)", context: context)
                }
            case "available", "in-use":
                if (try? await driver.size(name)) == .some(nil) {
                    logger.error("volume missing from its backend", metadata: metadata.merging(["path": "\(driver.path(name))"]) { $1 })
                }
            default:
                break
            }
        }
    }

    /// Brings one snapshot to what its status asks (taken, or removed) and tells the controller.
    func converge(_ spec: SnapshotSpec, context: RequestContext) async {
        await locks.with(spec.id) {
            let metadata: Logger.Metadata = ["snapshot": "\(spec.id)", "volume": "\(spec.volumeID)", "status": "\(spec.status)",
                                             "request_id": "\(context.requestID)"]
            guard let backend = backends[spec.backend] else {
                logger.error("snapshot on a backend this node does not run", metadata: metadata)
                return
            }
            let name = VolumeNaming.snapshot(spec.id)
            func tell(_ outcome: String, _ reason: String? = nil) async {
                await deliver(SnapshotUpdate.self, .init(snapshotID: spec.id, host: host, from: spec.status, outcome: outcome, reason: reason),
                              topic: SnapshotUpdate.topic, about: ["snapshot": "\(spec.id)"], context: context)
            }
            switch spec.status {
            case "creating":
                do {
                    // The volume's lock: no extend or delete of it while its bytes are copied.
                    try await locks.with(spec.volumeID) {
                        try await backend.driver.copy(VolumeNaming.name(spec.volumeID), to: name, sizeGB: nil)
                    }
                    logger.info("snapshot created", metadata: metadata)
                    await tell("available")
                } catch {
                    try? await backend.driver.delete(name)
                    logger.error("snapshot failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                    await tell("error", "\(error)")
                }
            case "deleting":
                do {
                    try await backend.driver.delete(name)
                    logger.info("snapshot deleted", metadata: metadata)
                    await tell("deleted")
                } catch {
                    await tell("error_deleting", "\(error)")
                }
            default:
                break
            }
        }
    }

    /// Makes a volume from an image: downloaded into the scratch directory, its md5 checked,
    /// converted onto the backend, the download removed.
    func fromImage(_ source: VolumeSource, to name: String, sizeGB: Int, driver: any VolumeDriver) async throws {
        if try await driver.size(name) != nil { return }
        guard let images else {
            throw VolumeDriverError("no [service_user] is configured: this node cannot download images")
        }
        guard let format = source.diskFormat, ["raw", "qcow2"].contains(format) else {
            throw VolumeDriverError("image \(source.id) has disk format \(source.diskFormat ?? "none"): volumes are made from raw and qcow2 images")
        }
        let download = scratchFile("image-\(source.id)")
        defer { unlink(download) }
        let md5 = try await images.download(image: source.id, to: download)
        if let expected = source.checksum, expected.lowercased() != md5 {
            throw VolumeDriverError("image \(source.id) downloaded with md5 \(md5), but the image service says \(expected)")
        }
        try await driver.importImage(download, format: format, to: name, sizeGB: sizeGB)
    }

    /// Fills a queued image with a volume's bytes, converted to the image's disk format.
    func toImage(_ name: String, upload: VolumeImageUpload, driver: any VolumeDriver) async throws {
        guard let images else {
            throw VolumeDriverError("no [service_user] is configured: this node cannot upload images")
        }
        let file = scratchFile("upload-\(upload.imageID)")
        defer { unlink(file) }
        try await driver.exportImage(name, format: upload.diskFormat, to: file)
        try await images.upload(image: upload.imageID, from: file)
    }

    func scratchFile(_ label: String) -> String {
        scratchDirectory + "/" + label + "." + UUID().uuidString.prefix(8)
    }

    /// Brings one backup to what its status asks (made, written back, or removed) and tells
    /// the controller. A backup reads its volume under the volume's lock (no extend or delete
    /// meanwhile); a restore writes its target volume under that volume's.
    func converge(_ spec: BackupSpec, context: RequestContext) async {
        await locks.with("backup-" + spec.id) {
            let metadata: Logger.Metadata = ["backup": "\(spec.id)", "volume": "\(spec.volumeID)", "status": "\(spec.status)",
                                             "request_id": "\(context.requestID)"]
            func tell(_ outcome: String, objects: Int? = nil, _ reason: String? = nil) async {
                await deliver(BackupUpdate.self, .init(backupID: spec.id, host: host, from: spec.status, outcome: outcome, objectCount: objects,
                                                       reason: reason),
                              topic: BackupUpdate.topic, about: ["backup": "\(spec.id)"], context: context)
            }
            let started = ContinuousClock.now
            switch spec.status {
            case "creating":
                do {
                    guard let backend = backends[spec.backend] else { throw VolumeDriverError("backend \(spec.backend) is not enabled on \(host)") }
                    let parent = try spec.parentID.map { id in
                        guard let manifest = try backups.manifest(id) else { throw VolumeDriverError("the parent backup \(id) is not on \(host)") }
                        return manifest
                    }
                    let objects = try await locks.with(spec.volumeID) {
                        try await backups.create(spec.id, volumeID: spec.volumeID, from: backend.driver.path(VolumeNaming.name(spec.volumeID)),
                                                 parent: parent)
                    }
                    logger.info("backup created", metadata: metadata.merging([
                        "objects": "\(objects)", "incremental": "\(parent != nil)",
                        "took_ms": "\(Self.microseconds(ContinuousClock.now - started) / 1000)"]) { $1 })
                    await tell("available", objects: objects)
                } catch {
                    try? await backups.delete(spec.id)
                    logger.error("backup failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                    await tell("error", "\(error)")
                }
            case "restoring":
                guard let target = spec.restoreVolumeID else { return }
                do {
                    guard let name = spec.restoreBackend, let backend = backends[name] else {
                        throw VolumeDriverError("backend \(spec.restoreBackend ?? "none") is not enabled on \(host)")
                    }
                    try await locks.with(target) {
                        let volume = VolumeNaming.name(target)
                        if try await backend.driver.size(volume) == nil {
                            try await backend.driver.create(volume, sizeGB: spec.restoreSizeGB ?? spec.sizeGB)
                        }
                        try await backups.restore(spec.id, to: backend.driver.path(volume))
                    }
                    logger.info("backup restored", metadata: metadata.merging([
                        "target": "\(target)", "took_ms": "\(Self.microseconds(ContinuousClock.now - started) / 1000)"]) { $1 })
                    await tell("restored")
                } catch {
                    logger.error("backup restore failed", metadata: metadata.merging(["target": "\(target)", "error": "\(error)"]) { $1 })
                    await tell("restore_failed", "\(error)")
                }
            case "deleting":
                do {
                    try await backups.delete(spec.id)
                    logger.info("backup deleted", metadata: metadata)
                    await tell("deleted")
                } catch {
                    logger.error("backup delete failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                    await tell("error_deleting", "\(error)")
                }
            default:
                break
            }
        }
    }

    static func microseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
    }

    func tell(_ spec: VolumeSpec, outcome: String, size: Int? = nil, reason: String? = nil, context: RequestContext) async {
        await deliver(VolumeUpdate.self, .init(volumeID: spec.id, host: host, from: spec.status, outcome: outcome, sizeGB: size, reason: reason),
                      topic: VolumeUpdate.topic, about: ["volume": "\(spec.id)"], context: context)
    }

    /// Tells the controller how a piece of work went. Undelivered, it is only logged: the next
    /// reconcile redoes the (idempotent) work and tells again.
    func deliver<M: RPCMethod>(_ method: M.Type, _ arguments: M.Arguments, topic: String, about: Logger.Metadata,
                               context: RequestContext) async {
        do {
            try await client.cast(method, arguments, topic: topic, context: context, patience: .seconds(30))
        } catch {
            logger.warning("\(M.name) not delivered", metadata: about.merging(["error": "\(error)"]) { $1 })
        }
    }
}

/// The last capacity measured per backend.
actor Capacities {
    private var measured: [String: VolumeCapacity] = [:]
    func set(_ backend: String, _ capacity: VolumeCapacity?) { measured[backend] = capacity }
    func get(_ backend: String) -> VolumeCapacity? { measured[backend] }
}
