import Contracts
import Foundation
import Logging
import TgtDriver

/// The exports a node keeps: what the controller last listed, and what it was asked for since.
actor WantedExports {
    private var byAttachment: [String: (export: VolumeExport, since: ContinuousClock.Instant)] = [:]

    func add(_ export: VolumeExport) { byAttachment[export.attachmentID] = (export, .now) }
    func remove(_ attachmentID: String) { byAttachment[attachmentID] = nil }
    var all: [VolumeExport] { byAttachment.values.map(\.export) }

    /// Replaces the list with the controller's (read at `asOf`), keeping what was asked for
    /// after that (an export made while the list was on its way).
    func replace(with exports: [VolumeExport], asOf: ContinuousClock.Instant) -> [VolumeExport] {
        var next = Dictionary(exports.map { ($0.attachmentID, ($0, asOf)) }) { a, _ in a }
        for (id, entry) in byAttachment where entry.since > asOf { next[id] = entry }
        byAttachment = next
        return next.values.map(\.0)
    }
}

/// Volumes exported over iSCSI to guests on other hosts (Cinder's tgtadm target helper): one
/// target per volume, `<target_prefix>volume-<id>`, its file or device as LUN 1, and one CHAP
/// account per attachment, made by the controller and kept in its database. tgtd holds all
/// this in memory only, so the node makes the exports again whenever they are missing: at
/// start, at each reconcile, and at each capacity measurement (a restarted tgtd is caught
/// within seconds). Targets of this node's volumes that no attachment wants are removed.
extension VolumeRole {
    func iqn(_ backend: Backend, volumeID: String) -> String { backend.settings.targetPrefix + VolumeNaming.name(volumeID) }

    /// The portal other hosts log in to.
    func portal(_ backend: Backend) throws -> String {
        guard let address = backend.settings.targetIPAddress ?? nodeAddress else {
            throw VolumeDriverError("backend \(backend.settings.name) has no target_ip_address and this node no address of its own ([DEFAULT] my_ip)")
        }
        return (address.contains(":") ? "[\(address)]" : address) + ":\(backend.settings.targetPort)"
    }

    func exporting(_ export: VolumeExport) throws -> Backend {
        guard let backend = backends[export.volume.backend] else {
            throw VolumeDriverError("backend \(export.volume.backend) is not enabled on \(host)")
        }
        guard backend.settings.targetHelper == "tgtadm" else {
            throw VolumeDriverError("backend \(backend.settings.name) of \(host) exports no volumes to other hosts (target_helper = none)")
        }
        return backend
    }

    /// Exports the volume for one attachment and says where it is.
    func export(_ export: VolumeExport) async throws -> ISCSITarget {
        let backend = try exporting(export)
        let portal = try portal(backend)
        let name = VolumeNaming.name(export.volume.id), iqn = iqn(backend, volumeID: export.volume.id)
        let started = ContinuousClock.now
        let done = try await locks.with(export.volume.id) { () async throws -> TgtExport in
            guard try await backend.driver.size(name) != nil else {
                throw VolumeDriverError("volume \(export.volume.id) is not on backend \(backend.settings.name) of \(host)")
            }
            return try await tgt.ensure(iqn: iqn, path: backend.driver.path(name), user: export.username, password: export.password)
        }
        await wantedExports.add(export)
        logger.info("volume exported", metadata: [
            "volume": "\(export.volume.id)", "attachment": "\(export.attachmentID)", "iqn": "\(iqn)", "tid": "\(done.tid)",
            "portal": "\(portal)", "tgt_us": "\(Self.microseconds(ContinuousClock.now - started))",
        ])
        return ISCSITarget(portal: portal, iqn: iqn, lun: done.lun, username: export.username, password: export.password)
    }

    /// Ends one attachment's access (the target goes with its last account).
    func unexport(_ export: VolumeExport) async throws {
        await wantedExports.remove(export.attachmentID)
        guard let backend = backends[export.volume.backend] else { return }
        let iqn = iqn(backend, volumeID: export.volume.id)
        try await locks.with(export.volume.id) { try await tgt.release(iqn: iqn, user: export.username) }
        logger.info("volume export ended", metadata: ["volume": "\(export.volume.id)", "attachment": "\(export.attachmentID)"])
    }

    /// Makes every wanted export that tgtd lacks, and removes targets and accounts of this
    /// node's volumes that nobody wants (`removeOthers`: only with the controller's full list).
    func convergeExports(_ wanted: [VolumeExport], removeOthers: Bool) async {
        let exportingBackends = backends.values.filter { $0.settings.targetHelper == "tgtadm" }
        guard !exportingBackends.isEmpty, !wanted.isEmpty || removeOthers else { return }
        let present: [TgtTarget]
        do { present = try await tgt.targets() } catch {
            // Without tgtd nothing can be exported; that matters only when something should be.
            if !wanted.isEmpty {
                logger.warning("tgtd does not answer: volumes are not exported to other hosts", metadata: ["error": "\(error)"])
            }
            return
        }
        for export in wanted {
            guard let backend = try? exporting(export) else { continue }
            let iqn = iqn(backend, volumeID: export.volume.id)
            if let target = present.first(where: { $0.iqn == iqn }), target.luns[Tgt.dataLUN] != nil, target.accounts.contains(export.username) {
                continue
            }
            do {
                _ = try await self.export(export)
                logger.info("volume export restored", metadata: ["volume": "\(export.volume.id)", "attachment": "\(export.attachmentID)"])
            } catch {
                logger.warning("volume export cannot be restored", metadata: ["volume": "\(export.volume.id)", "error": "\(error)"])
            }
        }
        guard removeOthers else { return }
        for target in present {
            // Ours: named as this node names targets, and exporting where one of its backends keeps that volume.
            guard let backend = exportingBackends.first(where: { target.iqn.hasPrefix($0.settings.targetPrefix + "volume-") }) else { continue }
            let volumeID = String(target.iqn.dropFirst((backend.settings.targetPrefix + "volume-").count))
            let name = VolumeNaming.name(volumeID)
            guard let path = target.luns[Tgt.dataLUN], exportingBackends.contains(where: { $0.driver.path(name) == path }) else { continue }
            let users = Set(wanted.filter { $0.volume.id == volumeID }.map(\.username))
            for account in target.accounts where !users.contains(account) {
                do {
                    try await locks.with(volumeID) { try await tgt.release(iqn: target.iqn, user: account) }
                    logger.info("stale volume export removed", metadata: ["volume": "\(volumeID)", "account": "\(account)"])
                } catch {
                    logger.warning("stale volume export cannot be removed", metadata: ["volume": "\(volumeID)", "error": "\(error)"])
                }
            }
            if target.accounts.isEmpty, users.isEmpty {
                try? await locks.with(volumeID) { try await tgt.deleteTarget(tid: target.tid) }
            }
        }
    }
}
