import Contracts
import Foundation
import Images
import Store

/// Nova's rescue: the server boots from a disk made of a rescue image (the one asked for, else
/// its own image) with its own root disk attached second, so a broken guest can be repaired
/// (or, stable rescue, with all its disks where they were and the rescue disk last, when the
/// image asks with `hw_rescue_device`/`hw_rescue_bus`); `unrescue` boots it from its own disks again.
extension Servers {
    /// Starts a rescue: Nova's checks (the rescue image visible, active and fitting; a
    /// volume-backed server only with `allowVolumeBacked` (2.87) and an image asking for a stable
    /// rescue with both `hw_rescue_device` and `hw_rescue_bus`), then the `rescuing` task with
    /// the rescue image kept on the server.
    public func beginRescue(_ id: String, imageRef: String?, allowVolumeBacked: Bool = false, by caller: ServerCaller) async throws
        -> (Server, String, InstanceAction.Action) {
        let current = try await get(id, by: caller)
        if current.row.rootOnVolume && !allowVolumeBacked {
            throw Failure.badRequest("Instance \(id) cannot be rescued: Cannot rescue a volume-backed instance")
        }
        guard let ref = imageRef ?? current.row.imageID else {
            throw Failure.badRequest("Instance \(id) cannot be rescued: Cannot rescue a volume-backed instance")
        }
        let image: Image
        do {
            // A volume-backed server's flavor says nothing of its root disk's size.
            image = try await bootableImage(ref, rootGB: current.row.rootOnVolume ? 0 : current.row.rootGB, memoryMB: current.row.memoryMB,
                                            caller: caller)
        } catch Failure.badRequest(let message) where imageRef != nil {
            throw Failure.badRequest("Image \(ref) is unacceptable: \(message)")
        }
        if current.row.rootOnVolume && (image.properties["hw_rescue_device"] == nil || image.properties["hw_rescue_bus"] == nil) {
            throw Failure.badRequest("Instance \(id) cannot be rescued: Cannot rescue a volume-backed instance")
        }
        let chosen = image.id
        return try await begin("rescue", on: id, by: caller) { server in server.row.rescueImageID = chosen }
    }

    /// The rescue image as a node builds the rescue disk from it.
    func rescueImage(_ row: InstanceRow) async throws -> InstanceSpec.Image? {
        guard row.vm == .rescued || row.task == .rescuing || row.task == .unrescuing, let id = row.rescueImageID,
              let found = try await existingImage(id) else { return nil }
        return InstanceSpec.Image(id: found.id, diskFormat: found.diskFormat ?? "raw", checksum: found.checksum, size: found.size,
                                  properties: found.properties)
    }
}
