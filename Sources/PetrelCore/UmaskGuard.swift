import Foundation

/// The file-mode creation mask is one per process. liblvm2cmd sets it to 0077 for the length of
/// each command (and puts it back after): a child spawned meanwhile would inherit 0077 for its
/// whole life (a node started so by a test process, or a dnsmasq by a node, makes directories
/// its unprivileged helpers cannot enter). So LVM's commands and the spawning of children take
/// turns under this one lock.
public enum UmaskGuard {
    nonisolated(unsafe) private static let lock = NSLock()

    public static func exclusive<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
