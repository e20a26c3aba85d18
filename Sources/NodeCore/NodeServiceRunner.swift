import Logging
import ServiceLifecycle

/// Runs one node service in the program's service group: start, reconcile until it
/// succeeds (every `retry`), then its work; registered in `running` from a successful
/// start until its work ends, so the node reports it exactly while it runs. A service that
/// does not start, or whose work ends before shutdown, ends the runner early: the service
/// group then stops the node with an error, and its service manager starts it again
/// (reconciling at start).
public struct NodeServiceRunner: Service {
    let service: any NodeService
    let running: RunningServices
    let retry: Duration
    let logger: Logger

    public init(_ service: any NodeService, running: RunningServices, retry: Duration = .seconds(5), logger: Logger) {
        self.service = service
        self.running = running
        self.retry = retry
        self.logger = logger
    }

    public func run() async throws {
        let log: Logger = {
            var log = logger
            log[metadataKey: "service"] = "\(service.name)"
            return log
        }()
        do {
            try await service.start()
        } catch {
            log.error("service did not start; the node stops", metadata: ["error": "\(error)"])
            return
        }
        await running.started(service)
        log.info("service started", metadata: ["reports": "\(service.reports.map(\.binary).joined(separator: ","))"])
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            try await service.reconcile()
                            log.info("reconciled with the controller")
                            break
                        } catch is CancellationError {
                            break
                        } catch {
                            log.warning("reconciliation failed; retrying", metadata: ["error": "\(error)"])
                            try? await Task.sleep(for: retry)
                        }
                    }
                    return false
                }
                group.addTask {
                    do {
                        try await service.run()
                        if !Task.isCancelled { log.error("service stopped working; the node stops") }
                    } catch is CancellationError {
                    } catch {
                        log.error("service stopped working; the node stops", metadata: ["error": "\(error)"])
                    }
                    return true
                }
                // The service's work ending ends the service, and a reconciliation still retrying.
                for await workEnded in group where workEnded { group.cancelAll() }
            }
        }
        await running.stopped(service.name)
        await service.stop()
        log.info("service stopped")
    }
}
