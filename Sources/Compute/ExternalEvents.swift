import Contracts
import Foundation
import SQLKit
import Store

/// Nova's server external events: what Neutron, Cinder, Ironic or Cyborg tell the compute
/// service about a server. Each event is answered as Nova's API does (404: no such server,
/// 400: a tag the event needs is missing, 422: the server is on no host, 200: accepted), and
/// an accepted event does in Petrel what it has to do here:
///
/// - `network-changed`, `network-vif-plugged`, `network-vif-unplugged`, `network-vif-deleted`:
///   Nova refreshes its cache of the server's ports, wakes a build waiting for the port to be
///   plugged, or detaches a port Neutron deleted. Petrel keeps no cache (it reads the ports
///   when it shows a server), its node plugs a port itself and waits for no one, and deleting
///   a port goes through Petrel's own network service: nothing is left to do or to record
///   (Nova's API records nothing for them either).
/// - `volume-extended` (2.51): Nova's API records the `extend_volume` action, as here; its
///   compute host then resizes the disk in the guest, which Petrel's node does not do online
///   (the guest sees the new size when the volume is next attached).
/// - `power-update` (2.76, tag `POWER_ON`/`POWER_OFF`): Nova's API records `start`/`stop`;
///   a server idle in the opposite state (active and running, or stopped and shut down) then
///   takes the power state and VM state the event reports, as Nova's compute host does. The
///   node's next report of the guest's real state overrides it.
/// - `accelerator-request-bound` (2.82): Cyborg says a device is bound; nothing in Petrel waits
///   for one (it has no accelerators), so it is accepted and nothing more.
public struct ExternalEvents: Sendable {
    public struct Event: Sendable, Equatable {
        public var name: String
        public var serverID: String
        public var status: String
        public var tag: String?

        public init(name: String, serverID: String, status: String, tag: String?) {
            self.name = name; self.serverID = serverID; self.status = status; self.tag = tag
        }
    }

    /// Events Nova drops without the tag that says which port, volume, state or device.
    public static let tagRequired: Set<String> = ["volume-extended", "power-update", "accelerator-request-bound"]

    let database: Database

    public init(database: Database) { self.database = database }

    /// Each event's HTTP code in Nova's words (200, 400, 404 or 422), after doing what the
    /// accepted ones do.
    public func deliver(_ events: [Event], context: RequestContext) async throws -> [Int] {
        try await database.transaction { sql in
            var codes: [Int] = []
            for event in events {
                guard let row = try await ComputeTables.instances.lockedGet(sql, id: event.serverID) else {
                    codes.append(404)
                    continue
                }
                if Self.tagRequired.contains(event.name) && event.tag == nil {
                    codes.append(400)
                } else if row.host != nil {
                    try await Self.apply(sql, event, row, context: context)
                    codes.append(200)
                } else {
                    codes.append(422)
                }
            }
            return codes
        }
    }

    static func apply(_ sql: any SQLDatabase, _ event: Event, _ row: InstanceRow, context: RequestContext) async throws {
        switch event.name {
        case "volume-extended":
            try await recordAction(sql, row.id, "extend_volume", context: context)
        case "power-update":
            let target: (action: String, power: PowerState, vm: VMState, from: (PowerState, VMState))
            switch event.tag {
            case "POWER_ON": target = ("start", .running, .active, (.shutdown, .stopped))
            case "POWER_OFF": target = ("stop", .shutdown, .stopped, (.running, .active))
            default: return  // Nova logs an invalid power state and skips the event.
            }
            try await recordAction(sql, row.id, target.action, context: context)
            guard row.taskState == nil, row.powerState == target.from.0.rawValue, row.vmState == target.from.1.rawValue else { return }
            var updated = row
            updated.powerState = target.power.rawValue
            updated.vmState = target.vm.rawValue
            updated.updatedAt = Int64(Date().timeIntervalSince1970 * 1000)
            try await ComputeTables.instances.update(sql, id: row.id, updated)
        default:
            return
        }
    }

    /// An instance action with no event on a host (Nova's `action_start(want_result=False)`).
    static func recordAction(_ sql: any SQLDatabase, _ instanceID: String, _ action: String, context: RequestContext) async throws {
        let row = InstanceActionRow(id: UUID().uuidString.lowercased(), instanceID: instanceID, action: action, requestID: context.requestID,
                                    userID: context.userID ?? "", projectID: context.projectID ?? "",
                                    startTime: Int64(Date().timeIntervalSince1970 * 1000))
        try await ComputeTables.instanceActions.insert(sql, row)
    }
}
