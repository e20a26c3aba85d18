import DnsmasqDriver
import Foundation
import Logging
import NetlinkDriver
import ProcessDriver
import TestSupport
import Testing

/// Real dnsmasq, real DHCP: namespace A holds the DHCP port and dnsmasq (as a `qdhcp-`
/// namespace would), namespace B is the guest, a veth joins them, and busybox's udhcpc
/// in B asks for a lease. Everything lives in 198.18.0.0/15 inside those namespaces.
@Suite(.serialized) struct DnsmasqLifecycleTests {
    @Test func startServeReloadAdoptRestartStop() async throws {
        try await DHCPLab.run(octet: UInt8.random(in: 0...255)) { lab in
            let x = lab.octet
            var network = lab.network(hosts: [
                DHCPHost(portID: "port-1", mac: lab.guestMAC, fixedIPs: [FixedIP(subnetID: "subnet-1", address: "198.18.\(x).10")],
                         hostname: "guest1"),
            ])
            let driver = lab.driver()
            let paths = driver.paths(network: network.id)

            // Start: a daemon of its own, in namespace A.
            let started = try await driver.update(network)
            guard case .started(let pid) = started else { Issue.record("first update: \(started)"); return }
            #expect(driver.pid(network: network.id) == pid)
            #expect(driver.running() == [network.id])
            #expect(try lab.inode(of: pid) == lab.dhcp.inode(), "dnsmasq runs inside the DHCP namespace")
            #expect(lab.parent(of: pid) != getpid(), "daemonized: it outlives this process (petrel-node)")
            for file in [paths.hostsFile, paths.addnHostsFile, paths.optsFile, paths.pidFile] {
                #expect(FileManager.default.fileExists(atPath: file), "\(file)")
            }

            // The guest gets exactly what the description says.
            let lease = try await lab.requestLease()
            #expect(lease["ip"] == "198.18.\(x).10", "\(lease)")
            #expect(lease["router"] == "198.18.\(x).1")
            #expect(lease["dns"] == "198.18.\(x).53")
            #expect(lease["mtu"] == "1450")
            #expect(lease["hostname"] == "guest1" && lease["domain"] == "petrel.test", "\(lease)")
            #expect(lease["staticroutes"]?.contains("169.254.169.254/32 198.18.\(x).2") == true, "\(lease)")
            #expect(lease["staticroutes"]?.contains("0.0.0.0/0 198.18.\(x).1") == true, "\(lease)")

            // Same command line: files rewritten and re-read, same process.
            #expect(try await driver.update(network) == .reloaded(pid: pid))
            network.hosts[0].fixedIPs[0].address = "198.18.\(x).20"
            let clock = ContinuousClock()
            let changed = clock.now
            #expect(try await driver.update(network) == .reloaded(pid: pid))
            let reloaded = clock.now
            let moved = try await lab.requestLease()
            let served = clock.now
            #expect(moved["ip"] == "198.18.\(x).20", "\(moved)")
            print("dnsmasq: update (render + write + SIGHUP) \(reloaded - changed); SIGHUP to the new address leased \(served - reloaded)")

            // A restarted node (a new driver over the same state) adopts the running dnsmasq.
            let restartedNode = lab.driver()
            #expect(try await restartedNode.update(network) == .reloaded(pid: pid))
            #expect(restartedNode.running() == [network.id])
            #expect(lab.dnsmasqs(using: paths) == [pid], "exactly one dnsmasq for the network")

            // Another command line (the MTU): a new process replaces the old one.
            network.mtu = 1400
            let replaced = try await restartedNode.update(network)
            guard case .restarted(let newPID) = replaced else { Issue.record("MTU change: \(replaced)"); return }
            #expect(newPID != pid && lab.dnsmasqs(using: paths) == [newPID])
            #expect(try await lab.requestLease()["mtu"] == "1400")

            // Dead (killed outright): the next update starts it again.
            kill(newPID, SIGKILL)
            #expect(await eventually { driver.pid(network: network.id) == nil })
            #expect(driver.running() == [] && driver.networks() == [network.id], "dead, but its files remain for reconcile")
            let revived = try await driver.update(network)
            guard case .started(let revivedPID) = revived else { Issue.record("after SIGKILL: \(revived)"); return }
            #expect(try await lab.requestLease()["ip"] == "198.18.\(x).20")

            // Stop: process and files gone; stopping again is fine.
            try await driver.stop(network: network.id)
            #expect(lab.dnsmasqs(using: paths) == [])
            #expect(kill(revivedPID, 0) != 0 || lab.isZombie(revivedPID))
            #expect(!FileManager.default.fileExists(atPath: paths.directory))
            #expect(driver.running() == [] && driver.networks() == [])
            try await driver.stop(network: network.id)
        }
    }

    /// A port is deleted without releasing its lease (its VM is gone) and its address goes
    /// to a new port: dnsmasq would refuse the new MAC an address "leased to" the old one
    /// until the lease expires, unless the driver releases what no port has any more.
    @Test func anAddressMovesToANewPortAtOnce() async throws {
        try await DHCPLab.run(octet: UInt8.random(in: 0...255)) { lab in
            let x = lab.octet
            let address = FixedIP(subnetID: "subnet-1", address: "198.18.\(x).30")
            let old = DHCPHost(portID: "port-old", mac: lab.guestMAC, fixedIPs: [address])
            var network = lab.network(hosts: [old])
            let driver = lab.driver()
            guard case .started(let pid) = try await driver.update(network) else { Issue.record("not started"); return }
            #expect(try await lab.requestLease(release: false)["ip"] == address.address)
            let leases = try String(contentsOfFile: driver.paths(network: network.id).leaseFile, encoding: .utf8)
            #expect(leases.contains("\(old.mac) \(address.address)"), "\(leases)")

            // Reloaded: the stale lease is released while dnsmasq runs.
            let newMAC = "fa:16:3e:77:00:01"
            network.hosts = [DHCPHost(portID: "port-new", mac: newMAC, fixedIPs: [address])]
            try lab.setGuestMAC(newMAC)
            #expect(try await driver.update(network) == .reloaded(pid: pid))
            #expect(try await lab.requestLease(release: false)["ip"] == address.address)

            // Restarted (another MTU): the stale lease is dropped from the file it starts with.
            let third = "fa:16:3e:77:00:02"
            network.hosts = [DHCPHost(portID: "port-third", mac: third, fixedIPs: [address])]
            network.mtu = 1400
            try lab.setGuestMAC(third)
            guard case .restarted = try await driver.update(network) else { Issue.record("not restarted"); return }
            #expect(try await lab.requestLease(release: false)["ip"] == address.address)
            try await driver.stop(network: network.id)
        }
    }

    @Test func missingNamespaceAndBadConfigurationAreReported() async throws {
        try Requirement.root()
        try Requirement.tool("dnsmasq")
        let state = FileManager.default.temporaryDirectory.appendingPathComponent(TestNames.unique("petrel-test-dhcp-")).path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let driver = DnsmasqDriver(stateDirectory: state, logger: Logger(label: "petrel-test"))
        let network = DHCPNetwork(id: TestNames.unique("net"), namespace: TestNames.unique("petrel-test-"), interface: "ns-x",
                                  subnets: [DHCPSubnet(id: "s", cidr: "198.18.0.0/24", gateway: nil)])
        await #expect(throws: DnsmasqError.self) { try await driver.update(network) }
        var bad = network
        bad.subnets[0].cidr = "198.18.0.0/99"
        await #expect(throws: DHCPConfigurationError.self) { try await driver.update(bad) }
        #expect(driver.networks() == [])

        // A program that will not start is reported with its status and words. (dnsmasq
        // itself starts on a missing interface with bind-dynamic, and a second dnsmasq in
        // the same namespace binds the DHCP port too, so neither is an error to test.)
        let namespace = try NetworkNamespace.create(network.namespace)
        let broken = DnsmasqDriver(stateDirectory: state, executable: "/bin/sh", logger: Logger(label: "petrel-test"))
        try await withCleanup {
            do {
                try await broken.update(network)
                Issue.record("a failing start was not reported")
            } catch let error as DnsmasqError {
                #expect(error.description.contains("exited with status 2") && error.description.contains("llegal option"), "\(error)")
            }
            #expect(broken.running() == [])
        } cleanup: {
            try? await broken.stop(network: network.id)
            try? namespace.delete()
        }
    }

    /// The figure the network service cares about: a network of 1,000 ports changes
    /// one port; how long until dnsmasq serves the change.
    @Test func thousandHostsUpdate() async throws {
        try await DHCPLab.run(octet: 0, prefix: "198.19.0.0/22", dhcpAddress: "198.19.3.254/22",
                              gateway: "198.19.3.253", dns: "198.19.3.252") { lab in
            func address(_ i: Int) -> String { "198.19.\((i + 10) / 256).\((i + 10) % 256)" }
            func mac(_ i: Int) -> String { String(format: "fa:16:3e:00:%02x:%02x", i / 256, i % 256) }
            let hosts = (0..<1000).map { i in
                DHCPHost(portID: "port-\(i)", mac: mac(i), fixedIPs: [FixedIP(subnetID: "subnet-1", address: address(i))],
                         hostname: "vm-\(i)")
            }
            // The guest is port 999.
            try lab.setGuestMAC(mac(999))
            let driver = lab.driver()
            var network = lab.network(hosts: Array(hosts.prefix(10)))
            _ = try await driver.update(network)
            network.hosts = hosts

            let clock = ContinuousClock()
            let renderTime = try clock.measure { _ = try driver.configuration(network) }
            let start = clock.now
            let outcome = try await driver.update(network)
            let updated = clock.now
            let lease = try await lab.requestLease()
            let served = clock.now
            guard case .reloaded = outcome else { Issue.record("\(outcome)"); return }
            #expect(lease["ip"] == address(999), "\(lease)")
            let hostsSize = (try? FileManager.default.attributesOfItem(atPath: driver.paths(network: network.id).hostsFile)[.size]) ?? 0
            print("dnsmasq, 1,000 hosts: render \(renderTime); update (render + write + SIGHUP) \(updated - start); "
                  + "until port 999 got its lease \(served - updated) (udhcpc included); hosts file \(hostsSize) bytes")
            try await driver.stop(network: network.id)
        }
    }
}

/// Two namespaces joined by a veth, a state directory, and the cleanup of all three
/// (and of any dnsmasq that used the state directory), whatever the test did.
struct DHCPLab {
    let octet: UInt8
    let dhcp: NetworkNamespace
    let guest: NetworkNamespace
    let dhcpInterface: String
    let guestInterface: String
    let state: String
    let subnet: String, dhcpAddress: String, gateway: String, dns: String
    private(set) var guestMAC: String
    let logger = Logger(label: "petrel-test")

    static func run(octet: UInt8, prefix: String? = nil, dhcpAddress: String? = nil, gateway: String? = nil, dns: String? = nil,
                    _ body: (inout DHCPLab) async throws -> Void) async throws {
        try Requirement.root()
        try Requirement.tool("dnsmasq")
        try Requirement.tool("busybox")
        let name = TestNames.unique("petrel-test-")
        let dhcp = try NetworkNamespace.create(name)
        let guest: NetworkNamespace
        do { guest = try NetworkNamespace.create(name + "-g") } catch {
            try? dhcp.delete()
            throw error
        }
        let state = FileManager.default.temporaryDirectory.appendingPathComponent(name + "-dhcp").path
        try await withCleanup {
            let base = TestNames.unique("pt")
            let a = base + "a", b = base + "b"
            let inside = try Netlink(namespace: dhcp)
            try inside.createVeth(a, peer: b)
            try inside.move(b, to: guest)
            let guestSide = try Netlink(namespace: guest)
            let x = octet
            let dhcpAddress = dhcpAddress ?? "198.18.\(x).2/24"
            try inside.addAddress(dhcpAddress, to: a)
            for (netlink, link) in [(inside, "lo"), (inside, a), (guestSide, "lo"), (guestSide, b)] { try netlink.setUp(link) }
            let mac = try #require(try guestSide.link(named: b)?.mac)
            var lab = DHCPLab(octet: x, dhcp: dhcp, guest: guest, dhcpInterface: a, guestInterface: b, state: state,
                              subnet: prefix ?? "198.18.\(x).0/24", dhcpAddress: String(dhcpAddress.split(separator: "/")[0]),
                              gateway: gateway ?? "198.18.\(x).1", dns: dns ?? "198.18.\(x).53", guestMAC: mac)
            try await body(&lab)
        } cleanup: {
            // Whatever dnsmasq the test left running under this state directory.
            for pid in DHCPLab.processes(mentioning: "--pid-file=\(state)/") { kill(pid, SIGKILL) }
            try? FileManager.default.removeItem(atPath: state)
            try? FileManager.default.removeItem(atPath: state + "-udhcpc.sh")
            try? guest.delete()
            try? dhcp.delete()
        }
    }

    func driver() -> DnsmasqDriver {
        DnsmasqDriver(stateDirectory: state, logDHCP: true, logger: logger)
    }

    func network(hosts: [DHCPHost]) -> DHCPNetwork {
        DHCPNetwork(id: "net-\(dhcp.name)", namespace: dhcp.name, interface: dhcpInterface,
                    subnets: [DHCPSubnet(id: "subnet-1", cidr: subnet, gateway: gateway, dnsNameservers: [dns],
                                         metadataNextHop: dhcpAddress)],
                    hosts: hosts, mtu: 1450, leaseDuration: 600, domain: "petrel.test")
    }

    mutating func setGuestMAC(_ mac: String) throws {
        try Netlink(namespace: guest).setMAC(guestInterface, mac)
        guestMAC = mac
    }

    /// Runs udhcpc in the guest namespace once and returns what it was given
    /// (ip, router, dns, mtu, staticroutes, hostname, domain). With `release` the lease
    /// is released on exit, so the next request starts afresh; without, the guest
    /// "vanishes" holding it, as a deleted VM does.
    func requestLease(release: Bool = true) async throws -> [String: String] {
        let script = state + "-udhcpc.sh"
        if !FileManager.default.fileExists(atPath: script) {
            // Written by a child shell, not by this process: a file this multithreaded process
            // had open for writing can leak into a concurrently forked child (dnsmasq), and
            // exec of it then fails with ETXTBSY for as long as that child lives.
            let body = """
                #!/bin/sh
                [ "$1" = bound ] || exit 0
                for v in ip router dns mtu staticroutes hostname domain; do eval "echo $v=\\$$v"; done
                """
            try await Command.check("/bin/sh", ["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh", script], input: body + "\n")
        }
        let result = try await Command.run("/usr/bin/busybox", ["udhcpc", "-i", guestInterface, "-f", "-q", "-n"]
                                           + (release ? ["-R"] : [])
                                           + ["-t", "3", "-T", "1", "-O", "staticroutes", "-s", script],
                                           namespace: guest)
        var values: [String: String] = [:]
        for line in result.stdout.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        if values["ip"] == nil {
            Issue.record("no lease: status \(result.status), \(result.stdout) \(result.stderr)")
        }
        return values
    }

    func inode(of pid: Int32) throws -> UInt64 {
        var info = stat()
        guard stat("/proc/\(pid)/ns/net", &info) == 0 else { throw SystemCallErrorForTests("stat ns of \(pid)") }
        return UInt64(info.st_ino)
    }

    func parent(of pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }

    func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }

    /// Live dnsmasq processes that use this network's pid file.
    func dnsmasqs(using paths: DnsmasqPaths) -> [Int32] {
        DHCPLab.processes(mentioning: "--pid-file=\(paths.pidFile)").filter { !isZombie($0) }
    }

    static func processes(mentioning argument: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return data.split(separator: 0).contains { String(decoding: $0, as: UTF8.self).hasPrefix(argument) }
        }.sorted()
    }
}

struct SystemCallErrorForTests: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
