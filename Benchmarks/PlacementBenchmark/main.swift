// Placement benchmark: the scheduler placing servers on many compute nodes through Placement
// allocations, as the controller does it (the same Scheduler, PlacementStore and SQL), on a
// fresh database: 200 nodes report their hypervisors, 1,000 instances are scheduled with
// several claims at once, each claim an allocation written in the scheduling transaction.
// Prints the time, the process's RSS (the controller's code path, in-process) and checks
// that the allocations add up and no provider is over its capacity.
//
//   swift run -c release petrel-bench-placement [--nodes N] [--servers N] [--concurrency N] [--postgresql URL]
import Compute
import Foundation
import Hosts
import Logging
import PetrelCore
import Placement
import Store

func option(_ name: String, _ fallback: String?) -> String? {
    let args = CommandLine.arguments
    guard let index = args.firstIndex(of: name), index + 1 < args.count else { return fallback }
    return args[index + 1]
}

func rssMB() -> Double {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
}

let nodes = Int(option("--nodes", "200")!)!, servers = Int(option("--servers", "1000")!)!
let concurrency = Int(option("--concurrency", "8")!)!
let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-bench-placement-\(UUID().uuidString)").path
defer { try? FileManager.default.removeItem(atPath: directory) }
let url: DatabaseURL = option("--postgresql", nil).map { .postgresql(url: $0) } ?? .sqlite(path: directory + "/petrel.db")
var logger = Logger(label: "bench-placement")
logger.logLevel = .warning
let database = try Database(url, logger: logger)
try await Migrator().migrate(database)
print("placement benchmark: \(nodes) nodes, \(servers) servers, \(concurrency) at once, \(database.backend.rawValue)")
print(String(format: "RSS at start: %.1f MB", rssMB()))

// The nodes' reports: libvirt's test driver offers 16 CPUs and 8 GB on each.
let store = ServiceStore(database)
for index in 0..<nodes {
    try await store.record(host: String(format: "bench-%03d", index), version: "1", services: [("nova-compute", "compute")],
                           hypervisor: HypervisorRecord(type: "Test", version: 2, cpuModel: "x86_64", vcpus: 16, memoryMB: 8192, localGB: 100))
}
let options = SchedulerOptions()
let placement = PlacementService(database: database, ratios: options.inventoryRatios)
try await placement.syncComputeNodes()
let scheduler = Scheduler(hosts: HostInventory(database: database, serviceDownTime: 300), options: options)
var ids: [String] = []
try await database.transaction { sql in
    for index in 0..<servers {
        let row = InstanceRow(id: UUID().uuidString.lowercased(), name: "bench-\(index)", projectID: "bench", userID: "bench", flavorID: "m1.tiny",
                              vcpus: 1, memoryMB: 128, rootGB: 1, imageID: nil, availabilityZone: nil,
                              createdAt: Int64(Date().timeIntervalSince1970 * 1000))
        try await ComputeTables.instances.insert(sql, row)
    }
}
ids = try await database.withConnection { sql in try await ComputeTables.instances.all(sql).map(\.id) }
print(String(format: "RSS before scheduling: %.1f MB", rssMB()))

let clock = ContinuousClock()
let frozen = ids
let started = clock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    var next = 0
    for _ in 0..<min(concurrency, frozen.count) {
        let id = frozen[next]; next += 1
        group.addTask { _ = try await scheduler.schedule(instanceID: id) }
    }
    while try await group.next() != nil {
        if next < frozen.count {
            let id = frozen[next]; next += 1
            group.addTask { _ = try await scheduler.schedule(instanceID: id) }
        }
    }
}
let elapsed = clock.now - started
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print(String(format: "placed %d servers in %.2f s (%.1f ms each, %.0f per second)", servers, seconds, seconds * 1000 / Double(servers),
             Double(servers) / seconds))
print(String(format: "RSS after scheduling: %.1f MB", rssMB()))

// The allocations add up to what the instances claim, and no provider is over its capacity.
let (usages, inventories, placed) = try await database.withConnection { sql in
    (try await PlacementStore.usages(sql), try await PlacementStore.inventories(sql),
     try await ComputeTables.instances.all(sql).filter { $0.host != nil }.count)
}
let vcpus = usages.values.reduce(0) { $0 + ($1["VCPU"] ?? 0) }, memory = usages.values.reduce(0) { $0 + ($1["MEMORY_MB"] ?? 0) }
var over = 0
for (provider, used) in usages {
    for (resourceClass, amount) in used where amount > (inventories[provider]?[resourceClass]?.capacity ?? 0) { over += 1 }
}
let busiest = usages.values.map { $0["VCPU"] ?? 0 }.max() ?? 0, idlest = usages.count < nodes ? 0 : (usages.values.map { $0["VCPU"] ?? 0 }.min() ?? 0)
print("instances placed: \(placed); allocations: \(vcpus) VCPU, \(memory) MB; providers over capacity: \(over); servers per node: \(idlest)…\(busiest)")
await database.shutdown()
if placed != servers || vcpus != servers || memory != servers * 128 || over != 0 { print("FAILED: the allocations do not add up"); exit(1) }
