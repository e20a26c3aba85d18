/// What can go wrong in an identity operation, in the words the API answers with. The API
/// layer turns each case into Keystone's `{"error": {"code", "title", "message"}}`.
public enum IdentityError: Error, Equatable, Sendable, CustomStringConvertible {
    /// 400: the request is malformed or a field is invalid.
    case badRequest(String)
    /// 401: no valid credentials (wrong password, locked out, disabled, bad or revoked token).
    case unauthorized(String)
    /// 403: the caller may not do this, or the resource's state forbids it.
    case forbidden(String)
    /// 404: "Could not find <kind>: <id>."
    case notFound(kind: String, id: String)
    /// 404 in words of its own.
    case missing(String)
    /// 409: a duplicate.
    case conflict(String)

    public var description: String {
        switch self {
        case .badRequest(let message), .unauthorized(let message), .forbidden(let message), .conflict(let message),
             .missing(let message):
            return message
        case .notFound(let kind, let id): return "Could not find \(kind): \(id)."
        }
    }

    public static let authenticationRequired = IdentityError.unauthorized("The request you have made requires authentication.")
}
