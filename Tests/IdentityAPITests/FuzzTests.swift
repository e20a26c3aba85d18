import Foundation
import HTTPTypes
import HummingbirdTesting
import PetrelHTTP
import Testing

/// Generated bodies against the write routes of the in-process APIs (Keystone, Nova without
/// servers, Neutron, Cinder): their creates, and the updates, actions and sub-resources of
/// resources made for the purpose (an aggregate, a flavor, a project, a user, a network, …).
/// Each body is a mutation of a valid one (a member dropped, retyped, set to an edge value, an
/// unknown one added) or wholly random JSON. None may get a 5xx, every refusal must be in its
/// API's error shape, and a refused request must leave what it aimed at as it was (the
/// resource, or the collection a create would have added to, read before and after). Seeded,
/// so a failure replays; bounded to a few thousand requests.
@Suite struct FuzzTests {
    /// A small deterministic generator (SplitMix64).
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let edgeStrings: [String] = ["", " ", " x", "x ", "\u{0}", "a\nb", String(repeating: "x", count: 300), "../../etc", "'; DROP TABLE x;--",
                                        "日本語", "\u{202E}rtl", "0", "-1", "true", "null", "{}", "[]", "198.18.0.1", "198.18.0.0/15", "::1",
                                        "00000000-0000-0000-0000-000000000000", "%s%n", "a/b", "a,b"]

    static func edge(_ random: inout Seeded) -> JSON {
        switch Int.random(in: 0..<10, using: &random) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &random))
        case 2: return .number([0, -1, 1, 2_147_483_648, 1e300, -1e300, 0.5, 65536, 4095].randomElement(using: &random)!)
        case 3: return .array([])
        case 4: return .object([:])
        case 5: return .array([.string(edgeStrings.randomElement(using: &random)!)])
        case 6: return .object(["x": .string(edgeStrings.randomElement(using: &random)!)])
        default: return .string(edgeStrings.randomElement(using: &random)!)
        }
    }

    static func random(_ random: inout Seeded, depth: Int = 0) -> JSON {
        guard depth < 3, Bool.random(using: &random) else { return edge(&random) }
        if Bool.random(using: &random) {
            return .array((0..<Int.random(in: 0...3, using: &random)).map { _ in Self.random(&random, depth: depth + 1) })
        }
        var object: [String: JSON] = [:]
        for _ in 0..<Int.random(in: 0...3, using: &random) {
            object[edgeStrings.randomElement(using: &random)!] = Self.random(&random, depth: depth + 1)
        }
        return .object(object)
    }

    /// One change to a valid body: somewhere in it, a member dropped, replaced by an edge value,
    /// or an unknown one added.
    static func mutate(_ value: JSON, _ random: inout Seeded) -> JSON {
        guard case .object(var object) = value, !object.isEmpty else { return edge(&random) }
        let key = object.keys.sorted().randomElement(using: &random)!
        switch Int.random(in: 0..<4, using: &random) {
        case 0: object[key] = nil
        case 1: object["unexpected_\(Int.random(in: 0..<9, using: &random))"] = edge(&random)
        case 2: object[key] = edge(&random)
        default: object[key] = mutate(object[key]!, &random)
        }
        return .object(object)
    }

    /// (method, path, a valid body, the error style): the write routes and what they take.
    static let routes: [(HTTPRequest.Method, String, JSON, FaultStyle)] = [
        (.post, "/v3/projects", ["project": ["name": "p", "description": "d", "enabled": true]], .keystone),
        (.post, "/v3/users", ["user": ["name": "u", "password": "pw", "email": "e@x"]], .keystone),
        (.post, "/v3/groups", ["group": ["name": "g", "description": "d"]], .keystone),
        (.post, "/v3/domains", ["domain": ["name": "d", "enabled": true]], .keystone),
        (.post, "/v3/roles", ["role": ["name": "r"]], .keystone),
        (.post, "/v3/regions", ["region": ["id": "R", "description": "d"]], .keystone),
        (.post, "/v3/services", ["service": ["type": "t", "name": "n"]], .keystone),
        (.post, "/v3/auth/tokens", ["auth": ["identity": ["methods": ["password"], "password": ["user": ["name": "admin", "domain": ["id": "default"], "password": "admin-pw"]]],
                                             "scope": ["project": ["name": "admin", "domain": ["id": "default"]]]]], .keystone),
        (.post, "/compute/v2.1/os-aggregates", ["aggregate": ["name": "a", "availability_zone": "z"]], .nova),
        (.post, "/compute/v2.1/flavors", ["flavor": ["name": "f", "ram": 64, "vcpus": 1, "disk": 1, "id": "auto"]], .nova),
        (.post, "/compute/v2.1/os-keypairs", ["keypair": ["name": "k"]], .nova),
        (.post, "/networking/v2.0/networks", ["network": ["name": "n", "admin_state_up": true, "shared": false]], .neutron),
        (.post, "/networking/v2.0/security-groups", ["security_group": ["name": "s", "description": "d"]], .neutron),
        (.post, "/networking/v2.0/routers", ["router": ["name": "r", "admin_state_up": true]], .neutron),
        (.post, "/networking/v2.0/address-groups", ["address_group": ["name": "a", "addresses": ["198.18.0.0/24"]]], .neutron),
    ]

    func shapeIsRight(_ style: FaultStyle, _ status: HTTPResponse.Status, _ body: JSON?) -> Bool {
        guard let body else { return false }
        if status == .unauthorized { return body["error"]?["code"] != nil }
        switch style {
        case .keystone: return body["error"]?["code"] == .number(Double(status.code)) && body["error"]?["message"]?.stringValue != nil
        case .nova: return body.objectValue?.values.first?["code"] == .number(Double(status.code)) && body.objectValue?.values.first?["message"]?.stringValue != nil
        case .neutron: return body["NeutronError"]?["type"]?.stringValue != nil && body["NeutronError"]?["message"]?.stringValue != nil
        case .glance: return body["message"]?.stringValue != nil
        case .placement: return body["errors"]?.arrayValue?.first?["status"] == .number(Double(status.code))
            && body["errors"]?.arrayValue?.first?["detail"]?.stringValue != nil
        }
    }

    /// The resources the update, action and sub-resource routes act on, made through the APIs.
    struct Made {
        var ids: [String: String] = [:]

        func path(_ template: String) -> String {
            ids.reduce(template) { $0.replacingOccurrences(of: "{\($1.key)}", with: $1.value) }
        }

        /// A body with the made ids in place of their `{name}`s.
        func filled(_ body: JSON) -> JSON { JSON.parse(Array(path(String(decoding: body.encoded(), as: UTF8.self)).utf8)) ?? body }
    }

    static func make(_ client: any TestClientProtocol, _ token: String) async throws -> Made {
        var made = Made()
        func create(_ name: String, _ path: String, _ body: String, _ key: String) async throws {
            let (status, _, json) = try await HostAPITests().get(client, made.path(path), token: token, method: .post, body: made.path(body))
            var given = json?[key]?["id"]?.stringValue
            if case .number(let number)? = json?[key]?["id"] { given = String(Int(number)) }
            let id = try #require(given, "\(name): \(status) \(String(describing: json))")
            made.ids[name] = id
        }
        try await create("aggregate", "/compute/v2.1/os-aggregates", #"{"aggregate": {"name": "fz"}}"#, "aggregate")
        try await create("flavor", "/compute/v2.1/flavors", #"{"flavor": {"name": "fz", "ram": 64, "vcpus": 1, "disk": 1, "id": "fz-1"}}"#, "flavor")
        try await create("project", "/v3/projects", #"{"project": {"name": "fz"}}"#, "project")
        try await create("user", "/v3/users", #"{"user": {"name": "fz"}}"#, "user")
        try await create("group", "/v3/groups", #"{"group": {"name": "fz"}}"#, "group")
        try await create("role", "/v3/roles", #"{"role": {"name": "fz"}}"#, "role")
        try await create("region", "/v3/regions", #"{"region": {"id": "FZ"}}"#, "region")
        try await create("network", "/networking/v2.0/networks", #"{"network": {"name": "fz"}}"#, "network")
        try await create("subnet", "/networking/v2.0/subnets",
                         #"{"subnet": {"network_id": "{network}", "cidr": "198.18.7.0/24", "ip_version": 4}}"#, "subnet")
        try await create("port", "/networking/v2.0/ports", #"{"port": {"network_id": "{network}"}}"#, "port")
        try await create("group_sg", "/networking/v2.0/security-groups", #"{"security_group": {"name": "fz"}}"#, "security_group")
        try await create("router", "/networking/v2.0/routers", #"{"router": {"name": "fz"}}"#, "router")
        try await create("type", "/volume/v3/types", #"{"volume_type": {"name": "fz"}}"#, "volume_type")
        try await create("volume", "/volume/v3/volumes", #"{"volume": {"size": 1, "name": "fz"}}"#, "volume")
        return made
    }

    /// (method, path, a valid body, the error style, what a refused request must leave as it was):
    /// updates, actions and sub-resources of the resources `make` made.
    static let changes: [(HTTPRequest.Method, String, JSON, FaultStyle, String)] = [
        (.put, "/compute/v2.1/os-aggregates/{aggregate}", ["aggregate": ["name": "fz2"]], .nova, "/compute/v2.1/os-aggregates/{aggregate}"),
        (.post, "/compute/v2.1/os-aggregates/{aggregate}/action", ["set_metadata": ["metadata": ["k": "v"]]], .nova,
         "/compute/v2.1/os-aggregates/{aggregate}"),
        (.post, "/compute/v2.1/flavors/{flavor}/os-extra_specs", ["extra_specs": ["k": "v"]], .nova, "/compute/v2.1/flavors/{flavor}/os-extra_specs"),
        (.put, "/compute/v2.1/flavors/{flavor}/os-extra_specs/k", ["k": "w"], .nova, "/compute/v2.1/flavors/{flavor}/os-extra_specs"),
        (.post, "/compute/v2.1/flavors/{flavor}/action", ["addTenantAccess": ["tenant": "{project}"]], .nova,
         "/compute/v2.1/flavors/{flavor}/os-flavor-access"),
        (.put, "/compute/v2.1/os-quota-sets/{project}", ["quota_set": ["cores": 10]], .nova, "/compute/v2.1/os-quota-sets/{project}"),
        (.patch, "/v3/projects/{project}", ["project": ["description": "d"]], .keystone, "/v3/projects/{project}"),
        (.patch, "/v3/users/{user}", ["user": ["email": "fz@example.org"]], .keystone, "/v3/users/{user}"),
        (.patch, "/v3/groups/{group}", ["group": ["description": "d"]], .keystone, "/v3/groups/{group}"),
        (.patch, "/v3/roles/{role}", ["role": ["description": "d"]], .keystone, "/v3/roles/{role}"),
        (.patch, "/v3/regions/{region}", ["region": ["description": "d"]], .keystone, "/v3/regions/{region}"),
        (.put, "/networking/v2.0/networks/{network}", ["network": ["name": "fz2"]], .neutron, "/networking/v2.0/networks/{network}"),
        (.put, "/networking/v2.0/networks/{network}/tags", ["tags": ["a", "b"]], .neutron, "/networking/v2.0/networks/{network}"),
        (.put, "/networking/v2.0/subnets/{subnet}", ["subnet": ["name": "fz2"]], .neutron, "/networking/v2.0/subnets/{subnet}"),
        (.put, "/networking/v2.0/ports/{port}", ["port": ["name": "fz2"]], .neutron, "/networking/v2.0/ports/{port}"),
        (.put, "/networking/v2.0/security-groups/{group_sg}", ["security_group": ["name": "fz2"]], .neutron,
         "/networking/v2.0/security-groups/{group_sg}"),
        (.put, "/networking/v2.0/routers/{router}", ["router": ["name": "fz2"]], .neutron, "/networking/v2.0/routers/{router}"),
        (.put, "/networking/v2.0/quotas/{project}", ["quota": ["network": 10]], .neutron, "/networking/v2.0/quotas/{project}"),
        (.put, "/volume/v3/types/{type}", ["volume_type": ["description": "d"]], .nova, "/volume/v3/types/{type}"),
        (.post, "/volume/v3/types/{type}/extra_specs", ["extra_specs": ["k": "v"]], .nova, "/volume/v3/types/{type}/extra_specs"),
        (.put, "/volume/v3/os-quota-sets/{project}", ["quota_set": ["volumes": 10]], .nova, "/volume/v3/os-quota-sets/{project}"),
    ]

    /// What a refused create must leave as it was: the collection it would have added to.
    static let collections: [String: String] = [
        "/v3/projects": "/v3/projects", "/v3/users": "/v3/users", "/v3/groups": "/v3/groups", "/v3/domains": "/v3/domains",
        "/v3/roles": "/v3/roles", "/v3/regions": "/v3/regions", "/v3/services": "/v3/services",
        "/compute/v2.1/os-aggregates": "/compute/v2.1/os-aggregates", "/compute/v2.1/flavors": "/compute/v2.1/flavors/detail?is_public=None",
        "/compute/v2.1/os-keypairs": "/compute/v2.1/os-keypairs", "/networking/v2.0/networks": "/networking/v2.0/networks",
        "/networking/v2.0/security-groups": "/networking/v2.0/security-groups", "/networking/v2.0/routers": "/networking/v2.0/routers",
        "/networking/v2.0/address-groups": "/networking/v2.0/address-groups",
    ]

    /// Sends generated bodies and keeps count: a 5xx is a failure, a refusal must be in its
    /// API's error shape and leave `probe` (what the request aimed at) as it was.
    struct Tally {
        var sent = 0, refused = 0, accepted = 0, checked = 0
        var failures: [String] = []

        /// Sends one body; true when the API took it.
        mutating func send(_ client: any TestClientProtocol, _ token: String, _ method: HTTPRequest.Method, _ path: String, _ body: JSON,
                           style: FaultStyle, probe: String?, headers: HTTPFields = [:]) async throws -> Bool {
            let text = String(decoding: body.encoded(), as: UTF8.self)
            let before = try await probe.asyncMap { try await HostAPITests().get(client, $0, token: token).2 }
            let answer = try await HostAPITests().get(client, path, token: path == "/v3/auth/tokens" ? nil : token, method: method, body: text,
                                                      headers: headers)
            sent += 1
            if answer.0.code >= 500 {
                failures.append("\(answer.0.code) \(method) \(path) \(text) → \(String(describing: answer.2))")
            } else if answer.0.code >= 400 {
                refused += 1
                if !FuzzTests().shapeIsRight(style, answer.0, answer.2) {
                    failures.append("shape \(answer.0.code) \(method) \(path) \(text) → \(String(describing: answer.2))")
                }
                if let probe {
                    let after = try await HostAPITests().get(client, probe, token: token).2
                    checked += 1
                    if after != before { failures.append("changed by a refused \(method) \(path) \(text): \(probe)") }
                }
            } else {
                accepted += 1
                return true
            }
            return false
        }
    }

    @Test func generatedBodiesNeverGetA5xxAndAlwaysTheAPIsErrorShape() async throws {
        try await HostAPITests().withAPIs { client, token, _ in
            let made = try await Self.make(client, token)
            let routes: [(HTTPRequest.Method, String, JSON, FaultStyle, String?)] =
                Self.routes.map { ($0.0, $0.1, $0.2, $0.3, Self.collections[$0.1]) }
                + Self.changes.map { ($0.0, made.path($0.1), made.filled($0.2), $0.3, made.path($0.4)) }
            var random = Seeded(state: 0x5EED_2026_1204)
            var tally = Tally()
            for round in 0..<3000 {
                let (method, path, valid, style, probe) = routes[round % routes.count]
                let body: JSON = round % 5 == 0 ? Self.random(&random) : Self.mutate(valid, &random)
                _ = try await tally.send(client, token, method, path, body, style: style, probe: probe)
            }
            print("fuzz: \(tally.sent) requests to \(routes.count) routes, \(tally.refused) refused (\(tally.checked) checked for no change), \(tally.accepted) accepted, \(tally.failures.count) failures")
            let failures = tally.failures
            #expect(failures.isEmpty, "\(failures.prefix(10).joined(separator: "\n"))")
        }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
