import Foundation

/// Where one network's dnsmasq keeps its files: a directory of its own, so that
/// "which networks have a dnsmasq" is a directory listing after a node restart.
public struct DnsmasqPaths: Sendable, Equatable {
    public let directory: String
    public var pidFile: String { "\(directory)/pid" }
    /// `--dhcp-hostsfile`: which MAC gets which address and name (re-read on SIGHUP).
    public var hostsFile: String { "\(directory)/host" }
    /// `--addn-hosts`: names dnsmasq answers DNS queries for (re-read on SIGHUP).
    public var addnHostsFile: String { "\(directory)/addn_hosts" }
    /// `--dhcp-optsfile`: per-subnet and per-port options (re-read on SIGHUP).
    public var optsFile: String { "\(directory)/opts" }
    /// dnsmasq's own lease database; kept across restarts, removed by `stop`.
    public var leaseFile: String { "\(directory)/leases" }
    /// Written only when the driver logs DHCP transactions.
    public var logFile: String { "\(directory)/dnsmasq.log" }

    public init(directory: String) { self.directory = directory }
}

/// A `DHCPNetwork` rendered for dnsmasq: its command line and the three files it reads.
/// Pure: rendering touches nothing, so every detail is unit-tested without root.
///
/// The shapes follow Neutron's DHCP agent (neutron/agent/linux/dhcp.py), so operators
/// find the files they know: tags `subnet-<id>` and `port-<id>`, one `--dhcp-range` per
/// DHCP-enabled subnet in `static` mode (addresses come only from the hosts file),
/// classless static routes (121, and 249 for old Windows clients) that repeat the default
/// route because RFC 3442 clients ignore option 3 once they get 121.
public struct DnsmasqConfiguration: Sendable, Equatable {
    /// dnsmasq's arguments (without the program). A change here needs a restart; a change
    /// only in the files is applied with SIGHUP.
    public let arguments: [String]
    public let hosts: String
    public let addnHosts: String
    public let opts: String
    /// "mac address" of every IPv4 address the hosts file hands out: a lease of any
    /// other pair belongs to a port that went away.
    let servedIPv4: Set<String>

    /// Neutron's cap (`dnsmasq_lease_max`): an IPv6 /64 would otherwise ask for 2^64 leases.
    public static let leaseMax: UInt64 = 1 << 24

    /// Renders `network`; throws `DHCPConfigurationError` for anything dnsmasq would
    /// misread (bad addresses or MACs, newlines or commas where its formats forbid them).
    public init(network: DHCPNetwork, paths: DnsmasqPaths, logDHCP: Bool = false) throws {
        let checked = try Checked(network)
        arguments = Self.arguments(checked, paths: paths, logDHCP: logDHCP)
        hosts = Self.hostsFile(checked)
        addnHosts = Self.addnHostsFile(checked)
        opts = Self.optsFile(checked)
        servedIPv4 = Set(checked.hosts.flatMap { host in
            host.addresses.filter { $0.address.version == 4 && checked.servesHostAddress(subnetID: $0.subnetID) }
                .map { "\(host.mac) \($0.address)" }
        })
    }

    /// IPv4 leases in dnsmasq's lease file (`expiry mac address name client-id` lines, before
    /// the `duid` line that starts the IPv6 section) that no host of this configuration has.
    func staleLeases(in leaseFile: String) -> [StaleLease] {
        var stale: [StaleLease] = []
        for line in leaseFile.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.first == "duid" { break }
            guard fields.count >= 3 else { continue }
            let mac = fields[1].lowercased(), address = String(fields[2])
            guard !servedIPv4.contains("\(mac) \(address)") else { continue }
            let clientID = fields.count >= 5 && fields[4] != "*" ? String(fields[4]) : nil
            stale.append(StaleLease(line: String(line), mac: mac, address: address, clientID: clientID))
        }
        return stale
    }

    // MARK: command line

    private static func arguments(_ net: Checked, paths: DnsmasqPaths, logDHCP: Bool) -> [String] {
        var args = [
            "--no-hosts", "--no-resolv",
            "--pid-file=\(paths.pidFile)",
            "--dhcp-hostsfile=\(paths.hostsFile)",
            "--addn-hosts=\(paths.addnHostsFile)",
            "--dhcp-optsfile=\(paths.optsFile)",
            "--dhcp-leasefile=\(paths.leaseFile)",
            // bind-dynamic (as Neutron): addresses the node adds to the port after the start
            // are served without a restart; only this interface, never loopback.
            "--interface=\(net.network.interface)", "--except-interface=lo", "--bind-dynamic", "--local-service",
        ]
        let lease = net.network.leaseDuration.map { "\($0)s" } ?? "infinite"
        var possibleLeases: UInt64 = 0
        var routerAdvertisements = false
        for subnet in net.subnets where subnet.source.dhcpEnabled {
            guard let mode = subnet.rangeMode else { continue }
            let tag = "set:subnet-\(subnet.source.id)"
            if subnet.prefix.version == 4 {
                args.append("--dhcp-range=\(tag),\(subnet.prefix.network),\(mode),\(subnet.prefix.netmask),\(lease)")
            } else {
                // dnsmasq's DHCPv6 and RA want a /64 or longer (Neutron skips such subnets too).
                guard subnet.prefix.length >= 64 else { continue }
                args.append("--dhcp-range=\(tag),\(subnet.prefix.network),\(mode),\(subnet.prefix.length),\(lease)")
                routerAdvertisements = routerAdvertisements || subnet.source.ipv6RAMode != nil
            }
            possibleLeases = possibleLeases.addingReportingOverflow(subnet.prefix.size).overflow
                ? .max : possibleLeases + subnet.prefix.size
        }
        if routerAdvertisements {
            // Prefixes and the M/O flags, with router lifetime 0: the subnet's router (the
            // qrouter port) routes, never the DHCP namespace.
            let mtu = net.network.mtu.flatMap { $0 >= 1280 ? "mtu:\($0)," : nil } ?? ""
            args += ["--enable-ra", "--ra-param=\(net.network.interface),\(mtu)0,0"]
        }
        // Forced: guests that do not ask for the MTU (busybox udhcpc, some images) still get it.
        if let mtu = net.network.mtu, mtu > 0 { args.append("--dhcp-option-force=option:mtu,\(mtu)") }
        args.append("--dhcp-lease-max=\(min(possibleLeases, leaseMax))")
        args.append("--conf-file=/dev/null")
        if let domain = net.domain { args.append("--domain=\(domain)") }
        if logDHCP { args += ["--log-dhcp", "--log-facility=\(paths.logFile)"] }
        return args
    }

    // MARK: files

    /// `mac[,id:<client id>],<fqdn>,<address>[,set:port-<id>]`: one line per IPv4 address
    /// and one for all of a port's stateful IPv6 addresses; a port with options but no
    /// DHCP address still gets `mac,set:port-<id>` so its options apply.
    private static func hostsFile(_ net: Checked) -> String {
        var out = ""
        out.reserveCapacity(net.hosts.count * 64)
        for host in net.hosts {
            let portTag = host.hasOptions ? ",set:port-\(host.source.portID)" : ""
            let clientID = host.clientID.map { ",id:\($0)" } ?? ""
            let served = host.addresses.filter { net.servesHostAddress(subnetID: $0.subnetID) }
            let v4 = served.filter { $0.address.version == 4 }
            let v6 = served.filter { $0.address.version == 6 }
            for entry in v4 {
                out += "\(host.mac)\(clientID),\(net.fqdn(host, entry.address)),\(entry.address)\(portTag)\n"
            }
            if let first = v6.first {
                let list = v6.map(\.address.dnsmasqLiteral).joined(separator: ",")
                out += "\(host.mac)\(clientID),\(net.fqdn(host, first.address)),\(list)\(portTag)\n"
            }
            if served.isEmpty && host.hasOptions { out += "\(host.mac)\(portTag)\n" }
        }
        return out
    }

    /// /etc/hosts lines, FQDN first so reverse lookups answer with it.
    private static func addnHostsFile(_ net: Checked) -> String {
        var out = ""
        for host in net.hosts {
            for entry in host.addresses {
                let name = net.hostname(host, entry.address)
                out += net.domain.map { "\(entry.address)\t\(name).\($0) \(name)\n" } ?? "\(entry.address)\t\(name)\n"
            }
        }
        return out
    }

    private static func optsFile(_ net: Checked) -> String {
        var lines: [String] = []
        let v4Subnets = net.subnets.filter { $0.prefix.version == 4 }
        for subnet in net.subnets where subnet.source.dhcpEnabled {
            let v6 = subnet.prefix.version == 6
            if v6 && subnet.addressMode == .slaac { continue }
            let tag = "tag:subnet-\(subnet.source.id)"
            let option = v6 ? "option6:" : "option:"
            if !subnet.nameservers.isEmpty {
                if subnet.nameservers.allSatisfy(\.isUnspecified) {
                    lines.append("\(tag),\(option)dns-server")  // announce none
                } else {
                    lines.append("\(tag),\(option)dns-server," + subnet.nameservers.map(\.dnsmasqLiteral).joined(separator: ","))
                }
            }
            if v6 {
                if let domain = net.domain { lines.append("\(tag),option6:domain-search,\(domain)") }
                continue
            }
            var gateway = subnet.gateway
            var routes: [String] = []
            // Other IPv4 subnets of the network are on-link.
            for other in v4Subnets where other.prefix != subnet.prefix { routes.append("\(other.prefix),0.0.0.0") }
            for route in subnet.routes {
                if route.destination.length == 0 {
                    if gateway == nil { gateway = route.nexthop }
                } else {
                    routes.append("\(route.destination),\(route.nexthop)")
                }
            }
            if let hop = subnet.metadataNextHop { routes.append("169.254.169.254/32,\(hop)") }
            if !routes.isEmpty {
                if let gateway { routes.append("0.0.0.0/0,\(gateway)") }
                let list = routes.joined(separator: ",")
                lines.append("\(tag),option:classless-static-route,\(list)")
                lines.append("\(tag),249,\(list)")
            }
            lines.append(gateway.map { "\(tag),option:router,\($0)" } ?? "\(tag),option:router")
        }
        for host in net.hosts {
            let versions = Set(host.addresses.map(\.address.version))
            for extra in host.options where versions.contains(extra.ipVersion) {
                let option: String
                if extra.ipVersion == 6 { option = "option6:\(extra.name)" }
                else { option = extra.name.allSatisfy(\.isNumber) ? extra.name : "option:\(extra.name)" }
                lines.append("tag:port-\(host.source.portID),\(option),\(extra.value)")
            }
        }
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }
}

struct StaleLease: Equatable {
    let line: String
    let mac: String
    let address: String
    let clientID: String?
}

/// A network whose every field has been parsed and checked once, for the renderers.
private struct Checked {
    struct Subnet {
        let source: DHCPSubnet
        let prefix: IPPrefix
        let gateway: IPAddress?
        let nameservers: [IPAddress]
        let routes: [(destination: IPPrefix, nexthop: IPAddress)]
        let metadataNextHop: IPAddress?
        var addressMode: IPv6Mode? { source.ipv6AddressMode }

        /// dnsmasq's mode for this subnet's `--dhcp-range`, nil for none.
        /// IPv4 and IPv6 DHCPv6 are `static` (addresses only from the hosts file). When
        /// dnsmasq also sends the router advertisements (`ipv6RAMode` set), SLAAC and
        /// stateless subnets say so (`slaac`, `ra-stateless`); a SLAAC subnet whose RAs
        /// come from elsewhere needs nothing from dnsmasq.
        var rangeMode: String? {
            guard prefix.version == 6 else { return "static" }
            switch (source.ipv6AddressMode, source.ipv6RAMode) {
            case (.slaac, nil): return nil
            case (.slaac, _), (nil, .slaac): return "slaac"
            case (.dhcpv6Stateless, .some(_)), (nil, .dhcpv6Stateless): return "ra-stateless"
            default: return "static"
            }
        }
    }

    struct Host {
        let source: DHCPHost
        let mac: String
        let addresses: [(subnetID: String, address: IPAddress)]
        let clientID: String?
        /// Options other than the client id, which goes into the hosts file instead.
        let options: [DHCPOption]
        var hasOptions: Bool { !options.isEmpty }
    }

    let network: DHCPNetwork
    let subnets: [Subnet]
    let hosts: [Host]
    let domain: String?
    private let subnetsByID: [String: Subnet]

    init(_ network: DHCPNetwork) throws {
        self.network = network
        try Self.requireTag(network.id, "network id")
        guard !network.interface.isEmpty, network.interface.count <= 15,
              network.interface.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw DHCPConfigurationError("interface name '\(network.interface)' is not a Linux interface name")
        }
        if let mtu = network.mtu, mtu < 0 || mtu > 65535 { throw DHCPConfigurationError("MTU \(mtu) is out of range") }
        if let lease = network.leaseDuration, lease < 120 {
            throw DHCPConfigurationError("lease duration \(lease)s is shorter than dnsmasq's minimum of 120s")
        }
        var domain = network.domain.map { $0.hasSuffix(".") ? String($0.dropLast()) : $0 }
        if domain?.isEmpty == true { domain = nil }
        if let domain { try Self.requireDNSName(domain, "domain") }
        self.domain = domain

        var subnets: [Subnet] = []
        var byID: [String: Subnet] = [:]
        for source in network.subnets {
            try Self.requireTag(source.id, "subnet id")
            guard byID[source.id] == nil else { throw DHCPConfigurationError("subnet \(source.id) is listed twice") }
            guard let prefix = IPPrefix(source.cidr) else { throw DHCPConfigurationError("subnet \(source.id): bad CIDR '\(source.cidr)'") }
            func address(_ text: String, _ what: String) throws -> IPAddress {
                guard let address = IPAddress(text), address.version == prefix.version else {
                    throw DHCPConfigurationError("subnet \(source.id): \(what) '\(text)' is not an IPv\(prefix.version) address")
                }
                return address
            }
            let routes = try source.hostRoutes.map { route -> (IPPrefix, IPAddress) in
                guard let destination = IPPrefix(route.destination), destination.version == prefix.version else {
                    throw DHCPConfigurationError("subnet \(source.id): bad host route destination '\(route.destination)'")
                }
                return (destination, try address(route.nexthop, "host route next hop"))
            }
            let subnet = Subnet(source: source, prefix: prefix,
                                gateway: try source.gateway.map { try address($0, "gateway") },
                                nameservers: try source.dnsNameservers.map { try address($0, "DNS server") },
                                routes: routes.map { (destination: $0.0, nexthop: $0.1) },
                                metadataNextHop: prefix.version == 4 ? try source.metadataNextHop.map { try address($0, "metadata next hop") } : nil)
            subnets.append(subnet)
            byID[source.id] = subnet
        }
        self.subnets = subnets
        subnetsByID = byID

        var macs = Set<String>()
        hosts = try network.hosts.map { source in
            try Self.requireTag(source.portID, "port id")
            let mac = try Self.normalizedMAC(source.mac, port: source.portID)
            guard macs.insert(mac).inserted else { throw DHCPConfigurationError("MAC \(mac) belongs to two ports") }
            if let name = source.hostname { try Self.requireDNSName(name, "port \(source.portID): host name") }
            let addresses = try source.fixedIPs.map { fixed -> (subnetID: String, address: IPAddress) in
                guard let subnet = byID[fixed.subnetID] else {
                    throw DHCPConfigurationError("port \(source.portID): unknown subnet \(fixed.subnetID)")
                }
                guard let address = IPAddress(fixed.address), subnet.prefix.contains(address) else {
                    throw DHCPConfigurationError("port \(source.portID): \(fixed.address) is not in \(subnet.prefix)")
                }
                return (fixed.subnetID, address)
            }
            var clientID: String?
            var options: [DHCPOption] = []
            for option in source.extraOptions {
                guard !option.name.isEmpty, option.name.allSatisfy({ $0.isLetter || $0.isNumber || "-_".contains($0) }) else {
                    throw DHCPConfigurationError("port \(source.portID): bad DHCP option name '\(option.name)'")
                }
                guard !option.value.contains(where: \.isNewline) else {
                    throw DHCPConfigurationError("port \(source.portID): option \(option.name) has a newline")
                }
                guard option.ipVersion == 4 || option.ipVersion == 6 else {
                    throw DHCPConfigurationError("port \(source.portID): option \(option.name) has IP version \(option.ipVersion)")
                }
                if ["client-id", "61"].contains(option.name) {
                    guard !option.value.contains(",") else {
                        throw DHCPConfigurationError("port \(source.portID): a client id cannot contain a comma")
                    }
                    clientID = option.value
                } else {
                    options.append(option)
                }
            }
            return Host(source: source, mac: mac, addresses: addresses, clientID: clientID, options: options)
        }
    }

    /// Whether a host's address in this subnet belongs in the hosts file: IPv4 and
    /// stateful (or mode-less) IPv6 of DHCP-enabled subnets; SLAAC and stateless
    /// addresses are the guest's own business.
    func servesHostAddress(subnetID: String) -> Bool {
        guard let subnet = subnetsByID[subnetID], subnet.source.dhcpEnabled else { return false }
        return subnet.prefix.version == 4 || subnet.addressMode == nil || subnet.addressMode == .dhcpv6Stateful
    }

    func hostname(_ host: Host, _ address: IPAddress) -> String {
        host.source.hostname ?? "host-" + address.description.map { $0 == "." || $0 == ":" ? "-" : $0 }.map(String.init).joined()
    }

    func fqdn(_ host: Host, _ address: IPAddress) -> String {
        let name = hostname(host, address)
        return domain.map { "\(name).\($0)" } ?? name
    }

    /// Ids become tags and file names: letters, digits, `-`, `_`, `.` only.
    private static func requireTag(_ value: String, _ what: String) throws {
        guard !value.isEmpty, value != ".", value != "..", value.count <= 128,
              value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw DHCPConfigurationError("\(what) '\(value)' may only have letters, digits, '-', '_' and '.'")
        }
    }

    private static func requireDNSName(_ value: String, _ what: String) throws {
        let labels = value.split(separator: ".", omittingEmptySubsequences: false)
        guard value.count <= 253, labels.allSatisfy({ label in
            !label.isEmpty && label.count <= 63 && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }) else { throw DHCPConfigurationError("\(what) '\(value)' is not a DNS name") }
    }

    private static func normalizedMAC(_ mac: String, port: String) throws -> String {
        let parts = mac.lowercased().split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) }) else {
            throw DHCPConfigurationError("port \(port): bad MAC '\(mac)'")
        }
        return parts.joined(separator: ":")
    }
}
