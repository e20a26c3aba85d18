import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PetrelHTTP
import Testing

/// A validator that knows one token (test double: the identity service plays this part in
/// the controller). Its callers may do what their roles name.
struct OneTokenValidator: TokenValidator {
    func validate(token: String) async throws -> Caller {
        guard token == "good" else { throw APIFault(.unauthorized, "The request you have made requires authentication.") }
        return Caller(user: .init(id: "u1", name: "alice"), userDomainID: "default", project: .init(id: "p1", name: "demo"),
                      projectDomainID: "default", domain: nil, roles: ["Member"], system: false, auditIDs: ["a1"], token: token)
    }

    func allows(_ action: String, for caller: Caller, target: [String: String]) -> Bool {
        caller.hasRole(action) && target["project_id"].map { $0 == caller.projectID } ?? true
    }
}

/// The authentication middleware and APIRequestContext: a token is read once, routes that
/// need a caller ask for it, and refusals come out in each API's words.
@Suite struct AuthenticationTests {
    func withRouter(_ style: FaultStyle, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let router = Router(context: APIRequestContext.self)
        let group = router.group("api")
            .add(middleware: OpenStackErrorMiddleware(style: style, publicURL: "http://controller:5000", logger: .init(label: "auth-test")))
            .add(middleware: AuthenticationMiddleware(OneTokenValidator()))
        group.get("open") { _, _ in respond(.ok, ["open": true]) }
        group.get("me") { _, context in
            let caller = try context.enforce("member", target: ["project_id": "p1"])
            return respond(.ok, ["user": .string(caller.userID), "project": JSON.string(caller.projectID), "audit": .string(caller.auditIDs[0])])
        }
        group.get("admin") { _, context in
            try context.enforce("admin")
            return respond(.ok, [:])
        }
        try await Application(router: router).test(.router) { client in try await body(client) }
    }

    func get(_ client: any TestClientProtocol, _ path: String, token: String?) async throws -> (HTTPResponse, JSON?) {
        var headers: HTTPFields = [:]
        if let token { headers[.authToken] = token }
        return try await client.execute(uri: path, method: .get, headers: headers) { ($0.head, JSON.parse(Array($0.body.readableBytesView))) }
    }

    @Test func openRoutesNeedNoTokenAndBadTokensOnlyFailWhereOneIsNeeded() async throws {
        try await withRouter(.nova) { client in
            #expect(try await get(client, "/api/open", token: nil).1 == ["open": true])
            #expect(try await get(client, "/api/open", token: "bad").1 == ["open": true])
            for token in [nil, "bad"] {
                let (head, body) = try await get(client, "/api/me", token: token)
                #expect(head.status == .unauthorized)
                #expect(head.headerFields[.wwwAuthenticate] == "Keystone uri=\"http://controller:5000\"")
                // keystonemiddleware's body, whatever the API.
                #expect(body == ["error": ["code": 401, "title": "Unauthorized",
                                           "message": "The request you have made requires authentication."]])
            }
            let (head, body) = try await get(client, "/api/me", token: "good")
            #expect(head.status == .ok)
            #expect(body == ["user": "u1", "project": "p1", "audit": "a1"])
            #expect(head.headerFields[.requestID]?.hasPrefix("req-") == true)
        }
    }

    @Test func refusalsAreWordedAsEachAPIWordsThem() async throws {
        let expected: [(FaultStyle, JSON)] = [
            (.keystone, ["error": ["code": 403, "title": "Forbidden", "message": "You are not authorized to perform the requested action: admin."]]),
            (.nova, ["forbidden": ["code": 403, "message": "Policy doesn't allow admin to be performed."]]),
            (.neutron, ["NeutronError": ["type": "PolicyNotAuthorized", "message": "(rule:admin) is disallowed by policy", "detail": ""]]),
            (.glance, ["code": "403 Forbidden", "title": "Forbidden", "message": "You are not authorized to complete admin action."]),
        ]
        for (style, body) in expected {
            try await withRouter(style) { client in
                let (head, json) = try await get(client, "/api/admin", token: "good")
                #expect(head.status == .forbidden)
                #expect(json == body)
            }
        }
    }
}
