import Foundation
import HTTPTypes

/// A microversion, `2.53`.
public struct Microversion: Comparable, Sendable, CustomStringConvertible {
    public let major: Int
    public let minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    public init?(_ text: String) {
        let parts = text.split(separator: ".")
        guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]) else { return nil }
        self.init(major, minor)
    }

    public var description: String { "\(major).\(minor)" }

    public static func < (left: Microversion, right: Microversion) -> Bool {
        (left.major, left.minor) < (right.major, right.minor)
    }

    /// The version a request asks for (`OpenStack-API-Version: compute 2.53`, or the legacy
    /// header); the minimum when it names none, the maximum for `latest`. Outside the range: 406.
    public static func requested(by headers: HTTPFields, service: String, legacyHeader: String?,
                                 minimum: Microversion, maximum: Microversion) throws -> Microversion {
        var text: String?
        if let header = headers[HTTPField.Name("OpenStack-API-Version")!] {
            for entry in header.split(separator: ",") {
                let words = entry.split(separator: " ").map(String.init)
                if words.count == 2, words[0].lowercased() == service { text = words[1] }
            }
        }
        if text == nil, let legacyHeader, let legacy = headers[HTTPField.Name(legacyHeader)!] { text = legacy }
        guard let text else { return minimum }
        if text.lowercased() == "latest" { return maximum }
        guard let version = Microversion(text) else {
            throw APIFault(.badRequest, "API Version String \(text) is of invalid format. Must be of format MajorNum.MinorNum.")
        }
        guard version >= minimum, version <= maximum else {
            throw APIFault(.notAcceptable, "Version \(text) is not supported by the API. Minimum is \(minimum) and maximum is \(maximum).")
        }
        return version
    }

    public func headers(service: String, legacyHeader: String?) -> HTTPFields {
        var fields: HTTPFields = [HTTPField.Name("OpenStack-API-Version")!: "\(service) \(self)"]
        var vary = "OpenStack-API-Version"
        if let legacyHeader {
            fields[HTTPField.Name(legacyHeader)!] = description
            vary += ", " + legacyHeader
        }
        fields[HTTPField.Name("Vary")!] = vary
        return fields
    }
}
