import Foundation
import Hummingbird
import NIOCore

extension Request {
    /// The body as JSON, whatever its media type says: 413 when over `maxSize` bytes, 400 when
    /// shorter than its `Content-Length` or not strict JSON in UTF-8 (no trailing commas,
    /// comments or other encodings).
    public func json(maxSize: Int) async throws -> JSON {
        try Self.parse(try await bodyBytes(maxSize: maxSize))
    }

    /// The whole body: 413 over `maxSize` bytes, 400 when shorter than its `Content-Length`.
    private func bodyBytes(maxSize: Int) async throws -> [UInt8] {
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: maxSize)
        } catch is NIOTooManyBytesError {
            throw RequestTooLarge()
        } catch {
            throw APIFault(.badRequest, "The request body ended before its Content-Length.")
        }
        if let declared = headers[.contentLength].flatMap({ Int($0) }), declared > buffer.readableBytes {
            throw APIFault(.badRequest, "The request body ended before its Content-Length.")
        }
        return Array(buffer.readableBytesView)
    }

    private static func parse(_ bytes: [UInt8]) throws -> JSON {
        guard String(validating: bytes, as: UTF8.self) != nil, let json = JSON.parse(bytes) else {
            throw APIFault(.badRequest, "The request body is not valid JSON.")
        }
        return json
    }

    /// The body as a JSON object, declared as JSON (or a JSON-based type such as
    /// application/vnd.openstack.compute+json) or not declared: as `json(maxSize:)`, and a 415
    /// for another media type, a 400 when it breaks `schema` (in the words of `style`'s API) or
    /// is not an object.
    public func jsonObject(maxSize: Int, schema: Schema? = nil, style: FaultStyle = .nova) async throws -> [String: JSON] {
        let bytes = try await bodyBytes(maxSize: maxSize)
        if !bytes.isEmpty, let type = mediaType, type != "application/json", !type.hasSuffix("+json") {
            throw UnsupportedMediaType(type)
        }
        let json = try Self.parse(bytes)
        if let schema, let violation = schema.violation(json) { throw violation.fault(style) }
        guard let object = json.objectValue else { throw APIFault(.badRequest, "The request body must be a JSON object.") }
        return object
    }

    /// The media type of the body (`Content-Type` without parameters, lowercased), or nil.
    public var mediaType: String? {
        guard let value = headers[.contentType] else { return nil }
        let type = value.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return type.isEmpty ? nil : type
    }

    /// Refuses a body whose declared media type is not one of `accepted` (no type: taken as meant).
    public func requireMediaType(_ accepted: Set<String>) throws {
        if let type = mediaType, !accepted.contains(type) { throw UnsupportedMediaType(type) }
    }

    /// The query's (name, value) pairs in order, decoded as a form (`+` is a space, as Python's
    /// clients send it); a name without `=` has the empty value.
    public var queryPairs: [(name: String, value: String)] {
        func decode(_ part: Substring) -> String {
            let text = part.replacingOccurrences(of: "+", with: " ")
            return text.removingPercentEncoding ?? text
        }
        return (uri.query ?? "").split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    /// A query parameter's first value.
    public func query(_ key: String) -> String? {
        queryPairs.first { $0.name == key }?.value
    }

    /// Every value of a repeated query parameter (`tag=a&tag=b`), in order.
    public func queryList(_ key: String) -> [String] {
        (URLComponents(string: uri.description)?.queryItems ?? []).filter { $0.name == key }.compactMap(\.value)
    }

    /// A boolean query flag: present without a value, or with a true-ish value.
    public func flag(_ key: String) -> Bool {
        guard let value = query(key) else { return false }
        return ["", "true", "1", "yes", "on"].contains(value.lowercased())
    }

    /// A boolean query parameter: nil when absent, false for false-ish values, true otherwise.
    public func boolQuery(_ key: String) -> Bool? {
        guard let value = query(key) else { return nil }
        return !["false", "0", "no", "off"].contains(value.lowercased())
    }

    /// An integer query parameter at least `minimum`; `invalid` is thrown for anything else.
    public func intQuery(_ key: String, minimum: Int = 0, invalid: @autoclosure () -> any Error) throws -> Int? {
        guard let text = query(key) else { return nil }
        guard let value = Int(text), value >= minimum else { throw invalid() }
        return value
    }
}

/// `limit`/`marker` paging and the sort keys as the OpenStack APIs take them.
public enum Paging {
    /// Nova's `limit`: a non-negative integer, or nil when absent (400 in Nova's words otherwise).
    public static func novaLimit(_ request: Request) throws -> Int? {
        try request.intQuery("limit", invalid: APIFault(.badRequest, "Invalid input for query parameters limit."))
    }

    /// Nova's and Cinder's `…_links` of a page that has more after it.
    public static func nextLinks(_ base: String, limit: Int, marker: String) -> JSON {
        [["rel": "next", "href": .string("\(base)?limit=\(limit)&marker=\(marker)")]]
    }

    /// Glance's `next`: the request's query without its paging, then `marker` and `limit`.
    public static func glanceNext(_ path: String, request: Request, limit: Int, marker: String) -> String {
        var next = URLComponents()
        next.path = path
        var items = (URLComponents(string: request.uri.description)?.queryItems ?? []).filter { $0.name != "marker" && $0.name != "limit" }
        items += [URLQueryItem(name: "marker", value: marker), URLQueryItem(name: "limit", value: String(limit))]
        next.queryItems = items
        return next.string ?? "\(path)?marker=\(marker)"
    }

    /// Glance's sort: `sort=name:asc,created_at` or `sort_key=…&sort_dir=…` (descending by
    /// default), as (key, descending) pairs.
    public static func glanceSort(_ request: Request, defaultKey: String = "created_at") throws -> [(key: String, descending: Bool)] {
        var keys: [(key: String, descending: Bool)] = []
        if let sort = request.query("sort") {
            for part in sort.split(separator: ",") {
                let pieces = part.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                guard let key = pieces.first, !key.isEmpty, pieces.count <= 2 else {
                    throw APIFault(.badRequest, "Invalid sort value '\(part)': expected key or key:asc|desc")
                }
                if pieces.count == 2, !["asc", "desc"].contains(pieces[1]) {
                    throw APIFault(.badRequest, "Invalid sort direction '\(pieces[1])'")
                }
                keys.append((key, pieces.count < 2 || pieces[1] != "asc"))
            }
        } else {
            let directions = (request.query("sort_dir") ?? "desc").split(separator: ",").map { $0 != "asc" }
            for (index, key) in (request.query("sort_key") ?? defaultKey).split(separator: ",").enumerated() {
                keys.append((String(key), index < directions.count ? directions[index] : true))
            }
        }
        return keys
    }
}
