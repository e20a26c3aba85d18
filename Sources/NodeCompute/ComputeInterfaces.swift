import Contracts
import Foundation
import LibvirtDriver
import PetrelCore
import RPC

/// Hot-plugged NICs (Nova's attach_interface and detach_interface on the compute side).
extension ComputeService {
    /// How long a running guest has to let go of a NIC being unplugged (it must answer the
    /// PCI hot-unplug request; Nova's libvirt driver waits about as long).
    static let detachWait: Duration = .seconds(30)

    func registerInterfaces(on server: RPCServer) {
        server.register(AttachInterface.self) { [self] arguments, _ in
            try await locks.with(arguments.instanceID) { try await self.attachInterface(arguments.instanceID, arguments.nic) }
            return Nothing()
        }
        server.register(DetachInterface.self) { [self] arguments, _ in
            try await locks.with(arguments.instanceID) { try await self.detachInterface(arguments.instanceID, arguments.nic) }
            return Nothing()
        }
    }

    static func isLive(_ state: GuestState) -> Bool { [.running, .blocked, .paused].contains(state) }

    /// Wires the port's network, then adds the NIC where it is missing: to the running guest
    /// and to the stored definition (a stopped guest gets it at its next start).
    public func attachInterface(_ id: String, _ nic: InstanceSpec.NIC) async throws {
        guard try await lookup(id) != nil else { throw Refused(description: "instance \(id) is not on \(host)", retryable: false) }
        guard let vifs else {
            throw Refused(description: "this host runs no network service to plug port \(nic.portID) into", retryable: false)
        }
        guard let state = try await hypervisor.state(id) else {
            throw Refused(description: "instance \(id) has no domain on \(host)", retryable: false)
        }
        try await vifs.plug(networks: [nic.networkID])
        let stored = try await hypervisor.definition(id) ?? ""
        let live = Self.isLive(state) ? try await hypervisor.liveDefinition(id) ?? "" : nil
        let toConfig = !InstanceDomain.hasInterface(stored, mac: nic.macAddress)
        let toLive = live.map { !InstanceDomain.hasInterface($0, mac: nic.macAddress) } ?? false
        guard toConfig || toLive else { return }
        try await hypervisor.attach(id, device: InstanceDomain.interface(nic), live: toLive, config: toConfig)
        logger.info("interface attached", metadata: ["instance": "\(id)", "port": "\(nic.portID)", "live": "\(toLive)"])
    }

    /// Removes the NIC from the running guest (waiting for the guest to let go of it), then
    /// from the stored definition. A guest that does not let go keeps the NIC in both.
    public func detachInterface(_ id: String, _ nic: InstanceSpec.NIC) async throws {
        guard let state = try await hypervisor.state(id) else { return }
        let device = InstanceDomain.interface(nic)
        if Self.isLive(state), let live = try await hypervisor.liveDefinition(id), InstanceDomain.hasInterface(live, mac: nic.macAddress) {
            try await hypervisor.detach(id, device: device, live: true, config: false)
            let deadline = ContinuousClock.now + Self.detachWait
            while let xml = try await hypervisor.liveDefinition(id), InstanceDomain.hasInterface(xml, mac: nic.macAddress) {
                guard ContinuousClock.now < deadline else {
                    throw Refused(description: "the guest of instance \(id) did not release port \(nic.portID) within \(Self.detachWait)",
                                  retryable: true)
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        if let stored = try await hypervisor.definition(id), InstanceDomain.hasInterface(stored, mac: nic.macAddress) {
            try await hypervisor.detach(id, device: device, live: false, config: true)
        }
        logger.info("interface detached", metadata: ["instance": "\(id)", "port": "\(nic.portID)"])
    }
}
