import Foundation
import Identity
import PetrelCore
import PetrelHTTP

/// Each identity resource in Keystone's JSON shape.
extension KeystoneAPI {
    func domainJSON(_ row: Domain) -> JSON {
        ["id": .string(row.id), "name": .string(row.name), "description": .string(row.description),
         "enabled": .bool(row.enabled), "tags": [], "options": [:], "links": ["self": link("/v3/domains/\(row.id)")]]
    }

    func projectJSON(_ row: Project) -> JSON { projectJSON(row, tags: []) }

    func projectJSON(_ row: Project, tags: [String]) -> JSON {
        ["id": .string(row.id), "name": .string(row.name), "domain_id": .string(row.domainID),
         "parent_id": .string(row.parentID ?? row.domainID), "description": .string(row.description),
         "enabled": .bool(row.enabled), "is_domain": false, "tags": .array(tags.map(JSON.string)), "options": [:],
         "links": ["self": link("/v3/projects/\(row.id)")]]
    }

    func userJSON(_ row: User) -> JSON {
        var object = JSON.parse(Array(row.extra.utf8))?.objectValue ?? [:]
        object["id"] = .string(row.id)
        object["name"] = .string(row.name)
        object["domain_id"] = .string(row.domainID)
        object["enabled"] = .bool(row.enabled)
        object["password_expires_at"] = row.passwordExpiresAt.map { .string(Self.isoMicroseconds(milliseconds: $0)) } ?? JSON.null
        object["options"] = JSON.parse(Array(row.options.utf8)) ?? [:]
        object["links"] = ["self": link("/v3/users/\(row.id)")]
        if let project = row.defaultProjectID { object["default_project_id"] = .string(project) }
        if !row.description.isEmpty { object["description"] = .string(row.description) }
        if let email = row.email { object["email"] = .string(email) }
        return .object(object)
    }

    func groupJSON(_ row: Group) -> JSON {
        ["id": .string(row.id), "name": .string(row.name), "domain_id": .string(row.domainID),
         "description": .string(row.description), "links": ["self": link("/v3/groups/\(row.id)")]]
    }

    func roleJSON(_ row: Role) -> JSON {
        ["id": .string(row.id), "name": .string(row.name), "domain_id": row.domainID.isEmpty ? nil : .string(row.domainID),
         "description": .string(row.description), "options": [:], "links": ["self": link("/v3/roles/\(row.id)")]]
    }

    func regionJSON(_ row: Region) -> JSON {
        ["id": .string(row.id), "description": .string(row.description), "parent_region_id": .string(row.parentRegionID),
         "links": ["self": link("/v3/regions/\(row.id)")]]
    }

    func serviceJSON(_ row: CatalogService) -> JSON {
        ["id": .string(row.id), "type": .string(row.type), "name": .string(row.name), "description": .string(row.description),
         "enabled": .bool(row.enabled), "links": ["self": link("/v3/services/\(row.id)")]]
    }

    func endpointJSON(_ row: Endpoint) -> JSON {
        ["id": .string(row.id), "service_id": .string(row.serviceID), "interface": .string(row.interface),
         "url": .string(row.url), "region_id": .string(row.regionID), "region": .string(row.regionID),
         "enabled": .bool(row.enabled), "links": ["self": link("/v3/endpoints/\(row.id)")]]
    }

    func accessRuleJSON(_ rule: AccessRule) -> JSON {
        ["id": .string(rule.id), "service": .string(rule.service), "path": .string(rule.path), "method": .string(rule.method),
         "links": ["self": link("/v3/access_rules/\(rule.id)")]]
    }

    func applicationCredentialJSON(_ row: ApplicationCredentialRecord, roles: [Role], accessRules: [AccessRule] = [],
                                   secret: String? = nil) -> JSON {
        var object: [String: JSON] = [
            "id": .string(row.id), "name": .string(row.name), "description": .string(row.description),
            "user_id": .string(row.userID), "project_id": .string(row.projectID),
            "expires_at": row.expiresAt.map { .string(Self.isoMicroseconds(milliseconds: $0)) } ?? nil,
            "unrestricted": .bool(row.unrestricted),
            "access_rules": .array(accessRules.map { ["id": .string($0.id), "service": .string($0.service),
                                                      "path": .string($0.path), "method": .string($0.method)] }),
            "roles": .array(roles.map { ["id": .string($0.id), "name": .string($0.name),
                                         "domain_id": $0.domainID.isEmpty ? nil : .string($0.domainID)] }),
            "links": ["self": link("/v3/users/\(row.userID)/application_credentials/\(row.id)")],
        ]
        if let secret { object["secret"] = .string(secret) }
        return .object(object)
    }

    /// Keystone's form of an application credential's expiry (Python's `isoformat` of a naive
    /// UTC time with microseconds, no zone), from whole milliseconds, so no digit moves.
    static func isoMicroseconds(milliseconds: Int64) -> String {
        let seconds = milliseconds.quotient(dividingBy: 1000)
        let fraction = milliseconds - seconds * 1000
        let whole = UTCTime.format(Date(timeIntervalSince1970: TimeInterval(seconds)), fractionDigits: 0)
        return whole.replacingOccurrences(of: "Z", with: "") + "." + String(format: "%03d", fraction) + "000"
    }
}

/// A parsed time as whole milliseconds, rounded at the microsecond first (a given ".123" is
/// 0.12299999… as a double).
func milliseconds(_ date: Date) -> Int64 {
    let micro = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    return micro.quotient(dividingBy: 1000)
}

extension Int64 {
    /// Floor division (times before 1970 stay in their second).
    func quotient(dividingBy divisor: Int64) -> Int64 {
        let (q, r) = quotientAndRemainder(dividingBy: divisor)
        return r < 0 ? q - 1 : q
    }
}
