import Foundation
import PetrelCore

/// A Neutron network with its one segment (the provider attributes).
public struct Network: Sendable, Equatable {
    public var id: String
    public var projectID: String
    public var name: String
    public var description: String
    public var adminStateUp: Bool
    public var shared: Bool
    public var external: Bool
    public var mtu: Int
    public var portSecurityEnabled: Bool
    public var availabilityZoneHints: [String]
    public var networkType: String
    public var physicalNetwork: String?
    public var segmentationID: Int?
    public var dnsDomain: String
    public var tags: [String]
    public var revision: Int
    public var createdAt: Int64
    public var updatedAt: Int64
    /// The ids of its subnets (filled by the reads that return networks).
    public var subnets: [String] = []
}

public struct AllocationPool: Sendable, Equatable, Codable {
    public var start: String
    public var end: String
    public init(start: String, end: String) { self.start = start; self.end = end }
}

public struct HostRoute: Sendable, Equatable, Codable {
    public var destination: String
    public var nexthop: String
    public init(destination: String, nexthop: String) { self.destination = destination; self.nexthop = nexthop }
}

public struct Subnet: Sendable, Equatable {
    public var id: String
    public var networkID: String
    public var projectID: String
    public var name: String
    public var description: String
    public var ipVersion: Int
    public var cidr: String
    public var gatewayIP: String?
    public var allocationPools: [AllocationPool]
    public var dnsNameservers: [String]
    public var hostRoutes: [HostRoute]
    public var enableDHCP: Bool
    public var ipv6AddressMode: String?
    public var ipv6RAMode: String?
    public var tags: [String]
    public var revision: Int
    public var createdAt: Int64
    public var updatedAt: Int64

    public var network: IPNetwork { IPNetwork(cidr, strict: false)! }
}

public struct FixedIP: Sendable, Equatable, Codable, Hashable {
    public var subnetID: String
    public var ipAddress: String
    public init(subnetID: String, ipAddress: String) { self.subnetID = subnetID; self.ipAddress = ipAddress }
    enum CodingKeys: String, CodingKey { case subnetID = "subnet_id", ipAddress = "ip_address" }
}

public struct AddressPair: Sendable, Equatable, Codable {
    public var ipAddress: String
    public var macAddress: String
    public init(ipAddress: String, macAddress: String) { self.ipAddress = ipAddress; self.macAddress = macAddress }
    enum CodingKeys: String, CodingKey { case ipAddress = "ip_address", macAddress = "mac_address" }
}

public struct DHCPOption: Sendable, Equatable, Codable {
    public var name: String
    public var value: String
    public var ipVersion: Int
    public init(name: String, value: String, ipVersion: Int) { self.name = name; self.value = value; self.ipVersion = ipVersion }
    enum CodingKeys: String, CodingKey { case name = "opt_name", value = "opt_value", ipVersion = "ip_version" }
}

public struct Port: Sendable, Equatable {
    public var id: String
    public var networkID: String
    public var projectID: String
    public var name: String
    public var description: String
    public var adminStateUp: Bool
    public var macAddress: String
    public var deviceOwner: String
    public var deviceID: String
    /// DOWN until the node that hosts it has wired it, then ACTIVE.
    public var status: String
    public var host: String
    public var vifType: String
    /// `binding:vif_details`: a JSON object, kept as its text.
    public var vifDetails: String
    public var vnicType: String
    /// `binding:profile`: a JSON object, kept as its text.
    public var profile: String
    public var fixedIPs: [FixedIP]
    public var allowedAddressPairs: [AddressPair]
    public var extraDHCPOpts: [DHCPOption]
    public var dnsName: String
    public var portSecurityEnabled: Bool
    public var securityGroups: [String]
    public var tags: [String]
    public var revision: Int
    public var createdAt: Int64
    public var updatedAt: Int64
}

/// Who asks: an administrator sees and may change everything; others their project's
/// resources and the shared and external networks.
public struct Viewer: Sendable {
    public var projectID: String?
    public var isAdmin: Bool
    public init(projectID: String?, isAdmin: Bool) { self.projectID = projectID; self.isAdmin = isAdmin }
}

/// A refusal in Neutron's terms: the HTTP status, Neutron's exception name and its message.
public struct NetworkingFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: Int
    public let type: String
    public let message: String

    public init(_ status: Int, _ type: String, _ message: String) {
        self.status = status; self.type = type; self.message = message
    }

    public var description: String { "\(type): \(message)" }

    public static func invalid(_ message: String) -> NetworkingFailure {
        NetworkingFailure(400, "InvalidInput", "Invalid input for operation: \(message)")
    }
    public static func badRequest(_ message: String) -> NetworkingFailure { NetworkingFailure(400, "HTTPBadRequest", message) }
    public static func networkNotFound(_ id: String) -> NetworkingFailure {
        NetworkingFailure(404, "NetworkNotFound", "Network \(id) could not be found.")
    }
    public static func subnetNotFound(_ id: String) -> NetworkingFailure {
        NetworkingFailure(404, "SubnetNotFound", "Subnet \(id) could not be found.")
    }
    public static func portNotFound(_ id: String) -> NetworkingFailure {
        NetworkingFailure(404, "PortNotFound", "Port \(id) could not be found.")
    }
    public static func overQuota(_ resource: String) -> NetworkingFailure {
        NetworkingFailure(409, "OverQuota", "Quota exceeded for resources: ['\(resource)'].")
    }
}

/// Timestamps in milliseconds since 1970, as the other services keep them.
func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// JSON columns: arrays and objects are kept as their JSON text.
enum Column {
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String, default value: T) -> T {
        let decoder = JSONDecoder()
        return (try? decoder.decode(type, from: Data(text.utf8))) ?? value
    }
}
