import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle

/// Options every Petrel program takes.
public struct ConfigFileOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file (INI).", valueName: "path"))
    public var config: String?

    public init() {}

    /// Loads and validates the configuration; a problem ends the program with the file,
    /// line and reason on standard error.
    public func load() throws -> PetrelConfig {
        do {
            return try PetrelConfig.load(path: config ?? PetrelConfig.defaultPath, mustExist: config != nil)
        } catch let error as ConfigError {
            throw ValidationError("configuration error: \(error)")
        }
    }
}

public enum PetrelProgram {
    /// Sets up logging and metrics from `config`; returns the program's logger.
    public static func prepare(_ name: String, config: PetrelConfig) -> Logger {
        PetrelLogging.bootstrap(format: config.logFormat, debug: config.debug)
        PetrelMetrics.bootstrap()
        var logger = Logger(label: name)
        logger[metadataKey: "host"] = "\(config.host)"
        return logger
    }

    /// Runs `services` until SIGTERM or SIGINT, then shuts them down gracefully in reverse order.
    public static func run(_ services: [any Service], logger: Logger) async throws {
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        logger.info("stopped")
    }
}

/// Runs a task beside the program's services until graceful shutdown; a task that ends
/// early (`once`) does not end the program.
public struct BackgroundTask: Service {
    let body: @Sendable () async -> Void
    let once: Bool

    public init(once: Bool = false, _ body: @escaping @Sendable () async -> Void) {
        self.once = once
        self.body = body
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { await body() }
        if once { try? await gracefulShutdown() }
    }
}
