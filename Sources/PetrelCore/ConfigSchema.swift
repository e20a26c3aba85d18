/// Every configuration key Petrel knows, with its type, default and help text.
/// `etc/petrel.conf.sample` is generated from this list (`petrel-controller sample-config`)
/// and a test keeps the two identical, so documentation cannot drift from the code.
public struct ConfigOption: Sendable {
    public enum Kind: Sendable, Equatable {
        case string
        case hostname
        /// `rabbit://user:pass@host:port/vhost`, comma-separated hosts allowed.
        case transportURL
        /// `sqlite:////abs/path.db` or `postgresql://user:pass@host:port/db`.
        case databaseURL
        /// `host:port` (IPv6 as `[::1]:port`).
        case hostPort
        /// An `http://` or `https://` URL.
        case httpURL
        case choice([String])
        /// A comma-separated list, each item one of these.
        case subset([String])
        /// An IPv4 or IPv6 address.
        case ipAddress
        case integer(ClosedRange<Int>)
        case number(ClosedRange<Double>)
        case boolean
        case absolutePath
    }

    public let section: String
    public let key: String
    public let kind: Kind
    /// The default as it would be written in the file; nil when it is computed at start
    /// (`help` says how).
    public let defaultValue: String?
    public let help: String

    public init(_ section: String, _ key: String, _ kind: Kind, default defaultValue: String?, help: String) {
        self.section = section
        self.key = key
        self.kind = kind
        self.defaultValue = defaultValue
        self.help = help
    }

    /// `PETREL_<SECTION>_<KEY>`, e.g. `PETREL_DATABASE_CONNECTION`.
    public var environmentName: String { "PETREL_\(section.uppercased())_\(key.uppercased())" }
}

/// The node services `[node] services` can name: exactly those `petrel-node` composes.
public enum NodeServiceNames {
    public static let all = ["compute", "network", "l3", "volume"]
}

public enum ConfigSchema {
    public static let sections = ["DEFAULT", "database", "api", "token", "credential", "identity", "security_compliance", "totp", "receipt", "oslo_policy", "image", "quota", "scheduler", "libvirt", "compute", "image_cache", "vnc", "serial_console", "consoleauth", "console", "service_user", "node",
                                      "ml2", "ml2_type_vxlan", "ml2_type_vlan", "ml2_type_flat", "linux_bridge", "securitygroup", "vxlan", "dhcp", "metadata", "backup"]

    public static let options: [ConfigOption] = [
        .init("DEFAULT", "host", .hostname, default: nil,
              help: "Name of this host as the cloud knows it (compute/network/volume services, RPC queues). Defaults to the machine's host name."),
        .init("DEFAULT", "my_ip", .ipAddress, default: nil,
              help: "This host's address as other hosts reach it (shown as a hypervisor's host_ip). Defaults to the address of the interface of the default route."),
        .init("DEFAULT", "transport_url", .transportURL, default: "rabbit://guest:guest@127.0.0.1:5672/",
              help: "RabbitMQ broker(s): rabbit://user:pass@host:port/vhost; several brokers of a cluster as rabbit://u:p@h1:5672,u:p@h2:5672/vhost."),
        .init("DEFAULT", "report_interval", .integer(1...3600), default: "10",
              help: "Seconds between a node's state reports to the controller (services, hypervisor resources)."),
        .init("DEFAULT", "service_down_time", .integer(1...86400), default: "60",
              help: "Seconds without a report after which the controller considers a node's services down."),
        .init("DEFAULT", "state_path", .absolutePath, default: "/var/lib/petrel",
              help: "Directory for Petrel's local state (instances, image cache, key repositories)."),
        .init("DEFAULT", "log_format", .choice(["text", "json"]), default: "text",
              help: "Log line format on standard error: human-readable text, or one JSON object per line."),
        .init("DEFAULT", "debug", .boolean, default: "false",
              help: "Log at debug level instead of info."),
        .init("database", "connection", .databaseURL, default: "sqlite:////var/lib/petrel/petrel.db",
              help: "Controller database: sqlite:////absolute/path.db (default) or postgresql://user:pass@host:5432/dbname."),
        .init("api", "listen", .hostPort, default: "0.0.0.0:5000",
              help: "Address the controller's single HTTP listener binds (every API is served under its own path prefix, and /metrics)."),
        .init("api", "public_url", .httpURL, default: nil,
              help: "Base URL clients reach the controller at; the service catalog advertises every endpoint under it. Defaults to https://<host>:<port of listen> when the listener serves TLS, http://… otherwise."),
        .init("api", "max_request_body_size", .integer(1024...104_857_600), default: "114688",
              help: "Largest request body (bytes) the APIs accept; larger ones are refused with 413 (Keystone's default)."),
        .init("api", "tls", .boolean, default: nil,
              help: "Serve the listener over HTTPS (HTTP/1.1 over TLS 1.2 or 1.3) with tls_cert_file and tls_key_file. Defaults to true when tls_cert_file is set, false otherwise. false keeps plain HTTP even with a certificate configured (a controller behind a load balancer that terminates TLS); true without both files stops the controller at start."),
        .init("api", "tls_cert_file", .absolutePath, default: nil,
              help: "PEM file with the listener's certificate, followed by any intermediate CA certificates. Read at start and again on SIGHUP (with tls_key_file): new connections get the new certificate, open ones keep theirs; a pair that does not load is logged and the previous one kept."),
        .init("api", "tls_key_file", .absolutePath, default: nil,
              help: "PEM file with the unencrypted private key of tls_cert_file (readable by the controller only)."),
        .init("token", "expiration", .integer(60...604_800), default: "3600",
              help: "Seconds a token stays valid after it is issued."),
        .init("token", "key_repository", .absolutePath, default: "/etc/petrel/fernet-keys",
              help: "Directory of the Fernet keys that sign and validate tokens (`petrel-controller token-keys setup|rotate`). Every controller needs the same keys."),
        .init("token", "allow_expired_window", .integer(0...604_800), default: "172800",
              help: "Seconds after its expiry a user's token still validates when a valid service token (X-Service-Token, of a user with the service role) comes with it, so a long operation started with it finishes (Keystone's default, 48 hours)."),
        .init("token", "max_active_keys", .integer(2...100), default: "3",
              help: "Keys kept by a rotation: the staged key, the primary, and the newest secondaries."),
        .init("credential", "key_repository", .absolutePath, default: "/etc/petrel/credential-keys",
              help: "Directory of the Fernet keys that encrypt stored credentials (`petrel-controller credential-keys setup|rotate`). Every controller needs the same keys; losing them loses every credential's secret."),
        .init("credential", "auth_ttl", .integer(1...10_080), default: "15",
              help: "Minutes a request signed with an EC2 credential stays acceptable to /v3/ec2tokens after its timestamp."),
        .init("identity", "password_hash_rounds", .integer(4...31), default: "12",
              help: "bcrypt cost of stored passwords (Keystone's default, 12, takes ~0.25 s per hash here). Passwords are hashed as passlib's bcrypt_sha256, so every byte counts, not bcrypt's first 72."),
        .init("identity", "max_password_length", .integer(1...65_536), default: "4096",
              help: "Longest password (in characters) a user may set; longer ones are refused with 400 and never authenticate."),
        .init("security_compliance", "lockout_failure_attempts", .integer(0...1000), default: "0",
              help: "Wrong passwords in a row after which a user is locked out; 0 turns lockout off."),
        .init("security_compliance", "lockout_duration", .integer(1...31_536_000), default: "1800",
              help: "Seconds a locked-out user stays locked out."),
        .init("security_compliance", "password_regex", .string, default: nil,
              help: "Regular expression every new password must match (ICU syntax; unset: any password)."),
        .init("security_compliance", "password_regex_description", .string, default: nil,
              help: "What password_regex asks for, in words; the error a refused password gets shows it."),
        .init("security_compliance", "unique_last_password_count", .integer(0...1000), default: "0",
              help: "A new password may not equal any of the user's last N passwords (the new one included); 0 or 1: no history."),
        .init("security_compliance", "minimum_password_age", .integer(0...3650), default: "0",
              help: "Days a user must keep a password they chose before changing it again (administrators may reset it at any time)."),
        .init("security_compliance", "password_expires_days", .integer(0...3650), default: "0",
              help: "Days a password stays valid after it is set; 0: forever. Users with the ignore_password_expiry option are exempt."),
        .init("security_compliance", "change_password_upon_first_use", .boolean, default: "false",
              help: "A password an administrator sets (at creation or a reset) must be changed by the user before it authenticates (ignore_change_password_upon_first_use exempts a user)."),
        .init("totp", "included_previous_windows", .integer(0...10), default: "1",
              help: "Earlier 30-second steps whose TOTP passcodes still authenticate (clock drift, slow typing)."),
        .init("receipt", "expiration", .integer(0...86_400), default: "300",
              help: "Seconds a multi-factor receipt (Openstack-Auth-Receipt) stays usable to complete an authentication."),
        .init("oslo_policy", "policy_file", .absolutePath, default: "/etc/petrel/policy.yaml",
              help: "YAML file overriding policy rules one by one (see etc/policy.yaml.sample); a missing file means the built-in defaults."),
        .init("image", "store_path", .absolutePath, default: "/var/lib/petrel/images",
              help: "Directory of the image service's data: one file per image, named by its id."),
        .init("image", "image_size_cap", .integer(1...Int.max), default: "1099511627776",
              help: "Largest image (bytes) an upload may store; larger uploads are refused with 413 (Glance's default, 1 TiB)."),
        .init("image", "image_property_quota", .integer(-1...1_000_000), default: "128",
              help: "Additional properties one image may have (Glance's image_property_quota; -1: unlimited); more are refused with 413."),
        .init("quota", "instances", .integer(-1...1_000_000), default: "10",
              help: "Servers a project may have (-1: unlimited), unless its quota says otherwise."),
        .init("quota", "cores", .integer(-1...100_000_000), default: "20",
              help: "vCPUs a project's servers may use together (-1: unlimited)."),
        .init("quota", "ram", .integer(-1...Int(Int32.max)), default: "51200",
              help: "MB of RAM a project's servers may use together (-1: unlimited)."),
        .init("quota", "key_pairs", .integer(-1...1_000_000), default: "100",
              help: "Key pairs a user may have (-1: unlimited)."),
        .init("quota", "metadata_items", .integer(-1...1_000_000), default: "128",
              help: "Metadata items per server (-1: unlimited)."),
        .init("quota", "network", .integer(-1...1_000_000), default: "100",
              help: "Neutron networks a project may have (-1: unlimited), unless its quota says otherwise."),
        .init("quota", "subnet", .integer(-1...1_000_000), default: "100", help: "Neutron subnets a project may have (-1: unlimited)."),
        .init("quota", "port", .integer(-1...1_000_000), default: "500", help: "Neutron ports a project may have (-1: unlimited)."),
        .init("quota", "router", .integer(-1...1_000_000), default: "10", help: "Neutron routers a project may have (-1: unlimited)."),
        .init("quota", "floatingip", .integer(-1...1_000_000), default: "50", help: "Floating IPs a project may have (-1: unlimited)."),
        .init("quota", "security_group", .integer(-1...1_000_000), default: "10",
              help: "Security groups a project may have, its default group included (-1: unlimited)."),
        .init("quota", "security_group_rule", .integer(-1...1_000_000), default: "100",
              help: "Security group rules a project may have (-1: unlimited)."),
        .init("quota", "volumes", .integer(-1...1_000_000), default: "10", help: "Cinder volumes a project may have (-1: unlimited)."),
        .init("quota", "gigabytes", .integer(-1...100_000_000), default: "1000",
              help: "GB a project's volumes (and snapshots) may hold together (-1: unlimited)."),
        .init("quota", "snapshots", .integer(-1...1_000_000), default: "10", help: "Volume snapshots a project may have (-1: unlimited)."),
        .init("quota", "backups", .integer(-1...1_000_000), default: "10", help: "Volume backups a project may have (-1: unlimited)."),
        .init("quota", "backup_gigabytes", .integer(-1...100_000_000), default: "1000",
              help: "GB a project's volume backups may hold together (-1: unlimited)."),
        .init("quota", "per_volume_gigabytes", .integer(-1...100_000_000), default: "-1",
              help: "Largest volume (GB) a project may create (-1: unlimited)."),
        .init("scheduler", "max_attempts", .integer(1...100), default: "3",
              help: "Hosts a server's build is tried on before it ends in ERROR (the first one included)."),
        .init("scheduler", "cpu_allocation_ratio", .number(0.1...1000), default: "16.0",
              help: "vCPUs the scheduler places per physical CPU of a host."),
        .init("scheduler", "ram_allocation_ratio", .number(0.1...100), default: "1.5",
              help: "RAM the scheduler places per MB of a host's memory."),
        .init("scheduler", "disk_allocation_ratio", .number(0.1...100), default: "1.0",
              help: "Root and ephemeral disk the scheduler places per GB of a host's instance storage."),
        .init("scheduler", "ram_weight_multiplier", .number(-1000...1000), default: "1.0",
              help: "Positive: new servers go to the hosts with the most free RAM (spread); negative: to the fullest (stack)."),
        .init("DEFAULT", "reclaim_instance_interval", .integer(0...Int(Int32.max)), default: "0",
              help: "Seconds a deleted server is kept, powered off and restorable (SOFT_DELETED), before it is deleted for good; 0 deletes at once."),
        .init("DEFAULT", "allow_resize_to_same_host", .boolean, default: "false",
              help: "Whether a resize or cold migration may stay on the server's host (Petrel moves servers within their host only for now: false refuses them)."),
        .init("libvirt", "uri", .string, default: "qemu:///system",
              help: "libvirt connection URI of this hypervisor host (test:///default for a simulated one)."),
        .init("DEFAULT", "compute_driver", .choice(["libvirt"]), default: "libvirt",
              help: "The hypervisor backend of the compute service: libvirt (QEMU/KVM through libvirtd, at [libvirt] uri)."),
        .init("libvirt", "virt_type", .choice(["kvm", "qemu"]), default: "kvm",
              help: "Domain type: kvm (hardware virtualization) or qemu (TCG emulation, for hosts where KVM cannot run guests)."),
        .init("libvirt", "cpu_mode", .choice(["host-model", "host-passthrough", "none"]), default: nil,
              help: "Guest CPU model: host-model or host-passthrough (kvm), none (the hypervisor's default). Defaults to host-model with kvm and none with qemu."),
        .init("compute", "instances_path", .absolutePath, default: nil,
              help: "Where a node keeps instance directories (disks, console log) and the image cache (_base). Defaults to <state_path>/instances."),
        .init("compute", "shutdown_timeout", .integer(0...3600), default: "60",
              help: "Seconds a stopping server's guest gets to shut down cleanly (ACPI) before it is powered off."),
        .init("compute", "wait_soft_reboot_seconds", .integer(0...3600), default: "120",
              help: "Seconds a soft reboot waits for the guest to shut down before it falls back to a hard reboot."),
        .init("compute", "sync_power_state_interval", .integer(10...86400), default: "600",
              help: "Seconds between a node's comparisons of every domain's power state with the controller's (a safety net under libvirt's events)."),
        .init("image_cache", "remove_unused_original_minimum_age_seconds", .integer(0...31_536_000), default: "86400",
              help: "Cached base images no instance of the node uses are removed once they have been unused this long."),
        .init("image_cache", "manager_interval", .integer(10...86400), default: "2400",
              help: "Seconds between a node's sweeps of its image cache."),
        .init("vnc", "server_listen", .ipAddress, default: "127.0.0.1",
              help: "Address the VNC console of each guest listens on."),
        .init("service_user", "auth_url", .httpURL, default: nil,
              help: "Identity endpoint (e.g. http://controller:5000/v3) the node authenticates at to download images and upload snapshots. Required for compute."),
        .init("service_user", "username", .string, default: nil, help: "The node's service user."),
        .init("service_user", "password", .string, default: nil, help: "The node's service user's password."),
        .init("service_user", "project_name", .string, default: "service", help: "Project the service user's token is scoped to."),
        .init("service_user", "user_domain_name", .string, default: "Default", help: "Domain of the service user."),
        .init("service_user", "project_domain_name", .string, default: "Default", help: "Domain of the service user's project."),
        .init("service_user", "cafile", .absolutePath, default: nil,
              help: "PEM bundle of the CA certificate(s) the node verifies the controller's HTTPS certificate against (identity, image transfers, the metadata proxy), as keystoneauth's cafile. Unset: the system's trust store."),
        // Networking (Neutron's names: neutron.conf [DEFAULT], ml2_conf.ini, linuxbridge_agent.ini, dhcp_agent.ini).
        .init("DEFAULT", "base_mac", .string, default: "fa:16:3e:00:00:00",
              help: "Ports' MAC addresses start with the first three bytes of this (and with its fourth when it is not 00); the rest is random, unique per network."),
        .init("DEFAULT", "global_physnet_mtu", .integer(68...65535), default: "1500",
              help: "MTU of the underlying physical network; a VXLAN network's MTU is this minus 50 (its encapsulation), flat and VLAN networks get all of it."),
        .init("DEFAULT", "dns_domain", .string, default: "openstacklocal",
              help: "Domain of the host names the DHCP servers hand out (a port's dns_assignment)."),
        .init("ml2", "mechanism_drivers", .choice(["linuxbridge"]), default: "linuxbridge",
              help: "The L2 backend a node's network service wires networks with: linuxbridge (neutron-linuxbridge-agent)."),
        .init("securitygroup", "firewall_driver", .choice(["iptables", "noop"]), default: "iptables",
              help: "How a node enforces security groups on the ports bound to it: iptables (iptables-restore transactions with ipset sets for remote groups), or noop (not at all: every port is open)."),
        .init("ml2", "tenant_network_types", .subset(["vxlan", "vlan", "flat"]), default: "vxlan",
              help: "Network types given to project networks that name no provider type, tried in this order until one has a free segment."),
        .init("ml2_type_vxlan", "vni_ranges", .string, default: "1:1000",
              help: "VXLAN network identifiers (VNIs) project networks are given, as comma-separated first:last ranges."),
        .init("ml2_type_vlan", "network_vlan_ranges", .string, default: "physnet1",
              help: "Physical networks that carry VLANs, each with the VLAN ids project networks may be given (physnet:first:last), or the bare name for provider networks only."),
        .init("ml2_type_flat", "flat_networks", .string, default: "*",
              help: "Physical networks flat networks may be created on, comma-separated; * allows any."),
        .init("linux_bridge", "physical_interface_mappings", .string, default: nil,
              help: "physnet:interface pairs, comma-separated: which host interface carries each physical network's flat and VLAN traffic. None by default: flat and VLAN networks cannot be wired on this node."),
        .init("vxlan", "local_ip", .ipAddress, default: nil,
              help: "This node's VXLAN tunnel endpoint address. Defaults to [DEFAULT] my_ip."),
        .init("dhcp", "lease_duration", .integer(120...31_536_000), default: "86400",
              help: "Seconds a DHCP lease handed out by the nodes' dnsmasq lasts."),
        .init("dhcp", "agents_per_network", .integer(1...16), default: "1",
              help: "How many nodes serve DHCP (and metadata) for each network."),
        .init("node", "services", .subset(NodeServiceNames.all), default: "compute",
              help: "What this node runs, and reports while it runs: compute (nova-compute), network (the L2 agent of [ml2] mechanism_drivers, the DHCP and metadata agents), l3 (the L3 agent: routers and floating IPs; needs network), volume (cinder-volume, on the backends of [DEFAULT] enabled_backends). Only services whose code exists can be named."),
        .init("DEFAULT", "enabled_backends", .string, default: nil,
              help: "The volume backends this node's volume service runs, comma-separated: each names a section of this file ([<name>]) whose keys are listed under [<backend>] below. Needed when [node] services includes volume."),
        .init("DEFAULT", "default_volume_type", .string, default: "__DEFAULT__",
              help: "The volume type a volume created without one gets (the controller's setting)."),
        .init("DEFAULT", "message_ttl", .integer(1...315_360_000), default: "2592000",
              help: "Seconds a user message of the volume API (/messages) is kept after the failure it tells of."),
        .init("DEFAULT", "storage_availability_zone", .string, default: "nova",
              help: "The availability zone of the volumes this cloud's backends hold."),
        .init("backup", "directory", .absolutePath, default: nil,
              help: "Where this node's volume service keeps the backups of its volumes (cinder-backup's posix driver: each backup a directory of hashed chunks and a manifest; may be an NFS mount). Default: $state_path/backups."),
        .init("node", "metrics_listen", .hostPort, default: "127.0.0.1:9180",
              help: "Address of petrel-node's local listener serving Prometheus /metrics."),

        // [metadata]: the metadata API and the nodes' metadata proxies.
        .init("metadata", "shared_secret", .string, default: nil,
              help: "Secret the nodes' metadata proxies sign instance ids with (HMAC-SHA256, Nova's metadata_proxy_shared_secret); the same value on the controller and every node. Keep it secret: whoever knows it can read any instance's metadata. Unset: the metadata API refuses every instance request."),
        .init("metadata", "nova_metadata_url", .httpURL, default: nil,
              help: "Where a node's metadata proxy forwards guests' requests: the controller's metadata API (its URL up to /metadata excluded). Defaults to the scheme, host and port of [service_user] auth_url."),
    ] + ConsoleSettings.options

    public static func option(section: String, key: String) -> ConfigOption? {
        options.first { $0.section == section && $0.key == key }
    }

    /// The keys of a volume backend's section: `[<name>]` for each name in `[DEFAULT] enabled_backends`
    /// (shown in the sample as `[<backend>]`).
    public static let backendSection = "<backend>"
    public static let backendOptions: [ConfigOption] = [
        .init(backendSection, "volume_driver", .choice(["file", "lvm"]), default: "file",
              help: "The backend's driver: file (sparse raw files in volumes_dir, on a local or NFS file system) or lvm (logical volumes of volume_group)."),
        .init(backendSection, "volume_backend_name", .string, default: nil,
              help: "The name volume types select the backend by (their volume_backend_name extra spec). Defaults to the section's name."),
        .init(backendSection, "volumes_dir", .absolutePath, default: nil,
              help: "file: the directory holding the volumes' files. Defaults to [DEFAULT] state_path/volumes/<section name>."),
        .init(backendSection, "volume_group", .string, default: "cinder-volumes",
              help: "lvm: the volume group the logical volumes are made in (it must exist)."),
        .init(backendSection, "reserved_percentage", .integer(0...100), default: "0",
              help: "Percentage of the backend's capacity the scheduler leaves free."),
        .init(backendSection, "max_over_subscription_ratio", .number(1...1000), default: "20.0",
              help: "For thin backends (file): how many times its capacity the volumes placed on it may add up to."),
        .init(backendSection, "target_helper", .choice(["tgtadm", "none"]), default: "tgtadm",
              help: "How the backend's volumes reach guests on other hosts: tgtadm (an iSCSI target per volume in tgtd, a CHAP account per attachment) or none (only guests on this host)."),
        .init(backendSection, "target_ip_address", .ipAddress, default: nil,
              help: "The address of tgtd's portal that other hosts log in to. Defaults to [DEFAULT] my_ip, else the address of the interface of the default route."),
        .init(backendSection, "target_port", .integer(1...65535), default: "3260",
              help: "The port of tgtd's portal."),
        .init(backendSection, "target_prefix", .string, default: "iqn.2010-10.org.openstack:",
              help: "The start of each exported volume's IQN (followed by volume-<id>)."),
    ]

    public static func backendOption(key: String) -> ConfigOption? {
        backendOptions.first { $0.key == key }
    }

    /// The sample configuration file: every key, commented out, with its help and default.
    public static func sampleFile() -> String {
        var out = """
        # Petrel configuration (/etc/petrel/petrel.conf), read by petrel-controller and petrel-node.
        # INI format. Every key may be overridden by an environment variable
        # PETREL_<SECTION>_<KEY>, e.g. PETREL_DATABASE_CONNECTION. Unknown keys and bad
        # values stop the program at start with the file, line and reason.
        # Generated by `petrel-controller sample-config`.

        """
        for section in sections {
            out += "\n[\(section)]\n"
            for option in options where option.section == section {
                out += "\n"
                for line in wrap(option.help, width: 88) { out += "# \(line)\n" }
                out += "# (\(describe(option.kind)))\n"
                out += "#\(option.key) = \(option.defaultValue ?? "<computed>")\n"
            }
        }
        out += "\n# One section per volume backend named in [DEFAULT] enabled_backends, e.g. [file-1].\n[\(backendSection)]\n"
        for option in backendOptions {
            out += "\n"
            for line in wrap(option.help, width: 88) { out += "# \(line)\n" }
            out += "# (\(describe(option.kind)))\n"
            out += "#\(option.key) = \(option.defaultValue ?? "<computed>")\n"
        }
        return out
    }

    static func describe(_ kind: ConfigOption.Kind) -> String {
        switch kind {
        case .string: return "string"
        case .hostname: return "host name"
        case .transportURL: return "transport URL"
        case .databaseURL: return "database URL"
        case .hostPort: return "host:port"
        case .httpURL: return "http(s) URL"
        case .choice(let values): return "one of: " + values.joined(separator: ", ")
        case .subset(let values): return "comma-separated list of: " + values.joined(separator: ", ")
        case .ipAddress: return "IP address"
        case .integer(let range): return "integer \(range.lowerBound)...\(range.upperBound)"
        case .number(let range): return "number \(range.lowerBound)...\(range.upperBound)"
        case .boolean: return "boolean: true or false"
        case .absolutePath: return "absolute path"
        }
    }

    private static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ") {
            if !current.isEmpty && current.count + 1 + word.count > width {
                lines.append(current)
                current = ""
            }
            current += current.isEmpty ? String(word) : " " + word
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }
}
