import CRabbitMQ
import Foundation

/// Byte strings lent to librabbitmq for the duration of one call.
enum AMQPBytes {
    static func with<R>(_ text: String, _ body: (amqp_bytes_t) throws -> R) rethrows -> R {
        var bytes = Array(text.utf8)
        return try bytes.withUnsafeMutableBytes { raw in
            try body(amqp_bytes_t(len: raw.count, bytes: raw.count == 0 ? nil : raw.baseAddress))
        }
    }

    static func withBody<R>(_ body: [UInt8], _ call: (amqp_bytes_t) throws -> R) rethrows -> R {
        var copy = body
        return try copy.withUnsafeMutableBytes { raw in
            try call(amqp_bytes_t(len: raw.count, bytes: raw.count == 0 ? nil : raw.baseAddress))
        }
    }

    static func string(_ bytes: amqp_bytes_t) -> String {
        guard bytes.len > 0, let base = bytes.bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: base, count: bytes.len), as: UTF8.self)
    }

    static func array(_ bytes: amqp_bytes_t) -> [UInt8] {
        guard bytes.len > 0, let base = bytes.bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: bytes.len))
    }
}

/// An AMQP field table of integer arguments (`x-message-ttl`, `x-expires`).
enum AMQPTable {
    static func withIntegers<R>(_ entries: [(String, Int32)], _ body: (amqp_table_t) -> R) -> R {
        guard !entries.isEmpty else { return body(amqp_empty_table) }
        var keys = entries.map { Array($0.0.utf8) }
        return keys.withUnsafeMutableBufferPointer { keyBuffers in
            var table: [amqp_table_entry_t] = []
            for (index, entry) in entries.enumerated() {
                var value = amqp_field_value_t()
                value.kind = UInt8(AMQP_FIELD_KIND_I32.rawValue)
                value.value.i32 = entry.1
                let key = keyBuffers[index].withUnsafeMutableBytes { amqp_bytes_t(len: $0.count, bytes: $0.baseAddress) }
                table.append(amqp_table_entry_t(key: key, value: value))
            }
            return table.withUnsafeMutableBufferPointer { buffer in
                body(amqp_table_t(num_entries: Int32(buffer.count), entries: buffer.baseAddress))
            }
        }
    }
}

enum AMQPProperties {
    static func with<R>(_ properties: MessageProperties, _ body: (UnsafePointer<amqp_basic_properties_t>) -> R) -> R {
        var strings: [[UInt8]] = [
            Array((properties.contentType ?? "").utf8),
            Array((properties.messageID ?? "").utf8),
            Array((properties.correlationID ?? "").utf8),
            Array((properties.replyTo ?? "").utf8),
            Array((properties.expirationMilliseconds.map(String.init) ?? "").utf8),
        ]
        return strings.withUnsafeMutableBufferPointer { buffers in
            func bytes(_ index: Int) -> amqp_bytes_t {
                buffers[index].withUnsafeMutableBytes { amqp_bytes_t(len: $0.count, bytes: $0.baseAddress) }
            }
            var raw = amqp_basic_properties_t()
            if properties.contentType != nil { raw._flags |= PropertyFlag.contentType; raw.content_type = bytes(0) }
            if properties.messageID != nil { raw._flags |= PropertyFlag.messageID; raw.message_id = bytes(1) }
            if properties.correlationID != nil { raw._flags |= PropertyFlag.correlationID; raw.correlation_id = bytes(2) }
            if properties.replyTo != nil { raw._flags |= PropertyFlag.replyTo; raw.reply_to = bytes(3) }
            if properties.expirationMilliseconds != nil { raw._flags |= PropertyFlag.expiration; raw.expiration = bytes(4) }
            raw._flags |= PropertyFlag.deliveryMode
            raw.delivery_mode = properties.persistent ? 2 : 1
            return withUnsafePointer(to: &raw) { body($0) }
        }
    }

    static func read(_ raw: amqp_basic_properties_t) -> MessageProperties {
        func text(_ flag: amqp_flags_t, _ bytes: amqp_bytes_t) -> String? {
            raw._flags & flag != 0 ? AMQPBytes.string(bytes) : nil
        }
        return MessageProperties(contentType: text(PropertyFlag.contentType, raw.content_type),
                                 persistent: raw._flags & PropertyFlag.deliveryMode != 0 && raw.delivery_mode == 2,
                                 messageID: text(PropertyFlag.messageID, raw.message_id),
                                 correlationID: text(PropertyFlag.correlationID, raw.correlation_id),
                                 replyTo: text(PropertyFlag.replyTo, raw.reply_to),
                                 expirationMilliseconds: text(PropertyFlag.expiration, raw.expiration).flatMap { Int($0) })
    }
}
