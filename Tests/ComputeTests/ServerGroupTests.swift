import Compute
import Foundation
import Hosts
import Logging
import PetrelCore
import Store
import TestSupport
import Testing

/// Server groups on a real database: the scheduler's affinity and anti-affinity filters (with
/// `max_server_per_host`), the soft policies' weigher, and the groups' quotas.
@Suite struct ServerGroupTests {
    let scheduling = SchedulerTests()

    func member(_ database: Database, of group: ServerGroup) async throws -> String {
        let id = try await scheduling.newInstance(database)
        try await database.withConnection { sql in
            try await ComputeTables.serverGroupMembers.insert(sql, ServerGroupMemberRow(groupID: group.id, instanceID: id))
        }
        return id
    }

    @Test(arguments: TestDatabase.allCases)
    func policiesPlaceTheGroupsServers(backend: TestDatabase) async throws {
        try await scheduling.withHosts(backend) { _, database, hosts, names in
            let scheduler = Scheduler(hosts: hosts, options: SchedulerOptions())
            let groups = ServerGroups(database: database, quotas: Quotas(database: database, defaults: [:]))
            let owner = ServerCaller(projectID: "p", userID: "u", isAdmin: false)

            // Anti-affinity: three servers on three hosts, a fourth refused.
            let apart = try await groups.create(name: "apart", policy: "anti-affinity", maxServerPerHost: nil, by: owner)
            var hostsUsed: Set<String> = []
            for _ in 0..<3 { hostsUsed.insert(try await scheduler.schedule(instanceID: try await member(database, of: apart))) }
            #expect(hostsUsed == Set(names))
            let fourth = try await member(database, of: apart)
            await #expect(throws: Scheduler.Failure.self) { try await scheduler.schedule(instanceID: fourth) }

            // max_server_per_host 2: six fit on three hosts, two each.
            let pairs = try await groups.create(name: "pairs", policy: "anti-affinity", maxServerPerHost: 2, by: owner)
            var count: [String: Int] = [:]
            for _ in 0..<6 { count[try await scheduler.schedule(instanceID: try await member(database, of: pairs)), default: 0] += 1 }
            #expect(count.values.sorted() == [2, 2, 2])

            // Affinity: all on the first one's host, even against the free-RAM weigher.
            let together = try await groups.create(name: "together", policy: "affinity", maxServerPerHost: nil, by: owner)
            let first = try await scheduler.schedule(instanceID: try await member(database, of: together))
            for _ in 0..<3 { #expect(try await scheduler.schedule(instanceID: try await member(database, of: together)) == first) }

            // Soft anti-affinity prefers hosts without the group's servers, and never refuses.
            let spread = try await groups.create(name: "spread", policy: "soft-anti-affinity", maxServerPerHost: nil, by: owner)
            var soft: [String: Int] = [:]
            for _ in 0..<4 { soft[try await scheduler.schedule(instanceID: try await member(database, of: spread)), default: 0] += 1 }
            #expect(soft.count == 3 && soft.values.sorted() == [1, 1, 2])

            #expect(try await groups.list(by: owner, allProjects: false).map(\.row.name) == ["apart", "pairs", "together", "spread"])
            #expect(try await groups.get(apart.id, by: owner).members.count == 4)
        }
    }

    @Test func quotaLimitsTheGroups() async throws {
        try await scheduling.withHosts(.sqlite, count: 1) { _, database, _, _ in
            let quotas = Quotas(database: database, defaults: ["server_groups": 2])
            let groups = ServerGroups(database: database, quotas: quotas)
            let owner = ServerCaller(projectID: "p", userID: "u", isAdmin: false)
            for name in ["a", "b"] { _ = try await groups.create(name: name, policy: "affinity", maxServerPerHost: nil, by: owner) }
            await #expect(throws: ServerGroups.Failure.quota("Quota exceeded, too many server groups.")) {
                try await groups.create(name: "c", policy: "affinity", maxServerPerHost: nil, by: owner)
            }
            #expect(try await quotas.usage(project: "p", user: nil)["server_groups"] == 2)
            #expect(quotas.defaults["server_group_members"] == 10, "Nova's default where the configuration gives none")
            let other = ServerCaller(projectID: "q", userID: "v", isAdmin: false)
            let first = try #require(try await groups.list(by: owner, allProjects: false).first)
            await #expect(throws: ServerGroups.Failure.notFound(first.id)) { try await groups.get(first.id, by: other) }
        }
    }
}
