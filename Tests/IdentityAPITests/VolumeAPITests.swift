import Contracts
import Foundation
import HTTPTypes
import Hosts
import Hummingbird
import HummingbirdTesting
@testable import Identity
import Images
@testable import IdentityAPI
import Logging
import NIOCore
import PetrelHTTP
import Store
import TestSupport
import Testing
import VolumeAPI
import Volumes

/// A stand-in for the nodes' volume services: it keeps the work the controller hands out and,
/// when told, answers it as a node that succeeded would (tests only; the real node's
/// conversation is exercised by the volume CLI test).
actor VolumeNodeDouble {
    var pending: [(host: String, work: VolumeSpec)] = []
    var snapshots: [(host: String, work: SnapshotSpec)] = []
    var backups: [(host: String, work: BackupSpec)] = []
    var unreachable = false

    func take(_ host: String, _ work: VolumeSpec) throws {
        if unreachable { throw CancellationError() }
        pending.append((host, work))
    }

    func take(_ host: String, _ work: SnapshotSpec) throws {
        if unreachable { throw CancellationError() }
        snapshots.append((host, work))
    }

    func take(_ host: String, _ work: BackupSpec) throws {
        if unreachable { throw CancellationError() }
        backups.append((host, work))
    }

    func setUnreachable(_ value: Bool) { unreachable = value }

    /// The iSCSI exports the node holds, by attachment.
    var exports: [String: VolumeExport] = [:]

    func export(_ host: String, _ export: VolumeExport) throws -> ISCSITarget {
        if unreachable { throw CancellationError() }
        exports[export.attachmentID] = export
        return ISCSITarget(portal: "192.0.2.7:3260", iqn: "iqn.2010-10.org.openstack:volume-\(export.volume.id)", lun: 1,
                           username: export.username, password: export.password)
    }

    func unexport(_ host: String, _ export: VolumeExport) throws {
        if unreachable { throw CancellationError() }
        exports[export.attachmentID] = nil
    }

    /// Drops the work handed out so far (a test that answered it itself).
    func forget() {
        pending = []
        snapshots = []
        backups = []
    }

    /// Answers every pending piece of work as done.
    func finish(_ volumes: VolumeService) async throws {
        let made = backups
        backups = []
        for (host, spec) in made {
            let outcome = spec.status == "deleting" ? "deleted" : spec.status == "restoring" ? "restored" : "available"
            try await volumes.applyBackup(.init(backupID: spec.id, host: host, from: spec.status, outcome: outcome, objectCount: 1))
        }
        let taken = snapshots
        snapshots = []
        for (host, spec) in taken {
            try await volumes.applySnapshot(.init(snapshotID: spec.id, host: host, from: spec.status,
                                                  outcome: spec.status == "deleting" ? "deleted" : "available"))
        }
        let work = pending
        pending = []
        for (host, spec) in work {
            let outcome = spec.status == "deleting" ? "deleted" : "available"
            try await volumes.apply(.init(volumeID: spec.id, host: host, from: spec.status, outcome: outcome, sizeGB: spec.sizeGB))
        }
    }
}

/// Cinder's volumes, types, quotas and limits in-process, with the node's side played by
/// `VolumeNodeDouble`.
@Suite struct VolumeAPITests {
    struct Cloud: Sendable {
        let client: any TestClientProtocol
        let admin: String
        let member: String
        let memberProject: String
        let other: String
        let volumes: VolumeService
        let node: VolumeNodeDouble
        let store: ServiceStore
        let images: ImageService
    }

    func withCloud(_ body: @Sendable (Cloud) async throws -> Void) async throws {
        try await withBootstrappedIdentity { database, service in
            let identity = KeystoneAPI(service: service, policy: try Policy(defaults: KeystonePolicy.defaults + VolumeAPI.policyDefaults),
                                       publicURL: "http://controller:5000", logger: Logger(label: "volume-test"))
            // The services are recorded once, below: they must stay up however long the test takes
            // on a loaded host (a fresh-clone CI run took 269 s, and node1 went down after 60).
            let hosts = HostInventory(database: database, serviceDownTime: 3600)
            let node = VolumeNodeDouble()
            var quotas = ["volumes": 10, "gigabytes": 1000, "snapshots": 10, "backups": 10, "backup_gigabytes": 1000, "per_volume_gigabytes": -1]
            quotas["instances"] = 10
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-volume-images-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let images = try ImageService(database: database, directory: directory, sizeCap: 1 << 30)
            let volumes = VolumeService(database: database, settings: .init(quotaDefaults: quotas), hosts: hosts, images: images,
                                        connect: { _, volume in .init(path: "/volumes/volume-\(volume.id)", block: false) },
                                        sendSnapshot: { host, work in try await node.take(host, work) },
                                        sendBackup: { host, work in try await node.take(host, work) },
                                        export: { host, export in try await node.export(host, export) },
                                        unexport: { host, export in try await node.unexport(host, export) }) { host, work in
                try await node.take(host, work)
            }
            let router = Hummingbird.Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
            VolumeAPI(environment: identity.environment, hosts: hosts, volumes: volumes, logger: Logger(label: "volume-test")).register(on: router)
            identity.register(on: router)
            let store = ServiceStore(database)
            try await store.record(host: "node1", version: "1", services: [("cinder-volume", "volume")], hypervisor: nil)
            try await volumes.recordBackends(host: "node1", [
                VolumeBackendReport(name: "file-1", backendName: "file-1", driver: "file", thin: true, totalBytes: 10 << 30,
                                    freeBytes: 8 << 30, reservedPercentage: 0, maxOverSubscriptionRatio: 2),
            ])
            let admin = try await adminToken(service)
            let (project, member) = try await addProjectUser(service, project: "vol-p", user: "vol-u")
            let (_, other) = try await addProjectUser(service, project: "vol-q", user: "vol-v")
            try await Application(router: router).test(.router) { client in
                try await body(Cloud(client: client, admin: admin, member: member, memberProject: project, other: other, volumes: volumes,
                                     node: node, store: store, images: images))
            }
        }
    }

    func call(_ cloud: Cloud, _ path: String, token: String? = nil, method: HTTPRequest.Method = .get, body: String? = nil,
              version: String? = nil) async throws -> (status: HTTPResponse.Status, json: JSON?) {
        var headers: HTTPFields = [.contentType: "application/json", HTTPField.Name("X-Auth-Token")!: token ?? cloud.member]
        if let version { headers[HTTPField.Name("OpenStack-API-Version")!] = "volume \(version)" }
        return try await cloud.client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) {
            ($0.status, JSON.parse(Array($0.body.readableBytesView)))
        }
    }

    /// An active raw image of `owner` holding `bytes`.
    func rawImage(_ images: ImageService, owner: String, bytes: Int, minDisk: Int = 0) async throws -> Image {
        let queued = try await images.create(Image.queued(id: UUID().uuidString.lowercased(), name: "raw-\(bytes)", owner: owner,
                                                          visibility: "private", diskFormat: "raw", containerFormat: "bare", minDisk: minDisk))
        let upload = try await images.beginUpload(queued.id)
        try [UInt8](repeating: 7, count: bytes).withUnsafeBytes { try upload.write($0) }
        return try await upload.finish()
    }

    @Test func volumesFromAndToImages() async throws {
        try await withCloud { cloud in
            let base = "/volume/v3/\(cloud.memberProject)"
            let image = try await rawImage(cloud.images, owner: cloud.memberProject, bytes: 1 << 20)
            let created = try await call(cloud, "\(base)/volumes", method: .post,
                                         body: #"{"volume": {"size": 1, "name": "vi", "imageRef": "http://glance/v2/images/\#(image.id)"}}"#)
            #expect(created.status == .accepted, "\(String(describing: created.json))")
            let volume = try #require(created.json?["volume"])
            #expect(volume["bootable"] == "true" && volume["volume_image_metadata"]?["image_id"] == .string(image.id))
            #expect(volume["volume_image_metadata"]?["disk_format"] == "raw" && volume["volume_image_metadata"]?["size"] == "1048576")
            let id = try #require(volume["id"]?.stringValue)
            let work = try #require(await cloud.node.pending.first { $0.work.id == id }?.work)
            #expect(work.source == VolumeSource(kind: "image", id: image.id, diskFormat: "raw", checksum: image.checksum))
            try await cloud.node.finish(cloud.volumes)

            // Refusals, in Cinder's words, changing nothing.
            let count = try await cloud.volumes.volumes(projectID: nil).count
            let big = try await rawImage(cloud.images, owner: cloud.memberProject, bytes: 1 << 20, minDisk: 2)
            let small = try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 1, "imageRef": "\#(big.id)"}}"#)
            #expect(small.status == .badRequest && small.json?["badRequest"]?["message"]?.stringValue?.contains("minDisk size 2GB") == true)
            let theirs = try await rawImage(cloud.images, owner: "someone-else", bytes: 512)
            let hidden = try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 1, "imageRef": "\#(theirs.id)"}}"#)
            #expect(hidden.status == .badRequest, "another project's private image is not to be used")
            let both = try await call(cloud, "\(base)/volumes", method: .post,
                                      body: #"{"volume": {"size": 1, "imageRef": "\#(image.id)", "source_volid": "\#(id)"}}"#)
            #expect(both.status == .badRequest)
            #expect(try await cloud.volumes.volumes(projectID: nil).count == count)

            // Upload: a queued image of the volume's project, the volume uploading until its node says.
            let action = "\(base)/volumes/\(id)/action"
            #expect(try await call(cloud, action, method: .post, body: #"{"os-volume_upload_image": {"disk_format": "qcow2"}}"#).status == .badRequest)
            let badFormat = try await call(cloud, action, method: .post, body: #"{"os-volume_upload_image": {"image_name": "u", "disk_format": "vmdk"}}"#)
            #expect(badFormat.status == .badRequest && badFormat.json?["badRequest"]?["message"]?.stringValue?.contains("Invalid disk-format 'vmdk'") == true)
            let visibilityAt30 = try await call(cloud, action, method: .post, body: #"{"os-volume_upload_image": {"image_name": "u", "visibility": "public"}}"#)
            #expect(visibilityAt30.status == .badRequest, "visibility is Cinder's from 3.1")
            let publicImage = try await call(cloud, action, method: .post, body: #"{"os-volume_upload_image": {"image_name": "u", "visibility": "public"}}"#,
                                             version: "3.1")
            #expect(publicImage.status == .forbidden, "a public image is an administrator's to make")
            let uploaded = try await call(cloud, action, method: .post,
                                          body: #"{"os-volume_upload_image": {"image_name": "u", "disk_format": "qcow2", "force": false}}"#)
            #expect(uploaded.status == .accepted, "\(String(describing: uploaded.json))")
            let answer = try #require(uploaded.json?["os-volume_upload_image"])
            #expect(Set(answer.objectValue?.keys.map { $0 } ?? []) == ["id", "updated_at", "status", "display_description", "size", "volume_type",
                                                                         "image_id", "container_format", "disk_format", "image_name",
                                                                         "protected", "visibility"])
            #expect(answer["status"] == "uploading" && answer["id"] == .string(id) && answer["disk_format"] == "qcow2")
            let imageID = try #require(answer["image_id"]?.stringValue)
            let target = try await cloud.images.get(imageID)
            #expect(target.status == "queued" && target.owner == cloud.memberProject && target.diskFormat == "qcow2" && target.name == "u")
            let spec = try #require(await cloud.node.pending.first { $0.work.id == id }?.work)
            #expect(spec.status == "uploading" && spec.upload == VolumeImageUpload(imageID: imageID, diskFormat: "qcow2"))
            #expect(try await call(cloud, "\(base)/volumes/\(id)", method: .delete).status == .badRequest, "not while uploading")
            let again = try await call(cloud, action, method: .post, body: #"{"os-volume_upload_image": {"image_name": "u2"}}"#)
            #expect(again.status == .badRequest, "one upload at a time")
            #expect(try await cloud.volumes.apply(.init(volumeID: id, host: "node1", from: "uploading", outcome: "uploaded")))
            #expect(try await cloud.volumes.volume(id, projectID: nil).status == "available")
            await cloud.node.forget()

            // A failed upload: the volume as it was, the image it did not fill removed.
            let failing = try await call(cloud, action, method: .post, body: #"{"os-volume_upload_image": {"image_name": "f"}}"#)
            let failedID = try #require(failing.json?["os-volume_upload_image"]?["image_id"]?.stringValue)
            #expect(try await cloud.volumes.apply(.init(volumeID: id, host: "node1", from: "uploading", outcome: "upload_failed", reason: "disk full")))
            #expect(try await cloud.volumes.volume(id, projectID: nil).status == "available")
            await #expect(throws: ImageService.Failure.notFound(failedID)) { try await cloud.images.get(failedID) }
            #expect(try await cloud.images.get(imageID).status == "queued", "the successful upload's image is left alone")
        }
    }

    @Test func backupsShapesAndRules() async throws {
        try await withCloud { cloud in
            let base = "/volume/v3/\(cloud.memberProject)"
            let created = try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 1, "name": "vb"}}"#)
            let volume = try #require(created.json?["volume"]?["id"]?.stringValue)
            try await cloud.node.finish(cloud.volumes)
            let refused = try await call(cloud, "\(base)/backups", method: .post, body: #"{"backup": {"volume_id": "\#(volume)"}}"#)
            #expect(refused.status == .serviceUnavailable, "no cinder-backup runs yet: \(String(describing: refused.json))")
            try await cloud.store.record(host: "node1", version: "1", services: [("cinder-volume", "volume"), ("cinder-backup", "backup")],
                                         hypervisor: nil)

            let made = try await call(cloud, "\(base)/backups", method: .post,
                                      body: #"{"backup": {"volume_id": "\#(volume)", "name": "b1", "container": null, "incremental": false, "snapshot_id": null, "force": false}}"#)
            #expect(made.status == .accepted, "\(String(describing: made.json))")
            #expect(made.json?["backup"]?.objectValue?.keys.sorted() == ["id", "links", "name"])
            let b1 = try #require(made.json?["backup"]?["id"]?.stringValue)
            #expect(try await cloud.volumes.volume(volume, projectID: nil).status == "backing-up")
            let busy = try await call(cloud, "\(base)/backups", method: .post, body: #"{"backup": {"volume_id": "\#(volume)"}}"#)
            #expect(busy.status == .badRequest, "one backup of a volume at a time")
            try await cloud.node.finish(cloud.volumes)
            #expect(try await cloud.volumes.volume(volume, projectID: nil).status == "available")

            let shown = try await call(cloud, "\(base)/backups/\(b1)", version: "3.56")
            let sample: Set<String> = ["availability_zone", "container", "created_at", "data_timestamp", "description", "fail_reason",
                                       "has_dependent_backups", "id", "is_incremental", "links", "metadata", "name", "object_count", "size",
                                       "snapshot_id", "status", "updated_at", "user_id", "volume_id"]
            #expect(Set(shown.json?["backup"]?.objectValue?.keys.map { $0 } ?? []) == sample, "the member sees no project attribute")
            #expect(shown.json?["backup"]?["status"] == "available" && shown.json?["backup"]?["is_incremental"] == false)
            let asAdmin = try await call(cloud, "/volume/v3/backups/\(b1)", token: cloud.admin, version: "3.56")
            #expect(asAdmin.json?["backup"]?["os-backup-project-attr:project_id"] == .string(cloud.memberProject))

            let incremental = try await call(cloud, "\(base)/backups", method: .post,
                                             body: #"{"backup": {"volume_id": "\#(volume)", "name": "b2", "incremental": true}}"#)
            let b2 = try #require(incremental.json?["backup"]?["id"]?.stringValue)
            #expect(await cloud.node.backups.first { $0.work.id == b2 }?.work.parentID == b1)
            try await cloud.node.finish(cloud.volumes)
            let dependent = try await call(cloud, "\(base)/backups/\(b1)", method: .delete)
            #expect(dependent.status == .badRequest && dependent.json?["badRequest"]?["message"]?.stringValue?.contains("Incremental backups exist") == true)
            #expect(try await call(cloud, "\(base)/backups/\(b1)").json?["backup"]?["has_dependent_backups"] == true)

            let restored = try await call(cloud, "\(base)/backups/\(b2)/restore", method: .post, body: #"{"restore": {"name": "vr"}}"#)
            #expect(restored.status == .accepted && restored.json?["restore"]?["volume_name"] == "vr" && restored.json?["restore"]?["backup_id"] == .string(b2))
            let target = try #require(restored.json?["restore"]?["volume_id"]?.stringValue)
            #expect(try await cloud.volumes.volume(target, projectID: nil).status == "restoring-backup")
            let spec = try #require(await cloud.node.backups.first { $0.work.id == b2 }?.work)
            #expect(spec.status == "restoring" && spec.restoreVolumeID == target && spec.restoreBackend == "file-1")
            try await cloud.node.finish(cloud.volumes)
            #expect(try await cloud.volumes.volume(target, projectID: nil).status == "available")
            #expect(try await cloud.volumes.backup(b2, projectID: nil).status == "available")

            let listed = try await call(cloud, "\(base)/backups/detail?volume_id=\(volume)&with_count=true", version: "3.45")
            #expect(listed.json?["backups"]?.arrayValue?.count == 2 && listed.json?["count"] == 2)
            let limits = try await call(cloud, "\(base)/limits")
            #expect(limits.json?["limits"]?["absolute"]?["totalBackupsUsed"] == 2 && limits.json?["limits"]?["absolute"]?["totalBackupGigabytesUsed"] == 2)
            #expect(try await call(cloud, "\(base)/backups/\(b2)", method: .delete).status == .accepted)
            try await cloud.node.finish(cloud.volumes)
            #expect(try await call(cloud, "\(base)/backups/\(b2)").status == .notFound)
            #expect(try await call(cloud, "\(base)/backups/\(b1)", token: cloud.other).status == .notFound, "another project's backup is not there")
        }
    }

    @Test func volumeLifecycle() async throws {
        try await withCloud { cloud in
            let base = "/volume/v3/\(cloud.memberProject)"
            let created = try await call(cloud, "\(base)/volumes", method: .post,
                                         body: #"{"volume": {"size": 1, "name": "v1", "metadata": {"a": "b"}, "snapshot_id": null, "imageRef": null}}"#)
            #expect(created.status == .accepted, "\(String(describing: created.json))")
            let volume = try #require(created.json?["volume"])
            #expect(volume["status"] == "creating" && volume["size"] == 1 && volume["volume_type"] == "__DEFAULT__" && volume["bootable"] == "false")
            #expect(volume["os-vol-host-attr:host"] == nil, "the host is an administrator's to see")
            let id = try #require(volume["id"]?.stringValue)
            try await cloud.node.finish(cloud.volumes)

            let shown = try await call(cloud, "\(base)/volumes/\(id)", version: "3.65")
            #expect(shown.json?["volume"]?["status"] == "available" && shown.json?["volume"]?["consumes_quota"] == true)
            #expect(shown.json?["volume"]?["volume_type_id"]?.stringValue?.isEmpty == false)
            let asAdmin = try await call(cloud, "/volume/v3/volumes/\(id)", token: cloud.admin)
            #expect(asAdmin.json?["volume"]?["os-vol-host-attr:host"] == "node1@file-1#file-1")

            let summary = try await call(cloud, "\(base)/volumes?name=v1")
            #expect(summary.json?["volumes"]?.arrayValue?.map { $0.objectValue?.keys.sorted() ?? [] } == [["id", "links", "name"]])
            let detail = try await call(cloud, "\(base)/volumes/detail?metadata=%7B%22a%22%3A%22b%22%7D&with_count=true", version: "3.45")
            #expect(detail.json?["volumes"]?.arrayValue?.count == 1 && detail.json?["count"] == 1)
            #expect(try await call(cloud, "\(base)/volumes?colour=red").status == .badRequest, "unknown filters are refused")

            let renamed = try await call(cloud, "\(base)/volumes/\(id)", method: .put, body: #"{"volume": {"name": "v2", "description": "d"}}"#)
            #expect(renamed.json?["volume"]?["name"] == "v2" && renamed.json?["volume"]?["description"] == "d")
            let merged = try await call(cloud, "\(base)/volumes/\(id)/metadata", method: .post, body: #"{"metadata": {"c": "d"}}"#)
            #expect(merged.json?["metadata"] == ["a": "b", "c": "d"])
            #expect(try await call(cloud, "\(base)/volumes/\(id)/metadata/c").json?["meta"] == ["c": "d"])
            #expect(try await call(cloud, "\(base)/volumes/\(id)/metadata/c", method: .delete).status == .ok)
            #expect(try await call(cloud, "\(base)/volumes/\(id)/metadata/c").status == .notFound)

            // Another project neither sees nor deletes it.
            #expect(try await call(cloud, "/volume/v3/volumes/\(id)", token: cloud.other).status == .notFound)
            #expect(try await call(cloud, "/volume/v3/volumes/\(id)", token: cloud.other, method: .delete).status == .notFound)

            // Extend: bigger only, then the node's answer sets the size.
            let smaller = try await call(cloud, "\(base)/volumes/\(id)/action", method: .post, body: #"{"os-extend": {"new_size": 1}}"#)
            #expect(smaller.status == .badRequest && smaller.json?["badRequest"]?["code"] == 400)
            #expect(try await call(cloud, "\(base)/volumes/\(id)/action", method: .post, body: #"{"os-extend": {"new_size": 3}}"#).status == .accepted)
            #expect(try await call(cloud, "\(base)/volumes/\(id)").json?["volume"]?["status"] == "extending")
            try await cloud.node.finish(cloud.volumes)
            #expect(try await call(cloud, "\(base)/volumes/\(id)").json?["volume"]?["size"] == 3)

            // Only an administrator resets a status; an in-use volume is not deleted.
            #expect(try await call(cloud, "\(base)/volumes/\(id)/action", method: .post, body: #"{"os-reset_status": {"status": "in-use"}}"#).status == .forbidden)
            #expect(try await call(cloud, "/volume/v3/volumes/\(id)/action", token: cloud.admin, method: .post,
                                   body: #"{"os-reset_status": {"status": "in-use"}}"#).status == .accepted)
            let refused = try await call(cloud, "\(base)/volumes/\(id)", method: .delete)
            #expect(refused.status == .badRequest && refused.json?["badRequest"]?["message"]?.stringValue?.hasPrefix("Invalid volume: Volume status must be available") == true)
            _ = try await call(cloud, "/volume/v3/volumes/\(id)/action", token: cloud.admin, method: .post, body: #"{"os-reset_status": {"status": "available"}}"#)

            #expect(try await call(cloud, "\(base)/volumes/\(id)", method: .delete).status == .accepted)
            #expect(try await call(cloud, "\(base)/volumes/\(id)").json?["volume"]?["status"] == "deleting")
            try await cloud.node.finish(cloud.volumes)
            #expect(try await call(cloud, "\(base)/volumes/\(id)").status == .notFound, "gone once the node says so")
        }
    }

    @Test func snapshotsAndVolumesFromThem() async throws {
        try await withCloud { cloud in
            let base = "/volume/v3/\(cloud.memberProject)"
            let created = try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 2, "name": "origin"}}"#)
            let volume = try #require(created.json?["volume"]?["id"]?.stringValue)
            try await cloud.node.finish(cloud.volumes)
            let taken = try await call(cloud, "\(base)/snapshots", method: .post, body: "{\"snapshot\": {\"volume_id\": \"\(volume)\", \"name\": \"s1\"}}")
            #expect(taken.status == .accepted && taken.json?["snapshot"]?["status"] == "creating" && taken.json?["snapshot"]?["size"] == 2)
            let snapshot = try #require(taken.json?["snapshot"]?["id"]?.stringValue)
            try await cloud.node.finish(cloud.volumes)
            #expect(try await call(cloud, "\(base)/snapshots/\(snapshot)").json?["snapshot"]?["status"] == "available")
            #expect(try await call(cloud, "\(base)/snapshots/detail?volume_id=\(volume)").json?["snapshots"]?.arrayValue?.count == 1)
            let usage = try await call(cloud, "/volume/v3/os-quota-sets/\(cloud.memberProject)?usage=True")
            #expect(usage.json?["quota_set"]?["snapshots"]?["in_use"] == 1 && usage.json?["quota_set"]?["gigabytes"]?["in_use"] == 4)

            // A volume with snapshots stays; one from the snapshot is placed where the snapshot is.
            let refused = try await call(cloud, "\(base)/volumes/\(volume)", method: .delete)
            #expect(refused.status == .badRequest && refused.json?["badRequest"]?["message"]?.stringValue?.contains("dependent snapshots") == true)
            let small = try await call(cloud, "\(base)/volumes", method: .post, body: "{\"volume\": {\"size\": 1, \"snapshot_id\": \"\(snapshot)\"}}")
            #expect(small.status == .badRequest, "smaller than the snapshot")
            let clone = try await call(cloud, "\(base)/volumes", method: .post, body: "{\"volume\": {\"size\": 3, \"snapshot_id\": \"\(snapshot)\"}}")
            #expect(clone.json?["volume"]?["status"] == "creating" && clone.json?["volume"]?["snapshot_id"] == .string(snapshot))
            #expect(await cloud.node.pending.last?.work.source == VolumeSource(kind: "snapshot", id: snapshot))
            try await cloud.node.finish(cloud.volumes)

            #expect(try await call(cloud, "\(base)/snapshots/\(snapshot)", token: cloud.other).status == .notFound)
            #expect(try await call(cloud, "\(base)/snapshots/\(snapshot)", method: .delete).status == .accepted)
            try await cloud.node.finish(cloud.volumes)
            #expect(try await call(cloud, "\(base)/snapshots/\(snapshot)").status == .notFound)
            #expect(try await call(cloud, "\(base)/volumes/\(volume)", method: .delete).status == .accepted)
        }
    }

    /// The Cinder side of an attach, driven as the conductor drives it.
    @Test func attachedVolumesStayPut() async throws {
        try await withCloud { cloud in
            let base = "/volume/v3/\(cloud.memberProject)"
            let id = try #require(try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 1}}"#).json?["volume"]?["id"]?.stringValue)
            try await cloud.node.finish(cloud.volumes)
            // A server on another host gets the volume exported over iSCSI, with a CHAP account of
            // its own attachment, kept for the node's reconcile; dropping the attachment ends it.
            let (remoteVolume, remote) = try await cloud.volumes.reserve(id, projectID: nil, instanceID: "server-0", host: "elsewhere")
            let disk = try await cloud.volumes.disk(for: remoteVolume, attachment: remote, host: "elsewhere")
            let iscsi = try #require(disk.iscsi)
            #expect(disk.path == "" && iscsi.iqn.hasSuffix("volume-\(id)") && iscsi.username.hasPrefix("petrel-") && iscsi.password.count == 20)
            let listed = try await cloud.volumes.exports(host: "node1")
            #expect(listed.map(\.attachmentID) == [remote.id] && listed.first?.password == iscsi.password)
            #expect(try await cloud.volumes.disk(for: remoteVolume, attachment: remote, host: "elsewhere").iscsi == iscsi, "the same account again")
            #expect(await cloud.node.exports[remote.id]?.username == iscsi.username)
            try await cloud.volumes.finishAttachment(remote.id, disk: VolumeDisk(volumeID: id, path: "", block: false, device: "vdc", iscsi: iscsi))
            #expect(try await cloud.volumes.attachments(volumeIDs: [id]).first?.disk.iscsi == iscsi, "the target kept with the attachment")
            try await cloud.volumes.dropAttachment(remote.id)
            #expect(await cloud.node.exports.isEmpty)
            #expect(try await cloud.volumes.exports(host: "node1").isEmpty)
            #expect(try await cloud.volumes.volume(id, projectID: nil).status == "available")
            let (volume, attachment) = try await cloud.volumes.reserve(id, projectID: cloud.memberProject, instanceID: "server-1", host: "node1")
            #expect(volume.status == "attaching")
            #expect(try await cloud.volumes.connection(volume).path == "/volumes/volume-\(id)")
            try await cloud.volumes.finishAttachment(attachment.id, disk: VolumeDisk(volumeID: id, path: "/volumes/volume-\(id)", block: false, device: "vdb"))
            let shown = try await call(cloud, "\(base)/volumes/\(id)")
            #expect(shown.json?["volume"]?["status"] == "in-use")
            #expect(shown.json?["volume"]?["attachments"]?.arrayValue?.first?["server_id"] == "server-1")
            #expect(shown.json?["volume"]?["attachments"]?.arrayValue?.first?["device"] == "/dev/vdb")
            await #expect(throws: VolumeFailure.self, "already in use") {
                _ = try await cloud.volumes.reserve(id, projectID: nil, instanceID: "server-2", host: "node1")
            }
            let forced = try await call(cloud, "/volume/v3/volumes/\(id)/action", token: cloud.admin, method: .post, body: #"{"os-force_delete": {}}"#)
            #expect(forced.status == .badRequest && forced.json?["badRequest"]?["message"]?.stringValue?.contains("still attached") == true)
            try await cloud.volumes.releaseAll(instanceID: "server-1")
            #expect(try await call(cloud, "\(base)/volumes/\(id)").json?["volume"]?["status"] == "available")

            // delete_on_termination: the server's delete deletes the volume, not only frees it.
            let (boot, bootAttachment) = try await cloud.volumes.reserve(id, projectID: cloud.memberProject, instanceID: "server-3", host: "node1",
                                                                         deleteOnTermination: true)
            try await cloud.volumes.finishAttachment(bootAttachment.id, disk: VolumeDisk(volumeID: boot.id, path: "/volumes/volume-\(id)", block: false,
                                                                                         device: "vda"))
            #expect(try await cloud.volumes.attachments(instanceIDs: ["server-3"]).map(\.deleteOnTermination) == [true])
            #expect(try await cloud.volumes.releaseAll(instanceID: "server-3").isEmpty)
            #expect(await cloud.node.pending.map(\.work.status) == ["deleting"])
            try await cloud.node.finish(cloud.volumes)
            #expect(try await call(cloud, "\(base)/volumes/\(id)").status == .notFound)
        }
    }

    /// Cinder's attachments API (3.27+, os-complete 3.44) and the legacy attach actions: the
    /// volume's status follows each step; a connector on another node is refused; what the
    /// compute service plugged is left to it.
    @Test func attachmentsAPIAndLegacyActions() async throws {
        try await withCloud { cloud in
            let base = "/volume/v3/\(cloud.memberProject)"
            func status(_ id: String) async throws -> String? {
                try await call(cloud, "\(base)/volumes/\(id)").json?["volume"]?["status"]?.stringValue
            }
            let id = try #require(try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 1}}"#).json?["volume"]?["id"]?.stringValue)
            try await cloud.node.finish(cloud.volumes)
            let create = #"{"attachment": {"volume_uuid": "\#(id)", "instance_uuid": "462dcc2d-130d-4654-8db1-da0df2da6a0d"}}"#
            #expect(try await call(cloud, "\(base)/attachments", method: .post, body: create, version: "3.26").status == .notFound)
            let made = try await call(cloud, "\(base)/attachments", method: .post, body: create, version: "3.27")
            #expect(made.status == .ok)
            let attachment = try #require(made.json?["attachment"]?["id"]?.stringValue)
            #expect(made.json?["attachment"]?["status"] == "reserved" && made.json?["attachment"]?["connection_info"] == .null)
            #expect(try await status(id) == "reserved")
            let elsewhere = try await call(cloud, "\(base)/attachments/\(attachment)", method: .put,
                                           body: #"{"attachment": {"connector": {"host": "elsewhere", "mode": "rw"}}}"#, version: "3.27")
            // A connector on another host gets the volume exported over iSCSI for this attachment.
            #expect(elsewhere.status == .ok, "\(String(describing: elsewhere.json))")
            let far = elsewhere.json?["attachment"]?["connection_info"]
            #expect(far?["driver_volume_type"] == "iscsi" && far?["data"]?["auth_method"] == "CHAP" && far?["data"]?["target_lun"] == 1)
            #expect(far?["data"]?["target_iqn"]?.stringValue?.hasSuffix("volume-\(id)") == true && far?["data"]?["target_portal"] == "192.0.2.7:3260")
            #expect(await cloud.node.exports[attachment]?.username == far?["data"]?["auth_username"]?.stringValue)
            let connected = try await call(cloud, "\(base)/attachments/\(attachment)", method: .put,
                                           body: #"{"attachment": {"connector": {"host": "node1", "initiator": "iqn.x", "mode": "rw"}}}"#, version: "3.27")
            #expect(connected.json?["attachment"]?["status"] == "attaching")
            #expect(connected.json?["attachment"]?["connection_info"]?["driver_volume_type"] == "local")
            #expect(await cloud.node.exports.isEmpty, "connected on the volume's node: the export for elsewhere is gone")
            #expect(try await call(cloud, "\(base)/attachments/\(attachment)", version: "3.27").json?["attachment"]?["connection_info"]?["driver_volume_type"] == "local")
            #expect(connected.json?["attachment"]?["connection_info"]?["data"]?["device_path"] == .string("/volumes/volume-\(id)"))
            #expect(try await status(id) == "attaching")
            #expect(try await call(cloud, "\(base)/attachments/\(attachment)/action", method: .post, body: #"{"os-complete": {}}"#,
                                   version: "3.43").status == .badRequest)
            #expect(try await call(cloud, "\(base)/attachments/\(attachment)/action", method: .post, body: #"{"os-complete": {}}"#,
                                   version: "3.44").status == .noContent)
            #expect(try await status(id) == "in-use")
            let listed = try await call(cloud, "\(base)/attachments?volume_id=\(id)", version: "3.27")
            #expect(listed.json?["attachments"]?.arrayValue?.map { $0["id"] } == [.string(attachment)])
            #expect(try await call(cloud, "\(base)/attachments/\(attachment)", token: cloud.other, version: "3.27").status == .notFound)
            #expect(try await call(cloud, "\(base)/attachments/\(attachment)", method: .delete, version: "3.27").status == .ok)
            #expect(try await status(id) == "available")
            #expect(try await call(cloud, "\(base)/attachments/\(attachment)", version: "3.27").status == .notFound)

            // The legacy actions, step by step.
            func action(_ body: String) async throws -> (status: HTTPResponse.Status, json: JSON?) {
                try await call(cloud, "\(base)/volumes/\(id)/action", method: .post, body: body)
            }
            #expect(try await action(#"{"os-reserve": {}}"#).status == .accepted)
            #expect(try await status(id) == "attaching")
            #expect(try await action(#"{"os-reserve": {}}"#).status == .badRequest, "reserved twice")
            #expect(try await action(#"{"os-unreserve": {}}"#).status == .accepted)
            #expect(try await status(id) == "available")
            #expect(try await action(#"{"os-reserve": {}}"#).status == .accepted)
            let connection = try await action(#"{"os-initialize_connection": {"connector": {"host": "node1"}}}"#)
            #expect(connection.json?["connection_info"]?["data"]?["device_path"] == .string("/volumes/volume-\(id)"))
            #expect(try await action(#"{"os-attach": {"instance_uuid": "462dcc2d-130d-4654-8db1-da0df2da6a0d", "mountpoint": "/dev/vdb"}}"#).status == .accepted)
            #expect(try await status(id) == "in-use")
            let shown = try await call(cloud, "\(base)/volumes/\(id)")
            #expect(shown.json?["volume"]?["attachments"]?.arrayValue?.first?["device"] == "/dev/vdb")
            #expect(try await action(#"{"os-begin_detaching": {}}"#).status == .accepted)
            #expect(try await status(id) == "detaching")
            #expect(try await action(#"{"os-roll_detaching": {}}"#).status == .accepted)
            #expect(try await status(id) == "in-use")
            #expect(try await action(#"{"os-terminate_connection": {"connector": {"host": "node1"}}}"#).status == .accepted)
            #expect(try await action(#"{"os-detach": {}}"#).status == .accepted)
            #expect(try await status(id) == "available")

            // What the compute service plugged is not the volume API's to take away.
            let (volume, plugged) = try await cloud.volumes.reserve(id, projectID: nil, instanceID: "server-1", host: "node1")
            try await cloud.volumes.finishAttachment(plugged.id, disk: VolumeDisk(volumeID: volume.id, path: "/p", block: false, device: "vdb"))
            let refused = try await action(#"{"os-detach": {}}"#)
            #expect(refused.status == .badRequest && refused.json?["badRequest"]?["message"]?.stringValue?.contains("server remove volume") == true)
            #expect(try await call(cloud, "\(base)/attachments/\(plugged.id)", method: .delete, version: "3.27").status == .badRequest)
            #expect(try await status(id) == "in-use")
        }
    }

    @Test func refusalsChangeNothing() async throws {
        try await withCloud { cloud in
            let base = "/volume/v3/\(cloud.memberProject)"
            for body in [#"{"volume": {"size": "abc"}}"#, #"{"volume": {"size": 0}}"#, #"{"volume": {"name": 5, "size": 1}}"#,
                         #"{"volume": {"size": 1, "imageRef": "x"}}"#, #"{"volume": {"size": 1, "volume_type": "nope"}}"#,
                         #"{"volume": {"size": 1, "availability_zone": "mars"}}"#, #"{"volume": {"size": 1, "metadata": {"k": 1}}}"#, #"{}"#] {
                let refused = try await call(cloud, "\(base)/volumes", method: .post, body: body)
                #expect(refused.status == .badRequest || refused.status == .notFound, "\(body): \(refused.status)")
                #expect(refused.json?["badRequest"] != nil || refused.json?["itemNotFound"] != nil, "\(body): \(String(describing: refused.json))")
            }
            #expect(try await call(cloud, "\(base)/volumes").json?["volumes"]?.arrayValue?.isEmpty == true)
            #expect(await cloud.node.pending.isEmpty)
        }
    }

    @Test func quotasAndLimits() async throws {
        try await withCloud { cloud in
            let base = "/volume/v3/\(cloud.memberProject)"
            let set = try await call(cloud, "/volume/v3/os-quota-sets/\(cloud.memberProject)", token: cloud.admin, method: .put,
                                     body: #"{"quota_set": {"volumes": 2, "gigabytes": 3}}"#)
            #expect(set.status == .ok && set.json?["quota_set"]?["volumes"] == 2)
            #expect(try await call(cloud, "/volume/v3/os-quota-sets/\(cloud.memberProject)", method: .put,
                                   body: #"{"quota_set": {"volumes": 20}}"#).status == .forbidden, "members do not raise their quota")
            #expect(try await call(cloud, "/volume/v3/os-quota-sets/\(cloud.memberProject)", token: cloud.admin, method: .put,
                                   body: #"{"quota_set": {"bananas": 1}}"#).status == .badRequest)

            #expect(try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 2}}"#).status == .accepted)
            let tooBig = try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 2}}"#)
            #expect(tooBig.status == .contentTooLarge)
            #expect(tooBig.json?["overLimit"]?["message"] == "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 2G, quota is 3G and 2G has been consumed.")
            #expect(try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 1}}"#).status == .accepted)
            let tooMany = try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 1}}"#)
            #expect(tooMany.status == .contentTooLarge && tooMany.json?["overLimit"]?["message"]?.stringValue?.hasPrefix("VolumeLimitExceeded") == true)

            let usage = try await call(cloud, "/volume/v3/os-quota-sets/\(cloud.memberProject)?usage=True")
            #expect(usage.json?["quota_set"]?["volumes"] == ["limit": 2, "in_use": 2, "reserved": 0])
            #expect(usage.json?["quota_set"]?["gigabytes___DEFAULT__"] == ["limit": -1, "in_use": 3, "reserved": 0])
            let limits = try await call(cloud, "\(base)/limits")
            #expect(limits.json?["limits"]?["absolute"]?["maxTotalVolumes"] == 2 && limits.json?["limits"]?["absolute"]?["totalGigabytesUsed"] == 3)
            #expect(try await call(cloud, "/volume/v3/os-quota-sets/\(cloud.memberProject)", token: cloud.admin, method: .delete).status == .ok)
            #expect(try await call(cloud, "/volume/v3/os-quota-sets/\(cloud.memberProject)").json?["quota_set"]?["volumes"] == 10)
        }
    }

    @Test func typesSteerPlacement() async throws {
        try await withCloud { cloud in
            let base = "/volume/v3/\(cloud.memberProject)"
            #expect(try await call(cloud, "/volume/v3/types", method: .post, body: #"{"volume_type": {"name": "x"}}"#).status == .forbidden)
            let elsewhere = try await call(cloud, "/volume/v3/types", token: cloud.admin, method: .post,
                                           body: #"{"volume_type": {"name": "elsewhere", "extra_specs": {"volume_backend_name": "nowhere"}}}"#)
            #expect(elsewhere.status == .ok && elsewhere.json?["volume_type"]?["extra_specs"] == ["volume_backend_name": "nowhere"])
            #expect(try await call(cloud, "/volume/v3/types", token: cloud.admin, method: .post,
                                   body: #"{"volume_type": {"name": "elsewhere"}}"#).status == .conflict)
            let lost = try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 1, "volume_type": "elsewhere"}}"#)
            #expect(lost.json?["volume"]?["status"] == "error", "no backend has that name")
            #expect(await cloud.node.pending.isEmpty)

            // The failure left the project a user message (3.3+), in Cinder's words and numbers.
            let lostID = try #require(lost.json?["volume"]?["id"]?.stringValue)
            #expect(try await call(cloud, "\(base)/messages", version: "3.2").status == .notFound, "messages need 3.3")
            let messages = try await call(cloud, "\(base)/messages", version: "3.3")
            let message = try #require(messages.json?["messages"]?.arrayValue?.first)
            #expect(messages.json?["messages"]?.arrayValue?.count == 1)
            #expect(message["event_id"] == "VOLUME_VOLUME_001_003" && message["resource_type"] == "VOLUME"
                && message["resource_uuid"] == .string(lostID) && message["message_level"] == "ERROR")
            #expect(message["user_message"] == "schedule allocate volume: Could not find any available weighted backend.")
            #expect(message["request_id"]?.stringValue?.hasPrefix("req-") == true && message["guaranteed_until"]?.stringValue != nil)
            let messageID = try #require(message["id"]?.stringValue)
            #expect(try await call(cloud, "\(base)/messages?resource_uuid=\(UUID().uuidString.lowercased())", version: "3.3")
                .json?["messages"]?.arrayValue?.isEmpty == true)
            #expect(try await call(cloud, "\(base)/messages?bogus=1", version: "3.3").status == .badRequest)
            #expect(try await call(cloud, "/volume/v3/messages/\(messageID)", token: cloud.other, version: "3.3").status == .notFound,
                    "another project's message")
            #expect(try await call(cloud, "\(base)/messages/\(messageID)", version: "3.3").json?["message"]?["id"] == .string(messageID))
            #expect(try await call(cloud, "\(base)/messages/\(messageID)", method: .delete, version: "3.3").status == .noContent)
            #expect(try await call(cloud, "\(base)/messages/\(messageID)", version: "3.3").status == .notFound)
            let typeID = try #require(elsewhere.json?["volume_type"]?["id"]?.stringValue)
            #expect(try await call(cloud, "/volume/v3/types/\(typeID)", token: cloud.admin, method: .delete).status == .badRequest, "in use")
            let fileType = try await call(cloud, "/volume/v3/types/\(typeID)/extra_specs", token: cloud.admin, method: .post,
                                          body: #"{"extra_specs": {"volume_backend_name": "file-1"}}"#)
            #expect(fileType.status == .ok)
            let placed = try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 1, "volume_type": "elsewhere"}}"#)
            #expect(placed.json?["volume"]?["status"] == "creating")

            // Thin backend of 10 GB at ratio 2: 20 GB may be placed, not 21.
            _ = try await call(cloud, "/volume/v3/os-quota-sets/\(cloud.memberProject)", token: cloud.admin, method: .put, body: #"{"quota_set": {"volumes": 100}}"#)
            let big = try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 18}}"#)
            #expect(big.json?["volume"]?["status"] == "creating")
            let overflow = try await call(cloud, "\(base)/volumes", method: .post, body: #"{"volume": {"size": 2}}"#)
            #expect(overflow.json?["volume"]?["status"] == "error", "over the backend's over-subscription ratio")

            // Private types: seen by the projects they are shared with.
            let secret = try await call(cloud, "/volume/v3/types", token: cloud.admin, method: .post,
                                        body: #"{"volume_type": {"name": "secret", "os-volume-type-access:is_public": false}}"#)
            let secretID = try #require(secret.json?["volume_type"]?["id"]?.stringValue)
            func names(_ token: String) async throws -> [String] {
                try await call(cloud, "/volume/v3/types", token: token).json?["volume_types"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            }
            #expect(try await names(cloud.member).contains("secret") == false)
            #expect(try await call(cloud, "/volume/v3/types/\(secretID)/action", token: cloud.admin, method: .post,
                                   body: "{\"addProjectAccess\": {\"project\": \"\(cloud.memberProject)\"}}").status == .accepted)
            #expect(try await names(cloud.member).contains("secret"))
            #expect(try await names(cloud.other).contains("secret") == false)
            let access = try await call(cloud, "/volume/v3/types/\(secretID)/os-volume-type-access", token: cloud.admin)
            #expect(access.json?["volume_type_access"]?.arrayValue?.first?["project_id"] == .string(cloud.memberProject))
            let defaultType = try await call(cloud, "/volume/v3/types/default")
            #expect(defaultType.json?["volume_type"]?["name"] == "__DEFAULT__")
            let defaultID = try #require(defaultType.json?["volume_type"]?["id"]?.stringValue)
            #expect(try await call(cloud, "/volume/v3/types/\(defaultID)", token: cloud.admin, method: .delete).status == .badRequest)
        }
    }

    @Test func servicesAndAnUnreachableNode() async throws {
        try await withCloud { cloud in
            let services = try await call(cloud, "/volume/v3/os-services", token: cloud.admin)
            #expect(services.json?["services"]?.arrayValue?.compactMap { $0["host"]?.stringValue } == ["node1@file-1"])
            let pools = try await call(cloud, "/volume/v3/scheduler-stats/get_pools?detail=true", token: cloud.admin)
            #expect(pools.json?["pools"]?.arrayValue?.first?["capabilities"]?["total_capacity_gb"] == 10)
            let zones = try await call(cloud, "/volume/v3/os-availability-zone")
            #expect(zones.json?["availabilityZoneInfo"]?.arrayValue?.first?["zoneState"]?["available"] == true)

            await cloud.node.setUnreachable(true)
            let created = try await call(cloud, "/volume/v3/\(cloud.memberProject)/volumes", method: .post, body: #"{"volume": {"size": 1}}"#)
            #expect(created.status == .accepted && created.json?["volume"]?["status"] == "error", "the node could not be told")

            // A disabled service gets no new volumes.
            #expect(try await call(cloud, "/volume/v3/os-services/disable", token: cloud.admin, method: .put,
                                   body: #"{"host": "node1@file-1", "binary": "cinder-volume"}"#).status == .ok)
            await cloud.node.setUnreachable(false)
            let none = try await call(cloud, "/volume/v3/\(cloud.memberProject)/volumes", method: .post, body: #"{"volume": {"size": 1}}"#)
            #expect(none.json?["volume"]?["status"] == "error")
            #expect(await cloud.node.pending.isEmpty)
        }
    }
}
