import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// ISO 8601 times in UTC, written and read with the C library's calendar arithmetic
/// (`gmtime_r`, `timegm`). Foundation's formatters build a Gregorian calendar in the host's
/// time zone first, which on Linux loads ICU's zone tables: ~3 MB of a node's resident memory,
/// and more time than the rest of a token validation.
public enum UTCTime {
    /// `2026-11-25T15:00:00.123Z` (`fractionDigits` 3), `…00.123000Z` (6), `…00Z` (0).
    public static func format(_ date: Date, fractionDigits: Int = 3) -> String {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        var text = "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))"
            + "T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
        if fractionDigits > 0 {
            let digits = min(fractionDigits, 6)
            var scale = 1
            for _ in 0..<digits { scale *= 10 }
            // Read to the microsecond (a whole millisecond such as .927 is 0.92699… as a double),
            // then truncated to `digits`: a time never moves into the next second.
            let micro = min(Int(((date.timeIntervalSince1970 - seconds) * 1_000_000).rounded()), 999_999)
            var fraction = micro
            for _ in digits..<6 { fraction /= 10 }
            text += "." + String(String(fraction + scale).dropFirst())
        }
        return text + "Z"
    }

    /// Reads `YYYY-MM-DD[T| ]hh:mm[:ss[.fraction]][Z|±hh[:mm]]`; no zone means UTC. Nil for
    /// anything else, including impossible dates (month 13, 31 April, hour 24).
    public static func parse(_ text: String) -> Date? {
        var scanner = Digits(Array(text.utf8))
        guard let year = scanner.number(4), scanner.skip("-"), let month = scanner.number(2), scanner.skip("-"),
              let day = scanner.number(2), scanner.skip("T") || scanner.skip("t") || scanner.skip(" "),
              let hour = scanner.number(2), scanner.skip(":"), let minute = scanner.number(2) else { return nil }
        var second = 0
        var fraction = 0.0
        if scanner.skip(":") {
            guard let value = scanner.number(2) else { return nil }
            second = value
            if scanner.skip(".") || scanner.skip(",") {
                var scale = 0.1
                var any = false
                while let digit = scanner.digit() {
                    fraction += Double(digit) * scale
                    scale /= 10
                    any = true
                }
                guard any else { return nil }
            }
        }
        var offset = 0
        if scanner.skip("Z") || scanner.skip("z") {
        } else if let sign = scanner.sign() {
            guard let hours = scanner.number(2) else { return nil }
            _ = scanner.skip(":")
            let minutes = scanner.atEnd ? 0 : scanner.number(2)
            guard let minutes, hours < 24, minutes < 60 else { return nil }
            offset = sign * (hours * 3600 + minutes * 60)
        }
        guard scanner.atEnd, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else {
            return nil
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        // timegm normalizes 31 April to 1 May; such a date was not a date.
        guard parts.tm_mday == Int32(day), parts.tm_mon == Int32(month - 1) else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(seconds - offset) + fraction)
    }

    private struct Digits {
        let bytes: [UInt8]
        var index = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        var atEnd: Bool { index == bytes.count }

        mutating func skip(_ character: Character) -> Bool {
            guard index < bytes.count, bytes[index] == character.asciiValue else { return false }
            index += 1
            return true
        }

        mutating func digit() -> Int? {
            guard index < bytes.count, (48...57).contains(bytes[index]) else { return nil }
            index += 1
            return Int(bytes[index - 1] - 48)
        }

        mutating func number(_ count: Int) -> Int? {
            var value = 0
            for _ in 0..<count {
                guard let digit = digit() else { return nil }
                value = value * 10 + digit
            }
            return value
        }

        mutating func sign() -> Int? {
            if skip("+") { return 1 }
            if skip("-") { return -1 }
            return nil
        }
    }
}
