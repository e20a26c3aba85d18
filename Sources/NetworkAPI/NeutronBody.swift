import Foundation
import Networking
import PetrelCore
import PetrelHTTP

/// Neutron's refusals of a request body, worded as neutron-lib and `prepare_request_body`
/// (neutron/api/v2/base.py) word them.
enum NeutronFault {
    /// A validator's refusal (`validate`): "Invalid input for <attribute>. Reason: <reason>.", webob's 400.
    static func invalid(_ attribute: String, _ reason: String) -> APIFault {
        APIFault(.badRequest, "Invalid input for \(attribute). Reason: \(reason).", type: "HTTPBadRequest")
    }

    /// A converter's refusal (`convert_to`): neutron-lib's InvalidInput.
    static func invalidInput(_ message: String) -> APIFault {
        APIFault(.badRequest, "Invalid input for operation: \(message).", type: "InvalidInput")
    }

    /// webob's 400 with Neutron's message as it is.
    static func badRequest(_ message: String) -> APIFault { APIFault(.badRequest, message, type: "HTTPBadRequest") }

    static let projectMismatch = badRequest("'project_id' and 'tenant_id' do not match")
}

/// How Neutron reads a value: Python's `str()` of it in messages, oslo's booleans, `int()`,
/// and the validators of neutron-lib the bodies use.
enum NeutronValue {
    /// The value as Neutron's messages quote it (`'%s' % data`).
    static func text(_ value: JSON) -> String { value.pythonStr }

    /// oslo's `bool_from_string(strict=True)`: a boolean, or one of its strings (or 0 and 1).
    static func boolean(_ value: JSON) -> Bool? {
        switch value {
        case .bool(let flag): return flag
        case .string(let text): return NeutronListing.booleanValue(text.trimmingCharacters(in: .whitespaces))
        case .number(let number) where number == 0 || number == 1: return number == 1
        default: return nil
        }
    }

    /// Python's `int()` of a JSON number or string (a fraction or a boolean is refused).
    static func integer(_ value: JSON) -> Int? {
        switch value {
        case .number(let number) where number.rounded() == number && abs(number) < 1e15: return Int(number)
        case .string(let text): return Int(text.trimmingCharacters(in: .whitespaces))
        default: return nil
        }
    }

    /// oslo's `is_uuid_like`: 32 hex digits, with any dashes, braces or `urn:uuid:` prefix.
    static func isUUID(_ value: JSON) -> Bool {
        guard case .string(let text) = value else { return false }
        let hex = text.replacingOccurrences(of: "urn:", with: "").replacingOccurrences(of: "uuid:", with: "")
            .trimmingCharacters(in: CharacterSet(charactersIn: "{}")).replacingOccurrences(of: "-", with: "")
        return hex.count == 32 && hex.allSatisfy(\.isHexDigit)
    }

    static func uuid(_ value: JSON) -> String? {
        isUUID(value) ? nil : "'\(text(value))' is not a valid UUID"
    }

    static func string(_ value: JSON, maxLength: Int) -> String? {
        guard case .string(let string) = value else { return "'\(text(value))' is not a valid string" }
        guard string.count <= maxLength else { return "'\(string)' exceeds maximum length of \(maxLength)" }
        return nil
    }

    /// `validate_name_string`: a string of printable characters (spaces too, but not at either
    /// end), all in the Basic Multilingual Plane as neutron-lib's pattern spans it.
    static func name(_ value: JSON, maxLength: Int) -> String? {
        if let reason = string(value, maxLength: maxLength) { return reason }
        let scalars = value.stringValue?.unicodeScalars ?? "".unicodeScalars
        func printable(_ scalar: Unicode.Scalar) -> Bool {
            switch scalar.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator: return false
            default: return scalar.value < 0xFFFF
            }
        }
        func space(_ scalar: Unicode.Scalar?) -> Bool { scalar?.properties.generalCategory == .spaceSeparator }
        guard scalars.allSatisfy(printable), !space(scalars.first), !space(scalars.last) else {
            return "'\(text(value))' is not a valid string"
        }
        return nil
    }

    /// `validate_ip_address`: an address without spaces, IPv4 in its four dotted parts.
    static func ipAddress(_ value: JSON) -> String? {
        guard case .string(let string) = value, !string.contains(where: \.isWhitespace), let address = IPAddress(string),
              string.contains(":") || string.filter({ $0 == "." }).count == 3 else {
            return "'\(text(value))' is not a valid IP address"
        }
        if address.version == 4, address.description != string {
            return "'\(string)' is not an accepted IP address, '\(address)' is recommended"
        }
        return nil
    }

    /// `validate_subnet`: an address and a prefix length (host bits allowed), IPv4 written canonically.
    static func subnet(_ value: JSON) -> String? {
        guard case .string(let string) = value, !string.contains(where: \.isWhitespace), string.contains("/"),
              let network = IPNetwork(string, strict: false), let address = IPAddress(string.prefix { $0 != "/" }),
              network.version == 6 || "\(address)/\(network.prefixLength)" == string else {
            return "'\(text(value))' is not a valid IP subnet"
        }
        return nil
    }

    /// `validate_route_cidr`: a network without host bits, not a loopback one.
    static func routeCIDR(_ value: JSON) -> String? {
        guard case .string(let string) = value, !string.contains(where: \.isWhitespace), let network = IPNetwork(string, strict: true),
              network.version == 6 || network.description == string else {
            return "'\(text(value))' is not a valid CIDR"
        }
        let loopback = network.version == 4 ? IPNetwork("127.0.0.0/8")!.contains(network.address) : network.address == IPAddress("::1")!
        return loopback ? "'\(string)' is not a routable CIDR" : nil
    }

    /// `_verify_dict_keys`: a dictionary with exactly (or, not strict, at least) these keys.
    static func keys(_ expected: [String], _ value: JSON, strict: Bool = true) -> String? {
        let list = "[" + expected.map { "'\($0)'" }.joined(separator: ", ") + "]"
        guard let object = value.objectValue else {
            return "Invalid input. '\(text(value))' must be a dictionary with keys: \(list)"
        }
        let provided = Set(object.keys)
        guard strict ? provided == Set(expected) : Set(expected).isSubset(of: provided) else {
            func set(_ keys: [String]) -> String { keys.isEmpty ? "set()" : "{" + keys.map { "'\($0)'" }.joined(separator: ", ") + "}" }
            return "Validation of dictionary's keys failed. Expected keys: \(set(expected)) Provided keys: \(set(provided.sorted()))"
        }
        return nil
    }

    /// `_validate_list_of_items`' check of repeated items: "Duplicate items in the list: 'a, b'".
    static func duplicates(_ items: [JSON]) -> String? {
        var seen: [JSON] = [], repeated: [JSON] = []
        for item in items {
            if seen.contains(item) {
                if !repeated.contains(item) { repeated.append(item) }
            } else {
                seen.append(item)
            }
        }
        return repeated.isEmpty ? nil : "Duplicate items in the list: '\(repeated.map(text).joined(separator: ", "))'"
    }
}

/// What Neutron makes of one attribute's value: its converter (`convert_to`, refused as an
/// InvalidInput) and its validator (`validate`, refused as "Invalid input for <attribute>").
struct NeutronType: Sendable {
    /// Why `value` is refused for `attribute`, as Neutron answers it; nil when it passes.
    let refusal: @Sendable (_ attribute: String, _ value: JSON) -> APIFault?

    init(_ refusal: @escaping @Sendable (_ attribute: String, _ value: JSON) -> APIFault?) {
        self.refusal = refusal
    }

    /// A validator: its reason is worded "Invalid input for <attribute>. Reason: <reason>.".
    static func validated(_ reason: @escaping @Sendable (JSON) -> String?) -> NeutronType {
        NeutronType { attribute, value in reason(value).map { NeutronFault.invalid(attribute, $0) } }
    }

    /// A converter: its reason is an InvalidInput.
    static func converted(_ reason: @escaping @Sendable (JSON) -> String?) -> NeutronType {
        NeutronType { _, value in reason(value).map(NeutronFault.invalidInput) }
    }

    /// This check, then `next` on a value this one let through.
    func then(_ next: NeutronType) -> NeutronType {
        NeutronType { attribute, value in refusal(attribute, value) ?? next.refusal(attribute, value) }
    }

    /// This check, or null (`_or_none`).
    var orNull: NeutronType {
        NeutronType { attribute, value in value.isNull ? nil : refusal(attribute, value) }
    }

    static let any = NeutronType { _, _ in nil }

    /// `type:string` (and `name_string`) with its maximum length.
    static func string(maxLength: Int = 255) -> NeutronType {
        validated { NeutronValue.string($0, maxLength: maxLength) }
    }

    /// `type:name_string` (the names of networks, subnets, ports, routers and address groups).
    static let name = validated { NeutronValue.name($0, maxLength: 255) }

    /// `convert_to_boolean`.
    static let boolean = converted { value in
        NeutronValue.boolean(value) == nil ? "'\(NeutronValue.text(value))' cannot be converted to boolean" : nil
    }

    /// `convert_to_int`.
    static let integer = converted { value in
        NeutronValue.integer(value) == nil ? "'\(NeutronValue.text(value))' is not an integer" : nil
    }

    /// `convert_to_int` and `type:range`.
    static func integer(in range: ClosedRange<Int>) -> NeutronType {
        integer.then(validated { value in
            let number = NeutronValue.integer(value) ?? 0
            if number < range.lowerBound { return "'\(number)' is too small - must be at least '\(range.lowerBound)'" }
            if number > range.upperBound { return "'\(number)' is too large - must be no larger than '\(range.upperBound)'" }
            return nil
        })
    }

    /// `convert_to_int` and `type:values` (whose message names no values: "5 is not in valid_values").
    static func integer(oneOf values: [Int]) -> NeutronType {
        integer.then(validated { value in
            let number = NeutronValue.integer(value) ?? 0
            return values.contains(number) ? nil : "\(number) is not in valid_values"
        })
    }

    /// A list (null: not given), each item checked by `item`.
    static func list(of item: @escaping @Sendable (JSON) -> String? = { _ in nil }, unique: Bool = false) -> NeutronType {
        validated { value in
            if value.isNull { return nil }
            guard let items = value.arrayValue else { return "'\(NeutronValue.text(value))' is not a list" }
            if unique, let repeated = NeutronValue.duplicates(items) { return repeated }
            return items.lazy.compactMap(item).first
        }
    }

    /// A list of strings (null: not given).
    static let strings = list(of: { NeutronValue.string($0, maxLength: .max) })

    /// `list_of_unique_strings` (tags).
    static func uniqueStrings(maxLength: Int) -> NeutronType {
        list(of: { NeutronValue.string($0, maxLength: maxLength) }, unique: true)
    }

    /// A list of dictionaries (null: not given).
    static let dictionaries = list(of: { $0.objectValue == nil ? "'\(NeutronValue.text($0))' is not a dictionary" : nil })

    /// `type:uuid`, `type:uuid_list` (null: not given).
    static let uuid = validated(NeutronValue.uuid)
    static let uuids = list(of: NeutronValue.uuid, unique: true)

    /// `type:ip_address`.
    static let ipAddress = validated(NeutronValue.ipAddress)

    /// `type:dict_or_none`.
    static let dictionaryOrNull = validated { value in
        value.isNull || value.objectValue != nil ? nil : "'\(NeutronValue.text(value))' is not a dictionary"
    }
}

/// One attribute of a resource, as neutron-lib's attribute maps declare it: its type, whether
/// a create (`allow_post`) or an update (`allow_put`) may set it, and whether a create must.
struct NeutronAttribute: Sendable {
    let name: String
    let type: NeutronType
    let create: Bool
    let update: Bool
    let required: Bool

    init(_ name: String, _ type: NeutronType, create: Bool = true, update: Bool = true, required: Bool = false) {
        self.name = name; self.type = type; self.create = create; self.update = update; self.required = required
    }

    /// Set by a create only (`allow_put: False`): read-only afterwards.
    static func createOnly(_ name: String, _ type: NeutronType, required: Bool = false) -> NeutronAttribute {
        NeutronAttribute(name, type, update: false, required: required)
    }

    /// Set by an update only (`allow_post: False`).
    static func updateOnly(_ name: String, _ type: NeutronType) -> NeutronAttribute {
        NeutronAttribute(name, type, create: false)
    }
}

/// A Neutron resource as its requests write it (`{"network": {...}}`): the attributes a create
/// or an update may set, and the ones the API only shows. From it come the schema its routes
/// declare and the `NeutronBody` their handlers read, with Neutron's refusals in its order:
/// the body's shape, the project, unrecognized attributes, required ones and those not allowed
/// in a create, or read-only ones in an update, then each value by its type.
struct NeutronResource: Sendable {
    enum Operation: Sendable { case create, update }

    let key: String
    let attributes: [NeutronAttribute]
    /// Attributes the API shows but no request sets (id, status, …).
    let shown: Set<String>

    init(_ key: String, shown: Set<String> = [], _ attributes: [NeutronAttribute]) {
        self.key = key
        self.attributes = attributes
        self.shown = shown.subtracting(attributes.map(\.name))
    }

    func allows(_ attribute: NeutronAttribute, _ operation: Operation) -> Bool {
        operation == .create ? attribute.create : attribute.update
    }

    /// The attributes `operation` may set.
    func names(_ operation: Operation) -> [String] { attributes.filter { allows($0, operation) }.map(\.name) }

    /// Why Neutron refuses this request body, or nil.
    func refusal(_ body: JSON, _ operation: Operation) -> APIFault? {
        guard let object = body.objectValue else { return NeutronFault.badRequest("Body contains invalid data") }
        if object.isEmpty { return NeutronFault.badRequest("Resource body required") }
        guard let value = object[key] else {
            if object[key + "s"] != nil { return NeutronFault.badRequest("Bulk operation not supported") }
            return NeutronFault.badRequest("Unable to find '\(key)' in request body")
        }
        return refusal(resource: value, operation)
    }

    /// Why Neutron refuses the resource object of a body (one item of a bulk create), or nil.
    func refusal(resource value: JSON, _ operation: Operation) -> APIFault? {
        guard let fields = value.objectValue else { return NeutronFault.badRequest("Object '\(key)' contains invalid data") }
        if attributes.contains(where: { $0.name == "project_id" }), let project = fields["project_id"], let tenant = fields["tenant_id"],
           project != tenant {
            return NeutronFault.projectMismatch
        }
        let unknown = fields.keys.filter { name in !shown.contains(name) && !attributes.contains { $0.name == name } }.sorted()
        if !unknown.isEmpty { return NeutronFault.badRequest("Unrecognized attribute(s) '\(unknown.joined(separator: ", "))'") }
        let allowed = Set(names(operation))
        switch operation {
        case .create:
            if let missing = attributes.first(where: { $0.required && fields[$0.name] == nil }) {
                return NeutronFault.badRequest("Failed to parse request. Required attribute '\(missing.name)' not specified")
            }
            if let name = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
                return NeutronFault.badRequest("Attribute '\(name)' not allowed in POST")
            }
        case .update:
            if let name = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
                return NeutronFault.badRequest("Cannot update read-only attribute \(name)")
            }
        }
        for attribute in attributes where allows(attribute, operation) {
            if let value = fields[attribute.name], let fault = attribute.type.refusal(attribute.name, value) { return fault }
        }
        return nil
    }

    /// The schema of the body of `operation`: its refusals are Neutron's own, answered as they are.
    func schema(_ operation: Operation) -> Schema {
        Schema(fault: { body in refusal(body, operation) })
    }

    /// The body a route of `operation` declares.
    func body(_ operation: Operation) -> BodySchema { .json(schema(operation), style: .neutron) }
}

/// The resource object of a Neutron request body, read attribute by attribute once its
/// resource's declaration let it through (the accessors convert; their refusals are the
/// declaration's, should a handler read what it did not declare).
struct NeutronBody {
    let fields: [String: JSON]

    /// `body[resource.key]`, refused as the route's schema refuses it.
    init(_ body: [String: JSON], _ resource: NeutronResource, _ operation: NeutronResource.Operation) throws {
        if let fault = resource.refusal(.object(body), operation) { throw fault }
        fields = body[resource.key]?.objectValue ?? [:]
    }

    /// One resource object (an item of a bulk create).
    init(resource value: JSON, _ resource: NeutronResource, _ operation: NeutronResource.Operation) throws {
        if let fault = resource.refusal(resource: value, operation) { throw fault }
        fields = value.objectValue ?? [:]
    }

    func has(_ key: String) -> Bool { fields[key] != nil }

    /// A JSON value as text, to be stored (`binding:profile`).
    static func encoded(_ value: JSON) -> String { String(decoding: value.encoded(), as: UTF8.self) }

    func invalid(_ key: String, _ reason: String) -> APIFault { NeutronFault.invalid(key, reason) }

    /// The refusal of `key` by `type` (what the declaration says of a value it let through).
    private func refused(_ key: String, _ type: NeutronType) -> APIFault {
        type.refusal(key, fields[key] ?? .null) ?? NeutronFault.badRequest("Invalid input for \(key).")
    }

    func string(_ key: String) throws -> String? {
        guard let value = fields[key] else { return nil }
        guard let text = value.stringValue else { throw refused(key, .string()) }
        return text
    }

    /// A string attribute that may be null (`gateway_ip`): nil when absent, .some(nil) for null.
    func nullableString(_ key: String) throws -> String?? {
        guard let value = fields[key] else { return nil }
        if value.isNull { return .some(nil) }
        return .some(try string(key))
    }

    /// A required string attribute (the declaration refuses a body without it).
    func required(_ key: String) throws -> String {
        guard let text = try string(key) else {
            throw NeutronFault.badRequest("Failed to parse request. Required attribute '\(key)' not specified")
        }
        return text
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = fields[key] else { return nil }
        guard let flag = NeutronValue.boolean(value) else { throw refused(key, .boolean) }
        return flag
    }

    func int(_ key: String) throws -> Int? {
        guard let value = fields[key], !value.isNull else { return nil }
        guard let number = NeutronValue.integer(value) else { throw refused(key, .integer) }
        return number
    }

    func list(_ key: String) throws -> [JSON]? {
        guard let value = fields[key], !value.isNull else { return nil }
        guard let items = value.arrayValue else { throw refused(key, .list()) }
        return items
    }

    func strings(_ key: String) throws -> [String]? {
        try list(key)?.map { item in
            guard let text = item.stringValue else { throw refused(key, .strings) }
            return text
        }
    }

    func objects(_ key: String) throws -> [[String: JSON]]? {
        try list(key)?.map { item in
            guard let object = item.objectValue else { throw refused(key, .dictionaries) }
            return object
        }
    }

    /// A JSON object attribute kept as its text (`binding:profile`); null is {}.
    func objectText(_ key: String) throws -> String? {
        guard let value = fields[key] else { return nil }
        if value.isNull { return "{}" }
        guard value.objectValue != nil else { throw refused(key, .dictionaryOrNull) }
        return Self.encoded(value)
    }

    func tags() throws -> [String] {
        try strings("tags") ?? []
    }
}

extension NetworkingFailure {
    /// The failure as the API answers it.
    var fault: APIFault {
        APIFault(.init(code: status), message, type: type)
    }
}
