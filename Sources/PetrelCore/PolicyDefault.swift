/// One documented policy rule: its name, its default check string, what it guards and the
/// API operations it applies to (for `etc/policy.yaml.sample`). Each API declares its rules;
/// the identity service's policy engine enforces them, so both see this type.
public struct PolicyDefault: Sendable {
    public let name: String
    public let check: String
    public let description: String
    /// "METHOD /path" strings; empty for a base rule that others refer to.
    public let operations: [String]

    public init(_ name: String, _ check: String, _ description: String, _ operations: [String] = []) {
        self.name = name
        self.check = check
        self.description = description
        self.operations = operations
    }
}
