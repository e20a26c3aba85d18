import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
@testable import Identity
@testable import IdentityAPI
import Logging
import NIOCore
import PetrelCore
import PetrelHTTP
import Store
import TestSupport
import Testing

/// Stored policies and OS-ENDPOINT-POLICY, domain-specific configuration, and OS-EP-FILTER
/// (endpoint groups, project endpoint filters and the filtered catalog), in-process on SQLite
/// and PostgreSQL: Keystone's shapes, status codes, errors and policy.
@Suite struct KeystoneExtensionTests {
    struct Answer: Sendable {
        let status: HTTPResponse.Status
        let json: JSON?
        var message: String? { json?["error"]?["message"]?.stringValue }
    }

    struct API: Sendable {
        let client: any TestClientProtocol
        let service: IdentityService
        let database: Database
        let admin: String

        func call(_ method: HTTPRequest.Method, _ path: String, token: String? = nil, body: String? = nil) async throws -> Answer {
            var headers: HTTPFields = [.contentType: "application/json"]
            headers[.authToken] = token ?? admin
            return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
                Answer(status: response.status, json: JSON.parse(Array(response.body.readableBytesView)))
            }
        }

        /// A Keystone error body of this status (and message, when given).
        func expectError(_ answer: Answer, _ status: HTTPResponse.Status, _ message: String? = nil,
                         sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(answer.status == status, "\(String(describing: answer.json))", sourceLocation: sourceLocation)
            #expect(answer.json?["error"]?["code"] == .number(Double(status.code)), sourceLocation: sourceLocation)
            #expect(answer.json?["error"]?["title"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
            if let message { #expect(answer.message == message, sourceLocation: sourceLocation) }
        }

        func id(_ answer: Answer, _ key: String) throws -> String {
            try #require(answer.json?[key]?["id"]?.stringValue, "\(answer.status) \(String(describing: answer.json))")
        }

        func count(_ table: String, _ column: String, _ value: String) async throws -> Int {
            try await database.withConnection { sql in
                try await sql.raw("SELECT COUNT(*) AS n FROM \(ident: table) WHERE \(ident: column) = \(bind: value)").first()!
                    .decode(column: "n", as: Int.self)
            }
        }

        /// The endpoint ids of the catalog in a token's validation body.
        func catalogEndpoints(of token: String) async throws -> Set<String> {
            var headers: HTTPFields = [.contentType: "application/json", .authToken: admin]
            headers[.subjectToken] = token
            let body = try await client.execute(uri: "/v3/auth/tokens", method: .get, headers: headers, body: nil) { response in
                JSON.parse(Array(response.body.readableBytesView))
            }
            let catalog = try #require(body?["token"]?["catalog"]?.arrayValue)
            return Set(catalog.flatMap { $0["endpoints"]?.arrayValue ?? [] }.compactMap { $0["id"]?.stringValue })
        }
    }

    /// A bootstrapped cloud on `backend`, its Keystone API in-process, and an admin token.
    func withAPI(_ backend: TestDatabase, _ body: @Sendable (API) async throws -> Void) async throws {
        try await withBootstrappedIdentity(backend) { database, service in
            let logger = Logger(label: "extension-test")
            let api = KeystoneAPI(service: service, policy: try Policy(defaults: KeystonePolicy.defaults),
                                  publicURL: "http://controller:5000", maxBodySize: 8192, logger: logger)
            let router = Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
            api.register(on: router)
            let admin = try await adminToken(service)
            try await Application(router: router).test(.router) { client in
                try await body(API(client: client, service: service, database: database, admin: admin))
            }
        }
    }

    /// A service with endpoints: (public, RegionOne), (internal, RegionOne), (public, no region),
    /// (admin, a child region of RegionOne). Returns the service and the endpoints in that order.
    func catalogFixture(_ api: API) async throws -> (service: String, endpoints: [String]) {
        let service = try api.id(try await api.call(.post, "/v3/services", body: #"{"service": {"type": "thing", "name": "things"}}"#), "service")
        #expect(try await api.call(.post, "/v3/regions", body: #"{"region": {"id": "Sub", "parent_region_id": "RegionOne"}}"#).status == .created)
        var endpoints: [String] = []
        for (interface, region) in [("public", "\"RegionOne\""), ("internal", "\"RegionOne\""), ("public", "null"), ("admin", "\"Sub\"")] {
            let answer = try await api.call(.post, "/v3/endpoints", body: """
                {"endpoint": {"service_id": "\(service)", "interface": "\(interface)", "url": "http://things:\(endpoints.count + 1)/", "region_id": \(region)}}
                """)
            endpoints.append(try api.id(answer, "endpoint"))
        }
        return (service, endpoints)
    }

    // MARK: policies and OS-ENDPOINT-POLICY

    @Test(arguments: TestDatabase.allCases)
    func policiesAndTheirEndpointAssociations(backend: TestDatabase) async throws {
        try await withAPI(backend) { api in
            // The sample's request, with an extra attribute that round-trips.
            let created = try await api.call(.post, "/v3/policies", body: #"{"policy": {"blob": "{'foobar_user': 'role:compute-user'}", "type": "application/json", "owner": "ops"}}"#)
            #expect(created.status == .created)
            let policy = try api.id(created, "policy")
            #expect(created.json?["policy"] == [
                "id": .string(policy), "blob": "{'foobar_user': 'role:compute-user'}", "type": "application/json", "owner": "ops",
                "links": ["self": .string("http://controller:5000/v3/policies/\(policy)")],
            ])
            let other = try api.id(try await api.call(.post, "/v3/policies", body: #"{"policy": {"blob": "", "type": "text/yaml"}}"#), "policy")
            let third = try api.id(try await api.call(.post, "/v3/policies", body: #"{"policy": {"blob": "{}", "type": "text/yaml"}}"#), "policy")
            let list = try await api.call(.get, "/v3/policies")
            #expect(list.json?["policies"]?.arrayValue?.count == 3)
            #expect(list.json?["links"]?["self"]?.stringValue == "http://controller:5000/v3/policies")
            let yaml = try await api.call(.get, "/v3/policies?type=text/yaml")
            #expect(Set(yaml.json?["policies"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []) == [other, third])
            let shown = try await api.call(.get, "/v3/policies/\(policy)")
            #expect(shown.json == created.json)
            let updated = try await api.call(.patch, "/v3/policies/\(policy)", body: #"{"policy": {"blob": "{\"a\": 1}", "colour": "blue"}}"#)
            #expect(updated.status == .ok)
            #expect(updated.json?["policy"]?["blob"] == "{\"a\": 1}" && updated.json?["policy"]?["owner"] == "ops"
                    && updated.json?["policy"]?["colour"] == "blue" && updated.json?["policy"]?["type"] == "application/json")

            // Malformed bodies: 400, nothing changed.
            for (method, path, body) in [
                (HTTPRequest.Method.post, "/v3/policies", #"{"policy": {"type": "t"}}"#),
                (.post, "/v3/policies", #"{"policy": {"blob": {"a": 1}, "type": "t"}}"#),
                (.post, "/v3/policies", #"{"policy": "x"}"#),
                (.post, "/v3/policies", #"{"policy": {"blob": "b", "type": "t""#),
                (.post, "/v3/policies", #"[]"#),
                (.patch, "/v3/policies/\(policy)", #"{"policy": {}}"#),
                (.patch, "/v3/policies/\(policy)", #"{"policy": {"type": 7}}"#),
            ] {
                api.expectError(try await api.call(method, path, body: body), .badRequest)
            }
            api.expectError(try await api.call(.patch, "/v3/policies/\(policy)", body: #"{"policy": {"id": "other"}}"#), .badRequest,
                            "Cannot change policy ID")
            #expect(try await api.call(.get, "/v3/policies").json?["policies"]?.arrayValue?.count == 3)
            #expect(try await api.call(.get, "/v3/policies/\(policy)").json?["policy"]?["colour"] == "blue")
            api.expectError(try await api.call(.get, "/v3/policies/nope"), .notFound, "Could not find policy: nope.")
            api.expectError(try await api.call(.patch, "/v3/policies/nope", body: #"{"policy": {"type": "t"}}"#), .notFound)
            api.expectError(try await api.call(.delete, "/v3/policies/nope"), .notFound)

            // Associations, and which policy an endpoint gets: its own, else its service's in its
            // region or the nearest parent region, else its service's.
            let (serviceID, endpoints) = try await catalogFixture(api)
            let base = "/v3/policies"
            api.expectError(try await api.call(.get, "/v3/endpoints/\(endpoints[3])/OS-ENDPOINT-POLICY/policy"), .notFound,
                            "No policy is associated with endpoint \(endpoints[3]).")
            #expect(try await api.call(.put, "\(base)/\(policy)/OS-ENDPOINT-POLICY/services/\(serviceID)").status == .noContent)
            #expect(try await api.call(.put, "\(base)/\(other)/OS-ENDPOINT-POLICY/services/\(serviceID)/regions/RegionOne").status == .noContent)
            func policyOf(_ endpoint: String) async throws -> String? {
                let answer = try await api.call(.get, "/v3/endpoints/\(endpoint)/OS-ENDPOINT-POLICY/policy")
                #expect(answer.json?["policy"]?["links"]?["self"]?.stringValue?.hasSuffix("/v3/policies/\(answer.json?["policy"]?["id"]?.stringValue ?? "")") == true)
                return answer.json?["policy"]?["id"]?.stringValue
            }
            #expect(try await policyOf(endpoints[0]) == other, "service in its region")
            #expect(try await policyOf(endpoints[3]) == other, "service in the parent region")
            #expect(try await policyOf(endpoints[2]) == policy, "the service's, for an endpoint without a region")
            #expect(try await api.call(.put, "\(base)/\(third)/OS-ENDPOINT-POLICY/endpoints/\(endpoints[3])").status == .noContent)
            #expect(try await policyOf(endpoints[3]) == third, "its own first")
            #expect(try await api.call(.get, "\(base)/\(third)/OS-ENDPOINT-POLICY/endpoints/\(endpoints[3])").status == .noContent)
            #expect(try await api.call(.head, "\(base)/\(third)/OS-ENDPOINT-POLICY/endpoints/\(endpoints[3])").status == .noContent)
            #expect(try await api.call(.get, "\(base)/\(other)/OS-ENDPOINT-POLICY/services/\(serviceID)/regions/RegionOne").status == .noContent)
            api.expectError(try await api.call(.get, "\(base)/\(policy)/OS-ENDPOINT-POLICY/endpoints/\(endpoints[3])"), .notFound,
                            "Could not find policy association.")
            api.expectError(try await api.call(.get, "\(base)/\(policy)/OS-ENDPOINT-POLICY/services/\(serviceID)/regions/Sub"), .notFound,
                            "Could not find policy association.")
            // The endpoints a policy reaches (a region reaches the regions below it).
            let reached = try await api.call(.get, "\(base)/\(other)/OS-ENDPOINT-POLICY/endpoints")
            #expect(Set(reached.json?["endpoints"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []) == [endpoints[0], endpoints[1], endpoints[3]])
            #expect(reached.json?["endpoints"]?.arrayValue?.first?["links"]?["self"]?.stringValue?.hasPrefix("http://controller:5000/v3/endpoints/") == true)
            let all = try await api.call(.get, "\(base)/\(policy)/OS-ENDPOINT-POLICY/endpoints")
            #expect(all.json?["endpoints"]?.arrayValue?.count == 4)
            // A target moves to the policy associated last.
            #expect(try await api.call(.put, "\(base)/\(policy)/OS-ENDPOINT-POLICY/endpoints/\(endpoints[3])").status == .noContent)
            #expect(try await policyOf(endpoints[3]) == policy)
            #expect(try await api.call(.delete, "\(base)/\(policy)/OS-ENDPOINT-POLICY/endpoints/\(endpoints[3])").status == .noContent)
            #expect(try await policyOf(endpoints[3]) == other)
            // What does not exist: 404 in Keystone's words.
            api.expectError(try await api.call(.put, "\(base)/nope/OS-ENDPOINT-POLICY/endpoints/\(endpoints[0])"), .notFound, "Could not find policy: nope.")
            api.expectError(try await api.call(.put, "\(base)/\(policy)/OS-ENDPOINT-POLICY/endpoints/nope"), .notFound, "Could not find endpoint: nope.")
            api.expectError(try await api.call(.put, "\(base)/\(policy)/OS-ENDPOINT-POLICY/services/nope"), .notFound, "Could not find service: nope.")
            api.expectError(try await api.call(.put, "\(base)/\(policy)/OS-ENDPOINT-POLICY/services/\(serviceID)/regions/nope"), .notFound,
                            "Could not find region: nope.")
            api.expectError(try await api.call(.get, "/v3/endpoints/nope/OS-ENDPOINT-POLICY/policy"), .notFound, "Could not find endpoint: nope.")
            api.expectError(try await api.call(.get, "\(base)/nope/OS-ENDPOINT-POLICY/endpoints"), .notFound)

            // A member or a reader of a project may do none of it.
            let (_, member) = try await addProjectUser(api.service, project: "p-member", user: "u-member", role: "member")
            let (_, reader) = try await addProjectUser(api.service, project: "p-reader", user: "u-reader", role: "reader")
            for token in [member, reader] {
                for (method, path, body) in [
                    (HTTPRequest.Method.get, "/v3/policies", nil), (.get, "/v3/policies/\(policy)", nil),
                    (.post, "/v3/policies", #"{"policy": {"blob": "b", "type": "t"}}"#),
                    (.patch, "/v3/policies/\(policy)", #"{"policy": {"type": "t"}}"#), (.delete, "/v3/policies/\(policy)", nil),
                    (.put, "\(base)/\(policy)/OS-ENDPOINT-POLICY/services/\(serviceID)", nil),
                    (.get, "\(base)/\(policy)/OS-ENDPOINT-POLICY/services/\(serviceID)", nil),
                    (.delete, "\(base)/\(policy)/OS-ENDPOINT-POLICY/services/\(serviceID)", nil),
                    (.get, "/v3/endpoints/\(endpoints[0])/OS-ENDPOINT-POLICY/policy", nil),
                    (.get, "\(base)/\(policy)/OS-ENDPOINT-POLICY/endpoints", nil),
                ] as [(HTTPRequest.Method, String, String?)] {
                    api.expectError(try await api.call(method, path, token: token, body: body), .forbidden)
                }
            }
            #expect(try await policyOf(endpoints[2]) == policy, "nothing changed")

            // Associations go with their endpoint, region, service or policy.
            #expect(try await api.call(.put, "\(base)/\(third)/OS-ENDPOINT-POLICY/endpoints/\(endpoints[2])").status == .noContent)
            #expect(try await api.call(.delete, "/v3/endpoints/\(endpoints[2])").status == .noContent)
            #expect(try await api.count("policy_associations", "policy_id", third) == 0)
            #expect(try await api.call(.delete, "/v3/policies/\(other)").status == .noContent)
            #expect(try await api.count("policy_associations", "policy_id", other) == 0)
            #expect(try await policyOf(endpoints[0]) == policy, "back to the service's")
            #expect(try await api.call(.delete, "/v3/services/\(serviceID)").status == .noContent)
            #expect(try await api.count("policy_associations", "policy_id", policy) == 0)
        }
    }

    // MARK: domain configuration

    @Test(arguments: TestDatabase.allCases)
    func domainSpecificConfiguration(backend: TestDatabase) async throws {
        try await withAPI(backend) { api in
            let domain = try api.id(try await api.call(.post, "/v3/domains", body: #"{"domain": {"name": "ldap-users"}}"#), "domain")
            let config = "/v3/domains/\(domain)/config"
            api.expectError(try await api.call(.get, config), .notFound,
                            "Could not find any options in domain configuration for domain \(domain).")
            // The sample's request, with the sensitive password, which is kept but never shown.
            let sample: JSON = ["identity": ["driver": "ldap"],
                                "ldap": ["url": "ldap://myldap.com:389/", "user_tree_dn": "ou=Users,dc=my_new_root,dc=org"]]
            let created = try await api.call(.put, config, body: #"""
                {"config": {"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://myldap.com:389/",
                 "user_tree_dn": "ou=Users,dc=my_new_root,dc=org", "password": "secret", "page_size": 50}}}
                """#)
            #expect(created.status == .created)
            var expected = sample
            if case .object(var groups) = expected, case .object(var ldap)? = groups["ldap"] {
                ldap["page_size"] = 50
                groups["ldap"] = .object(ldap)
                expected = .object(groups)
            }
            #expect(created.json == ["config": expected])
            #expect(try await api.call(.get, config).json == ["config": expected])
            #expect(try await api.call(.get, config + "/ldap").json == ["config": ["ldap": expected["ldap"]!]])
            #expect(try await api.call(.get, config + "/ldap/url").json == ["config": ["url": "ldap://myldap.com:389/"]])
            #expect(try await api.call(.head, config + "/ldap/url").status == .ok)
            api.expectError(try await api.call(.get, config + "/ldap/password"), .notFound,
                            "Could not find option password in group ldap in domain configuration for domain \(domain).")
            api.expectError(try await api.call(.get, config + "/ldap/use_tls"), .notFound,
                            "Could not find option use_tls in group ldap in domain configuration for domain \(domain).")
            api.expectError(try await api.call(.get, config + "/nosuch"), .forbidden,
                            "Invalid domain specific configuration: Group nosuch is not supported for domain specific configurations.")
            api.expectError(try await api.call(.get, config + "/ldap/nosuch"), .forbidden,
                            "Invalid domain specific configuration: Option nosuch in group ldap is not supported for domain specific configurations.")
            #expect(try await api.count("domain_config", "domain_id", domain) == 5, "the password is stored")

            // Refused: 403 in Keystone's words (400 for what is not even an object); nothing changes.
            for (method, path, body, status, message) in [
                (HTTPRequest.Method.put, config, #"{"config": {}}"#, HTTPResponse.Status.forbidden,
                 "Invalid domain specific configuration: No options specified."),
                (.put, config, #"{}"#, .forbidden, "Invalid domain specific configuration: No options specified."),
                (.put, config, #"{"config": {"ldap": "x"}}"#, .forbidden,
                 "Invalid domain specific configuration: The value of group ldap specified in the config should be a dictionary of options."),
                (.put, config, #"{"config": {"ldap": {}}}"#, .forbidden,
                 "Invalid domain specific configuration: The value of group ldap specified in the config should be a dictionary of options."),
                (.put, config, #"{"config": {"security_compliance": {"password_regex": "x"}}}"#, .forbidden,
                 "Invalid domain specific configuration: Group security_compliance is not supported for domain specific configurations."),
                (.patch, config, #"{"config": {"ldap": {"hostname": "x"}}}"#, .forbidden,
                 "Invalid domain specific configuration: Option hostname in group ldap is not supported for domain specific configurations."),
                (.patch, config + "/ldap", #"{"config": {"identity": {"driver": "sql"}}}"#, .forbidden,
                 "Invalid domain specific configuration: request to update group ldap, but config provided contains group identity instead."),
                (.patch, config + "/ldap", #"{"config": {"identity": {"driver": "sql"}, "ldap": {"url": "x"}}}"#, .forbidden,
                 "Invalid domain specific configuration: Trying to update group ldap, so that, and only that, group must be specified in the config."),
                (.patch, config + "/ldap/url", #"{"config": {"url": "a", "user": "b"}}"#, .forbidden,
                 "Invalid domain specific configuration: Trying to update option url in group ldap, so that, and only that, option must be specified  in the config."),
                (.patch, config + "/ldap/url", #"{"config": {"user": "b"}}"#, .forbidden,
                 "Invalid domain specific configuration: Trying to update option url in group ldap, but config provided contains option user instead."),
                (.patch, config + "/ldap/url", #"{"url": "not wrapped"}"#, .forbidden,
                 "Invalid domain specific configuration: The value of group ldap specified in the config should be a dictionary of options."),
                (.patch, config + "/identity/list_limit", #"{"config": {"list_limit": 5}}"#, .notFound,
                 "Could not find option list_limit in group identity in domain configuration for domain \(domain)."),
                (.put, config, #"{"config": "x"}"#, .badRequest, nil),
                (.put, config, #"{"config": ["ldap"]}"#, .badRequest, nil),
                (.patch, config, #"{"config": 1}"#, .badRequest, nil),
                (.put, config, #"{"config": {"ldap": {"url": "x"}"#, .badRequest, nil),
                (.put, "/v3/domains/nope/config", #"{"config": {"identity": {"driver": "sql"}}}"#, .notFound, "Could not find domain: nope."),
                (.get, "/v3/domains/nope/config", nil, .notFound, "Could not find domain: nope."),
                (.delete, config + "/identity/list_limit", nil, .notFound,
                 "Could not find option list_limit in group identity in domain configuration for domain \(domain)."),
            ] as [(HTTPRequest.Method, String, String?, HTTPResponse.Status, String?)] {
                api.expectError(try await api.call(method, path, body: body), status, message)
            }
            #expect(try await api.call(.get, config).json == ["config": expected])

            // Updates: the whole configuration, one group, one option.
            let patched = try await api.call(.patch, config, body: #"{"config": {"ldap": {"url": "http://myldap/my_new_root"}}}"#)
            #expect(patched.status == .ok)
            #expect(patched.json?["config"]?["ldap"]?["url"] == "http://myldap/my_new_root" && patched.json?["config"]?["identity"]?["driver"] == "ldap")
            let group = try await api.call(.patch, config + "/ldap", body: #"{"config": {"ldap": {"user_tree_dn": "ou=Users,dc=root,dc=org"}}}"#)
            #expect(group.json?["config"]?["ldap"]?["user_tree_dn"] == "ou=Users,dc=root,dc=org")
            let option = try await api.call(.patch, config + "/ldap/url", body: #"{"config": {"url": "http://myldap/my_other_root"}}"#)
            #expect(option.status == .ok)
            #expect(option.json?["config"]?["ldap"]?["url"] == "http://myldap/my_other_root")
            #expect(option.json?["config"]?["ldap"]?["password"] == nil)
            #expect(try await api.call(.patch, config + "/ldap/password", body: #"{"config": {"password": "new"}}"#).status == .ok,
                    "a set sensitive option may be replaced")
            // Replacing it whole: 200 now that there is one.
            let replaced = try await api.call(.put, config, body: #"{"config": {"identity": {"driver": "sql"}}}"#)
            #expect(replaced.status == .ok)
            #expect(replaced.json == ["config": ["identity": ["driver": "sql"]]])
            #expect(try await api.count("domain_config", "domain_id", domain) == 1)

            // Deleting an option, a group, all.
            #expect(try await api.call(.put, config, body: #"{"config": {"identity": {"driver": "ldap", "list_limit": 10}, "ldap": {"url": "u"}}}"#).status == .ok)
            #expect(try await api.call(.delete, config + "/identity/list_limit").status == .noContent)
            api.expectError(try await api.call(.get, config + "/identity/list_limit"), .notFound)
            #expect(try await api.call(.delete, config + "/ldap").status == .noContent)
            api.expectError(try await api.call(.delete, config + "/ldap"), .notFound,
                            "Could not find group ldap in domain configuration for domain \(domain).")
            #expect(try await api.call(.get, config).json == ["config": ["identity": ["driver": "ldap"]]])
            #expect(try await api.call(.delete, config).status == .noContent)
            api.expectError(try await api.call(.get, config), .notFound)

            // The defaults.
            let defaults = try await api.call(.get, "/v3/domains/config/default")
            #expect(defaults.status == .ok)
            #expect(defaults.json?["config"]?["identity"] == ["driver": "sql", "list_limit": nil])
            #expect(defaults.json?["config"]?["ldap"]?["url"] == "ldap://localhost" && defaults.json?["config"]?["ldap"]?["user"] == .null)
            #expect(defaults.json?["config"]?["ldap"]?["suffix"] == "cn=example,cn=com")
            #expect(defaults.json?["config"]?["ldap"]?["password"] == nil)
            #expect(defaults.json?["config"]?["ldap"]?.objectValue?.count == 49, "Keystone's whitelist")
            #expect(try await api.call(.get, "/v3/domains/config/ldap/default").json?["config"]?.objectValue?.keys.sorted() == ["ldap"])
            #expect(try await api.call(.get, "/v3/domains/config/identity/driver/default").json == ["config": ["driver": "sql"]])
            api.expectError(try await api.call(.get, "/v3/domains/config/ldap/password/default"), .forbidden,
                            "Invalid domain specific configuration: Reading the default for option password in group ldap is not supported.")
            api.expectError(try await api.call(.get, "/v3/domains/config/nosuch/default"), .forbidden)

            // Policy: admins only (system readers may read).
            let (_, member) = try await addProjectUser(api.service, project: "p-member", user: "u-member", role: "member")
            let (_, reader) = try await addProjectUser(api.service, project: "p-reader", user: "u-reader", role: "reader")
            #expect(try await api.call(.put, config, body: #"{"config": {"identity": {"driver": "ldap"}}}"#).status == .created)
            for token in [member, reader] {
                for (method, path, body) in [
                    (HTTPRequest.Method.get, config, nil), (.get, config + "/identity/driver", nil),
                    (.put, config, #"{"config": {"identity": {"driver": "sql"}}}"#),
                    (.patch, config, #"{"config": {"identity": {"driver": "sql"}}}"#), (.delete, config, nil),
                    (.get, "/v3/domains/config/default", nil),
                ] as [(HTTPRequest.Method, String, String?)] {
                    api.expectError(try await api.call(method, path, token: token, body: body), .forbidden)
                }
            }
            #expect(try await api.call(.get, config).json == ["config": ["identity": ["driver": "ldap"]]])

            // The configuration goes with its domain.
            #expect(try await api.call(.patch, "/v3/domains/\(domain)", body: #"{"domain": {"enabled": false}}"#).status == .ok)
            #expect(try await api.call(.delete, "/v3/domains/\(domain)").status == .noContent)
            #expect(try await api.count("domain_config", "domain_id", domain) == 0)
        }
    }

    // MARK: OS-EP-FILTER

    @Test(arguments: TestDatabase.allCases)
    func endpointGroupsAndProjectFilters(backend: TestDatabase) async throws {
        try await withAPI(backend) { api in
            let (serviceID, endpoints) = try await catalogFixture(api)
            let groups = "/v3/OS-EP-FILTER/endpoint_groups"
            // The sample's request.
            let created = try await api.call(.post, groups, body: """
                {"endpoint_group": {"description": "endpoint group description", "filters": {"interface": "admin", "service_id": "\(serviceID)"},
                 "name": "endpoint group name"}}
                """)
            #expect(created.status == .created)
            let group = try api.id(created, "endpoint_group")
            #expect(created.json == ["endpoint_group": [
                "id": .string(group), "name": "endpoint group name", "description": "endpoint group description",
                "filters": ["interface": "admin", "service_id": .string(serviceID)],
                "links": ["self": .string("http://controller:5000/v3/OS-EP-FILTER/endpoint_groups/\(group)")],
            ]])
            let bare = try await api.call(.post, groups, body: #"{"endpoint_group": {"name": "no region", "filters": {"region_id": null}}}"#)
            #expect(bare.json?["endpoint_group"]?["description"] == .null)
            let noRegion = try api.id(bare, "endpoint_group")
            #expect(try await api.call(.get, "\(groups)/\(noRegion)/endpoints").json?["endpoints"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
                    .filter(endpoints.contains) == [endpoints[2]])
            #expect(try await api.call(.get, groups).json?["endpoint_groups"]?.arrayValue?.count == 2)
            #expect(try await api.call(.get, groups + "?name=no%20region").json?["endpoint_groups"]?.arrayValue?.first?["id"]?.stringValue == noRegion)
            #expect(try await api.call(.get, "\(groups)/\(group)").json == created.json)

            // Malformed: 400, nothing made or changed.
            for (method, path, body, message) in [
                (HTTPRequest.Method.post, groups, #"{"endpoint_group": {"name": "g", "filters": {}}}"#, "filters field is required and cannot be empty"),
                (.post, groups, #"{"endpoint_group": {"name": "g", "filters": {"enabled": true}}}"#,
                 "Expecting to find service_id or region_id or interface in endpoint_group. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."),
                (.post, groups, #"{"endpoint_group": {"name": "g", "filters": {"url": "x"}}}"#, nil),
                (.post, groups, #"{"endpoint_group": {"name": "g", "filters": {"interface": "outside"}}}"#, nil),
                (.post, groups, #"{"endpoint_group": {"name": "g", "filters": {"service_id": 5}}}"#, nil),
                (.post, groups, #"{"endpoint_group": {"filters": {"interface": "public"}}}"#, nil),
                (.post, groups, #"{"endpoint_group": {"name": "g", "filters": {"interface": "public"}, "colour": "red"}}"#, nil),
                (.post, groups, #"{"endpoint_group": {"name": "g", "filters": "interface=public"}}"#, nil),
                (.post, groups, #"{"endpoint_group": []}"#, nil),
                (.post, groups, #"{"endpoint_group": {"name": "g""#, nil),
                (.patch, "\(groups)/\(group)", #"{"endpoint_group": {}}"#, nil),
                (.patch, "\(groups)/\(group)", #"{"endpoint_group": {"id": "x"}}"#, nil),
                (.patch, "\(groups)/\(group)", #"{"endpoint_group": {"filters": {"enabled": false}}}"#, nil),
                (.get, groups + "?colour=red", nil, nil),
            ] as [(HTTPRequest.Method, String, String?, String?)] {
                api.expectError(try await api.call(method, path, body: body), .badRequest, message)
            }
            #expect(try await api.call(.get, groups).json?["endpoint_groups"]?.arrayValue?.count == 2)
            #expect(try await api.call(.get, "\(groups)/\(group)").json == created.json)
            api.expectError(try await api.call(.get, "\(groups)/nope"), .notFound, "Could not find Endpoint Group: nope.")
            api.expectError(try await api.call(.patch, "\(groups)/nope", body: #"{"endpoint_group": {"name": "x"}}"#), .notFound)
            api.expectError(try await api.call(.delete, "\(groups)/nope"), .notFound)
            api.expectError(try await api.call(.get, "\(groups)/nope/endpoints"), .notFound)

            let updated = try await api.call(.patch, "\(groups)/\(group)", body: #"{"endpoint_group": {"filters": {"interface": "public", "service_id": "\#(serviceID)"}, "description": null}}"#)
            #expect(updated.status == .ok && updated.json?["endpoint_group"]?["description"] == .null)
            #expect(updated.json?["endpoint_group"]?["filters"] == ["interface": "public", "service_id": .string(serviceID)])
            let selected = try await api.call(.get, "\(groups)/\(group)/endpoints")
            #expect(selected.json?["endpoints"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [endpoints[0], endpoints[2]].sorted())

            // A project given one endpoint sees only it in its catalog.
            let (project, member) = try await addProjectUser(api.service, project: "filtered", user: "u-filtered", role: "member")
            let everything = try await api.catalogEndpoints(of: api.admin)
            #expect(everything.isSuperset(of: endpoints) && everything.count > endpoints.count, "the admin sees all, identity included")
            #expect(try await api.catalogEndpoints(of: member) == everything, "no filter yet")
            let projectEndpoint = "/v3/OS-EP-FILTER/projects/\(project)/endpoints/\(endpoints[1])"
            #expect(try await api.call(.put, projectEndpoint).status == .noContent)
            api.expectError(try await api.call(.put, projectEndpoint), .conflict,
                            "Conflict occurred attempting to store project_endpoint - Duplicate entry.")
            #expect(try await api.call(.get, projectEndpoint).status == .noContent)
            #expect(try await api.call(.head, projectEndpoint).status == .noContent)
            api.expectError(try await api.call(.get, "/v3/OS-EP-FILTER/projects/\(project)/endpoints/\(endpoints[0])"), .notFound,
                            "Endpoint \(endpoints[0]) not found in project \(project)")
            #expect(try await api.catalogEndpoints(of: member) == [endpoints[1]], "the token validated again shows the filtered catalog")
            let fresh = try await api.service.issue(AuthRequest(method: .password(.name("u-filtered", domain: .id("default")), password: "pw"),
                                                                scope: .project(.id(project)))).token
            let catalog = try await api.call(.get, "/v3/auth/catalog", token: fresh)
            #expect(catalog.json?["catalog"]?.arrayValue?.count == 1, "services without a given endpoint are left out")
            #expect(catalog.json?["catalog"]?.arrayValue?.first?["endpoints"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [endpoints[1]])
            #expect(try await api.catalogEndpoints(of: api.admin) == everything, "other projects see everything")

            // And an endpoint group's endpoints besides.
            let groupProject = "\(groups)/\(group)/projects/\(project)"
            #expect(try await api.call(.put, groupProject).status == .noContent)
            api.expectError(try await api.call(.put, groupProject), .conflict)
            #expect(try await api.catalogEndpoints(of: member) == [endpoints[0], endpoints[1], endpoints[2]])
            let association = try await api.call(.get, groupProject)
            #expect(association.json == ["project_endpoint_group": [
                "endpoint_group_id": .string(group), "project_id": .string(project),
                "links": ["self": .string("http://controller:5000\(groupProject)")],
            ]])
            api.expectError(try await api.call(.get, "\(groups)/\(noRegion)/projects/\(project)"), .notFound,
                            "Endpoint Group Project Association not found")
            let listed = try await api.call(.get, "/v3/OS-EP-FILTER/projects/\(project)/endpoints")
            #expect(Set(listed.json?["endpoints"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []) == [endpoints[0], endpoints[1], endpoints[2]])
            #expect(listed.json?["endpoints"]?.arrayValue?.first?["links"]?["self"] != nil && listed.json?["links"]?["self"] != nil)
            #expect(try await api.call(.get, "/v3/OS-EP-FILTER/projects/\(project)/endpoint_groups").json?["endpoint_groups"]?
                .arrayValue?.compactMap { $0["id"]?.stringValue } == [group])
            #expect(try await api.call(.get, "\(groups)/\(group)/projects").json?["projects"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [project])
            #expect(try await api.call(.get, "\(groups)/nope/projects").json?["projects"]?.arrayValue?.isEmpty == true, "as Keystone: an empty list")
            let projects = try await api.call(.get, "/v3/OS-EP-FILTER/endpoints/\(endpoints[1])/projects")
            #expect(projects.json?["projects"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [project])
            #expect(projects.json?["projects"]?.arrayValue?.first?["links"]?["self"]?.stringValue == "http://controller:5000/v3/projects/\(project)")
            #expect(try await api.call(.get, "/v3/OS-EP-FILTER/endpoints/\(endpoints[3])/projects").json?["projects"]?.arrayValue?.isEmpty == true)

            // What does not exist.
            api.expectError(try await api.call(.put, "/v3/OS-EP-FILTER/projects/\(project)/endpoints/nope"), .notFound, "Could not find endpoint: nope.")
            api.expectError(try await api.call(.put, "/v3/OS-EP-FILTER/projects/nope/endpoints/\(endpoints[0])"), .notFound, "Could not find project: nope.")
            api.expectError(try await api.call(.delete, "/v3/OS-EP-FILTER/projects/\(project)/endpoints/\(endpoints[3])"), .notFound)
            api.expectError(try await api.call(.put, "\(groups)/nope/projects/\(project)"), .notFound, "Could not find Endpoint Group: nope.")
            api.expectError(try await api.call(.put, "\(groups)/\(group)/projects/nope"), .notFound, "Could not find project: nope.")
            api.expectError(try await api.call(.get, "/v3/OS-EP-FILTER/projects/nope/endpoints"), .notFound)
            api.expectError(try await api.call(.get, "/v3/OS-EP-FILTER/projects/nope/endpoint_groups"), .notFound)
            api.expectError(try await api.call(.get, "/v3/OS-EP-FILTER/endpoints/nope/projects"), .notFound)

            // Members and readers may do none of it (the filtered member neither).
            let (_, reader) = try await addProjectUser(api.service, project: "p-reader", user: "u-reader", role: "reader")
            for token in [member, reader] {
                for (method, path, body) in [
                    (HTTPRequest.Method.get, groups, nil), (.get, "\(groups)/\(group)", nil),
                    (.post, groups, #"{"endpoint_group": {"name": "g", "filters": {"interface": "public"}}}"#),
                    (.patch, "\(groups)/\(group)", #"{"endpoint_group": {"name": "g"}}"#), (.delete, "\(groups)/\(group)", nil),
                    (.get, "\(groups)/\(group)/endpoints", nil), (.get, "\(groups)/\(group)/projects", nil),
                    (.put, "\(groups)/\(noRegion)/projects/\(project)", nil), (.get, groupProject, nil), (.delete, groupProject, nil),
                    (.get, "/v3/OS-EP-FILTER/projects/\(project)/endpoint_groups", nil),
                    (.put, "/v3/OS-EP-FILTER/projects/\(project)/endpoints/\(endpoints[3])", nil), (.get, projectEndpoint, nil),
                    (.delete, projectEndpoint, nil), (.get, "/v3/OS-EP-FILTER/projects/\(project)/endpoints", nil),
                    (.get, "/v3/OS-EP-FILTER/endpoints/\(endpoints[1])/projects", nil),
                ] as [(HTTPRequest.Method, String, String?)] {
                    api.expectError(try await api.call(method, path, token: token, body: body), .forbidden)
                }
            }
            #expect(try await api.catalogEndpoints(of: member) == [endpoints[0], endpoints[1], endpoints[2]], "nothing changed")

            // Removing the associations, and what removes them.
            #expect(try await api.call(.delete, groupProject).status == .noContent)
            api.expectError(try await api.call(.delete, groupProject), .notFound, "Endpoint Group Project Association not found")
            #expect(try await api.catalogEndpoints(of: member) == [endpoints[1]])
            #expect(try await api.call(.put, groupProject).status == .noContent)
            #expect(try await api.call(.delete, "/v3/endpoints/\(endpoints[1])").status == .noContent)
            #expect(try await api.count("project_endpoints", "endpoint_id", endpoints[1]) == 0)
            #expect(try await api.catalogEndpoints(of: member) == [endpoints[0], endpoints[2]])
            #expect(try await api.call(.delete, "\(groups)/\(group)").status == .noContent)
            #expect(try await api.count("project_endpoint_groups", "endpoint_group_id", group) == 0)
            #expect(try await api.catalogEndpoints(of: member) == everything.subtracting([endpoints[1]]), "nothing given: everything again")
            let (other, _) = try await addProjectUser(api.service, project: "gone", user: "u-gone", role: "member")
            #expect(try await api.call(.put, "/v3/OS-EP-FILTER/projects/\(other)/endpoints/\(endpoints[0])").status == .noContent)
            #expect(try await api.call(.put, "\(groups)/\(noRegion)/projects/\(other)").status == .noContent)
            #expect(try await api.call(.delete, "/v3/projects/\(other)").status == .noContent)
            #expect(try await api.count("project_endpoints", "project_id", other) == 0)
            #expect(try await api.count("project_endpoint_groups", "project_id", other) == 0)
        }
    }
}
