import Contracts
import Foundation
import Logging
import NodeCore

/// Base images under `<instances>/_base`, one file per image id, downloaded once per host
/// (concurrent boots of one image wait for the same download), checked against the image
/// API's md5, and removed after they have gone unused for `unusedAge` seconds.
public actor ImageCache {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let directory: String
    let cloud: (any ImageTransfer)?
    let logger: Logger
    private var downloads: [String: Task<String, any Error>] = [:]

    public init(directory: String, cloud: (any ImageTransfer)?, logger: Logger) {
        self.directory = directory
        self.cloud = cloud
        self.logger = logger
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        // Downloads a crash interrupted.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".part") {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }

    public func path(of imageID: String) -> String { directory + "/" + imageID }

    /// The cached file of `image`, downloading it first if needed. Its modification time is
    /// refreshed: it is the "last used" the pruning goes by.
    public func fetch(_ image: InstanceSpec.Image) async throws -> String {
        let target = path(of: image.id)
        if FileManager.default.fileExists(atPath: target) {
            touch(target)
            return target
        }
        if let running = downloads[image.id] { return try await running.value }
        guard let cloud else { throw Failure(description: "no [service_user] is configured: the node cannot download images") }
        let logger = self.logger
        let task = Task<String, any Error> {
            let partial = target + ".\(UUID().uuidString.prefix(8)).part"
            do {
                let started = ContinuousClock.now
                let md5 = try await cloud.download(image: image.id, to: partial)
                if let expected = image.checksum, expected.lowercased() != md5 {
                    throw Failure(description: "image \(image.id) downloaded with md5 \(md5), but the image service says \(expected)")
                }
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: partial)
                try FileManager.default.moveItem(atPath: partial, toPath: target)
                logger.info("image cached", metadata: ["image": "\(image.id)", "took": "\(ContinuousClock.now - started)"])
                return target
            } catch {
                try? FileManager.default.removeItem(atPath: partial)
                throw error
            }
        }
        downloads[image.id] = task
        defer { downloads[image.id] = nil }
        return try await task.value
    }

    nonisolated func touch(_ path: String) {
        try? FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: path)
    }

    /// Removes base images no instance uses (`inUse`) that were last used more than
    /// `unusedAge` seconds ago. Returns the ids removed.
    public func prune(inUse: Set<String>, unusedAge: TimeInterval) -> [String] {
        var removed: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where !name.hasSuffix(".part") && !inUse.contains(name) && downloads[name] == nil {
            let file = path(of: name)
            guard let modified = (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date,
                  Date().timeIntervalSince(modified) >= unusedAge else { continue }
            if (try? FileManager.default.removeItem(atPath: file)) != nil { removed.append(name) }
        }
        if !removed.isEmpty { logger.info("unused base images removed", metadata: ["images": "\(removed)"]) }
        return removed
    }
}
