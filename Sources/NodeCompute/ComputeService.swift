import Contracts
import Foundation
import LibvirtDriver
import Logging
import PetrelCore
import RPC

/// The compute service of a node (nova-compute with the libvirt driver): builds, runs and
/// deletes the instances the controller places on this host.
///
/// Each instance's operations run one at a time. Every operation first asks the controller
/// for the instance (a stale or redelivered message changes nothing) and is idempotent, so
/// a crash at any point is repaired by redelivery or by the reconciliation at start.
public final class ComputeService: Sendable {
    public struct Settings: Sendable {
        public var host: String
        public var instancesPath: String
        public var domain: DomainXML
        public var shutdownTimeout: Duration
        public var softRebootWait: Duration
        public var syncInterval: Duration
        public var unusedImageAge: TimeInterval
        public var imageCacheInterval: Duration

        public init(host: String, instancesPath: String, domain: DomainXML, shutdownTimeout: Duration, softRebootWait: Duration,
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
    let hypervisor: LibvirtConnection
    let client: RPCClient
    let cache: ImageCache
    let cloud: CloudClient?
    let locks = InstanceLocks()
    let clock = StampClock()
    let logger: Logger

    public init(settings: Settings, hypervisor: LibvirtConnection, client: RPCClient, cloud: CloudClient?, logger: Logger) {
        self.settings = settings
        self.hypervisor = hypervisor
        self.client = client
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
    }

    // MARK: controller

    func lookup(_ id: String) async throws -> InstanceSpec? {
        try await client.call(InstancesOnHost.self, .init(host: host, ids: [id]), topic: InstancesOnHost.topic, timeout: .seconds(30))
            .instances.first
    }

    func report(_ id: String, _ kind: InstanceUpdate.Kind, vmState: String?, power: PowerState, endsTask: String? = nil,
                fault: InstanceFault? = nil, context: RequestContext = RequestContext()) async {
        let update = InstanceUpdate.Arguments(instanceID: id, host: host, kind: kind, vmState: vmState, powerState: power,
                                              endsTask: endsTask, fault: fault, stamp: clock.next())
        do {
            try await client.cast(InstanceUpdate.self, update, topic: InstanceUpdate.topic, context: context, patience: .seconds(300))
        } catch {
            logger.error("instance update not delivered", metadata: ["instance": "\(id)", "error": "\(error)"])
        }
    }

    // MARK: build

    func build(_ id: String, context: RequestContext) async {
        var log = logger
        log[metadataKey: "instance"] = "\(id)"
        log[metadataKey: "request_id"] = "\(context.requestID)"
        let spec: InstanceSpec
        do {
            guard let found = try await lookup(id), found.vmState == "building", found.taskState == "spawning" else {
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
            if let domain = try hypervisor.domain(uuid: id), try domain.state() == .running {
                await report(id, .taskDone, vmState: "active", power: .running, endsTask: "spawning", context: context)
                return
            }
            // Whatever an interrupted attempt left is rebuilt from scratch.
            try tearDown(id)
            let domain = try await create(spec)
            let prepared = ContinuousClock.now
            try domain.start()
            let running = ContinuousClock.now
            await report(id, .taskDone, vmState: "active", power: .running, endsTask: "spawning", context: context)
            log.info("spawned", metadata: ["prepare_ms": "\(Self.milliseconds(prepared - started))",
                                           "start_ms": "\(Self.milliseconds(running - prepared))"])
        } catch {
            log.warning("build failed", metadata: ["error": "\(error)"])
            try? tearDown(id)
            let retryable = (error as? Refused)?.retryable ?? true
            do {
                try await client.cast(BuildFailed.self, .init(instanceID: id, host: host, reason: "\(error)", retryable: retryable),
                                      topic: BuildFailed.topic, context: context, patience: .seconds(300))
            } catch {
                log.error("build failure not delivered", metadata: ["error": "\(error)"])
            }
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    /// Disks and the defined (not started) domain of `spec`.
    @discardableResult
    func create(_ spec: InstanceSpec) async throws -> Domain {
        guard let image = spec.image else {
            throw Refused(description: "Image of instance \(spec.id) could not be found.", retryable: false)
        }
        let base = try await cache.fetch(image)
        let files = self.files(spec.id)
        try await files.create(spec, base: base)
        return try hypervisor.define(xml: settings.domain.render(spec, files: files, host: host))
    }

    /// Removes the domain (with its managed-save image) and the instance's files. Idempotent.
    func tearDown(_ id: String) throws {
        if let domain = try hypervisor.domain(uuid: id) {
            if try domain.state() != .shutOff { try ignoringInvalid { try domain.destroy() } }
            try ignoringMissing { try domain.undefine() }
        }
        try files(id).remove()
    }

    /// Powers the domain off at once and drops any saved memory: what a hard reboot and a
    /// rebuild start from.
    func destroyDroppingSave(_ domain: Domain) throws {
        try ignoringInvalid { try domain.destroy() }
        if try domain.hasManagedSave() { try domain.removeManagedSave() }
    }

    func ignoringInvalid(_ body: () throws -> Void) throws {
        do { try body() } catch let error as LibvirtError where error.isOperationInvalid || error.isNoDomain {}
    }

    func ignoringMissing(_ body: () throws -> Void) throws {
        do { try body() } catch let error as LibvirtError where error.isNoDomain {}
    }

    // MARK: actions

    func perform(_ request: InstanceAction.Arguments, context: RequestContext) async {
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
            let vmState = try await run(request, spec)
            // Done is done: a power state libvirt cannot tell now does not undo the action.
            await report(spec.id, .taskDone, vmState: vmState, power: (try? power(of: spec.id)) ?? .noState, endsTask: task,
                         context: context)
            log.info("action done", metadata: ["action": "\(request.action.rawValue)", "vm_state": "\(vmState)"])
        } catch {
            log.error("action failed", metadata: ["action": "\(request.action.rawValue)", "error": "\(error)"])
            if request.action == .snapshot, let imageID = request.imageID, let cloud {
                // As Nova: the image of a failed snapshot is not left queued.
                do { try await cloud.deleteImage(imageID) } catch {
                    log.warning("could not delete the failed snapshot's image", metadata: ["image": "\(imageID)", "error": "\(error)"])
                }
            }
            let power = (try? power(of: spec.id)) ?? .noState
            await report(spec.id, .taskFailed, vmState: Self.vmState(power, managedSave: (try? hasManagedSave(spec.id)) ?? false),
                         power: power, endsTask: task, context: context)
        }
    }

    /// Runs one action and returns the VM state it ends in.
    func run(_ request: InstanceAction.Arguments, _ spec: InstanceSpec) async throws -> String {
        guard let domain = try hypervisor.domain(uuid: spec.id) else {
            throw Refused(description: "instance \(spec.id) has no domain on \(host)", retryable: false)
        }
        switch request.action {
        case .rebootSoft:
            if try domain.state() == .running {
                try domain.shutdown()
                if !(await waitFor(.shutOff, domain, within: settings.softRebootWait)) {
                    logger.info("guest did not shut down; rebooting hard", metadata: ["instance": "\(spec.id)"])
                    try ignoringInvalid { try domain.destroy() }
                }
            }
            try startIfOff(domain)
            return "active"
        case .rebootHard:
            try destroyDroppingSave(domain)
            // A hard reboot recreates the domain from its definition, as Nova's does.
            try hypervisor.define(xml: settings.domain.render(spec, files: files(spec.id), host: host))
            try startIfOff(domain)
            return "active"
        case .stop:
            try await powerOff(domain)
            return "stopped"
        case .start:
            try startIfOff(domain)
            return "active"
        case .pause:
            if try domain.state() != .paused { try domain.suspend() }
            return "paused"
        case .unpause:
            if try domain.state() == .paused { try domain.resume() }
            return "active"
        case .suspend:
            if try domain.state() != .shutOff { try domain.managedSave() }
            return "suspended"
        case .resume:
            try startIfOff(domain)
            return "active"
        case .rebuild:
            let wasStopped = spec.vmState == "stopped"
            try destroyDroppingSave(domain)
            files(spec.id).removeDisks()
            let rebuilt = try await create(spec)
            if wasStopped { return "stopped" }
            try startIfOff(rebuilt)
            return "active"
        case .snapshot:
            guard let imageID = request.imageID, let cloud else {
                throw Refused(description: "no [service_user] is configured: the node cannot upload snapshots", retryable: false)
            }
            let state = try domain.state()
            let output = files(spec.id).directory + "/snapshot-\(imageID).qcow2"
            defer { try? FileManager.default.removeItem(atPath: output) }
            // A running guest is paused while its disk is copied, for a consistent image.
            if state == .running { try domain.suspend() }
            let copied: Result<Void, any Error>
            do { copied = .success(try await files(spec.id).snapshot(to: output)) } catch { copied = .failure(error) }
            if state == .running { try domain.resume() }
            try copied.get()
            try await cloud.upload(image: imageID, from: output)
            return spec.vmState
        }
    }

    func startIfOff(_ domain: Domain) throws {
        switch try domain.state() {
        case .shutOff, .crashed: try domain.start()
        case .paused: try domain.resume()
        default: break
        }
    }

    /// Asks the guest to shut down, then pulls the plug after `shutdown_timeout`.
    func powerOff(_ domain: Domain) async throws {
        let state = try domain.state()
        guard state != .shutOff else { return }
        if settings.shutdownTimeout > .zero, state == .running {
            try? domain.shutdown()
            if await waitFor(.shutOff, domain, within: settings.shutdownTimeout) { return }
        }
        try ignoringInvalid { try domain.destroy() }
    }

    func waitFor(_ state: DomainState, _ domain: Domain, within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if (try? domain.state()) == state { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return (try? domain.state()) == state
    }

    func hasManagedSave(_ id: String) throws -> Bool {
        try hypervisor.domain(uuid: id)?.hasManagedSave() ?? false
    }

    func power(of id: String) throws -> PowerState {
        guard let domain = try hypervisor.domain(uuid: id) else { return .noState }
        return Self.power(try domain.state())
    }

    static func power(_ state: DomainState) -> PowerState {
        switch state {
        case .running, .blocked: return .running
        case .paused: return .paused
        case .shutOff, .shuttingDown: return .shutdown
        case .crashed: return .crashed
        case .pmSuspended: return .suspended
        case .noState: return .noState
        }
    }

    /// The VM state libvirt's state implies.
    static func vmState(_ power: PowerState, managedSave: Bool) -> String {
        switch power {
        case .running: return "active"
        case .paused: return "paused"
        case .shutdown, .crashed, .noState: return managedSave ? "suspended" : "stopped"
        case .suspended: return "suspended"
        }
    }

    // MARK: delete

    func delete(_ id: String, context: RequestContext) async throws {
        try tearDown(id)
        logger.info("deleted", metadata: ["instance": "\(id)", "request_id": "\(context.requestID)"])
        await report(id, .deleted, vmState: nil, power: .noState, context: context)
    }

    // MARK: events, sync, reconciliation

    /// Follows libvirt's lifecycle events: a change no operation of ours is making (a guest
    /// that powered itself off) is reported to the controller.
    public func followEvents() async throws {
        let events = try hypervisor.lifecycleEvents()
        for await event in events {
            guard DomainNaming.isInstance(event.domainName), !event.uuid.isEmpty else { continue }
            guard !(await locks.isBusy(event.uuid)) else { continue }
            logger.debug("domain event", metadata: ["instance": "\(event.uuid)", "event": "\(event.kind.rawValue)", "detail": "\(event.detail)"])
            // (`shutdown` is not among them: "stopped" follows when it is done.)
            guard [.stopped, .started, .suspended, .resumed, .crashed].contains(event.kind) else { continue }
            let power = (try? power(of: event.uuid)) ?? .noState
            await report(event.uuid, .powerChanged, vmState: nil, power: power)
        }
    }

    /// Compares what libvirt and the disk have with what the controller says should be
    /// here, and converges: finishes interrupted builds, deletes and actions, removes
    /// Petrel's domains and directories the controller no longer has, reports power states.
    /// Domains without Petrel's metadata are never touched.
    public func reconcile() async throws {
        let expected = try await client.call(InstancesOnHost.self, .init(host: host), topic: InstancesOnHost.topic, timeout: .seconds(60))
            .instances
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
        for summary in try hypervisor.listDomains() where DomainNaming.isInstance(summary.name) && !known.contains(summary.uuid) {
            await converging(summary.uuid) {
                guard let domain = try self.hypervisor.domain(uuid: summary.uuid), DomainXML.isPetrels(try domain.xml(inactive: true)),
                      try await self.lookup(summary.uuid) == nil else { return }
                self.logger.warning("removing a domain the controller no longer has", metadata: ["instance": "\(summary.uuid)"])
                try self.tearDown(summary.uuid)
            }
        }
        for id in InstanceFiles.all(in: settings.instancesPath) where !known.contains(id) {
            await converging(id) {
                guard try await self.lookup(id) == nil, try self.hypervisor.domain(uuid: id) == nil else { return }
                self.logger.warning("removing an instance directory the controller no longer has", metadata: ["instance": "\(id)"])
                try self.files(id).remove()
            }
        }
        for spec in expected {
            let context = RequestContext()
            switch spec.taskState {
            case "spawning":
                await converging(spec.id) { await self.build(spec.id, context: context) }
            case "deleting":
                await converging(spec.id) { try await self.delete(spec.id, context: context) }
            case let task?:
                if let action = InstanceAction.Action(task: task) {
                    await converging(spec.id) { await self.perform(.init(instanceID: spec.id, action: action), context: context) }
                }
            case nil:
                await converging(spec.id) { await self.sync(spec) }
            }
        }
    }

    /// Reports an instance's power state when libvirt disagrees with the controller.
    func sync(_ spec: InstanceSpec) async {
        guard spec.taskState == nil, spec.vmState != "building", spec.vmState != "error" else { return }
        guard let power = try? power(of: spec.id) else { return }
        let implied = Self.vmState(power, managedSave: (try? hasManagedSave(spec.id)) ?? false)
        if implied != spec.vmState {
            logger.info("power state differs from the controller's", metadata: ["instance": "\(spec.id)", "controller": "\(spec.vmState)",
                                                                                "libvirt": "\(implied)"])
            await report(spec.id, .powerChanged, vmState: nil, power: power)
        }
    }

    /// The periodic safety net under the events, and the image cache's sweep.
    public func runPeriodicTasks() async {
        var lastSweep = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: settings.syncInterval)
            if Task.isCancelled { return }
            if let expected = try? await client.call(InstancesOnHost.self, .init(host: host), topic: InstancesOnHost.topic,
                                                     timeout: .seconds(60)).instances {
                for spec in expected where spec.taskState == nil {
                    if await locks.isBusy(spec.id) { continue }
                    await locks.with(spec.id) { await self.sync(spec) }
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
        let inUse = Set(InstanceFiles.all(in: settings.instancesPath).compactMap { files($0).baseImage })
        return await cache.prune(inUse: inUse, unusedAge: settings.unusedImageAge)
    }

}

/// One operation at a time per instance.
actor InstanceLocks {
    private var held: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func isBusy(_ id: String) -> Bool { held.contains(id) }

    private func acquire(_ id: String) async {
        if !held.contains(id) {
            held.insert(id)
            return
        }
        await withCheckedContinuation { waiters[id, default: []].append($0) }
    }

    private func release(_ id: String) {
        if var queue = waiters[id], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[id] = queue.isEmpty ? nil : queue
            next.resume()  // the lock passes to the next waiter
        } else {
            held.remove(id)
        }
    }

    func with<T: Sendable>(_ id: String, _ body: @Sendable () async throws -> T) async rethrows -> T {
        await acquire(id)
        defer { release(id) }
        return try await body()
    }
}

/// Microseconds since 1970, strictly increasing within the process: the order of a node's updates.
final class StampClock: @unchecked Sendable {
    private let lock = NSLock()
    private var last: Int64 = 0

    func next() -> Int64 {
        lock.withLock {
            last = max(last + 1, Int64(Date().timeIntervalSince1970 * 1_000_000))
            return last
        }
    }
}
