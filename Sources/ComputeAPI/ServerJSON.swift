import Compute
import Contracts
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Images
import PetrelCore
import PetrelHTTP
import Volumes

/// A server as Nova shows it, per microversion.
extension ComputeAPI {
    func serverLinks(_ id: String) -> JSON {
        [["rel": "self", "href": .string(base + "/v2.1/servers/" + id)], ["rel": "bookmark", "href": .string(base + "/servers/" + id)]]
    }

    /// Nova's `hostId`: the host, hashed with the project so projects cannot compare hosts.
    static func hostID(project: String, host: String?) -> String {
        guard let host else { return "" }
        return SHA256.hash(data: Data((project + host).utf8)).map { String(format: "%02x", $0) }.joined().prefix(56).description
    }

    /// Nova's `addresses`: per network name, each address with its version, type and MAC.
    static func addressesJSON(_ addresses: [ServerAddress]) -> JSON {
        var byNetwork: [String: [JSON]] = [:]
        for address in addresses {
            byNetwork[address.networkName, default: []].append([
                "addr": .string(address.address), "version": .number(Double(address.version)), "OS-EXT-IPS:type": .string(address.type),
                "OS-EXT-IPS-MAC:mac_addr": .string(address.macAddress)])
        }
        return .object(byNetwork.mapValues(JSON.array))
    }

    func serverJSON(_ server: Server, _ version: Microversion, admin: Bool, detail: Bool, hostUp: Bool?, listed: Bool = false,
                    addresses: [ServerAddress] = [], securityGroups: [String] = [], volumes: [VolumeAttachment] = [],
                    imageProperties: [String: String]? = nil, serverGroups: [String] = []) -> JSON {
        let row = server
        var object: [String: JSON] = ["id": .string(row.id), "name": .string(row.name), "links": serverLinks(row.id)]
        guard detail else { return .object(object) }
        let status = server.status
        object["status"] = .string(status)
        object["tenant_id"] = .string(row.projectID)
        object["user_id"] = .string(row.userID)
        object["metadata"] = .object(server.metadata.mapValues(JSON.string))
        object["hostId"] = .string(Self.hostID(project: row.projectID, host: row.host))
        object["image"] = row.imageID.map { id -> JSON in
            var image: [String: JSON] = ["id": .string(id), "links": [["rel": "bookmark", "href": .string(base + "/images/" + id)]]]
            // 2.98: the image's properties as the server booted it.
            if version >= Microversion(2, 98) { image["properties"] = .object((imageProperties ?? [:]).mapValues(JSON.string)) }
            return .object(image)
        } ?? ""
        if version >= Microversion(2, 47) {
            var flavor: [String: JSON] = ["vcpus": .number(Double(row.vcpus)), "ram": .number(Double(row.memoryMB)),
                                          "disk": .number(Double(row.rootGB)), "ephemeral": .number(Double(row.ephemeralGB)),
                                          "swap": .number(Double(row.swap)), "original_name": .string(row.flavorName ?? row.flavorID)]
            flavor["extra_specs"] = .object(server.flavorExtraSpecs.mapValues(JSON.string))
            object["flavor"] = .object(flavor)
        } else {
            object["flavor"] = ["id": .string(row.flavorID), "links": [["rel": "bookmark", "href": .string(base + "/flavors/" + row.flavorID)]]]
        }
        object["created"] = .string(Self.isoTime(row.createdAt))
        object["updated"] = .string(Self.isoTime(row.updatedAt))
        object["addresses"] = Self.addressesJSON(addresses)
        // Nova lists the groups of the server's ports, and leaves the key out when there are none.
        if !securityGroups.isEmpty { object["security_groups"] = .array(securityGroups.map { ["name": .string($0)] }) }
        object["accessIPv4"] = .string(row.accessIPv4 ?? "")
        object["accessIPv6"] = .string(row.accessIPv6 ?? "")
        object["OS-DCF:diskConfig"] = "MANUAL"
        if status == "BUILD" || status == "ACTIVE" { object["progress"] = 0 }
        object["OS-EXT-AZ:availability_zone"] = .string(row.availabilityZone ?? (row.host == nil ? "" : defaultAvailabilityZone))
        // Nova's text: "True" with a config drive, "" without.
        object["config_drive"] = row.configDrive ? "True" : ""
        object["key_name"] = JSON.string(row.keyName)
        object["OS-SRV-USG:launched_at"] = novaTime(row.launchedAt)
        object["OS-SRV-USG:terminated_at"] = .null
        object["OS-EXT-STS:vm_state"] = JSON.string(row.vmState?.rawValue)
        object["OS-EXT-STS:task_state"] = JSON.string(row.taskState?.rawValue)
        object["OS-EXT-STS:power_state"] = .number(Double(row.powerState.rawValue))
        object["os-extended-volumes:volumes_attached"] = .array(volumes.map { volume -> JSON in
            version >= Microversion(2, 3) ? ["id": .string(volume.volumeID), "delete_on_termination": .bool(volume.deleteOnTermination)]
                : ["id": .string(volume.volumeID)]
        })
        if admin {
            object["OS-EXT-SRV-ATTR:host"] = JSON.string(row.host)
            object["OS-EXT-SRV-ATTR:hypervisor_hostname"] = JSON.string(row.host)
            object["OS-EXT-SRV-ATTR:instance_name"] = .string(DomainNaming.name(row.id))
            if version >= Microversion(2, 3) {
                object["OS-EXT-SRV-ATTR:reservation_id"] = JSON.string(row.reservationID)
                object["OS-EXT-SRV-ATTR:launch_index"] = 0
                object["OS-EXT-SRV-ATTR:hostname"] = JSON.string(row.hostname)
                object["OS-EXT-SRV-ATTR:kernel_id"] = ""
                object["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
                object["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
                object["OS-EXT-SRV-ATTR:user_data"] = JSON.string(row.userData)
            }
        }
        // 2.90: the hostname is every user's to see (and set).
        if version >= Microversion(2, 90), !admin { object["OS-EXT-SRV-ATTR:hostname"] = JSON.string(row.hostname) }
        if version >= Microversion(2, 9) { object["locked"] = .bool(row.locked) }
        if version >= Microversion(2, 16), admin, let hostUp { object["host_status"] = hostUp ? "UP" : "DOWN" }
        if version >= Microversion(2, 19) { object["description"] = JSON.string(row.description) }
        if version >= Microversion(2, 26) { object["tags"] = .array(row.tags.map(JSON.string)) }
        if version >= Microversion(2, 63) { object["trusted_image_certificates"] = .null }
        // Nova shows a server's groups when showing, updating or rebuilding it, not in lists.
        if version >= Microversion(2, 71), !listed { object["server_groups"] = .array(serverGroups.map(JSON.string)) }
        if version >= Microversion(2, 73) { object["locked_reason"] = JSON.string(row.lockedReason) }
        // 2.96: the zone the server is pinned to (the one it was created in, if any).
        if version >= Microversion(2, 96) { object["pinned_availability_zone"] = JSON.string(row.availabilityZone) }
        // 2.100: the scheduler hints it was created with.
        if version >= Microversion(2, 100) { object["scheduler_hints"] = JSON.parse(Array(row.schedulerHintsText.utf8)) ?? [:] }
        if let fault = server.fault, status == "ERROR" || status == "DELETED" {
            var body: [String: JSON] = ["code": .number(Double(fault.code)), "message": .string(fault.message),
                                        "created": .string(Self.isoTime(server.faultCreated ?? row.updatedAt))]
            if admin || fault.code != 500, let details = fault.details { body["details"] = .string(details) }
            object["fault"] = .object(body)
        }
        return .object(object)
    }

    /// Nova's server timestamps: `2026-11-25T16:00:00Z`.
    static func isoTime(_ milliseconds: Int64) -> String {
        UTCTime.format(Date(timeIntervalSince1970: TimeInterval(milliseconds) / 1000), fractionDigits: 0)
    }

}

extension ComputeAPI {
    /// The properties of the images `servers` booted, by image id, when `version` shows them
    /// (2.98); empty below it. A deleted image has none left to show.
    func imageProperties(_ servers: [Server], _ version: Microversion) async throws -> [String: [String: String]] {
        guard version >= Microversion(2, 98) else { return [:] }
        var result: [String: [String: String]] = [:]
        for id in Set(servers.compactMap(\.imageID)) {
            result[id] = try await self.servers.existingImage(id)?.properties ?? [:]
        }
        return result
    }

    func imageProperties(_ server: Server, _ version: Microversion) async throws -> [String: String]? {
        try await imageProperties([server], version)[server.imageID ?? ""]
    }
}
