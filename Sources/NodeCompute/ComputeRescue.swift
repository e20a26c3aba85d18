import Contracts
import Foundation

/// Rescue: the guest is powered off and booted again from a fresh disk of the rescue image,
/// its own root disk attached second (legacy), or every disk of its own kept and the rescue
/// disk last, booted first (stable rescue, asked by the image); unrescue boots it from its
/// own disks and drops the rescue disk. Both can run again after a crash: the rescue disk is made anew each time.
extension ComputeService {
    func rescue(_ spec: InstanceSpec) async throws -> VMState {
        guard let image = spec.rescueImage else {
            throw Refused(description: "the controller gave no rescue image for instance \(spec.id)", retryable: false)
        }
        // A device or bus this node cannot attach is refused before anything changes.
        let stable: InstanceDomain.StableRescue?
        do { stable = try InstanceDomain.stableRescue(image) } catch { throw Refused(description: "\(error)", retryable: false) }
        if spec.rootVolume != nil && stable == nil {
            throw Refused(description: "instance \(spec.id) is volume-backed: only a stable rescue can rescue it", retryable: false)
        }
        let id = spec.id, files = files(id)
        try await powerOffDroppingSave(id)
        try Data(image.id.utf8).write(to: URL(fileURLWithPath: files.rescueImageMarker))
        let base = try await cache.fetch(image)
        do {
            try? FileManager.default.removeItem(atPath: files.rescueDisk)
            try await InstanceFiles.overlay(files.rescueDisk, on: base, of: image, rootGB: spec.flavor.rootGB)
            try await defineDomain(spec, files: files, rescue: true)
            try await hypervisor.start(id)
        } catch {
            // Not rescued: the instance's own domain again, as it was (powered off).
            try? await hypervisor.destroy(id)
            try? await defineDomain(spec, files: files)
            try? FileManager.default.removeItem(atPath: files.rescueDisk)
            try? FileManager.default.removeItem(atPath: files.rescueImageMarker)
            throw error
        }
        return .rescued
    }

    func unrescue(_ spec: InstanceSpec) async throws -> VMState {
        let id = spec.id, files = files(id)
        if try await hypervisor.state(id) != .shutOff { try await hypervisor.destroy(id) }
        try await defineDomain(spec, files: files)
        try? FileManager.default.removeItem(atPath: files.rescueDisk)
        try? FileManager.default.removeItem(atPath: files.rescueImageMarker)
        try await hypervisor.start(id)
        return .active
    }
}
