import Foundation
import Networking
import PetrelHTTP

/// The resource object of a Neutron request body (`{"network": {...}}`), read attribute by
/// attribute with Neutron's refusals: unknown attributes, read-only ones on update, and values
/// of the wrong type, each a 400 in Neutron's words.
struct NeutronBody {
    let fields: [String: JSON]

    /// `body[resource]` as an object, refusing any attribute outside `allowed`.
    init(_ body: [String: JSON], resource: String, allowed: [String], readOnly: Set<String> = []) throws {
        guard let value = body[resource] else {
            throw APIFault(.badRequest, "Resource body required", type: "HTTPBadRequest")
        }
        guard let fields = value.objectValue else {
            throw APIFault(.badRequest, "Invalid input for operation: Body contains invalid data", type: "InvalidInput")
        }
        if let key = fields.keys.sorted().first(where: { readOnly.contains($0) }) {
            throw APIFault(.badRequest, "Cannot update read-only attribute \(key)", type: "HTTPBadRequest")
        }
        let unknown = fields.keys.filter { !allowed.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw APIFault(.badRequest, "Unrecognized attribute(s) '\(unknown.joined(separator: ", "))'", type: "HTTPBadRequest")
        }
        self.fields = fields
    }

    func has(_ key: String) -> Bool { fields[key] != nil }

    static func text(_ value: JSON) -> String { String(decoding: value.encoded(), as: UTF8.self) }

    func invalid(_ key: String, _ reason: String) -> APIFault {
        APIFault(.badRequest, "Invalid input for \(key). Reason: \(reason).", type: "HTTPBadRequest")
    }

    func string(_ key: String, maxLength: Int = 255) throws -> String? {
        guard let value = fields[key] else { return nil }
        guard let text = value.stringValue else { throw invalid(key, "'\(Self.text(value))' is not a valid string") }
        guard text.count <= maxLength else { throw invalid(key, "'\(text)' exceeds maximum length of \(maxLength)") }
        return text
    }

    /// A string attribute that may be null (`gateway_ip`): nil when absent, .some(nil) for null.
    func nullableString(_ key: String) throws -> String?? {
        guard let value = fields[key] else { return nil }
        if value.isNull { return .some(nil) }
        return .some(try string(key))
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = fields[key] else { return nil }
        switch value {
        case .bool(let flag): return flag
        case .string(let text): if let flag = NeutronListing.booleanValue(text) { return flag }
        case .number(let number) where number == 0 || number == 1: return number == 1
        default: break
        }
        throw invalid(key, "'\(Self.text(value))' cannot be converted to boolean")
    }

    func int(_ key: String) throws -> Int? {
        guard let value = fields[key], !value.isNull else { return nil }
        switch value {
        case .number(let number) where number.rounded() == number && abs(number) < 1e15: return Int(number)
        case .string(let text): if let number = Int(text) { return number }
        default: break
        }
        throw invalid(key, "'\(Self.text(value))' is not an integer")
    }

    func list(_ key: String) throws -> [JSON]? {
        guard let value = fields[key], !value.isNull else { return nil }
        guard let items = value.arrayValue else { throw invalid(key, "'\(Self.text(value))' is not a list") }
        return items
    }

    func strings(_ key: String) throws -> [String]? {
        try list(key)?.map { item in
            guard let text = item.stringValue else { throw invalid(key, "'\(Self.text(item))' is not a valid string") }
            return text
        }
    }

    func objects(_ key: String) throws -> [[String: JSON]]? {
        try list(key)?.map { item in
            guard let object = item.objectValue else { throw invalid(key, "'\(Self.text(item))' is not a dictionary") }
            return object
        }
    }

    /// A JSON object attribute kept as its text (`binding:profile`).
    func objectText(_ key: String) throws -> String? {
        guard let value = fields[key] else { return nil }
        if value.isNull { return "{}" }
        guard value.objectValue != nil else { throw invalid(key, "'\(Self.text(value))' is not a dictionary") }
        return Self.text(value)
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
