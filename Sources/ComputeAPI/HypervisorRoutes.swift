import Foundation
import Hosts
import Hummingbird
import PetrelHTTP

extension ComputeAPI {
    func hypervisorSummary(_ hypervisor: HypervisorStatus) -> [String: JSON] {
        ["id": .string(hypervisor.id), "hypervisor_hostname": .string(hypervisor.host),
         "state": hypervisor.up ? "up" : "down", "status": hypervisor.enabled ? "enabled" : "disabled"]
    }

    func hypervisorDetail(_ hypervisor: HypervisorStatus, _ version: Microversion, usage: HostUsage) -> JSON {
        var object = hypervisorSummary(hypervisor)
        let resources = hypervisor.resources
        let cpuInfo: JSON = ["model": .string(resources.cpuModel), "arch": "x86_64", "features": [],
                             "topology": ["sockets": 1, "cores": .number(Double(resources.vcpus)), "threads": 1]]
        // Used = what the instances placed there claim; running_vms = what libvirt runs there.
        object.merge([
            "hypervisor_type": .string(resources.type), "hypervisor_version": .number(Double(resources.version)),
            "host_ip": .string(resources.hostIP),
            "service": ["id": .string(hypervisor.compute?.id), "host": .string(hypervisor.host),
                        "disabled_reason": .string(hypervisor.compute?.record.disabledReason)],
            "vcpus": .number(Double(resources.vcpus)), "vcpus_used": .number(Double(usage.vcpus)),
            "memory_mb": .number(Double(resources.memoryMB)), "memory_mb_used": .number(Double(usage.memoryMB)),
            "free_ram_mb": .number(Double(resources.memoryMB - usage.memoryMB)),
            "local_gb": .number(Double(resources.localGB)), "local_gb_used": .number(Double(usage.diskGB)),
            "free_disk_gb": .number(Double(resources.localGB - usage.diskGB)),
            "disk_available_least": .number(Double(resources.localGB - usage.diskGB)), "current_workload": .number(Double(usage.workload)),
            "running_vms": .number(Double(resources.runningVMs)),
            "cpu_info": version >= Microversion(2, 28) ? cpuInfo : .string(String(decoding: cpuInfo.encoded(), as: UTF8.self)),
        ]) { _, new in new }
        return .object(object)
    }

    func registerHypervisors(on v21: APIRoutes) {
        @Sendable func listed(_ request: Request, _ context: APIRequestContext) async throws -> [HypervisorStatus] {
            var all = try await hosts.hypervisors()
            if let pattern = request.query("hypervisor_hostname_pattern") {
                all = all.filter { $0.host.localizedCaseInsensitiveContains(pattern) }
            }
            if let marker = request.query("marker") {
                guard let index = all.firstIndex(where: { $0.id == marker }) else {
                    throw APIFault(.badRequest, "marker [\(marker)] not found")
                }
                all = Array(all[(index + 1)...])
            }
            if let limit = try Paging.novaLimit(request) { all = Array(all.prefix(limit)) }
            return all
        }
        v21.get("os-hypervisors", query: NovaQuerySchemas.hypervisors) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-hypervisors:list")
            let list = try await listed(request, context)
            return answer(.ok, ["hypervisors": .array(list.map { .object(hypervisorSummary($0)) })], version)
        }
        v21.get("os-hypervisors/detail", query: NovaQuerySchemas.hypervisors) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-hypervisors:list-detail")
            let list = try await listed(request, context)
            let usage = try await hosts.store.usage()
            return answer(.ok, ["hypervisors": .array(list.map { hypervisorDetail($0, version, usage: usage[$0.host] ?? .init()) })], version)
        }
        v21.get("os-hypervisors/statistics", query: NovaQuerySchemas.anything) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-hypervisors:statistics")
            let all = try await hosts.hypervisors().map(\.resources)
            let usage = try await hosts.store.usage().values
            func sum(_ value: KeyPath<HypervisorResources, Int>) -> Int { all.map { $0[keyPath: value] }.reduce(0, +) }
            func used(_ value: KeyPath<HostUsage, Int>) -> Int { usage.map { $0[keyPath: value] }.reduce(0, +) }
            func number(_ value: Int) -> JSON { .number(Double(value)) }
            return answer(.ok, ["hypervisor_statistics": [
                "count": number(all.count), "vcpus": number(sum(\.vcpus)), "vcpus_used": number(used(\.vcpus)),
                "memory_mb": number(sum(\.memoryMB)), "memory_mb_used": number(used(\.memoryMB)),
                "free_ram_mb": number(sum(\.memoryMB) - used(\.memoryMB)), "local_gb": number(sum(\.localGB)),
                "local_gb_used": number(used(\.diskGB)), "free_disk_gb": number(sum(\.localGB) - used(\.diskGB)),
                "disk_available_least": number(sum(\.localGB) - used(\.diskGB)), "current_workload": number(used(\.workload)),
                "running_vms": number(sum(\.runningVMs)),
            ]], version)
        }
        v21.get("os-hypervisors/:hypervisor_id/uptime", query: NovaQuerySchemas.anything) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-hypervisors:uptime")
            let id = try context.parameters.require("hypervisor_id")
            guard let hypervisor = try await hosts.hypervisors().first(where: { $0.id == id }) else {
                throw APIFault(.notFound, "Hypervisor with ID '\(id)' could not be found.")
            }
            var object = hypervisorSummary(hypervisor)
            object["uptime"] = .string(hypervisor.resources.uptime)
            return answer(.ok, ["hypervisor": .object(object)], version)
        }
        v21.get("os-hypervisors/:hypervisor_id", query: NovaQuerySchemas.hypervisor) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-hypervisors:show")
            let id = try context.parameters.require("hypervisor_id")
            guard let hypervisor = try await hosts.hypervisors().first(where: { $0.id == id }) else {
                throw APIFault(.notFound, "Hypervisor with ID '\(id)' could not be found.")
            }
            return answer(.ok, ["hypervisor": hypervisorDetail(hypervisor, version, usage: try await hosts.store.usage()[hypervisor.host] ?? .init())], version)
        }
    }
}
