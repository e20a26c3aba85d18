import Foundation

/// A failed system call or library call that reports an errno-style code.
public struct SystemCallError: Error, CustomStringConvertible, Equatable {
    public let operation: String
    public let code: Int32

    public init(_ operation: String, code: Int32 = errno) {
        self.operation = operation
        self.code = code
    }

    public var description: String { "\(operation): \(String(cString: strerror(code))) (errno \(code))" }
}

/// Version string shared by both programs (`--version`, state reports).
public enum PetrelVersion {
    public static let current = "0.1.0"
}
