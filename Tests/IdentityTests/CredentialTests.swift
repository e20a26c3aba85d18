import Foundation
@testable import Identity
import Logging
import PetrelCore
import Store
import TestSupport
import Testing

/// Credentials at rest (encrypted with their own keys, re-encrypted by a rotation), EC2
/// request signatures against values Python's hmac computed, and trusts on both databases.
@Suite struct CredentialTests {
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

    @Test func signatureVersion2MatchesPythonsCanonicalForm() throws {
        let request = EC2SignedRequest(
            access: "AKID", signature: "NEBpimjLEm7P6M7whqshbT5OdB6phq7I/ZdPkHBypaY=", verb: "GET", host: "ec2.example.test:8773",
            path: "/", params: ["Action": "DescribeInstances", "AWSAccessKeyId": "AKID", "SignatureVersion": "2",
                                "SignatureMethod": "HmacSHA256", "Timestamp": "2026-12-05T08:00:00Z", "Filter.1.Value": "a b/ü"],
            headers: [:], bodyHash: "")
        try request.verify(secret: secret)
        #expect(throws: IdentityError.unauthorized("Invalid EC2 signature.")) { try request.verify(secret: "other") }
        var unsigned = request
        unsigned.signature = nil
        #expect(throws: IdentityError.unauthorized("EC2 signature not supplied.")) { try unsigned.verify(secret: secret) }
    }

    @Test func signatureVersion4MatchesPythonsDerivation() throws {
        let signature = "669d8aedd5f0daa81388bf48df00e3480c75cc4c5fc6f97f719512e1d0d6077d"
        let request = EC2SignedRequest(
            access: "AKID", signature: signature, verb: "GET", host: "ec2.example.test:8773", path: "/",
            params: ["Action": "DescribeInstances", "Version": "2016-11-15"],
            headers: ["Host": "ec2.example.test:8773", "X-Amz-Date": "20261205T080000Z",
                      "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20261205/RegionOne/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=\(signature)"],
            bodyHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        try request.verify(secret: secret)
        var tampered = request
        tampered.params["Action"] = "TerminateInstances"
        #expect(throws: IdentityError.unauthorized("Invalid EC2 signature.")) { try tampered.verify(secret: secret) }
        // The timestamp is checked against [credential] auth_ttl.
        let signedAt = EC2SignedRequest.parseTime("20261205T080000Z")!
        try request.checkTimestamp(ttl: 900, now: signedAt.addingTimeInterval(899))
        #expect(throws: IdentityError.unauthorized("Credential is expired")) {
            try request.checkTimestamp(ttl: 900, now: signedAt.addingTimeInterval(901))
        }
        #expect(IdentityService.ec2CredentialID(access: "AKID") == "2c8a2a08ad81dddf7e7830cbc75310f731a1381431bb29afb55a76ee07e81721")
    }

    @Test(arguments: TestDatabase.allCases)
    func credentialsAreEncryptedAtRestAndSurviveARotation(backend: TestDatabase) async throws {
        try await withBootstrappedService(backend) { database, service, base in
            let options = service.options
            let (admin, project) = try await database.withConnection { sql in
                (try await IdentityTables.users.first(sql, where: [.equals("name", "admin")])!.id,
                 try await IdentityTables.projects.first(sql, where: [.equals("name", "admin")])!.id)
            }
            // Without keys: a clear error, nothing stored.
            await #expect(throws: CredentialKeysMissing.self) {
                _ = try await service.createCredential(Credential(id: "", userID: admin, projectID: nil, type: "cert", blob: "x"))
            }
            var withKeys = options
            withKeys.credentialKeyRepository = base + "/credentials"
            let repository = FernetKeyRepository(directory: base + "/credentials")
            try repository.setup()
            let keyed = try IdentityService(database: database, options: withKeys, logger: Logger(label: "credential-test"))
            let blob = #"{"access": "AKID", "secret": "very-secret-value"}"#
            let created = try await keyed.createCredential(Credential(id: "", userID: admin, projectID: project, type: "ec2", blob: blob))
            #expect(created.id == IdentityService.ec2CredentialID(access: "AKID"))
            let row = try #require(try await database.withConnection { sql in try await IdentityTables.credentials.get(sql, id: created.id) })
            #expect(!row.encryptedBlob.contains("very-secret-value") && row.encryptedBlob != blob)
            #expect(row.keyHash == CredentialCipher.hash(of: try repository.load().primary))
            #expect(try await keyed.credential(created.id).blob == blob)
            // A second credential with the same access key is a conflict.
            await #expect(throws: IdentityError.self) {
                _ = try await keyed.createCredential(Credential(id: "", userID: admin, projectID: project, type: "ec2", blob: blob))
            }
            // Rotation: re-encrypt with the staged key, then promote it; the blob still reads.
            let staged = try repository.stagedKey()
            let count = try await IdentityService.reencryptCredentials(database: database, cipher: CredentialCipher(repository: repository),
                                                                       with: staged)
            #expect(count == 1)
            try repository.rotate()
            try repository.rotate()  // with 3 keys kept, the key that first encrypted the blob is gone now
            #expect(try repository.load().all.map(CredentialCipher.hash(of:)).contains(row.keyHash) == false)
            let rotated = try #require(try await database.withConnection { sql in try await IdentityTables.credentials.get(sql, id: created.id) })
            #expect(rotated.keyHash == CredentialCipher.hash(of: staged) && rotated.encryptedBlob != row.encryptedBlob)
            #expect(try await keyed.credential(created.id).blob == blob)
        }
    }
}

/// OS-TRUST on the service: uses counted, redelegation narrowed step by step, deletion
/// reaching the redelegated trusts and their tokens.
@Suite struct TrustTests {
    @Test(arguments: TestDatabase.allCases)
    func redelegationNarrowsAndDeletionReachesTheChain(backend: TestDatabase) async throws {
        try await withBootstrappedService(backend) { _, service, _ in
            let project = try await service.projects.list(where: [("name", "admin")], orderBy: "name")[0].id
            var users: [String] = []
            for name in ["trustee", "second"] {
                let user = User(id: IdentityService.makeID(), name: name, domainID: "default",
                                passwordHash: await service.hashPassword("\(name)-pw"), createdAt: IdentityService.timestamp())
                try await service.createUser(user)
                users.append(user.id)
            }
            let scope = AuthRequest.ScopeRequest.project(.id(project))
            let admin = try await service.issue(AuthRequest(method: .password(.name("admin", domain: .id("default")), password: "admin-pw"),
                                                            scope: scope)).info
            let member = try #require(try await service.globalRole(named: "member"))
            let reader = try #require(try await service.globalRole(named: "reader"))
            // Limited uses: two tokens, then none.
            let counted = try await service.createTrust(TrustRequest(
                trustorUserID: admin.user.id, trusteeUserID: users[0], projectID: project, impersonation: false, roles: [.id(member.id)],
                expiresAt: nil, remainingUses: 2, allowRedelegation: false, redelegationCount: nil), caller: admin)
            let asTrustee = AuthRequest(method: .password(.id(users[0]), password: "trustee-pw"), scope: .trust(counted.row.id))
            let first = try await service.issue(asTrustee)
            #expect(first.info.trust?.id == counted.row.id && Set(first.info.roles.map(\.name)) == ["member", "reader"])
            _ = try await service.issue(asTrustee)
            await #expect(throws: IdentityError.self) { _ = try await service.issue(asTrustee) }
            // The counted trust's tokens still validate: uses limit issuing, not validating.
            _ = try await service.validate(first.token)

            // Redelegation: allowed twice, each step narrower.
            let parent = try await service.createTrust(TrustRequest(
                trustorUserID: admin.user.id, trusteeUserID: users[0], projectID: project, impersonation: false,
                roles: [.id(member.id), .id(reader.id)], expiresAt: nil, remainingUses: nil, allowRedelegation: true,
                redelegationCount: 2), caller: admin)
            let parentToken = try await service.issue(AuthRequest(method: .password(.id(users[0]), password: "trustee-pw"),
                                                                   scope: .trust(parent.row.id)))
            // Wider roles or impersonation are refused.
            let admins = try #require(try await service.globalRole(named: "admin"))
            await #expect(throws: IdentityError.self) {
                _ = try await service.createTrust(TrustRequest(
                    trustorUserID: users[0], trusteeUserID: users[1], projectID: project, impersonation: false, roles: [.id(admins.id)],
                    expiresAt: nil, remainingUses: nil, allowRedelegation: false, redelegationCount: nil), caller: parentToken.info)
            }
            await #expect(throws: IdentityError.self) {
                _ = try await service.createTrust(TrustRequest(
                    trustorUserID: users[0], trusteeUserID: users[1], projectID: project, impersonation: true, roles: [.id(reader.id)],
                    expiresAt: nil, remainingUses: nil, allowRedelegation: false, redelegationCount: nil), caller: parentToken.info)
            }
            let child = try await service.createTrust(TrustRequest(
                trustorUserID: users[0], trusteeUserID: users[1], projectID: project, impersonation: false, roles: [.id(reader.id)],
                expiresAt: nil, remainingUses: nil, allowRedelegation: true, redelegationCount: nil), caller: parentToken.info)
            #expect(child.row.redelegatedTrustID == parent.row.id && child.row.redelegationCount == 1)
            let childToken = try await service.issue(AuthRequest(method: .password(.id(users[1]), password: "second-pw"),
                                                                 scope: .trust(child.row.id)))
            #expect(childToken.info.roles.map(\.name) == ["reader"])
            // Deleting the parent deletes the redelegated trust; both tokens stop validating.
            try await service.deleteTrust(parent.row.id)
            await #expect(throws: IdentityError.self) { _ = try await service.validate(parentToken.token) }
            await #expect(throws: IdentityError.self) { _ = try await service.validate(childToken.token) }
            await #expect(throws: IdentityError.self) { _ = try await service.trust(child.row.id) }
        }
    }
}
