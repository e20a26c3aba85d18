import Contracts
import Foundation
import NodeCore
import LibvirtDriver
import Logging
import PetrelCore
import RPC

/// The compute service of a node (nova-compute): builds, runs and deletes the instances
/// the controller places on this host, on whichever hypervisor backend it is given.
///
/// Each instance's operations run one at a time. Every operation first asks the controller
/// for the instance (a stale or redelivered message changes nothing) and is idempotent, so
/// a crash at any point is repaired by redelivery or by the reconciliation at start. A
/// build records the undo of each step as it goes: a failed build leaves nothing behind.
public final class ComputeService: Sendable {
    public struct Settings: Sendable {
        public var host: String
        public var instancesPath: String
        public var domain: InstanceDomain
        public var shutdownTimeout: Duration
        public var softRebootWait: Duration
        public var syncInterval: Duration
        public var unusedImageAge: TimeInterval
        public var imageCacheInterval: Duration

        public init(host: String, instancesPath: String, domain: InstanceDomain, shutdownTimeout: Duration, softRebootWait: Duration,
                    syncInterval: Duration, unusedImageAge: TimeInterval, imageCacheInterval: Duration) {
            self.host = host; self.instancesPath = instancesPath; self.domain = domain; self.shutdownTimeout = shutdownTimeout
            self.softRebootWait = softRebootWait; self.syncInterval = syncInterval; self.unusedImageAge = unusedImageAge
            self.imageCacheInterval = imageCacheInterval
        }
    }

    struct Refused: Error, CustomStringConvertible {
        let description: String
        let retryable: Bool
    }

    let settings: Settings
    let hypervisor: any HypervisorDriver
    let controller: any ComputeController
    let cache: ImageCache
    let cloud: (any ImageTransfer)?
    let locks = KeyedLocks()
    let clock = StampClock()
    let logger: Logger
    /// The node's network service, which wires a guest's networks before it starts (nil: this
    /// node runs none, so it cannot build servers with ports).
    let vifs: (any VIFPlugging)?

    public init(settings: Settings, hypervisor: any HypervisorDriver, controller: any ComputeController, cloud: (any ImageTransfer)?,
                vifs: (any VIFPlugging)? = nil, logger: Logger) {
        self.vifs = vifs
        self.settings = settings
        self.hypervisor = hypervisor
        self.controller = controller
        self.cloud = cloud
        self.logger = logger
        // QEMU runs as its own user: it must be able to reach the disks.
        try? FileManager.default.createDirectory(atPath: settings.instancesPath, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o755])
        cache = ImageCache(directory: settings.instancesPath + "/_base", cloud: cloud, logger: logger)
    }

    var host: String { settings.host }

    func files(_ id: String) -> InstanceFiles { InstanceFiles(root: settings.instancesPath, id: id) }

    /// Registers the node-side compute methods.
    public func register(on server: RPCServer) {
        server.register(BuildInstance.self) { [self] arguments, context in
            await locks.with(arguments.instanceID) { await self.build(arguments.instanceID, context: context) }
            return Nothing()
        }
        server.register(InstanceAction.self) { [self] arguments, context in
            await locks.with(arguments.instanceID) { await self.perform(arguments, context: context) }
            return Nothing()
        }
        server.register(DeleteInstance.self) { [self] arguments, context in
            try await locks.with(arguments.instanceID) { try await self.delete(arguments.instanceID, context: context) }
            return Nothing()
        }
        server.register(ConsoleOutput.self) { [self] arguments, _ in
            ConsoleOutput.Result(output: files(arguments.instanceID).consoleTail(lines: arguments.length))
        }
        registerInterfaces(on: server)
        registerVolumes(on: server)
        registerConsoles(on: server)
        registerDiagnostics(on: server)
    }

    // MARK: controller

    func lookup(_ id: String) async throws -> InstanceSpec? {
        try await controller.instances(on: host, ids: [id]).first
    }

    func report(_ id: String, _ kind: InstanceUpdate.Kind, vmState: VMState?, power: PowerState, endsTask: TaskState? = nil,
                fault: InstanceFault? = nil, context: RequestContext = RequestContext()) async {
        let update = InstanceUpdate.Arguments(instanceID: id, host: host, kind: kind, vmState: vmState, powerState: power,
                                              endsTask: endsTask, fault: fault, stamp: clock.next())
        do {
            try await controller.update(update, context: context)
        } catch {
            logger.error("instance update not delivered", metadata: ["instance": "\(id)", "error": "\(error)"])
        }
    }

    // MARK: build

    public func build(_ id: String, context: RequestContext) async {
        var log = logger
        log[metadataKey: "instance"] = "\(id)"
        log[metadataKey: "request_id"] = "\(context.requestID)"
        let spec: InstanceSpec
        do {
            // A new server, or a shelved one built again from its snapshot (unshelve).
            guard let found = try await lookup(id), found.vmState == .building || found.vmState == .shelvedOffloaded,
                  found.taskState == .spawning else {
                log.info("build skipped: the controller no longer has it building here")
                return
            }
            spec = found
        } catch {
            log.error("cannot read the instance from the controller", metadata: ["error": "\(error)"])
            return
        }
        let started = ContinuousClock.now
        do {
            if try await hypervisor.state(id) == .running {
                await report(id, .taskDone, vmState: .active, power: .running, endsTask: .spawning, context: context)
                return
            }
            // Whatever an interrupted attempt left is rebuilt from scratch.
            try await tearDown(id)
            var prepared = started
            try await Reverter.run(logger: log) { revert in
                try await create(spec, revert: revert)
                prepared = ContinuousClock.now
                try await hypervisor.start(id)
            }
            let running = ContinuousClock.now
            await report(id, .taskDone, vmState: .active, power: .running, endsTask: .spawning, context: context)
            log.info("spawned", metadata: ["prepare_ms": "\(Self.milliseconds(prepared - started))",
                                           "start_ms": "\(Self.milliseconds(running - prepared))"])
        } catch {
            log.warning("build failed", metadata: ["error": "\(error)"])
            let retryable = (error as? Refused)?.retryable ?? true
            do {
                try await controller.buildFailed(.init(instanceID: id, host: host, reason: "\(error)", retryable: retryable),
                                                 context: context)
            } catch {
                log.error("build failure not delivered", metadata: ["error": "\(error)"])
            }
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    /// Disks and the defined (not started) domain of `spec`, each step undone by `revert`
    /// when a later one fails.
    func create(_ spec: InstanceSpec, revert: Reverter) async throws {
        // A server booted from a volume has no image and no local root disk.
        var base: String?
        if spec.rootVolume == nil {
            guard let image = spec.image else {
                throw Refused(description: "Image of instance \(spec.id) could not be found.", retryable: false)
            }
            base = try await cache.fetch(image)
        }
        let files = self.files(spec.id)
        let existed = files.exists
        revert.add(existed ? "remove disks of \(spec.id)" : "remove \(files.directory)") {
            if existed { files.removeDisks() } else { try files.remove() }
        }
        try await files.create(spec, base: base)
        if !spec.nics.isEmpty {
            guard let vifs else {
                throw Refused(description: "this host runs no network service to plug the ports of instance \(spec.id) into", retryable: true)
            }
            var networks: [String] = []
            for nic in spec.nics where !networks.contains(nic.networkID) { networks.append(nic.networkID) }
            try await vifs.plug(networks: networks)
        }
        try await defineDomain(spec, files: files)
        revert.add("undefine \(spec.id)") { try await self.hypervisor.undefine(spec.id) }
    }

    /// Defines the instance's domain, with the CHAP passwords of its volumes on other hosts
    /// where libvirt hands them to QEMU.
    func defineDomain(_ spec: InstanceSpec, files: InstanceFiles, rescue: Bool = false) async throws {
        for volume in spec.volumes ?? [] { try await storeSecret(of: volume) }
        let serialPort = try await serialConsolePort(spec.id)
        try await hypervisor.define(settings.domain.definition(spec, files: files, host: host, serialPort: serialPort, rescue: rescue))
    }

    /// Keeps the CHAP password of a volume reached over iSCSI where libvirt finds it (a volume
    /// on this host needs none).
    func storeSecret(of disk: VolumeDisk) async throws {
        guard let iscsi = disk.iscsi else { return }
        try await hypervisor.setDiskSecret(usage: InstanceDomain.secretUsage(iscsi), password: iscsi.password)
    }

    /// Forgets the CHAP password of a volume reached over iSCSI.
    func forgetSecret(of disk: VolumeDisk) async throws {
        guard let iscsi = disk.iscsi else { return }
        try await hypervisor.removeDiskSecret(usage: InstanceDomain.secretUsage(iscsi))
    }

    /// Removes the domain (with its managed-save image and the passwords of its iSCSI disks)
    /// and the instance's files. Idempotent.
    func tearDown(_ id: String) async throws {
        if let state = try await hypervisor.state(id) {
            let secrets = InstanceDomain.secretUsages(in: try await hypervisor.definition(id) ?? "")
            if state != .shutOff { try await hypervisor.destroy(id) }
            try await hypervisor.undefine(id)
            for usage in secrets { try await hypervisor.removeDiskSecret(usage: usage) }
        }
        try files(id).remove()
    }

    /// Powers the domain off at once and drops any saved memory: what a hard reboot and a
    /// rebuild start from.
    func destroyDroppingSave(_ id: String) async throws {
        try await hypervisor.destroy(id)
        if try await hypervisor.hasManagedSave(id) { try await hypervisor.removeManagedSave(id) }
    }

    // MARK: actions

    public func perform(_ request: InstanceAction.Arguments, context: RequestContext) async {
        var log = logger
        log[metadataKey: "instance"] = "\(request.instanceID)"
        log[metadataKey: "request_id"] = "\(context.requestID)"
        let task = request.action.task
        let spec: InstanceSpec
        do {
            guard let found = try await lookup(request.instanceID), found.taskState == task else {
                log.info("action skipped: the controller no longer runs it", metadata: ["action": "\(request.action.rawValue)"])
                return
            }
            spec = found
        } catch {
            log.error("cannot read the instance from the controller", metadata: ["error": "\(error)"])
            return
        }
        do {
            let started = ContinuousClock.now
            let vmState = try await run(request, spec)
            let took = ContinuousClock.now - started
            // Done is done: a power state the hypervisor cannot tell now does not undo the action.
            await report(spec.id, .taskDone, vmState: vmState, power: (try? await power(of: spec.id)) ?? .noState, endsTask: task,
                         context: context)
            log.info("action done", metadata: ["action": "\(request.action.rawValue)", "vm_state": "\(vmState.rawValue)",
                                               "took_ms": "\(Self.milliseconds(took))"])
        } catch {
            log.error("action failed", metadata: ["action": "\(request.action.rawValue)", "error": "\(error)"])
            if [.snapshot, .backup, .shelve].contains(request.action), let imageID = request.imageID ?? spec.shelvedImageID, let cloud {
                // As Nova: the image of a failed snapshot is not left queued.
                do { try await cloud.deleteImage(imageID) } catch {
                    log.warning("could not delete the failed snapshot's image", metadata: ["image": "\(imageID)", "error": "\(error)"])
                }
            }
            let power = (try? await power(of: spec.id)) ?? .noState
            let saved = (try? await hypervisor.hasManagedSave(spec.id)) ?? false
            await report(spec.id, .taskFailed, vmState: power.impliedVMState(managedSave: saved), power: power, endsTask: task,
                         context: context)
        }
    }

    /// Runs one action and returns the VM state it ends in.
    func run(_ request: InstanceAction.Arguments, _ spec: InstanceSpec) async throws -> VMState {
        let id = spec.id
        // Shelving may find the domain already gone (an offload interrupted and resumed).
        let hasDomain = try await hypervisor.state(id) != nil
        guard hasDomain || request.action == .shelve || request.action == .shelveOffload else {
            throw Refused(description: "instance \(id) has no domain on \(host)", retryable: false)
        }
        switch request.action {
        case .rebootSoft:
            if try await hypervisor.state(id) == .running {
                try await hypervisor.shutdown(id)
                if !(await waitFor(.shutOff, id, within: settings.softRebootWait)) {
                    logger.info("guest did not shut down; rebooting hard", metadata: ["instance": "\(id)"])
                    try await hypervisor.destroy(id)
                }
            }
            try await startIfOff(id)
            return .active
        case .rebootHard:
            try await destroyDroppingSave(id)
            // A hard reboot recreates the domain from its definition, as Nova's does.
            try await defineDomain(spec, files: files(id))
            try await startIfOff(id)
            return .active
        case .stop:
            try await powerOff(id)
            return .stopped
        case .start:
            try await startIfOff(id)
            return .active
        case .pause:
            if try await hypervisor.state(id) != .paused { try await hypervisor.pause(id) }
            return .paused
        case .unpause:
            if try await hypervisor.state(id) == .paused { try await hypervisor.resume(id) }
            return .active
        case .suspend:
            if try await hypervisor.state(id) != .shutOff { try await hypervisor.managedSave(id) }
            return .suspended
        case .resume:
            try await startIfOff(id)
            return .active
        case .rebuild:
            let wasStopped = spec.vmState == .stopped
            try await destroyDroppingSave(id)
            files(id).removeDisks()
            try await Reverter.run(logger: logger) { revert in try await create(spec, revert: revert) }
            if wasStopped { return .stopped }
            try await startIfOff(id)
            return .active
        case .snapshot, .backup:
            guard let imageID = request.imageID, let cloud else {
                throw Refused(description: "no [service_user] is configured: the node cannot upload snapshots", retryable: false)
            }
            let state = try await hypervisor.state(id)
            let output = files(id).directory + "/snapshot-\(imageID).qcow2"
            defer { try? FileManager.default.removeItem(atPath: output) }
            // A running guest is paused while its disk is copied, for a consistent image.
            if state == .running { try await hypervisor.pause(id) }
            let copied: Result<Void, any Error>
            do { copied = .success(try await files(id).snapshot(to: output)) } catch { copied = .failure(error) }
            if state == .running { try await hypervisor.resume(id) }
            try copied.get()
            try await cloud.upload(image: imageID, from: output)
            return spec.vmState
        case .unshelve:
            try await startIfOff(id)
            return .active
        case .shelve:
            return try await shelve(request, spec)
        case .shelveOffload:
            try await tearDown(id)
            return .shelvedOffloaded
        case .resize:
            return try await resize(spec)
        case .confirmResize:
            return try await confirmResize(spec)
        case .revertResize:
            return try await revertResize(spec)
        case .rescue:
            return try await rescue(spec)
        case .unrescue:
            return try await unrescue(spec)
        case .softDelete:
            // Nova's libvirt driver has no soft delete of its own: the guest is powered off
            // and kept, disks and all, until it is restored or reclaimed.
            try await powerOff(id)
            return .softDeleted
        case .restore:
            try await startIfOff(id)
            return .active
        }
    }

    /// Shelves and offloads: the guest is powered off, its disk uploaded into the shelved
    /// image, then its domain and files removed. A shelve interrupted after the upload (the
    /// image is active) goes on with the removal.
    func shelve(_ request: InstanceAction.Arguments, _ spec: InstanceSpec) async throws -> VMState {
        let id = spec.id
        guard let imageID = request.imageID ?? spec.shelvedImageID, let cloud else {
            throw Refused(description: "no shelved image or no [service_user]: the node cannot upload the disk", retryable: false)
        }
        if try await cloud.imageStatus(imageID) != "active" {
            guard try await hypervisor.state(id) != nil else {
                throw Refused(description: "instance \(id) has no domain on \(host)", retryable: false)
            }
            try await powerOffDroppingSave(id)
            let output = files(id).directory + "/shelve-\(imageID).qcow2"
            defer { try? FileManager.default.removeItem(atPath: output) }
            try await files(id).snapshot(to: output)
            try await cloud.upload(image: imageID, from: output)
        }
        try await tearDown(id)
        return .shelvedOffloaded
    }

    func startIfOff(_ id: String) async throws {
        switch try await hypervisor.state(id) {
        case .shutOff, .crashed: try await hypervisor.start(id)
        case .paused: try await hypervisor.resume(id)
        default: break
        }
    }

    /// Powers the guest off (as `powerOff`) and drops any saved memory: what a shelve, a
    /// resize, its revert and a rescue start from.
    func powerOffDroppingSave(_ id: String) async throws {
        try await powerOff(id)
        if try await hypervisor.hasManagedSave(id) { try await hypervisor.removeManagedSave(id) }
    }

    /// Asks the guest to shut down, then pulls the plug after `shutdown_timeout`.
    func powerOff(_ id: String) async throws {
        let state = try await hypervisor.state(id)
        guard state != .shutOff else { return }
        if settings.shutdownTimeout > .zero, state == .running {
            try? await hypervisor.shutdown(id)
            if await waitFor(.shutOff, id, within: settings.shutdownTimeout) { return }
        }
        try await hypervisor.destroy(id)
    }

    func waitFor(_ state: GuestState, _ id: String, within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if (try? await hypervisor.state(id)) == state { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return (try? await hypervisor.state(id)) == state
    }

    func power(of id: String) async throws -> PowerState {
        guard let state = try await hypervisor.state(id) else { return .noState }
        return Self.power(state)
    }

    static func power(_ state: GuestState) -> PowerState {
        switch state {
        case .running, .blocked: return .running
        case .paused: return .paused
        case .shutOff, .shuttingDown: return .shutdown
        case .crashed: return .crashed
        case .pmSuspended: return .suspended
        case .noState: return .noState
        }
    }

    // MARK: delete

    public func delete(_ id: String, context: RequestContext) async throws {
        try await tearDown(id)
        logger.info("deleted", metadata: ["instance": "\(id)", "request_id": "\(context.requestID)"])
        await report(id, .deleted, vmState: nil, power: .noState, context: context)
    }

    // MARK: events, sync, reconciliation

    /// Follows the hypervisor's lifecycle events: a change no operation of ours is making (a
    /// guest that powered itself off) is reported to the controller. Returns when the
    /// events end.
    public func followEvents() async throws {
        let events = try hypervisor.events()
        for await event in events {
            guard DomainNaming.isInstance(event.name), !event.id.isEmpty else { continue }
            guard !(await locks.isBusy(event.id)) else { continue }
            logger.debug("domain event", metadata: ["instance": "\(event.id)", "event": "\(event.kind.rawValue)", "detail": "\(event.detail)"])
            // (`shutdown` is not among them: "stopped" follows when it is done.)
            guard [.stopped, .started, .suspended, .resumed, .crashed].contains(event.kind) else { continue }
            let power = (try? await power(of: event.id)) ?? .noState
            await report(event.id, .powerChanged, vmState: nil, power: power)
        }
    }

    /// Compares what the hypervisor and the disk have with what the controller says should
    /// be here, and converges: finishes interrupted builds, deletes and actions, removes
    /// Petrel's domains and directories the controller no longer has, reports power states.
    /// Domains without Petrel's metadata, or made by another node on the same libvirtd, are
    /// never touched.
    public func reconcile() async throws {
        let expected = try await controller.instances(on: host, ids: nil)
        let known = Set(expected.map(\.id))
        // An instance that cannot be converged is logged and left as it is (a delete can be
        // asked again; an orphan goes at the next start); the others still are converged.
        func converging(_ id: String, _ body: @Sendable () async throws -> Void) async {
            do {
                try await locks.with(id, body)
            } catch {
                logger.error("could not reconcile an instance", metadata: ["instance": "\(id)", "error": "\(error)"])
            }
        }
        for guest in try await hypervisor.guests() where DomainNaming.isInstance(guest.name) && !known.contains(guest.id) {
            await converging(guest.id) {
                guard let xml = try await self.hypervisor.definition(guest.id), InstanceDomain.isPetrels(xml, host: self.host),
                      try await self.lookup(guest.id) == nil else { return }
                self.logger.warning("removing a domain the controller no longer has", metadata: ["instance": "\(guest.id)"])
                try await self.tearDown(guest.id)
            }
        }
        for id in InstanceFiles.all(in: settings.instancesPath) where !known.contains(id) {
            await converging(id) {
                guard try await self.lookup(id) == nil, try await self.hypervisor.state(id) == nil else { return }
                self.logger.warning("removing an instance directory the controller no longer has", metadata: ["instance": "\(id)"])
                try self.files(id).remove()
            }
        }
        for spec in expected {
            let context = RequestContext()
            switch spec.taskState {
            case .spawning?:
                await converging(spec.id) { await self.build(spec.id, context: context) }
            case .deleting?:
                await converging(spec.id) { try await self.delete(spec.id, context: context) }
            case let task?:
                if let action = InstanceAction.Action(task: task) {
                    await converging(spec.id) { await self.perform(.init(instanceID: spec.id, action: action), context: context) }
                }
            case nil:
                await converging(spec.id) {
                    await self.sync(spec)
                    try await self.removeStrayVolumes(spec.id)
                }
            }
        }
    }

    /// Reports an instance's power state when the hypervisor disagrees with the controller.
    func sync(_ spec: InstanceSpec) async {
        guard spec.taskState == nil, ![.building, .error, .shelved, .shelvedOffloaded, .resized, .rescued, .softDeleted].contains(spec.vmState) else { return }
        guard let power = try? await power(of: spec.id) else { return }
        let implied = power.impliedVMState(managedSave: (try? await hypervisor.hasManagedSave(spec.id)) ?? false)
        if implied != spec.vmState {
            logger.info("power state differs from the controller's", metadata: ["instance": "\(spec.id)",
                                                                                "controller": "\(spec.vmState.rawValue)",
                                                                                "hypervisor": "\(implied.rawValue)"])
            await report(spec.id, .powerChanged, vmState: nil, power: power)
        }
    }

    /// The periodic safety net under the events, and the image cache's sweep.
    public func runPeriodicTasks() async {
        var lastSweep = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: settings.syncInterval)
            if Task.isCancelled { return }
            if let expected = try? await controller.instances(on: host, ids: nil) {
                for spec in expected where spec.taskState == nil {
                    if await locks.isBusy(spec.id) { continue }
                    await locks.with(spec.id) {
                        await self.sync(spec)
                        do {
                            try await self.removeStrayVolumes(spec.id)
                        } catch {
                            self.logger.error("could not check an instance's volumes", metadata: ["instance": "\(spec.id)", "error": "\(error)"])
                        }
                    }
                }
            }
            if ContinuousClock.now - lastSweep >= settings.imageCacheInterval {
                lastSweep = ContinuousClock.now
                await sweepImageCache()
            }
        }
    }

    @discardableResult
    public func sweepImageCache() async -> [String] {
        let inUse = Set(InstanceFiles.all(in: settings.instancesPath).flatMap { [files($0).baseImage, files($0).rescueBaseImage].compactMap { $0 } })
        return await cache.prune(inUse: inUse, unusedAge: settings.unusedImageAge)
    }
}
