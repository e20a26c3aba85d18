import PetrelHTTP
import Testing

/// The request validator: jsonschema's checks and messages, and each API's wording of them.
@Suite struct SchemaTests {
    let server = Schema.object([
        ("name", .string(minLength: 1, maxLength: 5)),
        ("count", .integer(minimum: 1, maximum: 3)),
        ("kind", .choice(["a", "b"], types: [.string])),
        ("tags", .array(.string(pattern: Schema.Rule(regex: "^[a-z]*$")), maxItems: 2, unique: true)),
        ("address", .oneOf(.string(format: .ipv4), .null)),
        ("meta", .map(keys: Schema.Rule(regex: "^[a-z]+$"), values: .string(maxLength: 3))),
    ], required: ["name"])

    func message(_ schema: Schema, _ body: JSON) -> String? { schema.violation(body)?.message }

    @Test func jsonschemasChecksInItsWords() {
        #expect(message(server, ["name": "abc"]) == nil)
        #expect(message(server, ["name": "abc", "count": 2, "kind": "a", "tags": ["x", "y"], "address": "192.0.2.1",
                                 "meta": ["k": "v"]]) == nil)
        #expect(message(server, [:]) == "'name' is a required property")
        #expect(message(server, ["name": 1]) == "1 is not of type 'string'")
        #expect(message(server, ["name": ""]) == "'' should be non-empty")
        #expect(message(server, ["name": "abcdef"]) == "'abcdef' is too long")
        // Lengths count code points, as Python's len() does: "é" written as e and a combining
        // accent is two of them.
        #expect(message(server, ["name": "abcd\u{301}"]) == nil)
        #expect(message(server, ["name": "abcde\u{301}"]) == "'abcde\u{301}' is too long")
        #expect(message(server, ["name": "a", "colour": 1]) == "Additional properties are not allowed ('colour' was unexpected)")
        #expect(message(server, ["name": "a", "x": 1, "y": 2]) == "Additional properties are not allowed ('x', 'y' were unexpected)")
        #expect(message(server, ["name": "a", "count": 0]) == "0 is less than the minimum of 1")
        #expect(message(server, ["name": "a", "count": 4]) == "4 is greater than the maximum of 3")
        #expect(message(server, ["name": "a", "count": .number(1.5)]) == "1.5 is not of type 'integer'")
        #expect(message(server, ["name": "a", "count": true]) == "True is not of type 'integer'")
        #expect(message(server, ["name": "a", "kind": "c"]) == "'c' is not one of ['a', 'b']")
        #expect(message(server, ["name": "a", "tags": ["A"]]) == "'A' does not match '^[a-z]*$'")
        #expect(message(server, ["name": "a", "tags": ["x", "x"]]) == "['x', 'x'] has non-unique elements")
        #expect(message(server, ["name": "a", "tags": ["x", "y", "z"]]) == "['x', 'y', 'z'] is too long")
        #expect(message(server, ["name": "a", "address": "300.1.1.1"]) == "'300.1.1.1' is not a 'ipv4'")
        #expect(message(server, ["name": "a", "meta": ["k": "long"]]) == "'long' is too long")
        #expect(message(server, ["name": "a", "meta": ["K": "v"]]) == "Additional properties are not allowed ('K' was unexpected)")
        let violation = server.violation(["name": "a", "tags": ["x", 7]])
        #expect(violation?.path == ["tags", "1"] && violation?.value == 7)
    }

    @Test func eachAPIWordsTheRefusalItsWay() throws {
        let violation = try #require(server.violation(["name": "a\nb\u{0}", "count": "2"]))
        #expect(violation.fault(.nova).message == "Invalid input for field/attribute count. Value: 2. '2' is not of type 'integer'")
        #expect(violation.fault(.keystone).message == "Invalid input for field 'count': '2' is not of type 'integer'")
        #expect(violation.fault(.neutron).message == "Invalid input for count. Reason: '2' is not of type 'integer'.")
        #expect(violation.fault(.neutron).type == "HTTPBadRequest")
        let top = try #require(server.violation(["name": "a", "colour": 1]))
        #expect(top.fault(.nova).message == "Additional properties are not allowed ('colour' was unexpected)")
        // Python's repr of strings: quotes, escapes.
        #expect(JSON.string("it's").pythonRepr == "\"it's\"")
        #expect(JSON.string("a\nb\u{0}").pythonRepr == "'a\\nb\\x00'")
        #expect(JSON.object(["b": [true, nil], "a": .number(1.5)]).pythonRepr == "{'a': 1.5, 'b': [True, None]}")
    }

    @Test func formats() {
        let uuid = Schema.string(format: .uuid), v6 = Schema.string(format: .ipv6), cidr = Schema.string(format: .cidr)
        #expect(uuid.violation("8d3f5c3e-8a3b-4a7e-9c55-5d2b0f5e7a10") == nil && uuid.violation("8d3f5c3e8a3b4a7e9c555d2b0f5e7a10") == nil)
        #expect(uuid.violation("not-a-uuid") != nil)
        #expect(v6.violation("2001:db8::1") == nil && v6.violation("192.0.2.1") != nil)
        #expect(cidr.violation("198.18.0.0/15") == nil && cidr.violation("2001:db8::/64") == nil && cidr.violation("198.18.0.0/33") != nil)
        #expect(Schema.string(format: .ipv4).violation("01.2.3.4") != nil, "leading zeros are refused, as Python's ipaddress does")
    }
}
