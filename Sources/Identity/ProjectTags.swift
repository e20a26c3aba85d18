import Foundation
import SQLKit
import Store

/// Project tags (`/v3/projects/{id}/tags`, and `tags` on the project): at most 80 per project,
/// each unique, listed in the order they sort.
extension IdentityService {
    public static let maxProjectTags = 80

    /// The tags of each of `projectIDs` (an absent project has none).
    public func projectTags(_ projectIDs: [String]) async throws -> [String: [String]] {
        guard !projectIDs.isEmpty else { return [:] }
        let rows = try await read { sql in try await IdentityTables.projectTags.all(sql, where: [.inList("project_id", projectIDs)], orderBy: "name") }
        return Dictionary(grouping: rows, by: \.projectID).mapValues { $0.map(\.name) }
    }

    /// Replaces a project's tags (the project must exist).
    public func setProjectTags(_ projectID: String, _ tags: [String]) async throws {
        let unique = Array(Set(tags.map { $0.trimmingCharacters(in: .whitespaces) }))
        guard unique.count <= Self.maxProjectTags else {
            throw IdentityError.badRequest("The number of tags of a project is limited to \(Self.maxProjectTags).")
        }
        try await write { sql in
            guard try await IdentityTables.projects.get(sql, id: projectID) != nil else {
                throw IdentityError.notFound(kind: "project", id: projectID)
            }
            try await IdentityTables.projectTags.delete(sql, where: [.equals("project_id", projectID)])
            for tag in unique { try await IdentityTables.projectTags.insert(sql, .init(projectID: projectID, name: tag)) }
        }
    }

    /// Adds one tag (nothing if the project has it already).
    public func addProjectTag(_ projectID: String, _ tag: String) async throws {
        try await write { sql in
            guard try await IdentityTables.projects.get(sql, id: projectID) != nil else {
                throw IdentityError.notFound(kind: "project", id: projectID)
            }
            let present = try await IdentityTables.projectTags.all(sql, where: [.equals("project_id", projectID)]).map(\.name)
            if present.contains(tag) { return }
            guard present.count < Self.maxProjectTags else {
                throw IdentityError.badRequest("The number of tags of a project is limited to \(Self.maxProjectTags).")
            }
            try await IdentityTables.projectTags.insert(sql, .init(projectID: projectID, name: tag))
        }
    }

    public func removeProjectTag(_ projectID: String, _ tag: String) async throws {
        try await write { sql in
            guard try await IdentityTables.projectTags.delete(sql, where: [.equals("project_id", projectID), .equals("name", tag)]) > 0 else {
                throw IdentityError.notFound(kind: "project tag", id: tag)
            }
        }
    }

    /// Keystone's tag filters: `tags` (all of), `tags-any` (any of), `not-tags` (not all of),
    /// `not-tags-any` (none of), each a comma-separated list.
    public struct TagFilter: Sendable {
        public var all: [String] = []
        public var any: [String] = []
        public var notAll: [String] = []
        public var notAny: [String] = []
        public init() {}
        public var isEmpty: Bool { all.isEmpty && any.isEmpty && notAll.isEmpty && notAny.isEmpty }

        public func matches(_ tags: [String]) -> Bool {
            let have = Set(tags)
            if !all.isEmpty && !Set(all).isSubset(of: have) { return false }
            if !any.isEmpty && have.isDisjoint(with: any) { return false }
            if !notAll.isEmpty && Set(notAll).isSubset(of: have) { return false }
            if !notAny.isEmpty && !have.isDisjoint(with: notAny) { return false }
            return true
        }
    }
}
