import Contracts
import Foundation
import Hosts
import Images
import SQLKit
import Networking
import Placement
import Store
import Volumes

/// A server (Nova's instance): what the APIs read and may change of it. Its database row
/// stays inside Compute.
public struct Server: Sendable, Equatable {
    var row: InstanceRow
    public var metadata: [String: String]
    public var fault: InstanceFault?
    public var faultCreated: Int64?

    public var id: String { row.id }

    init(_ row: InstanceRow) {
        self.row = row
        metadata = JSONColumn.decode(row.metadata, fallback: [:])
        let stored = JSONColumn.decode(row.fault ?? "null", as: StoredFault?.self, fallback: nil)
        fault = stored.map { InstanceFault(code: $0.code, message: $0.message, details: $0.details) }
        faultCreated = stored?.created
    }

    public var flavorExtraSpecs: [String: String] { JSONColumn.decode(row.flavorExtraSpecs, fallback: [:]) }

    /// Nova's API status from the VM and task states.
    public var status: String { ServerStatus(vmState: row.vm, taskState: row.task).rawValue }

    public var vmState: VMState? { row.vm }
    public var taskState: TaskState? { row.task }
    public var powerState: PowerState { PowerState(rawValue: row.powerState) ?? .noState }

    public var name: String {
        get { row.name }
        set { row.name = newValue }
    }
    public var imageID: String? {
        get { row.imageID }
        set { row.imageID = newValue }
    }
    public var projectID: String { row.projectID }
    public var userID: String { row.userID }
    /// The host it is placed on (nil while it waits for one).
    public var host: String? { row.host }
    public var availabilityZone: String? { row.availabilityZone }
    public var flavorID: String { row.flavorID }
    /// The flavor's name when the server was created.
    public var flavorName: String? { row.flavorName }
    public var vcpus: Int { row.vcpus }
    public var memoryMB: Int { row.memoryMB }
    public var rootGB: Int { row.rootGB }
    public var ephemeralGB: Int { row.ephemeralGB }
    public var swap: Int { row.swap }
    public var keyName: String? { row.keyName }
    public var userData: String? { row.userData }
    public var reservationID: String? { row.reservationID }
    public var hostname: String? {
        get { row.hostname }
        set { row.hostname = newValue }
    }
    /// Its index among the servers one request created.
    public var launchIndex: Int { row.launchIndex }
    /// The key pair's public key and type as they were at creation (nil: none, or created
    /// before Petrel kept the copy).
    public var keyData: String? { row.keyData }
    public var keyType: String? { row.keyType }
    /// What the guest posted to the metadata API's `password`.
    public var metadataPassword: String? { row.metadataPassword }
    /// Whether it boots with a config drive (Nova's `config_drive`).
    public var configDrive: Bool { row.configDrive }
    /// Unix milliseconds.
    public var createdAt: Int64 { row.createdAt }
    public var updatedAt: Int64 { row.updatedAt }
    public var launchedAt: Int64? { row.launchedAt }
    public var accessIPv4: String? {
        get { row.accessIPv4 }
        set { row.accessIPv4 = newValue }
    }
    public var accessIPv6: String? {
        get { row.accessIPv6 }
        set { row.accessIPv6 = newValue }
    }
    public var description: String? {
        get { row.description }
        set { row.description = newValue }
    }
    /// Who locked it ("owner" or "admin"); nil: unlocked.
    public var lockedBy: String? { row.lockedBy }
    public var locked: Bool { row.lockedBy != nil }
    public var lockedReason: String? { row.lockedReason }
    public var tags: [String] {
        get { JSONColumn.decode(row.tags, fallback: []) }
        set { row.tags = JSONColumn.encode(newValue, fallback: "[]") }
    }
    /// The `os:scheduler_hints` it was created with, as JSON text (an object).
    public var schedulerHintsText: String { row.schedulerHints }
}

struct StoredFault: Codable {
    var code: Int
    var message: String
    var details: String?
    var created: Int64
}

/// What a user asks for in `POST /servers`, validated for shape by the API.
public struct ServerRequest: Sendable {
    public var name: String
    public var flavorRef: String
    public var imageRef: String
    public var keyName: String?
    public var userData: String?
    public var metadata: [String: String]
    public var availabilityZone: String?
    public var minCount: Int
    public var maxCount: Int
    public var hostname: String?
    /// Nova's `config_drive`: the metadata also on an ISO 9660 disk labelled config-2.
    public var configDrive: Bool
    /// The networks and ports to plug, in order (empty: `none`).
    public var networks: [RequestedNetwork] = []
    /// `availability_zone: "zone:host"` / `"zone::node"` (admins only, by policy): the build goes
    /// to that host without the scheduler's filters, as Nova's forced host.
    public var forcedHost: String?
    public var forcedNode: String?
    /// The volumes of `block_device_mapping_v2`; one with boot index 0 is the root disk (and
    /// `imageRef` is then unused).
    public var blockDevices: [BlockDeviceRequest] = []
    public var accessIPv4: String?
    public var accessIPv6: String?
    public var description: String?
    public var tags: [String] = []
    /// `os:scheduler_hints` as JSON text (an object), kept to be shown from 2.100.
    public var schedulerHints = "{}"
    /// The server group to join (the `group` hint).
    public var groupID: String?

    public init(name: String, flavorRef: String, imageRef: String, keyName: String? = nil, userData: String? = nil,
                metadata: [String: String] = [:], availabilityZone: String? = nil, minCount: Int = 1, maxCount: Int = 1,
                hostname: String? = nil, configDrive: Bool = false) {
        self.configDrive = configDrive
        self.name = name; self.flavorRef = flavorRef; self.imageRef = imageRef; self.keyName = keyName; self.userData = userData
        self.metadata = metadata; self.availabilityZone = availabilityZone; self.minCount = minCount; self.maxCount = maxCount
        self.hostname = hostname
    }
}

/// Who is asking: the project and user a server belongs to, and whether they are an admin.
public struct ServerCaller: Sendable {
    public var projectID: String
    public var userID: String
    public var isAdmin: Bool

    public init(projectID: String, userID: String, isAdmin: Bool) {
        self.projectID = projectID
        self.userID = userID
        self.isAdmin = isAdmin
    }
}

/// Nova's servers: creation with its checks (flavor, image, key pair, zone, quotas), the
/// instance state machine (which action is allowed in which state, the task it starts, the
/// state it ends in) and the updates nodes send.
public struct Servers: Sendable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case notFound(String)
        case badRequest(String)
        /// 409: not in a state that allows the action.
        case conflict(String)
        /// 403: over quota.
        case quota(String)
        /// 500: a host could not do what was asked.
        case internalError(String)

        public var description: String {
            switch self {
            case .notFound(let id): return "Instance \(id) could not be found."
            case .badRequest(let message), .conflict(let message), .quota(let message), .internalError(let message): return message
            }
        }
    }

    public let database: Database
    public let images: ImageService
    let quotas: Quotas
    let defaultAvailabilityZone: String
    /// Neutron's core: the ports servers are plugged into (nil: servers have no network).
    public let networking: NetworkService?
    /// Cinder's side of the servers' volumes (nil: a cloud without one).
    public let volumes: VolumeService?
    /// Nova's `reclaim_instance_interval` (seconds): above 0, a deleted server that ran is
    /// soft-deleted and kept that long before it is deleted for good.
    public var reclaimInstanceInterval = 0

    public init(database: Database, images: ImageService, quotas: Quotas, defaultAvailabilityZone: String = "nova",
                networking: NetworkService? = nil, volumes: VolumeService? = nil) {
        self.networking = networking
        self.volumes = volumes
        self.database = database
        self.images = images
        self.quotas = quotas
        self.defaultAvailabilityZone = defaultAvailabilityZone
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: create

    /// Checks the request against flavors, images, key pairs, zones and quotas and records
    /// the servers (BUILD, scheduling). Returns them; the caller starts their builds.
    public func create(_ request: ServerRequest, by caller: ServerCaller) async throws -> [Server] {
        guard let flavor = try await visibleFlavor(request.flavorRef, to: caller) else {
            throw Failure.badRequest("Flavor \(request.flavorRef) could not be found.")
        }
        let plan = try await planBlockDevices(request.blockDevices, count: request.maxCount, caller: caller)
        // A server whose root is a volume boots no image (Nova shows its `image` as "").
        let image = plan.rootOnVolume ? nil
            : try await bootableImage(request.imageRef, rootGB: flavor.row.rootGB, memoryMB: flavor.row.memoryMB, caller: caller)
        // The key pair is copied into the server, as Nova does: the guest keeps seeing the key
        // it was created with.
        let keyPair: KeyPair?
        if let keyName = request.keyName {
            do {
                keyPair = try await KeyPairs(database: database).get(userID: caller.userID, name: keyName)
            } catch KeyPairs.Failure.notFound {
                throw Failure.badRequest("Invalid key_name provided.")
            }
        } else {
            keyPair = nil
        }
        if let zone = request.availabilityZone { try await checkZone(zone) }
        // A host's one hypervisor is named as the host: a node given alone stands for its host.
        let forcedHost = request.forcedHost ?? request.forcedNode
        if let forcedHost {
            try await checkHost(forcedHost)
            if let node = request.forcedNode, node != forcedHost {
                throw Failure.badRequest("Compute host \(forcedHost) could not be found.")
            }
        }
        if let volumeHost = plan.host, let forcedHost, volumeHost != forcedHost {
            throw Failure.badRequest("Block Device Mapping is Invalid: the snapshots are on \(volumeHost), not on the host asked for (\(forcedHost)).")
        }
        let limits = try await quotas.limits(project: caller.projectID)
        try Self.checkMetadata(request.metadata, limit: limits["metadata_items"])
        let reservation = "r-" + String(UUID().uuidString.lowercased().prefix(8))
        let now = Self.now()
        return try await database.transaction { sql in
            // The group to join, seen by the caller (checked again in the transaction that joins it).
            var group: ServerGroupRow?
            if let groupID = request.groupID {
                guard let row = try await ComputeTables.serverGroups.get(sql, id: groupID), caller.isAdmin || row.projectID == caller.projectID else {
                    throw Failure.badRequest("Server group \(groupID) could not be found.")
                }
                group = row
            }
            // Quotas are counted and the rows written in one transaction.
            let used = try await Quotas.instanceUsage(sql, project: caller.projectID)
            let each = ["instances": 1, "cores": flavor.row.vcpus, "ram": flavor.row.memoryMB]
            var count = request.maxCount
            for resource in ["instances", "cores", "ram"] {
                guard let limit = limits[resource], limit >= 0, each[resource]! > 0 else { continue }
                let fits = max(0, (limit - used[resource]!) / each[resource]!)
                if fits < request.minCount {
                    throw Failure.quota("Quota exceeded for \(resource): Requested \(each[resource]! * request.minCount), but already used \(used[resource]!) of \(limit) \(resource)")
                }
                count = min(count, fits)
            }
            var created: [Server] = []
            for index in 0..<count {
                let name = count > 1 ? "\(request.name)-\(index + 1)" : request.name
                var row = InstanceRow(id: UUID().uuidString.lowercased(), name: name, projectID: caller.projectID, userID: caller.userID,
                                      flavorID: flavor.id, vcpus: flavor.row.vcpus, memoryMB: flavor.row.memoryMB,
                                      rootGB: flavor.row.rootGB, ephemeralGB: flavor.row.ephemeralGB, swap: flavor.row.swap,
                                      imageID: image?.id, availabilityZone: request.availabilityZone, createdAt: now)
                row.metadata = JSONColumn.encode(request.metadata, fallback: "{}")
                row.host = forcedHost ?? plan.host  // the scheduler keeps a host already chosen
                row.blockDevices = JSONColumn.encode(plan.devices, fallback: "[]")
                row.rootOnVolume = plan.rootOnVolume
                row.keyName = request.keyName
                row.keyData = keyPair?.publicKey
                row.keyType = keyPair?.type
                row.launchIndex = index
                row.configDrive = request.configDrive
                row.requestedNetworks = JSONColumn.encode(request.networks, fallback: "[]")
                row.userData = request.userData
                row.reservationID = reservation
                // A hostname the user gives (2.90) is taken as it is; one server only.
                row.hostname = request.hostname ?? Self.hostname(name, index: count > 1 ? index + 1 : nil)
                row.flavorName = flavor.row.name
                row.flavorExtraSpecs = JSONColumn.encode(flavor.extraSpecs, fallback: "{}")
                row.accessIPv4 = request.accessIPv4
                row.accessIPv6 = request.accessIPv6
                row.description = request.description
                row.tags = JSONColumn.encode(request.tags, fallback: "[]")
                row.schedulerHints = request.schedulerHints
                try await ComputeTables.instances.insert(sql, row)
                created.append(Server(row))
            }
            if let group {
                do {
                    try await ServerGroups.join(sql, group: group, instances: created.map(\.id), limit: limits["server_group_members"] ?? -1)
                } catch ServerGroups.Failure.quota(let message) {
                    throw Failure.quota(message)
                }
            }
            return created
        }
    }

    /// The flavor `ref` names if `caller` may use it (not disabled; public, or shared with the
    /// caller's project, or the caller an admin); nil otherwise.
    func visibleFlavor(_ ref: String, to caller: ServerCaller) async throws -> Flavor? {
        let flavors = Flavors(database: database)
        let flavor: Flavor
        do { flavor = try await flavors.get(ref) } catch Flavors.Failure.notFound { return nil }
        guard !flavor.row.disabled else { return nil }
        if flavor.row.isPublic || caller.isAdmin { return flavor }
        return try await flavors.projects(of: flavor.id).contains(caller.projectID) ? flavor : nil
    }

    /// The image a create or a rebuild boots (an id, or a URL ending in one), by Nova's rules:
    /// visible to the caller, active, fitting the root disk (unless it is 0) and meeting the
    /// image's `min_disk` and `min_ram`.
    func bootableImage(_ ref: String, rootGB: Int, memoryMB: Int, caller: ServerCaller) async throws -> Image {
        let id = ref.split(separator: "/").last.map(String.init) ?? ref
        guard let image = try await existingImage(id), Self.visible(image, to: caller) else {
            throw Failure.badRequest("Image \(id) could not be found.")
        }
        guard image.status == "active" else { throw Failure.badRequest("Image \(image.id) is not active.") }
        let rootBytes = Int64(rootGB) << 30
        if rootGB > 0 {
            for size in [image.size, image.virtualSize].compactMap({ $0 }) where size > rootBytes {
                throw Failure.badRequest("Flavor's disk is too small for requested image. Flavor disk is \(rootBytes) bytes, image is \(size) bytes.")
            }
            if image.minDisk > rootGB {
                throw Failure.badRequest("Flavor's disk is too small for requested image. Flavor disk is \(rootBytes) bytes, image needs \(Int64(image.minDisk) << 30) bytes.")
            }
        }
        if image.minRam > memoryMB {
            throw Failure.badRequest("Flavor's memory is too small for requested image.")
        }
        return image
    }

    /// The image a rebuild of `server` asks for, checked as a create checks it.
    public func rebuildImage(_ ref: String, for server: Server, by caller: ServerCaller) async throws -> String {
        if server.row.rootOnVolume {
            throw Failure.badRequest("Rebuilding a volume-backed server is not supported by this cloud: its root disk is a volume.")
        }
        return try await bootableImage(ref, rootGB: server.row.rootGB, memoryMB: server.row.memoryMB, caller: caller).id
    }

    /// Starts a snapshot: the `image_snapshot` task, and the image it fills (queued, owned by
    /// the server's project, with Nova's snapshot properties). Returns the image and the host.
    public func beginSnapshot(_ id: String, name: String, properties: [String: String], by caller: ServerCaller) async throws
        -> (imageID: String, host: String) {
        if try await get(id, by: caller).row.rootOnVolume {
            throw Failure.badRequest("Snapshots of volume-backed servers are not supported by this cloud yet; snapshot the root volume instead (openstack volume snapshot create --force).")
        }
        let (server, host, _) = try await begin("createImage", on: id, by: caller)
        let snapshot = Self.snapshotImage(UUID().uuidString.lowercased(), name: name, of: server, properties: properties, by: caller)
        do {
            return (try await images.create(snapshot).id, host)
        } catch {
            try? await clearTask(id, InstanceAction.Action.snapshot.task)
            throw error
        }
    }

    /// The (queued) image a server's disk is uploaded into, with Nova's snapshot properties.
    static func snapshotImage(_ id: String, name: String, of server: Server, properties: [String: String] = [:],
                              by caller: ServerCaller) -> Image {
        var inherited = properties
        inherited["image_type"] = "snapshot"
        inherited["instance_uuid"] = server.id
        inherited["user_id"] = caller.userID
        if let base = server.row.imageID { inherited["base_image_ref"] = base }
        return Image.queued(id: id, name: name, owner: server.projectID, visibility: "private", diskFormat: "qcow2",
                            containerFormat: "bare", minDisk: server.rootGB, properties: inherited)
    }

    /// Refuses an availability zone no aggregate has (the default zone always exists).
    func checkZone(_ zone: String) async throws {
        guard zone != defaultAvailabilityZone else { return }
        let known = try await Aggregates(database: database).list().compactMap(\.availabilityZone)
        guard known.contains(zone) else { throw Failure.badRequest("The requested availability zone is not available") }
    }

    /// Refuses a host no hypervisor reports.
    func checkHost(_ host: String) async throws {
        let known = Set(try await ServiceStore(database).hypervisors().map(\.host))
        guard known.contains(host) else { throw Failure.badRequest("Compute host \(host) could not be found.") }
    }

    /// The image with this id, or nil if there is none (other failures are thrown).
    public func existingImage(_ id: String) async throws -> Image? {
        do {
            return try await images.get(id)
        } catch ImageService.Failure.notFound {
            return nil
        }
    }

    static func visible(_ image: Image, to caller: ServerCaller) -> Bool {
        caller.isAdmin || image.visibility == "public" || image.visibility == "community" || image.owner == caller.projectID
    }

    /// A host name from a server name, as Nova sanitizes it: letters, digits and '-'.
    static func hostname(_ name: String, index: Int?) -> String {
        var text = String(name.lowercased().map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "-" })
            .trimmingCharacters(in: CharacterSet(charactersIn: "-."))
        if text.isEmpty { text = "server" }
        if let index, !text.hasSuffix("-\(index)") { text += "-\(index)" }
        return String(text.prefix(63))
    }

    // MARK: read

    public func get(_ id: String, by caller: ServerCaller) async throws -> Server {
        let row = try await database.withConnection { sql in try await ComputeTables.instances.get(sql, id: id) }
        guard let row, caller.isAdmin || row.projectID == caller.projectID else { throw Failure.notFound(id) }
        return Server(row)
    }

    // MARK: change

    /// Reads, changes and writes one server in a transaction.
    @discardableResult
    public func change(_ id: String, by caller: ServerCaller, _ body: @escaping @Sendable (inout Server) throws -> Void) async throws -> Server {
        try await database.transaction { sql in
            guard let row = try await ComputeTables.instances.lockedGet(sql, id: id), caller.isAdmin || row.projectID == caller.projectID else {
                throw Failure.notFound(id)
            }
            var server = Server(row)
            try body(&server)
            server.row.metadata = JSONColumn.encode(server.metadata, fallback: "{}")
            server.row.updatedAt = Self.now()
            try await ComputeTables.instances.update(sql, id: id, server.row)
            return server
        }
    }

    /// Nova's `metadata_items` quota: how many items one server's metadata may hold.
    static func checkMetadata(_ metadata: [String: String], limit: Int?) throws {
        if let limit, limit >= 0, metadata.count > limit {
            throw Failure.quota("Quota exceeded for metadata_items: Requested \(metadata.count), but already used 0 of \(limit) metadata_items")
        }
    }

    /// Checks metadata a caller is about to give a server against their project's quota.
    public func checkMetadata(_ metadata: [String: String], by caller: ServerCaller) async throws {
        try Self.checkMetadata(metadata, limit: try await quotas.limits(project: caller.projectID)["metadata_items"])
    }

    /// Sets metadata items (`replace`: the whole metadata) within the quota.
    public func setMetadata(_ id: String, _ items: [String: String], replace: Bool, by caller: ServerCaller) async throws -> Server {
        let limit = try await quotas.limits(project: caller.projectID)["metadata_items"]
        return try await change(id, by: caller) { server in
            try Self.checkLock(server.row, caller)
            let merged = replace ? items : server.metadata.merging(items) { $1 }
            try Self.checkMetadata(merged, limit: limit)
            server.metadata = merged
        }
    }

    /// What an action needs and does: the VM states it is allowed in, the task it runs as,
    /// and what the node is asked to do.
    public struct Transition: Sendable {
        public let name: String
        public let allowed: Set<VMState>
        public let action: InstanceAction.Action
        /// The task it runs as.
        public var task: TaskState { action.task }
    }

    public static let transitions: [String: Transition] = [
        "reboot_soft": Transition(name: "reboot", allowed: [.active], action: .rebootSoft),
        "reboot_hard": Transition(name: "reboot", allowed: [.active, .stopped, .paused, .suspended, .error], action: .rebootHard),
        "os-stop": Transition(name: "stop", allowed: [.active, .error], action: .stop),
        "os-start": Transition(name: "start", allowed: [.stopped], action: .start),
        "pause": Transition(name: "pause", allowed: [.active], action: .pause),
        "unpause": Transition(name: "unpause", allowed: [.paused], action: .unpause),
        "suspend": Transition(name: "suspend", allowed: [.active], action: .suspend),
        "resume": Transition(name: "resume", allowed: [.suspended], action: .resume),
        "rebuild": Transition(name: "rebuild", allowed: [.active, .stopped, .error], action: .rebuild),
        "createImage": Transition(name: "createImage", allowed: [.active, .stopped, .paused, .suspended], action: .snapshot),
        "shelve": Transition(name: "shelve", allowed: [.active, .stopped, .paused, .suspended], action: .shelve),
        "shelveOffload": Transition(name: "shelveOffload", allowed: [.shelved], action: .shelveOffload),
        "unshelve": Transition(name: "unshelve", allowed: [.shelved], action: .unshelve),
        "confirmResize": Transition(name: "confirmResize", allowed: [.resized], action: .confirmResize),
        "revertResize": Transition(name: "revertResize", allowed: [.resized], action: .revertResize),
        "createBackup": Transition(name: "createBackup", allowed: [.active, .stopped, .paused, .suspended], action: .backup),
        "rescue": Transition(name: "rescue", allowed: [.active, .stopped, .error], action: .rescue),
        "unrescue": Transition(name: "unrescue", allowed: [.rescued], action: .unrescue),
        "restore": Transition(name: "restore", allowed: [.softDeleted], action: .restore),
    ]

    /// Starts an action: checks the state, sets the task (atomically: a second action while
    /// one runs is refused) and returns the server, the host to ask and what to ask it.
    /// `prepare` may change the server further in the same transaction (a rebuild's new image).
    public func begin(_ key: String, on id: String, by caller: ServerCaller,
                      prepare: @escaping @Sendable (inout Server) throws -> Void = { _ in }) async throws
        -> (Server, String, InstanceAction.Action) {
        guard let transition = Self.transitions[key] else { throw Failure.badRequest("Unknown action \(key).") }
        let server = try await change(id, by: caller) { server in
            // A snapshot is the one action Nova allows on a locked server.
            if transition.action != .snapshot { try Self.checkLock(server.row, caller) }
            guard let state = server.row.vm, transition.allowed.contains(state), server.row.taskState == nil else {
                throw Self.stateConflict(transition.name, server.row)
            }
            guard server.row.host != nil else {
                throw Failure.conflict("Cannot '\(transition.name)' instance \(server.id) while it is in vm_state \(server.row.vmState)")
            }
            server.row.set(task: transition.task)
            try prepare(&server)
        }
        return (server, server.row.host ?? "", transition.action)
    }

    /// Nova's refusal of an action in the server's present state (its task, else its VM state).
    static func stateConflict(_ action: String, _ row: InstanceRow) -> Failure {
        let (attribute, state) = row.taskState.map { ("task_state", $0) } ?? ("vm_state", row.vmState)
        return Failure.conflict("Cannot '\(action)' instance \(row.id) while it is in \(attribute) \(state)")
    }

    /// Where a delete goes: nowhere (the server was never placed, or its host is gone: the
    /// record is removed now and the node cleans up when it reconciles), or to its host.
    public enum DeleteRoute: Sendable, Equatable {
        case removed
        case host(String)
    }

    public func beginDelete(_ server: Server, by caller: ServerCaller, hostIsUp: @escaping @Sendable (String) async throws -> Bool) async throws -> DeleteRoute {
        let id = server.id
        try Self.checkLock(server.row, caller)
        if let host = server.row.host, try await hostIsUp(host) {
            try await change(id, by: caller) { $0.row.set(task: .deleting) }
            return .host(host)
        }
        try await database.transaction { sql in
            try await ComputeTables.instances.delete(sql, where: [.equals("id", id)])
            try await PlacementStore.release(sql, consumer: id)
            try await Self.forgetActions(sql, instanceID: id)
            try await ServerGroups.leave(sql, instanceID: id)
            try await MigrationRecord.forget(sql, instanceID: id)
        }
        await releasePorts(server.row)
        try await volumes?.releaseAll(instanceID: id)
        // A shelved server's disk image goes with it, as Nova's.
        if let image = server.row.shelvedImageID { try? await images.delete(image) }
        return .removed
    }

    // MARK: nodes

    /// The spec a node builds from. `known` holds images already read (by id; nil: deleted).
    public func spec(_ row: InstanceRow, known: [String: InstanceSpec.Image?] = [:]) async throws -> InstanceSpec {
        var image: InstanceSpec.Image?
        if let imageID = Self.bootImage(row) {
            if let cached = known[imageID] {
                image = cached
            } else if let found = try await existingImage(imageID) {
                image = InstanceSpec.Image(id: found.id, diskFormat: found.diskFormat ?? "raw", checksum: found.checksum,
                                           size: found.size, properties: found.properties)
            }
        }
        let flavor = InstanceSpec.Flavor(id: row.flavorID, name: row.flavorName ?? row.flavorID, vcpus: row.vcpus, memoryMB: row.memoryMB,
                                         rootGB: row.rootGB, ephemeralGB: row.ephemeralGB, swapMB: row.swap,
                                         extraSpecs: JSONColumn.decode(row.flavorExtraSpecs, fallback: [:]))
        // The config drive holds what the metadata API would serve, as it is at build time.
        let drive = row.configDrive
            ? InstanceMetadata(row: row, key: try await MetadataService.key(of: row, database: database),
                               interfaces: try await guestInterfaces(Server(row)),
                               availabilityZone: row.availabilityZone ?? defaultAvailabilityZone)
                .configDriveFiles().map { InstanceSpec.ConfigDriveFile(path: $0.path, contents: $0.contents) }
            : nil
        let volumes = try await volumeDisks(row)
        var spec = InstanceSpec(id: row.id, name: row.name, projectID: row.projectID, userID: row.userID, host: row.host, flavor: flavor,
                                image: image, vmState: row.vm ?? .error, taskState: row.task, stamp: row.stateStamp, configDrive: drive,
                                nics: try await nics(row), volumes: volumes.plugged, attachingVolumes: volumes.attaching)
        spec.shelvedImageID = row.shelvedImageID
        spec.rescueImage = try await rescueImage(row)
        if row.task == .resizeMigrating || row.task == .resizeReverting {
            spec.resize = try await database.withConnection { sql in try await self.resizeSpec(sql, row) }
        }
        return spec
    }

    /// The image a node builds the instance from: its shelved snapshot while it is unshelved
    /// from offload, else the image it was created (or rebuilt) with.
    static func bootImage(_ row: InstanceRow) -> String? {
        if row.vm == .shelvedOffloaded, let shelved = row.shelvedImageID { return shelved }
        return row.imageID
    }

    /// What should be on `host` (all of it, or the instances in `ids`).
    public func specs(host: String, ids: [String]?) async throws -> [InstanceSpec] {
        var conditions: [Table<InstanceRow>.Condition] = [.equals("host", host)]
        if let ids { conditions.append(.inList("id", ids)) }
        let query = conditions
        let rows = try await database.withConnection { sql in try await ComputeTables.instances.all(sql, where: query) }
        var result: [InstanceSpec] = []
        var known: [String: InstanceSpec.Image?] = [:]  // one image read per image, not per instance
        for row in rows {
            let spec = try await spec(row, known: known)
            if let imageID = Self.bootImage(row) { known[imageID] = .some(spec.image) }
            result.append(spec)
        }
        return result
    }

    /// Applies a node's update if it is newer than the last applied and still relevant.
    /// Returns whether it changed anything.
    @discardableResult
    public func apply(_ update: InstanceUpdate.Arguments) async throws -> Bool {
        let (changed, deleted, shelving) = try await database.transaction { sql -> (Bool, InstanceRow?, (InstanceRow, InstanceRow)?) in
            guard var row = try await ComputeTables.instances.lockedGet(sql, id: update.instanceID), row.host == update.host else {
                return (false, nil, nil)
            }
            let before = row
            if update.kind == .deleted {
                guard row.task == .deleting else { return (false, nil, nil) }
                try await ComputeTables.instances.delete(sql, where: [.equals("id", row.id)])
                try await PlacementStore.release(sql, consumer: row.id)
                try await Self.forgetActions(sql, instanceID: row.id)
                try await ServerGroups.leave(sql, instanceID: row.id)
                try await MigrationRecord.forget(sql, instanceID: row.id)
                return (true, row, nil)
            }
            // Messages are handled concurrently, so they may arrive out of order: the power
            // state is taken only from a message newer than the last applied; a task's end
            // applies whenever that task is still the one running (one task runs at a time).
            let newer = update.stamp > row.stateStamp
            if newer {
                row.stateStamp = update.stamp
                row.powerState = update.powerState.rawValue
            }
            switch update.kind {
            case .taskDone, .taskFailed:
                guard let task = update.endsTask, row.task == task else {
                    // The task this ends is over (or another began): keep only the power state.
                    guard newer else { return (false, nil, nil) }
                    break
                }
                if let state = update.vmState { row.set(state) }
                row.taskState = nil
                if [.resizeMigrating, .resizeConfirming, .resizeReverting].contains(task) {
                    // A confirm or revert that failed half-way leaves the server for an admin to look at (Nova: ERROR).
                    if update.kind == .taskFailed && task != .resizeMigrating { row.set(.error) }
                    try await Self.finishResizeTask(sql, task, done: update.kind == .taskDone, row: &row)
                }
                try await Self.finishEvents(sql, instanceID: row.id, succeeded: update.kind == .taskDone, host: update.host,
                                            details: update.fault?.message)
                // A failed shelve leaves no image behind (the node deleted it).
                if update.kind == .taskFailed && task == .shelving { row.shelvedImageID = nil }
                if row.vm == .shelvedOffloaded {
                    // Offloaded: the server leaves its host, and the host's resources are free.
                    row.host = nil
                    try await PlacementStore.release(sql, consumer: row.id)
                } else if row.vm == .active {
                    row.shelvedImageID = nil
                }
                // Out of rescue (or a rescue that did not happen): no rescue image any more.
                if row.vm != .rescued { row.rescueImageID = nil }
                if task == .imageBackup { row.pendingBackup = nil }
                if update.kind == .taskDone && row.vm == .active && row.launchedAt == nil { row.launchedAt = Self.now() }
                if let fault = update.fault {
                    row.fault = JSONColumn.encode(StoredFault(code: fault.code, message: fault.message, details: fault.details,
                                                              created: Self.now()), fallback: "null")
                } else if row.vm != .error {
                    row.fault = nil
                }
            case .powerChanged:
                // Nova's power-state sync: without a task running, the hypervisor is right.
                guard newer else { return (false, nil, nil) }
                guard row.taskState == nil else { break }
                switch (row.vm, update.powerState) {
                case (.active?, .shutdown), (.active?, .crashed): row.set(.stopped)
                case (.stopped?, .running): row.set(.active)
                case (.active?, .paused): row.set(.paused)
                case (.paused?, .running): row.set(.active)
                default: break
                }
            case .deleted: break
            }
            row.updatedAt = Self.now()
            try await ComputeTables.instances.update(sql, id: row.id, row)
            return (true, nil, (before, row))
        }
        if let (before, after) = shelving { await finishShelving(before, after) }
        // A backup uploaded: the oldest of its type beyond its rotation go.
        if let (before, after) = shelving, update.kind == .taskDone, update.endsTask == .imageBackup, before.task == .imageBackup,
           after.task == nil, let pending = JSONColumn.decode(before.pendingBackup ?? "null", as: PendingBackup?.self, fallback: nil) {
            _ = try? await rotateBackups(of: after, pending)
        }
        if let deleted {
            if let image = deleted.shelvedImageID { try? await images.delete(image) }
            await releasePorts(deleted)
            // Its volumes are available again (the domain, and with it the disks, is gone).
            try await volumes?.releaseAll(instanceID: deleted.id)
        }
        return changed
    }

    /// Puts a server in ERROR with a fault, unless a delete is under way.
    public func fail(_ id: String, fault: InstanceFault) async throws {
        try await database.transaction { sql in
            guard var row = try await ComputeTables.instances.lockedGet(sql, id: id), row.task != .deleting else { return }
            row.set(.error)
            row.taskState = nil
            row.fault = JSONColumn.encode(StoredFault(code: fault.code, message: fault.message, details: fault.details, created: Self.now()),
                                          fallback: "null")
            try await Self.finishEvents(sql, instanceID: id, succeeded: false, host: row.host, details: fault.message)
            row.updatedAt = Self.now()
            try await ComputeTables.instances.update(sql, id: id, row)
        }
    }

    /// A build failed on `host`: forget the host (its claim goes with it) and remember it was
    /// tried. Returns how many hosts have been tried, or nil when the instance is no longer
    /// building there.
    public func releaseFailedBuild(_ id: String, host: String) async throws -> Int? {
        try await database.transaction { sql in
            guard var row = try await ComputeTables.instances.lockedGet(sql, id: id), row.host == host,
                  row.vm == .building || row.vm == .shelvedOffloaded, row.task != .deleting else { return nil }
            var tried = JSONColumn.decode(row.triedHosts, fallback: [String]())
            if !tried.contains(host) { tried.append(host) }
            row.triedHosts = JSONColumn.encode(tried, fallback: "[]")
            row.host = nil
            row.set(task: row.vm == .shelvedOffloaded ? .unshelving : .scheduling)
            row.updatedAt = Self.now()
            try await ComputeTables.instances.update(sql, id: id, row)
            try await PlacementStore.release(sql, consumer: id)
            return tried.count
        }
    }

    /// Moves a scheduled build from `scheduling` to `spawning`; false when it is no longer
    /// waiting for that (deleted meanwhile).
    public func markSpawning(_ id: String) async throws -> Bool {
        try await database.withConnection { sql in
            try await sql.raw("""
                UPDATE instances SET task_state = 'spawning', updated_at = \(bind: Self.now())
                WHERE id = \(bind: id) AND host IS NOT NULL
                  AND ((vm_state = 'building' AND task_state = 'scheduling') OR (vm_state = 'shelved_offloaded' AND task_state = 'unshelving'))
                RETURNING id
                """).all().count == 1
        }
    }

    /// Ends `task` without changing the VM state (its action could not be sent).
    public func clearTask(_ id: String, _ task: TaskState) async throws {
        try await database.withConnection { sql in
            try await sql.raw("UPDATE instances SET task_state = NULL WHERE id = \(bind: id) AND task_state = \(bind: task.rawValue)").run()
        }
    }

    /// Builds waiting for a host (a controller stopped while scheduling them).
    public func waitingForHost() async throws -> [InstanceRow] {
        try await database.withConnection { sql in
            try await ComputeTables.instances.all(sql, where: [.equals("vm_state", VMState.building.rawValue),
                                                                .equals("task_state", TaskState.scheduling.rawValue)])
                + ComputeTables.instances.all(sql, where: [.equals("vm_state", VMState.shelvedOffloaded.rawValue),
                                                           .equals("task_state", TaskState.unshelving.rawValue)])
        }
    }
}
