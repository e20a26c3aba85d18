import Contracts
import Foundation
import Networking
import Hosts
import Logging
import RPC
import Store

/// The controller's side of building and running servers (Nova's conductor): schedules a
/// new server, hands it to its host, retries another host when a build fails there, and
/// applies what nodes report. Everything it does is idempotent and restartable: the state
/// it works from is the database's.
public struct Conductor: Sendable {
    public let servers: Servers
    public let scheduler: Scheduler
    let client: RPCClient
    let maxAttempts: Int
    let logger: Logger
    /// How long a build waits for the volumes it made to be available (Nova's
    /// `block_device_allocate_retries` × interval, 60 × 3 s).
    public var blockDeviceWait: Duration = .seconds(180)

    public init(servers: Servers, scheduler: Scheduler, client: RPCClient, maxAttempts: Int, logger: Logger) {
        self.servers = servers
        self.scheduler = scheduler
        self.client = client
        self.maxAttempts = maxAttempts
        self.logger = logger
    }

    /// Schedules one waiting server and asks its host to build it. Failures end in ERROR
    /// with a fault, never in a server stuck in BUILD.
    public func build(_ id: String, context: RequestContext = RequestContext()) async {
        var log = logger
        log[metadataKey: "request_id"] = "\(context.requestID)"
        log[metadataKey: "instance"] = "\(id)"
        do {
            guard let row = try await servers.database.withConnection({ sql in try await ComputeTables.instances.get(sql, id: id) }),
                  (row.vm == .building && row.task == .scheduling) || (row.vm == .shelvedOffloaded && row.task == .unshelving) else { return }
            let tried = Set(JSONColumn.decode(row.triedHosts, fallback: [String]()))
            let properties = try await servers.spec(row).image?.properties ?? [:]
            let host: String
            do {
                host = try await scheduler.schedule(instanceID: id, imageProperties: properties,
                                                    excluding: tried.union(try await hostsWithoutVolumes(row)))
            } catch let failure as Scheduler.Failure {
                if case .instanceNotFound = failure { return }
                if row.vm == .shelvedOffloaded {
                    // As Nova's: an unshelve with no host to go to leaves the server shelved.
                    log.warning("no host to unshelve the server on", metadata: ["reason": "\(failure)"])
                    try await servers.clearTask(id, .unshelving)
                    return
                }
                let message = tried.isEmpty ? failure.description
                    : "Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance \(id)."
                log.warning("no host for the server", metadata: ["reason": "\(failure)"])
                try await servers.fail(id, fault: InstanceFault(code: 500, message: message, details: failure.description))
                return
            }
            guard try await servers.markSpawning(id) else { return }
            log.info("scheduled", metadata: ["host": "\(host)"])
            do {
                // Its ports, bound to the host, before the host builds it (Nova's allocate_for_instance).
                try await servers.bindPorts(id, host: host)
            } catch let failure as NetworkingFailure {
                log.warning("the server's ports could not be made", metadata: ["reason": "\(failure)"])
                try await servers.fail(id, fault: InstanceFault(code: 500, message: "Build of instance \(id) aborted: \(failure.message)",
                                                                details: failure.description))
                return
            }
            do {
                // Its volumes, made and attached on the host (Nova's _prep_block_device).
                try await prepareBlockDevices(id, host: host, context: context)
            } catch {
                log.warning("the server's volumes could not be prepared", metadata: ["reason": "\(error)"])
                let reason = (error as? Servers.Failure)?.description ?? "\(error)"
                try await servers.fail(id, fault: InstanceFault(code: 500, message: "Build of instance \(id) aborted: \(reason)", details: reason))
                return
            }
            do {
                try await client.cast(BuildInstance.self, .init(instanceID: id), topic: Self.topic(host), context: context,
                                      patience: .seconds(30))
            } catch {
                await buildFailed(.init(instanceID: id, host: host, reason: "the compute service of \(host) is unreachable: \(error)",
                                        retryable: true), context: context)
            }
        } catch {
            log.error("build could not proceed", metadata: ["error": "\(error)"])
            try? await servers.fail(id, fault: InstanceFault(code: 500, message: "Build of instance \(id) aborted: \(error)"))
        }
    }

    /// A node could not build a server: try another host while attempts remain.
    public func buildFailed(_ failure: BuildFailed.Arguments, context: RequestContext) async {
        var log = logger
        log[metadataKey: "request_id"] = "\(context.requestID)"
        log[metadataKey: "instance"] = "\(failure.instanceID)"
        log.warning("build failed", metadata: ["host": "\(failure.host)", "reason": "\(failure.reason)"])
        do {
            guard let attempts = try await servers.releaseFailedBuild(failure.instanceID, host: failure.host) else { return }
            guard failure.retryable, attempts < maxAttempts else {
                let message = failure.retryable
                    ? "Exceeded maximum number of retries. Exceeded max scheduling attempts \(maxAttempts) for instance \(failure.instanceID). Last exception: \(failure.reason)"
                    : "Build of instance \(failure.instanceID) aborted: \(failure.reason)"
                try await servers.fail(failure.instanceID, fault: InstanceFault(code: 500, message: message, details: failure.reason))
                return
            }
            await build(failure.instanceID, context: context)
        } catch {
            log.error("could not record the failed build", metadata: ["error": "\(error)"])
        }
    }

    /// Every `interval`: a build handed to a host whose compute service has since gone down
    /// (no report within `service_down_time`) is taken back and tried elsewhere, so a host
    /// that dies mid-build leaves no server stuck in BUILD. If the host comes back, it finds
    /// the server no longer its own and cleans up what it had made.
    public func watchBuilds(every interval: Duration = .seconds(15)) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            do {
                let building = try await servers.database.withConnection { sql in
                    try await ComputeTables.instances.all(sql, where: [.equals("vm_state", VMState.building.rawValue),
                                                                       .equals("task_state", TaskState.spawning.rawValue)])
                        + ComputeTables.instances.all(sql, where: [.equals("vm_state", VMState.shelvedOffloaded.rawValue),
                                                                   .equals("task_state", TaskState.spawning.rawValue)])
                }
                guard !building.isEmpty else { continue }
                let up = Set(try await scheduler.hosts.services { $0.binary == "nova-compute" }.filter(\.up).map(\.host))
                for row in building {
                    guard let host = row.host, !up.contains(host) else { continue }
                    await buildFailed(.init(instanceID: row.id, host: host, reason: "the compute service of \(host) went down during the build",
                                            retryable: true), context: RequestContext())
                }
            } catch {
                logger.warning("build watch failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Builds a controller left waiting when it stopped.
    public func resumeWaitingBuilds() async {
        guard let waiting = try? await servers.waitingForHost() else { return }
        for row in waiting {
            logger.info("resuming the build of a server", metadata: ["instance": "\(row.id)"])
            await build(row.id)
        }
    }

    /// Claims a resize's (or cold migration's) host and resources and asks the host to do it
    /// (Nova's conductor: the API has answered 202 already). No host: the server stays as it
    /// was, the migration ends in error and the instance action says why.
    public func resize(_ id: String, context: RequestContext = RequestContext()) async {
        var log = logger
        log[metadataKey: "request_id"] = "\(context.requestID)"
        log[metadataKey: "instance"] = "\(id)"
        let host: String
        do {
            guard let claimed = try await scheduler.claimResize(instanceID: id, allowSameHost: scheduler.options.allowResizeToSameHost) else { return }
            host = claimed
        } catch let failure as Scheduler.Failure {
            log.warning("no host for the resize", metadata: ["reason": "\(failure)"])
            if let migration = try? await servers.database.withConnection({ sql in
                try await MigrationRecord.latest(sql, instanceID: id, statuses: ["pre-migrating"])
            }) {
                try? await servers.resizeUnscheduled(id, migrationID: migration.id, reason: failure.description)
            }
            return
        } catch {
            log.error("resize could not be scheduled", metadata: ["error": "\(error)"])
            return
        }
        do {
            try await client.cast(InstanceAction.self, .init(instanceID: id, action: .resize), topic: Self.topic(host), context: context,
                                  patience: .seconds(10))
            log.info("resize sent", metadata: ["host": "\(host)"])
        } catch {
            log.warning("the host could not be asked to resize", metadata: ["host": "\(host)", "error": "\(error)"])
            try? await servers.resizeNotSent(id, reason: "the compute service of \(host) is unreachable: \(error)")
        }
    }

    /// Resizes a controller left waiting for a host when it stopped.
    public func resumeWaitingResizes() async {
        for id in (try? await servers.waitingResizes()) ?? [] {
            logger.info("resuming the resize of a server", metadata: ["instance": "\(id)"])
            await resize(id)
        }
    }

    /// Asks a server's host to run an action begun with `Servers.begin`. If the host cannot
    /// be reached the task is cleared again and the error thrown.
    public func send(_ action: InstanceAction.Arguments, to host: String, context: RequestContext) async throws {
        try await cast(InstanceAction.self, action, to: host, context: context, clearing: action.action.task, of: action.instanceID)
    }

    /// Asks the host to delete a server `Servers.beginDelete` marked; if the host cannot be
    /// asked, the server is left as it was (and may be deleted again).
    public func delete(_ id: String, on host: String, context: RequestContext) async throws {
        try await cast(DeleteInstance.self, .init(instanceID: id), to: host, context: context, clearing: .deleting, of: id)
    }

    /// Casts to a host's compute service; if the broker does not take the message, the task
    /// the API began is cleared so the server is not left waiting for an answer that never comes.
    private func cast<Method: RPCMethod>(_ method: Method.Type, _ arguments: Method.Arguments, to host: String, context: RequestContext,
                                         clearing task: TaskState, of id: String) async throws {
        do {
            try await client.cast(method, arguments, topic: Self.topic(host), context: context, patience: .seconds(10))
        } catch {
            try? await servers.clearTask(id, task)
            throw error
        }
    }

    /// The queue of `host`'s compute service, named as its RPC server binds it.
    static func topic(_ host: String) -> String { RPCTopology.hostTopic(ComputeTopic.name, host: host) }

    public func consoleOutput(_ id: String, on host: String, length: Int?, context: RequestContext) async throws -> String {
        try await client.call(ConsoleOutput.self, .init(instanceID: id, length: length), topic: Self.topic(host), context: context,
                              timeout: .seconds(30)).output
    }

    /// Serves the node-facing methods on the controller's RPC server.
    public func register(on server: RPCServer) {
        server.register(InstanceUpdate.self) { update, context in
            let applied = try await servers.apply(update)
            logger.debug("instance update", metadata: ["instance": "\(update.instanceID)", "kind": "\(update.kind.rawValue)",
                                                       "applied": "\(applied)", "request_id": "\(context.requestID)"])
            return Nothing()
        }
        server.register(BuildFailed.self) { failure, context in
            await buildFailed(failure, context: context)
            return Nothing()
        }
        server.register(InstancesOnHost.self) { query, _ in
            InstancesOnHost.Result(instances: try await servers.specs(host: query.host, ids: query.ids))
        }
    }
}
