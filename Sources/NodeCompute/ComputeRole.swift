import Contracts
import Foundation
import Logging
import NetlinkDriver
import NodeCore
import PetrelCore
import RPC

/// The compute service as one of the node's services: its RPC queue (`compute.<host>`), the
/// hypervisor's events, the periodic power-state sync and image-cache sweep, and the
/// hypervisor's resources in the node's report. Reported as `nova-compute` while it runs.
public final class ComputeRole: NodeService {
    public let name = "compute"
    public let reports = [ServiceReport(binary: "nova-compute", topic: ComputeTopic.name)]

    public struct HostFacts: Sendable {
        /// `[DEFAULT] state_path`: the file system whose size is the hypervisor's disk.
        public var statePath: String
        /// `[DEFAULT] my_ip`, or the address of the default route's interface.
        public var myIP: String?

        public init(statePath: String, myIP: String?) {
            self.statePath = statePath
            self.myIP = myIP
        }
    }

    public let compute: ComputeService
    let server: RPCServer
    let facts: HostFacts
    let logger: Logger

    public init(compute: ComputeService, context: NodeServiceContext, facts: HostFacts) {
        self.compute = compute
        self.facts = facts
        logger = context.logger
        server = RPCServer(link: context.link, topic: ComputeTopic.name, host: context.host, logger: context.logger)
    }

    public func start() async throws {
        compute.register(on: server)
    }

    public func reconcile() async throws {
        // Replies to our calls come through the broker: wait until it is reached.
        await server.ready()
        try await compute.reconcile()
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.server.run() }
            // Without events the node would not see guests change: the service stops.
            group.addTask { try await self.compute.followEvents() }
            group.addTask { await self.compute.runPeriodicTasks() }
            // Any of them ending is the service ending.
            _ = try await group.next()
            group.cancelAll()
        }
    }

    public func contribute(to report: inout ReportState.Arguments) async {
        let hypervisor = compute.hypervisor
        do {
            let host = try await hypervisor.host()
            let running = ((try? await hypervisor.guests()) ?? []).filter { DomainNaming.isInstance($0.name) && $0.state == .running }
            report.hypervisor = HypervisorReport(type: host.type, version: host.version, cpuModel: host.cpuModel, vcpus: host.cpus,
                                                 memoryMB: host.memoryMiB, localGB: Self.localGigabytes(facts.statePath),
                                                 hostIP: facts.myIP ?? Self.defaultRouteAddress(), uptime: Self.uptime(),
                                                 runningVMs: running.count)
            report.hypervisor?.traits = Self.traits(host)
        } catch {
            logger.warning("hypervisor resources unavailable for the report", metadata: ["error": "\(error)"])
        }
    }

    /// What the compute node's resource provider carries in Placement (os-traits names): what
    /// Petrel's libvirt driver does for every guest (virtio disks and NICs, qcow2 and raw images,
    /// BIOS boot, attaching interfaces and volumes, extending attached volumes) and the CPU's
    /// flags as `HW_CPU_X86_*` (the controller keeps only names os-traits defines).
    static func traits(_ host: HypervisorHost) -> [String] {
        var traits = ["COMPUTE_NET_ATTACH_INTERFACE", "COMPUTE_VOLUME_ATTACH", "COMPUTE_VOLUME_EXTEND", "COMPUTE_IMAGE_TYPE_QCOW2",
                      "COMPUTE_IMAGE_TYPE_RAW", "COMPUTE_NET_VIF_MODEL_VIRTIO", "COMPUTE_STORAGE_BUS_VIRTIO", "COMPUTE_FIRMWARE_BIOS"]
        if host.cpuArch == "x86_64" {
            traits += ["COMPUTE_ARCH_X86_64", "HW_ARCH_X86_64"]
            // libvirt's names where os-traits names the flag otherwise (as Nova's libvirt driver maps them).
            let renamed = ["aes": "AESNI", "bmi1": "BMI", "fma": "FMA3", "pclmuldq": "CLMUL", "sha-ni": "SHA", "pni": "SSE3"]
            traits += host.cpuFeatures.map { feature in
                "HW_CPU_X86_" + (renamed[feature] ?? feature.uppercased().replacingOccurrences(of: ".", with: "").replacingOccurrences(of: "-", with: "_"))
            }
        }
        return traits
    }

    /// "16:40:01 up 3 days,  2:05,  load average: 0.10, 0.20, 0.30", from /proc, as `uptime` prints it.
    static func uptime(now: Date = Date()) -> String? {
        guard let uptime = try? String(contentsOfFile: "/proc/uptime", encoding: .utf8),
              let seconds = Double(uptime.split(separator: " ").first ?? ""),
              let loadavg = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
        let loads = loadavg.split(separator: " ").prefix(3).joined(separator: ", ")
        var clock = time_t(now.timeIntervalSince1970)
        var parts = tm()
        localtime_r(&clock, &parts)
        let total = Int(seconds) / 60, days = total / 1440, hours = (total % 1440) / 60, minutes = total % 60
        let up = (days > 0 ? "\(days) day\(days == 1 ? "" : "s"), " : "") + String(format: "%2d:%02d", hours, minutes)
        return String(format: " %02d:%02d:%02d up ", parts.tm_hour, parts.tm_min, parts.tm_sec) + up + ",  load average: " + loads
    }

    /// The IPv4 address of the interface the default route leaves through (Nova's my_ip default).
    static func defaultRouteAddress() -> String? { try? Netlink().defaultRouteAddress() }

    /// Size of the file system holding the instances (the nearest existing directory of
    /// `state_path`), in GiB.
    static func localGigabytes(_ path: String) -> Int {
        var directory = path
        while !FileManager.default.fileExists(atPath: directory), directory != "/" {
            directory = (directory as NSString).deletingLastPathComponent
        }
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return 0 }
        return Int(UInt64(info.f_blocks) * UInt64(info.f_frsize) / (1 << 30))
    }
}
