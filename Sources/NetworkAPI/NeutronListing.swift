import Foundation
import Hummingbird
import PetrelHTTP

/// What every Neutron collection does with a `GET`: filters on any attribute (a repeated
/// parameter matches any of its values), the tag filters, `sort_key`/`sort_dir`,
/// `limit`/`marker`/`page_reverse` with `<collection>_links`, and `fields`. It works on the
/// resources as the API shows them, so a filter, a sort key and a field name are always the
/// names a client sees.
struct NeutronListing {
    static let reserved: Set<String> = ["fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse",
                                        "tags", "tags-any", "not-tags", "not-tags-any"]

    let collection: String
    /// Every attribute a filter or sort key may name (also those the caller may not see).
    let attributes: Set<String>
    let request: Request
    let path: String
    /// Parameters the route answers itself, besides the reserved ones.
    var ignored: Set<String> = []

    /// The page of `items` the query asks for, in Neutron's body: `{collection: [...], collection_links: [...]}`.
    func page(_ items: [[String: JSON]], hidden: Set<String> = [], notFound: (String) -> any Error) throws -> JSON {
        var items = try filtered(items)
        try sort(&items)
        let limit = try self.limit()
        let reverse = request.boolQuery("page_reverse") ?? false
        var links: [JSON] = []
        if let marker = request.query("marker"), !marker.isEmpty {
            guard let index = items.firstIndex(where: { $0["id"]?.stringValue == marker }) else { throw notFound(marker) }
            items = reverse ? Array(items[..<index]) : Array(items[(index + 1)...])
        }
        if let limit, limit > 0 {
            let more = items.count > limit
            items = reverse ? Array(items.suffix(limit)) : Array(items.prefix(limit))
            if let last = items.last?["id"]?.stringValue, more || reverse {
                links.append(["rel": "next", "href": .string(link(marker: last, limit: limit, reverse: false))])
            }
            if let first = items.first?["id"]?.stringValue, request.query("marker") != nil || (reverse && more) {
                links.append(["rel": "previous", "href": .string(link(marker: first, limit: limit, reverse: true))])
            }
        }
        let fields = Set(request.queryList("fields").flatMap { $0.split(separator: ",").map(String.init) })
        let shown = items.map { item -> JSON in
            var item = item
            for key in hidden { item[key] = nil }
            if !fields.isEmpty { item = item.filter { fields.contains($0.key) } }
            return .object(item)
        }
        var body: [String: JSON] = [collection: .array(shown)]
        if !links.isEmpty { body[collection + "_links"] = .array(links) }
        return .object(body)
    }

    /// One resource as `GET …/{id}?fields=…` shows it.
    static func shown(_ item: [String: JSON], request: Request, hidden: Set<String> = []) -> JSON {
        var item = item
        for key in hidden { item[key] = nil }
        let fields = Set(request.queryList("fields").flatMap { $0.split(separator: ",").map(String.init) })
        if !fields.isEmpty { item = item.filter { fields.contains($0.key) } }
        return .object(item)
    }

    func limit() throws -> Int? {
        guard let text = request.query("limit") else { return nil }
        guard let value = Int(text), value >= 0 else {
            throw APIFault(.badRequest, "Limit must be an integer 0 or greater and not '\(text)'", type: "HTTPBadRequest")
        }
        return value
    }

    func link(marker: String, limit: Int, reverse: Bool) -> String {
        var components = URLComponents()
        components.path = path
        var items = (URLComponents(string: request.uri.description)?.queryItems ?? [])
            .filter { !["marker", "limit", "page_reverse"].contains($0.name) }
        items.append(URLQueryItem(name: "limit", value: String(limit)))
        items.append(URLQueryItem(name: "marker", value: marker))
        if reverse { items.append(URLQueryItem(name: "page_reverse", value: "True")) }
        components.queryItems = items
        return components.string ?? path
    }

    /// The query's filters: `name → values` for every parameter that is not paging, sorting or fields.
    func filters() throws -> [(String, [String])] {
        var seen: [String] = []
        for item in URLComponents(string: request.uri.description)?.queryItems ?? [] where !Self.reserved.contains(item.name) && !ignored.contains(item.name) {
            if !seen.contains(item.name) { seen.append(item.name) }
        }
        return try seen.map { name in
            guard attributes.contains(name) else {
                throw APIFault(.badRequest, "\(name) is invalid attribute for filtering", type: "HTTPBadRequest")
            }
            return (name, request.queryList(name))
        }
    }

    func filtered(_ items: [[String: JSON]]) throws -> [[String: JSON]] {
        let filters = try self.filters()
        func tagSet(_ key: String) -> [String] {
            request.queryList(key).flatMap { $0.split(separator: ",").map(String.init) }
        }
        let all = tagSet("tags"), any = tagSet("tags-any"), notAll = tagSet("not-tags"), notAny = tagSet("not-tags-any")
        return items.filter { item in
            let tags = Set((item["tags"]?.arrayValue ?? []).compactMap(\.stringValue))
            if !all.isEmpty && !all.allSatisfy(tags.contains) { return false }
            if !any.isEmpty && !any.contains(where: tags.contains) { return false }
            if !notAll.isEmpty && notAll.allSatisfy(tags.contains) { return false }
            if !notAny.isEmpty && notAny.contains(where: tags.contains) { return false }
            return filters.allSatisfy { name, values in Self.matches(item[name] ?? .null, name: name, values) }
        }
    }

    /// Whether a field's value is one of `values` (for lists: holds one of them; for
    /// `fixed_ips`: `ip_address=…`/`subnet_id=…` conditions, OR within a key, AND across keys).
    static func matches(_ value: JSON, name: String, _ values: [String]) -> Bool {
        if name == "fixed_ips" {
            let entries = (value.arrayValue ?? []).compactMap(\.objectValue)
            var wanted: [String: [String]] = [:]
            for condition in values {
                let parts = condition.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { return false }
                wanted[String(parts[0]), default: []].append(String(parts[1]))
            }
            return wanted.allSatisfy { key, options in
                entries.contains { entry in
                    guard let have = entry[key == "ip_address_substr" ? "ip_address" : key]?.stringValue else { return false }
                    return options.contains { key == "ip_address_substr" ? have.contains($0) : have == $0 }
                }
            }
        }
        return values.contains { scalarMatches(value, $0) }
    }

    static func scalarMatches(_ value: JSON, _ text: String) -> Bool {
        switch value {
        case .string(let string): return string == text
        case .bool(let flag): return booleanValue(text) == flag
        case .number(let number): return Double(text) == number
        case .null: return text.isEmpty || text.lowercased() == "none"
        case .array(let items): return items.contains { scalarMatches($0, text) }
        default: return false
        }
    }

    /// oslo's boolean strings, as Neutron converts them.
    static func booleanValue(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "1", "t", "yes", "y", "on": return true
        case "false", "0", "f", "no", "n", "off": return false
        default: return nil
        }
    }

    func sort(_ items: inout [[String: JSON]]) throws {
        let keys = request.queryList("sort_key")
        let directions = request.queryList("sort_dir")
        guard !keys.isEmpty || !directions.isEmpty else { return }
        guard directions.isEmpty || directions.count == keys.count else {
            throw APIFault(.badRequest, "The number of sort_keys and sort_dirs must be same", type: "HTTPBadRequest")
        }
        var order: [(String, Bool)] = []
        for (index, key) in keys.enumerated() {
            guard attributes.contains(key) else {
                throw APIFault(.badRequest, "\(key) is invalid attribute for sort_key", type: "HTTPBadRequest")
            }
            let direction = directions.isEmpty ? "asc" : directions[index].lowercased()
            guard ["asc", "desc"].contains(direction) else {
                throw APIFault(.badRequest, "\(directions[index]) is invalid value for sort_dir, valid value is 'asc' and 'desc'", type: "HTTPBadRequest")
            }
            order.append((key, direction == "desc"))
        }
        if !keys.contains("id") { order.append(("id", order.last?.1 ?? false)) }
        items.sort { left, right in
            for (key, descending) in order {
                let comparison = Self.compare(left[key] ?? .null, right[key] ?? .null)
                if comparison != 0 { return descending ? comparison > 0 : comparison < 0 }
            }
            return false
        }
    }

    /// Orders JSON values the way a SQL sort would: nulls first, then by value.
    static func compare(_ left: JSON, _ right: JSON) -> Int {
        switch (left, right) {
        case (.null, .null): return 0
        case (.null, _): return -1
        case (_, .null): return 1
        case (.string(let a), .string(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.number(let a), .number(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (a ? 1 : -1)
        default:
            let a = String(decoding: left.encoded(), as: UTF8.self), b = String(decoding: right.encoded(), as: UTF8.self)
            return a < b ? -1 : (a == b ? 0 : 1)
        }
    }
}
