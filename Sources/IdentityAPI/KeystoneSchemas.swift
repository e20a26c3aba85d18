import PetrelHTTP

/// The bodies Keystone's write routes take, written from Keystone's published request schemas.
/// Keystone checks its resources (domains, projects, users, groups, roles, the catalog,
/// application credentials) before the handler, and words a refusal as Nova does ("Invalid
/// input for field/attribute x. Value: … . <reason>"); token requests and password changes
/// are checked against the object inside the body and worded the older way ("Invalid input
/// for field 'identity/methods': …"). Each resource object keeps the attributes it does not
/// list (Keystone stores them as extras), unless the schema says otherwise.
enum KeystoneSchemas {
    // MARK: the parts

    /// The values Keystone's boolean takes: JSON's, or the strings oslo reads as one.
    static let booleanValues: [JSON] = [true, "True", "TRUE", "true", false, "False", "FALSE", "false", "", "1", "0", "y", "Y", "n", "N",
                                        "on", "ON", "off", "OFF", "yes", "no"]
    /// Keystone's boolean (null passes its type but not its values, so it is refused).
    static let boolean = Schema.choice(booleanValues, types: [.boolean, .string, .null])
    /// The same, where null resets (resource options).
    static let nullableBoolean = Schema.choice(booleanValues + [nil], types: [.boolean, .string, .null])

    /// A name: something besides white space, within `maxLength`.
    static func name(maxLength: Int) -> Schema {
        .string(minLength: 1, maxLength: maxLength, pattern: Schema.Rule(regex: "[\\S]+"))
    }

    /// An id a client may choose (a domain's, a project's parent): letters, digits and dashes.
    static let idPattern = Schema.Rule(regex: "^[a-zA-Z0-9-]+$")
    static let id = Schema.string(minLength: 1, maxLength: 64, pattern: idPattern)
    static let nullableID = Schema(types: [.string, .null], minLength: 1, maxLength: 64, pattern: idPattern)
    static let nullableString = Schema(types: [.string, .null])

    /// A project or domain tag, as the API working group's guideline has them.
    static let tag = Schema.string(minLength: 1, maxLength: 255, pattern: Schema.Rule(regex: "^[^,/]*$"))
    static let tags = Schema.array(tag, maxItems: 80, unique: true)

    /// The options of a project, a domain or a role (Keystone's resource options registry).
    static let immutableOption = Schema.object([("immutable", nullableBoolean)])
    /// A user's options.
    static let userOptions = Schema.object([
        ("ignore_change_password_upon_first_use", nullableBoolean), ("ignore_password_expiry", nullableBoolean),
        ("ignore_lockout_failure_attempts", nullableBoolean), ("lock_password", nullableBoolean),
        ("ignore_user_inactivity", nullableBoolean),
        ("multi_factor_auth_rules", Schema(types: [.array, .null],
                                           items: .array(.string(), minItems: 1, unique: true), uniqueItems: true)),
        ("multi_factor_auth_enabled", nullableBoolean),
    ])

    /// `{"<key>": {…}}`: the body of a create or update, nothing beside the resource.
    static func wrapped(_ key: String, _ resource: Schema) -> Schema {
        .object([(key, resource)], required: [key])
    }

    // MARK: domains and projects

    static let domainProperties: [(String, Schema)] = [
        ("enabled", boolean), ("name", name(maxLength: 64)), ("options", immutableOption), ("tags", tags),
    ]
    static let domainCreate = wrapped("domain", .object([("explicit_domain_id", id)] + domainProperties,
                                                        required: ["name"], additional: true))
    static let domainUpdate = wrapped("domain", .object(domainProperties, additional: true, minProperties: 1))

    static let projectCreate = wrapped("project", .object([
        ("description", nullableString), ("domain_id", nullableID), ("enabled", boolean), ("is_domain", boolean),
        ("parent_id", nullableID), ("name", name(maxLength: 64)), ("tags", tags), ("options", immutableOption),
    ], required: ["name"], additional: true))
    /// What may change; the tree (`parent_id`, `domain_id`, `is_domain`) and the id are refused
    /// by the handler in Keystone's words when they differ from the project's.
    static let projectUpdate = wrapped("project", .object([
        ("description", nullableString), ("enabled", boolean), ("name", name(maxLength: 64)), ("options", immutableOption),
        ("tags", tags),
    ], additional: true))

    // MARK: users and groups

    static let userProperties: [(String, Schema)] = [
        ("default_project_id", nullableString), ("description", nullableString), ("domain_id", id), ("enabled", boolean),
        ("federated", .array(.object([
            ("idp_id", .string()),
            ("protocols", .array(.object([("protocol_id", .string()), ("unique_id", .string())],
                                         required: ["protocol_id", "unique_id"], additional: true), minItems: 1)),
        ], required: ["idp_id", "protocols"], additional: true))),
        ("name", name(maxLength: 255)), ("password", nullableString), ("options", userOptions),
    ]
    static let userCreate = wrapped("user", .object(userProperties, required: ["name"], additional: true))
    static let userUpdate = wrapped("user", .object(userProperties, additional: true, minProperties: 1))

    static let groupCreate = wrapped("group", .object([
        ("domain_id", id), ("description", nullableString), ("name", name(maxLength: 255)),
    ], required: ["name"], additional: true))
    static let groupUpdate = wrapped("group", .object([("description", nullableString), ("name", name(maxLength: 255))],
                                                      additional: true, minProperties: 1))

    /// A password change: `body.user` against Keystone's older schema, worded the older way.
    static let passwordChange = inner("user", .object([("original_password", .string()), ("password", .string())],
                                                      required: ["original_password", "password"]))

    // MARK: roles

    static let roleProperties: [(String, Schema)] = [
        ("name", name(maxLength: 255)), ("description", nullableString), ("domain_id", nullableID), ("options", immutableOption),
    ]
    static let roleCreate = wrapped("role", .object(roleProperties, required: ["name"], additional: true))
    static let roleUpdate = wrapped("role", .object(roleProperties, additional: true, minProperties: 1))

    // MARK: the catalog

    static let regionID = Schema(types: [.string, .null], minLength: 1, maxLength: 255)
    /// A region made by POST or PUT; its id may be empty (a new one is chosen).
    static let regionCreate = wrapped("region", .object([
        ("description", Schema(types: [.string, .null], maxLength: 255)),
        ("id", Schema(types: [.string, .null], minLength: 0, maxLength: 255)), ("parent_region_id", regionID),
    ], additional: true))
    static let regionUpdate = wrapped("region", .object([
        ("description", Schema(types: [.string, .null], maxLength: 255)), ("id", regionID), ("parent_region_id", regionID),
    ], additional: true, minProperties: 1))

    static let serviceProperties: [(String, Schema)] = [
        ("enabled", .boolean), ("type", .string(minLength: 1, maxLength: 255)), ("name", .string(minLength: 1, maxLength: 255)),
    ]
    static let serviceCreate = wrapped("service", .object(serviceProperties, required: ["type"], additional: true))
    static let serviceUpdate = wrapped("service", .object(serviceProperties, additional: true, minProperties: 1))

    static let endpointProperties: [(String, Schema)] = [
        ("enabled", .boolean), ("interface", .choice(["admin", "internal", "public"], types: [.string])),
        ("region_id", nullableString), ("region", nullableString), ("service_id", .string()),
        ("url", .string(minLength: 0, maxLength: 225, pattern: Schema.Rule(regex: "^[a-zA-Z0-9+.-]+:.+"))),
        ("name", .string()), ("description", nullableString),
    ]
    static let endpointCreate = wrapped("endpoint", .object([("id", .string())] + endpointProperties,
                                                            required: ["interface", "service_id", "url"], additional: true))
    static let endpointUpdate = wrapped("endpoint", .object(endpointProperties, additional: true, minProperties: 1))

    // MARK: application credentials

    /// Closed, as Keystone's is. Access rules are read (and refused by the handler while they
    /// are not enforced).
    static let applicationCredentialCreate = wrapped("application_credential", .object([
        ("id", .string()), ("secret", nullableString), ("name", name(maxLength: 255)), ("description", nullableString),
        ("expires_at", nullableString), ("project_id", .string()),
        ("access_rules", .array(.object([
            ("id", id), ("path", .string(minLength: 0, maxLength: 225, pattern: Schema.Rule(regex: "^/\\.*"))), ("service", id),
            ("method", .choice(["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"], types: [.string])),
        ], additional: true))),
        ("unrestricted", Schema(types: [.boolean, .null])), ("system", nullableString),
        ("roles", .array(.object([("id", id), ("name", name(maxLength: 255))], minProperties: 1, maxProperties: 1))),
    ], required: ["name"]))

    // MARK: queries

    /// The list routes' filters, as Keystone's query schemas have them: each parameter's first
    /// value, checked as a body would be; other parameters pass (Keystone's comparators,
    /// `name__icontains` and the like), except where a schema is closed.
    static let limitAndMarker: [(String, Schema)] = [("marker", .string()), ("limit", Schema(types: [.integer, .string]))]
    static let domainsQuery = QuerySchema(.object([("enabled", boolean), ("name", name(maxLength: 64))] + limitAndMarker,
                                                  additional: true), reading: .firstValues)
    static let projectsQuery = QuerySchema(.object([
        ("domain_id", id), ("enabled", boolean), ("name", name(maxLength: 64)), ("parent_id", .string()), ("is_domain", boolean),
        ("tags", .string()), ("tags-any", .string()), ("not-tags", .string()), ("not-tags-any", .string()),
    ] + limitAndMarker, additional: true), reading: .firstValues)
    static let usersQuery = QuerySchema(.object([
        ("domain_id", id), ("enabled", boolean), ("idp_id", .string()), ("name", name(maxLength: 255)),
        ("password_expires_at", .string()), ("protocol_id", .string()), ("unique_id", .string()),
    ] + limitAndMarker, additional: true), reading: .firstValues)
    static let groupsQuery = QuerySchema(.object([
        ("domain_id", id), ("name", name(maxLength: 255)), ("sort_key", .string()),
        ("sort_dir", .choice(["asc", "desc"], types: [.string])),
    ] + limitAndMarker, additional: true), reading: .firstValues)
    static let rolesQuery = QuerySchema(.object([("name", name(maxLength: 255)), ("domain_id", id)], additional: true),
                                        reading: .firstValues)
    /// Closed: a region list takes its parent's id and nothing else.
    static let regionsQuery = QuerySchema(.object([("parent_region_id", regionID)]), reading: .firstValues)
    static let servicesQuery = QuerySchema(.object([], additional: true), reading: .firstValues)
    static let endpointsQuery = QuerySchema(.object([
        ("interface", .choice(["admin", "internal", "public"], types: [.string])), ("region_id", nullableString),
        ("service_id", .string()),
    ], additional: true), reading: .firstValues)

    // MARK: tokens

    static let domainReference = Schema.object([("id", .string()), ("name", .string())], additional: true)

    /// `body.auth` of a token request, against Keystone's token schema (the rest of the
    /// request, which method and which scope, is the handler's to judge).
    static let tokenIssue = inner("auth", .object([
        ("identity", .object([
            ("methods", .array(.string())),
            ("password", .object([("user", .object([
                ("id", .string()), ("name", .string()), ("password", .string()), ("domain", domainReference),
            ], additional: true))], additional: true)),
            ("token", .object([("id", .string())], required: ["id"], additional: true)),
        ], required: ["methods"], additional: true)),
        ("scope", Schema(types: [.object, .string], properties: [
            ("project", .object([("name", .string()), ("id", .string()), ("domain", domainReference)], additional: true)),
            ("domain", domainReference),
            ("OS-TRUST:trust", .object([("id", .string())], additional: true)),
            ("system", .object([("all", boolean)], additional: true)),
        ])),
    ], required: ["identity"], additional: true)) { auth in
        // Keystone's own rule: a user, a project or a domain is named by id or by name.
        func named(_ value: JSON?, _ field: String) -> APIFault? {
            guard let object = value?.objectValue, object["id"] == nil, object["name"] == nil else { return nil }
            return APIFault(.badRequest, "Invalid input for field \(field): id or name must be present.")
        }
        let user = auth["identity"]?["password"]?["user"]
        let scope = auth["scope"]
        return named(user, "identity/password/user") ?? named(user?["domain"], "identity/password/user/domain")
            ?? named(scope?["project"], "scope/project") ?? named(scope?["project"]?["domain"], "scope/project/domain")
            ?? named(scope?["domain"], "scope/domain")
    }

    /// A body whose `key` object (an empty one when absent) is checked against `schema` and
    /// refused in Keystone's older words, with paths from inside it.
    static func inner(_ key: String, _ schema: Schema, also: (@Sendable (JSON) -> APIFault?)? = nil) -> Schema {
        Schema(types: [.object], fault: { body in
            let value = body[key] ?? .object([:])
            if let violation = schema.violation(value) { return violation.fault(.keystone) }
            return also?(value)
        })
    }
}
