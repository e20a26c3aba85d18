import Contracts
import Foundation
import LibvirtDriver
import Logging
import NodeCompute
import NodeCore
import PetrelCore
import ProcessDriver
import TestSupport
import Testing

/// A hypervisor in memory: guests by id, each call recorded, and any step made to fail.
final class HypervisorDouble: HypervisorDriver, @unchecked Sendable {
    enum Step: String, CaseIterable, Sendable {
        case define, start, shutdown, destroy, pause, resume, managedSave, undefine
    }

    struct Guest {
        var definition: DomainDefinition
        var state: GuestState
        var saved: Bool
    }

    struct Injected: Error, CustomStringConvertible {
        let step: Step
        var description: String { "injected failure at \(step.rawValue)" }
    }

    private let lock = NSLock()
    private var guestsByID: [String: Guest] = [:]
    private var failing: Set<Step> = []
    private(set) var calls: [String] = []
    let info = HypervisorInfo(name: "double", domainType: "test", emulator: nil)

    func fail(_ steps: Set<Step>) { lock.withLock { failing = steps } }
    func guest(_ id: String) -> Guest? { lock.withLock { guestsByID[id] } }
    var isEmpty: Bool { lock.withLock { guestsByID.isEmpty } }

    private func step<T>(_ step: Step, _ id: String, _ body: (inout [String: Guest]) throws -> T) throws -> T {
        try lock.withLock {
            calls.append("\(step.rawValue) \(id)")
            if failing.contains(step) { throw Injected(step: step) }
            return try body(&guestsByID)
        }
    }

    private func existing(_ guests: inout [String: Guest], _ id: String, _ change: (inout Guest) -> Void) throws {
        guard var guest = guests[id] else { throw HypervisorError("no guest \(id)") }
        change(&guest)
        guests[id] = guest
    }

    func host() async throws -> HypervisorHost { HypervisorHost(cpuModel: "double", cpus: 4, memoryMiB: 8192, type: "Double", version: 1) }

    func guests() async throws -> [GuestSummary] {
        lock.withLock { guestsByID.map { GuestSummary(id: $0.key, name: $0.value.definition.name, state: $0.value.state) } }
    }

    func state(_ id: String) async throws -> GuestState? { lock.withLock { guestsByID[id]?.state } }
    func definition(_ id: String) async throws -> String? { lock.withLock { guestsByID[id]?.definition.xml } }

    func define(_ definition: DomainDefinition) async throws {
        try step(.define, definition.uuid) { guests in
            let current = guests[definition.uuid]
            guests[definition.uuid] = Guest(definition: definition, state: current?.state ?? .shutOff, saved: current?.saved ?? false)
        }
    }

    func start(_ id: String) async throws {
        try step(.start, id) { guests in try existing(&guests, id) { $0.state = .running; $0.saved = false } }
    }

    /// The guest obeys ACPI at once.
    func shutdown(_ id: String) async throws {
        try step(.shutdown, id) { guests in try existing(&guests, id) { $0.state = .shutOff } }
    }

    func destroy(_ id: String) async throws {
        try step(.destroy, id) { guests in if guests[id] != nil { guests[id]?.state = .shutOff } }
    }

    func pause(_ id: String) async throws { try step(.pause, id) { guests in try existing(&guests, id) { $0.state = .paused } } }
    func resume(_ id: String) async throws { try step(.resume, id) { guests in try existing(&guests, id) { $0.state = .running } } }

    func managedSave(_ id: String) async throws {
        try step(.managedSave, id) { guests in try existing(&guests, id) { $0.state = .shutOff; $0.saved = true } }
    }

    func hasManagedSave(_ id: String) async throws -> Bool { lock.withLock { guestsByID[id]?.saved ?? false } }
    func removeManagedSave(_ id: String) async throws { lock.withLock { guestsByID[id]?.saved = false } }

    func undefine(_ id: String) async throws { try step(.undefine, id) { guests in guests[id] = nil } }

    func liveDefinition(_ id: String) async throws -> String? { lock.withLock { guestsByID[id]?.definition.xml } }

    /// Devices live and stored are one list here: the guest lets go of a NIC at once.
    func attach(_ id: String, device: Device, live: Bool, config: Bool) async throws {
        try lock.withLock {
            calls.append("attach \(id)")
            guard guestsByID[id] != nil else { throw HypervisorError("no guest \(id)") }
            if !(guestsByID[id]?.definition.devices.contains(device) ?? false) { guestsByID[id]?.definition.devices.append(device) }
        }
    }

    func detach(_ id: String, device: Device, live: Bool, config: Bool) async throws {
        try lock.withLock {
            calls.append("detach \(id)")
            guard guestsByID[id] != nil else { throw HypervisorError("no guest \(id)") }
            guestsByID[id]?.definition.devices.removeAll { $0 == device }
        }
    }

    func resizeDisk(_ id: String, device: String, bytes: UInt64) async throws {
        try lock.withLock {
            calls.append("resize \(id) \(device) \(bytes)")
            guard guestsByID[id] != nil else { throw HypervisorError("no guest \(id)") }
        }
    }

    func events() throws -> AsyncStream<GuestEvent> { AsyncStream { $0.finish() } }

    func copyDisk(_ id: String, device: String, to destination: Device) async throws {
        try lock.withLock {
            calls.append("copy \(id) \(device)")
            guard guestsByID[id] != nil else { throw HypervisorError("no guest \(id)") }
        }
    }

    private var secrets: [String: String] = [:]
    func setDiskSecret(usage: String, password: String) async throws {
        lock.withLock { calls.append("secret \(usage)"); secrets[usage] = password }
    }
    func removeDiskSecret(usage: String) async throws {
        lock.withLock { calls.append("forget \(usage)"); secrets[usage] = nil }
    }
    func diskSecrets() async throws -> [String] { lock.withLock { secrets.keys.sorted() } }
    func secret(_ usage: String) -> String? { lock.withLock { secrets[usage] } }
}

/// The controller's side of the conversation, in memory.
final class ControllerDouble: ComputeController, @unchecked Sendable {
    private let lock = NSLock()
    private var specs: [String: InstanceSpec] = [:]
    private(set) var updates: [InstanceUpdate.Arguments] = []
    private(set) var failures: [BuildFailed.Arguments] = []

    func place(_ spec: InstanceSpec) { lock.withLock { specs[spec.id] = spec } }
    func forget(_ id: String) { _ = lock.withLock { specs.removeValue(forKey: id) } }
    var lastUpdate: InstanceUpdate.Arguments? { lock.withLock { updates.last } }
    var lastFailure: BuildFailed.Arguments? { lock.withLock { failures.last } }

    func instances(on host: String, ids: [String]?) async throws -> [InstanceSpec] {
        lock.withLock { specs.values.filter { ids?.contains($0.id) ?? true } }
    }

    /// Applies the update as the controller would (the task ends, the VM state is taken).
    func update(_ update: InstanceUpdate.Arguments, context: RequestContext) async throws {
        lock.withLock {
            updates.append(update)
            if update.kind == .deleted { specs[update.instanceID] = nil; return }
            guard var spec = specs[update.instanceID] else { return }
            if update.kind == .taskDone || update.kind == .taskFailed {
                if let state = update.vmState { spec.vmState = state }
                spec.taskState = nil
            }
            specs[update.instanceID] = spec
        }
    }

    func buildFailed(_ failure: BuildFailed.Arguments, context: RequestContext) async throws {
        lock.withLock { failures.append(failure) }
    }
}

/// The image API: downloads copy a small qcow2 the test made; uploads are kept.
final class ImagesDouble: ImageTransfer, @unchecked Sendable {
    let source: String
    private let lock = NSLock()
    private(set) var uploaded: [String] = []
    private(set) var deleted: [String] = []
    var failDownloads = false

    init(source: String) { self.source = source }

    func download(image id: String, to path: String) async throws -> String {
        if lock.withLock({ failDownloads }) { throw HypervisorError("injected failure at download") }
        try FileManager.default.copyItem(atPath: source, toPath: path)
        return ""
    }

    func upload(image id: String, from path: String) async throws {
        #expect(FileManager.default.fileExists(atPath: path))
        lock.withLock { uploaded.append(id) }
    }

    func deleteImage(_ id: String) async throws { lock.withLock { deleted.append(id) } }

    func imageStatus(_ id: String) async throws -> String? {
        lock.withLock { deleted.contains(id) ? nil : uploaded.contains(id) ? "active" : "queued" }
    }
}

/// The compute service's state machine on a hypervisor double: every action from the state
/// it starts in, and a build failing at each step leaves no guest and no files behind.
@Suite struct ComputeStateMachineTests {
    struct Rig {
        let directory: String
        let hypervisor = HypervisorDouble()
        let controller = ControllerDouble()
        let images: ImagesDouble
        let compute: ComputeService

        init() async throws {
            try Requirement.tool("qemu-img")
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-sm-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let base = directory + "/base.qcow2"
            try await Command.check("qemu-img", ["create", "-q", "-f", "qcow2", base, "16M"])
            images = ImagesDouble(source: base)
            let settings = ComputeService.Settings(
                host: "h", instancesPath: directory + "/instances",
                domain: InstanceDomain(domainType: "test", cpuMode: "none", vncListen: "127.0.0.1", emulator: nil),
                shutdownTimeout: .seconds(1), softRebootWait: .seconds(1), syncInterval: .seconds(60), unusedImageAge: 3600,
                imageCacheInterval: .seconds(3600))
            compute = ComputeService(settings: settings, hypervisor: hypervisor, controller: controller, cloud: images,
                                     logger: Logger(label: "test"))
        }

        func files(_ id: String) -> InstanceFiles { InstanceFiles(root: directory + "/instances", id: id) }

        func spec(_ id: String = UUID().uuidString.lowercased(), vmState: VMState = .building, task: TaskState? = .spawning) -> InstanceSpec {
            InstanceSpec(id: id, name: "vm", projectID: "p", userID: "u", host: "h",
                         flavor: .init(id: "f", name: "m1.tiny", vcpus: 1, memoryMB: 128, rootGB: 1, ephemeralGB: 1, swapMB: 16,
                                       extraSpecs: [:]),
                         image: .init(id: "image-1", diskFormat: "qcow2", checksum: nil, size: nil, properties: [:]),
                         vmState: vmState, taskState: task, stamp: 0)
        }

        /// Builds a server and returns its id.
        func built() async throws -> String {
            let spec = spec()
            controller.place(spec)
            await compute.build(spec.id, context: RequestContext())
            try #require(hypervisor.guest(spec.id)?.state == .running, "\(controller.failures)")
            return spec.id
        }

        /// Runs `action` on `id` as the controller would ask for it.
        func act(_ id: String, _ action: InstanceAction.Action, imageID: String? = nil) async throws -> InstanceUpdate.Arguments {
            var spec = try #require(try await controller.instances(on: "h", ids: [id]).first)
            spec.taskState = action.task
            controller.place(spec)
            await compute.perform(.init(instanceID: id, action: action, imageID: imageID), context: RequestContext())
            let update = try #require(controller.lastUpdate)
            #expect(update.instanceID == id && update.endsTask == action.task)
            return update
        }

        func remove() { try? FileManager.default.removeItem(atPath: directory) }
    }

    @Test func buildDefinesStartsAndReportsActive() async throws {
        let rig = try await Rig()
        defer { rig.remove() }
        let id = try await rig.built()
        let update = try #require(rig.controller.lastUpdate)
        #expect(update.kind == .taskDone && update.vmState == .active && update.powerState == .running && update.endsTask == .spawning)
        let guest = try #require(rig.hypervisor.guest(id))
        #expect(InstanceDomain.isPetrels(guest.definition.xml))
        for file in [rig.files(id).disk, rig.files(id).ephemeral, rig.files(id).swap] {
            #expect(FileManager.default.fileExists(atPath: file), "\(file)")
        }
        // A redelivered build of a server no longer building changes nothing.
        let calls = rig.hypervisor.calls.count
        await rig.compute.build(id, context: RequestContext())
        #expect(rig.hypervisor.calls.count == calls)
    }

    @Test func everyActionEndsInItsState() async throws {
        let rig = try await Rig()
        defer { rig.remove() }
        let id = try await rig.built()
        // (action, VM state reported, the guest's state after)
        let script: [(InstanceAction.Action, VMState, GuestState)] = [
            (.rebootSoft, .active, .running), (.rebootHard, .active, .running), (.pause, .paused, .paused),
            (.unpause, .active, .running), (.suspend, .suspended, .shutOff), (.resume, .active, .running),
            (.stop, .stopped, .shutOff), (.start, .active, .running), (.rebuild, .active, .running),
            (.snapshot, .active, .running), (.stop, .stopped, .shutOff), (.rebuild, .stopped, .shutOff),
        ]
        for (action, vmState, guestState) in script {
            let update = try await rig.act(id, action, imageID: action == .snapshot ? "snap-1" : nil)
            #expect(update.kind == .taskDone && update.vmState == vmState, "\(action): \(update)")
            #expect(rig.hypervisor.guest(id)?.state == guestState, "\(action)")
        }
        #expect(rig.images.uploaded == ["snap-1"])
        #expect(rig.hypervisor.calls.contains("managedSave \(id)"))
        #expect(FileManager.default.fileExists(atPath: rig.files(id).disk), "a rebuild leaves a new disk")
    }

    /// Shelving uploads the disk into the shelved image, then removes the domain and files;
    /// one interrupted after its upload goes on with the removal; unshelving builds the
    /// server again from the image.
    @Test func shelveOffloadsAndUnshelveBuildsAgain() async throws {
        let rig = try await Rig()
        defer { rig.remove() }
        let id = try await rig.built()
        let shelved = try await rig.act(id, .shelve, imageID: "shelf-1")
        #expect(shelved.kind == .taskDone && shelved.vmState == .shelvedOffloaded, "\(shelved)")
        #expect(rig.images.uploaded == ["shelf-1"])
        #expect(rig.hypervisor.guest(id) == nil && !rig.files(id).exists, "an offloaded server left its domain or files")

        // The same shelve asked again (a node restarted after the upload): nothing is uploaded twice.
        let second = try await rig.built()
        var spec = try #require(try await rig.controller.instances(on: "h", ids: [second]).first)
        spec.shelvedImageID = "shelf-1"
        rig.controller.place(spec)
        let resumed = try await rig.act(second, .shelve)
        #expect(resumed.kind == .taskDone && resumed.vmState == .shelvedOffloaded && rig.images.uploaded == ["shelf-1"])
        #expect(rig.hypervisor.guest(second) == nil)

        // Unshelve from offload: a build on the shelved image.
        var back = rig.spec(id, vmState: .shelvedOffloaded, task: .spawning)
        back.image = .init(id: "shelf-1", diskFormat: "qcow2", checksum: nil, size: nil, properties: [:])
        back.shelvedImageID = "shelf-1"
        rig.controller.place(back)
        await rig.compute.build(id, context: RequestContext())
        let update = try #require(rig.controller.lastUpdate)
        #expect(update.kind == .taskDone && update.vmState == .active && rig.hypervisor.guest(id)?.state == .running)
        #expect(FileManager.default.fileExists(atPath: rig.directory + "/instances/_base/shelf-1"))
    }

    /// A resize keeps the disks for a revert, grows them and defines the new flavor; run again
    /// (a node killed half-way) it starts from the kept disks; a revert puts them back; a
    /// confirm drops them.
    @Test func resizeRevertAndConfirm() async throws {
        let rig = try await Rig()
        defer { rig.remove() }
        let id = try await rig.built()
        let files = rig.files(id)
        func virtualGB(_ path: String) async throws -> Int {
            let info = try await Command.run("qemu-img", ["info", "-U", "--output", "json", path])
            let object = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any]
            return ((object?["virtual-size"] as? Int) ?? 0) >> 30
        }
        let small = rig.spec(id).flavor
        let big = InstanceSpec.Flavor(id: "g", name: "m1.big", vcpus: 2, memoryMB: 256, rootGB: 2, ephemeralGB: 2, swapMB: 32, extraSpecs: [:])
        func ask(_ action: InstanceAction.Action, flavor: InstanceSpec.Flavor?, powerOn: Bool = true) async throws -> InstanceUpdate.Arguments {
            var spec = try #require(try await rig.controller.instances(on: "h", ids: [id]).first)
            spec.resize = flavor.map { InstanceSpec.Resize(flavor: $0, powerOn: powerOn) }
            rig.controller.place(spec)
            return try await rig.act(id, action)
        }
        var update = try await ask(.resize, flavor: big)
        #expect(update.kind == .taskDone && update.vmState == .resized, "\(update)")
        #expect(rig.hypervisor.guest(id)?.definition.vcpus == 2 && rig.hypervisor.guest(id)?.definition.memoryMiB == 256)
        #expect(rig.hypervisor.guest(id)?.state == .running)
        #expect(try await virtualGB(files.disk) == 2)
        #expect(try await virtualGB(files.ephemeral) == 2)
        #expect(files.hasResizeBackup)
        // Asked again (redelivered after a crash): from the kept disks, the same result.
        update = try await ask(.resize, flavor: big)
        #expect(update.kind == .taskDone && update.vmState == .resized)
        #expect(try await virtualGB(files.disk) == 2)

        update = try await ask(.revertResize, flavor: small)
        #expect(update.kind == .taskDone && update.vmState == .active, "\(update)")
        #expect(rig.hypervisor.guest(id)?.definition.vcpus == 1 && rig.hypervisor.guest(id)?.definition.memoryMiB == 128)
        #expect(try await virtualGB(files.disk) == 1)
        #expect(try await virtualGB(files.ephemeral) == 1)
        #expect(!files.hasResizeBackup)

        // A stopped server stays off; the confirm drops the kept disks.
        update = try await ask(.resize, flavor: big, powerOn: false)
        #expect(update.vmState == .resized && rig.hypervisor.guest(id)?.state == .shutOff)
        update = try await ask(.confirmResize, flavor: nil)
        #expect(update.kind == .taskDone && update.vmState == .stopped && !files.hasResizeBackup)
        #expect(try await virtualGB(files.disk) == 2)

        // A resize that fails half-way leaves the server as it was.
        rig.hypervisor.fail([.define])
        update = try await ask(.resize, flavor: InstanceSpec.Flavor(id: "h", name: "m1.huge", vcpus: 4, memoryMB: 512, rootGB: 3,
                                                                    ephemeralGB: 2, swapMB: 32, extraSpecs: [:]), powerOn: false)
        #expect(update.kind == .taskFailed && update.vmState == .stopped)
        rig.hypervisor.fail([])
        #expect(try await virtualGB(files.disk) == 2)
        #expect(!files.hasResizeBackup)
    }

    /// Rescue boots a fresh disk of the rescue image with the server's own disk second (no
    /// ephemeral or swap); asked again it makes the rescue disk anew; unrescue goes back.
    @Test func rescueAndUnrescue() async throws {
        let rig = try await Rig()
        defer { rig.remove() }
        let id = try await rig.built()
        let files = rig.files(id)
        func disks() -> [String] {
            (rig.hypervisor.guest(id)?.definition.devices ?? []).compactMap { device -> String? in
                if case .disk(let disk) = device, case .file(let path) = disk.source { return (path as NSString).lastPathComponent }
                return nil
            }
        }
        var spec = try #require(try await rig.controller.instances(on: "h", ids: [id]).first)
        spec.rescueImage = .init(id: "rescue-1", diskFormat: "qcow2", checksum: nil, size: nil, properties: [:])
        rig.controller.place(spec)
        for _ in 0..<2 {
            let update = try await rig.act(id, .rescue)
            #expect(update.kind == .taskDone && update.vmState == .rescued, "\(update)")
            #expect(disks() == ["disk.rescue", "disk"] && rig.hypervisor.guest(id)?.state == .running, "\(disks())")
            #expect(files.rescueBaseImage == "rescue-1")
        }
        #expect(await rig.compute.sweepImageCache().isEmpty, "the rescue image is in use")
        let update = try await rig.act(id, .unrescue)
        #expect(update.kind == .taskDone && update.vmState == .active)
        #expect(disks() == ["disk", "disk.eph0", "disk.swap"] && rig.hypervisor.guest(id)?.state == .running, "\(disks())")
        #expect(!FileManager.default.fileExists(atPath: files.rescueDisk) && files.rescueBaseImage == nil)
    }

    /// Stable rescue (the rescue image has hw_rescue_device/hw_rescue_bus): every disk stays
    /// where it was and the rescue disk comes last, of the asked device and bus, first in the
    /// boot order; a device this node cannot attach is refused with the guest as it was.
    @Test func stableRescueKeepsEveryDiskAndBootsTheRescueDisk() async throws {
        let rig = try await Rig()
        defer { rig.remove() }
        let id = try await rig.built()
        func disks() -> [(String, String, String, Int?)] {
            (rig.hypervisor.guest(id)?.definition.devices ?? []).compactMap { device in
                guard case .disk(let disk) = device, case .file(let path) = disk.source else { return nil }
                return ((path as NSString).lastPathComponent, disk.target, disk.device, disk.bootOrder)
            }
        }
        var spec = try #require(try await rig.controller.instances(on: "h", ids: [id]).first)
        spec.rescueImage = .init(id: "rescue-2", diskFormat: "qcow2", checksum: nil, size: nil, properties: ["hw_rescue_device": "floppy"])
        rig.controller.place(spec)
        let refused = try await rig.act(id, .rescue)
        #expect(refused.kind == .taskFailed && refused.vmState == .active && rig.hypervisor.guest(id)?.state == .running, "\(refused)")
        #expect(disks().map(\.0) == ["disk", "disk.eph0", "disk.swap"])
        spec.rescueImage?.properties = ["hw_rescue_device": "disk", "hw_rescue_bus": "virtio"]
        rig.controller.place(spec)
        let update = try await rig.act(id, .rescue)
        #expect(update.kind == .taskDone && update.vmState == .rescued, "\(update)")
        #expect(disks().map { "\($0.0) \($0.1) \($0.2) \($0.3.map(String.init) ?? "-")" }
                    == ["disk vda disk -", "disk.eph0 vdb disk -", "disk.swap vdc disk -", "disk.rescue vdd disk 1"], "\(disks())")
        #expect(rig.hypervisor.guest(id)?.definition.os.bootDevices == [] && rig.hypervisor.guest(id)?.state == .running)
        let xml = try #require(rig.hypervisor.guest(id)?.definition.xml)
        #expect(xml.contains("<boot order=\"1\"/>") || xml.contains("<boot order='1'/>"), "\(xml)")
        // A cdrom on the IDE bus (the default for a cdrom) is named as IDE disks are.
        spec.rescueImage?.properties = ["hw_rescue_device": "cdrom"]
        rig.controller.place(spec)
        #expect(try await rig.act(id, .rescue).kind == .taskDone)
        #expect(disks().last.map { "\($0.0) \($0.1) \($0.2)" } == "disk.rescue hda cdrom", "\(disks())")
        let back = try await rig.act(id, .unrescue)
        #expect(back.kind == .taskDone && back.vmState == .active)
        #expect(disks().map(\.0) == ["disk", "disk.eph0", "disk.swap"] && rig.hypervisor.guest(id)?.definition.os.bootDevices == ["hd"])
    }

    /// A soft delete powers the guest off and keeps its domain and disks; a restore powers
    /// it on again. Each may be asked twice (a redelivered message).
    @Test func softDeleteAndRestore() async throws {
        let rig = try await Rig()
        defer { rig.remove() }
        let id = try await rig.built()
        for _ in 0..<2 {
            let update = try await rig.act(id, .softDelete)
            #expect(update.kind == .taskDone && update.vmState == .softDeleted && update.powerState == .shutdown, "\(update)")
            #expect(rig.hypervisor.guest(id)?.state == .shutOff && FileManager.default.fileExists(atPath: rig.files(id).disk))
        }
        for _ in 0..<2 {
            let update = try await rig.act(id, .restore)
            #expect(update.kind == .taskDone && update.vmState == .active && update.powerState == .running, "\(update)")
            #expect(rig.hypervisor.guest(id)?.state == .running)
        }
    }

    @Test func aFailedActionReportsTheStateTheGuestIsIn() async throws {
        let rig = try await Rig()
        defer { rig.remove() }
        let id = try await rig.built()
        rig.hypervisor.fail([.pause])
        let update = try await rig.act(id, .pause)
        #expect(update.kind == .taskFailed && update.vmState == .active && update.powerState == .running)
        rig.hypervisor.fail([])
        // A failed snapshot deletes its image, as Nova does.
        rig.hypervisor.fail([.pause])
        let snapshot = try await rig.act(id, .snapshot, imageID: "snap-2")
        #expect(snapshot.kind == .taskFailed && rig.images.deleted == ["snap-2"] && rig.images.uploaded.isEmpty)
    }

    @Test func aBuildFailingAtAnyStepLeavesNothingBehind() async throws {
        let rig = try await Rig()
        defer { rig.remove() }
        for failure in ["download", "define", "start"] {
            let spec = rig.spec()
            rig.controller.place(spec)
            rig.images.failDownloads = failure == "download"
            rig.hypervisor.fail(failure == "define" ? [.define] : failure == "start" ? [.start] : [])
            // A cached image would skip the download.
            try? FileManager.default.removeItem(atPath: rig.directory + "/instances/_base/image-1")
            await rig.compute.build(spec.id, context: RequestContext())
            let reported = try #require(rig.controller.lastFailure, "\(failure)")
            #expect(reported.instanceID == spec.id && reported.reason.contains("injected failure at \(failure)"), "\(reported)")
            #expect(rig.hypervisor.guest(spec.id) == nil, "failing at \(failure) left a guest")
            #expect(!rig.files(spec.id).exists, "failing at \(failure) left \(rig.files(spec.id).directory)")
            if failure == "start" {
                // The undos ran newest first: the domain went before its disks.
                #expect(rig.hypervisor.calls.last == "undefine \(spec.id)")
            }
        }
        rig.images.failDownloads = false
        rig.hypervisor.fail([])
        #expect(rig.hypervisor.isEmpty)
    }

    @Test func deleteAndReconcileRemoveWhatTheControllerNoLongerHas() async throws {
        let rig = try await Rig()
        defer { rig.remove() }
        let deleted = try await rig.built()
        try await rig.compute.delete(deleted, context: RequestContext())
        #expect(rig.hypervisor.guest(deleted) == nil && !rig.files(deleted).exists)
        #expect(rig.controller.lastUpdate?.kind == .deleted)
        try await rig.compute.delete(deleted, context: RequestContext())  // idempotent

        let orphan = try await rig.built()
        let kept = try await rig.built()
        rig.controller.forget(orphan)
        try await rig.compute.reconcile()
        #expect(rig.hypervisor.guest(orphan) == nil && !rig.files(orphan).exists)
        #expect(rig.hypervisor.guest(kept)?.state == .running && rig.files(kept).exists)
    }

    @Test func reconcileUnplugsOnlyVolumesTheControllerHasNotAttached() async throws {
        let rig = try await Rig()
        defer { rig.remove() }
        let id = try await rig.built()
        func disk(_ n: Int) -> VolumeDisk { VolumeDisk(volumeID: "vol-\(n)", path: rig.directory + "/volume-\(n)", block: false) }
        for n in 1...4 { _ = try await rig.compute.attachVolume(id, disk(n)) }
        func plugged() async throws -> [Int] {
            let xml = try #require(try await rig.hypervisor.definition(id))
            return (1...4).filter { InstanceDomain.hasVolume(xml, volumeID: "vol-\($0)") }
        }
        #expect(try await plugged() == [1, 2, 3, 4])
        var spec = try #require(try await rig.controller.instances(on: "h", ids: [id]).first)
        #expect(spec.taskState == nil)
        // Volume 1 attached, 2 being attached, 3 swapped (the guest's disk reads the new volume's
        // file under the old serial), 4 unknown to the controller (an attach it gave up on).
        spec.volumes = [disk(1), VolumeDisk(volumeID: "vol-new", path: disk(3).path, block: false, device: "vdd")]
        spec.attachingVolumes = ["vol-2"]
        spec.taskState = .rebooting
        rig.controller.place(spec)
        try await rig.compute.reconcile()
        #expect(try await plugged() == [1, 2, 3, 4], "nothing is unplugged while an action runs")
        spec.taskState = nil
        spec.attachingVolumes = nil
        rig.controller.place(spec)
        try await rig.compute.reconcile()
        #expect(try await plugged() == [1, 2, 3, 4], "a controller that does not say what it is attaching changes nothing")
        spec.attachingVolumes = ["vol-2"]
        rig.controller.place(spec)
        try await rig.compute.reconcile()
        #expect(try await plugged() == [1, 2, 3])
        spec.attachingVolumes = []
        rig.controller.place(spec)
        try await rig.compute.reconcile()
        #expect(try await plugged() == [1, 3], "the controller gave up on attaching volume 2")
        await #expect(throws: (any Error).self, "an attach the controller gave up on, delivered late") {
            _ = try await rig.compute.attachVolume(id, disk(2))
        }
        #expect(try await plugged() == [1, 3])
    }

    @Test func reverterUndoesNewestFirstAndOnlyOnFailure() async throws {
        let log = Logger(label: "test")
        let order = OrderLog()
        await #expect(throws: HypervisorError.self) {
            try await Reverter.run(logger: log) { revert in
                revert.add("one") { order.append("undo one") }
                revert.add("two") { order.append("undo two"); throw HypervisorError("undo two failed") }
                revert.add("three") { order.append("undo three") }
                throw HypervisorError("step four failed")
            }
        }
        #expect(order.entries == ["undo three", "undo two", "undo one"], "a failing undo does not stop the others")
        let value = try await Reverter.run(logger: log) { revert in
            revert.add("one") { order.append("undone after success") }
            return 42
        }
        #expect(value == 42 && !order.entries.contains("undone after success"))
    }
}

final class OrderLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func append(_ entry: String) { lock.withLock { list.append(entry) } }
    var entries: [String] { lock.withLock { list } }
}
