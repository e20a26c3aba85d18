import Contracts
import RPC

/// The controller as the compute service talks to it: what should be on this host, and the
/// news of what the host did. Over RPC in the node; tests substitute their own.
public protocol ComputeController: Sendable {
    /// The instances the controller places on `host` (only those of `ids` when given).
    func instances(on host: String, ids: [String]?) async throws -> [InstanceSpec]
    func update(_ update: InstanceUpdate.Arguments, context: RequestContext) async throws
    func buildFailed(_ failure: BuildFailed.Arguments, context: RequestContext) async throws
}

/// The controller over RabbitMQ: `InstancesOnHost` calls and `InstanceUpdate`/`BuildFailed`
/// casts to the conductor. A cast waits up to five minutes for the broker to come back.
public struct RPCComputeController: ComputeController {
    let client: RPCClient

    public init(client: RPCClient) { self.client = client }

    public func instances(on host: String, ids: [String]?) async throws -> [InstanceSpec] {
        try await client.call(InstancesOnHost.self, .init(host: host, ids: ids), topic: InstancesOnHost.topic,
                              timeout: .seconds(ids == nil ? 60 : 30)).instances
    }

    public func update(_ update: InstanceUpdate.Arguments, context: RequestContext) async throws {
        try await client.cast(InstanceUpdate.self, update, topic: InstanceUpdate.topic, context: context, patience: .seconds(300))
    }

    public func buildFailed(_ failure: BuildFailed.Arguments, context: RequestContext) async throws {
        try await client.cast(BuildFailed.self, failure, topic: BuildFailed.topic, context: context, patience: .seconds(300))
    }
}
