import CCrypt
import Foundation

/// bcrypt through the system's crypt(3) (libxcrypt), the same C implementation the host's
/// own password tools use: about 10 % faster than a Swift bcrypt here, and every password
/// check costs one full bcrypt. Hashes are `$2b$` strings, compatible with Keystone's.
public enum SystemBcrypt {
    public enum Failure: Error, Equatable { case cannotHash }

    /// A new `$2b$` hash of `password` at `cost` (4…31), with a random salt. bcrypt reads at
    /// most 72 bytes of `password`: callers with longer secrets hash them first.
    public static func hash(_ password: String, cost: Int) throws -> String {
        try hash(password, setting: setting(cost: cost))
    }

    /// A random `$2b$<cost>$<22 characters of salt>` setting.
    public static func setting(cost: Int) throws -> String {
        var entropy = [UInt8](repeating: 0, count: 16)
        for index in entropy.indices { entropy[index] = UInt8.random(in: 0...255) }
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        let salt = entropy.withUnsafeBufferPointer { random in
            random.withMemoryRebound(to: CChar.self) { random in
                crypt_gensalt_rn("$2b$", UInt(max(4, min(31, cost))), random.baseAddress, Int32(random.count),
                                 &setting, Int32(setting.count))
            }
        }
        guard salt != nil else { throw Failure.cannotHash }
        return String(cString: setting)
    }

    /// The `$2b$` hash of `password` with a given setting (or a whole earlier hash).
    public static func hash(_ password: String, setting: String) throws -> String {
        guard let hashed = run(password, setting: setting), hashed.hasPrefix("$2b$") else { throw Failure.cannotHash }
        return hashed
    }

    /// Whether `password` matches `hash` (compared in constant time).
    public static func verify(_ password: String, hash: String) -> Bool {
        guard hash.hasPrefix("$2"), let computed = run(password, setting: hash) else { return false }
        let left = Array(computed.utf8), right = Array(hash.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    /// crypt_r with its work area on the heap (it is ~32 KB); nil when crypt refuses.
    private static func run(_ password: String, setting: String) -> String? {
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer {
            memset(data, 0, MemoryLayout<crypt_data>.size)  // no password material left behind
            data.deallocate()
        }
        memset(data, 0, MemoryLayout<crypt_data>.size)
        guard let output = crypt_r(password, setting, data) else { return nil }
        let text = String(cString: output)
        // crypt signals failure with a string starting with '*'.
        return text.hasPrefix("*") ? nil : text
    }
}
