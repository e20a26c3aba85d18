import Foundation
import HTTPTypes
import Hummingbird
import Identity
import IdentityAPI
import Images
import NIOCore
import PetrelHTTP
import Store

extension ImageAPI {
    static let uuid = try! NSRegularExpression(pattern: "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")

    /// Applies one field of a create or update to an image; throws 400 for a bad value, 403 for a
    /// read-only attribute.
    func apply(_ key: String, _ value: JSON?, to image: inout Image, caller: TokenInfo) throws {
        func invalid(_ why: String) -> APIFault { APIFault(.badRequest, "Invalid value for '\(key)': \(why)") }
        func text(_ maxLength: Int = 255) throws -> String? {
            guard let value, !value.isNull else { return nil }
            guard let string = value.stringValue, string.count <= maxLength else { throw invalid("expected a string of at most \(maxLength) characters") }
            return string
        }
        func integer() throws -> Int {
            guard case .number(let number)? = value, number >= 0, number.rounded() == number, number < 2_147_483_648 else {
                throw invalid("expected a non-negative integer")
            }
            return Int(number)
        }
        func flag() throws -> Bool {
            guard let flag = value?.boolValue else { throw invalid("expected a boolean") }
            return flag
        }
        switch key {
        case "name": image.row.name = try text()
        case "visibility":
            guard let visibility = try text(), Self.visibilities.contains(visibility) else {
                throw invalid("must be one of private, shared, community, public")
            }
            if visibility == "public" { try enforce("publicize_image", caller, target(image)) }
            if visibility == "community" { try enforce("communitize_image", caller, target(image)) }
            image.row.visibility = visibility
        case "protected": image.row.protected = try flag()
        case "os_hidden": image.row.osHidden = try flag()
        case "disk_format", "container_format":
            guard image.row.status == "queued" else { throw APIFault(.forbidden, "Attribute \(key) can be only replaced for a queued image.") }
            let format = try text()
            let allowed = key == "disk_format" ? ImageService.diskFormats : ImageService.containerFormats
            if let format, !allowed.contains(format) { throw invalid("'\(format)' is not one of \(allowed.sorted())") }
            if key == "disk_format" { image.row.diskFormat = format } else { image.row.containerFormat = format }
        case "min_disk": image.row.minDisk = try integer()
        case "min_ram": image.row.minRam = try integer()
        case "tags":
            guard let list = value?.arrayValue else { throw invalid("expected a list of strings") }
            var tags: [String] = []
            for tag in list {
                guard let string = tag.stringValue, !string.isEmpty, string.count <= 255 else { throw invalid("each tag is a string of 1 to 255 characters") }
                if !tags.contains(string) { tags.append(string) }
            }
            image.tags = tags
        case "owner":
            guard caller.credentials.roles.contains("admin") else { throw APIFault(.forbidden, "Attribute 'owner' is reserved.") }
            image.row.owner = try text()
        case _ where Self.core.contains(key):
            throw APIFault(.forbidden, "Attribute '\(key)' is read-only.")
        default:
            if key.hasPrefix("os_glance") { throw APIFault(.forbidden, "Attribute '\(key)' is reserved.") }
            guard key.count <= 255 else { throw invalid("property names are at most 255 characters") }
            if let value, !value.isNull {
                guard let string = value.stringValue, string.count <= 65_535 else { throw invalid("property values are strings") }
                image.properties[key] = string
            } else {
                image.properties[key] = nil
            }
        }
    }

    func registerImages(on v2: RouterGroup<BasicRequestContext>) {
        v2.post("images") { request, _ in
            let caller = try await identity.authenticate(request)
            guard let project = caller.project?.id else { throw APIFault(.forbidden, "Creating an image needs a project-scoped token.") }
            try enforce("add_image", caller, ["project_id": project])
            let body = try await identity.body(request)
            var id = UUID().uuidString.lowercased()
            if let given = body["id"] {
                guard let text = given.stringValue,
                      !text.contains("\n"), Self.uuid.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil else {
                    throw APIFault(.badRequest, "Invalid value for 'id': expected a UUID")
                }
                id = text
            }
            var image = Image(row: ImageRow(id: id, name: nil, status: "queued", visibility: "shared", protected: false, osHidden: false,
                                            owner: project, diskFormat: nil, containerFormat: nil, minDisk: 0, minRam: 0,
                                            properties: "{}", tags: "[]", createdAt: Int64(Date().timeIntervalSince1970 * 1000)),
                              properties: [:], tags: [])
            for (key, value) in body.sorted(by: { $0.key < $1.key }) where key != "id" {
                if ["status", "size", "checksum", "virtual_size", "os_hash_algo", "os_hash_value", "created_at", "updated_at",
                    "self", "file", "schema", "locations"].contains(key) {
                    throw APIFault(.forbidden, "Attribute '\(key)' is read-only.")
                }
                try apply(key, value, to: &image, caller: caller)
            }
            let created: Image
            do {
                created = try await images.create(image)
            } catch is DuplicateRowError {
                throw APIFault(.conflict, "An image with identifier \(id) already exists")
            }
            return respond(.created, imageJSON(created), headers: [.location: identity.publicURL + "/image/v2/images/\(id)"])
        }

        v2.get("images") { request, _ in
            let caller = try await authenticateAndList(request)
            let isAdmin = caller.credentials.roles.contains("admin")
            let project = caller.project?.id
            var list = try await images.all().filter { image in
                let owned = image.row.owner != nil && image.row.owner == project
                return isAdmin || owned || image.row.visibility == "public" || image.row.visibility == "community"
            }
            // Filters, as Glance's.
            let visibility = identity.query(request, "visibility")
            if let visibility {
                guard Self.visibilities.contains(visibility) || visibility == "all" else {
                    throw APIFault(.badRequest, "Invalid visibility value: \(visibility)")
                }
                if visibility != "all" { list = list.filter { $0.row.visibility == visibility } }
            } else {
                // Community images show only when asked for.
                list = list.filter { $0.row.visibility != "community" || $0.row.owner == project }
            }
            for key in ["name", "status", "owner", "disk_format", "container_format"] {
                guard let wanted = identity.query(request, key) else { continue }
                let values = wanted.hasPrefix("in:") ? Set(wanted.dropFirst(3).split(separator: ",").map(String.init)) : [wanted]
                list = list.filter { image in
                    let have: String? = switch key {
                    case "name": image.row.name
                    case "status": image.row.status
                    case "owner": image.row.owner
                    case "disk_format": image.row.diskFormat
                    default: image.row.containerFormat
                    }
                    return have.map(values.contains) ?? false
                }
            }
            if let protected = identity.query(request, "protected") { list = list.filter { $0.row.protected == (protected == "true") } }
            let hidden = identity.query(request, "os_hidden") == "true"
            list = list.filter { $0.row.osHidden == hidden }
            for tag in tags(request) { list = list.filter { $0.tags.contains(tag) } }
            if let minimum = identity.query(request, "size_min").flatMap(Int64.init) { list = list.filter { ($0.row.size ?? -1) >= minimum } }
            if let maximum = identity.query(request, "size_max").flatMap(Int64.init) { list = list.filter { ($0.row.size ?? Int64.max) <= maximum } }
            list = try sorted(list, request)
            if let marker = identity.query(request, "marker") {
                guard let index = list.firstIndex(where: { $0.id == marker }) else {
                    throw APIFault(.badRequest, "Invalid marker. Image \(marker) could not be found.")
                }
                list = Array(list[(index + 1)...])
            }
            var limit = 25
            if let text = identity.query(request, "limit") {
                guard let value = Int(text), value >= 0 else { throw APIFault(.badRequest, "limit param must be an integer") }
                limit = min(value, 1000)
            }
            var body: [String: JSON] = ["images": .array(list.prefix(limit).map(imageJSON)), "first": "/v2/images",
                                        "schema": "/v2/schemas/images"]
            if list.count > limit, let last = list.prefix(limit).last {
                var next = URLComponents(string: "/v2/images")!
                var items = (URLComponents(string: request.uri.description)?.queryItems ?? []).filter { $0.name != "marker" && $0.name != "limit" }
                items += [URLQueryItem(name: "marker", value: last.id), URLQueryItem(name: "limit", value: String(limit))]
                next.queryItems = items
                body["next"] = .string(next.string ?? "/v2/images?marker=\(last.id)")
            }
            return respond(.ok, .object(body))
        }

        v2.get("images/:image_id") { request, context in
            let caller = try await identity.authenticate(request)
            return respond(.ok, imageJSON(try await visible(try context.parameters.require("image_id"), caller)))
        }

        v2.patch("images/:image_id") { request, context in
            let caller = try await identity.authenticate(request)
            let existing = try await visible(try context.parameters.require("image_id"), caller)
            try enforce("modify_image", caller, target(existing))
            let buffer: ByteBuffer
            do { buffer = try await request.body.collect(upTo: identity.maxBodySize) } catch { throw APIFault(.contentTooLarge, "Request is too large.") }
            guard let operations = JSON.parse(Array(buffer.readableBytesView))?.arrayValue else {
                throw APIFault(.badRequest, "The request body must be a JSON-patch list of operations.")
            }
            var image = existing
            for operation in operations {
                guard let op = operation["op"]?.stringValue, ["add", "replace", "remove"].contains(op),
                      let path = operation["path"]?.stringValue, path.hasPrefix("/"), path.count > 1 else {
                    throw APIFault(.badRequest, "Each operation needs 'op' (add, replace or remove) and a 'path' like /name.")
                }
                let key = String(path.dropFirst()).replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
                if op == "remove" {
                    if Self.core.contains(key) && !["name"].contains(key) { throw APIFault(.forbidden, "Attribute '\(key)' cannot be removed.") }
                    if !Self.core.contains(key), image.properties[key] == nil {
                        throw APIFault(.conflict, "Property \(key) does not exist.")
                    }
                    try apply(key, nil, to: &image, caller: caller)
                } else {
                    guard let value = operation["value"] else { throw APIFault(.badRequest, "Operation \(op) needs a value.") }
                    if op == "replace", !Self.core.contains(key), image.properties[key] == nil {
                        throw APIFault(.conflict, "Property \(key) does not exist.")
                    }
                    try apply(key, value, to: &image, caller: caller)
                }
            }
            let updated = image
            let saved = try await run {
                try await images.change(existing.id) { stored in
                    stored.row.name = updated.row.name
                    stored.row.visibility = updated.row.visibility
                    stored.row.protected = updated.row.protected
                    stored.row.osHidden = updated.row.osHidden
                    stored.row.owner = updated.row.owner
                    stored.row.minDisk = updated.row.minDisk
                    stored.row.minRam = updated.row.minRam
                    if stored.row.status == "queued" {
                        stored.row.diskFormat = updated.row.diskFormat
                        stored.row.containerFormat = updated.row.containerFormat
                    }
                    stored.properties = updated.properties
                    stored.tags = updated.tags
                }
            }
            return respond(.ok, imageJSON(saved))
        }

        v2.delete("images/:image_id") { request, context in
            let caller = try await identity.authenticate(request)
            let image = try await visible(try context.parameters.require("image_id"), caller)
            try enforce("delete_image", caller, target(image))
            try await run { try await images.delete(image.id) }
            return noContent()
        }

        v2.put("images/:image_id/file") { request, context -> Response in
            let caller = try await identity.authenticate(request)
            let image = try await visible(try context.parameters.require("image_id"), caller)
            try enforce("upload_image", caller, target(image))
            let upload = try await run { try await images.beginUpload(image.id) }
            do {
                for try await buffer in request.body {
                    try buffer.withUnsafeReadableBytes { try upload.write($0) }
                }
                _ = try await upload.finish()
            } catch {
                await upload.abort()
                if error is ImageService.Failure { _ = try await run { () async throws -> Bool in throw error } }
                throw APIFault(.badRequest, "The upload did not complete: \(error)")
            }
            return noContent()
        }

        v2.get("images/:image_id/file") { request, context in
            let caller = try await identity.authenticate(request)
            let image = try await visible(try context.parameters.require("image_id"), caller)
            try enforce("download_image", caller, target(image))
            guard image.row.status == "active", let size = image.row.size else { return noContent() }
            let body = try await FileIO().loadFile(path: images.path(of: image.id), context: context)
            var headers: HTTPFields = [.contentType: "application/octet-stream", .contentLength: String(size)]
            if let checksum = image.row.checksum { headers[HTTPField.Name("Content-MD5")!] = checksum }
            return Response(status: .ok, headers: headers, body: body)
        }

        @Sendable func tagRoute(_ request: Request, _ context: BasicRequestContext, add: Bool) async throws -> Response {
            let caller = try await identity.authenticate(request)
            let image = try await visible(try context.parameters.require("image_id"), caller)
            try enforce("modify_image", caller, target(image))
            let tag = try context.parameters.require("tag")
            guard !tag.isEmpty, tag.count <= 255 else { throw APIFault(.badRequest, "Invalid tag.") }
            if !add && !image.tags.contains(tag) { throw APIFault(.notFound, "Tag \(tag) not found.") }
            try await run {
                try await images.change(image.id) { image in
                    if add { if !image.tags.contains(tag) { image.tags.append(tag) } } else { image.tags.removeAll { $0 == tag } }
                }
            }
            return noContent()
        }
        v2.put("images/:image_id/tags/:tag") { request, context in try await tagRoute(request, context, add: true) }
        v2.delete("images/:image_id/tags/:tag") { request, context in try await tagRoute(request, context, add: false) }
    }

    func authenticateAndList(_ request: Request) async throws -> TokenInfo {
        let caller = try await identity.authenticate(request)
        try enforce("get_images", caller)
        return caller
    }

    /// Every `tag=` of the query (Glance takes several).
    func tags(_ request: Request) -> [String] {
        (URLComponents(string: request.uri.description)?.queryItems ?? []).filter { $0.name == "tag" }.compactMap(\.value)
    }

    /// `sort=name:asc,created_at` or `sort_key=…&sort_dir=…`; newest first by default.
    func sorted(_ list: [Image], _ request: Request) throws -> [Image] {
        var keys: [(String, Bool)] = []
        if let sort = identity.query(request, "sort") {
            for part in sort.split(separator: ",") {
                let pieces = part.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                guard let key = pieces.first, !key.isEmpty, pieces.count <= 2 else {
                    throw APIFault(.badRequest, "Invalid sort value '\(part)': expected key or key:asc|desc")
                }
                if pieces.count == 2, !["asc", "desc"].contains(pieces[1]) {
                    throw APIFault(.badRequest, "Invalid sort direction '\(pieces[1])'")
                }
                keys.append((key, pieces.count < 2 || pieces[1] != "asc"))
            }
        } else {
            let directions = (identity.query(request, "sort_dir") ?? "desc").split(separator: ",").map { $0 != "asc" }
            for (index, key) in (identity.query(request, "sort_key") ?? "created_at").split(separator: ",").enumerated() {
                keys.append((String(key), index < directions.count ? directions[index] : true))
            }
        }
        let sortable: Set<String> = ["name", "status", "created_at", "updated_at", "size", "disk_format", "container_format",
                                     "visibility", "min_disk", "min_ram", "id", "owner"]
        for (key, _) in keys where !sortable.contains(key) { throw APIFault(.badRequest, "Unsupported sort_key value \(key)") }
        func value(_ image: Image, _ key: String) -> String {
            switch key {
            case "name": return image.row.name ?? ""
            case "status": return image.row.status
            case "updated_at": return String(format: "%020lld", image.row.updatedAt)
            case "size": return String(format: "%020lld", image.row.size ?? 0)
            case "disk_format": return image.row.diskFormat ?? ""
            case "container_format": return image.row.containerFormat ?? ""
            case "visibility": return image.row.visibility
            case "min_disk": return String(format: "%020ld", image.row.minDisk)
            case "min_ram": return String(format: "%020ld", image.row.minRam)
            case "id": return image.id
            case "owner": return image.row.owner ?? ""
            default: return String(format: "%020lld", image.row.createdAt)
            }
        }
        keys.append(("id", true))
        return list.sorted { left, right in
            for (key, descending) in keys {
                let a = value(left, key), b = value(right, key)
                if a != b { return descending ? a > b : a < b }
            }
            return false
        }
    }
}
