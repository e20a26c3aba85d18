import Logging

/// Undo for a multi-step host operation (Incus's `revert`): each step records how to take
/// itself back as it succeeds; when a later step fails, the recorded undos run newest first,
/// and when every step succeeded they are dropped.
///
///     try await Reverter.run(logger: log) { revert in
///         try await createDisks(); revert.add("remove disks") { try removeDisks() }
///         try await define();      revert.add("undefine") { try await undefine() }
///         try await start()
///     }
public final class Reverter: @unchecked Sendable {
    public typealias Undo = @Sendable () async throws -> Void

    private var undos: [(name: String, undo: Undo)] = []

    public init() {}

    /// Records the undo of the step that just succeeded.
    public func add(_ name: String, _ undo: @escaping Undo) { undos.append((name, undo)) }

    /// Runs the recorded undos newest first. An undo that fails is logged and the others
    /// still run: a failed undo must not hide the original error.
    public func revert(logger: Logger) async {
        let steps = undos.reversed()
        undos = []
        for step in steps {
            do { try await step.undo() } catch {
                logger.warning("undo failed", metadata: ["step": "\(step.name)", "error": "\(error)"])
            }
        }
    }

    /// Drops the recorded undos: the operation succeeded.
    public func success() { undos = [] }

    /// Runs `body`; if it throws, everything it recorded is undone before the error goes on.
    public static func run<T: Sendable>(logger: Logger, _ body: (Reverter) async throws -> T) async throws -> T {
        let reverter = Reverter()
        do {
            let value = try await body(reverter)
            reverter.success()
            return value
        } catch {
            await reverter.revert(logger: logger)
            throw error
        }
    }
}
