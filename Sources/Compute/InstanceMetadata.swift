import Foundation
import SQLKit
import Store

/// A NIC of a guest as its metadata describes it (`network_data.json`, EC2 `local-ipv4`).
/// The networking service fills these in from the server's ports; without ports a server has
/// none and its metadata says so.
public struct GuestInterface: Sendable, Equatable {
    public struct Subnet: Sendable, Equatable {
        public var cidr: String
        public var ipVersion: Int
        /// The server's fixed addresses on this subnet.
        public var addresses: [String]
        public var gateway: String?
        public var dnsServers: [String]
        /// The guest asks DHCP for its address (Nova writes `ipv4_dhcp` and no address).
        public var dhcp: Bool
        /// Routes beyond the default one: destination CIDR and next hop.
        public var routes: [(cidr: String, gateway: String)]

        public init(cidr: String, ipVersion: Int, addresses: [String], gateway: String?, dnsServers: [String] = [], dhcp: Bool,
                    routes: [(cidr: String, gateway: String)] = []) {
            self.cidr = cidr; self.ipVersion = ipVersion; self.addresses = addresses; self.gateway = gateway
            self.dnsServers = dnsServers; self.dhcp = dhcp; self.routes = routes
        }

        public static func == (a: Subnet, b: Subnet) -> Bool {
            a.cidr == b.cidr && a.ipVersion == b.ipVersion && a.addresses == b.addresses && a.gateway == b.gateway
                && a.dnsServers == b.dnsServers && a.dhcp == b.dhcp && a.routes.map(\.cidr) == b.routes.map(\.cidr)
                && a.routes.map(\.gateway) == b.routes.map(\.gateway)
        }
    }

    public var portID: String
    public var macAddress: String
    public var networkID: String
    /// The host-side device (`tap<port[:11]>`); Nova names the link after it.
    public var deviceName: String?
    /// Neutron's VIF type (`bridge`, `ovs`, …); anything else is shown as `phy`, as Nova does.
    public var vifType: String
    public var mtu: Int?
    public var subnets: [Subnet]
    /// The names of the port's security groups.
    public var securityGroups: [String]

    public init(portID: String, macAddress: String, networkID: String, deviceName: String?, vifType: String, mtu: Int?, subnets: [Subnet],
                securityGroups: [String] = []) {
        self.portID = portID; self.macAddress = macAddress; self.networkID = networkID; self.deviceName = deviceName
        self.vifType = vifType; self.mtu = mtu; self.subnets = subnets; self.securityGroups = securityGroups
    }
}

/// Where the metadata of a server comes from: its row (read without a caller — whoever asks
/// has proven to be the instance's proxy), and the one thing a guest writes back, its password.
public struct MetadataService: Sendable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case notFound(String)
        /// 409: a password is set already (a guest posts it once).
        case passwordAlreadySet
        /// 400: over Nova's 4 × 255 bytes.
        case passwordTooLarge

        public var description: String {
            switch self {
            case .notFound(let id): return "Instance \(id) could not be found."
            case .passwordAlreadySet: return "A password was already set for this instance."
            case .passwordTooLarge: return "Request is too large."
            }
        }
    }

    /// Nova stores the password in four system-metadata items of 255 characters.
    public static let maxPasswordSize = 4 * 255

    let database: Database
    let defaultAvailabilityZone: String
    /// The server's NICs (the controller gives `Servers.guestInterfaces`; none without networking).
    let interfaces: @Sendable (Server) async throws -> [GuestInterface]

    public init(database: Database, defaultAvailabilityZone: String = "nova",
                interfaces: @escaping @Sendable (Server) async throws -> [GuestInterface] = { _ in [] }) {
        self.database = database
        self.defaultAvailabilityZone = defaultAvailabilityZone
        self.interfaces = interfaces
    }

    /// The metadata of a server, or nil when there is no such server.
    public func instance(_ id: String) async throws -> InstanceMetadata? {
        let row = try await database.withConnection { sql in try await ComputeTables.instances.get(sql, id: id) }
        guard let row else { return nil }
        let server = Server(row)
        return InstanceMetadata(server: server, key: try await Self.key(of: row, database: database), interfaces: try await interfaces(server),
                                availabilityZone: row.availabilityZone ?? defaultAvailabilityZone)
    }

    /// The server's key pair as it was at creation; for servers created before Petrel kept
    /// the copy, the key pair as it is now, if it still exists.
    static func key(of row: InstanceRow, database: Database) async throws -> InstanceMetadata.Key? {
        guard let name = row.keyName else { return nil }
        if let data = row.keyData { return InstanceMetadata.Key(name: name, type: row.keyType ?? "ssh", data: data) }
        guard let pair = try? await KeyPairs(database: database).get(userID: row.userID, name: name) else { return nil }
        return InstanceMetadata.Key(name: pair.name, type: pair.type, data: pair.publicKey)
    }

    /// Stores the password a guest posts: once, and at most `maxPasswordSize` bytes, as Nova.
    public func setPassword(_ id: String, _ password: String) async throws {
        guard password.utf8.count <= Self.maxPasswordSize else { throw Failure.passwordTooLarge }
        try await database.transaction { sql in
            guard var row = try await ComputeTables.instances.lockedGet(sql, id: id) else { throw Failure.notFound(id) }
            if let existing = row.metadataPassword, !existing.isEmpty { throw Failure.passwordAlreadySet }
            row.metadataPassword = password
            row.updatedAt = Servers.now()
            try await ComputeTables.instances.update(sql, id: id, row)
        }
    }
}

/// One server's metadata as Nova's metadata service and config drive present it: the
/// OpenStack tree (`openstack/<version>/meta_data.json`, …) and the EC2 tree
/// (`<version>/meta-data/…`), by the versions Nova lists and what each version holds.
public struct InstanceMetadata: Sendable {
    public struct Key: Sendable, Equatable {
        public var name: String
        public var type: String
        public var data: String
    }

    /// What a path names.
    public enum Item: Sendable, Equatable {
        /// A document: its bytes, and whether it is JSON (else text/plain).
        case document(Data, json: Bool)
        /// The `password` file: GET reads it, POST sets it once.
        case password
    }

    public struct NotFound: Error, Equatable {
        public let path: String
    }

    /// The EC2 versions Nova serves, oldest first.
    public static let ec2Versions = ["1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01",
                                     "2008-09-01", "2009-04-04"]
    /// The OpenStack versions Nova serves, oldest first (Folsom … Epoxy).
    public static let openStackVersions = ["2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06",
                                           "2017-02-22", "2018-08-27", "2020-10-14", "2025-04-04"]
    static let grizzly = "2013-04-04", havana = "2013-10-17", liberty = "2015-10-15", newtonOne = "2016-06-30",
               newtonTwo = "2016-10-06", victoria = "2020-10-14"

    public let server: Server
    public let key: Key?
    public let interfaces: [GuestInterface]
    public let availabilityZone: String

    public init(server: Server, key: Key?, interfaces: [GuestInterface], availabilityZone: String) {
        self.server = server
        self.key = key
        self.interfaces = interfaces
        self.availabilityZone = availabilityZone
    }

    init(row: InstanceRow, key: Key?, interfaces: [GuestInterface], availabilityZone: String) {
        self.init(server: Server(row), key: key, interfaces: interfaces, availabilityZone: availabilityZone)
    }

    /// The user data as the guest gets it: decoded from the base64 the API stored.
    public var userData: Data? {
        server.userData.map { Data(base64Encoded: $0, options: .ignoreUnknownCharacters) ?? Data() }
    }

    public var hostname: String { server.hostname ?? Servers.hostname(server.name, index: nil) }

    /// What `path` (below the metadata root, e.g. `/openstack/latest/meta_data.json`) names.
    /// `forwardedFor` is the address the request came from, EC2's `local-ipv4` when the server
    /// has no fixed address. Versions are listed only up to `today` (Nova hides future ones).
    public func lookup(_ path: String, forwardedFor: String? = nil, today: Date = Date()) throws(NotFound) -> Item {
        var tokens: [String] = []
        for part in path.split(separator: "/") where part != "." {
            if part == ".." { _ = tokens.popLast() } else { tokens.append(String(part)) }
        }
        if tokens.first != "ec2" && tokens.first != "openstack" { tokens.insert("ec2", at: 0) }
        if tokens.count == 1 {
            let versions = tokens[0] == "openstack" ? Self.openStackVersions.filter { $0 <= Self.day(today) } : Self.ec2Versions
            return .document(Data((versions + ["latest"]).joined(separator: "\n").utf8), json: false)
        }
        let notFound = NotFound(path: "/" + tokens.joined(separator: "/"))
        if tokens[0] == "openstack" {
            guard let item = openStackItem(version: tokens[1], file: tokens.dropFirst(2).joined(separator: "/")) else { throw notFound }
            return item
        }
        guard let tree = ec2Tree(version: tokens[1], forwardedFor: forwardedFor) else { throw notFound }
        var node = tree
        for token in tokens.dropFirst(2) {
            guard case .tree(let children, _) = node, let child = children[token] else { throw notFound }
            node = child
        }
        return .document(node.rendered, json: false)
    }

    static func day(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: date)
    }

    // MARK: OpenStack tree

    /// `latest` is the newest version; nil for one Nova does not know.
    static func openStackVersion(_ name: String) -> Int? {
        Self.openStackVersions.firstIndex(of: name == "latest" ? Self.openStackVersions.last! : name)
    }

    static func atLeast(_ required: String, _ version: Int) -> Bool {
        version >= Self.openStackVersions.firstIndex(of: required)!
    }

    /// The files of one OpenStack version (`file` empty: its listing).
    func openStackItem(version name: String, file: String) -> Item? {
        guard let version = Self.openStackVersion(name) else { return nil }
        switch file {
        case "":
            var files = ["meta_data.json"]
            if server.userData != nil { files.append("user_data") }
            if Self.atLeast(Self.grizzly, version) { files.append("password") }
            if Self.atLeast(Self.havana, version) { files.append("vendor_data.json") }
            if Self.atLeast(Self.liberty, version) { files.append("network_data.json") }
            if Self.atLeast(Self.newtonTwo, version) { files.append("vendor_data2.json") }
            return .document(Data(files.joined(separator: "\n").utf8), json: false)
        case "meta_data.json":
            return .document(Self.json(metaData(version: version)), json: true)
        case "user_data":
            return userData.map { .document($0, json: false) }
        case "password":
            return Self.atLeast(Self.grizzly, version) ? .password : nil
        case "vendor_data.json":
            // No vendor data is configured: Nova's StaticJSON provider without a file gives {}.
            return Self.atLeast(Self.havana, version) ? .document(Self.json([String: Any]()), json: true) : nil
        case "vendor_data2.json":
            // Nova's default providers (StaticJSON only) give {"static": {}}.
            return Self.atLeast(Self.newtonTwo, version) ? .document(Self.json(["static": [String: Any]()]), json: true) : nil
        case "network_data.json":
            return Self.atLeast(Self.liberty, version) ? .document(Self.json(Self.networkData(interfaces) ?? [:]), json: true) : nil
        default:
            return nil
        }
    }

    /// `meta_data.json` of one version, with the fields Nova adds version by version.
    func metaData(version: Int) -> [String: Any] {
        var metadata: [String: Any] = ["uuid": server.id]
        if !server.metadata.isEmpty { metadata["meta"] = server.metadata }
        if let key {
            metadata["public_keys"] = [key.name: key.data]
            metadata["keys"] = [["name": key.name, "type": key.type, "data": key.data]]
        }
        metadata["hostname"] = hostname
        metadata["name"] = server.name
        metadata["launch_index"] = server.launchIndex
        metadata["availability_zone"] = availabilityZone
        if Self.atLeast(Self.grizzly, version) {
            var seed = [UInt8](repeating: 0, count: 512)
            var generator = SystemRandomNumberGenerator()
            for index in seed.indices { seed[index] = generator.next() }
            metadata["random_seed"] = Data(seed).base64EncodedString()
        }
        if Self.atLeast(Self.liberty, version) { metadata["project_id"] = server.projectID }
        // Tagged devices: Petrel has no device tags yet, so the list is empty as Nova's is then.
        if Self.atLeast(Self.newtonOne, version) { metadata["devices"] = [Any]() }
        // No dedicated CPUs: Petrel does not pin guests.
        if Self.atLeast(Self.victoria, version) { metadata["dedicated_cpus"] = [Int]() }
        return metadata
    }

    /// `network_data.json` from the server's NICs as Nova builds it (links, networks, services:
    /// the first IPv4 and first IPv6 subnet of each NIC); nil when no NIC has a subnet (Nova
    /// then serves `{}`).
    public static func networkData(_ interfaces: [GuestInterface]) -> [String: Any]? {
        var links: [[String: Any]] = [], networks: [[String: Any]] = [], services: [[String: String]] = []
        for (index, nic) in interfaces.enumerated() {
            let first4 = nic.subnets.first { $0.ipVersion == 4 }, first6 = nic.subnets.first { $0.ipVersion == 6 }
            guard first4 != nil || first6 != nil else { continue }
            let linkID = nic.deviceName ?? "interface\(index)"
            let exposed = ["bridge", "ovs", "vhostuser", "hw_veb", "hostdev", "macvtap", "tap", "vdpa", "dvs", "vif", "hyperv", "vrouter", "ivs"]
            // Nova gives no MTU when DHCP serves one (the guest learns it there).
            let mtu: Any = nic.subnets.contains(where: \.dhcp) ? NSNull() : (nic.mtu.map { $0 as Any } ?? NSNull())
            links.append(["id": linkID, "vif_id": nic.portID, "type": exposed.contains(nic.vifType) ? nic.vifType : "phy",
                          "mtu": mtu, "ethernet_mac_address": nic.macAddress])
            for subnet in [first4, first6].compactMap({ $0 }) where !subnet.addresses.isEmpty {
                let dns = subnet.dnsServers.map { ["type": "dns", "address": $0] }
                services += dns.filter { !services.contains($0) }
                let id = "network\(networks.count)"
                if subnet.dhcp {
                    networks.append(["id": id, "type": "ipv\(subnet.ipVersion)_dhcp", "link": linkID, "network_id": nic.networkID])
                    continue
                }
                let any = subnet.ipVersion == 4 ? "0.0.0.0" : "::"
                var routes: [[String: String]] = subnet.gateway.map { [["network": any, "netmask": any, "gateway": $0]] } ?? []
                for route in subnet.routes {
                    let (network, netmask) = Self.networkAndMask(route.cidr)
                    routes.append(["network": network, "netmask": netmask, "gateway": route.gateway])
                }
                networks.append(["id": id, "type": "ipv\(subnet.ipVersion)", "link": linkID, "ip_address": subnet.addresses[0],
                                 "netmask": Self.networkAndMask(subnet.cidr).netmask, "routes": routes, "network_id": nic.networkID,
                                 "services": dns])
            }
        }
        guard !links.isEmpty else { return nil }
        return ["links": links, "networks": networks, "services": services]
    }

    /// `10.0.0.0/24` → ("10.0.0.0", "255.255.255.0"); IPv6 masks in Nova's (netaddr's) form.
    static func networkAndMask(_ cidr: String) -> (network: String, netmask: String) {
        let parts = cidr.split(separator: "/", maxSplits: 1)
        let address = String(parts.first ?? "")
        let isV6 = address.contains(":")
        let bits = parts.count > 1 ? Int(parts[1]) ?? (isV6 ? 128 : 32) : (isV6 ? 128 : 32)
        if isV6 {
            var groups: [String] = []
            for group in 0..<8 {
                let ones = max(0, min(16, bits - group * 16))
                groups.append(String(ones == 0 ? 0 : (0xFFFF << (16 - ones)) & 0xFFFF, radix: 16))
            }
            // netaddr prints the mask compressed, e.g. ffff:ffff:ffff:ffff::
            var text = groups.joined(separator: ":")
            if let range = text.range(of: #"(:0)+$"#, options: .regularExpression) { text.replaceSubrange(range, with: "::") }
            if text == "0" + String(repeating: ":0", count: 7) || text == "0::" { text = "::" }
            return (address, text)
        }
        let mask: UInt32 = bits == 0 ? 0 : UInt32.max << (32 - UInt32(bits))
        let octets = (0..<4).map { String((mask >> (24 - 8 * UInt32($0))) & 0xFF) }
        return (address, octets.joined(separator: "."))
    }

    static func json(_ value: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    // MARK: EC2 tree

    /// A node of the EC2 tree as Nova prints it: a value, a list (one per line), or a
    /// directory (its entries, sub-directories with '/', or the directory's own name).
    indirect enum EC2Node {
        case value(Data)
        case list([String])
        case tree([String: EC2Node], name: String?)

        static func text(_ text: String) -> EC2Node { .value(Data(text.utf8)) }

        var rendered: Data {
            switch self {
            case .value(let data): return data
            case .list(let items): return Data(items.joined(separator: "\n").utf8)
            case .tree(let children, _):
                let lines = children.keys.sorted().map { key -> String in
                    guard case .tree(_, let name) = children[key]! else { return key }
                    return name ?? key + "/"
                }
                return Data(lines.joined(separator: "\n").utf8)
            }
        }
    }

    /// EC2's id of a server or image: Nova prints its integer id as `i-%08x`; Petrel has only
    /// UUIDs, so the first 32 bits of the UUID stand in for it.
    static func ec2ID(_ prefix: String, _ uuid: String?) -> String {
        guard let uuid else { return "" }
        return prefix + "-" + String(uuid.replacingOccurrences(of: "-", with: "").prefix(8))
    }

    /// One EC2 version's tree: `meta-data` and, when the server has it, `user-data`.
    func ec2Tree(version name: String, forwardedFor: String?) -> EC2Node? {
        guard let version = Self.ec2Versions.firstIndex(of: name == "latest" ? Self.ec2Versions.last! : name) else { return nil }
        func since(_ required: String) -> Bool { version >= Self.ec2Versions.firstIndex(of: required)! }
        let fixed = interfaces.flatMap(\.subnets).filter { $0.ipVersion == 4 }.flatMap(\.addresses).first
        var meta: [String: EC2Node] = [
            "ami-id": .text(Self.ec2ID("ami", server.imageID)),
            "ami-launch-index": .text(String(server.launchIndex)),
            "ami-manifest-path": .text("FIXME"),
            "instance-id": .text(Self.ec2ID("i", server.id)),
            "hostname": .text(hostname),
            "local-ipv4": .text(fixed ?? forwardedFor ?? ""),
            "reservation-id": .text(server.reservationID ?? ""),
            "security-groups": .list(interfaces.flatMap(\.securityGroups).reduce(into: [String]()) { names, name in
                if !names.contains(name) { names.append(name) }
            }),
        ]
        if let key {
            meta["public-keys"] = .tree(["0": .tree(["openssh-key": .text(key.data)], name: "0=" + key.name)], name: nil)
        }
        if since("2007-01-19") {
            meta["local-hostname"] = .text(hostname)
            meta["public-hostname"] = .text(hostname)
            meta["public-ipv4"] = .text("")  // no floating IPs yet
        }
        if since("2007-08-29") { meta["instance-type"] = .text(server.flavorName ?? server.flavorID) }
        if since("2007-12-15") {
            // The libvirt driver's disks: root vda, then the ephemeral disk and the swap disk.
            var mapping: [String: EC2Node] = ["ami": .text("vda"), "root": .text("/dev/vda")]
            var letters = Array("bcdefghijklmnopqrstuvwxyz").makeIterator()
            if server.ephemeralGB > 0, let letter = letters.next() { mapping["ephemeral0"] = .text("vd\(letter)") }
            if server.swap > 0, let letter = letters.next() { mapping["swap"] = .text("vd\(letter)") }
            meta["block-device-mapping"] = .tree(mapping, name: nil)
        }
        if since("2008-02-01") { meta["placement"] = .tree(["availability-zone": .text(availabilityZone)], name: nil) }
        if since("2008-09-01") { meta["instance-action"] = .text("none") }
        var root: [String: EC2Node] = ["meta-data": .tree(meta, name: nil)]
        if let userData { root["user-data"] = .value(userData) }
        return .tree(root, name: nil)
    }

    // MARK: config drive

    /// Every file of a config drive (path below its root → bytes), as Nova writes it: the
    /// EC2 versions' `meta-data.json` and `user-data`, and each OpenStack version's files.
    public func configDriveFiles() -> [(path: String, contents: Data)] {
        var files: [(path: String, contents: Data)] = []
        for version in Self.ec2Versions + ["latest"] {
            guard case .tree(let root, _)? = ec2Tree(version: version, forwardedFor: nil),
                  case .tree(let meta, _)? = root["meta-data"] else { continue }
            if case .value(let data)? = root["user-data"] { files.append(("ec2/\(version)/user-data", data)) }
            files.append(("ec2/\(version)/meta-data.json", Self.json(Self.plain(.tree(meta, name: nil)))))
        }
        for version in Self.openStackVersions + ["latest"] {
            for file in ["meta_data.json", "user_data", "vendor_data.json", "network_data.json", "vendor_data2.json"] {
                if case .document(let data, _)? = openStackItem(version: version, file: file) {
                    files.append(("openstack/\(version)/\(file)", data))
                }
            }
        }
        return files
    }

    /// The EC2 tree as plain JSON values (Nova's config drive `meta-data.json`).
    static func plain(_ node: EC2Node) -> Any {
        switch node {
        case .value(let data): return String(decoding: data, as: UTF8.self)
        case .list(let items): return items
        case .tree(let children, _): return children.mapValues(plain)
        }
    }
}
