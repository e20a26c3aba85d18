import Foundation
import Logging

public enum LogFormat: String, Sendable {
    case text
    case json
}

/// Writes log records to standard error as human text or as JSON lines
/// (one object per line: time, level, logger, message, source and metadata).
public struct PetrelLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let format: LogFormat
    let sink: LogSink

    public init(label: String, format: LogFormat, level: Logger.Level, sink: LogSink = .standardError) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        sink.write(Self.render(format: format, label: label, level: event.level, message: event.message.description,
                               metadata: merged, source: event.source, date: Date()))
    }

    static func render(format: LogFormat, label: String, level: Logger.Level, message: String,
                       metadata: Logger.Metadata, source: String, date: Date) -> String {
        let time = UTCTime.format(date)
        switch format {
        case .text:
            var line = "\(time) \(level.rawValue.uppercased()) \(label): \(message)"
            for key in metadata.keys.sorted() { line += " \(key)=\(metadata[key]!)" }
            return line + "\n"
        case .json:
            var object: [String: Any] = ["time": time, "level": level.rawValue, "logger": label, "message": message, "source": source]
            for (key, value) in metadata { object[key] = jsonValue(value) }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self) + "\n"
        }
    }

    private static func jsonValue(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let items): return items.map(jsonValue)
        case .dictionary(let dict): return dict.mapValues(jsonValue)
        }
    }
}

/// Where log lines go. Each line is written with one `write(2)` under a lock, so lines
/// from many threads never interleave.
public final class LogSink: @unchecked Sendable {
    private let lock = NSLock()
    private let fd: Int32
    public static let standardError = LogSink(fileDescriptor: 2)

    public init(fileDescriptor: Int32) { fd = fileDescriptor }

    func write(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Foundation.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { return }
            offset += n
        }
        bytes.removeAll()
    }
}

public enum PetrelLogging {
    private static let once = NSLock()
    nonisolated(unsafe) private static var bootstrapped = false

    /// Installs Petrel's log handler process-wide (once; later calls are ignored, as
    /// swift-log allows a single bootstrap).
    public static func bootstrap(format: LogFormat, debug: Bool) {
        once.lock()
        defer { once.unlock() }
        guard !bootstrapped else { return }
        bootstrapped = true
        LoggingSystem.bootstrap { label in
            PetrelLogHandler(label: label, format: format, level: debug ? .debug : .info)
        }
    }
}
