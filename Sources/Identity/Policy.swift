import Foundation
import PetrelCore
import Yams

/// A policy rule in oslo.policy's language (the subset OpenStack's defaults use):
/// `role:admin`, `rule:admin_required`, `project_id:%(target.project.id)s`,
/// `system_scope:all`, `@` (always), `!` (never), an empty string (always), combined with
/// `and`, `or`, `not` and parentheses (`not` binds tightest, then `and`, then `or`).
public indirect enum PolicyRule: Equatable, Sendable, CustomStringConvertible {
    case always
    case never
    case role(String)
    case rule(String)
    /// A credential attribute compared with a literal or with a value of the target.
    case match(attribute: String, value: PolicyValue)
    case not(PolicyRule)
    case all([PolicyRule])
    case any([PolicyRule])

    public var description: String {
        switch self {
        case .always: return "@"
        case .never: return "!"
        case .role(let name): return "role:\(name)"
        case .rule(let name): return "rule:\(name)"
        case .match(let attribute, .literal(let value)): return "\(attribute):\(value)"
        case .match(let attribute, .target(let path)): return "\(attribute):%(\(path))s"
        case .not(let rule): return "not \(rule)"
        case .all(let rules): return "(" + rules.map(\.description).joined(separator: " and ") + ")"
        case .any(let rules): return "(" + rules.map(\.description).joined(separator: " or ") + ")"
        }
    }
}

public enum PolicyValue: Equatable, Sendable {
    case literal(String)
    /// `%(target.project.id)s`: a dotted path into the target.
    case target(String)
}

public struct PolicySyntaxError: Error, CustomStringConvertible, Equatable {
    public let rule: String
    public let reason: String
    public var description: String { "policy rule '\(rule)': \(reason)" }
}

/// Who is asking: the token's user, scope and roles, as oslo.policy's credentials.
public struct PolicyCredentials: Sendable {
    public var roles: Set<String>
    /// Other attributes: `user_id`, `project_id`, `domain_id`, `system_scope` ("all"), …
    public var attributes: [String: String]
    /// Attributes with several values (`service_roles`): a check holds when any value matches, as
    /// oslo.policy checks a list.
    public var lists: [String: Set<String>]

    public init(roles: Set<String>, attributes: [String: String] = [:], lists: [String: Set<String>] = [:]) {
        self.roles = roles
        self.attributes = attributes
        self.lists = lists
    }
}

/// The rules of one program, by name: built-in defaults, overridden rule by rule from a YAML
/// policy file. One enforcement point for every API.
public struct Policy: Sendable {
    public private(set) var rules: [String: PolicyRule]

    public init(defaults: [(name: String, rule: String)]) throws {
        rules = [:]
        for (name, text) in defaults { rules[name] = try Self.parse(text) }
    }

    /// Overrides rules from a YAML map of rule name → rule text (oslo.policy's file format).
    public mutating func override(yaml: String, file: String) throws {
        let document: Any?
        do {
            document = try Yams.load(yaml: yaml)
        } catch {
            throw PolicySyntaxError(rule: file, reason: "not YAML: \(error)")
        }
        guard let map = document as? [String: Any] else {
            if document == nil { return }
            throw PolicySyntaxError(rule: file, reason: "expected a map of rule name to rule")
        }
        for (name, value) in map {
            guard let text = value as? String else {
                throw PolicySyntaxError(rule: name, reason: "the rule must be a string")
            }
            rules[name] = try Self.parse(text)
        }
    }

    /// Whether `credentials` may do `action` on `target` (flattened, dotted keys such as
    /// `target.project.id`). An unknown action is refused.
    public func enforce(_ action: String, credentials: PolicyCredentials, target: [String: String] = [:]) -> Bool {
        guard let rule = rules[action] else { return false }
        return evaluate(rule, credentials, target, depth: 0)
    }

    private func evaluate(_ rule: PolicyRule, _ credentials: PolicyCredentials, _ target: [String: String], depth: Int) -> Bool {
        guard depth < 32 else { return false }  // a rule that refers to itself refuses
        switch rule {
        case .always: return true
        case .never: return false
        case .role(let name): return credentials.roles.contains(name.lowercased()) || credentials.roles.contains(name)
        case .rule(let name):
            guard let referenced = rules[name] else { return false }
            return evaluate(referenced, credentials, target, depth: depth + 1)
        case .match(let attribute, let value):
            // oslo.policy's forms with a constant on the left: `'manager':%(target.role.name)s`
            // compares the constant with the target, `None:%(target.x)s` holds when the target has no value.
            if case .target(let path) = value, let constant = Self.constant(attribute) {
                return constant == nil ? target[path] == nil : target[path] == constant
            }
            if let list = credentials.lists[attribute] {
                switch value {
                case .literal(let literal): return list.contains(literal.lowercased()) || list.contains(literal)
                case .target(let path): return target[path].map(list.contains) ?? false
                }
            }
            // `domain_id:None` holds when the credentials have no such attribute.
            if case .literal("None") = value { return credentials.attributes[attribute] == nil }
            guard let have = credentials.attributes[attribute] else { return false }
            switch value {
            case .literal(let literal): return have.lowercased() == literal.lowercased()
            case .target(let path):
                guard let wanted = target[path] else { return false }
                return have == wanted
            }
        case .not(let inner): return !evaluate(inner, credentials, target, depth: depth + 1)
        case .all(let rules): return rules.allSatisfy { evaluate($0, credentials, target, depth: depth + 1) }
        case .any(let rules): return rules.contains { evaluate($0, credentials, target, depth: depth + 1) }
        }
    }

    /// A constant on the left of a check: a quoted string, or `None` (nil inside). Nil outside
    /// means the left side is a credential attribute.
    private static func constant(_ attribute: String) -> String?? {
        if attribute == "None" { return .some(nil) }
        for quote in ["'", "\""] where attribute.count >= 2 && attribute.hasPrefix(quote) && attribute.hasSuffix(quote) {
            return .some(String(attribute.dropFirst().dropLast()))
        }
        return nil
    }

    // MARK: parsing

    public static func parse(_ text: String) throws -> PolicyRule {
        var tokens = try tokenize(text)
        if tokens.isEmpty { return .always }
        let rule = try parseOr(&tokens, text)
        guard tokens.isEmpty else { throw PolicySyntaxError(rule: text, reason: "unexpected '\(tokens[0])'") }
        return rule
    }

    private static func tokenize(_ text: String) throws -> [String] {
        var tokens: [String] = []
        var current = ""
        var inSubstitution = false  // inside `%(…)s`, parentheses belong to the check
        for character in text {
            if character == "(" && current.hasSuffix("%") {
                inSubstitution = true
                current.append(character)
            } else if character == ")" && inSubstitution {
                inSubstitution = false
                current.append(character)
            } else if character == "(" || character == ")" {
                if !current.isEmpty { tokens.append(current); current = "" }
                tokens.append(String(character))
            } else if character.isWhitespace {
                if !current.isEmpty { tokens.append(current); current = "" }
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }

    private static func parseOr(_ tokens: inout [String], _ text: String) throws -> PolicyRule {
        var terms = [try parseAnd(&tokens, text)]
        while tokens.first?.lowercased() == "or" {
            tokens.removeFirst()
            terms.append(try parseAnd(&tokens, text))
        }
        return terms.count == 1 ? terms[0] : .any(terms)
    }

    private static func parseAnd(_ tokens: inout [String], _ text: String) throws -> PolicyRule {
        var terms = [try parseNot(&tokens, text)]
        while tokens.first?.lowercased() == "and" {
            tokens.removeFirst()
            terms.append(try parseNot(&tokens, text))
        }
        return terms.count == 1 ? terms[0] : .all(terms)
    }

    private static func parseNot(_ tokens: inout [String], _ text: String) throws -> PolicyRule {
        if tokens.first?.lowercased() == "not" {
            tokens.removeFirst()
            return .not(try parseNot(&tokens, text))
        }
        return try parseAtom(&tokens, text)
    }

    private static func parseAtom(_ tokens: inout [String], _ text: String) throws -> PolicyRule {
        guard let token = tokens.first else { throw PolicySyntaxError(rule: text, reason: "ends where a check was expected") }
        tokens.removeFirst()
        if token == "(" {
            let inner = try parseOr(&tokens, text)
            guard tokens.first == ")" else { throw PolicySyntaxError(rule: text, reason: "missing ')'") }
            tokens.removeFirst()
            return inner
        }
        if token == ")" || ["and", "or"].contains(token.lowercased()) {
            throw PolicySyntaxError(rule: text, reason: "unexpected '\(token)'")
        }
        if token == "@" { return .always }
        if token == "!" { return .never }
        guard let colon = token.firstIndex(of: ":") else {
            throw PolicySyntaxError(rule: text, reason: "'\(token)' is not a check (kind:value)")
        }
        let kind = String(token[..<colon])
        let value = String(token[token.index(after: colon)...])
        guard !kind.isEmpty, !value.isEmpty else { throw PolicySyntaxError(rule: text, reason: "'\(token)' is incomplete") }
        switch kind {
        case "role": return .role(value)
        case "rule": return .rule(value)
        default:
            if value.hasPrefix("%("), value.hasSuffix(")s") {
                return .match(attribute: kind, value: .target(String(value.dropFirst(2).dropLast(2))))
            }
            return .match(attribute: kind, value: .literal(value.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))))
        }
    }
}

extension Policy {
    public init(defaults: [PolicyDefault]) throws {
        try self.init(defaults: defaults.map { ($0.name, $0.check) })
    }

    /// A commented YAML file listing every rule with its default, as `oslopolicy-sample-generator` writes.
    public static func sampleFile(_ defaults: [PolicyDefault]) -> String {
        var out = "# Petrel policy file. Every rule is listed with its built-in default (commented out).\n"
        out += "# Uncomment and change a rule to override it; rules not in the file keep their default.\n"
        for rule in defaults {
            out += "\n# \(rule.description)\n"
            for operation in rule.operations { out += "# \(operation)\n" }
            out += "#\"\(rule.name)\": \"\(rule.check)\"\n"
        }
        return out
    }
}
