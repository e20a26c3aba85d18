import Foundation

/// A request schema: the part of JSON Schema (draft 4) the OpenStack APIs write theirs in —
/// types, properties, required, additionalProperties, patternProperties (one key rule),
/// items, lengths, patterns, formats, enums, bounds and oneOf. Routes declare their
/// body's schema next to themselves; `validate` runs before the handler and reports the first
/// violation in the order jsonschema would (by keyword, properties in their declared order),
/// which `SchemaViolation.fault` words as the API that refused it.
public final class Schema: Sendable {
    public enum Kind: String, Sendable { case object, array, string, integer, number, boolean, null }

    /// Formats the APIs check (jsonschema's names).
    public enum Format: String, Sendable {
        case uuid, ipv4, ipv6, cidr, base64
    }

    let types: [Kind]
    let choices: [JSON]?
    let properties: [(String, Schema)]
    let required: [String]
    /// nil: any further property is allowed; `.some(nil)`: none; `.some(schema)`: checked by it.
    let additional: Schema??
    let keyRule: (rule: Rule, schema: Schema)?
    let items: Schema?
    let minItems: Int?, maxItems: Int?
    let uniqueItems: Bool
    let minLength: Int?, maxLength: Int?
    let pattern: Rule?
    let format: Format?
    let minimum: Double?, maximum: Double?
    let oneOf: [Schema]
    let minProperties: Int?, maxProperties: Int?
    /// A check beyond JSON Schema (a name's printable characters, …): a message, or nil when fine.
    let check: (@Sendable (JSON) -> String?)?
    /// A check whose refusal is the API's own, answered as it is (Neutron's "Unrecognized
    /// attribute(s)", Keystone's 403 on a moved project): run after the keywords above.
    let fault: (@Sendable (JSON) -> APIFault?)?

    public init(types: [Kind] = [], choices: [JSON]? = nil, properties: [(String, Schema)] = [], required: [String] = [],
                additional: Schema?? = nil, keyRule: (rule: Rule, schema: Schema)? = nil, items: Schema? = nil,
                minItems: Int? = nil, maxItems: Int? = nil, uniqueItems: Bool = false, minLength: Int? = nil, maxLength: Int? = nil,
                pattern: Rule? = nil, format: Format? = nil, minimum: Double? = nil, maximum: Double? = nil,
                oneOf: [Schema] = [], minProperties: Int? = nil, maxProperties: Int? = nil, check: (@Sendable (JSON) -> String?)? = nil,
                fault: (@Sendable (JSON) -> APIFault?)? = nil) {
        self.types = types; self.choices = choices; self.properties = properties; self.required = required
        self.additional = additional; self.keyRule = keyRule; self.items = items; self.minItems = minItems
        self.maxItems = maxItems; self.uniqueItems = uniqueItems; self.minLength = minLength; self.maxLength = maxLength
        self.pattern = pattern; self.format = format; self.minimum = minimum; self.maximum = maximum
        self.oneOf = oneOf; self.minProperties = minProperties; self.maxProperties = maxProperties; self.check = check; self.fault = fault
    }

    /// A string rule: its pattern as messages print it, and the test.
    public struct Rule: Sendable {
        public let text: String
        public let test: @Sendable (String) -> Bool

        public init(_ text: String, _ test: @escaping @Sendable (String) -> Bool) {
            self.text = text
            self.test = test
        }

        /// A regular expression (ICU syntax, which covers the APIs' patterns).
        public init(regex: String) {
            nonisolated(unsafe) let expression = try! NSRegularExpression(pattern: regex)
            self.init(regex) { text in
                expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
            }
        }
    }

    // MARK: building

    /// A closed object (no properties beyond `properties`, as the APIs' schemas mostly are).
    public static func object(_ properties: [(String, Schema)], required: [String] = [], additional: Bool = false,
                              minProperties: Int? = nil, maxProperties: Int? = nil) -> Schema {
        Schema(types: [.object], properties: properties, required: required, additional: additional ? nil : .some(nil),
               minProperties: minProperties, maxProperties: maxProperties)
    }

    /// An object whose keys follow `keys` and whose values follow `values` (Nova's metadata).
    public static func map(keys: Rule, values: Schema) -> Schema {
        Schema(types: [.object], additional: .some(nil), keyRule: (keys, values))
    }

    public static func string(minLength: Int? = nil, maxLength: Int? = nil, pattern: Rule? = nil, format: Format? = nil,
                              check: (@Sendable (JSON) -> String?)? = nil) -> Schema {
        Schema(types: [.string], minLength: minLength, maxLength: maxLength, pattern: pattern, format: format, check: check)
    }

    public static func integer(minimum: Double? = nil, maximum: Double? = nil) -> Schema {
        Schema(types: [.integer], minimum: minimum, maximum: maximum)
    }

    public static let boolean = Schema(types: [.boolean])
    public static let null = Schema(types: [.null])
    /// Anything at all (`{}`).
    public static let any = Schema()

    public static func array(_ items: Schema, minItems: Int? = nil, maxItems: Int? = nil, unique: Bool = false) -> Schema {
        Schema(types: [.array], items: items, minItems: minItems, maxItems: maxItems, uniqueItems: unique)
    }

    public static func oneOf(_ schemas: Schema...) -> Schema { Schema(oneOf: schemas) }

    /// One of these values (jsonschema's `enum`), of these types.
    public static func choice(_ values: [JSON], types: [Kind] = []) -> Schema { Schema(types: types, choices: values) }

    // MARK: validating

    /// The first violation of `value`, or nil when it conforms.
    public func violation(_ value: JSON, at path: [String] = []) -> SchemaViolation? {
        func fail(_ keyword: String, _ message: String) -> SchemaViolation {
            SchemaViolation(path: path, value: value, message: message, keyword: keyword)
        }
        if !types.isEmpty, !types.contains(where: { Self.matches(value, $0) }) {
            let names = types.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            return fail("type", "\(value.pythonRepr) is not of type \(names)")
        }
        if let choices, !choices.contains(where: { Self.same($0, value) }) {
            return fail("enum", "\(value.pythonRepr) is not one of [\(choices.map(\.pythonRepr).joined(separator: ", "))]")
        }
        switch value {
        case .object(let object):
            for (name, schema) in properties {
                if let item = object[name], let found = schema.violation(item, at: path + [name]) { return found }
            }
            for name in required where object[name] == nil {
                return fail("required", "'\(name)' is a required property")
            }
            if let minProperties, object.count < minProperties {
                return fail("minProperties", "\(value.pythonRepr) \(minProperties == 1 ? "should be non-empty" : "does not have enough properties")")
            }
            if let maxProperties, object.count > maxProperties {
                return fail("maxProperties", "\(value.pythonRepr) \(maxProperties == 0 ? "is expected to be empty" : "has too many properties")")
            }
            if let keyRule {
                for key in object.keys.sorted() where !properties.contains(where: { $0.0 == key }) && keyRule.rule.test(key) {
                    if let found = keyRule.schema.violation(object[key]!, at: path + [key]) { return found }
                }
            }
            if case .some(let extra) = additional {
                let unknown = object.keys.sorted().filter { key in
                    !properties.contains { $0.0 == key } && !(keyRule?.rule.test(key) ?? false)
                }
                if let extra {
                    for key in unknown { if let found = extra.violation(object[key]!, at: path + [key]) { return found } }
                } else if !unknown.isEmpty {
                    let listed = unknown.map { "'\($0)'" }.joined(separator: ", ")
                    return fail("additionalProperties",
                                "Additional properties are not allowed (\(listed) \(unknown.count == 1 ? "was" : "were") unexpected)")
                }
            }
        case .array(let list):
            if let items {
                for (index, item) in list.enumerated() {
                    if let found = items.violation(item, at: path + [String(index)]) { return found }
                }
            }
            if let minItems, list.count < minItems { return fail("minItems", "\(value.pythonRepr) \(Self.tooShort(minItems))") }
            if let maxItems, list.count > maxItems { return fail("maxItems", "\(value.pythonRepr) \(Self.tooLong(maxItems))") }
            if uniqueItems {
                for (index, item) in list.enumerated() where list[..<index].contains(where: { Self.same($0, item) }) {
                    return fail("uniqueItems", "\(value.pythonRepr) has non-unique elements")
                }
            }
        case .string(let text):
            if let minLength, text.unicodeScalars.count < minLength { return fail("minLength", "\(value.pythonRepr) \(Self.tooShort(minLength))") }
            if let maxLength, text.unicodeScalars.count > maxLength { return fail("maxLength", "\(value.pythonRepr) \(Self.tooLong(maxLength))") }
            if let pattern, !pattern.test(text) { return fail("pattern", "\(value.pythonRepr) does not match \(JSON.string(pattern.text).pythonRepr)") }
            if let format, !Self.conforms(text, to: format) { return fail("format", "\(value.pythonRepr) is not a '\(format.rawValue)'") }
        case .number(let number):
            if let minimum, number < minimum {
                return fail("minimum", "\(value.pythonRepr) is less than the minimum of \(JSON.number(minimum).pythonRepr)")
            }
            if let maximum, number > maximum {
                return fail("maximum", "\(value.pythonRepr) is greater than the maximum of \(JSON.number(maximum).pythonRepr)")
            }
        default:
            break
        }
        if !oneOf.isEmpty {
            let passing = oneOf.filter { $0.violation(value, at: path) == nil }.count
            if passing == 0 {
                // With one alternative of the value's own type, its reason is the useful one.
                let sameType = oneOf.filter { $0.types.isEmpty || $0.types.contains { Self.matches(value, $0) } }
                if sameType.count == 1, let found = sameType[0].violation(value, at: path) { return found }
                return fail("oneOf", "\(value.pythonRepr) is not valid under any of the given schemas")
            }
            if passing > 1 { return fail("oneOf", "\(value.pythonRepr) is valid under each of the given schemas") }
        }
        if let check, let message = check(value) { return fail("check", message) }
        if let fault, let refusal = fault(value) {
            return SchemaViolation(path: path, value: value, message: refusal.message, keyword: "fault", exact: refusal)
        }
        return nil
    }

    /// jsonschema's words (4.21 and later) for a string or list under its minimum length…
    static func tooShort(_ minimum: Int) -> String { minimum == 1 ? "should be non-empty" : "is too short" }
    /// … and over its maximum.
    static func tooLong(_ maximum: Int) -> String { maximum == 0 ? "is expected to be empty" : "is too long" }

    static func matches(_ value: JSON, _ kind: Kind) -> Bool {
        switch (kind, value) {
        case (.object, .object), (.array, .array), (.string, .string), (.boolean, .bool), (.null, .null), (.number, .number): return true
        case (.integer, .number(let number)): return number.rounded() == number && number.isFinite
        default: return false
        }
    }

    /// jsonschema's equality: `true` is not `1`.
    static func same(_ left: JSON, _ right: JSON) -> Bool {
        switch (left, right) {
        case (.bool(let a), .bool(let b)): return a == b
        case (.bool, _), (_, .bool): return false
        default: return left == right
        }
    }

    static func conforms(_ text: String, to format: Format) -> Bool {
        switch format {
        case .uuid:
            // Nova's checker: a UUID with or without dashes, any case.
            let hex = text.replacingOccurrences(of: "-", with: "")
            return UUID(uuidString: text) != nil || (hex.count == 32 && hex.allSatisfy(\.isHexDigit) && !text.hasPrefix("-"))
        case .ipv4: return IPv4Text.isValid(text)
        case .ipv6:
            var address = in6_addr()
            return text.contains(":") && inet_pton(AF_INET6, text, &address) == 1
        case .cidr:
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let length = Int(parts[1]) else { return false }
            if IPv4Text.isValid(String(parts[0])) { return (0...32).contains(length) }
            return conforms(String(parts[0]), to: .ipv6) && (0...128).contains(length)
        case .base64: return Data(base64Encoded: text) != nil
        }
    }
}

/// Dotted-quad IPv4 text, as Python's `ipaddress` takes it (no leading zeros, four parts).
enum IPv4Text {
    static func isValid(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber),
                  let number = Int(part), number <= 255 else { return false }
            return part == "0" || !part.hasPrefix("0")
        }
    }
}

/// What a body broke: where (property names and list indices from the top), the value found
/// there, and jsonschema's message.
public struct SchemaViolation: Error, Sendable, CustomStringConvertible {
    public let path: [String]
    public let value: JSON
    public let message: String
    public let keyword: String
    /// The API's own refusal (a `fault` check), answered as it is in every style.
    public let exact: APIFault?

    public init(path: [String], value: JSON, message: String, keyword: String, exact: APIFault? = nil) {
        self.path = path; self.value = value; self.message = message; self.keyword = keyword; self.exact = exact
    }

    public var description: String { fault(.keystone).message }

    /// The 400 the API of `style` answers with, in its words.
    public func fault(_ style: FaultStyle) -> APIFault {
        if let exact { return exact }
        switch style {
        case .nova:
            // Nova (and Cinder): "Invalid input for field/attribute <last path element>. Value: <value>. <message>";
            // its own checks (a name's characters) speak for themselves.
            guard let last = path.last, keyword != "check" else { return APIFault(.badRequest, message) }
            return APIFault(.badRequest, "Invalid input for field/attribute \(last). Value: \(value.pythonStr). \(message)")
        case .keystone:
            guard !path.isEmpty else { return APIFault(.badRequest, message) }
            return APIFault(.badRequest, "Invalid input for field '\(path.joined(separator: "/"))': \(message)")
        case .neutron:
            let attribute = path.last { Int($0) == nil } ?? "body"
            return APIFault(.badRequest, "Invalid input for \(attribute). Reason: \(message).", type: "HTTPBadRequest")
        case .glance:
            guard !path.isEmpty else { return APIFault(.badRequest, "Provided object does not match schema: \(message)") }
            return APIFault(.badRequest, "Provided object does not match schema '\(path.first!)': \(message)")
        case .placement:
            return APIFault(.badRequest, "JSON does not validate: \(message)")
        }
    }
}

extension JSON {
    /// Python's `repr()` of the value json.loads makes of it: what jsonschema's messages quote.
    public var pythonRepr: String {
        switch self {
        case .null: return "None"
        case .bool(let value): return value ? "True" : "False"
        case .number(let value):
            if value.rounded() == value, abs(value) < 1e16 { return String(Int64(value)) }
            return String(value)
        case .string(let text):
            let quote: Character = text.contains("'") && !text.contains("\"") ? "\"" : "'"
            var out = String(quote)
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case _ where Character(scalar) == quote: out += "\\" + String(quote)
                case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                    out += String(format: "\\x%02x", scalar.value)
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + String(quote)
        case .array(let items): return "[" + items.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .object(let members):
            return "{" + members.keys.sorted().map { "\(JSON.string($0).pythonRepr): \(members[$0]!.pythonRepr)" }.joined(separator: ", ") + "}"
        case .raw(let bytes): return (JSON.parse(bytes) ?? .null).pythonRepr
        }
    }

    /// Python's `str()`: a string as it is, anything else as its repr.
    public var pythonStr: String {
        if case .string(let text) = self { return text }
        return pythonRepr
    }
}
