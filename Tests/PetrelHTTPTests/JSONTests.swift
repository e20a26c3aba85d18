import Foundation
import PetrelHTTP
import Testing

@Suite struct JSONTests {
    @Test func encodesValidJSONThatFoundationReadsBack() throws {
        let value: JSON = [
            "quote\"and\\slash/": "tab\tnewline\ncontrol\u{01}é漢字🙂",
            "numbers": [0, -7, .number(1.5), .number(1e20), .number(-0.25)],
            "flags": [true, false, nil],
            "nested": ["empty": [:], "list": []],
        ]
        let bytes = value.encoded()
        let decoded = try #require(JSON.parse(bytes))
        #expect(decoded == value)
        let foundation = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(foundation["quote\"and\\slash/"] as? String == "tab\tnewline\ncontrol\u{01}é漢字🙂")
        #expect(String(decoding: JSON.object(["b": 1, "a": 2]).encoded(), as: UTF8.self) == #"{"a":2,"b":1}"#)
        #expect(String(decoding: JSON.number(.nan).encoded(), as: UTF8.self) == "null")
        // A pre-encoded part is written as is.
        let part = JSON.array([1, "x"]).encoded()
        #expect(String(decoding: JSON.object(["a": .raw(part)]).encoded(), as: UTF8.self) == #"{"a":[1,"x"]}"#)
    }

    @Test func parseRefusesWhatIsNotJSON() {
        #expect(JSON.parse(Array("{\"a\": ".utf8)) == nil)
        #expect(JSON.parse(Array("".utf8)) == nil)
        #expect(JSON.parse(Array("[1, 2]".utf8)) == [1, 2])
        for text in ["[1, 2,]", "{\"a\": 1,}", "[1] // c", "NaN", "[Infinity]", "01", "1.", ".5", "-", "+1", "1e", "'a'",
                     "{a: 1}", "\"tab\tinside\"", "\"\\ud800\"", "\"\\udc00\\ud800\"", "\"\\x41\"", "[1 2]", "{\"a\" 1}", "tru", "[]]"] {
            #expect(JSON.parse(Array(text.utf8)) == nil, "\(text)")
        }
        #expect(JSON.parse([0x22, 0xC3, 0x28, 0x22]) == nil, "bytes that are not UTF-8")
        let nested = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        #expect(JSON.parse(Array(nested.utf8)) == nil, "nested past 512 levels")
        let deepest = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(JSON.parse(Array(deepest.utf8)) != nil)
    }

    /// What Python's json.loads makes of a body is what Petrel reads: the last of a repeated
    /// key, escapes and surrogate pairs decoded, numbers as written.
    @Test func parseReadsAsPythonDoes() {
        #expect(JSON.parse(Array(#"{"a": 1, "b": {"c": true}, "a": 2}"#.utf8)) == ["a": 2, "b": ["c": true]])
        #expect(JSON.parse(Array(#" "\u00e9\ud83d\ude42\n\/\"\\" "#.utf8)) == .string("é🙂\n/\"\\"))
        #expect(JSON.parse(Array("\"é漢\"".utf8)) == .string("é漢"))
        #expect(JSON.parse(Array("[-0, 0.5, -1.25e2, 1E+3, 12]".utf8)) == [.number(0), .number(0.5), .number(-125), .number(1000), 12])
        #expect(JSON.parse(Array(" null ".utf8)) == .null)
        #expect(JSON.parse(Array("{}".utf8)) == [:])
    }
}
