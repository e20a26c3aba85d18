import Contracts
import Foundation
import SQLKit
import Store

/// What `GET /servers` asks for: Nova's filters, one sort key and a page (`marker`, `limit`).
/// Filtering, sorting and paging happen in SQL, so a page of 50 reads about 50 rows.
public struct ServerListQuery: Sendable {
    public enum SortKey: String, Sendable {
        case name, createdAt = "created_at", updatedAt = "updated_at", vmState = "vm_state", host, uuid
    }

    /// nil: every project.
    public var projectID: String?
    /// A regular expression the name must contain a match of (as Nova's `name` filter).
    public var name: String?
    /// Nova's API status (`ACTIVE`, `SHUTOFF`, …), upper case.
    public var status: String?
    public var host: String?
    public var imageID: String?
    public var flavorID: String?
    public var reservationID: String?
    public var availabilityZone: String?
    public var userID: String?
    /// `changes-since`, in Unix milliseconds: servers updated at or after it.
    public var changedSince: Int64?
    /// Nova's tag filters (2.26): every tag of `tags`, at least one of `tagsAny`, not every
    /// one of `notTags`, none of `notTagsAny`.
    public var tags: [String]?
    public var tagsAny: [String]?
    public var notTags: [String]?
    public var notTagsAny: [String]?
    /// Nova's `locked` filter (2.73).
    public var locked: Bool?
    /// Nova's `deleted` filter (admins): true lists the soft-deleted servers (a deleted one's
    /// row is gone), false the others; nil, as false unless `changes-since` is given, which
    /// lists soft-deleted servers too.
    public var deleted: Bool?
    /// nil: newest first.
    public var sortKey: SortKey?
    public var ascending = false
    /// The id of the last server of the previous page; it must be one the query lists.
    public var marker: String?
    /// nil: every matching server.
    public var limit: Int?

    public init(projectID: String?) { self.projectID = projectID }
}

/// One page of servers.
public struct ServerPage: Sendable {
    public var servers: [Server]
    /// More servers follow this page (Nova then gives a `next` link).
    public var more: Bool
    /// Rows read from `instances` to answer: the page, one more to learn whether more follow,
    /// and the marker's.
    public var rowsRead: Int
}

extension Servers {
    /// The servers `query` asks for, in its order (ties: newest first, then by id).
    public func page(_ query: ServerListQuery) async throws -> ServerPage {
        let backend = database.backend
        // A name that is not a regular expression matches nothing (as Nova's filter in Python).
        let nameFilter = query.name.map { try? NSRegularExpression(pattern: $0) }
        // What SQL does not test: the name (a regular expression) and the tags (a JSON list).
        let testsRows = nameFilter != nil || query.tags != nil || query.tagsAny != nil || query.notTags != nil || query.notTagsAny != nil
        @Sendable func kept(_ row: InstanceRow) -> Bool {
            if let nameFilter, !Self.matches(nameFilter, row.name) { return false }
            guard testsRows else { return true }
            let tags = Set(JSONColumn.decode(row.tags, as: [String].self, fallback: []))
            if let all = query.tags, !Set(all).isSubset(of: tags) { return false }
            if let any = query.tagsAny, tags.isDisjoint(with: any) { return false }
            if let all = query.notTags, !all.isEmpty, Set(all).isSubset(of: tags) { return false }
            if let any = query.notTagsAny, !tags.isDisjoint(with: any) { return false }
            return true
        }
        return try await database.withConnection { sql in
            let listing = ServerListing(query: query, backend: backend)
            guard let filters = listing.filters() else {
                // A status no server can have lists nothing, so no marker is among them.
                if let marker = query.marker { throw Failure.badRequest("marker [\(marker)] not found") }
                return ServerPage(servers: [], more: false, rowsRead: 0)
            }
            var rowsRead = 0
            var after: InstanceRow?
            if let marker = query.marker {
                let found = try await ComputeTables.instances.all(sql, where: filters + " AND id = \(bind: marker)").first
                rowsRead += found == nil ? 0 : 1
                guard let found, kept(found) else {
                    throw Failure.badRequest("marker [\(marker)] not found")
                }
                after = found
            }
            // One row past the page tells whether more follow. A name (a regular expression,
            // which SQL cannot test the same way on both backends) is tested here, on batches.
            let wanted = query.limit.map { $0 == .max ? $0 : $0 + 1 }
            let batch = testsRows ? wanted.map { max($0, 200) } : wanted
            var found: [Server] = []
            while true {
                let condition = after.map { filters + " AND " + listing.after($0) } ?? filters
                let rows = try await ComputeTables.instances.all(sql, where: condition, orderBy: listing.order, limit: batch)
                rowsRead += rows.count
                for row in rows where kept(row) { found.append(Server(row)) }
                if let wanted, found.count >= wanted { break }
                guard let batch, rows.count == batch, let last = rows.last else { break }
                after = last
            }
            guard let limit = query.limit, found.count > limit else { return ServerPage(servers: found, more: false, rowsRead: rowsRead) }
            return ServerPage(servers: Array(found.prefix(limit)), more: true, rowsRead: rowsRead)
        }
    }

    static func matches(_ expression: NSRegularExpression?, _ name: String) -> Bool {
        guard let expression else { return false }
        return expression.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
    }
}

/// The SQL of a server listing: its filters, its order and where a page after a marker starts.
struct ServerListing {
    let query: ServerListQuery
    let backend: Database.Backend

    /// Text compares by code point on both backends (PostgreSQL's default collation follows the locale).
    var collate: String { backend == .postgresql ? " COLLATE \"C\"" : "" }

    /// Every filter of the query but the name, ANDed; nil when nothing can match.
    func filters() -> SQLQueryString? {
        var parts: [SQLQueryString] = ["1 = 1"]
        if let project = query.projectID { parts.append("project_id = \(bind: project)") }
        if let status = query.status {
            guard let condition = Self.status(status) else { return nil }
            parts.append(condition)
        }
        let equalities: [(String, String?)] = [("host", query.host), ("image_id", query.imageID), ("flavor_id", query.flavorID),
                                               ("reservation_id", query.reservationID), ("availability_zone", query.availabilityZone),
                                               ("user_id", query.userID)]
        for (column, value) in equalities { if let value { parts.append("\(ident: column) = \(bind: value)") } }
        if let since = query.changedSince { parts.append("updated_at >= \(bind: since)") }
        if let locked = query.locked { parts.append(locked ? "locked_by IS NOT NULL" : "locked_by IS NULL") }
        switch query.deleted ?? (query.changedSince == nil ? false : nil) {
        case true?: parts.append("vm_state = \(bind: VMState.softDeleted.rawValue)")
        case false?: parts.append("vm_state <> \(bind: VMState.softDeleted.rawValue)")
        case nil: break
        }
        return parts.joined(separator: " AND ")
    }

    /// The VM and task states behind one of Nova's statuses, as `ServerStatus` maps them.
    static func status(_ name: String) -> SQLQueryString? {
        guard let status = ServerStatus(rawValue: name) else { return nil }
        func vm(_ states: [VMState]) -> SQLQueryString { "vm_state IN (\(binds: states.map(\.rawValue)))" }
        func task(_ state: TaskState) -> SQLQueryString { "task_state = \(bind: state.rawValue)" }
        func noTask(_ states: [TaskState]) -> SQLQueryString {
            "(task_state IS NULL OR task_state NOT IN (\(binds: states.map(\.rawValue))))"
        }
        switch status {
        case .build: return vm([.building])
        case .reboot: return "(" + vm([.active]) + " AND " + task(.rebooting) + ")"
        case .hardReboot: return "(" + vm([.active]) + " AND " + task(.rebootingHard) + ")"
        case .rebuild: return "(" + vm([.active, .stopped, .error]) + " AND " + task(.rebuilding) + ")"
        case .active: return "(" + vm([.active]) + " AND " + noTask([.rebooting, .rebootingHard, .rebuilding, .resizePrep, .resizeMigrating]) + ")"
        case .shutoff: return "(" + vm([.stopped]) + " AND " + noTask([.rebuilding, .resizePrep, .resizeMigrating]) + ")"
        case .resize: return "(" + vm([.active, .stopped]) + " AND task_state IN ('resize_prep', 'resize_migrating'))"
        case .verifyResize: return "(" + vm([.resized]) + " AND " + noTask([.resizeReverting]) + ")"
        case .revertResize: return "(" + vm([.resized]) + " AND " + task(.resizeReverting) + ")"
        case .rescue: return vm([.rescued])
        case .paused: return vm([.paused])
        case .suspended: return vm([.suspended])
        case .error: return "(" + vm([.error]) + " AND " + noTask([.rebuilding]) + ")"
        case .deleted: return vm([.deleted])
        case .shelved: return vm([.shelved])
        case .shelvedOffloaded: return vm([.shelvedOffloaded])
        case .softDeleted: return vm([.softDeleted])
        case .unknown: return "vm_state NOT IN (\(binds: VMState.allCases.map(\.rawValue)))"
        }
    }

    /// The sort key's expression, and whether it is text.
    var sortExpression: (sql: String, text: Bool)? {
        switch query.sortKey {
        case nil, .createdAt?: return nil
        case .name?: return ("name", true)
        case .updatedAt?: return ("updated_at", false)
        case .vmState?: return ("vm_state", true)
        case .host?: return ("COALESCE(host, '')", true)
        case .uuid?: return ("id", true)
        }
    }

    /// The sort key (if any), then newest first, then by id: a total order, so pages never
    /// overlap nor skip.
    var order: SQLQueryString {
        var order = ""
        if let (expression, text) = sortExpression {
            order += expression + (text ? collate : "") + (query.ascending ? " ASC, " : " DESC, ")
        } else if query.sortKey == .createdAt && query.ascending {
            return SQLQueryString("created_at ASC, id\(collate) DESC")
        }
        return SQLQueryString(order + "created_at DESC, id\(collate) DESC")
    }

    /// The rows after `marker` in `order`.
    func after(_ marker: InstanceRow) -> SQLQueryString {
        let id: SQLQueryString = "id\(unsafeRaw: collate) < \(bind: marker.id)"
        let createdDescending = !(query.sortKey == .createdAt && query.ascending)
        let created: SQLQueryString = "(created_at \(unsafeRaw: createdDescending ? "<" : ">") \(bind: marker.createdAt) OR (created_at = \(bind: marker.createdAt) AND " + id + "))"
        // Each alternative leads with a bound on its first key, so an index can start at the marker.
        let createdBound: SQLQueryString = "created_at \(unsafeRaw: createdDescending ? "<=" : ">=") \(bind: marker.createdAt) AND "
        guard let (expression, text) = sortExpression else { return "(" + createdBound + created + ")" }
        let value: any Encodable & Sendable = switch query.sortKey {
        case .name?: marker.name
        case .updatedAt?: marker.updatedAt
        case .vmState?: marker.vmState
        case .host?: marker.host ?? ""
        default: marker.id
        }
        let column = expression + (text ? collate : "")
        return "(\(unsafeRaw: column) \(unsafeRaw: query.ascending ? ">=" : "<=") \(bind: value) AND (\(unsafeRaw: column) \(unsafeRaw: query.ascending ? ">" : "<") \(bind: value) OR (\(unsafeRaw: column) = \(bind: value) AND " + created + ")))"
    }
}
