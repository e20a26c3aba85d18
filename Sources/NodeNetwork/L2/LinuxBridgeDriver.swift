import Contracts
import Foundation
import NetlinkDriver
import PetrelCore

/// The Linux-bridge backend, named as Neutron's agent names things: a bridge `brq<net[:11]>`
/// per network; VXLAN networks get `vxlan-<vni>` (local address `[vxlan] local_ip`, UDP 4789,
/// learning off) with one all-zeros flooding FDB entry per other node that has a port on the
/// network (l2 population, no multicast); flat networks put the mapped host interface on the
/// bridge; VLAN networks a `<interface>.<vlan>` sub-interface, where the kernel has 8021q.
public struct LinuxBridgeDriver: L2Driver {
    public let info = L2DriverInfo(name: "linuxbridge", agentBinary: "neutron-linuxbridge-agent", vifType: "bridge",
                                   networkTypes: ["flat", "vlan", "vxlan"])
    let settings: L2Drivers.Settings
    let netlink: Netlink
    /// Netlink requests are quick but blocking: they run off the cooperative pool, one at a time.
    let executor = BlockingExecutor(label: "linuxbridge", serial: true)

    public init(settings: L2Drivers.Settings) throws {
        self.settings = settings
        self.netlink = try Netlink()
    }

    static let bridgePrefix = "brq"
    static let vxlanPrefix = "vxlan-"

    public func attachmentPoint(_ network: NetworkWiring) -> String { network.bridgeName }

    func segmentDevice(_ network: NetworkWiring) throws -> String {
        switch network.networkType {
        case "vxlan":
            guard let vni = network.segmentationID else { throw L2Error("network \(network.id) is VXLAN without a VNI") }
            return Self.vxlanPrefix + String(vni)
        case "flat", "vlan":
            guard let physnet = network.physicalNetwork, let interface = settings.interfaceMappings[physnet] else {
                throw L2Error("physical network '\(network.physicalNetwork ?? "")' of network \(network.id) has no interface on this node ([linux_bridge] physical_interface_mappings)")
            }
            if network.networkType == "flat" { return interface }
            guard let vlan = network.segmentationID else { throw L2Error("network \(network.id) is VLAN without an id") }
            return "\(interface.prefix(10)).\(vlan)"
        default:
            throw L2Error("network type '\(network.networkType)' is not wired by the Linux bridge driver")
        }
    }

    public func ensure(_ network: NetworkWiring, endpoints: [String]) async throws {
        let device = try segmentDevice(network)
        let settings = self.settings
        let netlink = self.netlink
        try await executor.run {
            let bridge = network.bridgeName
            if try netlink.link(named: bridge) == nil { try netlink.createBridge(bridge) }
            switch network.networkType {
            case "vxlan":
                guard let local = settings.tunnelIP else {
                    throw L2Error("VXLAN network \(network.id) needs a tunnel address ([vxlan] local_ip or [DEFAULT] my_ip)")
                }
                if let existing = try netlink.vxlanInfo(device), existing.local != local || existing.learning {
                    try netlink.deleteLink(device)  // a leftover with other settings: remade below
                }
                if try netlink.link(named: device) == nil {
                    try netlink.createVXLAN(device, vni: UInt32(network.segmentationID!), local: local, learning: false)
                }
            case "vlan":
                if try netlink.link(named: device) == nil {
                    let parent = settings.interfaceMappings[network.physicalNetwork!]!
                    do {
                        try netlink.createVLAN(device, parent: parent, id: UInt16(network.segmentationID!))
                    } catch {
                        throw L2Error("cannot create VLAN \(network.segmentationID!) on \(parent) for network \(network.id): \(error) (does this kernel have 8021q?)")
                    }
                }
            default:
                guard try netlink.link(named: device) != nil else {
                    throw L2Error("interface \(device) of physical network '\(network.physicalNetwork ?? "")' does not exist")
                }
            }
            // The MTU: the bridge takes its ports' smallest, so set the segment device's first.
            try netlink.setMTU(device, UInt32(network.mtu))
            try netlink.setMaster(device, bridge: bridge)
            try netlink.setMTU(bridge, UInt32(network.mtu))
            try netlink.setUp(device, network.adminStateUp || network.networkType == "flat")
            try netlink.setUp(bridge)
            if network.networkType == "vxlan" {
                let wanted = Set(endpoints)
                let present = Set(try netlink.fdbEntries(device: device).filter { $0.mac == FDBEntry.flooding }.compactMap(\.destination))
                for endpoint in wanted.subtracting(present) { try netlink.addFDB(mac: FDBEntry.flooding, device: device, destination: endpoint) }
                for endpoint in present.subtracting(wanted) { try netlink.removeFDB(mac: FDBEntry.flooding, device: device, destination: endpoint) }
            }
        }
    }

    public func remove(networkPrefix: String) async throws {
        let netlink = self.netlink
        try await executor.run {
            let bridge = Self.bridgePrefix + networkPrefix
            guard try netlink.link(named: bridge) != nil else { return }
            // The network's own devices go with it; the kernel releases the bridge's other ports
            // (a flat network's host interface, taps) when the bridge goes. A port vanishing
            // meanwhile (the DHCP veth, its namespace just deleted) is no error.
            for port in (try? netlink.bridgePorts(of: bridge)) ?? [] where port.hasPrefix(Self.vxlanPrefix) || port.contains(".") {
                try? netlink.deleteLink(port)
            }
            if try netlink.link(named: bridge) != nil { try netlink.deleteLink(bridge) }
        }
    }

    public func isWired(networkPrefix: String) async throws -> Bool {
        let netlink = self.netlink
        return try await executor.run { try netlink.link(named: Self.bridgePrefix + networkPrefix)?.kind == "bridge" }
    }

    public func isAttached(_ device: String, to network: NetworkWiring) async throws -> Bool {
        let netlink = self.netlink
        // Two single-link requests, not a dump of every link: a dump that other links' changes
        // interrupt can come back short, and a short answer would read as "not attached".
        return try await executor.run {
            guard let bridge = try netlink.link(named: network.bridgeName), let port = try netlink.link(named: device) else { return false }
            return port.masterIndex == bridge.index
        }
    }
}
