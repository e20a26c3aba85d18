import Foundation
import HTTPTypes
import Hummingbird
import Images
import NIOCore
import PetrelHTTP

extension ImageAPI {
    static let uuid = try! NSRegularExpression(pattern: "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")

    /// Applies one field of a create or update to an image; throws 400 for a bad value, 403 for a
    /// read-only attribute.
    func apply(_ key: String, _ value: JSON?, to image: inout Image, context: APIRequestContext) throws {
        let caller = try context.caller()
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
        case "name": image.name = try text()
        case "visibility":
            guard let visibility = try text(), Self.visibilities.contains(visibility) else {
                throw invalid("must be one of private, shared, community, public")
            }
            if visibility == "public" { try context.enforce("publicize_image", target: target(image)) }
            if visibility == "community" { try context.enforce("communitize_image", target: target(image)) }
            image.visibility = visibility
        case "protected": image.protected = try flag()
        case "os_hidden": image.osHidden = try flag()
        case "disk_format", "container_format":
            guard image.status == "queued" else { throw APIFault(.forbidden, "Attribute \(key) can be only replaced for a queued image.") }
            let format = try text()
            let allowed = key == "disk_format" ? ImageService.diskFormats : ImageService.containerFormats
            if let format, !allowed.contains(format) { throw invalid("'\(format)' is not one of \(allowed.sorted())") }
            if key == "disk_format" { image.diskFormat = format } else { image.containerFormat = format }
        case "min_disk": image.minDisk = try integer()
        case "min_ram": image.minRam = try integer()
        case "tags":
            guard let list = value?.arrayValue else { throw invalid("expected a list of strings") }
            var tags: [String] = []
            for tag in list {
                guard let string = tag.stringValue, !string.isEmpty, string.count <= 255 else { throw invalid("each tag is a string of 1 to 255 characters") }
                if !tags.contains(string) { tags.append(string) }
            }
            image.tags = tags
        case "owner":
            guard caller.hasRole("admin") else { throw APIFault(.forbidden, "Attribute 'owner' is reserved.") }
            image.owner = try text()
        case _ where Self.core.contains(key):
            throw APIFault(.forbidden, "Attribute '\(key)' is read-only.")
        default:
            if key.hasPrefix("os_glance") { throw APIFault(.forbidden, "Attribute '\(key)' is reserved.") }
            guard !key.isEmpty, key.count <= 255, !key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw invalid("property names are 1 to 255 characters, without control characters")
            }
            if let value, !value.isNull {
                guard let string = value.stringValue, string.count <= 65_535 else { throw invalid("property values are strings") }
                image.properties[key] = string
            } else {
                image.properties[key] = nil
            }
        }
    }

    /// More additional properties on one image than `[image] image_property_quota` are a 413.

    func checkPropertyQuota(_ image: Image) throws {
        guard propertyQuota < 0 || image.properties.count <= propertyQuota else {
            throw APIFault(.contentTooLarge, "The limit has been exceeded on the number of allowed image properties. Attempted: \(image.properties.count), Maximum: \(propertyQuota)")
        }
    }

    static let patchTypes = ["application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch"]

    func registerImages(on v2: APIRoutes) {
        v2.post("images", body: .json(Self.imageCreate, style: .glance)) { request, context in
            let caller = try context.caller()
            // Glance reads the body (read-only attributes, then its image schema) before policy.
            let body = try await environment.body(request, context)
            guard let project = caller.project?.id else { throw APIFault(.forbidden, "Creating an image needs a project-scoped token.") }
            try context.enforce("add_image", target: ["project_id": project])
            var id = UUID().uuidString.lowercased()
            if let given = body["id"] {
                guard let text = given.stringValue,
                      !text.contains("\n"), Self.uuid.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil else {
                    throw APIFault(.badRequest, "Invalid value for 'id': expected a UUID")
                }
                id = text
            }
            var image = Image.queued(id: id, owner: project)
            for (key, value) in body.sorted(by: { $0.key < $1.key }) where key != "id" {
                if ["status", "size", "checksum", "virtual_size", "os_hash_algo", "os_hash_value", "created_at", "updated_at",
                    "self", "file", "schema", "locations"].contains(key) {
                    throw APIFault(.forbidden, "Attribute '\(key)' is read-only.")
                }
                try apply(key, value, to: &image, context: context)
            }
            try checkPropertyQuota(image)
            let created = try await run { try await images.create(image) }
            return respond(.created, imageJSON(created), headers: [.location: environment.publicURL + "/image/v2/images/\(id)"])
        }

        v2.get("images") { request, context in
            let caller = try await authenticateAndList(request, context)
            let isAdmin = caller.hasRole("admin")
            let project = caller.project?.id
            var limit = 25
            var query = ImageListQuery(isAdmin: isAdmin, projectID: project, limit: limit)
            // Filters, as Glance's.
            let visibility = request.query("visibility")
            if let visibility {
                guard Self.visibilities.contains(visibility) || visibility == "all" else {
                    throw APIFault(.badRequest, "Invalid visibility value: \(visibility)")
                }
            }
            query.visibility = visibility
            for key in ["name", "status", "owner", "disk_format", "container_format"] {
                guard let wanted = request.query(key) else { continue }
                query.oneOf[key] = wanted.hasPrefix("in:") ? Set(wanted.dropFirst(3).split(separator: ",").map(String.init)) : [wanted]
            }
            if let protected = request.query("protected") { query.protected = protected == "true" }
            query.hidden = request.query("os_hidden") == "true"
            query.tags = tags(request)
            query.sizeMin = request.query("size_min").flatMap(Int64.init)
            query.sizeMax = request.query("size_max").flatMap(Int64.init)
            query.sort = try sortKeys(request)
            query.marker = request.query("marker")
            if let text = request.query("limit") {
                guard let value = Int(text), value >= 0 else {
                    // An unknown marker is reported first.
                    if query.marker != nil {
                        query.limit = 0
                        _ = try await run { try await images.page(query) }
                    }
                    throw APIFault(.badRequest, "limit param must be an integer")
                }
                limit = min(value, 1000)
            }
            query.limit = limit
            let page = try await run { try await images.page(query) }
            var body: [String: JSON] = ["images": .array(page.images.map(imageJSON)), "first": "/v2/images",
                                        "schema": "/v2/schemas/images"]
            if page.more, let last = page.images.last {
                body["next"] = .string(Paging.glanceNext("/v2/images", request: request, limit: limit, marker: last.id))
            }
            return respond(.ok, .object(body))
        }

        v2.get("images/:image_id") { request, context in
            _ = try context.caller()
            return respond(.ok, imageJSON(try await visible(try context.parameters.require("image_id"), context)))
        }

        v2.patch("images/:image_id", body: .jsonPatch(mediaTypes: Self.patchTypes)) { request, context in
            _ = try context.caller()
            let existing = try await visible(try context.parameters.require("image_id"), context)
            try context.enforce("modify_image", target: target(existing))
            try request.requireMediaType(Set(Self.patchTypes))
            guard let operations = try await request.json(maxSize: environment.maxBodySize).arrayValue else {
                throw APIFault(.badRequest, "The request body must be a JSON-patch list of operations.")
            }
            var image = existing
            for operation in operations {
                guard let op = operation["op"]?.stringValue, ["add", "replace", "remove"].contains(op),
                      let path = operation["path"]?.stringValue, path.hasPrefix("/"), path.count > 1 else {
                    throw APIFault(.badRequest, "Each operation needs 'op' (add, replace or remove) and a 'path' like /name.")
                }
                // A JSON pointer to one member: "/name"; '~' only in the escapes ~0 and ~1.
                let raw = path.dropFirst()
                guard !raw.contains("/") else {
                    throw APIFault(.badRequest, "Invalid JSON pointer for this resource: '\(path)'")
                }
                guard raw.replacingOccurrences(of: "~0", with: "").replacingOccurrences(of: "~1", with: "").contains("~") == false else {
                    throw APIFault(.badRequest, "Pointer `\(path)` contains '~' not part of a recognized escape sequence.")
                }
                let key = String(raw).replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
                if op == "remove" {
                    if Self.core.contains(key) && !["name"].contains(key) { throw APIFault(.forbidden, "Attribute '\(key)' cannot be removed.") }
                    if !Self.core.contains(key), image.properties[key] == nil {
                        throw APIFault(.conflict, "Property \(key) does not exist.")
                    }
                    try apply(key, nil, to: &image, context: context)
                } else {
                    guard let value = operation["value"] else { throw APIFault(.badRequest, "Operation \(op) needs a value.") }
                    if op == "replace", !Self.core.contains(key), image.properties[key] == nil {
                        throw APIFault(.conflict, "Property \(key) does not exist.")
                    }
                    try apply(key, value, to: &image, context: context)
                }
            }
            try checkPropertyQuota(image)
            let updated = image
            let saved = try await run {
                try await images.change(existing.id) { stored in
                    stored.name = updated.name
                    stored.visibility = updated.visibility
                    stored.protected = updated.protected
                    stored.osHidden = updated.osHidden
                    stored.owner = updated.owner
                    stored.minDisk = updated.minDisk
                    stored.minRam = updated.minRam
                    if stored.status == "queued" {
                        stored.diskFormat = updated.diskFormat
                        stored.containerFormat = updated.containerFormat
                    }
                    stored.properties = updated.properties
                    stored.tags = updated.tags
                }
            }
            return respond(.ok, imageJSON(saved))
        }

        v2.delete("images/:image_id") { request, context in
            _ = try context.caller()
            let image = try await visible(try context.parameters.require("image_id"), context)
            try context.enforce("delete_image", target: target(image))
            try await run { try await images.delete(image.id) }
            return noContent()
        }

        v2.put("images/:image_id/file", body: .bytes(mediaType: "application/octet-stream")) { request, context -> Response in
            _ = try context.caller()
            let image = try await visible(try context.parameters.require("image_id"), context)
            try context.enforce("upload_image", target: target(image))
            try request.requireMediaType(["application/octet-stream"])
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
            _ = try context.caller()
            let image = try await visible(try context.parameters.require("image_id"), context)
            try context.enforce("download_image", target: target(image))
            guard image.status == "active", let size = image.size else { return noContent() }
            let body = try await FileIO().loadFile(path: images.path(of: image.id), context: context)
            var headers: HTTPFields = [.contentType: "application/octet-stream", .contentLength: String(size)]
            if let checksum = image.checksum { headers[HTTPField.Name("Content-MD5")!] = checksum }
            return Response(status: .ok, headers: headers, body: body)
        }

        @Sendable func tagRoute(_ request: Request, _ context: APIRequestContext, add: Bool) async throws -> Response {
            _ = try context.caller()
            let image = try await visible(try context.parameters.require("image_id"), context)
            try context.enforce("modify_image", target: target(image))
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
        v2.put("images/:image_id/tags/:tag", body: .none) { request, context in try await tagRoute(request, context, add: true) }
        v2.delete("images/:image_id/tags/:tag") { request, context in try await tagRoute(request, context, add: false) }
    }

    func authenticateAndList(_ request: Request, _ context: APIRequestContext) async throws -> Caller {
        try context.enforce("get_images")
    }

    /// Every `tag=` of the query (Glance takes several).
    func tags(_ request: Request) -> [String] { request.queryList("tag") }

    /// `sort=name:asc,created_at` or `sort_key=…&sort_dir=…`; newest first by default.
    func sortKeys(_ request: Request) throws -> [(key: ImageListQuery.SortKey, descending: Bool)] {
        try Paging.glanceSort(request).map { key, descending in
            guard let sortKey = ImageListQuery.SortKey(rawValue: key) else { throw APIFault(.badRequest, "Unsupported sort_key value \(key)") }
            return (sortKey, descending)
        }
    }
}
