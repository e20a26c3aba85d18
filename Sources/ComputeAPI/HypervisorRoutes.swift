import Foundation
import Hosts
import Hummingbird
import IdentityAPI
import PetrelHTTP
import Store

extension ComputeAPI {
    func hypervisorSummary(_ hypervisor: HypervisorStatus) -> [String: JSON] {
        ["id": .string(hypervisor.row.id), "hypervisor_hostname": .string(hypervisor.row.host),
         "state": hypervisor.up ? "up" : "down", "status": hypervisor.enabled ? "enabled" : "disabled"]
    }

    func hypervisorDetail(_ hypervisor: HypervisorStatus, _ version: Microversion) -> JSON {
        var object = hypervisorSummary(hypervisor)
        let resources = hypervisor.row.resources
        let cpuInfo: JSON = ["model": .string(resources.cpuModel), "arch": "x86_64", "features": [],
                             "topology": ["sockets": 1, "cores": .number(Double(resources.vcpus)), "threads": 1]]
        // Nothing runs on the hosts yet: every resource is free. Instances will count here.
        object.merge([
            "hypervisor_type": .string(resources.type), "hypervisor_version": .number(Double(resources.version)),
            "host_ip": .string(resources.hostIP),
            "service": ["id": .string(hypervisor.compute?.id), "host": .string(hypervisor.row.host),
                        "disabled_reason": .string(hypervisor.compute?.record.disabledReason)],
            "vcpus": .number(Double(resources.vcpus)), "vcpus_used": 0,
            "memory_mb": .number(Double(resources.memoryMB)), "memory_mb_used": 0, "free_ram_mb": .number(Double(resources.memoryMB)),
            "local_gb": .number(Double(resources.localGB)), "local_gb_used": 0, "free_disk_gb": .number(Double(resources.localGB)),
            "disk_available_least": .number(Double(resources.localGB)), "current_workload": 0, "running_vms": 0,
            "cpu_info": version >= Microversion(2, 28) ? cpuInfo : .string(String(decoding: cpuInfo.encoded(), as: UTF8.self)),
        ]) { _, new in new }
        return .object(object)
    }

    func registerHypervisors(on v21: RouterGroup<BasicRequestContext>) {
        @Sendable func listed(_ request: Request) async throws -> [HypervisorStatus] {
            var all = try await hosts.hypervisors()
            if let pattern = identity.query(request, "hypervisor_hostname_pattern") {
                all = all.filter { $0.row.host.localizedCaseInsensitiveContains(pattern) }
            }
            if let marker = identity.query(request, "marker") {
                guard let index = all.firstIndex(where: { $0.row.id == marker }) else {
                    throw APIFault(.badRequest, "marker [\(marker)] not found")
                }
                all = Array(all[(index + 1)...])
            }
            if let text = identity.query(request, "limit") {
                guard let limit = Int(text), limit >= 0 else { throw APIFault(.badRequest, "Invalid input for query parameters limit.") }
                all = Array(all.prefix(limit))
            }
            return all
        }
        v21.get("os-hypervisors") { request, _ in
            let (_, version) = try await begin(request, "os_compute_api:os-hypervisors:list")
            let list = try await listed(request)
            return answer(.ok, ["hypervisors": .array(list.map { .object(hypervisorSummary($0)) })], version)
        }
        v21.get("os-hypervisors/detail") { request, _ in
            let (_, version) = try await begin(request, "os_compute_api:os-hypervisors:list-detail")
            let list = try await listed(request)
            return answer(.ok, ["hypervisors": .array(list.map { hypervisorDetail($0, version) })], version)
        }
        v21.get("os-hypervisors/statistics") { request, _ in
            let (_, version) = try await begin(request, "os_compute_api:os-hypervisors:statistics")
            let all = try await hosts.hypervisors().map(\.row.resources)
            func sum(_ value: (HypervisorRecord) -> Int) -> JSON { .number(Double(all.map(value).reduce(0, +))) }
            return answer(.ok, ["hypervisor_statistics": [
                "count": .number(Double(all.count)), "vcpus": sum(\.vcpus), "vcpus_used": 0, "memory_mb": sum(\.memoryMB),
                "memory_mb_used": 0, "free_ram_mb": sum(\.memoryMB), "local_gb": sum(\.localGB), "local_gb_used": 0,
                "free_disk_gb": sum(\.localGB), "disk_available_least": sum(\.localGB), "current_workload": 0, "running_vms": 0,
            ]], version)
        }
        v21.get("os-hypervisors/:hypervisor_id/uptime") { request, context in
            let (_, version) = try await begin(request, "os_compute_api:os-hypervisors:uptime")
            let id = try context.parameters.require("hypervisor_id")
            guard let hypervisor = try await hosts.hypervisors().first(where: { $0.row.id == id }) else {
                throw APIFault(.notFound, "Hypervisor with ID '\(id)' could not be found.")
            }
            var object = hypervisorSummary(hypervisor)
            object["uptime"] = .string(hypervisor.row.resources.uptime)
            return answer(.ok, ["hypervisor": .object(object)], version)
        }
        v21.get("os-hypervisors/:hypervisor_id") { request, context in
            let (_, version) = try await begin(request, "os_compute_api:os-hypervisors:show")
            let id = try context.parameters.require("hypervisor_id")
            guard let hypervisor = try await hosts.hypervisors().first(where: { $0.row.id == id }) else {
                throw APIFault(.notFound, "Hypervisor with ID '\(id)' could not be found.")
            }
            return answer(.ok, ["hypervisor": hypervisorDetail(hypervisor, version)], version)
        }
    }
}
