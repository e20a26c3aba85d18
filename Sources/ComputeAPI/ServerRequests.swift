import Compute
import Contracts
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Images
import Networking
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

    /// `POST /servers`' body (already checked against `ServerSchemas.create`), as a request.
    static func serverRequest(_ fields: [String: JSON], _ version: Microversion, project: String) throws -> ServerRequest {
        guard let nameValue = fields["name"] else {
            throw APIFault(.badRequest, "Invalid input for field/attribute server. 'name' is a required property.")
        }
        let name = try serverName(nameValue)
        guard let flavorRef = fields["flavorRef"].flatMap(Self.reference) else {
            throw APIFault(.badRequest, "Invalid input for field/attribute flavorRef. 'flavorRef' is a required property.")
        }
        var imageRef = fields["imageRef"].flatMap(Self.reference)
        var blockDevices: [BlockDeviceRequest] = []
        if let mappings = fields["block_device_mapping_v2"] {
            guard let list = mappings.arrayValue else {
                throw APIFault(.badRequest, "Invalid input for field/attribute block_device_mapping_v2. It is not of type 'array'")
            }
            for mapping in list {
                guard let object = mapping.objectValue else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute block_device_mapping_v2. It is not of type 'object'")
                }
                switch try Self.blockDevice(object) {
                case .localImage(let uuid):
                    // An image copied to the local root disk: what a boot from an image is anyway.
                    if imageRef == nil || imageRef == "" { imageRef = uuid }
                case .volume(let device):
                    blockDevices.append(device)
                }
            }
        }
        let rootOnVolume = blockDevices.contains(where: \.isRoot)
        if rootOnVolume {
            imageRef = ""
        } else {
            guard let imageRef, !imageRef.isEmpty else {
                throw APIFault(.badRequest, "Invalid input for field/attribute imageRef. 'imageRef' is a required property.")
            }
        }
        if fields["networks"] == nil, version >= Microversion(2, 37) {
            throw APIFault(.badRequest, "Invalid input for field/attribute server. 'networks' is a required property.")
        }
        _ = try Self.networkChoice(fields["networks"], version)
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
        var zone: String?, forcedHost: String?, forcedNode: String?
        if let value = fields["availability_zone"], !value.isNull {
            guard let text = value.stringValue, !text.isEmpty else {
                throw APIFault(.badRequest, "Invalid input for field/attribute availability_zone.")
            }
            // Nova's forms: `zone`, `zone:host`, `zone:host:node`, `zone::node` (the host and
            // node parts are for admins, checked by the caller against the forced_host policy).
            let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            switch parts.count {
            case 1: zone = text
            case 2: (zone, forcedHost) = (parts[0], parts[1])
            case 3: (zone, forcedHost, forcedNode) = (parts[0], parts[1], parts[2])
            default: throw APIFault(.badRequest, "Invalid input received: Unable to parse availability_zone")
            }
            if zone?.isEmpty == true { zone = nil }
            if forcedHost?.isEmpty == true { forcedHost = nil }
            if forcedNode?.isEmpty == true { forcedNode = nil }
        }
        let metadata = try fields["metadata"].map(metadata) ?? [:]
        let configDrive = try Self.configDrive(fields["config_drive"])
        var request = ServerRequest(name: name, flavorRef: flavorRef, imageRef: imageRef ?? "", keyName: keyName, userData: userData,
                                    metadata: metadata, availabilityZone: zone, minCount: minCount, maxCount: maxCount,
                                    hostname: fields["hostname"]?.stringValue, configDrive: configDrive)
        request.forcedHost = forcedHost
        request.forcedNode = forcedNode
        request.blockDevices = blockDevices
        request.accessIPv4 = fields["accessIPv4"]?.stringValue
        request.accessIPv6 = fields["accessIPv6"]?.stringValue
        request.description = fields["description"]?.stringValue
        request.tags = fields["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if request.hostname != nil, maxCount > 1 {
            throw APIFault(.badRequest, "Unable to allocate a single hostname to multiple instances")
        }
        try Self.refuseTrustedCertificates(fields["trusted_image_certificates"])
        return request
    }

    /// Petrel's nodes do not verify image signatures, so a request that needs certificates
    /// checked is refused with the reason rather than accepted and ignored.
    static func refuseTrustedCertificates(_ value: JSON?) throws {
        guard let value, !value.isNull else { return }
        throw APIFault(.badRequest, "Image signature certificate validation is not supported by this cloud: its compute hosts do not verify image signatures, so trusted_image_certificates cannot be honoured.")
    }

    enum BlockDevice {
        case localImage(String)
        case volume(BlockDeviceRequest)
    }

    /// One entry of `block_device_mapping_v2` (shape checked by the schema), by Nova's rules.
    static func blockDevice(_ object: [String: JSON]) throws -> BlockDevice {
        let source = object["source_type"]?.stringValue ?? "blank"
        let destination = object["destination_type"]?.stringValue ?? (source == "blank" ? "local" : "volume")
        let uuid = object["uuid"]?.stringValue ?? object["volume_id"]?.stringValue ?? object["snapshot_id"]?.stringValue
            ?? object["image_id"]?.stringValue
        func integer(_ key: String, minimum: Int) throws -> Int? {
            guard let value = object[key], !value.isNull else { return nil }
            return try ComputeAPI.integer(value, key, minimum: minimum)
        }
        let bootIndex = try integer("boot_index", minimum: -2_147_483_647)
        switch (source, destination) {
        case ("image", "local"):
            guard let uuid, bootIndex == 0 else {
                throw APIFault(.badRequest, "Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.")
            }
            return .localImage(uuid)
        case ("blank", "local"):
            throw APIFault(.badRequest, "Block Device Mapping is Invalid: local blank disks (ephemeral, swap) come from the flavor on this cloud; give a flavor with the ephemeral or swap disk wanted.")
        case (_, "volume"):
            if source != "blank" && uuid == nil {
                throw APIFault(.badRequest, "Block Device Mapping is Invalid: Missing device UUID.")
            }
            return .volume(BlockDeviceRequest(
                source: source, uuid: source == "blank" ? nil : uuid, size: try integer("volume_size", minimum: 1),
                bootIndex: bootIndex.flatMap { $0 < 0 ? nil : $0 },
                deleteOnTermination: try novaBoolean(object["delete_on_termination"], field: "delete_on_termination"),
                volumeType: object["volume_type"]?.stringValue))
        default:
            throw APIFault(.badRequest, "Block Device Mapping is Invalid: source_type \(source) with destination_type \(destination) is not valid.")
        }
    }

    /// What `networks` asks for: nothing, Nova's automatic choice, or a list of networks/ports.
    enum NetworkChoice: Equatable {
        case none
        /// `auto`, or (before 2.37) no `networks` at all: the one network the project has.
        case auto(explicit: Bool)
        case list([RequestedNetwork])
    }

    static func networkChoice(_ value: JSON?, _ version: Microversion) throws -> NetworkChoice {
        switch value {
        case nil: return .auto(explicit: false)
        case .string("none")?: return .none
        case .string("auto")?: return .auto(explicit: true)
        case .array(let list)?:
            return .list(try list.map { item in
                guard let entry = item.objectValue else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute networks. Value: \(item). It is not of type 'object'")
                }
                if let unknown = entry.keys.sorted().first(where: { !["uuid", "port", "fixed_ip", "tag"].contains($0) }) {
                    throw APIFault(.badRequest, "Invalid input for field/attribute networks. Additional properties are not allowed ('\(unknown)' was unexpected)")
                }
                let uuid = entry["uuid"]?.stringValue, port = entry["port"]?.stringValue, fixed = entry["fixed_ip"]?.stringValue
                if let fixed, IPAddress(fixed) == nil {
                    throw APIFault(.badRequest, "Invalid input for field/attribute fixed_ip. Value: \(fixed). '\(fixed)' is not a valid IP address")
                }
                guard uuid != nil || port != nil else {
                    throw APIFault(.badRequest, "Invalid input for field/attribute networks. A network needs a uuid or a port.")
                }
                return RequestedNetwork(networkID: port == nil ? uuid : nil, portID: port, fixedIP: port == nil ? fixed : nil)
            })
        case let other?:
            throw APIFault(.badRequest, "Invalid input for field/attribute networks. Value: \(other). It must be 'none', 'auto' or a list.")
        }
    }

    /// Resolves the networks of a create against Neutron, as Nova does: named networks and
    /// ports must exist for the caller, a port must be free; `auto` takes the only network the
    /// project may use.
    func resolveNetworks(_ choice: NetworkChoice, project: String, isAdmin: Bool, count: Int) async throws -> [RequestedNetwork] {
        guard let networking = servers.networking else {
            if case .list(let list) = choice, let first = list.first {
                throw APIFault(.badRequest, "Network \(first.networkID ?? first.portID ?? "") could not be found.")
            }
            return []
        }
        let viewer = Viewer(projectID: project, isAdmin: false)
        switch choice {
        case .none:
            return []
        case .auto(let explicit):
            let usable = try await networking.networks(visibleTo: viewer).filter { !$0.external && ($0.projectID == project || $0.shared) }
            if usable.count > 1 {
                throw APIFault(.conflict, "Multiple possible networks found, use a Network ID to be more specific.")
            }
            guard let only = usable.first else {
                if explicit { throw APIFault(.badRequest, "Unable to automatically allocate a network for project \(project)") }
                return []
            }
            return [RequestedNetwork(networkID: only.id)]
        case .list(let list):
            for entry in list {
                if let id = entry.networkID {
                    guard (try? await networking.network(id, visibleTo: Viewer(projectID: project, isAdmin: isAdmin))) != nil else {
                        throw APIFault(.badRequest, "Network \(id) could not be found.")
                    }
                    if entry.fixedIP != nil && count > 1 {
                        throw APIFault(.badRequest, "max_count cannot be greater than 1 if an fixed_ip is specified.")
                    }
                }
                if let id = entry.portID {
                    guard let port = try? await networking.port(id, visibleTo: Viewer(projectID: project, isAdmin: isAdmin)) else {
                        throw APIFault(.badRequest, "Port id \(id) could not be found.")
                    }
                    guard port.deviceID.isEmpty else { throw APIFault(.conflict, "Port \(id) is still in use.") }
                    if count > 1 {
                        throw APIFault(.badRequest, "Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.")
                    }
                }
            }
            return list
        }
    }

    /// `config_drive`: a boolean, or one of Nova's boolean strings (the CLI sends `True`); an
    /// empty string or null means none.
    static func configDrive(_ value: JSON?) throws -> Bool { try novaBoolean(value, field: "config_drive") }

    /// One of Nova's booleans: true/false or their spellings as strings ("True", "0", "no", …);
    /// absent, null or an empty string is false.
    static func novaBoolean(_ value: JSON?, field: String) throws -> Bool {
        switch value {
        case nil, .null?: return false
        case .bool(let flag)?: return flag
        case .string(let text)?:
            if ["", "false", "f", "0", "no", "n", "off"].contains(text.lowercased()) { return false }
            if ["true", "t", "1", "yes", "y", "on"].contains(text.lowercased()) { return true }
        default: break
        }
        throw APIFault(.badRequest, "Invalid input for field/attribute \(field). Value: \(String(decoding: value!.encoded(), as: UTF8.self)). It must be a boolean.")
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

/// The fields `PUT /servers/{id}` and a rebuild may change besides the name (each already
/// checked by the route's schema for the request's microversion): a key given as null clears.
struct ServerFieldChanges: Sendable {
    var description: String??
    var accessIPv4: String??
    var accessIPv6: String??
    var hostname: String?

    init(_ fields: [String: JSON]) {
        func text(_ key: String) -> String?? { fields[key].map { $0.stringValue } }
        description = text("description")
        accessIPv4 = text("accessIPv4")
        accessIPv6 = text("accessIPv6")
        hostname = fields["hostname"]?.stringValue
    }

    func apply(to server: inout Server) {
        if let description { server.description = description }
        if let accessIPv4 { server.accessIPv4 = accessIPv4 }
        if let accessIPv6 { server.accessIPv6 = accessIPv6 }
        if let hostname { server.hostname = hostname }
    }
}
