import Foundation
import SQLKit
import Store

/// Keystone's domain-specific configuration (`/v3/domains/{id}/config`): the identity options a
/// domain may set for itself, which Keystone's identity manager reads to give a domain its own
/// backend. Only Keystone's lists are accepted: the `identity` group (`driver`, `list_limit`)
/// and the `ldap` group, whose `password` is sensitive (stored, never shown). Values are any
/// JSON, kept as JSON text. Petrel has one identity backend (its SQL tables), so a domain's
/// configuration is kept and shown, and does not change how its users are found.
public enum DomainConfiguration {
    /// One option of a configuration: its group, name and value (JSON text).
    public struct Option: Sendable, Equatable {
        public let group: String
        public let name: String
        public let value: String

        public init(group: String, name: String, value: String) { self.group = group; self.name = name; self.value = value }
    }

    /// One group of a request's `config`: its options (name, JSON text), or nil when its value
    /// is not a non-empty object of options.
    public struct RequestGroup: Sendable {
        public let name: String
        public let options: [(name: String, value: String)]?

        public init(name: String, options: [(name: String, value: String)]?) { self.name = name; self.options = options }
    }

    /// The options a domain may set and read back, by group, in Keystone's order.
    public static let shown: [(group: String, options: [String])] = [
        ("identity", ["driver", "list_limit"]),
        ("ldap", ["url", "user", "suffix", "query_scope", "page_size", "alias_dereferencing", "debug_level", "chase_referrals",
                  "user_tree_dn", "user_filter", "user_objectclass", "user_id_attribute", "user_name_attribute",
                  "user_mail_attribute", "user_description_attribute", "user_pass_attribute", "user_enabled_attribute",
                  "user_enabled_invert", "user_enabled_mask", "user_enabled_default", "user_attribute_ignore",
                  "user_default_project_id_attribute", "user_enabled_emulation", "user_enabled_emulation_dn",
                  "user_enabled_emulation_use_group_config", "user_additional_attribute_mapping", "group_tree_dn",
                  "group_filter", "group_objectclass", "group_id_attribute", "group_name_attribute", "group_members_are_ids",
                  "group_member_attribute", "group_desc_attribute", "group_attribute_ignore",
                  "group_additional_attribute_mapping", "tls_cacertfile", "tls_cacertdir", "use_tls", "tls_req_cert", "use_pool",
                  "pool_size", "pool_retry_max", "pool_retry_delay", "pool_connection_timeout", "pool_connection_lifetime",
                  "use_auth_pool", "auth_pool_size", "auth_pool_connection_lifetime"]),
    ]

    /// The options a domain may set that are stored but never shown.
    public static let sensitive: [String: Set<String>] = ["identity": [], "ldap": ["password"]]

    /// What a domain without a configuration of its own uses (JSON text): the SQL identity
    /// backend, no list limit, and Keystone's stock `[ldap]` settings.
    public static let defaults: [String: String] = [
        "identity.driver": #""sql""#, "identity.list_limit": "null",
        "ldap.url": #""ldap://localhost""#, "ldap.user": "null", "ldap.suffix": #""cn=example,cn=com""#,
        "ldap.query_scope": #""one""#, "ldap.page_size": "0", "ldap.alias_dereferencing": #""default""#,
        "ldap.debug_level": "null", "ldap.chase_referrals": "null", "ldap.user_tree_dn": "null", "ldap.user_filter": "null",
        "ldap.user_objectclass": #""inetOrgPerson""#, "ldap.user_id_attribute": #""cn""#, "ldap.user_name_attribute": #""sn""#,
        "ldap.user_mail_attribute": #""mail""#, "ldap.user_description_attribute": #""description""#,
        "ldap.user_pass_attribute": #""userPassword""#, "ldap.user_enabled_attribute": #""enabled""#,
        "ldap.user_enabled_invert": "false", "ldap.user_enabled_mask": "0", "ldap.user_enabled_default": #""True""#,
        "ldap.user_attribute_ignore": #"["default_project_id"]"#, "ldap.user_default_project_id_attribute": "null",
        "ldap.user_enabled_emulation": "false", "ldap.user_enabled_emulation_dn": "null",
        "ldap.user_enabled_emulation_use_group_config": "false", "ldap.user_additional_attribute_mapping": "[]",
        "ldap.group_tree_dn": "null", "ldap.group_filter": "null", "ldap.group_objectclass": #""groupOfNames""#,
        "ldap.group_id_attribute": #""cn""#, "ldap.group_name_attribute": #""ou""#, "ldap.group_members_are_ids": "false",
        "ldap.group_member_attribute": #""member""#, "ldap.group_desc_attribute": #""description""#,
        "ldap.group_attribute_ignore": "[]", "ldap.group_additional_attribute_mapping": "[]", "ldap.tls_cacertfile": "null",
        "ldap.tls_cacertdir": "null", "ldap.use_tls": "false", "ldap.tls_req_cert": #""demand""#, "ldap.use_pool": "true",
        "ldap.pool_size": "10", "ldap.pool_retry_max": "3", "ldap.pool_retry_delay": "0.1", "ldap.pool_connection_timeout": "-1",
        "ldap.pool_connection_lifetime": "600", "ldap.use_auth_pool": "true", "ldap.auth_pool_size": "100",
        "ldap.auth_pool_connection_lifetime": "60",
    ]

    static func invalid(_ reason: String) -> IdentityError { .forbidden("Invalid domain specific configuration: \(reason).") }

    static func isShown(_ group: String, _ option: String) -> Bool {
        shown.contains { $0.group == group && $0.options.contains(option) }
    }

    static func isSensitive(_ group: String, _ option: String) -> Bool { sensitive[group]?.contains(option) == true }

    /// A group (and option) a domain may configure; 403 in Keystone's words otherwise.
    static func check(group: String?, option: String?) throws {
        guard let group else { return }
        guard shown.contains(where: { $0.group == group }) || sensitive[group] != nil else {
            throw invalid("Group \(group) is not supported for domain specific configurations")
        }
        if let option, !isShown(group, option), !isSensitive(group, option) {
            throw invalid("Option \(option) in group \(group) is not supported for domain specific configurations")
        }
    }

    /// A request's configuration: something, each group an object of options it may set.
    static func check(_ config: [RequestGroup]) throws {
        guard !config.isEmpty else { throw invalid("No options specified") }
        for group in config {
            guard let options = group.options else {
                throw invalid("The value of group \(group.name) specified in the config should be a dictionary of options")
            }
            for option in options { try check(group: group.name, option: option.name) }
        }
    }

    /// 404: "Could not find <group or option> in domain configuration for domain <id>."
    static func notFound(domain: String, group: String?, option: String?) -> IdentityError {
        let what = if let group, let option { "option \(option) in group \(group)" } else if let group { "group \(group)" } else { "any options" }
        return .missing("Could not find \(what) in domain configuration for domain \(domain).")
    }

    /// The defaults of every group, one group, or one option (which must be one that is shown).
    public static func defaultOptions(group: String?, option: String?) throws -> [Option] {
        try check(group: group, option: option)
        if let group, let option, !isShown(group, option) {
            throw invalid("Reading the default for option \(option) in group \(group) is not supported")
        }
        return shown.filter { group == nil || $0.group == group }.flatMap { entry in
            entry.options.filter { option == nil || $0 == option }.map { Option(group: entry.group, name: $0, value: defaults["\(entry.group).\($0)"] ?? "null") }
        }
    }

    static func rows(_ domainID: String, _ config: [RequestGroup]) -> [DomainConfigRow] {
        config.flatMap { group in
            (group.options ?? []).map {
                DomainConfigRow(domainID: domainID, groupName: group.name, optionName: $0.name, value: $0.value,
                                sensitive: isSensitive(group.name, $0.name))
            }
        }
    }
}

extension IdentityService {
    func requireDomain(_ sql: any SQLDatabase, _ id: String) async throws {
        guard try await IdentityTables.domains.get(sql, id: id) != nil else { throw IdentityError.notFound(kind: "domain", id: id) }
    }

    /// The stored options of a domain (`sensitive`: the hidden ones too), of one group or option.
    static func domainOptions(_ sql: any SQLDatabase, _ domainID: String, group: String?, option: String?,
                              sensitive: Bool) async throws -> [DomainConfigRow] {
        var conditions: [Table<DomainConfigRow>.Condition] = [.equals("domain_id", domainID)]
        if let group { conditions.append(.equals("group_name", group)) }
        if group != nil, let option { conditions.append(.equals("option_name", option)) }
        if !sensitive { conditions.append(.equals("sensitive", false)) }
        let rows = try await IdentityTables.domainConfig.all(sql, where: conditions)
        // Keystone's order: groups and options as its lists have them.
        let order = DomainConfiguration.shown.flatMap { entry in entry.options.map { "\(entry.group).\($0)" } }
        func rank(_ row: DomainConfigRow) -> Int { order.firstIndex(of: "\(row.groupName).\(row.optionName)") ?? order.count }
        return rows.sorted { rank($0) < rank($1) }
    }

    static func shown(_ rows: [DomainConfigRow]) -> [DomainConfiguration.Option] {
        rows.filter { !$0.sensitive }.map { .init(group: $0.groupName, name: $0.optionName, value: $0.value) }
    }

    /// A domain's shown options (all, one group's, or one); 404 when there are none.
    public func domainConfig(_ domainID: String, group: String?, option: String?) async throws -> [DomainConfiguration.Option] {
        try DomainConfiguration.check(group: group, option: option)
        let rows = try await read { sql in
            try await self.requireDomain(sql, domainID)
            return try await Self.domainOptions(sql, domainID, group: group, option: option, sensitive: false)
        }
        guard !rows.isEmpty else { throw DomainConfiguration.notFound(domain: domainID, group: group, option: option) }
        return Self.shown(rows)
    }

    /// Replaces a domain's configuration; returns its shown options and whether it had none before.
    public func replaceDomainConfig(_ domainID: String, with config: [DomainConfiguration.RequestGroup]) async throws
        -> (options: [DomainConfiguration.Option], created: Bool) {
        try await write { sql in
            try await self.requireDomain(sql, domainID)
            try DomainConfiguration.check(config)
            let removed = try await IdentityTables.domainConfig.delete(sql, where: [.equals("domain_id", domainID)])
            for row in DomainConfiguration.rows(domainID, config) { try await IdentityTables.domainConfig.insert(sql, row) }
            let rows = try await Self.domainOptions(sql, domainID, group: nil, option: nil, sensitive: false)
            return (Self.shown(rows), removed == 0)
        }
    }

    /// Sets the given options of a domain's configuration, keeping the others. Limited to
    /// `group` (and `option`) when given, which must then be all the request names and be set
    /// already. Returns every shown option.
    public func updateDomainConfig(_ domainID: String, with config: [DomainConfiguration.RequestGroup], group: String?,
                                   option: String?) async throws -> [DomainConfiguration.Option] {
        try await write { sql in
            try await self.requireDomain(sql, domainID)
            try DomainConfiguration.check(config)
            try DomainConfiguration.check(group: group, option: option)
            if let group {
                let options = config.first?.options ?? []
                if config.count != 1 || (option != nil && options.count != 1) {
                    if let option {
                        throw DomainConfiguration.invalid("Trying to update option \(option) in group \(group), so that, and only that, option must be specified  in the config")
                    }
                    throw DomainConfiguration.invalid("Trying to update group \(group), so that, and only that, group must be specified in the config")
                }
                guard config[0].name == group else {
                    throw DomainConfiguration.invalid("request to update group \(group), but config provided contains group \(config[0].name) instead")
                }
                if let option, options[0].name != option {
                    throw DomainConfiguration.invalid("Trying to update option \(option) in group \(group), but config provided contains option \(options[0].name) instead")
                }
                if try await Self.domainOptions(sql, domainID, group: group, option: option, sensitive: true).isEmpty {
                    throw DomainConfiguration.notFound(domain: domainID, group: group, option: option)
                }
            }
            for row in DomainConfiguration.rows(domainID, config) {
                try await IdentityTables.domainConfig.delete(sql, where: [
                    .equals("domain_id", domainID), .equals("group_name", row.groupName), .equals("option_name", row.optionName)])
                try await IdentityTables.domainConfig.insert(sql, row)
            }
        }
        // Read after the change, as Keystone does (a configuration of hidden options alone shows nothing: 404).
        return try await domainConfig(domainID, group: nil, option: nil)
    }

    /// Deletes a domain's configuration, one group of it, or one option (which must be set).
    public func deleteDomainConfig(_ domainID: String, group: String?, option: String?) async throws {
        try await write { sql in
            try await self.requireDomain(sql, domainID)
            try DomainConfiguration.check(group: group, option: option)
            if let group {
                let current = try await Self.domainOptions(sql, domainID, group: group, option: nil, sensitive: true)
                if current.isEmpty { throw DomainConfiguration.notFound(domain: domainID, group: group, option: nil) }
                if let option, !current.contains(where: { $0.optionName == option }) {
                    throw DomainConfiguration.notFound(domain: domainID, group: group, option: option)
                }
            }
            var conditions: [Table<DomainConfigRow>.Condition] = [.equals("domain_id", domainID)]
            if let group { conditions.append(.equals("group_name", group)) }
            if group != nil, let option { conditions.append(.equals("option_name", option)) }
            try await IdentityTables.domainConfig.delete(sql, where: conditions)
        }
    }
}
