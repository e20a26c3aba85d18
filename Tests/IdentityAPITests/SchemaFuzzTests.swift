import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
@testable import PetrelHTTP
import Testing

/// Bodies generated from each write route's own declared schema, for every declared route of
/// the in-process APIs (Keystone, Nova without servers, Neutron, Cinder): mostly conforming
/// (required members, a random choice of the others, values its types, choices, formats,
/// patterns and bounds allow), some with one change (`FuzzTests.mutate`), some random. Path
/// parameters name resources made for the purpose where the route is theirs, an unknown id
/// elsewhere. No answer may be a 5xx, every refusal must be in its API's error shape, and a
/// refused request must leave what it aimed at (the resource, or the collection a create adds
/// to) as it was. Seeded, so a failure replays.
@Suite struct SchemaFuzzTests {
    typealias Seeded = FuzzTests.Seeded

    static func uuid(_ random: inout Seeded) -> String {
        let hex = (0..<32).map { _ in String(Int.random(in: 0..<16, using: &random), radix: 16) }.joined()
        let parts = [hex.prefix(8), hex.dropFirst(8).prefix(4), "4" + hex.dropFirst(13).prefix(3), "8" + hex.dropFirst(17).prefix(3), hex.suffix(12)]
        return parts.joined(separator: "-")
    }

    /// Strings a schema's pattern, format or own check may want; the first it takes is used.
    static let samples = ["fz", "abc", "fz-1", "198.18.0.1", "198.18.0.0/24", "2001:db8::1", "public", "ingress", "IPv4", "tcp", "rw",
                          "available", "True", "1", "64", "x y", "aGVsbG8=", "/v2/x", "GET", "2026-12-05T00:00:00Z", "k", "a:b", ""]

    static func string(_ schema: Schema, _ random: inout Seeded) -> String {
        var candidates = samples.shuffled(using: &random)
        switch schema.format {
        case .uuid?: candidates.insert(uuid(&random), at: 0)
        case .ipv4?: candidates.insert("198.18.\(Int.random(in: 0...255, using: &random)).\(Int.random(in: 1...254, using: &random))", at: 0)
        case .ipv6?: candidates.insert("2001:db8::\(Int.random(in: 1...9999, using: &random))", at: 0)
        case .cidr?: candidates.insert("198.18.\(Int.random(in: 0...255, using: &random)).0/24", at: 0)
        case .base64?: candidates.insert("Zno=", at: 0)
        case nil: candidates.insert(uuid(&random), at: Int.random(in: 0...candidates.count, using: &random))
        }
        return candidates.first { schema.violation(.string($0)) == nil } ?? candidates[0]
    }

    /// A value of `schema`, conforming as far as the sampler can make it.
    static func generate(_ schema: Schema, _ random: inout Seeded, depth: Int = 0) -> JSON {
        if !schema.oneOf.isEmpty { return generate(schema.oneOf.randomElement(using: &random)!, &random, depth: depth) }
        if let choices = schema.choices, !choices.isEmpty { return choices.randomElement(using: &random)! }
        let kind = schema.types.randomElement(using: &random) ?? (schema.properties.isEmpty ? nil : .object)
        switch kind {
        case nil:
            return depth > 2 ? .string("fz") : FuzzTests.edge(&random)
        case .object?:
            var object: [String: JSON] = [:]
            for (name, property) in schema.properties where schema.required.contains(name) || Int.random(in: 0..<3, using: &random) == 0 {
                object[name] = generate(property, &random, depth: depth + 1)
            }
            if let keyRule = schema.keyRule, let key = ["k", "key_1", "fz"].first(where: keyRule.rule.test) {
                object[key] = generate(keyRule.schema, &random, depth: depth + 1)
            }
            return .object(object)
        case .array?:
            let count = min(max(schema.minItems ?? 0, Int.random(in: 0...2, using: &random)), schema.maxItems ?? 2)
            return .array((0..<count).map { _ in schema.items.map { generate($0, &random, depth: depth + 1) } ?? .string("fz") })
        case .string?:
            return .string(string(schema, &random))
        case .integer?, .number?:
            let low = schema.minimum ?? 0
            let high = min(schema.maximum ?? low + 16, low + 16)
            return .number(Double(Int.random(in: Int(low)...Int(max(low, high)), using: &random)))
        case .boolean?:
            return .bool(Bool.random(using: &random))
        case .null?:
            return .null
        }
    }

    /// The resource a path parameter names, by the segment before it.
    static let owners: [String: String] = [
        "os-aggregates": "aggregate", "flavors": "flavor", "projects": "project", "users": "user", "groups": "group", "roles": "role",
        "regions": "region", "networks": "network", "subnets": "subnet", "ports": "port", "security-groups": "group_sg",
        "routers": "router", "types": "type", "os-quota-sets": "project", "quotas": "project", "volumes": "volume",
    ]

    static func fill(_ template: String, made: FuzzTests.Made, project: String, random: inout Seeded) -> String {
        var segments = template.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for index in segments.indices where segments[index].hasPrefix("{") {
            let before = index > 0 ? segments[index - 1] : ""
            if before == "v3" && segments[1] == "volume" {
                segments[index] = project  // Cinder's project in the path: the caller's
            } else if let owner = owners[before], let id = made.ids[owner] {
                segments[index] = id
            } else if ["os-extra_specs", "extra_specs", "metadata", "tags"].contains(before) {
                segments[index] = "k"
            } else {
                segments[index] = uuid(&random)
            }
        }
        return segments.joined(separator: "/")
    }

    /// What a refused request to `path` must leave as it was.
    static func probe(_ method: HTTPRequest.Method, _ path: String) -> String? {
        if path.hasSuffix("/v3/auth/tokens") { return nil }
        let verbs: Set<String> = ["action", "tags", "add_router_interface", "remove_router_interface", "add_extraroutes", "remove_extraroutes",
                                  "add_addresses", "remove_addresses", "password"]
        if let last = path.split(separator: "/").last, verbs.contains(String(last)) {
            return String(path.dropLast(last.count + 1))
        }
        return path
    }

    static func style(_ path: String) -> FaultStyle {
        if path.hasPrefix("/v3") { return .keystone }
        if path.hasPrefix("/networking") { return .neutron }
        if path.hasPrefix("/image") { return .glance }
        return .nova
    }

    @Test func bodiesGeneratedFromEachRoutesSchema() async throws {
        try await HostAPITests().withAPIsAndSchemas { client, token, _, schemas in
            let made = try await FuzzTests.make(client, token)
            let subject = try await client.execute(uri: "/v3/auth/tokens", method: .get, headers: [
                HTTPField.Name("X-Auth-Token")!: token, HTTPField.Name("X-Subject-Token")!: token,
            ]) { JSON.parse(Array($0.body.readableBytesView)) }
            let project = try #require(subject?["token"]?["project"]?["id"]?.stringValue)
            var random = Seeded(state: 0x5C4E_3A00_2026_1205)
            // Each route's schema for a request with these headers (a microversion picks its own).
            let routes: [(HTTPRequest.Method, String, @Sendable (HTTPFields) -> Schema)] = schemas.declared.sorted().compactMap { key in
                let parts = key.split(separator: " ", maxSplits: 1).map(String.init)
                let method = HTTPRequest.Method(parts[0])!
                guard case .json(_, let schema)? = schemas.body(method, parts[1]) else { return nil }
                return (method, parts[1], { headers in
                    schema(Request(head: HTTPRequest(method: method, scheme: "http", authority: "controller", path: parts[1], headerFields: headers),
                                   body: RequestBody(buffer: ByteBuffer())))
                })
            }
            // Half the rounds at each API's oldest microversion, half at its latest.
            let latest: HTTPFields = [HTTPField.Name("OpenStack-API-Version")!: "compute latest, volume latest"]
            #expect(routes.count > 100, "\(routes.count) routes declare a JSON body")
            var tally = FuzzTests.Tally()
            var acceptedRoutes: Set<String> = []
            for round in 0..<12 {
                let headers = round % 2 == 1 ? latest : HTTPFields()
                for (method, template, schema) in routes {
                    let path = Self.fill(template, made: made, project: project, random: &random)
                    var body = Self.generate(schema(headers), &random)
                    if round % 4 == 3 { body = FuzzTests.mutate(body, &random) }
                    if round % 6 == 5 { body = FuzzTests.random(&random) }
                    if try await tally.send(client, token, method, path, body, style: Self.style(path), probe: Self.probe(method, path),
                                            headers: headers) {
                        acceptedRoutes.insert("\(method) \(template)")
                    }
                }
            }
            print("schema fuzz: \(tally.sent) requests to \(routes.count) routes, \(tally.refused) refused (\(tally.checked) checked for no change), \(tally.accepted) accepted on \(acceptedRoutes.count) routes, \(tally.failures.count) failures")
            #expect(tally.failures.isEmpty, "\(tally.failures.prefix(10).joined(separator: "\n"))")
            // The generator makes bodies the APIs take, not only ones they refuse.
            #expect(acceptedRoutes.count > 30, "accepted on \(acceptedRoutes.count) routes only")
        }
    }
}
