import Foundation
import SQLKit

/// One step of the schema. Statements are plain SQL that both SQLite and PostgreSQL
/// accept (ids are text UUIDs, times are Unix milliseconds in BIGINT).
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let statements: [String]

    public init(version: Int, name: String, statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }
}

/// Applies migrations in order, each in its own transaction, recording them in
/// `petrel_schema`. Running it again applies nothing; two controllers running it at once
/// are serialized (SQLite's write lock, PostgreSQL's advisory lock).
public struct Migrator: Sendable {
    public let migrations: [Migration]

    public init(_ migrations: [Migration] = Schema.migrations) {
        self.migrations = migrations
    }

    public var latest: Int { migrations.map(\.version).max() ?? 0 }

    /// The version the database is at (0 for an empty database).
    public func currentVersion(_ database: Database) async throws -> Int {
        let backend = database.backend
        return try await database.withConnection { sql in
            let exists: SQLQueryString = backend == .sqlite
                ? "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'petrel_schema'"
                : "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name = 'petrel_schema' AND table_schema = current_schema()"
            guard let row = try await sql.raw(exists).first(), try row.decode(column: "n", as: Int.self) > 0 else { return 0 }
            let version = try await sql.raw("SELECT MAX(version) AS v FROM petrel_schema").first()
            return try version?.decode(column: "v", as: Int?.self) ?? 0
        }
    }

    /// Applies every migration the database lacks; returns the versions applied.
    @discardableResult
    public func migrate(_ database: Database) async throws -> [Int] {
        var applied: [Int] = []
        for migration in migrations.sorted(by: { $0.version < $1.version }) {
            let backend = database.backend
            let didApply = try await database.transaction { sql in
                // Serialize concurrent db-syncs before touching the catalog (PostgreSQL's
                // CREATE TABLE IF NOT EXISTS is not safe against a concurrent twin).
                if backend == .postgresql { try await sql.raw("SELECT pg_advisory_xact_lock(7304185)").run() }
                try await sql.raw("""
                    CREATE TABLE IF NOT EXISTS petrel_schema (
                        version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)
                    """).run()
                let present = try await sql.raw("SELECT COUNT(*) AS n FROM petrel_schema WHERE version = \(bind: migration.version)").first()
                if let present, try present.decode(column: "n", as: Int.self) > 0 { return false }
                for statement in migration.statements { try await sql.raw(SQLQueryString(statement)).run() }
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                try await sql.raw("INSERT INTO petrel_schema (version, name, applied_at) VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: now))").run()
                return true
            }
            if didApply {
                database.schemaDidChange()
                applied.append(migration.version)
            }
        }
        return applied
    }

    /// Throws unless the database is exactly at this program's schema version.
    public func requireCurrent(_ database: Database) async throws {
        let current = try await currentVersion(database)
        if current < latest { throw StoreError.notMigrated(current: current, latest: latest) }
        if current > latest { throw StoreError.newerThanThisProgram(current: current, latest: latest) }
    }
}

/// Petrel's schema, oldest first. Never edit a released migration: add a new one.
public enum Schema {
    public static let migrations: [Migration] = [
        Migration(version: 1, name: "services and hypervisors", statements: [
            """
            CREATE TABLE services (
                id TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                service_binary TEXT NOT NULL,
                topic TEXT NOT NULL,
                disabled BOOLEAN NOT NULL DEFAULT FALSE,
                disabled_reason TEXT,
                forced_down BOOLEAN NOT NULL DEFAULT FALSE,
                version TEXT NOT NULL,
                report_count BIGINT NOT NULL DEFAULT 0,
                last_seen_at BIGINT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                UNIQUE (host, service_binary)
            )
            """,
            """
            CREATE TABLE hypervisors (
                id TEXT PRIMARY KEY,
                host TEXT NOT NULL UNIQUE,
                hypervisor_type TEXT NOT NULL,
                hypervisor_version BIGINT NOT NULL,
                cpu_model TEXT NOT NULL,
                vcpus INTEGER NOT NULL,
                memory_mb BIGINT NOT NULL,
                local_gb BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )
            """,
        ]),
        Migration(version: 2, name: "identity", statements: [
            """
            CREATE TABLE domains (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',
                enabled BOOLEAN NOT NULL DEFAULT TRUE, extra TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE projects (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL REFERENCES domains(id),
                parent_id TEXT REFERENCES projects(id), description TEXT NOT NULL DEFAULT '',
                enabled BOOLEAN NOT NULL DEFAULT TRUE, extra TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL,
                UNIQUE (domain_id, name))
            """,
            """
            CREATE TABLE users (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL REFERENCES domains(id),
                password_hash TEXT, enabled BOOLEAN NOT NULL DEFAULT TRUE, default_project_id TEXT,
                description TEXT NOT NULL DEFAULT '', email TEXT, extra TEXT NOT NULL DEFAULT '{}',
                failed_auth_count INTEGER NOT NULL DEFAULT 0, last_failed_auth_at BIGINT, password_changed_at BIGINT,
                created_at BIGINT NOT NULL, UNIQUE (domain_id, name))
            """,
            """
            CREATE TABLE groups (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL REFERENCES domains(id),
                description TEXT NOT NULL DEFAULT '', created_at BIGINT NOT NULL, UNIQUE (domain_id, name))
            """,
            """
            CREATE TABLE group_members (
                group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                PRIMARY KEY (group_id, user_id))
            """,
            // domain_id '' marks a global role (NULLs would not be unique).
            """
            CREATE TABLE roles (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL DEFAULT '',
                description TEXT NOT NULL DEFAULT '', created_at BIGINT NOT NULL, UNIQUE (domain_id, name))
            """,
            """
            CREATE TABLE implied_roles (
                prior_role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
                implied_role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
                PRIMARY KEY (prior_role_id, implied_role_id))
            """,
            // actor_type: user | group; target_type: project | domain | system ('all').
            """
            CREATE TABLE role_assignments (
                actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
                role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE, inherited BOOLEAN NOT NULL DEFAULT FALSE,
                PRIMARY KEY (actor_type, actor_id, target_type, target_id, role_id))
            """,
            """
            CREATE TABLE regions (
                id TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', parent_region_id TEXT REFERENCES regions(id),
                created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE catalog_services (
                id TEXT PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
                enabled BOOLEAN NOT NULL DEFAULT TRUE, created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE endpoints (
                id TEXT PRIMARY KEY, service_id TEXT NOT NULL REFERENCES catalog_services(id) ON DELETE CASCADE,
                interface TEXT NOT NULL, url TEXT NOT NULL, region_id TEXT REFERENCES regions(id),
                enabled BOOLEAN NOT NULL DEFAULT TRUE, created_at BIGINT NOT NULL)
            """,
        ]),
        Migration(version: 3, name: "token revocation and application credentials", statements: [
            // A token matches an event when every non-NULL field of the event matches it and it was
            // issued at or before issued_before (Unix milliseconds).
            """
            CREATE TABLE revocation_events (
                id TEXT PRIMARY KEY, user_id TEXT, project_id TEXT, domain_id TEXT, audit_id TEXT,
                application_credential_id TEXT, issued_before BIGINT NOT NULL, created_at BIGINT NOT NULL)
            """,
            "CREATE INDEX revocation_events_created_at ON revocation_events (created_at)",
            """
            CREATE TABLE application_credentials (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                project_id TEXT NOT NULL, secret_hash TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
                expires_at BIGINT, unrestricted BOOLEAN NOT NULL DEFAULT FALSE, created_at BIGINT NOT NULL,
                UNIQUE (user_id, name))
            """,
            """
            CREATE TABLE application_credential_roles (
                application_credential_id TEXT NOT NULL REFERENCES application_credentials(id) ON DELETE CASCADE,
                role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
                PRIMARY KEY (application_credential_id, role_id))
            """,
        ]),
        Migration(version: 4, name: "hypervisor host address and uptime", statements: [
            "ALTER TABLE hypervisors ADD COLUMN host_ip TEXT",
            "ALTER TABLE hypervisors ADD COLUMN uptime TEXT",
        ]),
        // Nova's host aggregates: metadata (with availability_zone) and hosts as JSON text.
        Migration(version: 5, name: "host aggregates", statements: [
            """
            CREATE TABLE aggregates (
                id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, name TEXT NOT NULL UNIQUE,
                metadata TEXT NOT NULL DEFAULT '{}', hosts TEXT NOT NULL DEFAULT '[]',
                created_at BIGINT NOT NULL, updated_at BIGINT)
            """,
        ]),
        // Glance's images: the bytes live in the image store's directory, named by id.
        Migration(version: 6, name: "images", statements: [
            """
            CREATE TABLE images (
                id TEXT PRIMARY KEY, name TEXT, status TEXT NOT NULL, visibility TEXT NOT NULL, protected BOOLEAN NOT NULL DEFAULT FALSE,
                os_hidden BOOLEAN NOT NULL DEFAULT FALSE, owner TEXT, disk_format TEXT, container_format TEXT, size BIGINT,
                virtual_size BIGINT, checksum TEXT, os_hash_algo TEXT, os_hash_value TEXT, min_disk INTEGER NOT NULL DEFAULT 0,
                min_ram INTEGER NOT NULL DEFAULT 0, properties TEXT NOT NULL DEFAULT '{}', tags TEXT NOT NULL DEFAULT '[]',
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX images_owner ON images (owner)",
        ]),
        // Nova's flavors (with extra specs as a JSON object, and the projects a private
        // flavor is shared with) and key pairs (per user).
        Migration(version: 7, name: "flavors and key pairs", statements: [
            """
            CREATE TABLE flavors (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, memory_mb INTEGER NOT NULL, vcpus INTEGER NOT NULL,
                root_gb INTEGER NOT NULL, ephemeral_gb INTEGER NOT NULL DEFAULT 0, swap INTEGER NOT NULL DEFAULT 0,
                rxtx_factor DOUBLE PRECISION NOT NULL DEFAULT 1.0, is_public BOOLEAN NOT NULL DEFAULT TRUE,
                disabled BOOLEAN NOT NULL DEFAULT FALSE, description TEXT, extra_specs TEXT NOT NULL DEFAULT '{}',
                created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE flavor_projects (
                flavor_id TEXT NOT NULL REFERENCES flavors(id) ON DELETE CASCADE, project_id TEXT NOT NULL,
                PRIMARY KEY (flavor_id, project_id))
            """,
            """
            CREATE TABLE key_pairs (
                id INTEGER PRIMARY KEY, name TEXT NOT NULL, user_id TEXT NOT NULL, type TEXT NOT NULL,
                fingerprint TEXT NOT NULL, public_key TEXT NOT NULL, created_at BIGINT NOT NULL, UNIQUE (user_id, name))
            """,
        ]),
        // Nova's instances; a row with a host is that host's claim on its resources.
        Migration(version: 8, name: "instances", statements: [
            """
            CREATE TABLE instances (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
                host TEXT, flavor_id TEXT NOT NULL, vcpus INTEGER NOT NULL, memory_mb INTEGER NOT NULL,
                root_gb INTEGER NOT NULL, ephemeral_gb INTEGER NOT NULL DEFAULT 0, swap INTEGER NOT NULL DEFAULT 0,
                image_id TEXT, availability_zone TEXT, vm_state TEXT NOT NULL, task_state TEXT,
                power_state INTEGER NOT NULL DEFAULT 0, fault TEXT, metadata TEXT NOT NULL DEFAULT '{}',
                key_name TEXT, user_data TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX instances_host ON instances (host)",
            "CREATE INDEX instances_project ON instances (project_id)",
        ]),
        // Per-project quota limits that differ from the configured defaults.
        Migration(version: 9, name: "quotas", statements: [
            """
            CREATE TABLE quotas (
                project_id TEXT NOT NULL, resource TEXT NOT NULL, hard_limit BIGINT NOT NULL, PRIMARY KEY (project_id, resource))
            """,
        ]),
        // A counter every identity change bumps: controllers poll it to drop cached tokens and
        // catalogs when another controller changed something.
        Migration(version: 10, name: "identity generation", statements: [
            "CREATE TABLE identity_generation (id INTEGER PRIMARY KEY, value BIGINT NOT NULL)",
            "INSERT INTO identity_generation (id, value) VALUES (1, 0)",
        ]),
        // What the build and the nodes need on an instance: the hosts a build already failed
        // on, the last node update applied (its stamp orders updates), when it first ran.
        Migration(version: 11, name: "instance lifecycle", statements: [
            "ALTER TABLE instances ADD COLUMN tried_hosts TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE instances ADD COLUMN state_stamp BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE instances ADD COLUMN launched_at BIGINT",
            "ALTER TABLE instances ADD COLUMN reservation_id TEXT",
            "ALTER TABLE instances ADD COLUMN hostname TEXT",
            "ALTER TABLE instances ADD COLUMN flavor_name TEXT",
            "ALTER TABLE instances ADD COLUMN flavor_extra_specs TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE hypervisors ADD COLUMN running_vms INTEGER NOT NULL DEFAULT 0",
        ]),
        // Listings page in SQL: servers of a project (or of all) newest first, images newest first.
        Migration(version: 12, name: "listing indexes", statements: [
            "CREATE INDEX instances_project_created ON instances (project_id, created_at, id)",
            "CREATE INDEX instances_created ON instances (created_at, id)",
            "CREATE INDEX images_created ON images (created_at, id)",
        ]),
        // Nodes before version 13 reported the network agents and cinder-volume although none
        // of their code ran; those rows are dropped (a service that runs reports itself again).
        Migration(version: 13, name: "services no node ran", statements: [
            """
            DELETE FROM services WHERE service_binary IN ('neutron-linuxbridge-agent', 'neutron-dhcp-agent', 'neutron-l3-agent',
                'neutron-metadata-agent', 'cinder-volume')
            """,
        ]),
        // Neutron's core: networks with their one segment (the allocations table keeps a segment
        // from being given twice, on both databases), subnets, ports and their addresses (the
        // primary key keeps an address from being given twice).
        Migration(version: 14, name: "networking", statements: [
            """
            CREATE TABLE networks (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
                admin_state_up BOOLEAN NOT NULL DEFAULT TRUE, shared BOOLEAN NOT NULL DEFAULT FALSE,
                external BOOLEAN NOT NULL DEFAULT FALSE, mtu INTEGER NOT NULL, port_security_enabled BOOLEAN NOT NULL DEFAULT TRUE,
                availability_zone_hints TEXT NOT NULL DEFAULT '[]', network_type TEXT NOT NULL, physical_network TEXT,
                segmentation_id INTEGER, dns_domain TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '[]', revision_number INTEGER NOT NULL DEFAULT 0,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX networks_project ON networks (project_id)",
            """
            CREATE TABLE network_segments (
                network_type TEXT NOT NULL, physical_network TEXT NOT NULL, segmentation_id INTEGER NOT NULL,
                network_id TEXT NOT NULL, PRIMARY KEY (network_type, physical_network, segmentation_id))
            """,
            """
            CREATE TABLE subnets (
                id TEXT PRIMARY KEY, network_id TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
                description TEXT NOT NULL DEFAULT '', ip_version INTEGER NOT NULL, cidr TEXT NOT NULL, gateway_ip TEXT,
                allocation_pools TEXT NOT NULL DEFAULT '[]', dns_nameservers TEXT NOT NULL DEFAULT '[]',
                host_routes TEXT NOT NULL DEFAULT '[]', enable_dhcp BOOLEAN NOT NULL DEFAULT TRUE,
                ipv6_address_mode TEXT, ipv6_ra_mode TEXT, tags TEXT NOT NULL DEFAULT '[]',
                revision_number INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX subnets_network ON subnets (network_id)",
            """
            CREATE TABLE ports (
                id TEXT PRIMARY KEY, network_id TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
                description TEXT NOT NULL DEFAULT '', admin_state_up BOOLEAN NOT NULL DEFAULT TRUE, mac_address TEXT NOT NULL,
                device_owner TEXT NOT NULL DEFAULT '', device_id TEXT NOT NULL DEFAULT '', status TEXT NOT NULL,
                host TEXT NOT NULL DEFAULT '', vif_type TEXT NOT NULL, vif_details TEXT NOT NULL DEFAULT '{}',
                vnic_type TEXT NOT NULL DEFAULT 'normal', profile TEXT NOT NULL DEFAULT '{}',
                allowed_address_pairs TEXT NOT NULL DEFAULT '[]', extra_dhcp_opts TEXT NOT NULL DEFAULT '[]',
                dns_name TEXT NOT NULL DEFAULT '', port_security_enabled BOOLEAN NOT NULL DEFAULT TRUE,
                security_groups TEXT NOT NULL DEFAULT '[]', tags TEXT NOT NULL DEFAULT '[]',
                revision_number INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                UNIQUE (network_id, mac_address))
            """,
            "CREATE INDEX ports_project ON ports (project_id)",
            "CREATE INDEX ports_device ON ports (device_id)",
            "CREATE INDEX ports_host ON ports (host)",
            """
            CREATE TABLE ip_allocations (
                subnet_id TEXT NOT NULL, ip_address TEXT NOT NULL, port_id TEXT NOT NULL, network_id TEXT NOT NULL,
                position INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (subnet_id, ip_address))
            """,
            "CREATE INDEX ip_allocations_port ON ip_allocations (port_id)",
            // Each node's tunnel endpoint, as its network service last said (l2 population).
            "CREATE TABLE network_hosts (host TEXT PRIMARY KEY, tunnel_ip TEXT NOT NULL, updated_at BIGINT NOT NULL)",
            // The networks and ports a server asked for, and the ports made for it.
            "ALTER TABLE instances ADD COLUMN requested_networks TEXT NOT NULL DEFAULT '[]'",
        ]),
        // What the metadata API serves a guest: its
        // key pair as it was at creation (Nova keeps a copy, so deleting the key pair later
        // changes nothing the guest sees), its index within a multi-create, and the password
        // the guest posts once; and whether it boots with a config drive.
        Migration(version: 15, name: "instance metadata", statements: [
            "ALTER TABLE instances ADD COLUMN key_data TEXT",
            "ALTER TABLE instances ADD COLUMN key_type TEXT",
            "ALTER TABLE instances ADD COLUMN launch_index INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE instances ADD COLUMN metadata_password TEXT",
            "ALTER TABLE instances ADD COLUMN config_drive BOOLEAN NOT NULL DEFAULT FALSE",
        ]),
        // Security groups and their rules (a rule's whole meaning is unique in its group, so two
        // controllers cannot both add the same rule), and address groups: named address lists
        // rules may use as their remote end. `default_security_groups` keeps one default group
        // per project, whichever controller makes it first.
        Migration(version: 16, name: "security groups", statements: [
            """
            CREATE TABLE security_groups (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
                stateful BOOLEAN NOT NULL DEFAULT TRUE, tags TEXT NOT NULL DEFAULT '[]', revision_number INTEGER NOT NULL DEFAULT 0,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX security_groups_project ON security_groups (project_id)",
            "CREATE TABLE default_security_groups (project_id TEXT PRIMARY KEY, security_group_id TEXT NOT NULL)",
            """
            CREATE TABLE security_group_rules (
                id TEXT PRIMARY KEY, security_group_id TEXT NOT NULL, project_id TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
                direction TEXT NOT NULL, ethertype TEXT NOT NULL, protocol TEXT NOT NULL DEFAULT '',
                port_range_min INTEGER NOT NULL DEFAULT -1, port_range_max INTEGER NOT NULL DEFAULT -1,
                remote_ip_prefix TEXT NOT NULL DEFAULT '', remote_group_id TEXT NOT NULL DEFAULT '',
                remote_address_group_id TEXT NOT NULL DEFAULT '', revision_number INTEGER NOT NULL DEFAULT 0,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                UNIQUE (security_group_id, direction, ethertype, protocol, port_range_min, port_range_max, remote_ip_prefix,
                        remote_group_id, remote_address_group_id))
            """,
            "CREATE INDEX security_group_rules_remote ON security_group_rules (remote_group_id)",
            """
            CREATE TABLE address_groups (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
                addresses TEXT NOT NULL DEFAULT '[]', revision_number INTEGER NOT NULL DEFAULT 0,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
        ]),
        // Routers (the node whose L3 agent runs each one, its gateway), floating IPs (the
        // unique key keeps one fixed address from having two floating IPs) and port forwardings
        // (one external port of a floating IP forwards to one place).
        Migration(version: 17, name: "routers and floating IPs", statements: [
            """
            CREATE TABLE routers (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
                admin_state_up BOOLEAN NOT NULL DEFAULT TRUE, status TEXT NOT NULL DEFAULT 'ACTIVE',
                gateway_network_id TEXT, gateway_port_id TEXT, enable_snat BOOLEAN NOT NULL DEFAULT TRUE,
                routes TEXT NOT NULL DEFAULT '[]', host TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '[]',
                revision_number INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX routers_project ON routers (project_id)",
            """
            CREATE TABLE floating_ips (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
                floating_network_id TEXT NOT NULL, floating_ip_address TEXT NOT NULL, floating_port_id TEXT NOT NULL,
                port_id TEXT, fixed_ip_address TEXT, router_id TEXT, status TEXT NOT NULL DEFAULT 'DOWN',
                dns_name TEXT NOT NULL DEFAULT '', dns_domain TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '[]',
                revision_number INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                UNIQUE (port_id, fixed_ip_address))
            """,
            "CREATE INDEX floating_ips_project ON floating_ips (project_id)",
            "CREATE INDEX floating_ips_router ON floating_ips (router_id)",
            """
            CREATE TABLE port_forwardings (
                id TEXT PRIMARY KEY, floatingip_id TEXT NOT NULL, internal_port_id TEXT NOT NULL, internal_ip_address TEXT NOT NULL,
                internal_port INTEGER NOT NULL, external_port INTEGER NOT NULL, protocol TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
                UNIQUE (floatingip_id, protocol, external_port))
            """,
        ]),
        // Block storage: volume types (Cinder's `__DEFAULT__` one made here, as Cinder's own
        // migration does), which projects see a private type, volumes (`host` and `backend` once
        // scheduled) and the capacity each node's volume backends last reported.
        Migration(version: 18, name: "volumes", statements: [
            """
            CREATE TABLE volume_types (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT, is_public BOOLEAN NOT NULL DEFAULT TRUE,
                extra_specs TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "INSERT INTO volume_types (id, name, description, is_public, extra_specs, created_at, updated_at) VALUES ('\(UUID().uuidString.lowercased())', '__DEFAULT__', 'Default Volume Type', TRUE, '{}', 0, 0)",
            "CREATE TABLE volume_type_access (volume_type_id TEXT NOT NULL, project_id TEXT NOT NULL, PRIMARY KEY (volume_type_id, project_id))",
            """
            CREATE TABLE volumes (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT, description TEXT,
                size INTEGER NOT NULL, status TEXT NOT NULL, previous_status TEXT, host TEXT NOT NULL DEFAULT '', backend TEXT NOT NULL DEFAULT '',
                volume_type_id TEXT NOT NULL, availability_zone TEXT NOT NULL, bootable BOOLEAN NOT NULL DEFAULT FALSE,
                metadata TEXT NOT NULL DEFAULT '{}', image_metadata TEXT NOT NULL DEFAULT '{}', source_volid TEXT, snapshot_id TEXT,
                image_id TEXT, fault TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX volumes_project ON volumes (project_id, created_at, id)",
            "CREATE INDEX volumes_host ON volumes (host, backend)",
            """
            CREATE TABLE volume_backends (
                host TEXT NOT NULL, backend TEXT NOT NULL, backend_name TEXT NOT NULL, driver TEXT NOT NULL, thin BOOLEAN NOT NULL,
                total_bytes BIGINT NOT NULL, free_bytes BIGINT NOT NULL, reserved_percentage INTEGER NOT NULL,
                max_over_subscription_ratio DOUBLE PRECISION NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (host, backend))
            """,
        ]),
        // Volumes attached to servers: which instance, where the disk is on the host and the
        // device the guest got (the instance's definition is rebuilt with it); one attachment per
        // volume (no multiattach).
        Migration(version: 19, name: "volume attachments", statements: [
            """
            CREATE TABLE volume_attachments (
                id TEXT PRIMARY KEY, volume_id TEXT NOT NULL UNIQUE, instance_id TEXT NOT NULL, host TEXT NOT NULL,
                device TEXT, path TEXT NOT NULL DEFAULT '', block BOOLEAN NOT NULL DEFAULT FALSE, status TEXT NOT NULL,
                created_at BIGINT NOT NULL)
            """,
            "CREATE INDEX volume_attachments_instance ON volume_attachments (instance_id)",
        ]),
        // Volume snapshots, kept on their volume's backend.
        Migration(version: 20, name: "volume snapshots", statements: [
            """
            CREATE TABLE snapshots (
                id TEXT PRIMARY KEY, volume_id TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT, description TEXT,
                size INTEGER NOT NULL, status TEXT NOT NULL, host TEXT NOT NULL, backend TEXT NOT NULL, volume_type_id TEXT NOT NULL,
                metadata TEXT NOT NULL DEFAULT '{}', fault TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX snapshots_project ON snapshots (project_id, created_at, id)",
            "CREATE INDEX snapshots_volume ON snapshots (volume_id)",
        ]),
        // A volume being uploaded to an image: which image and in which disk format (JSON), so
        // a node restarted mid-upload finishes it.
        Migration(version: 21, name: "volume uploads", statements: [
            "ALTER TABLE volumes ADD COLUMN upload TEXT",
        ]),
        // Volume backups, kept by the node holding the volume in its backup directory; an
        // incremental one names its parent; a restore names the volume it writes.
        Migration(version: 22, name: "volume backups", statements: [
            """
            CREATE TABLE backups (
                id TEXT PRIMARY KEY, volume_id TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT, description TEXT,
                size INTEGER NOT NULL, status TEXT NOT NULL, host TEXT NOT NULL, backend TEXT NOT NULL, parent_id TEXT,
                object_count INTEGER NOT NULL DEFAULT 0, restore_volume_id TEXT, metadata TEXT NOT NULL DEFAULT '{}', fail_reason TEXT,
                availability_zone TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, data_timestamp BIGINT NOT NULL)
            """,
            "CREATE INDEX backups_project ON backups (project_id, created_at, id)",
            "CREATE INDEX backups_volume ON backups (volume_id)",
        ]),
        // Boot from volume: the block devices a server asked for (JSON, with the volumes made
        // for them once made), whether its root disk is a volume (not counted against its
        // host's local disk), whether an attached volume goes with its server; attachments
        // made through the volume API (for a consumer that connects the volume itself) and
        // their mode.
        Migration(version: 23, name: "block device mappings", statements: [
            "ALTER TABLE instances ADD COLUMN block_devices TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE instances ADD COLUMN root_on_volume BOOLEAN NOT NULL DEFAULT FALSE",
            "ALTER TABLE volume_attachments ADD COLUMN delete_on_termination BOOLEAN NOT NULL DEFAULT FALSE",
            "ALTER TABLE volume_attachments ADD COLUMN external BOOLEAN NOT NULL DEFAULT FALSE",
            "ALTER TABLE volume_attachments ADD COLUMN attach_mode TEXT NOT NULL DEFAULT 'rw'",
        ]),
        // Volumes reached over iSCSI by a guest on another host: the CHAP account an
        // attachment gets (kept so the volume's node can export it again after a restart of
        // tgtd or of itself) and the target it was exported on (JSON).
        Migration(version: 24, name: "iscsi exports", statements: [
            "ALTER TABLE volume_attachments ADD COLUMN chap_user TEXT",
            "ALTER TABLE volume_attachments ADD COLUMN chap_secret TEXT",
            "ALTER TABLE volume_attachments ADD COLUMN target TEXT",
        ]),
        // Cinder's user messages: what failed on a user's volume, snapshot or backup.
        Migration(version: 25, name: "volume messages", statements: [
            """
            CREATE TABLE volume_messages (
                id TEXT PRIMARY KEY,
                project_id TEXT NOT NULL,
                request_id TEXT NOT NULL,
                resource_type TEXT NOT NULL,
                resource_uuid TEXT,
                event_id TEXT NOT NULL,
                message_level TEXT NOT NULL,
                user_message TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX volume_messages_project ON volume_messages (project_id)",
        ]),
        // The rest of Keystone v3: credentials (blobs encrypted with their own key repository),
        // trusts, project tags, domain-specific configuration, policies and their endpoint
        // associations, endpoint groups and project endpoint filters, application-credential
        // access rules, user options and password history. Empty strings stand for "none" in
        // key columns, where NULLs would not be unique.
        Migration(version: 26, name: "identity complete", statements: [
            """
            CREATE TABLE credentials (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, project_id TEXT,
                type TEXT NOT NULL, encrypted_blob TEXT NOT NULL, key_hash TEXT NOT NULL,
                extra TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL)
            """,
            "CREATE INDEX credentials_user ON credentials (user_id)",
            """
            CREATE TABLE trusts (
                id TEXT PRIMARY KEY, trustor_user_id TEXT NOT NULL, trustee_user_id TEXT NOT NULL, project_id TEXT,
                impersonation BOOLEAN NOT NULL, expires_at BIGINT, remaining_uses INTEGER,
                allow_redelegation BOOLEAN NOT NULL DEFAULT FALSE, redelegation_count INTEGER NOT NULL DEFAULT 0,
                redelegated_trust_id TEXT, extra TEXT NOT NULL DEFAULT '{}', deleted_at BIGINT, created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE trust_roles (
                trust_id TEXT NOT NULL REFERENCES trusts(id) ON DELETE CASCADE, role_id TEXT NOT NULL,
                PRIMARY KEY (trust_id, role_id))
            """,
            """
            CREATE TABLE project_tags (
                project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE, name TEXT NOT NULL,
                PRIMARY KEY (project_id, name))
            """,
            "ALTER TABLE projects ADD COLUMN options TEXT NOT NULL DEFAULT '{}'",
            """
            CREATE TABLE domain_config (
                domain_id TEXT NOT NULL REFERENCES domains(id) ON DELETE CASCADE, group_name TEXT NOT NULL,
                option_name TEXT NOT NULL, value TEXT NOT NULL, sensitive BOOLEAN NOT NULL DEFAULT FALSE,
                PRIMARY KEY (domain_id, group_name, option_name))
            """,
            """
            CREATE TABLE policies (
                id TEXT PRIMARY KEY, type TEXT NOT NULL, blob TEXT NOT NULL, extra TEXT NOT NULL DEFAULT '{}',
                created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE policy_associations (
                id TEXT PRIMARY KEY, policy_id TEXT NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
                endpoint_id TEXT REFERENCES endpoints(id) ON DELETE CASCADE,
                service_id TEXT REFERENCES catalog_services(id) ON DELETE CASCADE,
                region_id TEXT REFERENCES regions(id) ON DELETE CASCADE)
            """,
            // One policy per endpoint, service, or service in a region (NULL: not part of the target).
            """
            CREATE UNIQUE INDEX policy_associations_target ON policy_associations (
                COALESCE(endpoint_id, ''), COALESCE(service_id, ''), COALESCE(region_id, ''))
            """,
            """
            CREATE TABLE endpoint_groups (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT, filters TEXT NOT NULL,
                created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE project_endpoints (
                project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE, PRIMARY KEY (project_id, endpoint_id))
            """,
            """
            CREATE TABLE project_endpoint_groups (
                endpoint_group_id TEXT NOT NULL REFERENCES endpoint_groups(id) ON DELETE CASCADE,
                project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE, PRIMARY KEY (endpoint_group_id, project_id))
            """,
            """
            CREATE TABLE access_rules (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                service TEXT NOT NULL, path TEXT NOT NULL, method TEXT NOT NULL, created_at BIGINT NOT NULL,
                UNIQUE (user_id, service, path, method))
            """,
            """
            CREATE TABLE application_credential_access_rules (
                application_credential_id TEXT NOT NULL REFERENCES application_credentials(id) ON DELETE CASCADE,
                access_rule_id TEXT NOT NULL REFERENCES access_rules(id),
                PRIMARY KEY (application_credential_id, access_rule_id))
            """,
            // OS-INHERIT: a role may be assigned on a target both directly and as inherited by
            // the projects below it, so `inherited` joins the key (a table rebuilt, as SQLite
            // cannot change a primary key in place).
            """
            CREATE TABLE role_assignments_v26 (
                actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
                role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE, inherited BOOLEAN NOT NULL DEFAULT FALSE,
                PRIMARY KEY (actor_type, actor_id, target_type, target_id, role_id, inherited))
            """,
            """
            INSERT INTO role_assignments_v26 (actor_type, actor_id, target_type, target_id, role_id, inherited)
            SELECT actor_type, actor_id, target_type, target_id, role_id, inherited FROM role_assignments
            """,
            "DROP TABLE role_assignments",
            "ALTER TABLE role_assignments_v26 RENAME TO role_assignments",
            "CREATE INDEX role_assignments_target ON role_assignments (target_type, target_id)",
            // Keystone's resource options of a user (lock_password, multi_factor_auth_rules, …), as JSON.
            "ALTER TABLE users ADD COLUMN options TEXT NOT NULL DEFAULT '{}'",
            // When the password stops working ([security_compliance] password_expires_days,
            // change_password_upon_first_use); NULL: never.
            "ALTER TABLE users ADD COLUMN password_expires_at BIGINT",
            // Every password a user had (unique_last_password_count), and whether the user set it
            // (minimum_password_age counts only from a password the user chose).
            """
            CREATE TABLE password_history (
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, password_hash TEXT NOT NULL,
                self_service BOOLEAN NOT NULL DEFAULT FALSE, created_at BIGINT NOT NULL, PRIMARY KEY (user_id, created_at))
            """,
        ]),
        // What a server keeps beyond its build (Nova's access addresses, description, lock,
        // tags, the scheduler hints it was created with), and the integer ids Nova's services
        // and hypervisors had before microversion 2.53 (numbered in creation order, unique).
        Migration(version: 27, name: "compute details", statements: [
            "ALTER TABLE instances ADD COLUMN access_ipv4 TEXT",
            "ALTER TABLE instances ADD COLUMN access_ipv6 TEXT",
            "ALTER TABLE instances ADD COLUMN description TEXT",
            // Who locked it ('owner' or 'admin', as Nova's locked_by) and why; NULL: unlocked.
            "ALTER TABLE instances ADD COLUMN locked_by TEXT",
            "ALTER TABLE instances ADD COLUMN locked_reason TEXT",
            "ALTER TABLE instances ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE instances ADD COLUMN scheduler_hints TEXT NOT NULL DEFAULT '{}'",
            // The snapshot a shelved server's disk waits in until it is unshelved.
            "ALTER TABLE instances ADD COLUMN shelved_image_id TEXT",
            "ALTER TABLE services ADD COLUMN number INTEGER",
            """
            UPDATE services SET number = (SELECT COUNT(*) FROM services earlier
                WHERE earlier.created_at < services.created_at OR (earlier.created_at = services.created_at AND earlier.id <= services.id))
            """,
            "CREATE UNIQUE INDEX services_number ON services (number)",
            "ALTER TABLE hypervisors ADD COLUMN number INTEGER",
            "UPDATE hypervisors SET number = (SELECT COUNT(*) FROM hypervisors earlier WHERE earlier.id <= hypervisors.id)",
            "CREATE UNIQUE INDEX hypervisors_number ON hypervisors (number)",
            // Nova's instance actions (what was asked of a server, by whom, under which request
            // id) and their events (what the compute host did, and how it ended).
            """
            CREATE TABLE instance_actions (
                id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, action TEXT NOT NULL, request_id TEXT NOT NULL,
                user_id TEXT NOT NULL, project_id TEXT NOT NULL, start_time BIGINT NOT NULL, updated_at BIGINT NOT NULL, message TEXT)
            """,
            "CREATE INDEX instance_actions_instance ON instance_actions (instance_id, start_time)",
            """
            CREATE TABLE instance_action_events (
                id TEXT PRIMARY KEY, action_id TEXT NOT NULL REFERENCES instance_actions(id) ON DELETE CASCADE, event TEXT NOT NULL,
                start_time BIGINT NOT NULL, finish_time BIGINT, result TEXT, host TEXT, details TEXT)
            """,
            "CREATE INDEX instance_action_events_action ON instance_action_events (action_id)",
            // Nova's server groups (affinity, anti-affinity and their soft forms) and members.
            """
            CREATE TABLE server_groups (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL, policy TEXT NOT NULL,
                rules TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL)
            """,
            "CREATE INDEX server_groups_project ON server_groups (project_id)",
            """
            CREATE TABLE server_group_members (
                group_id TEXT NOT NULL REFERENCES server_groups(id) ON DELETE CASCADE, instance_id TEXT NOT NULL,
                PRIMARY KEY (group_id, instance_id))
            """,
            "CREATE INDEX server_group_members_instance ON server_group_members (instance_id)",
        ]),
        // The Placement API: resource providers (one per compute node, uuid = the hypervisor's
        // id; nested through parent/root), their inventories, traits and aggregates, custom
        // resource classes and traits, consumers with their generations, and the allocations
        // the scheduler claims with. Standard resource classes and traits live in code.
        Migration(version: 28, name: "placement", statements: [
            """
            CREATE TABLE resource_providers (
                uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, generation INTEGER NOT NULL DEFAULT 0,
                parent_uuid TEXT REFERENCES resource_providers(uuid), root_uuid TEXT NOT NULL,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX resource_providers_root ON resource_providers (root_uuid)",
            """
            CREATE TABLE placement_inventories (
                provider_uuid TEXT NOT NULL REFERENCES resource_providers(uuid) ON DELETE CASCADE, resource_class TEXT NOT NULL,
                total INTEGER NOT NULL, reserved INTEGER NOT NULL DEFAULT 0, min_unit INTEGER NOT NULL DEFAULT 1,
                max_unit INTEGER NOT NULL, step_size INTEGER NOT NULL DEFAULT 1, allocation_ratio DOUBLE PRECISION NOT NULL DEFAULT 1.0,
                PRIMARY KEY (provider_uuid, resource_class))
            """,
            "CREATE TABLE placement_resource_classes (name TEXT PRIMARY KEY, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
            "CREATE TABLE placement_traits (name TEXT PRIMARY KEY, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
            """
            CREATE TABLE placement_provider_traits (
                provider_uuid TEXT NOT NULL REFERENCES resource_providers(uuid) ON DELETE CASCADE, trait TEXT NOT NULL,
                PRIMARY KEY (provider_uuid, trait))
            """,
            """
            CREATE TABLE placement_provider_aggregates (
                provider_uuid TEXT NOT NULL REFERENCES resource_providers(uuid) ON DELETE CASCADE, aggregate_uuid TEXT NOT NULL,
                PRIMARY KEY (provider_uuid, aggregate_uuid))
            """,
            """
            CREATE TABLE placement_consumers (
                uuid TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT NOT NULL, generation INTEGER NOT NULL DEFAULT 0,
                consumer_type TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX placement_consumers_project ON placement_consumers (project_id, user_id)",
            """
            CREATE TABLE placement_allocations (
                provider_uuid TEXT NOT NULL REFERENCES resource_providers(uuid), consumer_uuid TEXT NOT NULL,
                resource_class TEXT NOT NULL, used INTEGER NOT NULL, created_at BIGINT NOT NULL,
                PRIMARY KEY (provider_uuid, consumer_uuid, resource_class))
            """,
            "CREATE INDEX placement_allocations_consumer ON placement_allocations (consumer_uuid)",
        ]),
        // Console tokens (Nova's console_auth_tokens): what a remote console URL's token opens,
        // kept as its SHA-256 only, until it expires or its one connection took it.
        Migration(version: 29, name: "console auth tokens", statements: [
            """
            CREATE TABLE console_auth_tokens (
                token_hash TEXT PRIMARY KEY, instance_uuid TEXT NOT NULL, console_type TEXT NOT NULL,
                compute_host TEXT NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL, internal_access_path TEXT,
                access_url_base TEXT NOT NULL, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL)
            """,
            "CREATE INDEX console_auth_tokens_instance ON console_auth_tokens (instance_uuid)",
            "CREATE INDEX console_auth_tokens_expires ON console_auth_tokens (expires_at)",
        ]),
        // Nova's migrations (`os-migrations`): each resize and cold migration, its hosts, its
        // flavors before and after (as the JSON of the instance's flavor columns, for a revert),
        // the VM state it started from, and its status. `id` is Nova's integer id. And a
        // rescued server's rescue image, and the backup a server is writing.
        Migration(version: 30, name: "migrations and rescue", statements: [
            """
            CREATE TABLE migrations (
                id BIGINT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, instance_uuid TEXT NOT NULL, migration_type TEXT NOT NULL,
                status TEXT NOT NULL, source_compute TEXT, dest_compute TEXT, source_node TEXT, dest_node TEXT, dest_host TEXT,
                old_flavor TEXT NOT NULL, new_flavor TEXT NOT NULL, old_vm_state TEXT NOT NULL,
                project_id TEXT NOT NULL, user_id TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            "CREATE INDEX migrations_instance ON migrations (instance_uuid, created_at)",
            "CREATE INDEX migrations_status ON migrations (status)",
            // The image a rescued server boots from while it is rescued.
            "ALTER TABLE instances ADD COLUMN rescue_image_id TEXT",
            // The backup a server's createBackup is writing, with its type and rotation.
            "ALTER TABLE instances ADD COLUMN pending_backup TEXT",
        ]),
        // Nova's quota classes (`quota_classes`): limits set per class name. Only the class
        // `default` matters: its values replace the configured defaults of every project.
        Migration(version: 31, name: "quota classes", statements: [
            """
            CREATE TABLE quota_classes (
                class_name TEXT NOT NULL, resource TEXT NOT NULL, hard_limit BIGINT NOT NULL, PRIMARY KEY (class_name, resource))
            """,
        ]),
        // Nova's deferred delete: when a server was (soft-)deleted, for its reclaim after
        // `reclaim_instance_interval`.
        Migration(version: 32, name: "soft-deleted instances", statements: [
            "ALTER TABLE instances ADD COLUMN deleted_at BIGINT",
        ]),
    ]
}
