import Foundation
import HTTPTypes
import Hummingbird
import PetrelCore
import Images
import Logging
import NIOCore
import PetrelHTTP

/// The Glance v2 API under `/image`: images with their data streamed in and out.
public struct ImageAPI: Sendable {
    public let environment: APIEnvironment
    public let images: ImageService
    /// Glance's `image_property_quota`: additional properties on one image (-1: unlimited).
    let propertyQuota: Int
    let logger: Logger

    static let adminOrMember = "role:admin or (role:member and project_id:%(project_id)s)"
    static let readable = "role:admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s or 'community':%(visibility)s))"

    public static let policyDefaults: [PolicyDefault] = [
        PolicyDefault("add_image", adminOrMember, "Create an image (owned by the caller's project).", ["POST /image/v2/images"]),
        PolicyDefault("get_images", "role:admin or role:reader", "List images.", ["GET /image/v2/images"]),
        PolicyDefault("get_image", readable, "Show an image.", ["GET /image/v2/images/{image_id}"]),
        PolicyDefault("modify_image", adminOrMember, "Update an image.", ["PATCH /image/v2/images/{image_id}"]),
        PolicyDefault("publicize_image", "role:admin", "Make an image public.", ["POST /image/v2/images", "PATCH /image/v2/images/{image_id}"]),
        PolicyDefault("communitize_image", adminOrMember, "Make an image community.", ["POST /image/v2/images", "PATCH /image/v2/images/{image_id}"]),
        PolicyDefault("delete_image", adminOrMember, "Delete an image.", ["DELETE /image/v2/images/{image_id}"]),
        PolicyDefault("upload_image", adminOrMember, "Upload an image's data.", ["PUT /image/v2/images/{image_id}/file"]),
        PolicyDefault("download_image", readable, "Download an image's data.", ["GET /image/v2/images/{image_id}/file"]),
    ]

    /// Properties the API itself owns; everything else in a request is a custom property.
    static let core: Set<String> = ["id", "name", "status", "visibility", "protected", "os_hidden", "owner", "disk_format",
                                    "container_format", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
                                    "min_disk", "min_ram", "tags", "created_at", "updated_at", "self", "file", "schema",
                                    "locations", "direct_url", "stores"]
    static let visibilities: Set<String> = ["private", "shared", "community", "public"]
    /// The attributes a client never sets: Glance refuses them (403) before its schema.
    static let readOnly: Set<String> = ["status", "size", "checksum", "virtual_size", "os_hash_algo", "os_hash_value", "created_at",
                                        "updated_at", "self", "file", "schema", "direct_url"]

    /// Glance's image schema for a create: its base properties, and any other property a
    /// string (Glance's permissive schema); refusals read "Provided object does not match
    /// schema 'image': …". Read-only attributes are refused first, with Glance's 403.
    static let imageCreate: Schema = {
        let uuid = Schema.Rule(regex: "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$")
        func formats(_ names: Set<String>) -> Schema {
            Schema(types: [.null, .string], choices: [.null] + names.sorted().map(JSON.string))
        }
        let image = Schema(types: [.object], properties: [
            ("id", .string(pattern: uuid)), ("name", Schema(types: [.null, .string], maxLength: 255)),
            ("visibility", .choice(visibilities.sorted().map(JSON.string), types: [.string])),
            ("protected", .boolean), ("os_hidden", .boolean), ("owner", Schema(types: [.null, .string], maxLength: 255)),
            ("container_format", formats(ImageService.containerFormats)), ("disk_format", formats(ImageService.diskFormats)),
            ("tags", .array(.string(maxLength: 255))), ("min_ram", .integer()), ("min_disk", .integer()),
            ("kernel_id", Schema(types: [.null, .string], pattern: uuid)), ("ramdisk_id", Schema(types: [.null, .string], pattern: uuid)),
            ("locations", .array(.any)), ("stores", .any),
        ], additional: .some(.string()))
        return Schema(types: [.object], fault: { body in
            if let key = body.objectValue?.keys.sorted().first(where: readOnly.contains) {
                return APIFault(.forbidden, "Attribute '\(key)' is read-only.")
            }
            guard let violation = image.violation(body) else { return nil }
            return APIFault(.badRequest, "Provided object does not match schema 'image': \(violation.message)")
        })
    }()

    public init(environment: APIEnvironment, images: ImageService, propertyQuota: Int = 128, logger: Logger) {
        self.environment = environment
        self.propertyQuota = propertyQuota
        self.images = images
        self.logger = logger
    }

    public func register(on router: Router<APIRequestContext>) {
        let group = environment.routes(router, "image")
            .add(middleware: OpenStackErrorMiddleware(style: .glance, publicURL: environment.publicURL, logger: logger))
            .add(middleware: environment.authentication)
        let versions: JSON = ["versions": [["id": "v2.16", "status": "CURRENT",
                                            "links": [["rel": "self", "href": .string(environment.publicURL + "/image/v2/")]]]]]
        group.get { _, _ in respond(.multipleChoices, versions) }
        group.get("versions") { _, _ in respond(.ok, versions) }
        let v2 = group.group("v2")
        registerImages(on: v2)
    }

    func target(_ image: Image) -> [String: String] {
        var target = ["visibility": image.visibility]
        if let owner = image.owner { target["project_id"] = owner; target["owner"] = owner }
        return target
    }

    /// The image, if the caller may see it (404 otherwise, as Glance hides what one cannot see).
    func visible(_ id: String, _ context: APIRequestContext) async throws -> Image {
        let image = try await run { try await images.get(id) }
        guard try context.allows("get_image", target: target(image)) else {
            throw APIFault(.notFound, "No image found with ID \(id)")
        }
        return image
    }

    func run<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let failure as ImageService.Failure {
            switch failure {
            case .notFound(let id): throw APIFault(.notFound, "No image found with ID \(id)")
            case .conflict(let message): throw APIFault(.conflict, message)
            case .invalid(let message): throw APIFault(.badRequest, message)
            case .protected(let id): throw APIFault(.forbidden, "Image \(id) is protected and cannot be deleted.")
            case .tooLarge(let cap): throw APIFault(.contentTooLarge, "Image exceeds the storage quota: the image size cap is \(cap) bytes.")
            }
        }
    }

    func imageJSON(_ image: Image) -> JSON {
        let row = image
        var object: [String: JSON] = [:]
        for (key, value) in image.properties { object[key] = .string(value) }
        object["id"] = .string(row.id)
        object["name"] = .string(row.name)
        object["status"] = .string(row.status)
        object["visibility"] = .string(row.visibility)
        object["protected"] = .bool(row.protected)
        object["os_hidden"] = .bool(row.osHidden)
        object["owner"] = .string(row.owner)
        object["disk_format"] = .string(row.diskFormat)
        object["container_format"] = .string(row.containerFormat)
        object["size"] = row.size.map { JSON.number(Double($0)) } ?? JSON.null
        object["virtual_size"] = row.virtualSize.map { JSON.number(Double($0)) } ?? JSON.null
        object["checksum"] = .string(row.checksum)
        object["os_hash_algo"] = .string(row.osHashAlgo)
        object["os_hash_value"] = .string(row.osHashValue)
        object["min_disk"] = .number(Double(row.minDisk))
        object["min_ram"] = .number(Double(row.minRam))
        object["tags"] = .array(image.tags.map(JSON.string))
        object["created_at"] = glanceTime(row.createdAt)
        object["updated_at"] = glanceTime(row.updatedAt)
        object["self"] = .string("/v2/images/\(row.id)")
        object["file"] = .string("/v2/images/\(row.id)/file")
        object["schema"] = "/v2/schemas/image"
        object["locations"] = []
        return .object(object)
    }
}

/// Glance's timestamps: 2026-11-25T16:00:00Z.
func glanceTime(_ milliseconds: Int64) -> JSON {
    guard case .string(let text) = timestamp(milliseconds: milliseconds) else { return nil }
    return .string(String(text.prefix(19)) + "Z")
}
