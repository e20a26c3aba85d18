import Foundation
import SQLKit
import Store

/// Volume types (Cinder's `types`, `extra_specs` and `os-volume-type-access`): what a volume
/// asks of its backend, and which projects see a private type.
extension VolumeService {
    /// A type by id or name, as `projectID` may see it (nil: an administrator, who sees all).
    public func volumeType(_ reference: String, projectID: String?) async throws -> VolumeType {
        try await database.withConnection { sql in try await volumeType(sql, reference, projectID: projectID) }
    }

    func volumeType(_ sql: any SQLDatabase, _ reference: String, projectID: String?) async throws -> VolumeType {
        let row: VolumeTypeRow?
        if let byID = try await Tables.types.get(sql, id: reference) {
            row = byID
        } else {
            row = try await Tables.types.first(sql, where: [.equals("name", reference)])
        }
        guard let type = row?.value, try await visible(sql, type, projectID: projectID) else {
            throw VolumeFailure.typeNotFound(reference)
        }
        return type
    }

    func visible(_ sql: any SQLDatabase, _ type: VolumeType, projectID: String?) async throws -> Bool {
        guard !type.isPublic, let projectID else { return true }
        return try await accessProjects(sql, type.id).contains(projectID)
    }

    func accessProjects(_ sql: any SQLDatabase, _ typeID: String) async throws -> [String] {
        try await sql.raw("SELECT project_id FROM volume_type_access WHERE volume_type_id = \(bind: typeID) ORDER BY project_id").all()
            .map { try $0.decode(column: "project_id", as: String.self) }
    }

    /// The types `projectID` sees (nil: all); `isPublic` narrows to public or private ones.
    public func volumeTypes(projectID: String?, isPublic: Bool? = nil) async throws -> [VolumeType] {
        try await database.withConnection { sql in
            var out: [VolumeType] = []
            for row in try await Tables.types.all(sql, orderBy: "name") {
                let type = row.value
                if let isPublic, type.isPublic != isPublic { continue }
                if try await visible(sql, type, projectID: projectID) { out.append(type) }
            }
            return out
        }
    }

    /// The type volumes get when they ask for none (`[DEFAULT] default_volume_type`).
    public func defaultVolumeType() async throws -> VolumeType {
        try await volumeType(settings.defaultTypeName, projectID: nil)
    }

    public func createVolumeType(name: String, description: String?, isPublic: Bool, extraSpecs: [String: String]) async throws -> VolumeType {
        try Self.checkTypeName(name)
        return try await database.transaction { sql in
            guard try await Tables.types.first(sql, where: [.equals("name", name)]) == nil else {
                throw VolumeFailure(409, "Volume Type \(name) already exists.")
            }
            let time = now()
            let type = VolumeType(id: UUID().uuidString.lowercased(), name: name, description: description, isPublic: isPublic,
                                  extraSpecs: extraSpecs, createdAt: time, updatedAt: time)
            try await Tables.types.insert(sql, VolumeTypeRow(type))
            return type
        }
    }

    static func checkTypeName(_ name: String) throws {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed == name, name.count <= 255 else {
            throw VolumeFailure.invalid("Invalid input received: Volume type name can not be empty, longer than 255 characters or begin or end with spaces.")
        }
    }

    public func updateVolumeType(_ id: String, name: String?, description: String??, isPublic: Bool?) async throws -> VolumeType {
        if let name { try Self.checkTypeName(name) }
        return try await database.transaction { sql in
            guard var type = try await Tables.types.lockedGet(sql, id: id)?.value else { throw VolumeFailure.typeNotFound(id) }
            if let name, name != type.name {
                if type.name == settings.defaultTypeName {
                    throw VolumeFailure.invalid("Invalid input received: The default volume type cannot be renamed.")
                }
                guard try await Tables.types.first(sql, where: [.equals("name", name)]) == nil else {
                    throw VolumeFailure(409, "Volume Type \(name) already exists.")
                }
                type.name = name
            }
            if let description { type.description = description }
            if let isPublic { type.isPublic = isPublic }
            type.updatedAt = now()
            try await Tables.types.update(sql, id: id, VolumeTypeRow(type))
            return type
        }
    }

    public func deleteVolumeType(_ id: String) async throws {
        try await database.transaction { sql in
            guard let type = try await Tables.types.lockedGet(sql, id: id)?.value else { throw VolumeFailure.typeNotFound(id) }
            if type.name == settings.defaultTypeName {
                throw VolumeFailure.invalid("Invalid input received: Default volume type can not be deleted")
            }
            let users = try await sql.raw("SELECT COUNT(*) AS n FROM volumes WHERE volume_type_id = \(bind: id)").first()!
                .decode(column: "n", as: Int.self)
            guard users == 0 else { throw VolumeFailure.invalid("Target volume type is still in use.") }
            _ = try await Tables.types.delete(sql, where: [.equals("id", id)])
            try await sql.raw("DELETE FROM volume_type_access WHERE volume_type_id = \(bind: id)").run()
        }
    }

    /// Adds or replaces extra specs (`PUT`/`POST .../extra_specs`); `remove` deletes one key.
    public func editExtraSpecs(_ id: String, set: [String: String] = [:], remove: String? = nil) async throws -> [String: String] {
        try await database.transaction { sql in
            guard var type = try await Tables.types.lockedGet(sql, id: id)?.value else { throw VolumeFailure.typeNotFound(id) }
            if let remove {
                guard type.extraSpecs.removeValue(forKey: remove) != nil else {
                    throw VolumeFailure(404, "Volume Type \(id) has no extra specs with key \(remove).")
                }
            }
            type.extraSpecs.merge(set) { $1 }
            type.updatedAt = now()
            try await Tables.types.update(sql, id: id, VolumeTypeRow(type))
            return type.extraSpecs
        }
    }

    /// The projects a private type is shared with.
    public func typeAccess(_ id: String) async throws -> [String] {
        try await database.withConnection { sql in
            guard let type = try await Tables.types.get(sql, id: id)?.value else { throw VolumeFailure.typeNotFound(id) }
            guard !type.isPublic else {
                throw VolumeFailure(404, "Volume type access for \(id) could not be found: the type is public.")
            }
            return try await accessProjects(sql, id)
        }
    }

    public func editTypeAccess(_ id: String, project: String, add: Bool) async throws {
        try await database.transaction { sql in
            guard let type = try await Tables.types.get(sql, id: id)?.value else { throw VolumeFailure.typeNotFound(id) }
            guard !type.isPublic else {
                throw VolumeFailure.invalid("Invalid volume type: Type access modification is not applicable to public volume type.")
            }
            let present = try await accessProjects(sql, id).contains(project)
            if add {
                guard !present else {
                    throw VolumeFailure(409, "Volume type access for \(id) / \(project) combination already exists.")
                }
                try await sql.raw("INSERT INTO volume_type_access (volume_type_id, project_id) VALUES (\(bind: id), \(bind: project))").run()
            } else {
                guard present else {
                    throw VolumeFailure(404, "Volume type access not found for \(id) / \(project) combination.")
                }
                try await sql.raw("DELETE FROM volume_type_access WHERE volume_type_id = \(bind: id) AND project_id = \(bind: project)").run()
            }
        }
    }
}
