import Foundation

/// A configuration problem, reported with where it came from (file and line, or the
/// environment variable) so an operator can fix it at once.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let origin: String
    public let message: String
    public var description: String { "\(origin): \(message)" }

    public init(origin: String, message: String) {
        self.origin = origin
        self.message = message
    }
}

public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `[v6]:port`.
    public init?(parsing text: String) {
        var host: Substring
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }
        }
        guard !host.isEmpty, let port = Int(portText), (1...65535).contains(port) else { return nil }
        self.host = String(host)
        self.port = port
    }
}

/// One broker of `transport_url`.
public struct BrokerAddress: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
}

public struct TransportURL: Sendable, Equatable {
    public var brokers: [BrokerAddress]
    public var virtualHost: String

    /// `rabbit://user:pass@host:port[,user:pass@host:port...]/vhost`. Credentials and port
    /// default to guest/guest and 5672; an empty vhost means `/`.
    public init?(parsing text: String) {
        guard text.hasPrefix("rabbit://") else { return nil }
        let rest = text.dropFirst("rabbit://".count)
        let hostsPart: Substring
        let vhostPart: Substring
        if let slash = rest.firstIndex(of: "/") {
            hostsPart = rest[..<slash]
            vhostPart = rest[rest.index(after: slash)...]
        } else {
            hostsPart = rest
            vhostPart = ""
        }
        var brokers: [BrokerAddress] = []
        for entry in hostsPart.split(separator: ",", omittingEmptySubsequences: false) {
            var user = "guest", password = "guest"
            var location = entry
            if let at = entry.lastIndex(of: "@") {
                let credentials = entry[..<at]
                location = entry[entry.index(after: at)...]
                if let colon = credentials.firstIndex(of: ":") {
                    user = String(credentials[..<colon]).removingPercentEncoding ?? String(credentials[..<colon])
                    let pw = credentials[credentials.index(after: colon)...]
                    password = String(pw).removingPercentEncoding ?? String(pw)
                } else {
                    user = String(credentials)
                }
            }
            let hostPort: HostPort
            if let parsed = HostPort(parsing: String(location)) {
                hostPort = parsed
            } else if !location.isEmpty, !location.contains(":") || location.hasPrefix("[") && location.hasSuffix("]") {
                hostPort = HostPort(host: String(location.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))), port: 5672)
            } else {
                return nil
            }
            brokers.append(BrokerAddress(host: hostPort.host, port: hostPort.port, user: user, password: password))
        }
        guard !brokers.isEmpty else { return nil }
        self.brokers = brokers
        let vhost = String(vhostPart).removingPercentEncoding ?? String(vhostPart)
        self.virtualHost = vhost.isEmpty ? "/" : vhost
    }
}

public enum DatabaseURL: Sendable, Equatable {
    case sqlite(path: String)
    case postgresql(url: String)

    public init?(parsing text: String) {
        if text.hasPrefix("sqlite:///") {
            let path = String(text.dropFirst("sqlite:///".count))
            guard path.hasPrefix("/"), path.count > 1 else { return nil }
            self = .sqlite(path: path)
        } else if text.hasPrefix("postgresql://") || text.hasPrefix("postgres://") {
            guard let url = URL(string: text), url.host != nil else { return nil }
            self = .postgresql(url: text)
        } else {
            return nil
        }
    }
}

/// The validated configuration of either program.
public struct PetrelConfig: Sendable {
    public var host: String
    public var transportURL: TransportURL
    public var statePath: String
    public var reportInterval: Int
    public var serviceDownTime: Int
    /// Nova's `[DEFAULT] reclaim_instance_interval` (seconds; 0: deletes are immediate).
    public var reclaimInstanceInterval: Int
    public var logFormat: LogFormat
    public var debug: Bool
    public var databaseConnection: DatabaseURL
    public var apiListen: HostPort
    public var publicURL: String
    /// `[api] tls_cert_file` and `tls_key_file` when the listener serves HTTPS (nil: plain HTTP).
    public var apiTLS: ListenerTLS?
    public var maxRequestBodySize: Int
    public var policyFile: String
    public var tokenExpiration: Int
    public var tokenKeyRepository: String
    public var tokenMaxActiveKeys: Int
    public var tokenAllowExpiredWindow: Int
    public var credentialKeyRepository: String
    /// `[credential] auth_ttl`, in minutes.
    public var credentialAuthTTL: Int
    public var passwordHashRounds: Int
    public var maxPasswordLength: Int
    public var lockoutFailureAttempts: Int
    public var lockoutDuration: Int
    public var passwordRegex: String?
    public var passwordRegexDescription: String?
    public var uniqueLastPasswordCount: Int
    public var minimumPasswordAge: Int
    public var passwordExpiresDays: Int
    public var changePasswordUponFirstUse: Bool
    public var totpPreviousWindows: Int
    public var receiptExpiration: Int
    public var imageStorePath: String
    /// `[quota]` defaults by Nova's resource names.
    public var quotaDefaults: [String: Int]
    public var imageSizeCap: Int
    /// `[image] image_property_quota`: additional properties per image (-1: unlimited).
    public var imagePropertyQuota: Int
    public var libvirtURI: String
    public var virtType: String
    public var cpuMode: String
    public var scheduler: SchedulerSettings
    public var compute: ComputeSettings
    /// `[vnc]`, `[serial_console]`, `[consoleauth]`, `[console]`: the remote consoles.
    public var consoles: ConsoleSettings
    public var serviceUser: ServiceUser?
    /// `[service_user] cafile`: the CA bundle a node verifies the controller with (nil: the system's).
    public var serviceCAFile: String?
    public var nodeMetricsListen: HostPort
    /// `[DEFAULT] my_ip`, when set.
    public var myIP: String?
    /// `[node] services` (see `NodeServiceNames`).
    public var nodeServices: [String]
    /// `[DEFAULT] compute_driver`: the hypervisor backend's registry name.
    public var computeDriver: String
    public var networking: NetworkingSettings
    /// `[metadata] shared_secret`: what metadata proxies sign instance ids with (nil: unset).
    public var metadataSharedSecret: String?
    /// `[metadata] nova_metadata_url`, or the origin of `[service_user] auth_url` (nil: neither is set).
    public var metadataURL: String?

    /// `[DEFAULT] enabled_backends`, each with its section's settings.
    public var volumeBackends: [VolumeBackendSettings]
    /// `[backup] directory`: where the node's volume service keeps backups.
    public var backupDirectory: String
    /// `[DEFAULT] default_volume_type`.
    public var defaultVolumeType: String
    /// `[DEFAULT] storage_availability_zone`.
    public var storageAvailabilityZone: String
    /// `[DEFAULT] message_ttl`: seconds a volume user message is kept.
    public var messageTTL: Int

    public static let defaultPath = "/etc/petrel/petrel.conf"

    /// Reads `path` (a missing file is an error only when `mustExist`), applies
    /// `PETREL_<SECTION>_<KEY>` overrides from `environment`, and validates every value.
    public static func load(path: String?, mustExist: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PetrelConfig {
        var values: [String: (value: String, origin: String)] = [:]
        if let path {
            if FileManager.default.fileExists(atPath: path) {
                guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                    throw ConfigError(origin: path, message: "cannot read the file (permissions, or not UTF-8 text)")
                }
                let entries = try INIFile.parse(text, file: path)
                // Volume backends' sections are named by [DEFAULT] enabled_backends (the file's or the environment's).
                let backends = Set(Self.list(environment[ConfigSchema.option(section: "DEFAULT", key: "enabled_backends")!.environmentName]
                    ?? entries.first { $0.section == "DEFAULT" && $0.key == "enabled_backends" }?.value ?? ""))
                for entry in entries {
                    if backends.contains(entry.section), !ConfigSchema.sections.contains(entry.section) {
                        guard ConfigSchema.backendOption(key: entry.key) != nil else {
                            let known = ConfigSchema.backendOptions.map(\.key)
                            throw ConfigError(origin: "\(path):\(entry.line)", message: "unknown key '\(entry.key)' in volume backend [\(entry.section)] (known: \(known.joined(separator: ", ")))")
                        }
                        let id = "\(entry.section).\(entry.key)"
                        if let previous = values[id] {
                            throw ConfigError(origin: "\(path):\(entry.line)", message: "'\(entry.key)' in [\(entry.section)] is already set at \(previous.origin)")
                        }
                        values[id] = (entry.value, "\(path):\(entry.line)")
                        continue
                    }
                    guard ConfigSchema.sections.contains(entry.section) else {
                        throw ConfigError(origin: "\(path):\(entry.sectionLine)", message: "unknown section [\(entry.section)] (known: \(ConfigSchema.sections.joined(separator: ", ")))")
                    }
                    guard ConfigSchema.option(section: entry.section, key: entry.key) != nil else {
                        let known = ConfigSchema.options.filter { $0.section == entry.section }.map(\.key)
                        throw ConfigError(origin: "\(path):\(entry.line)", message: "unknown key '\(entry.key)' in [\(entry.section)] (known: \(known.joined(separator: ", ")))")
                    }
                    let id = "\(entry.section).\(entry.key)"
                    if let previous = values[id] {
                        throw ConfigError(origin: "\(path):\(entry.line)", message: "'\(entry.key)' in [\(entry.section)] is already set at \(previous.origin)")
                    }
                    values[id] = (entry.value, "\(path):\(entry.line)")
                }
            } else if mustExist {
                throw ConfigError(origin: path, message: "configuration file does not exist")
            }
        }
        // Environment overrides, and refusal of misspelt PETREL_<SECTION>_* variables.
        let known = Set(ConfigSchema.options.map(\.environmentName))
        for (name, value) in environment where name.hasPrefix("PETREL_") {
            if known.contains(name) {
                let option = ConfigSchema.options.first { $0.environmentName == name }!
                values["\(option.section).\(option.key)"] = (value, "environment variable \(name)")
            } else if ConfigSchema.sections.contains(where: { name.hasPrefix("PETREL_\($0.uppercased())_") }) {
                throw ConfigError(origin: "environment variable \(name)", message: "no such configuration key")
            }
        }
        return try PetrelConfig(values: values)
    }

    private init(values: [String: (value: String, origin: String)]) throws {
        func raw(_ section: String, _ key: String) throws -> (value: String, origin: String)? {
            let option = ConfigSchema.option(section: section, key: key)!
            if let given = values["\(section).\(key)"] {
                try Self.validate(given.value, as: option, origin: given.origin)
                return given
            }
            return option.defaultValue.map { ($0, "default of [\(section)] \(key)") }
        }
        func string(_ section: String, _ key: String) throws -> String? { try raw(section, key)?.value }

        host = try string("DEFAULT", "host") ?? Self.machineHostName()
        transportURL = TransportURL(parsing: try string("DEFAULT", "transport_url")!)!
        statePath = try string("DEFAULT", "state_path")!
        reportInterval = Int(try string("DEFAULT", "report_interval")!)!
        serviceDownTime = Int(try string("DEFAULT", "service_down_time")!)!
        reclaimInstanceInterval = Int(try string("DEFAULT", "reclaim_instance_interval")!)!
        logFormat = LogFormat(rawValue: try string("DEFAULT", "log_format")!)!
        debug = Self.boolean(try string("DEFAULT", "debug")!)!
        databaseConnection = DatabaseURL(parsing: try string("database", "connection")!)!
        apiListen = HostPort(parsing: try string("api", "listen")!)!
        maxRequestBodySize = Int(try string("api", "max_request_body_size")!)!
        policyFile = try string("oslo_policy", "policy_file")!
        tokenExpiration = Int(try string("token", "expiration")!)!
        tokenKeyRepository = try string("token", "key_repository")!
        tokenMaxActiveKeys = Int(try string("token", "max_active_keys")!)!
        tokenAllowExpiredWindow = Int(try string("token", "allow_expired_window")!)!
        credentialKeyRepository = try string("credential", "key_repository")!
        credentialAuthTTL = Int(try string("credential", "auth_ttl")!)!
        passwordHashRounds = Int(try string("identity", "password_hash_rounds")!)!
        maxPasswordLength = Int(try string("identity", "max_password_length")!)!
        lockoutFailureAttempts = Int(try string("security_compliance", "lockout_failure_attempts")!)!
        lockoutDuration = Int(try string("security_compliance", "lockout_duration")!)!
        passwordRegex = try string("security_compliance", "password_regex")
        passwordRegexDescription = try string("security_compliance", "password_regex_description")
        uniqueLastPasswordCount = Int(try string("security_compliance", "unique_last_password_count")!)!
        minimumPasswordAge = Int(try string("security_compliance", "minimum_password_age")!)!
        passwordExpiresDays = Int(try string("security_compliance", "password_expires_days")!)!
        changePasswordUponFirstUse = Self.boolean(try string("security_compliance", "change_password_upon_first_use")!)!
        totpPreviousWindows = Int(try string("totp", "included_previous_windows")!)!
        receiptExpiration = Int(try string("receipt", "expiration")!)!
        imageStorePath = try string("image", "store_path")!
        var quotas: [String: Int] = [:]
        for resource in ["instances", "cores", "ram", "key_pairs", "metadata_items", "network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule"] {
            quotas[resource] = Int(try string("quota", resource)!)!
        }
        quotaDefaults = quotas
        imageSizeCap = Int(try string("image", "image_size_cap")!)!
        imagePropertyQuota = Int(try string("image", "image_property_quota")!)!
        libvirtURI = try string("libvirt", "uri")!
        computeDriver = try string("DEFAULT", "compute_driver")!
        virtType = try string("libvirt", "virt_type")!
        nodeMetricsListen = HostPort(parsing: try string("node", "metrics_listen")!)!
        cpuMode = try string("libvirt", "cpu_mode") ?? (virtType == "kvm" ? "host-model" : "none")
        scheduler = SchedulerSettings(maxAttempts: Int(try string("scheduler", "max_attempts")!)!,
                                      cpuAllocationRatio: Double(try string("scheduler", "cpu_allocation_ratio")!)!,
                                      ramAllocationRatio: Double(try string("scheduler", "ram_allocation_ratio")!)!,
                                      diskAllocationRatio: Double(try string("scheduler", "disk_allocation_ratio")!)!,
                                      ramWeightMultiplier: Double(try string("scheduler", "ram_weight_multiplier")!)!,
                                      allowResizeToSameHost: Self.boolean(try string("DEFAULT", "allow_resize_to_same_host")!)!)
        compute = ComputeSettings(
            instancesPath: try string("compute", "instances_path") ?? (statePath + "/instances"),
            shutdownTimeout: Int(try string("compute", "shutdown_timeout")!)!,
            softRebootWait: Int(try string("compute", "wait_soft_reboot_seconds")!)!,
            syncPowerStateInterval: Int(try string("compute", "sync_power_state_interval")!)!,
            unusedImageAge: Int(try string("image_cache", "remove_unused_original_minimum_age_seconds")!)!,
            imageCacheInterval: Int(try string("image_cache", "manager_interval")!)!,
            vncListen: try string("vnc", "server_listen")!)
        if let url = try string("service_user", "auth_url"), let user = try string("service_user", "username"),
           let password = try string("service_user", "password") {
            serviceUser = ServiceUser(authURL: url, username: user, password: password,
                                      projectName: try string("service_user", "project_name")!,
                                      userDomainName: try string("service_user", "user_domain_name")!,
                                      projectDomainName: try string("service_user", "project_domain_name")!)
        } else {
            serviceUser = nil
        }
        networking = try NetworkingSettings(
            baseMAC: try string("DEFAULT", "base_mac")!, physnetMTU: Int(try string("DEFAULT", "global_physnet_mtu")!)!,
            dnsDomain: try string("DEFAULT", "dns_domain")!,
            tenantNetworkTypes: Self.list(try string("ml2", "tenant_network_types")!),
            vniRanges: try string("ml2_type_vxlan", "vni_ranges")!, vlanRanges: try string("ml2_type_vlan", "network_vlan_ranges")!,
            flatNetworks: try string("ml2_type_flat", "flat_networks")!,
            interfaceMappings: try raw("linux_bridge", "physical_interface_mappings")?.value ?? "",
            localIP: try string("vxlan", "local_ip"),
            leaseDuration: Int(try string("dhcp", "lease_duration")!)!,
            agentsPerNetwork: Int(try string("dhcp", "agents_per_network")!)!)
        networking.mechanismDriver = try string("ml2", "mechanism_drivers")!
        networking.firewallDriver = try string("securitygroup", "firewall_driver")!
        myIP = try string("DEFAULT", "my_ip")
        metadataSharedSecret = try string("metadata", "shared_secret").flatMap { $0.isEmpty ? nil : $0 }
        metadataURL = try string("metadata", "nova_metadata_url") ?? serviceUser.flatMap { user in
            URLComponents(string: user.authURL).flatMap { url -> String? in
                guard let scheme = url.scheme, let host = url.host else { return nil }
                return "\(scheme)://\(host)" + (url.port.map { ":\($0)" } ?? "")
            }
        }
        quotaDefaults.merge(try ["volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes", "per_volume_gigabytes"].map {
            ($0, Int(try string("quota", $0)!)!)
        }) { $1 }
        defaultVolumeType = try string("DEFAULT", "default_volume_type")!
        storageAvailabilityZone = try string("DEFAULT", "storage_availability_zone")!
        messageTTL = Int(try string("DEFAULT", "message_ttl")!)!
        let statePath = self.statePath
        volumeBackends = try Self.list(try string("DEFAULT", "enabled_backends") ?? "").map { name in
            func option(_ key: String) throws -> String? {
                let option = ConfigSchema.backendOption(key: key)!
                if let given = values["\(name).\(key)"] {
                    try Self.validate(given.value, as: option, origin: given.origin)
                    return given.value
                }
                return option.defaultValue
            }
            guard !ConfigSchema.sections.contains(name), name.range(of: #"^[A-Za-z0-9_.-]+$"#, options: .regularExpression) != nil else {
                throw ConfigError(origin: "[DEFAULT] enabled_backends", message: "'\(name)' cannot name a volume backend's section (letters, digits, _ . - only, and not one of Petrel's sections)")
            }
            return VolumeBackendSettings(
                name: name, driver: try option("volume_driver")!, backendName: try option("volume_backend_name") ?? name,
                volumesDirectory: try option("volumes_dir") ?? "\(statePath)/volumes/\(name)", volumeGroup: try option("volume_group")!,
                reservedPercentage: Int(try option("reserved_percentage")!)!,
                maxOverSubscriptionRatio: Double(try option("max_over_subscription_ratio")!)!,
                targetHelper: try option("target_helper")!, targetIPAddress: try option("target_ip_address"),
                targetPort: Int(try option("target_port")!)!, targetPrefix: try option("target_prefix")!)
        }
        backupDirectory = try string("backup", "directory") ?? "\(statePath)/backups"
        nodeServices = Self.list(try string("node", "services")!)
        if nodeServices.contains("volume"), volumeBackends.isEmpty {
            throw ConfigError(origin: "configuration", message: "[node] services includes volume, but [DEFAULT] enabled_backends names no backend")
        }
        if nodeServices.contains("l3"), !nodeServices.contains("network") {
            throw ConfigError(origin: "configuration", message: "[node] services = '\(nodeServices.joined(separator: ","))': l3 needs network (routers' ports are wired by the network service)")
        }
        serviceCAFile = try string("service_user", "cafile")
        // HTTPS when asked for, or when a certificate is configured and TLS is not turned off.
        let certificateFile = try string("api", "tls_cert_file"), keyFile = try string("api", "tls_key_file")
        switch try string("api", "tls").map({ Self.boolean($0)! }) {
        case false?:
            apiTLS = nil
        case true?:
            guard let certificateFile, let keyFile else {
                throw ConfigError(origin: "[api] tls", message: "tls = true needs both tls_cert_file and tls_key_file (PEM files); "
                                  + "missing: \([certificateFile == nil ? "tls_cert_file" : nil, keyFile == nil ? "tls_key_file" : nil].compactMap { $0 }.joined(separator: ", "))")
            }
            apiTLS = ListenerTLS(certificateFile: certificateFile, keyFile: keyFile)
        case nil:
            switch (certificateFile, keyFile) {
            case let (certificateFile?, keyFile?): apiTLS = ListenerTLS(certificateFile: certificateFile, keyFile: keyFile)
            case (nil, nil): apiTLS = nil
            case (_?, nil): throw ConfigError(origin: "[api] tls_cert_file", message: "is set but tls_key_file is not: HTTPS needs both (or tls = false for plain HTTP)")
            case (nil, _?): throw ConfigError(origin: "[api] tls_key_file", message: "is set but tls_cert_file is not: HTTPS needs both (or tls = false for plain HTTP)")
            }
        }
        if let url = try string("api", "public_url") {
            publicURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        } else {
            let wildcard = ["0.0.0.0", "::", "*"].contains(apiListen.host)
            let reachable = HostPort(host: wildcard ? host : apiListen.host, port: apiListen.port)
            publicURL = "\(apiTLS == nil ? "http" : "https")://\(reachable)"
        }
        consoles = try ConsoleSettings(string, publicURL: publicURL, tls: apiTLS != nil)
    }

    /// One volume backend's section.
    public struct VolumeBackendSettings: Sendable, Equatable {
        public var name: String
        public var driver: String
        public var backendName: String
        public var volumesDirectory: String
        public var volumeGroup: String
        public var reservedPercentage: Int
        public var maxOverSubscriptionRatio: Double
        /// `tgtadm` or `none`: how volumes reach guests on other hosts.
        public var targetHelper: String
        /// The portal's address (nil: the node's own address).
        public var targetIPAddress: String?
        public var targetPort: Int
        public var targetPrefix: String

        public init(name: String, driver: String, backendName: String, volumesDirectory: String, volumeGroup: String,
                    reservedPercentage: Int, maxOverSubscriptionRatio: Double, targetHelper: String = "tgtadm", targetIPAddress: String? = nil,
                    targetPort: Int = 3260, targetPrefix: String = "iqn.2010-10.org.openstack:") {
            self.name = name; self.driver = driver; self.backendName = backendName; self.volumesDirectory = volumesDirectory
            self.volumeGroup = volumeGroup; self.reservedPercentage = reservedPercentage; self.maxOverSubscriptionRatio = maxOverSubscriptionRatio
            self.targetHelper = targetHelper; self.targetIPAddress = targetIPAddress; self.targetPort = targetPort; self.targetPrefix = targetPrefix
        }
    }

    public struct SchedulerSettings: Sendable {
        public var maxAttempts: Int
        public var cpuAllocationRatio: Double
        public var ramAllocationRatio: Double
        public var diskAllocationRatio: Double
        public var ramWeightMultiplier: Double
        /// Nova's `[DEFAULT] allow_resize_to_same_host`.
        public var allowResizeToSameHost: Bool
    }

    public struct ComputeSettings: Sendable {
        public var instancesPath: String
        public var shutdownTimeout: Int
        public var softRebootWait: Int
        public var syncPowerStateInterval: Int
        public var unusedImageAge: Int
        public var imageCacheInterval: Int
        public var vncListen: String
    }

    /// The certificate and key of the controller's HTTPS listener (PEM files).
    public struct ListenerTLS: Sendable, Equatable {
        public var certificateFile: String
        public var keyFile: String

        public init(certificateFile: String, keyFile: String) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    /// The identity a node acts as towards the APIs (image download, snapshot upload).
    public struct ServiceUser: Sendable {
        public var authURL: String
        public var username: String
        public var password: String
        public var projectName: String
        public var userDomainName: String
        public var projectDomainName: String
    }

    static func list(_ value: String) -> [String] {
        value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func validate(_ value: String, as option: ConfigOption, origin: String) throws {
        func fail(_ why: String) -> ConfigError {
            ConfigError(origin: origin, message: "[\(option.section)] \(option.key) = '\(value)': \(why)")
        }
        switch option.kind {
        case .string:
            if value.isEmpty { throw fail("must not be empty") }
        case .hostname:
            let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._"))
            if value.isEmpty || value.count > 253 || value.unicodeScalars.contains(where: { !allowed.contains($0) }) {
                throw fail("not a valid host name (letters, digits, '-', '.', '_')")
            }
        case .transportURL:
            if TransportURL(parsing: value) == nil { throw fail("expected rabbit://user:pass@host:port/vhost (several hosts separated by commas)") }
        case .databaseURL:
            if DatabaseURL(parsing: value) == nil { throw fail("expected sqlite:////absolute/path.db or postgresql://user:pass@host:port/dbname") }
        case .hostPort:
            if HostPort(parsing: value) == nil { throw fail("expected host:port with a port in 1...65535 ([addr]:port for IPv6)") }
        case .httpURL:
            guard let url = URL(string: value), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw fail("expected an http:// or https:// URL")
            }
        case .choice(let allowed):
            if !allowed.contains(value) { throw fail("must be one of: \(allowed.joined(separator: ", "))") }
        case .subset(let allowed):
            let items = Self.list(value)
            if items.isEmpty { throw fail("must name at least one of: \(allowed.joined(separator: ", "))") }
            if let unknown = items.first(where: { !allowed.contains($0) }) {
                throw fail("'\(unknown)' is not one of: \(allowed.joined(separator: ", "))")
            }
        case .ipAddress:
            var v4 = in_addr(), v6 = in6_addr()
            if inet_pton(AF_INET, value, &v4) != 1 && inet_pton(AF_INET6, value, &v6) != 1 { throw fail("not an IP address") }
        case .integer(let range):
            guard let number = Int(value), range.contains(number) else {
                throw fail("expected an integer in \(range.lowerBound)...\(range.upperBound)")
            }
        case .number(let range):
            guard let number = Double(value), range.contains(number) else {
                throw fail("expected a number in \(range.lowerBound)...\(range.upperBound)")
            }
        case .boolean:
            if boolean(value) == nil { throw fail("expected true or false") }
        case .absolutePath:
            if !value.hasPrefix("/") { throw fail("expected an absolute path") }
        }
    }

    static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: return nil
        }
    }

    static func machineHostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }
}

/// A minimal INI reader in the shape oslo.config accepts: `[section]`, `key = value`
/// (or `key: value`), comments starting with `#` or `;` on their own line.
enum INIFile {
    struct Entry {
        var section: String
        var key: String
        var value: String
        var line: Int
        /// Line of the `[section]` header this entry sits under.
        var sectionLine: Int
    }

    static func parse(_ text: String, file: String) throws -> [Entry] {
        var entries: [Entry] = []
        var section: String?
        var sectionLine = 0
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let line = rawLine.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else {
                    throw ConfigError(origin: "\(file):\(lineNumber)", message: "malformed section header '\(line)'")
                }
                section = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                sectionLine = lineNumber
                continue
            }
            guard let separator = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw ConfigError(origin: "\(file):\(lineNumber)", message: "expected 'key = value', found '\(line)'")
            }
            guard let current = section else {
                throw ConfigError(origin: "\(file):\(lineNumber)", message: "'\(line)' appears before any [section]")
            }
            let key = line[..<separator].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: separator)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else {
                throw ConfigError(origin: "\(file):\(lineNumber)", message: "missing key before '\(line[separator])'")
            }
            entries.append(Entry(section: current, key: key, value: value, line: lineNumber, sectionLine: sectionLine))
        }
        return entries
    }
}
