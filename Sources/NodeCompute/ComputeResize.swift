import Contracts
import Foundation
import ProcessDriver

/// Resizes and cold migrations within this host (Nova's same-host resize): the guest is
/// powered off, its disks are kept as they were for a revert, grown to the new flavor, and the
/// domain is defined with the new vCPUs and RAM. A confirm drops the kept disks; a revert puts
/// them back with the old flavor. Each step can run again after a crash: a resize starts from
/// the kept disks whenever they exist.
extension ComputeService {
    func resize(_ spec: InstanceSpec) async throws -> VMState {
        guard let resize = spec.resize else {
            throw Refused(description: "the controller gave no flavor to resize instance \(spec.id) to", retryable: false)
        }
        let id = spec.id, files = files(id)
        try await powerOffDroppingSave(id)
        // The disks as they were (kept once; a resize run again starts from them).
        if files.hasResizeBackup {
            try files.restoreResizeBackup(keeping: true)
        } else {
            try files.keepResizeBackup()
        }
        do {
            try await files.resizeDisks(from: spec.flavor, to: resize.flavor)
            var resized = spec
            resized.flavor = resize.flavor
            try await defineDomain(resized, files: files)
        } catch {
            // Back to the disks and domain of before: the server stays as it was.
            try? files.restoreResizeBackup(keeping: false)
            try? await defineDomain(spec, files: files)
            if resize.powerOn { try? await startIfOff(id) }
            throw error
        }
        if resize.powerOn { try await startIfOff(id) }
        return .resized
    }

    func confirmResize(_ spec: InstanceSpec) async throws -> VMState {
        files(spec.id).dropResizeBackup()
        return try await hypervisor.state(spec.id) == .running ? .active : .stopped
    }

    /// Puts back the disks kept at the resize and defines the domain with the old flavor
    /// (`spec.resize`). A revert run again after the disks went back only defines and starts.
    func revertResize(_ spec: InstanceSpec) async throws -> VMState {
        guard let resize = spec.resize else {
            throw Refused(description: "the controller gave no flavor to revert instance \(spec.id) to", retryable: false)
        }
        let id = spec.id, files = files(id)
        try await powerOffDroppingSave(id)
        if files.hasResizeBackup { try files.restoreResizeBackup(keeping: false) }
        var reverted = spec
        reverted.flavor = resize.flavor
        try await defineDomain(reverted, files: files)
        if resize.powerOn {
            try await startIfOff(id)
            return .active
        }
        return .stopped
    }
}

extension InstanceFiles {
    /// The local disks a resize changes (the config drive stays as it is).
    var resizedDisks: [String] { [disk, ephemeral, swap] }
    var resizeBackup: String { directory + "/resize-backup" }

    public var hasResizeBackup: Bool { FileManager.default.fileExists(atPath: resizeBackup + "/complete") }

    /// Copies the disks into `resize-backup/`, marked complete only once every copy is whole.
    func keepResizeBackup() throws {
        let manager = FileManager.default
        try? manager.removeItem(atPath: resizeBackup)
        try manager.createDirectory(atPath: resizeBackup, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        for path in resizedDisks where manager.fileExists(atPath: path) {
            try manager.copyItem(atPath: path, toPath: resizeBackup + "/" + (path as NSString).lastPathComponent)
        }
        manager.createFile(atPath: resizeBackup + "/complete", contents: nil)
    }

    /// Puts the kept disks back in place (a disk the backup has none of is removed: the flavor
    /// before had none); `keeping`: copies, so the backup stays for a revert.
    func restoreResizeBackup(keeping: Bool) throws {
        let manager = FileManager.default
        for path in resizedDisks {
            let kept = resizeBackup + "/" + (path as NSString).lastPathComponent
            let partial = path + ".restoring"
            try? manager.removeItem(atPath: partial)
            if manager.fileExists(atPath: kept) {
                if keeping { try manager.copyItem(atPath: kept, toPath: partial) } else { try manager.moveItem(atPath: kept, toPath: partial) }
                // rename(2) replaces the disk in one step.
                guard rename(partial, path) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
            } else {
                try? manager.removeItem(atPath: path)
            }
        }
        if !keeping { dropResizeBackup() }
    }

    func dropResizeBackup() {
        try? FileManager.default.removeItem(atPath: resizeBackup)
    }

    /// Grows the root and ephemeral disks to the new flavor's sizes (they never shrink: the API
    /// refuses a smaller root disk) and makes the swap disk the new flavor's.
    func resizeDisks(from old: InstanceSpec.Flavor, to new: InstanceSpec.Flavor) async throws {
        let manager = FileManager.default
        if manager.fileExists(atPath: disk), new.rootGB > old.rootGB {
            try await Command.check("qemu-img", ["resize", "-q", "-f", "qcow2", disk, "\(new.rootGB)G"])
        }
        if new.ephemeralGB != old.ephemeralGB {
            if new.ephemeralGB == 0 {
                try? manager.removeItem(atPath: ephemeral)
            } else if manager.fileExists(atPath: ephemeral), new.ephemeralGB > old.ephemeralGB {
                try await Command.check("qemu-img", ["resize", "-q", "-f", "qcow2", ephemeral, "\(new.ephemeralGB)G"])
            } else if !manager.fileExists(atPath: ephemeral) {
                try await Command.check("qemu-img", ["create", "-q", "-f", "qcow2", ephemeral, "\(new.ephemeralGB)G"])
            }
        }
        if new.swapMB != old.swapMB {
            try? manager.removeItem(atPath: swap)
            if new.swapMB > 0 {
                try await Command.check("qemu-img", ["create", "-q", "-f", "raw", swap, "\(new.swapMB)M"])
                _ = try? await Command.run("mkswap", [swap])
            }
        }
    }
}
