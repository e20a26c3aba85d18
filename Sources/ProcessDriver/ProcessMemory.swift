import Foundation

/// Tuning of this process's own memory allocator.
public enum ProcessMemory {
    /// Caps glibc's malloc arenas (`mallopt(M_ARENA_MAX, count)`); call before threads start.
    /// glibc hands each thread that meets contention an arena of its own, up to eight per core,
    /// and each keeps the memory freed into it. Returns whether glibc took the setting.
    @discardableResult
    public static func limitMallocArenas(_ count: Int32) -> Bool {
        // mallopt is glibc's (malloc.h), which Swift's Glibc module does not bring in.
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return false }  // RTLD_DEFAULT
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        return mallopt(-8 /* M_ARENA_MAX */, count) == 1
    }
}
