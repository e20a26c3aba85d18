import Foundation
import SQLKit
import Store

// Three Keystone extensions around the catalog: stored policy blobs and their endpoint
// associations (OS-ENDPOINT-POLICY), and project endpoint filters (OS-EP-FILTER: endpoints
// and endpoint groups given to a project, which then sees only those in its catalog).
// Associations go when their project, endpoint, service, region, group or policy goes (the
// tables' foreign keys cascade).

public typealias StoredPolicy = PolicyRow
public typealias EndpointGroup = EndpointGroupRow

extension IdentityService {
    public var policies: IdentityDirectory<StoredPolicy> { .init(service: self, table: IdentityTables.policies, kind: "policy") }
    public var endpointGroups: IdentityDirectory<EndpointGroup> {
        .init(service: self, table: IdentityTables.endpointGroups, kind: "Endpoint Group")
    }

    // MARK: policies

    public func deletePolicy(_ id: String) async throws {
        try await write { sql in
            guard try await IdentityTables.policies.delete(sql, where: [.equals("id", id)]) > 0 else {
                throw IdentityError.notFound(kind: "policy", id: id)
            }
        }
    }

    /// What a policy is associated with: one endpoint, a service everywhere, or a service in a
    /// region and the regions below it.
    public enum PolicyTarget: Sendable, Equatable {
        case endpoint(String)
        case service(String)
        case serviceInRegion(service: String, region: String)

        var columns: (endpoint: String?, service: String?, region: String?) {
            switch self {
            case .endpoint(let id): return (id, nil, nil)
            case .service(let id): return (nil, id, nil)
            case .serviceInRegion(let service, let region): return (nil, service, region)
            }
        }

        /// The conditions selecting exactly this target's association.
        var conditions: [Table<PolicyAssociationRow>.Condition] {
            let (endpoint, service, region) = columns
            return [endpoint.map { .equals("endpoint_id", $0) } ?? .isNull("endpoint_id"),
                    service.map { .equals("service_id", $0) } ?? .isNull("service_id"),
                    region.map { .equals("region_id", $0) } ?? .isNull("region_id")]
        }
    }

    /// The policy, then the target's endpoint or service and region, exist (404 otherwise, in that order).
    func requirePolicyTarget(_ sql: any SQLDatabase, policyID: String, _ target: PolicyTarget) async throws {
        guard try await IdentityTables.policies.get(sql, id: policyID) != nil else { throw IdentityError.notFound(kind: "policy", id: policyID) }
        let (endpoint, service, region) = target.columns
        if let endpoint, try await IdentityTables.endpoints.get(sql, id: endpoint) == nil {
            throw IdentityError.notFound(kind: "endpoint", id: endpoint)
        }
        if let service, try await IdentityTables.services.get(sql, id: service) == nil {
            throw IdentityError.notFound(kind: "service", id: service)
        }
        if let region, try await IdentityTables.regions.get(sql, id: region) == nil {
            throw IdentityError.notFound(kind: "region", id: region)
        }
    }

    /// Associates the policy with the target; a target associated with another policy moves to this one.
    public func associatePolicy(_ policyID: String, with target: PolicyTarget) async throws {
        try await write { sql in
            try await self.requirePolicyTarget(sql, policyID: policyID, target)
            if var existing = try await IdentityTables.policyAssociations.first(sql, where: target.conditions) {
                existing.policyID = policyID
                try await IdentityTables.policyAssociations.update(sql, id: existing.id, existing)
            } else {
                let (endpoint, service, region) = target.columns
                try await IdentityTables.policyAssociations.insert(sql, PolicyAssociationRow(
                    id: Self.newID(), policyID: policyID, endpointID: endpoint, serviceID: service, regionID: region))
            }
        }
    }

    public func isPolicyAssociated(_ policyID: String, with target: PolicyTarget) async throws -> Bool {
        try await read { sql in
            try await self.requirePolicyTarget(sql, policyID: policyID, target)
            return try await IdentityTables.policyAssociations.first(sql, where: target.conditions + [.equals("policy_id", policyID)]) != nil
        }
    }

    /// Removes the association if there is one (Keystone answers 204 either way).
    public func dissociatePolicy(_ policyID: String, from target: PolicyTarget) async throws {
        try await write { sql in
            try await self.requirePolicyTarget(sql, policyID: policyID, target)
            try await IdentityTables.policyAssociations.delete(sql, where: target.conditions + [.equals("policy_id", policyID)])
        }
    }

    /// The policy that applies to an endpoint: its own, else its service's in its region or
    /// the nearest parent region with one, else its service's.
    public func policy(forEndpoint endpointID: String) async throws -> StoredPolicy {
        try await read { sql in
            guard let endpoint = try await IdentityTables.endpoints.get(sql, id: endpointID) else {
                throw IdentityError.notFound(kind: "endpoint", id: endpointID)
            }
            func associated(_ target: PolicyTarget) async throws -> StoredPolicy? {
                guard let row = try await IdentityTables.policyAssociations.first(sql, where: target.conditions) else { return nil }
                return try await IdentityTables.policies.get(sql, id: row.policyID)
            }
            if let policy = try await associated(.endpoint(endpoint.id)) { return policy }
            var region = endpoint.regionID
            var seen: Set<String> = []
            while let current = region, seen.insert(current).inserted {
                if let policy = try await associated(.serviceInRegion(service: endpoint.serviceID, region: current)) { return policy }
                region = try await IdentityTables.regions.get(sql, id: current)?.parentRegionID
            }
            if let policy = try await associated(.service(endpoint.serviceID)) { return policy }
            throw IdentityError.missing("No policy is associated with endpoint \(endpointID).")
        }
    }

    /// The endpoints a policy applies to through its associations (a service in a region
    /// reaches the endpoints of that region and of the regions below it), each once.
    public func endpoints(forPolicy policyID: String) async throws -> [Endpoint] {
        try await read { sql in
            guard try await IdentityTables.policies.get(sql, id: policyID) != nil else {
                throw IdentityError.notFound(kind: "policy", id: policyID)
            }
            let associations = try await IdentityTables.policyAssociations.all(sql, where: [.equals("policy_id", policyID)], orderBy: "id")
            guard !associations.isEmpty else { return [] }
            let endpoints = try await IdentityTables.endpoints.all(sql, orderBy: "id")
            let regions = try await IdentityTables.regions.all(sql)
            var found: [Endpoint] = []
            func add(_ matching: [Endpoint]) {
                for endpoint in matching where !found.contains(where: { $0.id == endpoint.id }) { found.append(endpoint) }
            }
            for association in associations {
                if let endpoint = association.endpointID {
                    add(endpoints.filter { $0.id == endpoint })
                } else if let service = association.serviceID, let region = association.regionID {
                    // The region and its descendants (a cycle is walked once).
                    var tree: Set<String> = [region], frontier = [region]
                    while let next = frontier.popLast() {
                        for child in regions where child.parentRegionID == next && tree.insert(child.id).inserted { frontier.append(child.id) }
                    }
                    add(endpoints.filter { $0.serviceID == service && $0.regionID.map(tree.contains) == true })
                } else if let service = association.serviceID {
                    add(endpoints.filter { $0.serviceID == service })
                }
            }
            return found
        }
    }

    // MARK: endpoint groups

    /// An endpoint group's `filters`: the endpoints whose interface, service and region equal
    /// the ones given (a null region matches endpoints without one).
    public struct EndpointFilters: Sendable, Equatable {
        public static let keys = ["service_id", "region_id", "interface"]
        public var values: [String: String?]

        public init(_ values: [String: String?]) { self.values = values }

        public init(stored text: String) {
            values = (try? JSONDecoder().decode([String: String?].self, from: Data(text.utf8))) ?? [:]
        }

        /// As the table keeps it (JSON, sorted keys).
        public var stored: String { JSONColumn.encode(values, fallback: "{}") }

        public func matches(_ endpoint: Endpoint) -> Bool {
            values.allSatisfy { key, value in
                switch key {
                case "interface": return endpoint.interface == value
                case "service_id": return endpoint.serviceID == value
                case "region_id": return endpoint.regionID == value
                default: return false
                }
            }
        }
    }

    public func deleteEndpointGroup(_ id: String) async throws {
        try await write { sql in
            guard try await IdentityTables.endpointGroups.delete(sql, where: [.equals("id", id)]) > 0 else {
                throw IdentityError.notFound(kind: "Endpoint Group", id: id)
            }
        }
    }

    /// Every endpoint (enabled or not) the group's filters select.
    public func endpoints(inGroup id: String) async throws -> [Endpoint] {
        try await read { sql in
            guard let group = try await IdentityTables.endpointGroups.get(sql, id: id) else {
                throw IdentityError.notFound(kind: "Endpoint Group", id: id)
            }
            let filters = EndpointFilters(stored: group.filters)
            return try await IdentityTables.endpoints.all(sql, orderBy: "id").filter(filters.matches)
        }
    }

    // MARK: project endpoint filters

    /// The project and the endpoint exist (404 otherwise: the endpoint first, as Keystone).
    func requireProjectAndEndpoint(_ sql: any SQLDatabase, project: String, endpoint: String) async throws {
        guard try await IdentityTables.endpoints.get(sql, id: endpoint) != nil else { throw IdentityError.notFound(kind: "endpoint", id: endpoint) }
        guard try await IdentityTables.projects.get(sql, id: project) != nil else { throw IdentityError.notFound(kind: "project", id: project) }
    }

    static func endpointNotInProject(_ endpoint: String, _ project: String) -> IdentityError {
        .missing("Endpoint \(endpoint) not found in project \(project)")
    }

    /// Gives the project the endpoint (409 if it has it already).
    public func addEndpoint(_ endpointID: String, toProject projectID: String) async throws {
        try await write { sql in
            try await self.requireProjectAndEndpoint(sql, project: projectID, endpoint: endpointID)
            try await IdentityTables.projectEndpoints.insert(sql, ProjectEndpointRow(projectID: projectID, endpointID: endpointID))
        }
    }

    /// 404 unless the project was given the endpoint.
    public func checkEndpoint(_ endpointID: String, inProject projectID: String) async throws {
        try await read { sql in
            try await self.requireProjectAndEndpoint(sql, project: projectID, endpoint: endpointID)
            guard try await IdentityTables.projectEndpoints.first(sql, where: [
                .equals("project_id", projectID), .equals("endpoint_id", endpointID)]) != nil else {
                throw Self.endpointNotInProject(endpointID, projectID)
            }
        }
    }

    public func removeEndpoint(_ endpointID: String, fromProject projectID: String) async throws {
        try await write { sql in
            guard try await IdentityTables.projectEndpoints.delete(sql, where: [
                .equals("project_id", projectID), .equals("endpoint_id", endpointID)]) > 0 else {
                throw Self.endpointNotInProject(endpointID, projectID)
            }
        }
    }

    /// The projects given the endpoint itself (not through a group).
    public func projects(forEndpoint endpointID: String) async throws -> [Project] {
        try await read { sql in
            guard try await IdentityTables.endpoints.get(sql, id: endpointID) != nil else {
                throw IdentityError.notFound(kind: "endpoint", id: endpointID)
            }
            let ids = try await IdentityTables.projectEndpoints.all(sql, where: [.equals("endpoint_id", endpointID)]).map(\.projectID)
            return try await IdentityTables.projects.all(sql, where: [.inList("id", ids)], orderBy: "name")
        }
    }

    /// The endpoints the project was given, itself or through its endpoint groups.
    public func endpoints(forProject projectID: String) async throws -> [Endpoint] {
        try await read { sql in
            guard try await IdentityTables.projects.get(sql, id: projectID) != nil else {
                throw IdentityError.notFound(kind: "project", id: projectID)
            }
            let allowed = try await Self.allowedEndpoints(sql, project: projectID)[projectID] ?? []
            return try await IdentityTables.endpoints.all(sql, where: [.inList("id", Array(allowed))], orderBy: "id")
        }
    }

    // MARK: endpoint groups of projects

    static let groupNotInProject = IdentityError.missing("Endpoint Group Project Association not found")

    func requireProjectAndGroup(_ sql: any SQLDatabase, project: String, group: String) async throws {
        guard try await IdentityTables.projects.get(sql, id: project) != nil else { throw IdentityError.notFound(kind: "project", id: project) }
        guard try await IdentityTables.endpointGroups.get(sql, id: group) != nil else {
            throw IdentityError.notFound(kind: "Endpoint Group", id: group)
        }
    }

    /// Gives the project the group's endpoints (409 if it has the group already).
    public func addEndpointGroup(_ groupID: String, toProject projectID: String) async throws {
        try await write { sql in
            try await self.requireProjectAndGroup(sql, project: projectID, group: groupID)
            try await IdentityTables.projectEndpointGroups.insert(sql, ProjectEndpointGroupRow(endpointGroupID: groupID, projectID: projectID))
        }
    }

    /// 404 unless the project has the group.
    public func checkEndpointGroup(_ groupID: String, inProject projectID: String) async throws {
        try await read { sql in
            try await self.requireProjectAndGroup(sql, project: projectID, group: groupID)
            guard try await IdentityTables.projectEndpointGroups.first(sql, where: [
                .equals("endpoint_group_id", groupID), .equals("project_id", projectID)]) != nil else { throw Self.groupNotInProject }
        }
    }

    public func removeEndpointGroup(_ groupID: String, fromProject projectID: String) async throws {
        try await write { sql in
            try await self.requireProjectAndGroup(sql, project: projectID, group: groupID)
            guard try await IdentityTables.projectEndpointGroups.delete(sql, where: [
                .equals("endpoint_group_id", groupID), .equals("project_id", projectID)]) > 0 else { throw Self.groupNotInProject }
        }
    }

    /// The projects that have the group (none for a group that does not exist, as Keystone).
    public func projects(forEndpointGroup groupID: String) async throws -> [Project] {
        try await read { sql in
            let ids = try await IdentityTables.projectEndpointGroups.all(sql, where: [.equals("endpoint_group_id", groupID)]).map(\.projectID)
            return try await IdentityTables.projects.all(sql, where: [.inList("id", ids)], orderBy: "name")
        }
    }

    public func endpointGroups(forProject projectID: String) async throws -> [EndpointGroup] {
        try await read { sql in
            guard try await IdentityTables.projects.get(sql, id: projectID) != nil else {
                throw IdentityError.notFound(kind: "project", id: projectID)
            }
            let ids = try await IdentityTables.projectEndpointGroups.all(sql, where: [.equals("project_id", projectID)]).map(\.endpointGroupID)
            return try await IdentityTables.endpointGroups.all(sql, where: [.inList("id", ids)], orderBy: "name")
        }
    }

    // MARK: the filtered catalog

    /// For every project with endpoints given to it (itself or through groups), those
    /// endpoints' ids (`project`: only that project's). Projects without any are absent.
    static func allowedEndpoints(_ sql: any SQLDatabase, project: String? = nil) async throws -> [String: Set<String>] {
        let scope: [Table<ProjectEndpointRow>.Condition] = project.map { [.equals("project_id", $0)] } ?? []
        let direct = try await IdentityTables.projectEndpoints.all(sql, where: scope)
        let memberships = try await IdentityTables.projectEndpointGroups.all(sql, where: project.map { [.equals("project_id", $0)] } ?? [])
        var allowed: [String: Set<String>] = [:]
        for row in direct { allowed[row.projectID, default: []].insert(row.endpointID) }
        if !memberships.isEmpty {
            let groups = try await IdentityTables.endpointGroups.all(sql, where: [.inList("id", Array(Set(memberships.map(\.endpointGroupID))))])
            let filters = Dictionary(uniqueKeysWithValues: groups.map { ($0.id, EndpointFilters(stored: $0.filters)) })
            let endpoints = try await IdentityTables.endpoints.all(sql)
            for membership in memberships {
                guard let filter = filters[membership.endpointGroupID] else { continue }
                for endpoint in endpoints where filter.matches(endpoint) { allowed[membership.projectID, default: []].insert(endpoint.id) }
            }
        }
        return allowed.filter { !$0.value.isEmpty }
    }

    /// The endpoints a token scoped to `project` may see in its catalog, or nil when the
    /// project has none given to it and sees the whole catalog (Keystone's endpoint_filter
    /// catalog). Kept in memory until identity data changes.
    public func catalogFilter(project: String) async throws -> Set<String>? {
        let now = Date()
        let cached = state.withLock { state -> [String: Set<String>]? in
            guard let filters = state.catalogFilters, filters.generation == state.generation, filters.until > now else { return nil }
            return filters.allowed
        }
        if let cached { return cached[project] }
        let generation = state.withLock { $0.generation }
        let allowed = try await read { sql in try await Self.allowedEndpoints(sql) }
        state.withLock { state in
            // Kept only if nothing changed meanwhile; re-read after a while for other controllers' changes.
            guard state.generation == generation else { return }
            state.catalogFilters = CatalogFilters(generation: generation, until: now.addingTimeInterval(options.validationCacheLifetime),
                                                  allowed: allowed)
        }
        return allowed[project]
    }

    /// The catalog limited to `allowed` endpoints; services left without any are left out.
    public static func filter(_ catalog: [CatalogEntry], to allowed: Set<String>) -> [CatalogEntry] {
        catalog.compactMap { entry in
            let endpoints = entry.endpoints.filter { allowed.contains($0.id) }
            return endpoints.isEmpty ? nil : CatalogEntry(id: entry.id, type: entry.type, name: entry.name, endpoints: endpoints)
        }
    }
}

/// The projects whose catalog is filtered, as of one identity generation.
struct CatalogFilters: Sendable {
    let generation: UInt64
    let until: Date
    let allowed: [String: Set<String>]
}
