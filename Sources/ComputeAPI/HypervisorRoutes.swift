import Compute
import Contracts
import Foundation
import Hosts
import Hummingbird
import PetrelHTTP

extension ComputeAPI {
    /// Ids as Nova gives them: integers before 2.53, UUIDs from it.
    static func hypervisorID(_ hypervisor: HypervisorStatus, _ version: Microversion) -> JSON {
        version >= Microversion(2, 53) ? .string(hypervisor.id) : .number(Double(hypervisor.number))
    }

    static func serviceID(_ service: ServiceStatus?, _ version: Microversion) -> JSON {
        guard let service else { return .null }
        return version >= Microversion(2, 53) ? .string(service.id) : .number(Double(service.record.number))
    }

    /// The hypervisor an id names, in the form `version` uses.
    func hypervisor(_ id: String, _ version: Microversion) async throws -> HypervisorStatus {
        let all = try await hosts.hypervisors()
        let found = version >= Microversion(2, 53) ? all.first { $0.id == id } : Int(id).flatMap { number in all.first { $0.number == number } }
        guard let found else {
            if version >= Microversion(2, 53), UUID(uuidString: id) == nil {
                throw APIFault(.badRequest, "Invalid uuid \(id)")
            }
            throw APIFault(.notFound, "Hypervisor with ID '\(id)' could not be found.")
        }
        return found
    }

    func hypervisorSummary(_ hypervisor: HypervisorStatus, _ version: Microversion) -> [String: JSON] {
        ["id": Self.hypervisorID(hypervisor, version), "hypervisor_hostname": .string(hypervisor.host),
         "state": hypervisor.up ? "up" : "down", "status": hypervisor.enabled ? "enabled" : "disabled"]
    }

    func hypervisorDetail(_ hypervisor: HypervisorStatus, _ version: Microversion, usage: HostUsage) -> [String: JSON] {
        var object = hypervisorSummary(hypervisor, version)
        let resources = hypervisor.resources
        object.merge([
            "hypervisor_type": .string(resources.type), "hypervisor_version": .number(Double(resources.version)),
            "host_ip": .string(resources.hostIP),
            "service": ["id": Self.serviceID(hypervisor.compute, version), "host": .string(hypervisor.host),
                        "disabled_reason": .string(hypervisor.compute?.record.disabledReason)],
        ]) { _, new in new }
        // From 2.88 the resources are Placement's to report, and the uptime joins the body.
        if version >= Microversion(2, 88) {
            object["uptime"] = .string(resources.uptime)
            return object
        }
        let cpuInfo: JSON = ["model": .string(resources.cpuModel), "arch": "x86_64", "features": [],
                             "topology": ["sockets": 1, "cores": .number(Double(resources.vcpus)), "threads": 1]]
        // Used = what the instances placed there claim; running_vms = what libvirt runs there.
        object.merge([
            "vcpus": .number(Double(resources.vcpus)), "vcpus_used": .number(Double(usage.vcpus)),
            "memory_mb": .number(Double(resources.memoryMB)), "memory_mb_used": .number(Double(usage.memoryMB)),
            "free_ram_mb": .number(Double(resources.memoryMB - usage.memoryMB)),
            "local_gb": .number(Double(resources.localGB)), "local_gb_used": .number(Double(usage.diskGB)),
            "free_disk_gb": .number(Double(resources.localGB - usage.diskGB)),
            "disk_available_least": .number(Double(resources.localGB - usage.diskGB)), "current_workload": .number(Double(usage.workload)),
            "running_vms": .number(Double(resources.runningVMs)),
            "cpu_info": version >= Microversion(2, 28) ? cpuInfo : .string(String(decoding: cpuInfo.encoded(), as: UTF8.self)),
        ]) { _, new in new }
        return object
    }

    /// The servers on each host (`with_servers`, and the `…/servers` route before 2.53), as
    /// Nova lists them: the libvirt domain's name and the server's id.
    func serversByHost(_ hostNames: [String]) async throws -> [String: [JSON]] {
        guard conductor != nil else { return [:] }
        var result: [String: [JSON]] = [:]
        for host in Set(hostNames) {
            var query = ServerListQuery(projectID: nil)
            query.host = host
            result[host] = try await servers.page(query).servers.map { ["name": .string(DomainNaming.name($0.id)), "uuid": .string($0.id)] }
        }
        return result
    }

    func registerHypervisors(on v21: APIRoutes) {
        @Sendable func listed(_ request: Request, _ version: Microversion) async throws -> [HypervisorStatus] {
            var all = try await hosts.hypervisors()
            if let pattern = request.query("hypervisor_hostname_pattern") {
                all = all.filter { $0.host.localizedCaseInsensitiveContains(pattern) }
                if all.isEmpty { throw APIFault(.notFound, "No hypervisor matching '\(pattern)' could be found.") }
            }
            if let marker = request.query("marker") {
                let index = version >= Microversion(2, 53) ? all.firstIndex { $0.id == marker }
                    : Int(marker).flatMap { number in all.firstIndex { $0.number == number } }
                guard let index else { throw APIFault(.badRequest, "marker [\(marker)] not found") }
                all = Array(all[(index + 1)...])
            }
            if let limit = try Paging.novaLimit(request) { all = Array(all.prefix(limit)) }
            return all
        }
        /// `with_servers` (2.53 on): each hypervisor's servers, under `servers` when it has any.
        @Sendable func withServers(_ request: Request, _ version: Microversion, _ list: [HypervisorStatus],
                                   _ bodies: [[String: JSON]]) async throws -> [JSON] {
            guard version >= Microversion(2, 53), let text = request.query("with_servers"),
                  try Self.novaBoolean(.string(text), field: "with_servers") else { return bodies.map(JSON.object) }
            let byHost = try await serversByHost(list.map(\.host))
            return zip(list, bodies).map { hypervisor, body in
                var body = body
                if let servers = byHost[hypervisor.host], !servers.isEmpty { body["servers"] = .array(servers) }
                return .object(body)
            }
        }
        v21.get("os-hypervisors", query: NovaQuerySchemas.hypervisors) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-hypervisors:list")
            let list = try await listed(request, version)
            let bodies = try await withServers(request, version, list, list.map { hypervisorSummary($0, version) })
            return answer(.ok, ["hypervisors": .array(bodies)], version)
        }
        v21.get("os-hypervisors/detail", query: NovaQuerySchemas.hypervisors) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-hypervisors:list-detail")
            let list = try await listed(request, version)
            let usage = try await hosts.store.usage()
            let bodies = try await withServers(request, version, list, list.map { hypervisorDetail($0, version, usage: usage[$0.host] ?? .init()) })
            return answer(.ok, ["hypervisors": .array(bodies)], version)
        }
        v21.get("os-hypervisors/statistics", query: NovaQuerySchemas.anything) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-hypervisors:statistics")
            // Removed in 2.88: Placement has the figures.
            guard version < Microversion(2, 88) else { throw APIFault(.notFound, "The resource could not be found.") }
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
            // Removed in 2.88: the uptime is in the hypervisor's own body.
            guard version < Microversion(2, 88) else { throw APIFault(.notFound, "The resource could not be found.") }
            let hypervisor = try await hypervisor(try context.parameters.require("hypervisor_id"), version)
            var object = hypervisorSummary(hypervisor, version)
            object["uptime"] = .string(hypervisor.resources.uptime)
            return answer(.ok, ["hypervisor": .object(object)], version)
        }
        // Before 2.53: hypervisors by host name pattern, with or without their servers.
        @Sendable func byPattern(_ request: Request, _ context: APIRequestContext, servers: Bool) async throws -> Response {
            let (_, version) = try await begin(request, context, servers ? "os_compute_api:os-hypervisors:servers" : "os_compute_api:os-hypervisors:search")
            guard version < Microversion(2, 53) else { throw APIFault(.notFound, "The resource could not be found.") }
            // The path names a host name pattern here (the router has one name per position).
            let pattern = try context.parameters.require("hypervisor_id")
            let found = try await hosts.hypervisors().filter { $0.host.localizedCaseInsensitiveContains(pattern) }
            guard !found.isEmpty else { throw APIFault(.notFound, "No hypervisor matching '\(pattern)' could be found.") }
            let byHost = servers ? try await serversByHost(found.map(\.host)) : [:]
            return answer(.ok, ["hypervisors": .array(found.map { hypervisor in
                var body = hypervisorSummary(hypervisor, version)
                if servers, let list = byHost[hypervisor.host], !list.isEmpty { body["servers"] = .array(list) }
                return .object(body)
            })], version)
        }
        v21.get("os-hypervisors/:hypervisor_id/search", query: NovaQuerySchemas.anything) { request, context in
            try await byPattern(request, context, servers: false)
        }
        v21.get("os-hypervisors/:hypervisor_id/servers", query: NovaQuerySchemas.anything) { request, context in
            try await byPattern(request, context, servers: true)
        }
        v21.get("os-hypervisors/:hypervisor_id", query: NovaQuerySchemas.hypervisor) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:os-hypervisors:show")
            let hypervisor = try await hypervisor(try context.parameters.require("hypervisor_id"), version)
            let body = hypervisorDetail(hypervisor, version, usage: try await hosts.store.usage()[hypervisor.host] ?? .init())
            return answer(.ok, ["hypervisor": try await withServers(request, version, [hypervisor], [body])[0]], version)
        }
    }
}
