import Foundation
import Hummingbird
import Identity
import PetrelHTTP

extension KeystoneSchemas {
    // MARK: domain configuration

    /// Keystone reads `config` and judges its groups and options itself (403 in its words);
    /// `config` must at least be an object.
    static let domainConfigBody = Schema.object([("config", Schema(types: [.object]))], additional: true)
}

/// Domain-specific configuration (`/v3/domains/{domain_id}/config…`) and its defaults
/// (`/v3/domains/config/…/default`).
extension KeystoneAPI {
    /// The request's `config` as groups of options (sorted, for stable answers).
    func configGroups(_ config: [String: JSON]) -> [DomainConfiguration.RequestGroup] {
        config.keys.sorted().map { name in DomainConfiguration.RequestGroup(name: name, options: configOptions(config[name])) }
    }

    /// A group's options: nil unless `value` is an object with at least one option.
    func configOptions(_ value: JSON?) -> [(name: String, value: String)]? {
        guard let object = value?.objectValue, !object.isEmpty else { return nil }
        return object.keys.sorted().map { ($0, String(decoding: object[$0]!.encoded(), as: UTF8.self)) }
    }

    /// `{group: {option: value}}`, or `{option: value}` for a request about one option.
    func configJSON(_ options: [DomainConfiguration.Option], option: String? = nil) -> JSON {
        func value(_ option: DomainConfiguration.Option) -> JSON { JSON.parse(Array(option.value.utf8)) ?? .null }
        if let option, let only = options.first(where: { $0.name == option }) { return .object([only.name: value(only)]) }
        var groups: [String: [String: JSON]] = [:]
        for option in options { groups[option.group, default: [:]][option.name] = value(option) }
        return .object(groups.mapValues(JSON.object))
    }

    func registerDomainConfig(on router: APIRoutes) {
        let paths = ["/v3/domains/:domain_id/config", "/v3/domains/:domain_id/config/:group", "/v3/domains/:domain_id/config/:group/:option"]
        for path in paths {
            router.get(RouterPath(path)) { _, context in
                try context.enforce("identity:get_domain_config")
                let (group, option) = (context.parameters.get("group"), context.parameters.get("option"))
                let options = try await service.domainConfig(try context.parameters.require("domain_id"), group: group, option: option)
                return respond(.ok, ["config": configJSON(options, option: option)])
            }
            router.patch(RouterPath(path), body: .json(KeystoneSchemas.domainConfigBody, style: .nova)) { request, context in
                try context.enforce("identity:update_domain_config")
                let domainID = try context.parameters.require("domain_id")
                let (group, option) = (context.parameters.get("group"), context.parameters.get("option"))
                let config = try await environment.body(request, context)["config"] ?? [:]
                // One option's request carries that option alone: `{"config": {"url": …}}`.
                let groups = if let group, option != nil {
                    [DomainConfiguration.RequestGroup(name: group, options: configOptions(config))]
                } else {
                    configGroups(config.objectValue ?? [:])
                }
                let options = try await service.updateDomainConfig(domainID, with: groups, group: group, option: option)
                return respond(.ok, ["config": configJSON(options)])
            }
            router.delete(RouterPath(path)) { _, context in
                try context.enforce("identity:delete_domain_config")
                try await service.deleteDomainConfig(try context.parameters.require("domain_id"), group: context.parameters.get("group"),
                                                     option: context.parameters.get("option"))
                return noContent()
            }
        }
        router.put("/v3/domains/:domain_id/config", body: .json(KeystoneSchemas.domainConfigBody, style: .nova)) { request, context in
            try context.enforce("identity:create_domain_config")
            let domainID = try context.parameters.require("domain_id")
            let config = try await environment.body(request, context)["config"]?.objectValue ?? [:]
            let (options, created) = try await service.replaceDomainConfig(domainID, with: configGroups(config))
            return respond(created ? .created : .ok, ["config": configJSON(options)])
        }

        // MARK: defaults
        for path in ["/v3/domains/config/default", "/v3/domains/config/:group/default", "/v3/domains/config/:group/:option/default"] {
            router.get(RouterPath(path)) { _, context in
                try context.enforce("identity:get_domain_config_default")
                let (group, option) = (context.parameters.get("group"), context.parameters.get("option"))
                let options = try DomainConfiguration.defaultOptions(group: group, option: option)
                return respond(.ok, ["config": configJSON(options, option: option)])
            }
        }
    }
}
