import Compute
import Foundation
import PetrelHTTP

/// Request schemas built once for each microversion the compute API serves, not per request.
struct PerMicroversion: Sendable {
    private let schemas: [Schema]

    init(_ build: (Microversion) -> Schema) {
        schemas = (ComputeAPI.minimum.minor...ComputeAPI.maximum.minor).map { build(Microversion(2, $0)) }
    }

    subscript(_ version: Microversion) -> Schema { schemas[version.minor - ComputeAPI.minimum.minor] }
}

/// Nova's parameter types, written from its API reference and published schemas: the pieces
/// the request schemas of the compute API are made of.
enum NovaTypes {
    /// Printable characters (Unicode letters, marks, numbers, punctuation, symbols and the
    /// space separators), not starting or ending with a space: Nova's `name`.
    static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator: return false
        default: return true
        }
    }

    static func isSpace(_ scalar: Unicode.Scalar) -> Bool { scalar.properties.generalCategory == .spaceSeparator }

    static let nameRule: @Sendable (JSON) -> String? = { value in
        guard let text = value.stringValue else { return nil }
        let scalars = text.unicodeScalars
        if scalars.allSatisfy(isPrintable), !(scalars.first.map(isSpace) ?? false), !(scalars.last.map(isSpace) ?? false) { return nil }
        return "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace."
    }

    static let name = Schema.string(minLength: 1, maxLength: 255, check: nameRule)

    /// Free text of at most 255 printable characters, or null.
    static let description = Schema(types: [.string, .null], minLength: 0, maxLength: 255, pattern: Schema.Rule("^[printable]*$") { text in
        text.unicodeScalars.allSatisfy(isPrintable)
    })

    /// Nova's booleans: true/false or one of their spellings as strings.
    static let boolean = Schema.choice([true, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
                                        false, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"],
                                       types: [.boolean, .string])

    static let positiveInteger = Schema(types: [.integer, .string], pattern: Schema.Rule(regex: "^[0-9]*$"), minimum: 1)
    static let uuid = Schema.string(format: .uuid)
    static let ipAddress = Schema(types: [.string], oneOf: [Schema(format: .ipv4), Schema(format: .ipv6)])
    static let flavorRef = Schema(types: [.string, .integer], minLength: 1)
    static let imageIDOrEmpty = Schema.oneOf(.string(format: .uuid), .string(maxLength: 0))
    static let diskConfig = Schema.choice(["AUTO", "MANUAL"], types: [.string])
    static let accessIPv4 = Schema.string(format: .ipv4)
    static let accessIPv6 = Schema.string(format: .ipv6)
    /// A hostname a user gives (2.90): letters, digits and '-' (Nova's `hostname`); from 2.94
    /// a fully qualified domain name (Nova's `fqdn`: dots and underscores too).
    static func hostname(_ version: Microversion) -> Schema {
        version >= Microversion(2, 94)
            ? .string(minLength: 1, maxLength: 255, pattern: Schema.Rule(regex: "^[a-zA-Z0-9-._]*$"))
            : .string(minLength: 2, maxLength: 63, pattern: Schema.Rule(regex: "^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$"))
    }

    static let tag = Schema.string(maxLength: 60, pattern: Schema.Rule("^[^,/]*$") { !$0.contains(",") && !$0.contains("/") })

    /// Metadata: keys of letters, digits and `-_:. `, 1 to 255 of them; string values of at most 255.
    static let metadataKey = Schema.Rule("^[a-zA-Z0-9-_:. ]{1,255}$") { key in
        (1...255).contains(key.count) && key.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "-_:. ".unicodeScalars.contains(scalar))
        }
    }
    static let metadata = Schema.map(keys: metadataKey, values: .string(maxLength: 255))
}

/// The request schemas of the servers API, per microversion (Nova's `servers` schemas).
enum ServerSchemas {
    /// A block device mapping (v2; `tag` where the microversion has it).
    static func blockDeviceMapping(tagged: Bool, typed: Bool = false) -> Schema {
        .object([
            ("virtual_name", .string(maxLength: 255)),
            ("volume_id", NovaTypes.uuid),
            ("snapshot_id", NovaTypes.uuid),
            ("volume_size", NovaTypes.positiveInteger),
            ("device_name", .string(minLength: 1, maxLength: 255, pattern: Schema.Rule(regex: "^[a-zA-Z0-9._/-]*$"))),
            ("delete_on_termination", NovaTypes.boolean),
            ("no_device", .any),
            ("connection_info", .string(maxLength: 16_777_215)),
            ("source_type", .choice(["volume", "image", "snapshot", "blank"], types: [.string])),
            ("uuid", .string(minLength: 1, maxLength: 255, pattern: Schema.Rule(regex: "^[a-zA-Z0-9._-]*$"))),
            ("image_id", NovaTypes.uuid),
            ("destination_type", .choice(["local", "volume"], types: [.string])),
            ("guest_format", .string(maxLength: 255)),
            ("device_type", .string(maxLength: 255)),
            ("disk_bus", .string(maxLength: 255)),
            ("boot_index", Schema(types: [.integer, .string, .null], pattern: Schema.Rule(regex: "^-?[0-9]+$"))),
        ] + (tagged ? [("tag", NovaTypes.tag)] : []) + (typed ? [("volume_type", Schema(types: [.string, .null], maxLength: 255))] : []))
    }

    static let hints = Schema.object([], additional: true)

    static func networkItem(tagged: Bool, uuidFormat: Bool) -> Schema {
        var properties: [(String, Schema)] = [
            ("fixed_ip", NovaTypes.ipAddress),
            ("port", .oneOf(.string(format: .uuid), .null)),
            ("uuid", uuidFormat ? NovaTypes.uuid : .string()),
        ]
        if tagged { properties.append(("tag", NovaTypes.tag)) }
        return .object(properties)
    }

    /// `POST /servers` at `version`.
    static func create(_ version: Microversion) -> Schema { creates[version] }
    private static let creates = PerMicroversion(buildCreate)

    private static func buildCreate(_ version: Microversion) -> Schema {
        var server: [(String, Schema)] = [
            ("name", NovaTypes.name),
            ("imageRef", NovaTypes.imageIDOrEmpty),
            ("flavorRef", NovaTypes.flavorRef),
            ("adminPass", .string()),
            ("metadata", NovaTypes.metadata),
            ("OS-DCF:diskConfig", NovaTypes.diskConfig),
            ("accessIPv4", NovaTypes.accessIPv4),
            ("accessIPv6", NovaTypes.accessIPv6),
            ("availability_zone", NovaTypes.name),
            ("block_device_mapping_v2", .array(blockDeviceMapping(tagged: version >= Microversion(2, 42) || version == Microversion(2, 32),
                                                                   typed: version >= Microversion(2, 67)))),
            ("config_drive", NovaTypes.boolean),
            ("key_name", NovaTypes.name),
            ("min_count", NovaTypes.positiveInteger),
            ("max_count", NovaTypes.positiveInteger),
            ("return_reservation_id", NovaTypes.boolean),
            ("security_groups", .array(.object([("name", NovaTypes.name)]))),
            ("user_data", .string(maxLength: 65535, format: .base64)),
        ]
        var required = ["name", "flavorRef"]
        let tagged = version >= Microversion(2, 42) || (version >= Microversion(2, 32) && version < Microversion(2, 37))
        if version >= Microversion(2, 37) {
            server.append(("networks", .oneOf(.array(networkItem(tagged: tagged, uuidFormat: true)),
                                              .choice(["none", "auto"], types: [.string]))))
            required.append("networks")
        } else {
            server.append(("networks", .array(networkItem(tagged: tagged, uuidFormat: false))))
        }
        if version >= Microversion(2, 19) { server.append(("description", NovaTypes.description)) }
        if version >= Microversion(2, 52) { server.append(("tags", .array(NovaTypes.tag, maxItems: 50))) }
        if version >= Microversion(2, 63) {
            server.append(("trusted_image_certificates", Schema(types: [.array, .null], items: .string(minLength: 1), minItems: 1,
                                                                maxItems: 50, uniqueItems: true)))
        }
        if version >= Microversion(2, 90) { server.append(("hostname", NovaTypes.hostname(version))) }
        return .object([("server", .object(server, required: required)),
                        ("os:scheduler_hints", hints), ("OS-SCH-HNT:scheduler_hints", hints)], required: ["server"])
    }

    /// `PUT /servers/{id}` at `version`.
    static func update(_ version: Microversion) -> Schema { updates[version] }
    private static let updates = PerMicroversion(buildUpdate)

    private static func buildUpdate(_ version: Microversion) -> Schema {
        var server: [(String, Schema)] = [
            ("name", NovaTypes.name),
            ("OS-DCF:diskConfig", NovaTypes.diskConfig),
            ("accessIPv4", NovaTypes.accessIPv4),
            ("accessIPv6", NovaTypes.accessIPv6),
        ]
        if version >= Microversion(2, 19) { server.append(("description", NovaTypes.description)) }
        if version >= Microversion(2, 90) { server.append(("hostname", NovaTypes.hostname(version))) }
        return .object([("server", .object(server))], required: ["server"])
    }
}

/// `POST /os-keypairs` (Nova's `keypairs` schemas): a name, an optional public key that must
/// be a string, the type from 2.2 and the owner from 2.10.
enum KeyPairSchemas {
    static func create(_ version: Microversion) -> Schema { creates[version] }
    private static let creates = PerMicroversion(buildCreate)

    private static func buildCreate(_ version: Microversion) -> Schema {
        var keypair: [(String, Schema)] = [("name", .string(minLength: 1, maxLength: 255)), ("public_key", .string())]
        if version >= Microversion(2, 2) { keypair.append(("type", .choice(["ssh", "x509"], types: [.string]))) }
        if version >= Microversion(2, 10) { keypair.append(("user_id", .string())) }
        // From 2.92 Nova no longer makes key pairs: the public key must be given.
        let required = version >= Microversion(2, 92) ? ["name", "public_key"] : ["name"]
        return .object([("keypair", .object(keypair, required: required))], required: ["keypair"])
    }
}

/// `POST /flavors` and `PUT /flavors/{id}` (Nova's `flavor_manage` schemas).
enum FlavorSchemas {
    static let positive = Schema(types: [.integer, .string], pattern: Schema.Rule(regex: "^[0-9]*$"), minimum: 1, maximum: 2_147_483_647)
    static let nonNegative = Schema(types: [.integer, .string], pattern: Schema.Rule(regex: "^[0-9]*$"), minimum: 0, maximum: 2_147_483_647)
    static let description = Schema(types: [.string, .null], minLength: 0, maxLength: 65_535, pattern: Schema.Rule("^[printable]*$") { text in
        text.unicodeScalars.allSatisfy { NovaTypes.isPrintable($0) || $0 == "\n" || $0 == "\r" || $0 == "\t" }
    })

    static func create(_ version: Microversion) -> Schema { creates[version] }
    private static let creates = PerMicroversion(buildCreate)

    private static func buildCreate(_ version: Microversion) -> Schema {
        var flavor: [(String, Schema)] = [
            ("name", NovaTypes.name),
            ("id", Schema(types: [.string, .number, .null], minLength: 1, maxLength: 255,
                          pattern: Schema.Rule("^(?! )[a-zA-Z0-9. _-]+(?<! )$") { text in
                              !text.hasPrefix(" ") && !text.hasSuffix(" ") && !text.isEmpty
                                  && text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || ". _-".unicodeScalars.contains($0)) }
                          })),
            ("ram", positive),
            ("vcpus", positive),
            ("disk", nonNegative),
            ("OS-FLV-EXT-DATA:ephemeral", nonNegative),
            ("swap", nonNegative),
            ("rxtx_factor", Schema(types: [.number, .string], pattern: Schema.Rule(regex: "^[0-9]+(\\.[0-9]+)?$"), maximum: 3.40282e38)),
            ("os-flavor-access:is_public", NovaTypes.boolean),
        ]
        if version >= Microversion(2, 55) { flavor.append(("description", description)) }
        return .object([("flavor", .object(flavor, required: ["name", "ram", "vcpus", "disk"]))], required: ["flavor"])
    }

    static let update = Schema.object([("flavor", .object([("description", description)], required: ["description"]))], required: ["flavor"])
}

/// Server metadata (`/servers/{id}/metadata`): the whole set, or one item.
enum MetadataSchemas {
    static let all = Schema.object([("metadata", NovaTypes.metadata)], required: ["metadata"])
    static let item = Schema.object([("meta", NovaTypes.metadata)], required: ["meta"])
}

/// Host aggregates: create, update and the actions (each its own member; the route refuses
/// an action it does not know).
enum AggregateSchemas {
    static let zone = Schema(types: [.string, .null], minLength: 1, maxLength: 255)
    static let create = Schema.object([("aggregate", .object([("name", NovaTypes.name), ("availability_zone", zone)], required: ["name"]))],
                                      required: ["aggregate"])
    static let update = Schema.object([("aggregate", .object([("name", NovaTypes.name), ("availability_zone", zone)]))], required: ["aggregate"])
    static let host = Schema.object([("host", .string(minLength: 1, maxLength: 255))], required: ["host"])
    static let action = Schema.object([
        ("add_host", host), ("remove_host", host),
        ("set_metadata", .object([("metadata", Schema.map(keys: NovaTypes.metadataKey, values: Schema(types: [.string, .null], maxLength: 255)))],
                                 required: ["metadata"])),
    ], additional: true)
}

/// `PUT /os-quota-sets/{project}`: limits as integers (or their strings) from -1, and `force`.
enum QuotaSchemas {
    static let limit = Schema(types: [.integer, .string], pattern: Schema.Rule(regex: "^-?[0-9]+$"), minimum: -1, maximum: 2_147_483_647)
    static let update = Schema.object([("quota_set", .object(Quotas.resources.map { ($0, limit) } + [("force", NovaTypes.boolean)]))],
                                      required: ["quota_set"])
}

/// `PUT /os-services/{id}` (2.53+).
enum ServiceSchemas {
    static let update = Schema.object([
        ("status", .choice(["enabled", "disabled"], types: [.string])), ("disabled_reason", .string(minLength: 1, maxLength: 255)),
        ("forced_down", NovaTypes.boolean),
    ])
}

/// `POST /servers/{id}/os-interface` (2.49 adds the device tag).
enum InterfaceSchemas {
    static func create(_ version: Microversion) -> Schema { creates[version] }
    private static let creates = PerMicroversion { version in
        let fixedIP = Schema.object([("ip_address", NovaTypes.ipAddress)], required: ["ip_address"])
        var fields: [(String, Schema)] = [("net_id", NovaTypes.uuid), ("port_id", NovaTypes.uuid),
                                          ("fixed_ips", .array(fixedIP, minItems: 1, maxItems: 1))]
        if version >= Microversion(2, 49) { fields.append(("tag", NovaTypes.tag)) }
        return .object([("interfaceAttachment", .object(fields))])
    }
}

/// Flavor extra specs (before 2.86's per-spec validation) and the access actions.
enum FlavorExtraSpecSchemas {
    /// A spec's value: a string of at most 255 characters (empty too) or a number, as Nova's.
    static let value = Schema(types: [.string, .number], maxLength: 255)
    static let specs = Schema.map(keys: NovaTypes.metadataKey, values: value)
    static let create = Schema.object([("extra_specs", specs)], required: ["extra_specs"])
    /// `PUT …/os-extra_specs/{key}`: one spec.
    static let update = Schema(types: [.object], additional: .some(nil), keyRule: (NovaTypes.metadataKey, value), minProperties: 1, maxProperties: 1)
    static let access = Schema.object([("tenant", .string(minLength: 1, maxLength: 255))], required: ["tenant"])
    static let action = Schema.object([("addTenantAccess", access), ("removeTenantAccess", access)], additional: true)
}

/// `POST /servers/{id}/action`: Nova's schema of each action this cloud runs, as the member
/// naming it (the route refuses an action it does not know, and more than one). The actions
/// without arguments take anything, as Nova's still do.
enum ServerActionSchemas {
    static func action(_ version: Microversion) -> Schema { actions[version] }
    private static let actions = PerMicroversion(build)

    private static func build(_ version: Microversion) -> Schema {
        var rebuild: [(String, Schema)] = [
            ("name", NovaTypes.name), ("imageRef", NovaTypes.uuid), ("adminPass", .string()), ("metadata", NovaTypes.metadata),
            ("preserve_ephemeral", NovaTypes.boolean), ("OS-DCF:diskConfig", NovaTypes.diskConfig),
            ("accessIPv4", NovaTypes.accessIPv4), ("accessIPv6", NovaTypes.accessIPv6),
        ]
        if version < Microversion(2, 57) {
            rebuild.append(("personality", .array(.object([("path", .string()), ("contents", .string(format: .base64))]))))
        }
        if version >= Microversion(2, 19) { rebuild.append(("description", NovaTypes.description)) }
        if version >= Microversion(2, 54) {
            rebuild.append(("key_name", .oneOf(.string(minLength: 1, maxLength: 255), .null)))
        }
        if version >= Microversion(2, 57) {
            rebuild.append(("user_data", Schema(types: [.string, .null], maxLength: 65_535, format: .base64)))
        }
        if version >= Microversion(2, 63) {
            rebuild.append(("trusted_image_certificates", Schema(types: [.array, .null], items: .string(minLength: 1), minItems: 1,
                                                                 maxItems: 50, uniqueItems: true)))
        }
        if version >= Microversion(2, 90) { rebuild.append(("hostname", NovaTypes.hostname(version))) }
        // `unshelve`: null (anything before 2.77), then a zone (2.77), then a host and a null zone (2.91).
        let unshelve: Schema
        if version >= Microversion(2, 91) {
            unshelve = Schema(types: [.object, .null], properties: [("availability_zone", Schema(types: [.string, .null])),
                                                                     ("host", NovaTypes.hostname(Microversion(2, 94)))],
                              additional: .some(nil), minProperties: 1)
        } else if version >= Microversion(2, 77) {
            unshelve = Schema(types: [.object, .null], properties: [("availability_zone", .string())], required: ["availability_zone"],
                              additional: .some(nil))
        } else {
            unshelve = Schema()
        }
        // `lock` takes anything before 2.73, then null or a reason; `unlock` anything.
        let lock = version >= Microversion(2, 73)
            ? Schema(types: [.object, .null], properties: [("locked_reason", .string(minLength: 1, maxLength: 255))], additional: .some(nil))
            : Schema()
        let securityGroup = Schema.object([("name", .string(minLength: 1))], required: ["name"])
        // `migrate`: anything before 2.56 (ignored), then null or a host an admin names.
        let migrate = version >= Microversion(2, 56)
            ? Schema(types: [.object, .null], properties: [("host", Schema(types: [.string, .null], minLength: 1, maxLength: 255))],
                     additional: .some(nil))
            : Schema()
        return .object([
            ("resize", Schema.object([("flavorRef", NovaTypes.flavorRef), ("OS-DCF:diskConfig", NovaTypes.diskConfig)],
                                     required: ["flavorRef"], additional: false)),
            ("confirmResize", Schema()), ("revertResize", Schema()), ("migrate", migrate),
            ("rescue", Schema(types: [.object, .null], properties: [("adminPass", .string()), ("rescue_image_ref", NovaTypes.uuid)],
                              additional: .some(nil))),
            ("unrescue", Schema()), ("restore", Schema()), ("forceDelete", Schema()),
            ("createBackup", Schema.object([("name", NovaTypes.name), ("backup_type", .string()),
                                            ("rotation", Schema(types: [.integer, .string], pattern: Schema.Rule(regex: "^[0-9]+$"), minimum: 0)),
                                            ("metadata", NovaTypes.metadata)],
                                           required: ["name", "backup_type", "rotation"], additional: false)),
            ("reboot", .object([("type", .choice(["HARD", "Hard", "hard", "SOFT", "Soft", "soft"], types: [.string]))], required: ["type"])),
            ("rebuild", .object(rebuild, required: ["imageRef"])),
            ("createImage", .object([("name", NovaTypes.name), ("metadata", NovaTypes.metadata)], required: ["name"])),
            ("os-getConsoleOutput", .object([("length", Schema(types: [.integer, .string, .null], pattern: Schema.Rule(regex: "^-?[0-9]+$"),
                                                                minimum: -1))])),
            ("addSecurityGroup", securityGroup), ("removeSecurityGroup", securityGroup),
            ("lock", lock), ("unlock", Schema()),
            ("shelve", Schema()), ("shelveOffload", Schema()), ("unshelve", unshelve),
        ], additional: true)
    }
}
