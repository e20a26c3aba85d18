import Foundation
@testable import Identity
import Testing

@Suite struct TokenPayloadTests {
    let user = "6a1f36c2e4f54b1d9a8e3c0b7d2f4e51"
    let project = "0123456789abcdef0123456789abcdef"

    @Test(arguments: [TokenPayload.Scope.unscoped, .project("0123456789abcdef0123456789abcdef"), .domain("default"), .system])
    func payloadsRoundTrip(scope: TokenPayload.Scope) throws {
        let payload = TokenPayload(userID: user, methods: [.password, .token], scope: scope,
                                   expiresAt: Date(timeIntervalSince1970: 1_800_000_000.123),
                                   auditIDs: [TokenPayload.newAuditID(), TokenPayload.newAuditID()],
                                   applicationCredentialID: scope == .system ? "app-cred-1" : nil)
        let decoded = try TokenPayload(decoding: payload.encoded())
        #expect(decoded.userID == payload.userID && decoded.scope == payload.scope && decoded.methods == payload.methods)
        #expect(decoded.auditIDs == payload.auditIDs && decoded.applicationCredentialID == payload.applicationCredentialID)
        #expect(abs(decoded.expiresAt.timeIntervalSince(payload.expiresAt)) < 0.001)
        #expect(payload.methods.names == ["password", "token"])
    }

    @Test func sealedTokensAreShortValidateAndExpire() throws {
        let sealer = TokenSealer(keys: .init(primary: FernetKey.generate(), all: []))
        let keys = FernetKeyRepository.Keys(primary: sealer.keys.primary, all: [sealer.keys.primary])
        let live = TokenSealer(keys: keys)
        let now = Date()
        let payload = TokenPayload(userID: user, methods: [.password], scope: .project(project),
                                   expiresAt: Date(timeIntervalSince1970: (now.timeIntervalSince1970 + 3600).rounded()),
                                   auditIDs: [TokenPayload.newAuditID()], issuedAt: now)
        let token = try live.seal(payload)
        #expect(token.count < 200, "a project-scoped token is \(token.count) characters")
        #expect(try live.open(token, now: now).payload == payload)
        #expect(throws: FernetError.expired) { try live.open(token, now: now.addingTimeInterval(3602)) }
        #expect(throws: FernetError.badSignature) {
            try TokenSealer(keys: .init(primary: FernetKey.generate(), all: [FernetKey.generate()])).open(token)
        }
        #expect(throws: FernetError.malformedToken) { try TokenPayload(decoding: [2, 0, 9]) }
        #expect(throws: FernetError.unsupportedVersion) { try TokenPayload(decoding: [1, 0, 0]) }
        #expect(TokenPayload.newAuditID().count == 22)
    }

    @Test func arbitraryBytesNeverCrashTheDecoder() {
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255) }
            _ = try? TokenPayload(decoding: [2] + bytes)
        }
    }
}
