/// The networking part of the configuration, parsed once: what the controller allocates
/// networks and MAC addresses from, and what a node wires them onto.
public struct NetworkingSettings: Sendable {
    /// A VLAN-capable physical network and the VLAN ids project networks may take on it
    /// (none: provider networks only).
    public struct VLANRange: Sendable, Equatable {
        public var physicalNetwork: String
        public var ids: ClosedRange<Int>?
    }

    /// The first three bytes of every generated MAC address, and the fourth when it is set.
    public var macPrefix: [UInt8]
    public var physnetMTU: Int
    public var dnsDomain: String
    public var tenantNetworkTypes: [String]
    public var mechanismDriver = "linuxbridge"
    /// How a node enforces security groups: `iptables` (with ipset), or `noop` (not at all).
    public var firewallDriver = "iptables"
    public var vniRanges: [ClosedRange<Int>]
    public var vlanRanges: [VLANRange]
    /// Physical networks flat networks may use; nil: any.
    public var flatNetworks: Set<String>?
    /// physnet → host interface.
    public var interfaceMappings: [String: String]
    public var localIP: String?
    public var leaseDuration: Int
    public var agentsPerNetwork: Int

    /// The settings of a configuration that sets none of them (tests, tools).
    public static var defaults: NetworkingSettings {
        try! NetworkingSettings(baseMAC: "fa:16:3e:00:00:00", physnetMTU: 1500, dnsDomain: "openstacklocal", tenantNetworkTypes: ["vxlan"],
                                vniRanges: "1:1000", vlanRanges: "physnet1", flatNetworks: "*", interfaceMappings: "", localIP: nil,
                                leaseDuration: 86400, agentsPerNetwork: 1)
    }

    public init(baseMAC: String, physnetMTU: Int, dnsDomain: String, tenantNetworkTypes: [String], vniRanges: String,
                vlanRanges: String, flatNetworks: String, interfaceMappings: String, localIP: String?,
                leaseDuration: Int, agentsPerNetwork: Int) throws {
        func fail(_ key: String, _ value: String, _ why: String) -> ConfigError {
            ConfigError(origin: "configuration", message: "\(key) = '\(value)': \(why)")
        }
        let bytes = baseMAC.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        guard bytes.count == 6, baseMAC.split(separator: ":").count == 6, bytes[0] & 1 == 0 else {
            throw fail("[DEFAULT] base_mac", baseMAC, "expected six hex bytes (aa:bb:cc:dd:ee:ff) of a unicast address")
        }
        macPrefix = Array(bytes[0..<3]) + (bytes[3] == 0 ? [] : [bytes[3]])
        self.physnetMTU = physnetMTU
        self.dnsDomain = dnsDomain
        self.tenantNetworkTypes = tenantNetworkTypes
        func range(_ text: Substring, bounds: ClosedRange<Int>) -> ClosedRange<Int>? {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let low = Int(parts[0].trimmingCharacters(in: .whitespaces)),
                  let high = Int(parts[1].trimmingCharacters(in: .whitespaces)), low <= high,
                  bounds.contains(low), bounds.contains(high) else { return nil }
            return low...high
        }
        self.vniRanges = try vniRanges.split(separator: ",").map { item in
            guard let parsed = range(item, bounds: 1...16_777_215) else {
                throw fail("[ml2_type_vxlan] vni_ranges", vniRanges, "expected first:last ranges of VNIs in 1...16777215")
            }
            return parsed
        }
        self.vlanRanges = try vlanRanges.split(separator: ",").map { item in
            let parts = item.trimmingCharacters(in: .whitespaces).split(separator: ":", maxSplits: 1)
            guard let name = parts.first, !name.isEmpty else {
                throw fail("[ml2_type_vlan] network_vlan_ranges", vlanRanges, "expected physnet or physnet:first:last")
            }
            if parts.count == 1 { return VLANRange(physicalNetwork: String(name), ids: nil) }
            guard let ids = range(parts[1], bounds: 1...4094) else {
                throw fail("[ml2_type_vlan] network_vlan_ranges", vlanRanges, "VLAN ids are first:last within 1...4094")
            }
            return VLANRange(physicalNetwork: String(name), ids: ids)
        }
        let flat = flatNetworks.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        self.flatNetworks = flat.contains("*") ? nil : Set(flat)
        var mappings: [String: String] = [:]
        for item in interfaceMappings.split(separator: ",") {
            let parts = item.trimmingCharacters(in: .whitespaces).split(separator: ":")
            guard parts.count == 2 else {
                throw fail("[linux_bridge] physical_interface_mappings", interfaceMappings, "expected physnet:interface pairs")
            }
            mappings[String(parts[0])] = String(parts[1])
        }
        self.interfaceMappings = mappings
        self.localIP = localIP
        self.leaseDuration = leaseDuration
        self.agentsPerNetwork = agentsPerNetwork
    }
}
