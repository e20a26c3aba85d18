import Contracts
import Foundation
import Store

/// Nova's rescue: the server boots from a disk made of a rescue image (the one asked for, else
/// its own image) with its own root disk attached second, so a broken guest can be repaired;
/// `unrescue` boots it from its own disks again.
extension Servers {
    /// Starts a rescue: Nova's checks (not volume-backed; the rescue image visible, active and
    /// fitting), then the `rescuing` task with the rescue image kept on the server.
    public func beginRescue(_ id: String, imageRef: String?, by caller: ServerCaller) async throws -> (Server, String, InstanceAction.Action) {
        let current = try await get(id, by: caller)
        if current.row.rootOnVolume {
            throw Failure.badRequest("Instance \(id) cannot be rescued: Cannot rescue a volume-backed instance")
        }
        guard let ref = imageRef ?? current.row.imageID else {
            throw Failure.badRequest("Instance \(id) cannot be rescued: it has no image to rescue it with")
        }
        let image: String
        do {
            image = try await bootableImage(ref, rootGB: current.row.rootGB, memoryMB: current.row.memoryMB, caller: caller).id
        } catch Failure.badRequest(let message) where imageRef != nil {
            throw Failure.badRequest("Image \(ref) is unacceptable: \(message)")
        }
        return try await begin("rescue", on: id, by: caller) { server in server.row.rescueImageID = image }
    }

    /// The rescue image as a node builds the rescue disk from it.
    func rescueImage(_ row: InstanceRow) async throws -> InstanceSpec.Image? {
        guard row.vm == .rescued || row.task == .rescuing || row.task == .unrescuing, let id = row.rescueImageID,
              let found = try await existingImage(id) else { return nil }
        return InstanceSpec.Image(id: found.id, diskFormat: found.diskFormat ?? "raw", checksum: found.checksum, size: found.size,
                                  properties: found.properties)
    }
}
