import Foundation
import SQLKit
import Store

/// One group of a `GET /allocation_candidates` request: the unsuffixed one (`resources`,
/// `required`, `member_of`, `in_tree`), which the providers of one tree (and sharing providers)
/// satisfy together, or a suffixed one (`resources1` from 1.25, `resources_NAME` from 1.33),
/// which one provider must satisfy whole.
public struct RequestGroup: Sendable, Equatable {
    public var suffix: String
    public var resources: [String: Int] = [:]
    /// Each entry: at least one of these traits (one trait unless 1.39's `in:`); every entry must hold.
    public var required: [Set<String>] = []
    public var forbidden: Set<String> = []
    /// Each entry: at least one of these aggregates.
    public var memberOf: [Set<String>] = []
    /// None of these aggregates (1.32's `member_of=!uuid`, `!in:`).
    public var forbiddenAggregates: Set<String> = []
    /// Only providers of this provider's tree (1.31).
    public var inTree: String?

    public init(suffix: String) { self.suffix = suffix }

    /// A suffixed group is satisfied by one provider; the unsuffixed one by a tree.
    public var sameProvider: Bool { !suffix.isEmpty }

    /// Every trait the group names.
    public var traitNames: Set<String> { forbidden.union(required.flatMap { $0 }) }
}

/// What `GET /allocation_candidates` asks.
public struct CandidateRequest: Sendable {
    public var groups: [RequestGroup]
    /// `isolate`: suffixed groups on different providers; `none` (or nil): no rule.
    public var groupPolicy: String?
    public var limit: Int?
    /// From 1.29: an allocation request may take from several providers of one tree. Before,
    /// requests using two providers of one tree are left out.
    public var nested: Bool
    /// `root_required` (1.35): traits the root of each candidate's tree must have, and not have.
    public var rootRequired: Set<String> = []
    public var rootForbidden: Set<String> = []
    /// `same_subtree` (1.36): each set of suffixes is satisfied by providers one of which is an
    /// ancestor of (or is) all the others.
    public var sameSubtrees: [Set<String>] = []

    public init(groups: [RequestGroup], groupPolicy: String? = nil, limit: Int? = nil, nested: Bool = true) {
        self.groups = groups; self.groupPolicy = groupPolicy; self.limit = limit; self.nested = nested
    }
}

/// The answer: each allocation request (provider → class → amount, and which providers serve
/// each group) and, for every provider of the trees in them, its inventories' capacity and
/// usage, its traits and its place in its tree.
public struct CandidateResult: Sendable {
    public struct Candidate: Sendable, Equatable {
        public var allocations: [String: [String: Int]]
        /// Group suffix ("" for the unsuffixed group) → the providers satisfying it (1.34).
        public var mappings: [String: [String]]
    }

    public struct Summary: Sendable {
        public var resources: [String: (capacity: Int, used: Int)]
        public var traits: [String]
        public var parentUUID: String?
        public var rootUUID: String
    }

    public var allocationRequests: [Candidate]
    public var summaries: [String: Summary]
}

/// The trait by which a provider shares its inventory with the providers of its aggregates.
let sharesViaAggregate = "MISC_SHARES_VIA_AGGREGATE"

/// Every provider with its inventories, usages, traits and aggregates, read once for one
/// `GET /allocation_candidates`, and Placement's search over them.
struct ProviderForest {
    let providers: [ResourceProviderRow]  // by name
    let byUUID: [String: ResourceProviderRow]
    let inventories: [String: [String: InventoryRow]]
    let usages: [String: [String: Int]]
    let traits: [String: Set<String>]
    let aggregates: [String: Set<String>]
    let sharing: Set<String>
    /// The roots, in the providers' order.
    let roots: [String]

    init(providers: [ResourceProviderRow], inventories: [String: [String: InventoryRow]], usages: [String: [String: Int]],
         traits: [String: Set<String>], aggregates: [String: Set<String>]) {
        self.providers = providers
        byUUID = Dictionary(providers.map { ($0.uuid, $0) }, uniquingKeysWith: { first, _ in first })
        self.inventories = inventories; self.usages = usages; self.traits = traits; self.aggregates = aggregates
        roots = providers.filter { $0.parentUUID == nil }.map(\.uuid)
        sharing = Set(providers.filter { traits[$0.uuid]?.contains(sharesViaAggregate) == true }.map(\.uuid))
    }

    /// One group's share of a candidate: the tree it is anchored to (the root of the
    /// non-sharing providers), what it takes where, and which providers serve it.
    struct Partial {
        var anchor: String
        var amounts: [(provider: String, resourceClass: String, amount: Int)]
        var providers: Set<String>
        var suffix: String
    }

    func fits(_ provider: String, _ resourceClass: String, _ amount: Int) -> Bool {
        PlacementStore.misfit(amount, of: resourceClass, on: provider, inventory: inventories[provider]?[resourceClass],
                              used: usages[provider]?[resourceClass] ?? 0) == nil
    }

    func inAggregates(_ provider: String, _ memberOf: [Set<String>]) -> Bool {
        memberOf.allSatisfy { !$0.isDisjoint(with: aggregates[provider] ?? []) }
    }

    func inForbiddenAggregate(_ provider: String, _ forbidden: Set<String>) -> Bool {
        !forbidden.isDisjoint(with: aggregates[provider] ?? [])
    }

    /// Whether `have` holds every entry of `required` (one of each any-of set).
    static func satisfies(_ have: Set<String>, _ required: [Set<String>]) -> Bool {
        required.allSatisfy { !$0.isDisjoint(with: have) }
    }

    /// The roots of the trees a sharing provider shares with: the trees of every provider in
    /// one of its aggregates (its own included).
    func anchors(ofSharing provider: String) -> [String] {
        let mine = aggregates[provider] ?? []
        guard !mine.isEmpty else { return [] }
        var seen = Set<String>(), result: [String] = []
        for other in providers where !(aggregates[other.uuid] ?? []).isDisjoint(with: mine) {
            if seen.insert(other.rootUUID).inserted { result.append(other.rootUUID) }
        }
        return result
    }

    /// The root of the tree of `in_tree`: `.some(nil)` when no such provider (nothing matches).
    func treeRoot(_ group: RequestGroup) -> String?? {
        guard let uuid = group.inTree else { return .none }
        return .some(byUUID[uuid]?.rootUUID)
    }

    /// The unsuffixed group: each class from a provider of one tree or a sharing provider of
    /// its aggregates; the providers serving it hold its required traits together and none has
    /// a forbidden one; aggregates count for a provider or its tree's root.
    func treeGroup(_ group: RequestGroup, anchorRoots: Set<String>?) -> [Partial] {
        let root = treeRoot(group)
        if case .some(nil) = root { return [] }
        let inTree = root ?? nil
        var byClass: [(resourceClass: String, amount: Int, byAnchor: [String: [String]])] = []
        for (resourceClass, amount) in group.resources.sorted(by: { $0.key < $1.key }) {
            var pairs: [(provider: String, anchor: String)] = providers
                .filter { (inTree == nil || $0.rootUUID == inTree) && fits($0.uuid, resourceClass, amount) }
                .map { ($0.uuid, $0.rootUUID) }
            if inTree == nil {
                // Sharing providers (in the requested aggregates themselves) serve the trees of their aggregates.
                for provider in providers where sharing.contains(provider.uuid) && fits(provider.uuid, resourceClass, amount)
                    && (group.memberOf.isEmpty || inAggregates(provider.uuid, group.memberOf)) {
                    pairs += anchors(ofSharing: provider.uuid).map { (provider.uuid, $0) }
                }
            }
            if let anchorRoots { pairs = pairs.filter { anchorRoots.contains($0.anchor) } }
            if !group.memberOf.isEmpty {
                pairs = pairs.filter { inAggregates($0.provider, group.memberOf) || inAggregates($0.anchor, group.memberOf) }
            }
            if !group.forbiddenAggregates.isEmpty {
                pairs = pairs.filter {
                    !inForbiddenAggregate($0.provider, group.forbiddenAggregates) && !inForbiddenAggregate($0.anchor, group.forbiddenAggregates)
                }
            }
            var byAnchor: [String: [String]] = [:]
            for pair in pairs where !(byAnchor[pair.anchor] ?? []).contains(pair.provider) {
                byAnchor[pair.anchor, default: []].append(pair.provider)
            }
            if byAnchor.isEmpty { return [] }
            byClass.append((resourceClass, amount, byAnchor))
        }
        guard let first = byClass.first else { return [] }
        var result: [Partial] = []
        for anchor in roots where byClass.allSatisfy({ $0.byAnchor[anchor] != nil }) && first.byAnchor[anchor] != nil {
            // Every combination of one provider per class in this tree.
            var combinations: [[String]] = [[]]
            for entry in byClass {
                combinations = combinations.flatMap { prefix in entry.byAnchor[anchor]!.map { prefix + [$0] } }
            }
            for combination in combinations {
                let used = Set(combination)
                guard used.allSatisfy({ (traits[$0] ?? []).isDisjoint(with: group.forbidden) }),
                      Self.satisfies(used.reduce(into: Set<String>()) { $0.formUnion(traits[$1] ?? []) }, group.required) else { continue }
                let amounts = zip(byClass, combination).map { (provider: $1, resourceClass: $0.resourceClass, amount: $0.amount) }
                result.append(Partial(anchor: anchor, amounts: amounts, providers: used, suffix: group.suffix))
            }
        }
        return result
    }

    /// A suffixed group (or one without resources): one provider with all of it, its traits
    /// and aggregates; a sharing provider also serves the trees of its aggregates.
    func providerGroup(_ group: RequestGroup, anchorRoots: Set<String>?) -> [Partial] {
        let root = treeRoot(group)
        if case .some(nil) = root { return [] }
        let inTree = root ?? nil
        var result: [Partial] = []
        for provider in providers {
            let uuid = provider.uuid, have = traits[uuid] ?? []
            guard inTree == nil || provider.rootUUID == inTree, Self.satisfies(have, group.required), have.isDisjoint(with: group.forbidden),
                  inAggregates(uuid, group.memberOf), !inForbiddenAggregate(uuid, group.forbiddenAggregates),
                  group.resources.allSatisfy({ fits(uuid, $0.key, $0.value) }) else { continue }
            let amounts = group.resources.sorted { $0.key < $1.key }.map { (provider: uuid, resourceClass: $0.key, amount: $0.value) }
            var served = [provider.rootUUID]
            if sharing.contains(uuid) { served += anchors(ofSharing: uuid).filter { $0 != provider.rootUUID } }
            for anchor in served where anchorRoots?.contains(anchor) ?? true {
                result.append(Partial(anchor: anchor, amounts: amounts, providers: [uuid], suffix: group.suffix))
            }
        }
        return result
    }


    /// The roots with (and without) the `root_required` traits; nil when none are asked.
    func anchorRoots(_ request: CandidateRequest) -> Set<String>? {
        guard !request.rootRequired.isEmpty || !request.rootForbidden.isEmpty else { return nil }
        return Set(providers.filter { provider in
            let have = traits[provider.uuid] ?? []
            return provider.parentUUID == nil && request.rootRequired.isSubset(of: have) && request.rootForbidden.isDisjoint(with: have)
        }.map(\.uuid))
    }

    /// `uuid` and its ancestors.
    func lineage(_ uuid: String) -> Set<String> {
        var result: Set<String> = [uuid], cursor = byUUID[uuid]?.parentUUID
        while let parent = cursor, result.insert(parent).inserted { cursor = byUUID[parent]?.parentUUID }
        return result
    }

    /// Whether one of `uuids` is an ancestor of (or is) every other.
    func sameSubtree(_ uuids: Set<String>) -> Bool {
        guard uuids.count > 1 else { return true }
        let lineages = uuids.map(lineage)
        let common = lineages.dropFirst().reduce(lineages[0]) { $0.intersection($1) }
        return !common.isDisjoint(with: uuids)
    }

    func candidates(_ request: CandidateRequest) -> CandidateResult {
        let anchorRoots = anchorRoots(request)
        if let anchorRoots, anchorRoots.isEmpty { return CandidateResult(allocationRequests: [], summaries: [:]) }
        // Each group's partial requests, by the tree they are anchored to.
        var byAnchor: [String: [String: [Partial]]] = [:]
        let groups = request.groups.sorted { $0.suffix < $1.suffix }
        for group in groups {
            let partials = group.sameProvider || group.resources.isEmpty
                ? providerGroup(group, anchorRoots: anchorRoots) : treeGroup(group, anchorRoots: anchorRoots)
            if partials.isEmpty { return CandidateResult(allocationRequests: [], summaries: [:]) }
            for partial in partials { byAnchor[partial.anchor, default: [:]][group.suffix, default: []].append(partial) }
        }
        let granular = groups.filter(\.sameProvider).count
        var seen = Set<String>()
        var found: [CandidateResult.Candidate] = []
        var providersUsed = Set<String>()
        search: for anchor in roots {
            guard let lists = byAnchor[anchor], lists.count == groups.count else { continue }
            var combinations: [[Partial]] = [[]]
            for group in groups { combinations = combinations.flatMap { prefix in lists[group.suffix]!.map { prefix + [$0] } } }
            for combination in combinations {
                if request.groupPolicy == "isolate",
                   Set(combination.filter { !$0.suffix.isEmpty }.flatMap(\.providers)).count != granular { continue }
                var mappings: [String: Set<String>] = [:]
                for partial in combination { mappings[partial.suffix, default: []].formUnion(partial.providers) }
                guard request.sameSubtrees.allSatisfy({ suffixes in
                    sameSubtree(suffixes.reduce(into: Set<String>()) { $0.formUnion(mappings[$1] ?? []) })
                }) else { continue }
                // The groups' amounts together, within capacity and max_unit.
                var allocations: [String: [String: Int]] = [:]
                for partial in combination {
                    for item in partial.amounts { allocations[item.provider, default: [:]][item.resourceClass, default: 0] += item.amount }
                }
                guard allocations.allSatisfy({ provider, resources in resources.allSatisfy { resourceClass, amount in
                    guard let inventory = inventories[provider]?[resourceClass] else { return false }
                    return (usages[provider]?[resourceClass] ?? 0) + amount <= inventory.capacity && amount <= inventory.maxUnit
                } }) else { continue }
                // Before 1.29 a request takes from one provider of each tree at most.
                if !request.nested, Set(allocations.keys.compactMap { byUUID[$0]?.rootUUID }).count != allocations.count { continue }
                let candidate = CandidateResult.Candidate(allocations: allocations, mappings: mappings.mapValues { $0.sorted() })
                let key = allocations.keys.sorted().map { "\($0):\(allocations[$0]!.sorted { $0.key < $1.key })" }.joined(separator: ";")
                    + "|" + mappings.keys.sorted().map { "\($0)=\(mappings[$0]!.sorted())" }.joined(separator: ";")
                guard seen.insert(key).inserted else { continue }
                found.append(candidate)
                providersUsed.formUnion(allocations.keys)
                if let limit = request.limit, found.count >= limit { break search }
            }
        }
        // Summaries: from 1.29 every provider of the trees the requests take from; before, the
        // providers they take from.
        let trees = Set(providersUsed.compactMap { byUUID[$0]?.rootUUID })
        var summaries: [String: CandidateResult.Summary] = [:]
        for provider in providers where request.nested ? trees.contains(provider.rootUUID) : providersUsed.contains(provider.uuid) {
            var resources: [String: (Int, Int)] = [:]
            for (resourceClass, inventory) in inventories[provider.uuid] ?? [:] {
                resources[resourceClass] = (inventory.capacity, usages[provider.uuid]?[resourceClass] ?? 0)
            }
            summaries[provider.uuid] = .init(resources: resources, traits: (traits[provider.uuid] ?? []).sorted(),
                                             parentUUID: provider.parentUUID, rootUUID: provider.rootUUID)
        }
        return CandidateResult(allocationRequests: found, summaries: summaries)
    }
}

extension PlacementService {
    /// Allocation candidates as Placement finds them: the unsuffixed group from the providers
    /// of one tree (root and descendants) and the sharing providers of its aggregates
    /// (`MISC_SHARES_VIA_AGGREGATE`), each suffixed group whole from one provider of that tree
    /// or a sharing one, distinct ones under `group_policy=isolate`; `in_tree`, forbidden
    /// aggregates, `root_required`, `same_subtree` and any-of traits narrow them. Only what
    /// fits now (capacity, min/max unit, step size, after every allocation) is proposed.
    public func allocationCandidates(_ request: CandidateRequest) async throws -> CandidateResult {
        try await checkClasses(Set(request.groups.flatMap(\.resources.keys)))
        try await checkTraits(request.groups.reduce(request.rootRequired.union(request.rootForbidden)) { $0.union($1.traitNames) })
        return try await read { sql in
            let forest = ProviderForest(providers: try await PlacementStore.providers(sql), inventories: try await PlacementStore.inventories(sql),
                                        usages: try await PlacementStore.usages(sql), traits: try await Self.traitsByProvider(sql),
                                        aggregates: try await Self.aggregatesByProvider(sql))
            return forest.candidates(request)
        }
    }
}
