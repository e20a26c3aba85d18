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
    }
}
