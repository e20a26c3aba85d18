import Foundation
import PetrelHTTP

/// Nova's types for query parameters. A query is checked as `{name: [value, …]}`, so each
/// parameter is a list of strings: `multi` takes any number of values, `single` at most one.
extension NovaTypes {
    static func multi(_ item: Schema) -> Schema { .array(item) }
    static func single(_ item: Schema) -> Schema { .array(item, maxItems: 1) }

    /// Values taken as they are (Nova's `common_query_param`).
    static let queryParam = multi(.string())
    /// Values that are regular expressions (`common_query_regex_param`): the server list
    /// filters by them.
    static let queryRegexParam = multi(.string(check: formatCheck("regex", isPythonRegex)))
    /// ISO 8601 times (`changes-since`, `changes-before`).
    static let queryDateTimeParam = multi(.string(check: formatCheck("date-time", isISO8601)))

    /// `non_negative_integer` as a query value: digits, at least one. Nova's validator compares
    /// a string's number with `minimum` too, after the pattern (so '-1' breaks the pattern) and
    /// before the length.
    static let nonNegativeInteger: Schema = {
        let minimum = stringMinimum(0), length = lengths(min: 1)
        return Schema(types: [.integer, .string], pattern: Schema.Rule(regex: "^[0-9]*$"), minimum: 0, check: { minimum($0) ?? length($0) })
    }()

    /// `limit` and `marker` (`pagination_parameters`).
    static let pagination: [(String, Schema)] = [("limit", multi(nonNegativeInteger)), ("marker", multi(.string()))]

    /// A host name as Nova's `fqdn`: letters, digits, '-', '.' and '_', 1 to 255 of them. The
    /// lengths are checked after the pattern, in Nova's order.
    static let fqdn = Schema.string(pattern: Schema.Rule("^[a-zA-Z0-9-._]*$") { text in
        text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-._".unicodeScalars.contains($0)) }
    }, check: lengths(min: 1, max: 255))

    /// `minLength` and `maxLength` in jsonschema's words (Python's length: code points), for
    /// where Nova checks them after the pattern. An empty string "should be non-empty", as
    /// jsonschema (4.21 on) says when at least one character is wanted.
    static func lengths(min: Int, max: Int? = nil) -> @Sendable (JSON) -> String? {
        { value in
            guard let count = value.stringValue?.unicodeScalars.count else { return nil }
            if count < min { return "\(value.pythonRepr) \(min == 1 ? "should be non-empty" : "is too short")" }
            if let max, count > max { return "\(value.pythonRepr) is too long" }
            return nil
        }
    }

    /// jsonschema's words for a string its format checker refuses.
    static func formatCheck(_ format: String, _ test: @escaping @Sendable (String) -> Bool) -> @Sendable (JSON) -> String? {
        { value in
            guard let text = value.stringValue, !test(text) else { return nil }
            return "\(value.pythonRepr) is not a '\(format)'"
        }
    }

    /// Nova's `minimum` on a string that spells an integer.
    static func stringMinimum(_ minimum: Int) -> @Sendable (JSON) -> String? {
        { value in
            guard let text = value.stringValue, let number = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                  number < minimum else { return nil }
            return "\(number) is less than the minimum of \(minimum)"
        }
    }

    /// What `iso8601.parse_date` (oslo's `parse_isotime`, Nova's `date-time` format) takes: its
    /// expression, then a real date and time (month, day of the month, 0-23 h, 0-59 min and s,
    /// an offset under a day).
    static func isISO8601(_ text: String) -> Bool {
        let range = NSRange(text.startIndex..., in: text)
        guard let match = iso8601.firstMatch(in: text, options: [.anchored], range: range) else { return false }
        func group(_ index: Int) -> Int? {
            let found = match.range(at: index)
            guard found.location != NSNotFound, let bounds = Range(found, in: text) else { return nil }
            return Int(text[bounds])
        }
        guard let year = group(1) else { return false }
        let month = group(5) ?? group(6) ?? 1, day = group(10) ?? group(11) ?? 1
        let hour = group(15) ?? 0, minute = group(17) ?? 0, second = group(19) ?? 0
        let offset = (group(25) ?? 0) * 60 + (group(26) ?? 0)
        guard year >= 1, (1...12).contains(month), hour < 24, minute < 60, second < 60, offset < 24 * 60 else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return (1...days).contains(day)
    }

    /// The expression of the `iso8601` package, its groups numbered: 1 year, 5/6 month, 10/11
    /// day, 15 hour, 17 minute, 19 second, 25/26 the offset's hours and minutes.
    private static let iso8601 = try! NSRegularExpression(pattern:
        "^([0-9]{4})(((-([0-9]{1,2}))|([0-9]{2})(?!$))(((-([0-9]{1,2}))|([0-9]{2}))((([ T])([0-9]{2})(:?([0-9]{2}))?"
        + "(:?([0-9]{1,2})([.,]([0-9]+))?)?(Z|(([-+])([0-9]{2}):?([0-9]{2})?))?)?))?)?$")

    /// Whether Python's `re.compile` takes `text` (Nova's `regex` format; the empty string is
    /// refused), judged by ICU after writing Python's own syntax in ICU's: named groups and
    /// their references, a '{' that starts no repetition, '[' and '&' inside a set. Python
    /// refuses an escaped ASCII letter it gives no meaning; ICU would take it.
    static func isPythonRegex(_ text: String) -> Bool {
        guard !text.isEmpty else { return false }
        let chars = Array(text)
        var out = "", index = 0, inSet = false
        func isDigits(_ part: ArraySlice<Character>) -> Bool { !part.isEmpty && part.allSatisfy { $0.isASCII && $0.isNumber } }
        while index < chars.count {
            let char = chars[index]
            if char == "\\" {
                if index + 1 < chars.count, chars[index + 1].isASCII, chars[index + 1].isLetter,
                   !(inSet ? "abdDfnrsStvwWxuUN" : "abBdDfnrsStvwWZAxuUN").contains(chars[index + 1]) { return false }
                out.append(char)
                if index + 1 < chars.count { out.append(chars[index + 1]) }
                index += 2
                continue
            }
            if inSet {
                switch char {
                case "]": inSet = false; out.append(char)
                case "[": out += "\\["
                case "&": out += "\\&"
                default: out.append(char)
                }
                index += 1
                continue
            }
            switch char {
            case "[":
                inSet = true
                out.append(char)
                index += 1
                if index < chars.count, chars[index] == "^" { out.append("^"); index += 1 }
                if index < chars.count, chars[index] == "]" { out += "\\]"; index += 1 }
                continue
            case "{":
                if let close = chars[index...].firstIndex(of: "}") {
                    let bounds = chars[(index + 1)..<close].split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false)
                    if bounds.count == 1, isDigits(bounds[0]) {
                        out += String(chars[index...close])
                        index = close + 1
                        continue
                    }
                    if bounds.count == 2, isDigits(bounds[0]) || isDigits(bounds[1]),
                       bounds[0].isEmpty || isDigits(bounds[0]), bounds[1].isEmpty || isDigits(bounds[1]) {
                        out += "{" + (bounds[0].isEmpty ? "0" : String(bounds[0])) + "," + String(bounds[1]) + "}"
                        index = close + 1
                        continue
                    }
                }
                out += "\\{"
            case "}": out += "\\}"
            case "(":
                let opening = String(chars[index...].prefix(4))
                if opening == "(?P<" {
                    out += "(?<"
                    index += 4
                    continue
                }
                if opening == "(?P=", let close = chars[index...].firstIndex(of: ")") {
                    out += "\\k<" + String(chars[(index + 4)..<close]) + ">"
                    index = close + 1
                    continue
                }
                out.append(char)
            default: out.append(char)
            }
            index += 1
        }
        return (try? NSRegularExpression(pattern: out)) != nil
    }
}

/// The query schemas of the compute API's read routes (Nova's `@validation.query_schema`),
/// per microversion where Nova's change with it. Before 2.75 most take parameters they do not
/// name (Nova strips them; the handlers here never read them); from 2.75 the lists that Nova
/// closed refuse them.
enum NovaQuerySchemas {
    /// A schema per microversion, built once for each; the request's microversion is read as
    /// the handlers read it (a bad one is refused here first, in the same words).
    static func versioned(_ build: (Microversion) -> Schema) -> QuerySchema {
        let schemas = PerMicroversion(build)
        return QuerySchema { request in schemas[try ComputeAPI.microversion(request)] }
    }

    /// Nova's `{'properties': {}, 'additionalProperties': True}`: no parameter named, any taken
    /// (Nova closes most of these at 2.102, past this API's maximum).
    static let open = QuerySchema(Schema.object([], additional: true))
    /// Nova's `{}`: anything (the hypervisors' statistics and uptime).
    static let anything = QuerySchema(Schema.any)

    // MARK: servers

    /// Sort keys Nova accepted before it checked them, and ignores rather than refuse (until 2.75).
    private static let ignoredServerSortKeys: [JSON] = [
        "architecture", "cell_name", "cleaned", "default_ephemeral_device", "default_swap_device", "deleted", "deleted_at",
        "disable_terminate", "ephemeral_gb", "ephemeral_key_uuid", "id", "key_data", "launched_on", "locked", "memory_mb", "os_type",
        "reservation_id", "root_gb", "shutdown_terminate", "user_data", "vcpus", "vm_mode",
    ]
    private static let serverSortKeys: [JSON] = [
        "access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone", "config_drive", "created_at", "display_description",
        "display_name", "host", "hostname", "image_ref", "instance_type_id", "kernel_id", "key_name", "launch_index", "launched_at",
        "locked_by", "node", "power_state", "progress", "project_id", "ramdisk_id", "root_device_name", "task_state", "terminated_at",
        "updated_at", "user_id", "uuid", "vm_state",
    ]

    /// The sort keys of `GET /servers` at `version`: 2.73 makes `locked` a real one, 2.75 drops
    /// the ignored ones.
    static func serverSortKeys(_ version: Microversion) -> [JSON] {
        if version < Microversion(2, 73) { return serverSortKeys + ignoredServerSortKeys }
        if version < Microversion(2, 75) { return ["locked"] + serverSortKeys + ignoredServerSortKeys.filter { $0 != "locked" } }
        return ["locked"] + serverSortKeys
    }

    /// `GET /servers` and `GET /servers/detail`: Nova's filters, its sort keys, paging, the
    /// tag filters from 2.26, `changes-before` from 2.66, `locked` from 2.73; parameters
    /// starting with '_' are let through to the handler (as Nova does, to refuse them there);
    /// from 2.75 any other is refused, in jsonschema's words for an object with pattern properties.
    static let servers = versioned { version in
        let common = NovaTypes.queryParam, regex = NovaTypes.queryRegexParam
        var properties: [(String, Schema)] = [
            ("user_id", common), ("project_id", common), ("tenant_id", common), ("launch_index", common), ("image_ref", common),
            ("image", common), ("kernel_id", regex), ("ramdisk_id", regex), ("hostname", regex), ("key_name", regex),
            ("power_state", regex), ("vm_state", common), ("task_state", common), ("host", common), ("node", regex), ("flavor", regex),
            ("reservation_id", regex), ("launched_at", regex), ("terminated_at", regex), ("availability_zone", regex), ("name", regex),
            ("display_name", regex), ("description", regex), ("display_description", regex), ("locked_by", regex), ("uuid", common),
            ("root_device_name", regex), ("config_drive", regex), ("access_ip_v4", regex), ("access_ip_v6", regex),
            ("auto_disk_config", regex), ("progress", regex),
            ("sort_key", NovaTypes.multi(.choice(serverSortKeys(version), types: [.string]))),
            ("sort_dir", common), ("all_tenants", common), ("soft_deleted", common), ("deleted", common), ("status", common),
            ("changes-since", NovaTypes.queryDateTimeParam), ("ip", regex), ("ip6", regex), ("created_at", regex),
            // Joined tables: named so that they are not stripped, and refused by Nova's handler.
            ("block_device_mapping", common), ("services", common), ("metadata", common), ("system_metadata", common),
            ("info_cache", common), ("security_groups", common), ("pci_devices", common),
        ] + NovaTypes.pagination
        if version >= Microversion(2, 26) {
            properties += [("tags", regex), ("tags-any", regex), ("not-tags", regex), ("not-tags-any", regex)]
        }
        if version >= Microversion(2, 66) { properties.append(("changes-before", NovaTypes.queryDateTimeParam)) }
        if version >= Microversion(2, 73) { properties.append(("locked", common)) }
        let underscored = Schema.Rule("^_") { $0.hasPrefix("_") }
        guard version >= Microversion(2, 75) else {
            return Schema(types: [.object], properties: properties, keyRule: (underscored, common))
        }
        let named = Set(properties.map(\.0))
        return Schema(types: [.object], properties: properties, keyRule: (underscored, common), check: { value in
            let unknown = (value.objectValue ?? [:]).keys.filter { !named.contains($0) && !$0.hasPrefix("_") }
                .sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
            guard !unknown.isEmpty else { return nil }
            let listed = unknown.map { JSON.string($0).pythonRepr }.joined(separator: ", ")
            return "\(listed) \(unknown.count == 1 ? "does" : "do") not match any of the regexes: '^_'"
        })
    }

    // MARK: flavors

    static let flavorSortKeys: [JSON] = [
        "created_at", "description", "disabled", "ephemeral_gb", "flavorid", "id", "is_public", "memory_mb", "name", "root_gb",
        "rxtx_factor", "swap", "updated_at", "vcpu_weight", "vcpus",
    ]

    /// `GET /flavors` and `GET /flavors/detail`: paging, the public/size filters and the sort;
    /// closed from 2.75.
    static let flavors = versioned { version in
        .object(NovaTypes.pagination + [
            ("is_public", NovaTypes.queryParam), ("minRam", NovaTypes.queryParam), ("minDisk", NovaTypes.queryParam),
            ("sort_key", NovaTypes.multi(.choice(flavorSortKeys, types: [.string]))),
            ("sort_dir", NovaTypes.multi(.choice(["asc", "desc"], types: [.string]))),
        ], additional: version < Microversion(2, 75))
    }

    // MARK: key pairs

    /// `GET /os-keypairs`: `user_id` from 2.10, paging from 2.35, closed from 2.75.
    static let keyPairs = versioned { version in
        var properties: [(String, Schema)] = []
        if version >= Microversion(2, 10) { properties.append(("user_id", NovaTypes.queryParam)) }
        if version >= Microversion(2, 35) { properties += NovaTypes.pagination }
        return .object(properties, additional: version < Microversion(2, 75))
    }

    /// `GET /os-keypairs/{name}`: `user_id` from 2.10, closed from 2.75.
    static let keyPair = versioned { version in
        .object(version >= Microversion(2, 10) ? [("user_id", NovaTypes.queryParam)] : [], additional: version < Microversion(2, 75))
    }

    // MARK: hypervisors

    /// `GET /os-hypervisors` and `…/detail`: paging from 2.33; from 2.53 one value each of
    /// paging, `hypervisor_hostname_pattern` and `with_servers`, and nothing else.
    static let hypervisors = versioned { version in
        if version >= Microversion(2, 53) {
            return .object([
                ("limit", NovaTypes.single(NovaTypes.nonNegativeInteger)), ("marker", NovaTypes.single(.string())),
                ("hypervisor_hostname_pattern", NovaTypes.single(NovaTypes.fqdn)), ("with_servers", NovaTypes.single(NovaTypes.boolean)),
            ])
        }
        return .object(version >= Microversion(2, 33) ? NovaTypes.pagination : [], additional: true)
    }

    /// `GET /os-hypervisors/{id}`: from 2.53 one `with_servers` and nothing else.
    static let hypervisor = versioned { version in
        version >= Microversion(2, 53) ? .object([("with_servers", NovaTypes.single(NovaTypes.boolean))]) : .object([], additional: true)
    }

    // MARK: the rest

    /// `GET /os-services`: `host` and `binary`; closed from 2.75.
    static let services = versioned { version in
        .object([("host", NovaTypes.queryParam), ("binary", NovaTypes.queryParam)], additional: version < Microversion(2, 75))
    }

    /// `GET /limits`: `tenant_id`; closed from 2.75.
    static let limits = versioned { version in
        .object([("tenant_id", NovaTypes.queryParam)], additional: version < Microversion(2, 75))
    }

    /// `GET /os-quota-sets/{project}` and `…/detail`: `user_id`; closed from 2.75.
    static let quotaSet = versioned { version in
        .object([("user_id", NovaTypes.queryParam)], additional: version < Microversion(2, 75))
    }

    /// `GET /servers/{id}/os-volume_attachments`: `limit` and `offset`; closed from 2.75.
    static let volumeAttachments = versioned { version in
        .object([("limit", NovaTypes.multi(NovaTypes.nonNegativeInteger)), ("offset", NovaTypes.multi(NovaTypes.nonNegativeInteger))],
                additional: version < Microversion(2, 75))
    }
}
