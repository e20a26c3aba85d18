import Compute
import Foundation
import Hummingbird
import Images
import PetrelCore
import PetrelHTTP

/// Nova's image proxy: `/images` (2.1 to 2.35) and `/images/{id}/metadata` (2.1 to 2.38),
/// answered from Petrel's own Glance service as Nova answers them from Glance with the
/// caller's token. Nova has no policy of its own here: Glance's rules decide (`get_images`,
/// `get_image`, `modify_image`, `delete_image`), and what Glance would hide is "not found".
extension ComputeAPI {
    /// The last microversion of the image API proxy (Nova's MAX_PROXY_API_SUPPORT_VERSION).
    static let imageProxyMaximum = Microversion(2, 35)
    /// The last microversion of the image metadata proxy (Nova's MAX_IMAGE_META_PROXY_API_VERSION).
    static let imageMetadataProxyMaximum = Microversion(2, 38)

    /// Glance's status as Nova's image view shows it, and the progress it claims.
    static func proxyStatus(_ status: String) -> (status: String, progress: Int) {
        switch status {
        case "active": return ("ACTIVE", 100)
        case "queued": return ("SAVING", 25)
        case "saving": return ("SAVING", 50)
        case "deleted", "pending_delete": return ("DELETED", 0)
        case "killed": return ("ERROR", 0)
        default: return ("UNKNOWN", 0)
        }
    }

    /// An image's additional properties as Nova shows them: `block_device_mapping` and
    /// `mappings` (JSON that Nova stores as strings) read back as JSON.
    static func proxyMetadata(_ properties: [String: String]) -> JSON {
        .object(properties.reduce(into: [String: JSON]()) { result, item in
            if ["block_device_mapping", "mappings"].contains(item.key), let parsed = JSON.parse(Array(item.value.utf8)) {
                result[item.key] = parsed
            } else {
                result[item.key] = .string(item.value)
            }
        })
    }

    /// oslo's `bool_from_string`, as Nova reads `auto_disk_config`.
    static func osloTrue(_ text: String) -> Bool {
        ["1", "t", "true", "on", "y", "yes"].contains(text.trimmingCharacters(in: .whitespaces).lowercased())
    }

    /// Glance's timestamps as Nova's `isotime` writes them: seconds, `Z`.
    static func proxyTime(_ milliseconds: Int64) -> JSON {
        .string(UTCTime.format(Date(timeIntervalSince1970: TimeInterval(milliseconds / 1000)), fractionDigits: 0))
    }

    func proxyImageLinks(_ id: String) -> JSON {
        [["rel": "self", "href": .string(base + "/v2.1/images/" + id)],
         ["rel": "bookmark", "href": .string(base + "/images/" + id)],
         ["rel": "alternate", "type": "application/vnd.openstack.image", "href": .string(environment.publicURL + "/image/images/" + id)]]
    }

    /// One image in Nova's view: the basic fields of a list, or all of them.
    func proxyImageJSON(_ image: Image, detail: Bool) -> JSON {
        var object: [String: JSON] = ["id": .string(image.id), "name": .string(image.name), "links": proxyImageLinks(image.id)]
        guard detail else { return .object(object) }
        let (status, progress) = Self.proxyStatus(image.status)
        object["minRam"] = .number(Double(image.minRam))
        object["minDisk"] = .number(Double(image.minDisk))
        object["metadata"] = Self.proxyMetadata(image.properties)
        object["created"] = Self.proxyTime(image.createdAt)
        object["updated"] = Self.proxyTime(image.updatedAt)
        object["status"] = .string(status)
        object["progress"] = .number(Double(progress))
        object["OS-EXT-IMG-SIZE:size"] = .number(Double(image.size ?? 0))
        if let server = image.properties["instance_uuid"] {
            object["server"] = ["id": .string(server), "links": [["rel": "self", "href": .string(base + "/v2.1/servers/" + server)],
                                                                 ["rel": "bookmark", "href": .string(base + "/servers/" + server)]]]
        }
        if let autoDiskConfig = image.properties["auto_disk_config"] {
            object["OS-DCF:diskConfig"] = Self.osloTrue(autoDiskConfig) ? "AUTO" : "MANUAL"
        }
        return .object(object)
    }

    /// Glance's policy target of an image.
    static func glanceTarget(_ image: Image) -> [String: String] {
        var target = ["visibility": image.visibility]
        if let owner = image.owner { target["project_id"] = owner; target["owner"] = owner }
        return target
    }

    /// The caller and microversion of a proxy request; beyond `maximum` the route is gone (404,
    /// with Nova's words for a method its microversion does not have).
    func proxyRequest(_ request: Request, _ context: APIRequestContext, maximum: Microversion) throws -> (Caller, Microversion) {
        let version = try Self.microversion(request)
        let caller = try context.caller()
        guard version <= maximum else { throw APIFault(.notFound, "The resource could not be found.") }
        return (caller, version)
    }

    /// The image, if Glance would show it to the caller ("Image not found." otherwise).
    func proxiedImage(_ images: ImageService, _ id: String, _ context: APIRequestContext) async throws -> Image {
        let image: Image
        do {
            image = try await images.get(id)
        } catch ImageService.Failure.notFound {
            throw APIFault(.notFound, "Image not found.")
        }
        guard try context.allows("get_image", target: Self.glanceTarget(image)) else { throw APIFault(.notFound, "Image not found.") }
        return image
    }

    /// Glance's `name` and `status` filters: a value, `eq:value` or `in:a,b` (other operators are refused).
    static func glanceOneOf(_ expression: String) throws -> Set<String> {
        guard let colon = expression.firstIndex(of: ":"), UTCTime.parse(expression) == nil else { return [expression] }
        let operation = String(expression[..<colon]), value = String(expression[expression.index(after: colon)...])
        switch operation {
        case "eq": return [value]
        case "in":
            return Set(value.split(separator: ",").map { part in
                let text = part.trimmingCharacters(in: .whitespaces)
                return text.count >= 2 && text.hasPrefix("\"") && text.hasSuffix("\"") ? String(text.dropFirst().dropLast()) : text
            })
        default: throw APIFault(.badRequest, "Unable to filter by unknown operator '\(operation)'.")
        }
    }

    /// Nova's `next` link: the request's parameters in the order of their names (of a name
    /// given twice, the last in that order), `marker` set to the last image's id (in its place
    /// when given, else last), encoded as Python's `urlencode`.
    func proxyNextLink(_ request: Request, collection: String, marker: String) -> JSON {
        var parameters: [(name: String, value: String)] = []
        for (name, value) in request.queryPairs.sorted(by: { ($0.name, $0.value) < ($1.name, $1.value) }) {
            if let index = parameters.firstIndex(where: { $0.name == name }) { parameters[index].value = value } else { parameters.append((name, value)) }
        }
        if let index = parameters.firstIndex(where: { $0.name == "marker" }) { parameters[index].value = marker } else { parameters.append(("marker", marker)) }
        let query = parameters.map { NovaTimes.quotePlus($0.name) + "=" + NovaTimes.quotePlus($0.value) }.joined(separator: "&")
        return [["rel": "next", "href": .string(base + "/v2.1/" + collection + "?" + query)]]
    }

    /// The filters Nova's image list passes to Glance, as Glance applies them.
    func proxyListQuery(_ request: Request, caller: Caller) throws -> ImageListQuery {
        var query = ImageListQuery(isAdmin: caller.hasRole("admin"), projectID: caller.project?.id, limit: 1000)
        if let name = request.query("name") { query.oneOf["name"] = try Self.glanceOneOf(name) }
        if let status = request.query("status") { query.oneOf["status"] = try Self.glanceOneOf(status.lowercased()) }
        if let since = request.query("changes-since") {
            guard let date = UTCTime.parse(since) else {
                throw APIFault(.badRequest, "Bad \"updated_at\" query filter format. Use ISO 8601 DateTime notation.")
            }
            query.updatedSince = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        }
        for (name, value) in request.queryPairs where name.hasPrefix("property-") && name.count > "property-".count {
            query.properties[String(name.dropFirst("property-".count))] = value
        }
        // `server` is a server's id or its URL (the id is its last segment).
        if let server = request.query("server") {
            query.properties["instance_uuid"] = server.contains("/") ? String(server[server.index(after: server.lastIndex(of: "/")!)...]) : server
        }
        if let type = request.query("type") { query.properties["image_type"] = type }
        // Glance compares min_ram and min_disk for equality; a value that is no number matches nothing.
        if let text = request.query("minRam") { query.minRam = Int(text.trimmingCharacters(in: .whitespaces)) ?? -1 }
        if let text = request.query("minDisk") { query.minDisk = Int(text.trimmingCharacters(in: .whitespaces)) ?? -1 }
        query.marker = request.query("marker")
        return query
    }

    func registerImageProxy(on v21: APIRoutes, images: ImageService) {
        @Sendable func list(_ request: Request, _ context: APIRequestContext, detail: Bool) async throws -> Response {
            let (caller, version) = try proxyRequest(request, context, maximum: Self.imageProxyMaximum)
            // The query schema has held `limit` to a positive integer; then Glance's policy and filters.
            let limit = request.query("limit").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            try context.enforce("get_images")
            var query = try proxyListQuery(request, caller: caller)
            // Glance's pages (of at most 1000) followed until `limit` images or the end, as glanceclient does.
            var found: [Image] = []
            while true {
                query.limit = min(1000, limit.map { $0 - found.count } ?? 1000)
                if query.limit == 0 && !found.isEmpty { break }
                let page: ImagePage
                do {
                    page = try await images.page(query)
                } catch ImageService.Failure.invalid(let message) {
                    throw APIFault(.badRequest, message)
                }
                found += page.images
                guard page.more, let last = page.images.last, limit.map({ found.count < $0 }) ?? true else { break }
                query.marker = last.id
            }
            var body: [String: JSON] = ["images": .array(found.map { proxyImageJSON($0, detail: detail) })]
            // A next link when the page is as long as it could be (the limit, at most Nova's max_limit of 1000).
            let most = min(limit ?? 1000, 1000)
            if most > 0, found.count == most, let last = found.last {
                body["images_links"] = proxyNextLink(request, collection: detail ? "images/detail" : "images", marker: last.id)
            }
            return answer(.ok, .object(body), version)
        }
        v21.get("images", query: NovaQuerySchemas.images) { request, context in try await list(request, context, detail: false) }
        v21.get("images/detail", query: NovaQuerySchemas.images) { request, context in try await list(request, context, detail: true) }

        v21.get("images/:image_id", query: NovaQuerySchemas.open) { request, context in
            let (_, version) = try proxyRequest(request, context, maximum: Self.imageProxyMaximum)
            let image = try await proxiedImage(images, try context.parameters.require("image_id"), context)
            return answer(.ok, ["image": proxyImageJSON(image, detail: true)], version)
        }

        v21.delete("images/:image_id") { request, context in
            let (_, version) = try proxyRequest(request, context, maximum: Self.imageProxyMaximum)
            let image = try await proxiedImage(images, try context.parameters.require("image_id"), context)
            guard try context.allows("delete_image", target: Self.glanceTarget(image)) else {
                throw APIFault(.forbidden, "You are not allowed to delete the image.")
            }
            do {
                try await images.delete(image.id)
            } catch ImageService.Failure.notFound {
                throw APIFault(.notFound, "Image not found.")
            } catch ImageService.Failure.protected {
                throw APIFault(.forbidden, "You are not allowed to delete the image.")
            }
            return Response(status: .noContent, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }

        registerImageMetadataProxy(on: v21, images: images)
    }

    func registerImageMetadataProxy(on v21: APIRoutes, images: ImageService) {
        /// Nova's `check_img_metadata_properties_quota`: the caller's project's `metadata_items`.
        @Sendable func checkQuota(_ count: Int, _ limit: Int?) throws {
            if count > 0, let limit, limit >= 0, count > limit { throw APIFault(.forbidden, "Image metadata limit exceeded") }
        }
        /// Writes the image's properties as Nova's update does (every property it sends, the
        /// rest removed), after Glance's `modify_image`. Nova leaves out a `kernel_id` or
        /// `ramdisk_id` of "none" or "" (the stored one stays).
        @Sendable func write(_ image: Image, _ context: APIRequestContext, limit: Int?,
                             _ change: @escaping @Sendable ([String: String]) -> [String: String]) async throws -> Image {
            let wanted = change(image.properties)
            try checkQuota(wanted.count, limit)
            guard try context.allows("modify_image", target: Self.glanceTarget(image)) else {
                throw APIFault(.forbidden, "Not authorized for image \(image.id).")
            }
            do {
                return try await images.change(image.id) { stored in
                    var properties = change(stored.properties)
                    for key in ["kernel_id", "ramdisk_id"] {
                        if let value = properties[key], ["none", ""].contains(value.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()) {
                            properties[key] = stored.properties[key]
                        }
                    }
                    stored.properties = properties
                }
            } catch ImageService.Failure.notFound {
                throw APIFault(.notFound, "Image not found.")
            }
        }
        @Sendable func begin(_ request: Request, _ context: APIRequestContext) async throws -> (Image, Microversion, Caller) {
            let (caller, version) = try proxyRequest(request, context, maximum: Self.imageMetadataProxyMaximum)
            let image = try await proxiedImage(images, try context.parameters.require("image_id"), context)
            return (image, version, caller)
        }
        @Sendable func quota(_ caller: Caller) async throws -> Int? {
            guard let project = caller.project?.id else { return nil }
            return try await quotas.limits(project: project)["metadata_items"]
        }
        @Sendable func strings(_ value: JSON?) -> [String: String] {
            (value?.objectValue ?? [:]).compactMapValues(\.stringValue)
        }

        v21.get("images/:image_id/metadata", query: NovaQuerySchemas.anything) { request, context in
            let (image, version, _) = try await begin(request, context)
            return answer(.ok, ["metadata": Self.proxyMetadata(image.properties)], version)
        }
        v21.get("images/:image_id/metadata/:key", query: NovaQuerySchemas.anything) { request, context in
            let (image, version, _) = try await begin(request, context)
            let key = try context.parameters.require("key")
            guard image.properties[key] != nil, let value = Self.proxyMetadata(image.properties)[key] else {
                throw APIFault(.notFound, "The resource could not be found.")
            }
            return answer(.ok, ["meta": [key: value]], version)
        }
        // POST merges the items into the image's metadata; PUT replaces it.
        v21.post("images/:image_id/metadata", body: .json(ImageMetadataSchemas.all, style: .nova)) { request, context in
            _ = try proxyRequest(request, context, maximum: Self.imageMetadataProxyMaximum)
            let items = strings(try await environment.body(request, context)["metadata"])
            let (image, version, caller) = try await begin(request, context)
            let saved = try await write(image, context, limit: try await quota(caller)) { $0.merging(items) { $1 } }
            return answer(.ok, ["metadata": Self.proxyMetadata(saved.properties)], version)
        }
        v21.put("images/:image_id/metadata", body: .json(ImageMetadataSchemas.all, style: .nova)) { request, context in
            _ = try proxyRequest(request, context, maximum: Self.imageMetadataProxyMaximum)
            let body = try await environment.body(request, context)
            let (image, version, caller) = try await begin(request, context)
            let items = strings(body["metadata"])
            _ = try await write(image, context, limit: try await quota(caller)) { _ in items }
            return answer(.ok, ["metadata": body["metadata"] ?? [:]], version)
        }
        v21.put("images/:image_id/metadata/:key", body: .json(ImageMetadataSchemas.item, style: .nova)) { request, context in
            let (_, version) = try proxyRequest(request, context, maximum: Self.imageMetadataProxyMaximum)
            let key = try context.parameters.require("key")
            let body = try await environment.body(request, context)
            guard let meta = body["meta"]?.objectValue, let value = meta[key]?.stringValue else {
                throw APIFault(.badRequest, "Request body and URI mismatch")
            }
            let (image, _, caller) = try await begin(request, context)
            _ = try await write(image, context, limit: try await quota(caller)) { $0.merging([key: value]) { $1 } }
            return answer(.ok, ["meta": [key: .string(value)]], version)
        }
        v21.delete("images/:image_id/metadata/:key") { request, context in
            let (image, version, _) = try await begin(request, context)
            let key = try context.parameters.require("key")
            guard image.properties[key] != nil else { throw APIFault(.notFound, "Invalid metadata key") }
            _ = try await write(image, context, limit: nil) { properties in properties.filter { $0.key != key } }
            return Response(status: .noContent, headers: version.headers(service: "compute", legacyHeader: "X-OpenStack-Nova-API-Version"))
        }
    }
}

/// `POST`/`PUT /images/{id}/metadata` and `PUT /images/{id}/metadata/{key}` (Nova's
/// `image_metadata` schemas: the whole set, or exactly one item).
enum ImageMetadataSchemas {
    static let all = Schema.object([("metadata", NovaTypes.metadata)], required: ["metadata"])
    static let item = Schema.object([("meta", Schema(types: [.object], additional: .some(nil), keyRule: (NovaTypes.metadataKey, .string(maxLength: 255)),
                                                    minProperties: 1, maxProperties: 1))], required: ["meta"])
}

extension NovaQuerySchemas {
    /// `GET /images` and `/images/detail` (before 2.36): the filters taken as they are, `limit`,
    /// `page_size` and `offset` positive integers, anything else let through. From 2.36 the
    /// routes are gone and nothing is checked before the handler says so.
    static let images = versioned { version in
        guard version <= ComputeAPI.imageProxyMaximum else { return .any }
        let minimum = NovaTypes.stringMinimum(1), length = NovaTypes.lengths(min: 1)
        let positive = NovaTypes.multi(Schema(types: [.integer, .string], pattern: Schema.Rule(regex: "^[0-9]*$"), minimum: 1,
                                              check: { minimum($0) ?? length($0) }))
        return .object([("limit", positive), ("page_size", positive), ("offset", positive)], additional: true)
    }
}
