import Foundation
import PetrelCore

/// A directory of Fernet keys laid out as Keystone's: file `0` is the staged key (the next
/// primary, already accepted everywhere), the highest number is the primary (signs new
/// tokens), the others are secondaries (still validate tokens they signed). Rotating
/// promotes the staged key, stages a new one and drops the oldest secondaries beyond
/// `maxActiveKeys`, so a rotation never invalidates a live token signed by a kept key.
public struct FernetKeyRepository: Sendable {
    public let directory: String
    public let maxActiveKeys: Int

    public init(directory: String, maxActiveKeys: Int = 3) {
        self.directory = directory
        self.maxActiveKeys = max(2, maxActiveKeys)
    }

    public struct Keys: Sendable {
        /// Signs new tokens.
        public let primary: FernetKey
        /// Every key that validates: primary first, then secondaries newest first, then staged.
        public let all: [FernetKey]
    }

    /// Creates the repository with a staged and a primary key. Does nothing if keys exist.
    public func setup() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        guard try indices().isEmpty else { return }
        try write(FernetKey.generate(), index: 0)
        try write(FernetKey.generate(), index: 1)
    }

    /// Promotes the staged key to primary, stages a new key, prunes old secondaries.
    public func rotate() throws {
        var present = try indices()
        guard present.contains(0), let highest = present.max() else {
            throw ConfigError(origin: directory, message: "no key repository here; run `petrel-controller token-keys setup` first")
        }
        let promoted = highest + 1
        try rename(from: 0, to: promoted)
        try write(FernetKey.generate(), index: 0)
        present = try indices()
        let secondaries = present.filter { $0 != 0 && $0 != promoted }.sorted()
        let excess = present.count - maxActiveKeys
        for index in secondaries.prefix(max(0, excess)) {
            try FileManager.default.removeItem(atPath: path(index))
        }
    }

    public func load() throws -> Keys {
        let present = try indices()
        guard let highest = present.max(), highest > 0 else {
            throw ConfigError(origin: directory, message: "no Fernet keys; run `petrel-controller token-keys setup`")
        }
        var keys: [FernetKey] = []
        for index in present.sorted(by: >) where index != 0 { keys.append(try read(index)) }
        if present.contains(0) { keys.append(try read(0)) }
        return Keys(primary: keys[0], all: keys)
    }

    /// The staged key: the primary the next rotation makes.
    public func stagedKey() throws -> FernetKey {
        guard try indices().contains(0) else {
            throw ConfigError(origin: directory, message: "no staged key here; run the setup command first")
        }
        return try read(0)
    }

    /// The key numbers present (0 is the staged key).
    public func indices() throws -> [Int] {
        guard FileManager.default.fileExists(atPath: directory) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: directory).compactMap { Int($0) }.filter { $0 >= 0 }
    }

    private func path(_ index: Int) -> String { "\(directory)/\(index)" }

    private func read(_ index: Int) throws -> FernetKey {
        guard let data = FileManager.default.contents(atPath: path(index)) else {
            throw ConfigError(origin: path(index), message: "cannot read Fernet key")
        }
        do {
            return try FernetKey(base64url: String(decoding: data, as: UTF8.self))
        } catch {
            throw ConfigError(origin: path(index), message: "\(error)")
        }
    }

    /// Writes atomically (temporary file, then rename), readable by the owner only.
    private func write(_ key: FernetKey, index: Int) throws {
        let temporary = "\(directory)/.\(index).\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(key.base64url.utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw ConfigError(origin: temporary, message: "cannot write Fernet key")
        }
        guard Foundation.rename(temporary, path(index)) == 0 else { throw SystemCallError("rename \(temporary)") }
    }

    private func rename(from: Int, to: Int) throws {
        guard Foundation.rename(path(from), path(to)) == 0 else { throw SystemCallError("rename \(path(from))") }
    }
}
