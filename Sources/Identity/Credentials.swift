import Crypto
import Foundation
import SQLKit
import Store

/// Encrypts credential blobs with a Fernet key repository of their own (`[credential]
/// key_repository`, kept apart from the token keys as Keystone keeps them): the primary key
/// encrypts, every key of the repository decrypts, and each row records which key encrypted
/// it, so a rotation knows what to re-encrypt.
public struct CredentialCipher: Sendable {
    public let repository: FernetKeyRepository

    public init(repository: FernetKeyRepository) { self.repository = repository }

    /// Keystone's name of a key: the SHA-1 of its base64url text.
    public static func hash(of key: FernetKey) -> String {
        Insecure.SHA1.hash(data: Array(key.base64url.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    func keys() throws -> FernetKeyRepository.Keys {
        do {
            return try repository.load()
        } catch {
            throw CredentialKeysMissing(directory: repository.directory, reason: "\(error)")
        }
    }

    public func encrypt(_ blob: String) throws -> (ciphertext: String, keyHash: String) {
        let primary = try keys().primary
        return (try Fernet.encrypt(Array(blob.utf8), key: primary), Self.hash(of: primary))
    }

    public func decrypt(_ ciphertext: String) throws -> String {
        let (bytes, _) = try Fernet.decrypt(ciphertext, keys: try keys().all)
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The credential key repository is missing or unreadable: an operator's mistake, answered
/// as a server error and logged with what to run.
public struct CredentialKeysMissing: Error, CustomStringConvertible {
    public let directory: String
    public let reason: String
    public var description: String {
        "cannot use the credential keys in \(directory) (\(reason)); run `petrel-controller credential-keys setup`"
    }
}

/// A credential as the API shows it: the blob decrypted.
public struct Credential: Sendable, Equatable {
    public var id: String
    public var userID: String
    public var projectID: String?
    public var type: String
    public var blob: String
    /// Other attributes the client set, as JSON object text.
    public var extra: String

    public init(id: String, userID: String, projectID: String?, type: String, blob: String, extra: String = "{}") {
        self.id = id; self.userID = userID; self.projectID = projectID; self.type = type; self.blob = blob; self.extra = extra
    }

    /// An EC2 credential's blob, read leniently (`access`, `secret`, `trust_id`, …).
    public var ec2Blob: [String: String] {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(blob.utf8))) as? [String: Any] else { return [:] }
        return object.compactMapValues { $0 as? String }
    }
}

extension IdentityService {
    static let ec2Type = "ec2"

    /// Keystone's id of an EC2 credential: the SHA-256 of its access key, in hex.
    public static func ec2CredentialID(access: String) -> String {
        SHA256.hash(data: Array(access.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    func cipher() throws -> CredentialCipher {
        guard let directory = options.credentialKeyRepository else {
            throw CredentialKeysMissing(directory: "(none)", reason: "[credential] key_repository is not set")
        }
        return CredentialCipher(repository: FernetKeyRepository(directory: directory, maxActiveKeys: options.maxActiveKeys))
    }

    func decrypted(_ row: CredentialRow, _ cipher: CredentialCipher) throws -> Credential {
        Credential(id: row.id, userID: row.userID, projectID: row.projectID, type: row.type,
                   blob: try cipher.decrypt(row.encryptedBlob), extra: row.extra)
    }

    /// Stores a new credential. An EC2 credential's id is the hash of its access key (so the
    /// same access key cannot be stored twice); other credentials get a new id. The user and
    /// an EC2 credential's project must exist.
    public func createCredential(_ credential: Credential) async throws -> Credential {
        let cipher = try cipher()
        var credential = credential
        if credential.type == Self.ec2Type {
            guard let access = credential.ec2Blob["access"] else {
                throw IdentityError.badRequest("Expecting to find access in credential. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
            }
            credential.id = Self.ec2CredentialID(access: access)
        } else {
            credential.id = Self.newID()
        }
        let (ciphertext, keyHash) = try cipher.encrypt(credential.blob)
        let stored = credential
        try await write { sql in
            guard try await IdentityTables.users.get(sql, id: stored.userID) != nil else {
                throw IdentityError.notFound(kind: "user", id: stored.userID)
            }
            if let project = stored.projectID, try await IdentityTables.projects.get(sql, id: project) == nil {
                throw IdentityError.notFound(kind: "project", id: project)
            }
            try await IdentityTables.credentials.insert(sql, CredentialRow(
                id: stored.id, userID: stored.userID, projectID: stored.projectID, type: stored.type,
                encryptedBlob: ciphertext, keyHash: keyHash, extra: stored.extra, createdAt: Self.now()))
        }
        return credential
    }

    public func credential(_ id: String) async throws -> Credential {
        let cipher = try cipher()
        guard let row = try await read({ sql in try await IdentityTables.credentials.get(sql, id: id) }) else {
            throw IdentityError.notFound(kind: "credential", id: id)
        }
        return try decrypted(row, cipher)
    }

    /// Every credential, narrowed by user and type.
    public func credentials(userID: String? = nil, type: String? = nil) async throws -> [Credential] {
        let cipher = try cipher()
        var conditions: [Table<CredentialRow>.Condition] = []
        if let userID { conditions.append(.equals("user_id", userID)) }
        if let type { conditions.append(.equals("type", type)) }
        let rows = try await read { [conditions] sql in try await IdentityTables.credentials.all(sql, where: conditions, orderBy: "created_at") }
        return try rows.map { try decrypted($0, cipher) }
    }

    /// Changes a credential in one transaction; a changed blob is encrypted with the primary key.
    public func updateCredential(_ id: String, _ change: @escaping @Sendable (inout Credential) throws -> Void) async throws -> Credential {
        let cipher = try cipher()
        return try await write { sql in
            guard let row = try await IdentityTables.credentials.lockedGet(sql, id: id) else {
                throw IdentityError.notFound(kind: "credential", id: id)
            }
            let before = try self.decrypted(row, cipher)
            var after = before
            try change(&after)
            after.id = before.id
            if after.userID != before.userID, try await IdentityTables.users.get(sql, id: after.userID) == nil {
                throw IdentityError.notFound(kind: "user", id: after.userID)
            }
            if let project = after.projectID, project != before.projectID,
               try await IdentityTables.projects.get(sql, id: project) == nil {
                throw IdentityError.notFound(kind: "project", id: project)
            }
            let (ciphertext, keyHash) = after.blob == before.blob ? (row.encryptedBlob, row.keyHash) : try cipher.encrypt(after.blob)
            try await IdentityTables.credentials.update(sql, id: id, CredentialRow(
                id: id, userID: after.userID, projectID: after.projectID, type: after.type, encryptedBlob: ciphertext,
                keyHash: keyHash, extra: after.extra, createdAt: row.createdAt))
            return after
        }
    }

    public func deleteCredential(_ id: String) async throws {
        try await write { sql in
            guard try await IdentityTables.credentials.delete(sql, where: [.equals("id", id)]) > 0 else {
                throw IdentityError.notFound(kind: "credential", id: id)
            }
        }
    }

    /// Re-encrypts every credential not encrypted with `key` (the repository's next primary,
    /// before a rotation promotes it). Returns how many were re-encrypted.
    public static func reencryptCredentials(database: Database, cipher: CredentialCipher, with key: FernetKey) async throws -> Int {
        let keyHash = CredentialCipher.hash(of: key)
        return try await database.transaction { sql in
            var count = 0
            for row in try await IdentityTables.credentials.all(sql) where row.keyHash != keyHash {
                var updated = row
                updated.encryptedBlob = try Fernet.encrypt(Array(try cipher.decrypt(row.encryptedBlob).utf8), key: key)
                updated.keyHash = keyHash
                try await IdentityTables.credentials.update(sql, id: row.id, updated)
                count += 1
            }
            return count
        }
    }
}

extension IdentityService {
    /// `POST /v3/ec2tokens`: a request signed with an EC2 credential's secret becomes a token
    /// scoped to the credential's project (for the trustee of the credential's trust, or
    /// limited to its application credential's roles, when the credential was made so).
    public func issue(ec2 request: EC2SignedRequest) async throws -> (token: String, info: TokenInfo) {
        let cipher = try cipher()
        let id = Self.ec2CredentialID(access: request.access)
        guard let row = try await read({ sql in try await IdentityTables.credentials.get(sql, id: id) }), row.type == Self.ec2Type else {
            throw IdentityError.missing("EC2 access key not found.")
        }
        let credential = try decrypted(row, cipher)
        let blob = credential.ec2Blob
        try request.verify(secret: blob["secret"] ?? "")
        guard let projectID = credential.projectID else { throw IdentityError.unauthorized("User not valid for project.") }
        let user = try await read { sql in try await self.enabledUser(sql, id: credential.userID).0 }
        _ = try await read { sql in try await self.enabledProject(sql, id: projectID) }
        try request.checkTimestamp(ttl: options.ec2AuthTTL)
        var userID = user.id
        var trustID: String?
        if let trust = blob["trust_id"], !trust.isEmpty {
            let row = try await read { sql in try await self.usableTrust(sql, id: trust) }
            trustID = row.id
            if row.impersonation { userID = row.trustorUserID } else { userID = row.trusteeUserID }
        }
        let applicationCredentialID = blob["app_cred_id"].flatMap { $0.isEmpty ? nil : $0 }
        if let applicationCredentialID {
            let owner = try await read { sql in try await IdentityTables.applicationCredentials.get(sql, id: applicationCredentialID) }
            guard let owner, owner.projectID == projectID else {
                throw IdentityError.unauthorized("EC2 credential project does not match the application credential project.")
            }
        }
        let now = Date()
        let payload = TokenPayload(userID: userID, methods: .ec2Credential, scope: .project(projectID),
                                   expiresAt: now.addingTimeInterval(options.tokenExpiration), auditIDs: [TokenPayload.newAuditID()],
                                   applicationCredentialID: applicationCredentialID, trustID: trustID, issuedAt: now)
        let info: TokenInfo
        do {
            info = try await resolve(payload)
        } catch IdentityError.unauthorized(let message) where message.contains("has no role") {
            throw IdentityError.unauthorized("User not valid for project.")
        }
        if trustID != nil { try await consumeTrustUse(trustID!) }
        let token = try state.withLock { $0.sealer }.seal(payload)
        return (token, info)
    }
}
