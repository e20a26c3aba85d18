import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
@testable import Identity
@testable import IdentityAPI
import Logging
import NIOCore
import PetrelHTTP
import Store
import TestSupport
import Testing

/// The Keystone API in-process (router, real SQLite database): every response has at least
/// the fields of Keystone's own API samples (KeystoneSampleFields), and
/// the error paths answer with Keystone's error body.
@Suite struct KeystoneShapeTests {
    /// Dotted key paths of a JSON value (the first element stands for every array element).
    static func paths(_ value: JSON, _ prefix: String = "") -> Set<String> {
        switch value {
        case .object(let members):
            var out: Set<String> = []
            for (key, member) in members {
                out.insert(prefix + key)
                out.formUnion(paths(member, prefix + key + "."))
            }
            return out
        case .array(let elements): return elements.first.map { paths($0, prefix + "[].") } ?? []
        default: return []
        }
    }

    /// Expects every field of the sample in `ours`, except those named in `except` (prefixes).
    func expectShape(_ ours: JSON, like name: String, except: [String] = []) throws {
        let sample = try #require(KeystoneSampleFields.fields[name], "no recorded fields for \(name)")
        let missing = sample.subtracting(Self.paths(ours))
            .filter { path in !except.contains { path.hasPrefix($0) } }
        #expect(missing.isEmpty, "\(name): missing \(missing.sorted())")
    }

    struct Harness: Sendable {
        let api: KeystoneAPI
        let database: Database
    }

    func withAPI(_ body: @Sendable (any TestClientProtocol, Harness) async throws -> Void) async throws {
        try await withBootstrappedIdentity { database, service in
            let api = KeystoneAPI(service: service, policy: try Policy(defaults: KeystonePolicy.defaults),
                                  publicURL: "http://controller:5000", maxBodySize: 4096, logger: Logger(label: "api-test"))
            let router = Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
            api.register(on: router)
            try await Application(router: router).test(.router) { client in
                try await body(client, Harness(api: api, database: database))
            }
        }
    }

    struct Answer: Sendable {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let json: JSON?
    }

    func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, token: String? = nil,
              body: String? = nil, headers extra: HTTPFields = [:]) async throws -> Answer {
        var headers = extra
        headers[.contentType] = "application/json"
        if let token { headers[HTTPField.Name("X-Auth-Token")!] = token }
        return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            Answer(status: response.status, headers: response.headers, json: JSON.parse(Array(response.body.readableBytesView)))
        }
    }

    static let adminAuth = #"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "admin-pw"}}}, "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}"#

    func adminToken(_ client: any TestClientProtocol) async throws -> (String, JSON) {
        let answer = try await call(client, .post, "/v3/auth/tokens", body: Self.adminAuth)
        #expect(answer.status == .created)
        let token = try #require(answer.headers[HTTPField.Name("X-Subject-Token")!])
        return (token, try #require(answer.json))
    }

    @Test func responsesCarryKeystonesFields() async throws {
        try await withAPI { client, _ in
            let (token, body) = try await adminToken(client)
            try expectShape(body, like: "auth-password-project-scoped-response.json")
            let expires = try #require(body["token"]?["expires_at"]?.stringValue)
            #expect(expires.count == "2026-11-25T16:00:00.000000Z".count && expires.hasSuffix("Z"), "\(expires)")
            let validated = try await call(client, .get, "/v3/auth/tokens", token: token,
                                           headers: [HTTPField.Name("X-Subject-Token")!: token])
            #expect(validated.status == .ok)
            try expectShape(try #require(validated.json), like: "auth-password-project-scoped-response.json")
            // Validation answers the issue's body exactly; a rescoped token keeps its parent's expiry
            // to the printed digit.
            #expect(validated.json == body)
            let rescoped = try await call(client, .post, "/v3/auth/tokens", body: #"{"auth": {"identity": {"methods": ["token"], "token": {"id": "\#(token)"}}, "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}"#)
            #expect(rescoped.status == .created && rescoped.json?["token"]?["expires_at"]?.stringValue == expires)

            let domain = try await call(client, .post, "/v3/domains", token: token, body: #"{"domain": {"name": "d1", "description": "x"}}"#)
            #expect(domain.status == .created)
            try expectShape(try #require(domain.json), like: "domain-show-response.json")
            let project = try await call(client, .post, "/v3/projects", token: token, body: #"{"project": {"name": "p1"}}"#)
            try expectShape(try #require(project.json), like: "project-update-response.json")
            let projectID = try #require(project.json?["project"]?["id"]?.stringValue)
            let user = try await call(client, .post, "/v3/users", token: token,
                                      body: #"{"user": {"name": "u1", "password": "pw", "default_project_id": "\#(projectID)"}}"#)
            try expectShape(try #require(user.json), like: "user-show-response.json", except: ["user.federated"])
            let userID = try #require(user.json?["user"]?["id"]?.stringValue)
            let group = try await call(client, .post, "/v3/groups", token: token, body: #"{"group": {"name": "g1", "description": "d"}}"#)
            try expectShape(try #require(group.json), like: "group-create-response.json")
            let role = try await call(client, .post, "/v3/roles", token: token, body: #"{"role": {"name": "r1"}}"#)
            try expectShape(try #require(role.json), like: "role-show-response.json")
            let region = try await call(client, .post, "/v3/regions", token: token,
                                        body: #"{"region": {"id": "Sub", "parent_region_id": "RegionOne", "description": "d"}}"#)
            try expectShape(try #require(region.json), like: "region-create-response.json")
            let service = try await call(client, .post, "/v3/services", token: token,
                                         body: #"{"service": {"type": "compute", "name": "nova", "description": "d"}}"#)
            try expectShape(try #require(service.json), like: "service-create-response.json")
            let serviceID = try #require(service.json?["service"]?["id"]?.stringValue)
            let endpoint = try await call(client, .post, "/v3/endpoints", token: token,
                                          body: #"{"endpoint": {"service_id": "\#(serviceID)", "interface": "public", "url": "http://c:8774/v2.1", "region_id": "RegionOne"}}"#)
            #expect(endpoint.status == .created)
            try expectShape(try #require(endpoint.json), like: "endpoint-create-response.json")
            let roles = try await call(client, .get, "/v3/roles", token: token)
            let memberID = try #require(roles.json?["roles"]?.arrayValue?.first { $0["name"] == "member" }?["id"]?.stringValue)
            let grant = try await call(client, .put, "/v3/projects/\(projectID)/users/\(userID)/roles/\(memberID)", token: token)
            #expect(grant.status == .noContent)
            #expect(try await call(client, .head, "/v3/projects/\(projectID)/users/\(userID)/roles/\(memberID)", token: token).status == .noContent)
            let inference = try await call(client, .get, "/v3/roles/\(memberID)/implies", token: token)
            try expectShape(try #require(inference.json), like: "list-implied-roles-for-role-response.json")
            let readerID = try #require(roles.json?["roles"]?.arrayValue?.first { $0["name"] == "reader" }?["id"]?.stringValue)
            let rule = try await call(client, .get, "/v3/roles/\(memberID)/implies/\(readerID)", token: token)
            try expectShape(try #require(rule.json), like: "create-role-inferences-response.json")
            #expect(rule.json?["links"]?["self"]?.stringValue?.hasSuffix("/v3/roles/\(memberID)/implies/\(readerID)") == true)
            let assignments = try await call(client, .get, "/v3/role_assignments?effective&include_names&user.id=\(userID)", token: token)
            try expectShape(try #require(assignments.json), like: "role-assignments-list-response.json",
                            except: ["role_assignments.[].scope.domain"])  // the sample's first entry is on a domain
            #expect(assignments.json?["role_assignments"]?.arrayValue?.count == 2, "member and the reader it implies")

            let userAuth = #"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "\#(userID)", "password": "pw"}}}}}"#
            let userLogin = try await call(client, .post, "/v3/auth/tokens", body: userAuth)
            #expect(userLogin.json?["token"]?["project"]?["id"]?.stringValue == projectID, "no scope: the default project")
            let userToken = try #require(userLogin.headers[HTTPField.Name("X-Subject-Token")!])
            let credential = try await call(client, .post, "/v3/users/\(userID)/application_credentials", token: userToken,
                                            body: #"{"application_credential": {"name": "c1", "expires_at": "2099-01-01T00:00:00.000000"}}"#)
            #expect(credential.status == .created)
            #expect(credential.json?["application_credential"]?["expires_at"]?.stringValue == "2099-01-01T00:00:00.000000",
                    "expires_at round-trips as given, in Keystone's form")
            try expectShape(try #require(credential.json), like: "application-credential-create-response.json",
                            except: ["application_credential.access_rules."])
            let credentialID = try #require(credential.json?["application_credential"]?["id"]?.stringValue)
            let secret = try #require(credential.json?["application_credential"]?["secret"]?.stringValue)
            let credentialAuth = #"{"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "\#(credentialID)", "secret": "\#(secret)"}}}}"#
            let credentialLogin = try await call(client, .post, "/v3/auth/tokens", body: credentialAuth)
            #expect(credentialLogin.status == .created)
            try expectShape(try #require(credentialLogin.json), like: "auth-application-credential-response.json")
            let catalog = try await call(client, .get, "/v3/auth/catalog", token: token)
            try expectShape(try #require(catalog.json), like: "get-service-catalog-response.json")
        }
    }

    /// Keystone's request schemas, in Keystone's words: resources as its newer validator words
    /// them, tokens and password changes as its older one; nothing changes on a refusal.
    @Test func bodiesFollowKeystonesSchemas() async throws {
        try await withAPI { client, _ in
            let (token, _) = try await adminToken(client)
            let project = try await call(client, .post, "/v3/projects", token: token, body: #"{"project": {"name": "kept"}}"#)
            let projectID = try #require(project.json?["project"]?["id"]?.stringValue)
            for (method, path, body, message) in [
                (HTTPRequest.Method.post, "/v3/projects", #"{"project": {"name": "   "}}"#,
                 "Invalid input for field/attribute name. Value:    . '   ' does not match '[\\\\S]+'"),
                (.post, "/v3/projects", #"{"project": {"name": "t", "tags": ["a/b"]}}"#,
                 "Invalid input for field/attribute 0. Value: a/b. 'a/b' does not match '^[^,/]*$'"),
                (.post, "/v3/projects", #"{"project": {"name": "t", "enabled": "maybe"}}"#,
                 "Invalid input for field/attribute enabled. Value: maybe. 'maybe' is not one of [True, 'True', 'TRUE', 'true', False, 'False', 'FALSE', 'false', '', '1', '0', 'y', 'Y', 'n', 'N', 'on', 'ON', 'off', 'OFF', 'yes', 'no']"),
                (.post, "/v3/projects", #"{"project": {"name": "t"}, "extra": 1}"#,
                 "Additional properties are not allowed ('extra' was unexpected)"),
                (.patch, "/v3/projects/\(projectID)", #"{"project": {"tags": ["x", "x"]}}"#,
                 "Invalid input for field/attribute tags. Value: ['x', 'x']. ['x', 'x'] has non-unique elements"),
                (.patch, "/v3/domains/default", #"{"domain": {}}"#,
                 "Invalid input for field/attribute domain. Value: {}. {} should be non-empty"),
                (.post, "/v3/domains", #"{"domain": {"name": "d", "explicit_domain_id": "no_underscores"}}"#,
                 "Invalid input for field/attribute explicit_domain_id. Value: no_underscores. 'no_underscores' does not match '^[a-zA-Z0-9-]+$'"),
                (.post, "/v3/users", #"{"user": {"name": "u", "options": {"lock_passwords": true}}}"#,
                 "Invalid input for field/attribute options. Value: {'lock_passwords': True}. Additional properties are not allowed ('lock_passwords' was unexpected)"),
                (.post, "/v3/groups", #"{"group": {"description": "no name"}}"#,
                 "Invalid input for field/attribute group. Value: {'description': 'no name'}. 'name' is a required property"),
                (.post, "/v3/endpoints", #"{"endpoint": {"service_id": "s", "interface": "public", "url": "no-scheme"}}"#,
                 "Invalid input for field/attribute url. Value: no-scheme. 'no-scheme' does not match '^[a-zA-Z0-9+.-]+:.+'"),
                (.post, "/v3/services", #"{"service": {"type": "t", "enabled": "true"}}"#,
                 "Invalid input for field/attribute enabled. Value: true. 'true' is not of type 'boolean'"),
                (.post, "/v3/roles", #"{"role": {"name": "r", "domain_id": ""}}"#,
                 "Invalid input for field/attribute domain_id. Value: . '' should be non-empty"),
                (.post, "/v3/regions", #"{"region": {"parent_region_id": ""}}"#,
                 "Invalid input for field/attribute parent_region_id. Value: . '' should be non-empty"),
                (.post, "/v3/users/nobody/application_credentials", #"{"application_credential": {"name": "a", "roles": [{"id": "r", "name": "n"}]}}"#,
                 "Invalid input for field/attribute 0. Value: {'id': 'r', 'name': 'n'}. {'id': 'r', 'name': 'n'} has too many properties"),
                (.post, "/v3/auth/tokens", #"{"auth": {"identity": {"password": {}}}}"#,
                 "Invalid input for field 'identity': 'methods' is a required property"),
                (.post, "/v3/auth/tokens", #"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"password": "p"}}}}}"#,
                 "Invalid input for field identity/password/user: id or name must be present."),
                (.post, "/v3/auth/tokens", #"{"auth": {"identity": {"methods": "password"}}}"#,
                 "Invalid input for field 'identity/methods': 'password' is not of type 'array'"),
                (.post, "/v3/users/nobody/password", #"{"user": {"password": "new"}}"#,
                 "'original_password' is a required property"),
            ] {
                let answer = try await call(client, method, path, token: token, body: body)
                #expect(answer.status == .badRequest, "\(method) \(path) \(body)")
                #expect(answer.json?["error"]?["message"]?.stringValue == message, "\(method) \(path) \(body)")
            }
            // The list routes' queries, checked as Keystone checks them (a closed one for regions).
            for (path, message) in [
                ("/v3/regions?colour=red", "Additional properties are not allowed ('colour' was unexpected)"),
                ("/v3/users?enabled=maybe", "Invalid input for field/attribute enabled. Value: maybe. 'maybe' is not one of [True, 'True', 'TRUE', 'true', False, 'False', 'FALSE', 'false', '', '1', '0', 'y', 'Y', 'n', 'N', 'on', 'ON', 'off', 'OFF', 'yes', 'no']"),
                ("/v3/groups?sort_dir=up", "Invalid input for field/attribute sort_dir. Value: up. 'up' is not one of ['asc', 'desc']"),
                ("/v3/endpoints?interface=sideways", "Invalid input for field/attribute interface. Value: sideways. 'sideways' is not one of ['admin', 'internal', 'public']"),
                ("/v3/projects?domain_id=no_such/thing", "Invalid input for field/attribute domain_id. Value: no_such/thing. 'no_such/thing' does not match '^[a-zA-Z0-9-]+$'"),
            ] {
                let answer = try await call(client, .get, path, token: token)
                #expect(answer.status == .badRequest, "\(path)")
                #expect(answer.json?["error"]?["message"]?.stringValue == message, "\(path)")
            }
            #expect(try await call(client, .get, "/v3/regions?colour=red").status == .unauthorized, "no token: 401 before the query")
            #expect(try await call(client, .get, "/v3/users?enabled=False&name__icontains=a", token: token).status == .ok)
            let after = try await call(client, .get, "/v3/projects/\(projectID)", token: token)
            #expect(after.json?["project"]?["name"] == "kept")
            #expect(try await call(client, .get, "/v3/groups", token: token).json?["groups"]?.arrayValue?.isEmpty == true)
            // What Keystone's schema takes that the handlers once refused: its boolean strings,
            // a domain id of the client's choosing.
            let flagged = try await call(client, .post, "/v3/projects", token: token, body: #"{"project": {"name": "flag", "enabled": "False"}}"#)
            #expect(flagged.status == .created)
            #expect(flagged.json?["project"]?["enabled"] == false)
            let chosen = try await call(client, .post, "/v3/domains", token: token, body: #"{"domain": {"name": "chosen", "explicit_domain_id": "my-domain-1"}}"#)
            #expect(chosen.json?["domain"]?["id"] == "my-domain-1")
        }
    }

    @Test func discoveryAndErrorsAreKeystones() async throws {
        try await withAPI { client, _ in
            let root = try await call(client, .get, "/")
            #expect(root.status == .multipleChoices)
            #expect(root.json?["versions"]?["values"]?.arrayValue?.first?["id"] == "v3.14")
            let v3 = try await call(client, .get, "/v3")
            #expect(v3.json?["version"]?["links"]?.arrayValue?.first?["href"] == "http://controller:5000/v3/")
            func expectError(_ answer: Answer, _ status: HTTPResponse.Status, _ what: Comment) {
                #expect(answer.status == status, what)
                #expect(answer.json?["error"]?["code"] == .number(Double(status.code)), what)
                #expect(answer.json?["error"]?["title"]?.stringValue?.isEmpty == false, what)
                #expect(answer.json?["error"]?["message"]?.stringValue?.isEmpty == false, what)
            }
            let anonymous = try await call(client, .get, "/v3/users")
            expectError(anonymous, .unauthorized, "no token")
            #expect(anonymous.headers[HTTPField.Name("WWW-Authenticate")!] == "Keystone uri=\"http://controller:5000\"")
            expectError(try await call(client, .get, "/v3/users", token: "garbage"), .unauthorized, "a garbage token")
            let (token, _) = try await adminToken(client)
            expectError(try await call(client, .get, "/v3/users/nobody", token: token), .notFound, "an unknown user")
            expectError(try await call(client, .post, "/v3/users", token: token, body: "{"), .badRequest, "malformed JSON")
            expectError(try await call(client, .post, "/v3/users", token: token, body: #"{"user": {"name": ""}}"#), .badRequest, "an empty name")
            expectError(try await call(client, .post, "/v3/users", token: token, body: #"{"user": {"name": "x", "enabled": "maybe"}}"#),
                        .badRequest, "enabled not a boolean")
            expectError(try await call(client, .post, "/v3/endpoints", token: token,
                                       body: #"{"endpoint": {"service_id": "s", "interface": "sideways", "url": "http://x"}}"#),
                        .badRequest, "an unknown interface")
            let big = #"{"user": {"name": ""# + String(repeating: "x", count: 5000) + #""}}"#
            expectError(try await call(client, .post, "/v3/users", token: token, body: big), .contentTooLarge, "an oversized body")
            expectError(try await call(client, .post, "/v3/auth/tokens", body: #"{"auth": {"identity": {"methods": ["password"]}}}"#),
                        .badRequest, "password method without a user")
            expectError(try await call(client, .post, "/v3/auth/tokens",
                                       body: #"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "no"}}}}}"#),
                        .unauthorized, "a wrong password")
            let overlong = try await call(client, .post, "/v3/users", token: token,
                                          body: #"{"user": {"name": "long", "password": "\#(String(repeating: "p", count: 101))"}}"#)
            expectError(overlong, .badRequest, "a password over max_password_length")
            #expect(overlong.json?["error"]?["message"]?.stringValue?.hasPrefix("Invalid input for field 'password'") == true)
            let users = try await call(client, .get, "/v3/users", token: token)
            #expect(users.json?["users"]?.arrayValue?.count == 1, "nothing was created by the refused requests")

            // The security report's reproduction: an 80-character password, and another sharing
            // its first 72 characters, which plain bcrypt would let in.
            let password = String(repeating: "a", count: 72) + "-the-end"
            let created = try await call(client, .post, "/v3/users", token: token,
                                         body: #"{"user": {"name": "long-pw", "password": "\#(password)"}}"#)
            #expect(created.status == .created)
            func login(_ secret: String) async throws -> Answer {
                try await call(client, .post, "/v3/auth/tokens",
                               body: #"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "long-pw", "domain": {"id": "default"}, "password": "\#(secret)"}}}}}"#)
            }
            #expect(try await login(password).status == .created)
            expectError(try await login(String(repeating: "a", count: 72) + "-another"), .unauthorized, "the first 72 characters are not the password")

            // PATCH bodies that try to move what Keystone keeps fixed; nothing changes.
            let project = try await call(client, .post, "/v3/projects", token: token, body: #"{"project": {"name": "fixed"}}"#)
            let projectID = try #require(project.json?["project"]?["id"]?.stringValue)
            for (body, status, message) in [(#"{"project": {"id": "other", "name": "moved"}}"#, HTTPResponse.Status.badRequest, "Cannot change ID"),
                                            (#"{"project": {"is_domain": true, "name": "moved"}}"#, .badRequest, "Update of `is_domain` is not allowed."),
                                            (#"{"project": {"parent_id": "\#(projectID)", "name": "moved"}}"#, .forbidden, "Update of `parent_id` is not allowed."),
                                            (#"{"project": {"domain_id": "elsewhere", "name": "moved"}}"#, .badRequest, "Update of `domain_id` is not allowed.")] {
                let answer = try await call(client, .patch, "/v3/projects/\(projectID)", token: token, body: body)
                expectError(answer, status, "PATCH \(body)")
                #expect(answer.json?["error"]?["message"]?.stringValue == message, "\(body)")
            }
            #expect(try await call(client, .get, "/v3/projects/\(projectID)", token: token).json?["project"]?["name"] == "fixed")
            let role = try await call(client, .post, "/v3/roles", token: token, body: #"{"role": {"name": "fixed-role"}}"#)
            let roleID = try #require(role.json?["role"]?["id"]?.stringValue)
            expectError(try await call(client, .patch, "/v3/roles/\(roleID)", token: token, body: #"{"role": {"domain_id": "default"}}"#),
                        .badRequest, "a role moved into a domain")
            expectError(try await call(client, .patch, "/v3/users/nobody-else", token: token, body: #"{"user": {"id": "x"}}"#),
                        .notFound, "an unknown user")

            // A token scoped to a project and a domain at once; a method named but not checked.
            let both = try await call(client, .post, "/v3/auth/tokens", body: #"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "admin-pw"}}}, "scope": {"project": {"name": "admin", "domain": {"id": "default"}}, "domain": {"id": "default"}}}}"#)
            expectError(both, .badRequest, "project and domain scope")
            #expect(both.json?["error"]?["message"]?.stringValue?.hasPrefix("Invalid input for field 'auth/scope'") == true)
            expectError(try await call(client, .post, "/v3/auth/tokens", body: #"{"auth": {"identity": {"methods": ["password", "totp"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "admin-pw"}}, "totp": {"user": {"id": "x", "passcode": "000000"}}}}}"#),
                        .unauthorized, "a TOTP section nothing checks")
            let disableDefault = try await call(client, .delete, "/v3/domains/default", token: token)
            expectError(disableDefault, .forbidden, "deleting an enabled domain")
        }
    }
}
