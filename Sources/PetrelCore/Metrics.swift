import Foundation
import Metrics
import Prometheus

/// The process's Prometheus registry: swift-metrics counters, gauges and timers created
/// anywhere in Petrel land here, and the `/metrics` endpoints render it.
public enum PetrelMetrics {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var shared: PrometheusCollectorRegistry?

    /// Bootstraps swift-metrics with the Prometheus backend once and returns the registry.
    @discardableResult
    public static func bootstrap() -> PrometheusCollectorRegistry {
        lock.lock()
        defer { lock.unlock() }
        if let shared { return shared }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        shared = registry
        return registry
    }

    /// The Prometheus text exposition of every metric registered so far.
    public static func render() -> [UInt8] {
        var buffer: [UInt8] = []
        bootstrap().emit(into: &buffer)
        return buffer
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}
