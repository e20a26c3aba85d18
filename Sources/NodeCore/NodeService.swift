import Contracts
import Logging
import RPC

/// One role of `petrel-node` (compute; networking and volumes to come): it starts,
/// reconciles its host with the controller, runs, and stops. The node reports a service's
/// binaries only while it runs.
public protocol NodeService: Sendable {
    /// The name `[node] services` knows it by.
    var name: String { get }
    /// The OpenStack services this one is to the cloud (`nova-compute`, …), as reported.
    var reports: [ServiceReport] { get }
    /// Brings the service up (queues, listeners); it counts as running once this returns.
    func start() async throws
    /// Converges the host with what the controller says should be there. Called after
    /// `start`, again until it succeeds.
    func reconcile() async throws
    /// The service's work (events, periodic tasks) until it is cancelled. Returning or
    /// throwing before that means the service stopped working.
    func run() async throws
    /// Releases what `start` took.
    func stop() async
    /// Adds what the service knows of the host to the node's state report.
    func contribute(to report: inout ReportState.Arguments) async
}

extension NodeService {
    public func stop() async {}
    public func contribute(to report: inout ReportState.Arguments) async {}
}

/// What a node service is built from.
public struct NodeServiceContext: Sendable {
    public var host: String
    public var link: BrokerLink
    public var client: RPCClient
    public var logger: Logger
    /// The node's network service, for the services that plug guests into it.
    public var vifs: (any VIFPlugging)?

    public init(host: String, link: BrokerLink, client: RPCClient, logger: Logger, vifs: (any VIFPlugging)? = nil) {
        self.host = host
        self.link = link
        self.client = client
        self.logger = logger
        self.vifs = vifs
    }

    public func with(vifs: any VIFPlugging) -> NodeServiceContext {
        var context = self
        context.vifs = vifs
        return context
    }
}

/// The services that run now, as the state reporter reads them.
public actor RunningServices {
    private var running: [String: any NodeService] = [:]
    private var order: [String] = []
    /// Counts the changes: a reporter that saw another number reports again at once.
    public private(set) var generation = 0

    public init() {}

    func started(_ service: any NodeService) {
        if running[service.name] == nil { order.append(service.name) }
        running[service.name] = service
        generation += 1
    }

    func stopped(_ name: String) {
        running[name] = nil
        order.removeAll { $0 == name }
        generation += 1
    }

    /// The running services, in the order they started.
    public var services: [any NodeService] { order.compactMap { running[$0] } }
}
