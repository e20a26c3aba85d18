import Foundation
import HTTPTypes
import HummingbirdTesting
import PetrelHTTP
import Testing

/// Generated bodies against every write route the in-process APIs serve (Keystone, Nova without
/// servers, Neutron, Cinder): mutations of a valid body (a field dropped, retyped, set to an
/// edge value, an unknown field added) and wholly random JSON. None may get a 5xx, and every
/// refusal must be in its API's error shape. Seeded, so a failure replays; bounded to a few
/// thousand requests (seconds in-process).
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
        }
    }

    @Test func generatedBodiesNeverGetA5xxAndAlwaysTheAPIsErrorShape() async throws {
        try await HostAPITests().withAPIs { client, token, _ in
            var random = Seeded(state: 0x5EED_2026_1204)
            var sent = 0, refused = 0, accepted = 0
            var failures: [String] = []
            for round in 0..<6000 {
                let (method, path, valid, style) = Self.routes[round % Self.routes.count]
                let body: JSON = round % 5 == 0 ? Self.random(&random) : Self.mutate(valid, &random)
                let text = String(decoding: body.encoded(), as: UTF8.self)
                let answer = try await HostAPITests().get(client, path, token: path == "/v3/auth/tokens" ? nil : token, method: method, body: text)
                sent += 1
                if answer.0.code >= 500 {
                    failures.append("\(answer.0.code) \(method) \(path) \(text)")
                } else if answer.0.code >= 400 {
                    refused += 1
                    if !shapeIsRight(style, answer.0, answer.2) { failures.append("shape \(answer.0.code) \(path) \(text) → \(String(describing: answer.2))") }
                } else {
                    accepted += 1
                }
            }
            print("fuzz: \(sent) requests, \(refused) refused, \(accepted) accepted, \(failures.count) failures")
            #expect(failures.isEmpty, "\(failures.prefix(10).joined(separator: "\n"))")
        }
    }
}
