import Foundation
import PetrelHTTP

/// The parameter types Cinder's request schemas are made of (its `parameter_types`), as far
/// as the action and attachment routes use them.
enum CinderTypes {
    /// Cinder's booleans: true/false or one of their spellings as strings (a few more than Nova's:
    /// `y`, `t`, `n`, `f`).
    static let boolean = Schema.choice([true, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t",
                                        false, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f"],
                                       types: [.boolean, .string])

    static let uuid = Schema.string(format: .uuid)
    static let uuidOrNull = Schema.oneOf(uuid, .null)

    /// A printable character as Cinder's description pattern has it: no control, format,
    /// surrogate, private-use or unassigned code point, no line or paragraph separator, and
    /// nothing past the Basic Multilingual Plane (the pattern's ranges end at U+FFFE).
    static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        guard scalar.value < 0xFFFF else { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator: return false
        default: return true
        }
    }

    /// Free text of at most 255 printable characters, or null.
    static let description = Schema(types: [.string, .null], minLength: 0, maxLength: 255,
                                    pattern: Schema.Rule("^[printable]*$") { $0.unicodeScalars.allSatisfy(isPrintable) })

    /// A size in GB: an integer, or a string of digits, from 1 to the database's largest int.
    /// Cinder's validator holds a digit string's number to the bounds as well.
    static func volumeSize(_ field: String) -> Schema {
        let maximum = 2_147_483_647.0
        return Schema(types: [.integer, .string], pattern: Schema.Rule(regex: "^[0-9]+$"), minimum: 1, maximum: maximum, fault: { value in
            guard case .string(let text) = value, let number = Double(text) else { return nil }
            let digits = String(text.drop { $0 == "0" })
            let shown = digits.isEmpty ? "0" : digits
            if number < 1 {
                return APIFault(.badRequest, "Invalid input for field/attribute \(field). Value: \(text). \(shown) is less than the minimum of 1")
            }
            if number > maximum {
                return APIFault(.badRequest,
                                "Invalid input for field/attribute \(field). Value: \(text). \(shown) is greater than the maximum of 2147483647")
            }
            return nil
        })
    }

    /// A status string Cinder checks with one of its formats (`volume_status`, …): one of
    /// `valid` whatever its case; null, and (unless `required`) the empty string, pass.
    static func status(_ field: String, format: String, valid: Set<String>, nullable: Bool = true, required: Bool = false) -> Schema {
        Schema(types: nullable ? [.string, .null] : [.string], fault: { value in
            guard case .string(let text) = value else { return nil }
            if text.isEmpty ? !required : valid.contains(text.lowercased()) { return nil }
            return APIFault(.badRequest, "Invalid input for field/attribute \(field). Value: \(text). \(value.pythonRepr) is not a '\(format)'")
        })
    }
}

/// The request schemas of `POST /volumes/{id}/action`: one property per action the route
/// runs, each with Cinder's schema for it (`volume_actions`, `admin_actions`); any other
/// action passes to the handler, which answers it as it does, and Cinder's one-action rule
/// stays there too.
enum VolumeActionSchemas {
    static let volumeStatuses: Set<String> = [
        "creating", "available", "deleting", "error", "error_deleting", "error_managing", "managing", "attaching", "in-use",
        "detaching", "maintenance", "restoring-backup", "error_restoring", "reserved", "awaiting-transfer", "backing-up",
        "error_backing-up", "error_extending", "downloading", "uploading", "retyping", "extending",
    ]
    static let migrationStatuses: Set<String> = ["migrating", "error", "success", "completing", "none", "starting"]

    static let extend = Schema.object([("new_size", CinderTypes.volumeSize("new_size"))], required: ["new_size"])

    /// At least one of the three statuses, each one Cinder knows.
    static let resetStatus = Schema(types: [.object], properties: [
        ("status", CinderTypes.status("status", format: "volume_status", valid: volumeStatuses)),
        ("attach_status", CinderTypes.status("attach_status", format: "volume_attach_status", valid: ["attached", "detached"])),
        ("migration_status", CinderTypes.status("migration_status", format: "volume_migration_status", valid: migrationStatuses)),
    ], additional: .some(nil), fault: { value in
        let given = ["status", "attach_status", "migration_status"].contains { !(value[$0]?.stringValue ?? "").isEmpty }
        return given ? nil : APIFault(.badRequest, "Invalid input for field/attribute os-reset_status. Value: \(value.pythonStr). "
                                          + "\(value.pythonRepr) is not a 'validate_volume_reset_body'")
    })

    static let setBootable = Schema.object([("bootable", CinderTypes.boolean)], required: ["bootable"])

    /// The upload's arguments; `visibility` and `protected` from 3.1, as Cinder takes them.
    static func uploadImage(visibility: Bool) -> Schema {
        var fields: [(String, Schema)] = [
            ("image_name", .string(minLength: 1, maxLength: 255)),
            ("force", CinderTypes.boolean),
            ("disk_format", .choice(["raw", "vmdk", "vdi", "qcow2", "vhd", "vhdx", "ploop"], types: [.string])),
            ("container_format", CinderTypes.description),
        ]
        if visibility {
            fields += [("visibility", .choice(["community", "public", "private", "shared"], types: [.string])),
                       ("protected", CinderTypes.boolean)]
        }
        return .object(fields, required: ["image_name"])
    }

    /// An instance or a host to attach to, at a mount point.
    static let attach = Schema(types: [.object], properties: [
        ("instance_uuid", CinderTypes.uuid),
        ("mountpoint", .string(minLength: 1, maxLength: 255)),
        ("host_name", .string(maxLength: 255)),
        ("mode", .choice(["rw", "ro"], types: [.string])),
    ], required: ["mountpoint"], additional: .some(nil), fault: { value in
        // Cinder's anyOf: instance_uuid or host_name.
        guard value["instance_uuid"] == nil, value["host_name"] == nil else { return nil }
        return APIFault(.badRequest, "Invalid input for field/attribute os-attach. Value: \(value.pythonStr). "
                            + "\(value.pythonRepr) is not valid under any of the given schemas")
    })

    static let detach = Schema(types: [.object, .null], properties: [("attachment_id", CinderTypes.uuidOrNull)], additional: .some(nil))
    static let initializeConnection = Schema.object([("connector", Schema(types: [.object, .string]))], required: ["connector"])
    static let terminateConnection = Schema.object([("connector", Schema(types: [.string, .object, .null]))], required: ["connector"])

    static func action(_ version: Microversion) -> Schema { version >= Microversion(3, 1) ? action31 : action30 }
    private static let action30 = build(visibility: false)
    private static let action31 = build(visibility: true)

    private static func build(visibility: Bool) -> Schema {
        .object([
            ("os-extend", extend),
            ("os-reset_status", resetStatus),
            ("os-force_delete", .any),
            ("os-set_bootable", setBootable),
            ("os-volume_upload_image", uploadImage(visibility: visibility)),
            ("os-reserve", .any),
            ("os-unreserve", .any),
            ("os-initialize_connection", initializeConnection),
            ("os-attach", attach),
            ("os-begin_detaching", .any),
            ("os-roll_detaching", .any),
            ("os-detach", detach),
            ("os-terminate_connection", terminateConnection),
        ], additional: true)
    }
}

/// `POST /backups/{id}/action`: an administrator's `os-reset_status` (available or error) and
/// `os-force_delete`.
enum BackupActionSchemas {
    static let resetStatus = Schema.object([
        ("status", CinderTypes.status("status", format: "backup_status", valid: ["available", "error"], nullable: false, required: true)),
    ], required: ["status"])

    static let action = Schema.object([("os-reset_status", resetStatus), ("os-force_delete", .any)], additional: true)
}

/// `POST /types/{type}/action`: sharing a private type with a project, or no longer.
enum TypeActionSchemas {
    static let projectAccess = Schema.object([("project", .string(minLength: 1, maxLength: 255))], required: ["project"])
    static let action = Schema.object([("addProjectAccess", projectAccess), ("removeProjectAccess", projectAccess)], additional: true)
}

/// The attachments API (3.27+): create (`mode` from 3.54), update with a connector, and the
/// `os-complete` action (3.44).
enum AttachmentSchemas {
    /// os-brick's connector: what Petrel reads of it is checked (the host it is on, the mode it
    /// asks for); the rest (initiator, ip, platform, multipath, …) is the consumer's.
    static let connectorFields: [(String, Schema)] = [
        ("host", Schema(types: [.string, .null])), ("mode", Schema(types: [.string, .null], choices: ["rw", "ro", nil])),
    ]

    /// A reservation (no connector, or an empty one) or a connection.
    static let createConnector = Schema(types: [.object, .null], properties: connectorFields)
    static let updateConnector = Schema(types: [.object], properties: connectorFields, minProperties: 1)

    private static func buildCreate(mode: Bool) -> Schema {
        var fields: [(String, Schema)] = [("instance_uuid", CinderTypes.uuid), ("connector", createConnector), ("volume_uuid", CinderTypes.uuid)]
        if mode { fields.append(("mode", .choice(["rw", "ro"], types: [.string]))) }
        return .object([("attachment", .object(fields, required: ["volume_uuid"]))], required: ["attachment"])
    }

    private static let createBefore354 = buildCreate(mode: false)
    private static let create354 = buildCreate(mode: true)

    /// `POST /attachments` at `version`.
    static func create(_ version: Microversion) -> Schema { version >= Microversion(3, 54) ? create354 : createBefore354 }

    static let update = Schema.object([("attachment", .object([("connector", updateConnector)], required: ["connector"]))],
                                      required: ["attachment"])

    static let action = Schema.object([("os-complete", .any)], additional: true)
}
