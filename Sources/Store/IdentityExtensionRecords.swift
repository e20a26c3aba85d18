import Foundation

// The rows of migration 26: the rest of Keystone v3 beyond users, projects, roles and the catalog.

/// A credential (`/v3/credentials`): its blob is stored encrypted; `keyHash` names the
/// credential key that encrypted it (so a rotation knows what to re-encrypt).
public struct CredentialRow: Codable, Sendable, Equatable {
    public var id: String
    public var userID: String
    public var projectID: String?
    public var type: String
    public var encryptedBlob: String
    public var keyHash: String
    /// Other attributes a client set, as a JSON object.
    public var extra: String
    public var createdAt: Int64

    public init(id: String, userID: String, projectID: String?, type: String, encryptedBlob: String, keyHash: String,
                extra: String = "{}", createdAt: Int64) {
        self.id = id; self.userID = userID; self.projectID = projectID; self.type = type
        self.encryptedBlob = encryptedBlob; self.keyHash = keyHash; self.extra = extra; self.createdAt = createdAt
    }
}

/// An OS-TRUST trust: the trustor lets the trustee act with some of its roles on a project.
public struct TrustRow: Codable, Sendable, Equatable {
    public var id: String
    public var trustorUserID: String
    public var trusteeUserID: String
    public var projectID: String?
    public var impersonation: Bool
    /// Unix milliseconds, or nil for never.
    public var expiresAt: Int64?
    /// nil: unlimited.
    public var remainingUses: Int?
    public var allowRedelegation: Bool
    public var redelegationCount: Int
    public var redelegatedTrustID: String?
    public var extra: String
    /// Set when the trust was deleted (kept so its tokens and redelegations can be refused).
    public var deletedAt: Int64?
    public var createdAt: Int64

    public init(id: String, trustorUserID: String, trusteeUserID: String, projectID: String?, impersonation: Bool,
                expiresAt: Int64?, remainingUses: Int?, allowRedelegation: Bool, redelegationCount: Int,
                redelegatedTrustID: String?, extra: String = "{}", createdAt: Int64) {
        self.id = id; self.trustorUserID = trustorUserID; self.trusteeUserID = trusteeUserID; self.projectID = projectID
        self.impersonation = impersonation; self.expiresAt = expiresAt; self.remainingUses = remainingUses
        self.allowRedelegation = allowRedelegation; self.redelegationCount = redelegationCount
        self.redelegatedTrustID = redelegatedTrustID; self.extra = extra; self.deletedAt = nil; self.createdAt = createdAt
    }
}

public struct TrustRoleRow: Codable, Sendable, Equatable {
    public var trustID: String
    public var roleID: String

    public init(trustID: String, roleID: String) { self.trustID = trustID; self.roleID = roleID }
}

public struct ProjectTagRow: Codable, Sendable, Equatable {
    public var projectID: String
    public var name: String

    public init(projectID: String, name: String) { self.projectID = projectID; self.name = name }
}

/// One option of a domain's identity configuration (`/v3/domains/{id}/config`); `value` is JSON.
public struct DomainConfigRow: Codable, Sendable, Equatable {
    public var domainID: String
    public var groupName: String
    public var optionName: String
    public var value: String
    public var sensitive: Bool

    public init(domainID: String, groupName: String, optionName: String, value: String, sensitive: Bool = false) {
        self.domainID = domainID; self.groupName = groupName; self.optionName = optionName; self.value = value
        self.sensitive = sensitive
    }
}

/// A stored policy blob (`/v3/policies`), kept as Keystone keeps it: opaque.
public struct PolicyRow: Codable, Sendable, Equatable {
    public var id: String
    public var type: String
    public var blob: String
    public var extra: String
    public var createdAt: Int64

    public init(id: String, type: String, blob: String, extra: String = "{}", createdAt: Int64) {
        self.id = id; self.type = type; self.blob = blob; self.extra = extra; self.createdAt = createdAt
    }
}

/// OS-ENDPOINT-POLICY: a policy associated with an endpoint, a service, or a service in a
/// region (nil where not given). Deleting the endpoint, service or region deletes it.
public struct PolicyAssociationRow: Codable, Sendable, Equatable {
    public var id: String
    public var policyID: String
    public var endpointID: String?
    public var serviceID: String?
    public var regionID: String?

    public init(id: String, policyID: String, endpointID: String? = nil, serviceID: String? = nil, regionID: String? = nil) {
        self.id = id; self.policyID = policyID; self.endpointID = endpointID; self.serviceID = serviceID; self.regionID = regionID
    }
}

/// OS-EP-FILTER: a named set of endpoints, chosen by `filters` (a JSON object of
/// `interface`, `service_id`, `region_id`).
public struct EndpointGroupRow: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    /// nil when none was given (Keystone shows `null`).
    public var description: String?
    public var filters: String
    public var createdAt: Int64

    public init(id: String, name: String, description: String? = nil, filters: String, createdAt: Int64) {
        self.id = id; self.name = name; self.description = description; self.filters = filters; self.createdAt = createdAt
    }
}

public struct ProjectEndpointRow: Codable, Sendable, Equatable {
    public var projectID: String
    public var endpointID: String

    public init(projectID: String, endpointID: String) { self.projectID = projectID; self.endpointID = endpointID }
}

public struct ProjectEndpointGroupRow: Codable, Sendable, Equatable {
    public var endpointGroupID: String
    public var projectID: String

    public init(endpointGroupID: String, projectID: String) { self.endpointGroupID = endpointGroupID; self.projectID = projectID }
}

/// An application credential's access rule: what one call it may make looks like.
public struct AccessRuleRow: Codable, Sendable, Equatable {
    public var id: String
    public var userID: String
    public var service: String
    public var path: String
    public var method: String
    public var createdAt: Int64

    public init(id: String, userID: String, service: String, path: String, method: String, createdAt: Int64) {
        self.id = id; self.userID = userID; self.service = service; self.path = path; self.method = method; self.createdAt = createdAt
    }
}

public struct ApplicationCredentialAccessRuleRow: Codable, Sendable, Equatable {
    public var applicationCredentialID: String
    public var accessRuleID: String

    public init(applicationCredentialID: String, accessRuleID: String) {
        self.applicationCredentialID = applicationCredentialID; self.accessRuleID = accessRuleID
    }
}

public struct PasswordHistoryRow: Codable, Sendable, Equatable {
    public var userID: String
    public var passwordHash: String
    public var selfService: Bool
    public var createdAt: Int64

    public init(userID: String, passwordHash: String, selfService: Bool, createdAt: Int64) {
        self.userID = userID; self.passwordHash = passwordHash; self.selfService = selfService; self.createdAt = createdAt
    }
}

extension IdentityTables {
    public static let credentials = Table<CredentialRow>("credentials")
    public static let trusts = Table<TrustRow>("trusts")
    public static let trustRoles = Table<TrustRoleRow>("trust_roles")
    public static let projectTags = Table<ProjectTagRow>("project_tags")
    public static let domainConfig = Table<DomainConfigRow>("domain_config")
    public static let policies = Table<PolicyRow>("policies")
    public static let policyAssociations = Table<PolicyAssociationRow>("policy_associations")
    public static let endpointGroups = Table<EndpointGroupRow>("endpoint_groups")
    public static let projectEndpoints = Table<ProjectEndpointRow>("project_endpoints")
    public static let projectEndpointGroups = Table<ProjectEndpointGroupRow>("project_endpoint_groups")
    public static let accessRules = Table<AccessRuleRow>("access_rules")
    public static let applicationCredentialAccessRules = Table<ApplicationCredentialAccessRuleRow>("application_credential_access_rules")
    public static let passwordHistory = Table<PasswordHistoryRow>("password_history")
}
