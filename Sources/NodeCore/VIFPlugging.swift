/// What the compute service asks of the node's network service before it starts a guest:
/// that the networks of its ports are wired on this host (Nova's wait for
/// `network-vif-plugged`, done inside the one daemon). Throws when they cannot be.
public protocol VIFPlugging: Sendable {
    func plug(networks: [String]) async throws
}
