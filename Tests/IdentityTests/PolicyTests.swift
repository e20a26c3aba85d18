import Foundation
@testable import Identity
import TestSupport
import Testing

@Suite struct PolicyTests {
    // A few of Keystone's secure-RBAC defaults, as keystone/common/policies writes them.
    let defaults: [(name: String, rule: String)] = [
        ("admin_required", "role:admin"),
        ("service_role", "role:service"),
        ("service_or_admin", "rule:admin_required or rule:service_role"),
        ("owner", "user_id:%(user_id)s"),
        ("admin_or_owner", "rule:admin_required or rule:owner"),
        ("identity:get_project",
         "(role:reader and system_scope:all) or (role:reader and domain_id:%(target.project.domain_id)s) or project_id:%(target.project.id)s"),
        ("identity:create_user", "role:admin and system_scope:all"),
        ("identity:list_projects", "(role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)"),
        ("nobody", "!"),
        ("anybody", ""),
        ("loop", "rule:loop"),
        ("not_a_member", "not role:member"),
    ]

    func member(of project: String, user: String = "u1") -> PolicyCredentials {
        PolicyCredentials(roles: ["member", "reader"], attributes: ["user_id": user, "project_id": project, "domain_id": "default"])
    }

    let systemAdmin = PolicyCredentials(roles: ["admin", "member", "reader"], attributes: ["user_id": "admin", "system_scope": "all"])

    @Test func secureRBACDefaultsDecideAsKeystoneDoes() throws {
        let policy = try Policy(defaults: defaults)
        let projectA = ["target.project.id": "A", "target.project.domain_id": "other"]
        #expect(policy.enforce("identity:get_project", credentials: member(of: "A"), target: projectA))
        #expect(!policy.enforce("identity:get_project", credentials: member(of: "B"), target: projectA),
                "a token scoped to B cannot read project A")
        #expect(policy.enforce("identity:get_project", credentials: systemAdmin, target: projectA))
        #expect(policy.enforce("identity:create_user", credentials: systemAdmin))
        #expect(!policy.enforce("identity:create_user", credentials: member(of: "A")), "a member cannot create users")
        #expect(!policy.enforce("identity:create_user",
                                credentials: PolicyCredentials(roles: ["admin"], attributes: ["project_id": "A"])),
                "project-scoped admin is not system-scoped")
        #expect(policy.enforce("admin_or_owner", credentials: member(of: "A", user: "u7"), target: ["user_id": "u7"]))
        #expect(!policy.enforce("admin_or_owner", credentials: member(of: "A", user: "u7"), target: ["user_id": "u8"]))
        #expect(!policy.enforce("nobody", credentials: systemAdmin))
        #expect(policy.enforce("anybody", credentials: member(of: "A")))
        #expect(!policy.enforce("loop", credentials: systemAdmin), "a self-referring rule refuses instead of looping")
        #expect(!policy.enforce("identity:unknown_action", credentials: systemAdmin), "unknown actions are refused")
        #expect(!policy.enforce("not_a_member", credentials: member(of: "A")))
        #expect(policy.enforce("not_a_member", credentials: PolicyCredentials(roles: ["reader"])))
        // A missing target value never matches.
        #expect(!policy.enforce("admin_or_owner", credentials: member(of: "A"), target: [:]))
    }

    @Test func parsingPrecedenceAndErrors() throws {
        #expect(try Policy.parse("role:a or role:b and not role:c")
                == .any([.role("a"), .all([.role("b"), .not(.role("c"))])]))
        #expect(try Policy.parse("(role:a or role:b) and role:c") == .all([.any([.role("a"), .role("b")]), .role("c")]))
        #expect(try Policy.parse("project_id:%(target.project.id)s") == .match(attribute: "project_id", value: .target("target.project.id")))
        #expect(try Policy.parse("is_admin_project:True") == .match(attribute: "is_admin_project", value: .literal("True")))
        for bad in ["role:a or", "(role:a", "role:a)", "and role:a", "nonsense", "role:"] {
            #expect(throws: PolicySyntaxError.self, "\(bad)") { try Policy.parse(bad) }
        }
    }

    @Test func yamlOverridesReplaceDefaultsRuleByRule() throws {
        var policy = try Policy(defaults: defaults)
        try policy.override(yaml: """
            # operators loosen or tighten one rule at a time
            "identity:create_user": "rule:admin_required"
            "custom:rule": "role:auditor or rule:admin_required"
            """, file: "policy.yaml")
        #expect(policy.enforce("identity:create_user", credentials: PolicyCredentials(roles: ["admin"], attributes: ["project_id": "A"])))
        #expect(policy.enforce("custom:rule", credentials: PolicyCredentials(roles: ["auditor"])))
        #expect(policy.enforce("identity:get_project", credentials: member(of: "A"), target: ["target.project.id": "A"]),
                "rules not in the file keep their defaults")
        #expect(throws: PolicySyntaxError.self) { try policy.override(yaml: "\"x\": \"role:a or\"", file: "p.yaml") }
        #expect(throws: PolicySyntaxError.self) { try policy.override(yaml: "- a\n- b\n", file: "p.yaml") }
        #expect(throws: PolicySyntaxError.self) { try policy.override(yaml: "\"x\": 3\n", file: "p.yaml") }
    }
}

@Suite struct KeystoneDefaultsTests {
    let policy: Policy

    init() throws { policy = try Policy(defaults: KeystonePolicy.defaults) }

    func projectScoped(_ roles: Set<String>, project: String = "A", user: String = "u1", projectDomain: String = "default") -> PolicyCredentials {
        PolicyCredentials(roles: roles, attributes: ["user_id": user, "project_id": project, "token.project.domain.id": projectDomain])
    }

    @Test func everyDefaultParsesAndNamesAreUnique() throws {
        #expect(KeystonePolicy.defaults.count > 80)
        #expect(Set(KeystonePolicy.defaults.map(\.name)).count == KeystonePolicy.defaults.count)
        for rule in KeystonePolicy.defaults where rule.name.hasPrefix("identity:") {
            #expect(!rule.operations.isEmpty, "\(rule.name) documents no operation")
        }
    }

    @Test func adminsMembersAndReadersDecideAsInKeystone() {
        let admin = projectScoped(["admin", "member", "reader"])
        let member = projectScoped(["member", "reader"])
        #expect(policy.enforce("identity:create_user", credentials: admin, target: ["target.user.domain_id": "default"]))
        #expect(!policy.enforce("identity:create_user", credentials: member, target: ["target.user.domain_id": "default"]))
        #expect(policy.enforce("identity:get_project", credentials: member, target: ["target.project.id": "A", "target.project.domain_id": "default"]))
        #expect(!policy.enforce("identity:get_project", credentials: member, target: ["target.project.id": "B", "target.project.domain_id": "default"]))
        #expect(!policy.enforce("identity:list_projects", credentials: member))
        let systemReader = PolicyCredentials(roles: ["reader"], attributes: ["user_id": "r", "system_scope": "all"])
        #expect(policy.enforce("identity:list_users", credentials: systemReader))
        #expect(!policy.enforce("identity:create_user", credentials: systemReader, target: ["target.user.domain_id": "default"]))
        // A user validates their own token; someone else's needs a reader on the system.
        #expect(policy.enforce("identity:validate_token", credentials: member, target: ["target.token.user_id": "u1"]))
        #expect(!policy.enforce("identity:validate_token", credentials: member, target: ["target.token.user_id": "u2"]))
        // Application credentials are their owner's business.
        #expect(policy.enforce("identity:create_application_credential", credentials: member, target: ["user_id": "u1"]))
        #expect(!policy.enforce("identity:create_application_credential", credentials: member, target: ["user_id": "u2"]))
    }

    @Test func constantsOnTheLeftAndNoneCompareWithTheTarget() throws {
        let rules = try Policy(defaults: [
            ("managed", "'manager':%(target.role.name)s or 'member':%(target.role.name)s"),
            ("unset", "None:%(target.role.domain_id)s"),
            ("unscoped_domain", "not domain_id:None"),
        ])
        let anyone = PolicyCredentials(roles: [])
        #expect(rules.enforce("managed", credentials: anyone, target: ["target.role.name": "member"]))
        #expect(!rules.enforce("managed", credentials: anyone, target: ["target.role.name": "admin"]))
        #expect(rules.enforce("unset", credentials: anyone, target: [:]))
        #expect(!rules.enforce("unset", credentials: anyone, target: ["target.role.domain_id": "d1"]))
        #expect(!rules.enforce("unscoped_domain", credentials: anyone))
        #expect(rules.enforce("unscoped_domain", credentials: PolicyCredentials(roles: [], attributes: ["domain_id": "d1"])))
    }

    @Test func sampleFileListsEveryRuleAndParsesBackAsOverrides() throws {
        let sample = Policy.sampleFile(KeystonePolicy.defaults)
        for rule in KeystonePolicy.defaults { #expect(sample.contains("#\"\(rule.name)\": ")) }
        // Uncommented, the sample is a valid policy file equal to the defaults.
        let uncommented = sample.split(separator: "\n").filter { $0.hasPrefix("#\"") }.map { $0.dropFirst() }.joined(separator: "\n")
        var overridden = policy
        try overridden.override(yaml: uncommented, file: "sample")
        #expect(overridden.rules == policy.rules)
    }
}
