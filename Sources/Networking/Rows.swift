import Foundation
import PetrelCore
import Store

// The rows of migration 14's tables, as SQL reads and writes them (JSON columns as text).
// The service hands out the typed values of Models.swift, never these.

struct NetworkRow: Codable, Sendable {
    var id: String
    var projectId: String
    var name: String
    var description: String
    var adminStateUp: Bool
    var shared: Bool
    var external: Bool
    var mtu: Int
    var portSecurityEnabled: Bool
    var availabilityZoneHints: String
    var networkType: String
    var physicalNetwork: String?
    var segmentationId: Int?
    var dnsDomain: String
    var tags: String
    var revisionNumber: Int
    var createdAt: Int64
    var updatedAt: Int64

    init(_ network: Network) {
        id = network.id; projectId = network.projectID; name = network.name; description = network.description
        adminStateUp = network.adminStateUp; shared = network.shared; external = network.external; mtu = network.mtu
        portSecurityEnabled = network.portSecurityEnabled; availabilityZoneHints = Column.encode(network.availabilityZoneHints)
        networkType = network.networkType; physicalNetwork = network.physicalNetwork; segmentationId = network.segmentationID
        dnsDomain = network.dnsDomain
        tags = Column.encode(network.tags); revisionNumber = network.revision; createdAt = network.createdAt
        updatedAt = network.updatedAt
    }

    var value: Network {
        Network(id: id, projectID: projectId, name: name, description: description, adminStateUp: adminStateUp, shared: shared,
                external: external, mtu: mtu, portSecurityEnabled: portSecurityEnabled,
                availabilityZoneHints: Column.decode([String].self, availabilityZoneHints, default: []),
                networkType: networkType, physicalNetwork: physicalNetwork, segmentationID: segmentationId, dnsDomain: dnsDomain,
                tags: Column.decode([String].self, tags, default: []), revision: revisionNumber, createdAt: createdAt,
                updatedAt: updatedAt)
    }
}

struct SegmentRow: Codable, Sendable {
    var networkType: String
    /// Empty for VXLAN (the key's column cannot be NULL).
    var physicalNetwork: String
    var segmentationId: Int
    var networkId: String
}

struct SubnetRow: Codable, Sendable {
    var id: String
    var networkId: String
    var projectId: String
    var name: String
    var description: String
    var ipVersion: Int
    var cidr: String
    var gatewayIp: String?
    var allocationPools: String
    var dnsNameservers: String
    var hostRoutes: String
    var enableDhcp: Bool
    var ipv6AddressMode: String?
    var ipv6RaMode: String?
    var tags: String
    var revisionNumber: Int
    var createdAt: Int64
    var updatedAt: Int64

    init(_ subnet: Subnet) {
        id = subnet.id; networkId = subnet.networkID; projectId = subnet.projectID; name = subnet.name
        description = subnet.description; ipVersion = subnet.ipVersion; cidr = subnet.cidr; gatewayIp = subnet.gatewayIP
        allocationPools = Column.encode(subnet.allocationPools); dnsNameservers = Column.encode(subnet.dnsNameservers)
        hostRoutes = Column.encode(subnet.hostRoutes); enableDhcp = subnet.enableDHCP; ipv6AddressMode = subnet.ipv6AddressMode
        ipv6RaMode = subnet.ipv6RAMode; tags = Column.encode(subnet.tags); revisionNumber = subnet.revision
        createdAt = subnet.createdAt; updatedAt = subnet.updatedAt
    }

    var value: Subnet {
        Subnet(id: id, networkID: networkId, projectID: projectId, name: name, description: description, ipVersion: ipVersion,
               cidr: cidr, gatewayIP: gatewayIp,
               allocationPools: Column.decode([AllocationPool].self, allocationPools, default: []),
               dnsNameservers: Column.decode([String].self, dnsNameservers, default: []),
               hostRoutes: Column.decode([HostRoute].self, hostRoutes, default: []), enableDHCP: enableDhcp,
               ipv6AddressMode: ipv6AddressMode, ipv6RAMode: ipv6RaMode, tags: Column.decode([String].self, tags, default: []),
               revision: revisionNumber, createdAt: createdAt, updatedAt: updatedAt)
    }
}

struct PortRow: Codable, Sendable {
    var id: String
    var networkId: String
    var projectId: String
    var name: String
    var description: String
    var adminStateUp: Bool
    var macAddress: String
    var deviceOwner: String
    var deviceId: String
    var status: String
    var host: String
    var vifType: String
    var vifDetails: String
    var vnicType: String
    var profile: String
    var allowedAddressPairs: String
    var extraDhcpOpts: String
    var dnsName: String
    var portSecurityEnabled: Bool
    var securityGroups: String
    var tags: String
    var revisionNumber: Int
    var createdAt: Int64
    var updatedAt: Int64

    init(_ port: Port) {
        id = port.id; networkId = port.networkID; projectId = port.projectID; name = port.name; description = port.description
        adminStateUp = port.adminStateUp; macAddress = port.macAddress; deviceOwner = port.deviceOwner; deviceId = port.deviceID
        status = port.status; host = port.host; vifType = port.vifType; vifDetails = port.vifDetails
        vnicType = port.vnicType; profile = port.profile; allowedAddressPairs = Column.encode(port.allowedAddressPairs)
        extraDhcpOpts = Column.encode(port.extraDHCPOpts); dnsName = port.dnsName; portSecurityEnabled = port.portSecurityEnabled
        securityGroups = Column.encode(port.securityGroups); tags = Column.encode(port.tags); revisionNumber = port.revision
        createdAt = port.createdAt; updatedAt = port.updatedAt
    }

    func value(fixedIPs: [FixedIP]) -> Port {
        Port(id: id, networkID: networkId, projectID: projectId, name: name, description: description, adminStateUp: adminStateUp,
             macAddress: macAddress, deviceOwner: deviceOwner, deviceID: deviceId, status: status, host: host, vifType: vifType,
             vifDetails: vifDetails, vnicType: vnicType, profile: profile,
             fixedIPs: fixedIPs, allowedAddressPairs: Column.decode([AddressPair].self, allowedAddressPairs, default: []),
             extraDHCPOpts: Column.decode([DHCPOption].self, extraDhcpOpts, default: []), dnsName: dnsName,
             portSecurityEnabled: portSecurityEnabled, securityGroups: Column.decode([String].self, securityGroups, default: []),
             tags: Column.decode([String].self, tags, default: []), revision: revisionNumber, createdAt: createdAt,
             updatedAt: updatedAt)
    }
}

struct AllocationRow: Codable, Sendable {
    var subnetId: String
    var ipAddress: String
    var portId: String
    var networkId: String
    /// The address's place in the port's `fixed_ips`.
    var position: Int
}

enum Tables {
    static let networks = Table<NetworkRow>("networks")
    static let segments = Table<SegmentRow>("network_segments")
    static let subnets = Table<SubnetRow>("subnets")
    static let ports = Table<PortRow>("ports")
    static let allocations = Table<AllocationRow>("ip_allocations")
}
