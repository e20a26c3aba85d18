import Foundation
import SQLKit
import Store

/// One group of a `GET /allocation_candidates` request: the unsuffixed one (`resources`,
/// `required`, `member_of`) or a numbered one (`resources1`, … from 1.25), which one provider
/// must satisfy whole.
public struct RequestGroup: Sendable, Equatable {
    public var suffix: String
    public var resources: [String: Int] = [:]
    public var required: Set<String> = []
    public var forbidden: Set<String> = []
    /// Each entry: at least one of these aggregates.
    public var memberOf: [Set<String>] = []

    public init(suffix: String) { self.suffix = suffix }
}

/// What `GET /allocation_candidates` asks.
public struct CandidateRequest: Sendable {
    public var groups: [RequestGroup]
    /// `isolate`: numbered groups on different providers; `none` (or nil): no rule.
    public var groupPolicy: String?
    public var limit: Int?

    public init(groups: [RequestGroup], groupPolicy: String? = nil, limit: Int? = nil) {
        self.groups = groups; self.groupPolicy = groupPolicy; self.limit = limit
    }
}

/// The answer: each allocation request (provider → class → amount) and, for every provider
/// in them, its inventories' capacity and usage and its traits.
public struct CandidateResult: Sendable {
    public struct Summary: Sendable {
        public var resources: [String: (capacity: Int, used: Int)]
        public var traits: [String]
        public var parentUUID: String?
        public var rootUUID: String
    }

    public var allocationRequests: [[String: [String: Int]]]
    public var summaries: [String: Summary]
}

/// The trait by which a provider shares its inventory with the providers of its aggregates.
let sharesViaAggregate = "MISC_SHARES_VIA_AGGREGATE"

extension PlacementService {
    /// Allocation candidates as Placement finds them before nested providers (1.29): each is a
    /// provider alone in its tree, with providers sharing their inventory through one of its
    /// aggregates (`MISC_SHARES_VIA_AGGREGATE`) serving classes of the unsuffixed group; each
    /// numbered group is served whole by one of these providers, distinct ones under
    /// `group_policy=isolate`. Only what fits now (capacity, min/max unit, step size, after
    /// every allocation) is proposed.
    public func allocationCandidates(_ request: CandidateRequest) async throws -> CandidateResult {
        let classes = Set(request.groups.flatMap(\.resources.keys))
        try await checkClasses(classes)
        try await checkTraits(Set(request.groups.flatMap { $0.required.union($0.forbidden) }))
        return try await read { sql in
            let providers = try await PlacementStore.providers(sql)
            let inventories = try await PlacementStore.inventories(sql)
            let usages = try await PlacementStore.usages(sql)
            let traits = try await Self.traitsByProvider(sql)
            let aggregates = try await Self.aggregatesByProvider(sql)
            let treeSizes = Dictionary(providers.map { ($0.rootUUID, 1) }, uniquingKeysWith: +)
            // Nested trees are left out before 1.29, as Placement does.
            let eligible = providers.filter { treeSizes[$0.rootUUID] == 1 }
            let sharing = eligible.filter { traits[$0.uuid]?.contains(sharesViaAggregate) == true }

            func fits(_ provider: String, _ resourceClass: String, _ amount: Int) -> Bool {
                PlacementStore.misfit(amount, of: resourceClass, on: provider, inventory: inventories[provider]?[resourceClass],
                                      used: usages[provider]?[resourceClass] ?? 0) == nil
            }
            func traitsOK(_ have: Set<String>, _ group: RequestGroup) -> Bool {
                group.required.isSubset(of: have) && group.forbidden.isDisjoint(with: have)
            }
            func memberOK(_ provider: String, _ group: RequestGroup) -> Bool {
                group.memberOf.allSatisfy { !$0.isDisjoint(with: aggregates[provider] ?? []) }
            }

            var seen = Set<String>()
            var requests: [[String: [String: Int]]] = []
            let unsuffixed = request.groups.first { $0.suffix.isEmpty }
            let numbered = request.groups.filter { !$0.suffix.isEmpty }
            for anchor in eligible {
                // The providers that may serve this anchor's request: itself and the sharing
                // providers in one of its aggregates.
                let anchorAggregates = aggregates[anchor.uuid] ?? []
                let reach = [anchor.uuid] + sharing.filter { $0.uuid != anchor.uuid && !(aggregates[$0.uuid] ?? []).isDisjoint(with: anchorAggregates) }.map(\.uuid)
                // Unsuffixed group: each class from any provider in reach.
                var partials: [[String: [String: Int]]] = [[:]]
                var unsuffixedProviders: [Set<String>] = [[]]
                if let group = unsuffixed, !group.resources.isEmpty {
                    guard memberOK(anchor.uuid, group) else { continue }
                    for (resourceClass, amount) in group.resources.sorted(by: { $0.key < $1.key }) {
                        let options = reach.filter { fits($0, resourceClass, amount) }
                        var next: [[String: [String: Int]]] = [], nextProviders: [Set<String>] = []
                        for (index, partial) in partials.enumerated() {
                            for option in options {
                                var extended = partial
                                extended[option, default: [:]][resourceClass, default: 0] += amount
                                next.append(extended)
                                nextProviders.append(unsuffixedProviders[index].union([option]))
                            }
                        }
                        partials = next
                        unsuffixedProviders = nextProviders
                    }
                    // Its traits apply to the providers serving it, together.
                    var kept: [[String: [String: Int]]] = [], keptProviders: [Set<String>] = []
                    for (index, partial) in partials.enumerated() {
                        let have = unsuffixedProviders[index].reduce(into: Set<String>()) { $0.formUnion(traits[$1] ?? []) }
                        if traitsOK(have, group) { kept.append(partial); keptProviders.append(unsuffixedProviders[index]) }
                    }
                    partials = kept
                } else if let group = unsuffixed, !group.required.isEmpty || !group.forbidden.isEmpty || !group.memberOf.isEmpty {
                    guard traitsOK(traits[anchor.uuid] ?? [], group), memberOK(anchor.uuid, group) else { continue }
                }
                // Numbered groups: each whole on one provider in reach (under `isolate`, each on
                // a provider no other numbered group uses).
                var chosen: [[String]] = partials.map { _ in [] }
                for group in numbered {
                    let options = reach.filter { provider in
                        traitsOK(traits[provider] ?? [], group) && memberOK(provider, group)
                            && group.resources.allSatisfy { fits(provider, $0.key, $0.value) }
                    }
                    var next: [[String: [String: Int]]] = [], nextChosen: [[String]] = []
                    for (index, partial) in partials.enumerated() {
                        for option in options {
                            if request.groupPolicy == "isolate" && chosen[index].contains(option) { continue }
                            var extended = partial
                            for (resourceClass, amount) in group.resources { extended[option, default: [:]][resourceClass, default: 0] += amount }
                            next.append(extended)
                            nextChosen.append(chosen[index] + [option])
                        }
                    }
                    partials = next
                    chosen = nextChosen
                }
                for partial in partials where !partial.isEmpty {
                    // Amounts of several groups on one provider must fit together.
                    guard partial.allSatisfy({ provider, resources in resources.allSatisfy { resourceClass, amount in
                        guard let inventory = inventories[provider]?[resourceClass] else { return false }
                        return (usages[provider]?[resourceClass] ?? 0) + amount <= inventory.capacity
                    } }) else { continue }
                    let key = partial.keys.sorted().map { "\($0):\(partial[$0]!.sorted { $0.key < $1.key })" }.joined(separator: ";")
                    if seen.insert(key).inserted { requests.append(partial) }
                }
            }
            if let limit = request.limit, requests.count > limit { requests = Array(requests.prefix(limit)) }
            var summaries: [String: CandidateResult.Summary] = [:]
            let byUUID = Dictionary(providers.map { ($0.uuid, $0) }, uniquingKeysWith: { first, _ in first })
            for uuid in Set(requests.flatMap(\.keys)) {
                guard let provider = byUUID[uuid] else { continue }
                var resources: [String: (Int, Int)] = [:]
                for (resourceClass, inventory) in inventories[uuid] ?? [:] {
                    resources[resourceClass] = (inventory.capacity, usages[uuid]?[resourceClass] ?? 0)
                }
                summaries[uuid] = .init(resources: resources, traits: (traits[uuid] ?? []).sorted(), parentUUID: provider.parentUUID,
                                        rootUUID: provider.rootUUID)
            }
            return CandidateResult(allocationRequests: requests, summaries: summaries)
        }
    }
}
