import Compute
import Contracts
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Images
import PetrelCore
import PetrelHTTP

/// Nova's request bodies for servers: names, metadata, `POST /servers`, references.
extension ComputeAPI {
    static func serverName(_ value: JSON) throws -> String {
        guard let name = value.stringValue, !name.isEmpty, name.count <= 255, !name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw APIFault(.badRequest, "Invalid input for field/attribute name. Value: \(value). It must be a non-empty string of at most 255 characters.")
        }
        return name
    }

    static func metadata(_ value: JSON) throws -> [String: String] {
        guard let object = value.objectValue else {
            throw APIFault(.badRequest, "Invalid input for field/attribute metadata. Value: \(value). It is not of type 'object'")
        }
        var result: [String: String] = [:]
        for (key, item) in object {
            guard !key.isEmpty, key.count <= 255 else {
                throw APIFault(.badRequest, "Invalid input for field/attribute metadata. Keys must be 1 to 255 characters.")
            }
            guard let text = item.stringValue, text.count <= 255 else {
                throw APIFault(.badRequest, "Invalid input for field/attribute metadata. The value of '\(key)' must be a string of at most 255 characters.")
            }
            result[key] = text
        }
        return result
    }

    /// `POST /servers`' body, checked field by field as Nova's schema does.
    static func serverRequest(_ fields: [String: JSON], _ version: Microversion, project: String) throws -> ServerRequest {
        for key in fields.keys where !serverFields.contains(key) {
            throw APIFault(.badRequest, "Invalid input for field/attribute server. Additional properties are not allowed ('\(key)' was unexpected)")
        }
        guard let nameValue = fields["name"] else {
            throw APIFault(.badRequest, "Invalid input for field/attribute server. 'name' is a required property.")
        }
        let name = try serverName(nameValue)
        guard let flavorRef = fields["flavorRef"].flatMap(Self.reference) else {
            throw APIFault(.badRequest, "Invalid input for field/attribute flavorRef. 'flavorRef' is a required property.")
        }
        var imageRef = fields["imageRef"].flatMap(Self.reference)
        if let mappings = fields["block_device_mapping_v2"] {
            // The mapping clients send for a boot from an image (an image copied to a local
            // disk) is what Petrel does anyway; volumes wait for the block storage service.
            guard let list = mappings.arrayValue else {
                throw APIFault(.badRequest, "Invalid input for field/attribute block_device_mapping_v2. It is not of type 'array'")
            }
            for mapping in list {
                guard let object = mapping.objectValue, object["source_type"]?.stringValue == "image",
                      object["destination_type"]?.stringValue ?? "local" == "local", let uuid = object["uuid"]?.stringValue else {
                    throw APIFault(.badRequest, "Block device mappings other than an image on the local disk are not supported yet.")
                }
                if imageRef == nil || imageRef == "" { imageRef = uuid }
            }
        }
        guard let imageRef, !imageRef.isEmpty else {
            throw APIFault(.badRequest, "Invalid input for field/attribute imageRef. 'imageRef' is a required property.")
        }
        switch fields["networks"] {
        case nil:
            if version >= Microversion(2, 37) {
                throw APIFault(.badRequest, "Invalid input for field/attribute server. 'networks' is a required property.")
            }
        case .string("none")?: break
        case .string("auto")?:
            // As Nova without networks to give and without auto-allocated topologies.
            throw APIFault(.badRequest, "Unable to automatically allocate a network for project \(project)")
        case .array(let list)?:
            if let first = list.first?.objectValue {
                let what = first["uuid"]?.stringValue ?? first["port"]?.stringValue ?? "requested"
                throw APIFault(.badRequest, "Network \(what) could not be found.")
            }
        case let other?:
            throw APIFault(.badRequest, "Invalid input for field/attribute networks. Value: \(other). It must be 'none', 'auto' or a list.")
        }
        let minCount = try ComputeAPI.integer(fields["min_count"], "min_count", minimum: 1) ?? 1
        let maxCount = try ComputeAPI.integer(fields["max_count"], "max_count", minimum: 1) ?? minCount
        guard minCount <= maxCount else { throw APIFault(.badRequest, "min_count must be <= max_count") }
        var keyName: String?
        if let value = fields["key_name"], !value.isNull {
            guard let text = value.stringValue, !text.isEmpty else { throw APIFault(.badRequest, "Invalid input for field/attribute key_name.") }
            keyName = text
        }
        var userData: String?
        if let value = fields["user_data"], !value.isNull {
            guard let text = value.stringValue, text.count <= 65535, Data(base64Encoded: text) != nil else {
                throw APIFault(.badRequest, "Invalid input for field/attribute user_data. Value: it must be base64 of at most 65535 characters.")
            }
            userData = text
        }
        var zone: String?
        if let value = fields["availability_zone"], !value.isNull {
            guard let text = value.stringValue, !text.isEmpty else {
                throw APIFault(.badRequest, "Invalid input for field/attribute availability_zone.")
            }
            zone = text.split(separator: ":", maxSplits: 1).first.map(String.init)
        }
        let metadata = try fields["metadata"].map(metadata) ?? [:]
        let configDrive = try Self.configDrive(fields["config_drive"])
        return ServerRequest(name: name, flavorRef: flavorRef, imageRef: imageRef, keyName: keyName, userData: userData, metadata: metadata,
                             availabilityZone: zone, minCount: minCount, maxCount: maxCount,
                             hostname: fields["hostname"]?.stringValue, configDrive: configDrive)
    }

    /// `config_drive`: a boolean, or one of Nova's boolean strings (the CLI sends `True`); an
    /// empty string or null means none.
    static func configDrive(_ value: JSON?) throws -> Bool {
        switch value {
        case nil, .null?: return false
        case .bool(let flag)?: return flag
        case .string(let text)?:
            if ["", "false", "f", "0", "no", "n", "off"].contains(text.lowercased()) { return false }
            if ["true", "t", "1", "yes", "y", "on"].contains(text.lowercased()) { return true }
        default: break
        }
        throw APIFault(.badRequest, "Invalid input for field/attribute config_drive. Value: \(String(decoding: value!.encoded(), as: UTF8.self)). It must be a boolean.")
    }

    /// An id, or a URL ending in one.
    static func reference(_ value: JSON) -> String? {
        guard let text = value.stringValue ?? value.numberText else { return nil }
        return text.split(separator: "/").last.map(String.init) ?? text
    }

    static func password() -> String {
        let letters = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        return String((0..<12).map { _ in letters.randomElement()! })
    }
}
