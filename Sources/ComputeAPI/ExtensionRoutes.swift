import Foundation
import Hummingbird
import PetrelCore
import PetrelHTTP

/// `/extensions`: Nova's records of the v2 extensions folded into v2.1, listing only those
/// whose functionality this cloud serves (Nova lists all 99 of its own). An alias is listed
/// when its routes, actions or fields are here; those of servers only when the servers API is.
extension ComputeAPI {
    static let extensionPolicies: [PolicyDefault] = [
        PolicyDefault("os_compute_api:extensions", "@", "List the available extensions and show their details.",
                      ["GET /compute/v2.1/extensions", "GET /compute/v2.1/extensions/{alias}"]),
    ]

    /// (alias, name, description) in Nova's words.
    typealias ExtensionRecord = (alias: String, name: String, description: String)

    /// Served by the routes that need no servers API.
    static let baseExtensions: [ExtensionRecord] = [
        ("OS-FLV-DISABLED", "FlavorDisabled", "Support to show the disabled status of a flavor."),
        ("OS-FLV-EXT-DATA", "FlavorExtraData", "Provide additional data for flavors."),
        ("os-aggregates", "Aggregates", "Admin-only aggregate administration."),
        ("os-availability-zone", "AvailabilityZone", "1. Add availability_zone to the Create Server API.\n       2. Add availability zones describing.\n    "),
        ("os-extended-quotas", "ExtendedQuotas", "Adds ability for admins to delete quota and optionally force the update Quota command."),
        ("os-extended-services-delete", "ExtendedServicesDelete", "Extended services deletion support."),
        ("os-flavor-access", "FlavorAccess", "Flavor access support."),
        ("os-flavor-extra-specs", "FlavorExtraSpecs", "Flavors extra specs support."),
        ("os-flavor-manage", "FlavorManage", "Flavor create/delete API support."),
        ("os-flavor-rxtx", "FlavorRxtx", "Support to show the rxtx status of a flavor."),
        ("os-flavor-swap", "FlavorSwap", "Support to show the swap status of a flavor."),
        ("os-hypervisors", "Hypervisors", "Admin-only hypervisor administration."),
        ("os-instance_usage_audit_log", "OSInstanceUsageAuditLog", "Admin-only Task Log Monitoring."),
        ("os-keypairs", "Keypairs", "Keypair Support."),
        ("os-quota-class-sets", "QuotaClasses", "Quota classes management support."),
        ("os-quota-sets", "Quotas", "Quotas management support."),
        ("os-server-external-events", "ServerExternalEvents", "Server External Event Triggers."),
        ("os-services", "Services", "Services support."),
        ("os-simple-tenant-usage", "SimpleTenantUsage", "Simple tenant usage extension."),
        ("os-used-limits", "UsedLimits", "Provide data on limited resources that are being used."),
        ("os-used-limits-for-admin", "UsedLimitsForAdmin", "Provide data to admin on limited resources used by other tenants."),
    ]

    /// Served with the servers API (server fields, create options, actions, sub-resources).
    static let serverExtensions: [ExtensionRecord] = [
        ("OS-EXT-AZ", "ExtendedAvailabilityZone", "Extended Availability Zone support."),
        ("OS-EXT-IPS", "ExtendedIps", "Adds type parameter to the ip list."),
        ("OS-EXT-IPS-MAC", "ExtendedIpsMac", "Adds mac address parameter to the ip list."),
        ("OS-EXT-SRV-ATTR", "ExtendedServerAttributes", "Extended Server Attributes support."),
        ("OS-EXT-STS", "ExtendedStatus", "Extended Status support."),
        ("OS-SCH-HNT", "SchedulerHints", "Pass arbitrary key/value pairs to the scheduler."),
        ("OS-SRV-USG", "ServerUsage", "Adds launched_at and terminated_at on Servers."),
        ("os-access-ips", "AccessIPs", "Access IPs support."),
        ("os-attach-interfaces", "AttachInterfaces", "Attach interface support."),
        ("os-block-device-mapping-v2-boot", "BlockDeviceMappingV2Boot", "Allow boot with the new BDM data format."),
        ("os-config-drive", "ConfigDrive", "Config Drive Extension."),
        ("os-console-output", "ConsoleOutput", "Console log output support, with tailing ability."),
        ("os-create-backup", "CreateBackup", "Create a backup of a server."),
        ("os-deferred-delete", "DeferredDelete", "Instance deferred delete."),
        ("os-extended-status", "ExtendedStatus", "Extended Status support."),
        ("os-extended-volumes", "ExtendedVolumes", "Extended Volumes support."),
        ("os-instance-actions", "InstanceActions", "View a log of actions and events taken on an instance."),
        ("os-lock-server", "LockServer", "Enable lock/unlock server actions."),
        ("os-migrations", "Migrations", "Provide data on migrations."),
        ("os-multiple-create", "MultipleCreate", "Allow multiple create in the Create Server v2.1 API."),
        ("os-pause-server", "PauseServer", "Enable pause/unpause server actions."),
        ("os-rescue", "Rescue", "Instance rescue mode."),
        ("os-security-groups", "SecurityGroups", "Security group support."),
        ("os-server-diagnostics", "ServerDiagnostics", "Allow Admins to view server diagnostics through server action."),
        ("os-server-group-quotas", "ServerGroupQuotas", "Adds quota support to server groups."),
        ("os-server-groups", "ServerGroups", "Server group support."),
        ("os-server-password", "ServerPassword", "Server password support."),
        ("os-server-sort-keys", "ServerSortKeys", "Add sorting support in get Server v2 API."),
        ("os-server-start-stop", "ServerStartStop", "Start/Stop instance compute API support."),
        ("os-shelve", "Shelve", "Instance shelve mode."),
        ("os-suspend-server", "SuspendServer", "Enable suspend/resume server actions."),
        ("os-user-data", "UserData", "Add user_data to the Create Server API."),
    ]

    /// Served when remote consoles are (their tokens' admin API).
    static let consoleExtensions: [ExtensionRecord] = [
        ("os-console-auth-tokens", "ConsoleAuthTokens", "Console token authentication support."),
    ]

    /// The records this cloud lists, sorted by alias as Nova's list is.
    var extensionRecords: [JSON] {
        var records = Self.baseExtensions
        if conductor != nil { records += Self.serverExtensions }
        if conductor != nil && consoles != nil { records += Self.consoleExtensions }
        // The image proxy's size field (ImageProxyRoutes.swift).
        if images != nil || conductor != nil { records.append(("OS-EXT-IMG-SIZE", "ImageSize", "Adds image size to image listings.")) }
        return records.sorted { $0.alias.unicodeScalars.lexicographicallyPrecedes($1.alias.unicodeScalars) }.map { record in
            ["alias": .string(record.alias), "description": .string(record.description), "links": [], "name": .string(record.name),
             "namespace": "http://docs.openstack.org/compute/ext/fake_xml", "updated": "2014-12-03T00:00:00Z"]
        }
    }

    func registerExtensions(on v21: APIRoutes) {
        let records = extensionRecords
        v21.get("extensions", query: NovaQuerySchemas.open) { request, context in
            let (_, version) = try await begin(request, context, "os_compute_api:extensions")
            return answer(.ok, ["extensions": .array(records)], version)
        }
        v21.get("extensions/:alias", query: NovaQuerySchemas.open) { request, context in
            let alias = try context.parameters.require("alias")
            let (_, version) = try await begin(request, context, "os_compute_api:extensions")
            guard let record = records.first(where: { $0["alias"]?.stringValue == alias }) else {
                throw APIFault(.notFound, "The resource could not be found.")
            }
            return answer(.ok, ["extension": record], version)
        }
    }
}
