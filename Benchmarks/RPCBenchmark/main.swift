// RPC benchmark: round-trip latency of `call` and throughput of `call` and `cast` over
// the local RabbitMQ, next to the raw AMQP driver doing the same round trip (the floor
// the RPC layer adds its envelope, JSON and matching to).
//
//   swift run -c release petrel-bench-rpc [--calls N] [--casts N] [--concurrency N]
import Contracts
import Foundation
import Logging
import PetrelCore
import RabbitMQDriver
import RPC

struct Ping: RPCMethod {
    struct Arguments: Codable, Sendable { var sequence: Int }
    struct Result: Codable, Sendable { var sequence: Int }
    static let name = "ping"
    static let version = RPCVersion(1, 0)
}

struct Tick: RPCMethod {
    struct Arguments: Codable, Sendable { var sequence: Int }
    typealias Result = Nothing
    static let name = "tick"
    static let version = RPCVersion(1, 0)
}

actor Counter {
    var count = 0
    func increment() { count += 1 }
}

func option(_ name: String, _ fallback: Int) -> Int {
    let args = CommandLine.arguments
    guard let index = args.firstIndex(of: name), index + 1 < args.count, let value = Int(args[index + 1]) else { return fallback }
    return value
}

func percentile(_ sorted: [Duration], _ p: Double) -> Duration {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

func format(_ d: Duration) -> String {
    let micros = Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
    return String(format: "%.0f µs", micros)
}

let calls = option("--calls", 2000)
let casts = option("--casts", 20000)
let concurrency = option("--concurrency", 32)
var logger = Logger(label: "bench")
logger.logLevel = .warning
let transport = TransportURL(parsing: "rabbit://guest:guest@127.0.0.1:5672/")!
let topic = "petrel-bench-\(UInt32.random(in: 0...UInt32.max))"
let clock = ContinuousClock()

/// Reference: the raw driver, one message out and one back, no envelope.
func rawRoundTrips(_ count: Int) async throws -> [Duration] {
    let clock = ContinuousClock()
    let raw = try await AMQPConnection.connect(ConnectionOptions())
    let requests = try await raw.declareQueue("", durable: false, exclusive: true, autoDelete: true)
    let replies = try await raw.declareQueue("", durable: false, exclusive: true, autoDelete: true)
    let echo = Task {
        for try await delivery in try await raw.consume(requests, prefetch: 256) {
            try await raw.publish(exchange: "", routingKey: replies, body: delivery.body)
            try await delivery.ack()
        }
    }
    var iterator = try await raw.consume(replies, prefetch: 256).makeAsyncIterator()
    var latencies: [Duration] = []
    for index in 0..<count {
        let start = clock.now
        try await raw.publish(exchange: "", routingKey: requests, body: Array("\(index)".utf8))
        let delivery = try await iterator.next()!
        try await delivery.ack()
        latencies.append(clock.now - start)
    }
    echo.cancel()
    await raw.close()
    return latencies
}
let rawLatencies = try await rawRoundTrips(calls)

// The RPC layer.
let server = RPCServer(link: BrokerLink(transport: transport, name: "bench-server", logger: logger), topic: topic,
                       host: "bench", prefetch: 256, logger: logger)
let ticks = Counter()
server.register(Ping.self) { args, _ in Ping.Result(sequence: args.sequence) }
server.register(Tick.self) { _, _ in
    await ticks.increment()
    return Nothing()
}
let serving = Task { await server.run() }
await server.ready()
let clientLink = BrokerLink(transport: transport, name: "bench-client", logger: logger)
let client = RPCClient(link: clientLink, logger: logger)
_ = try await client.call(Ping.self, .init(sequence: -1), topic: topic)  // warm up

var latencies: [Duration] = []
for index in 0..<calls {
    let start = clock.now
    _ = try await client.call(Ping.self, .init(sequence: index), topic: topic)
    latencies.append(clock.now - start)
}

let concurrentStart = clock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    for worker in 0..<concurrency {
        group.addTask {
            for index in stride(from: worker, to: calls * 4, by: concurrency) {
                _ = try await client.call(Ping.self, .init(sequence: index), topic: topic)
            }
        }
    }
    try await group.waitForAll()
}
let concurrentElapsed = clock.now - concurrentStart

let castStart = clock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    for worker in 0..<concurrency {
        group.addTask {
            for index in stride(from: worker, to: casts, by: concurrency) {
                try await client.cast(Tick.self, .init(sequence: index), topic: topic)
            }
        }
    }
    try await group.waitForAll()
}
let castConfirmed = clock.now - castStart
while await ticks.count < casts { try await Task.sleep(for: .milliseconds(5)) }
let castHandled = clock.now - castStart

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
let rawSorted = rawLatencies.sorted(), rpcSorted = latencies.sorted()
print("RPC benchmark over the local RabbitMQ (\(calls) sequential calls; concurrency \(concurrency))")
print("  raw AMQP round trip  p50 \(format(percentile(rawSorted, 0.5)))  p99 \(format(percentile(rawSorted, 0.99)))")
print("  RPC call             p50 \(format(percentile(rpcSorted, 0.5)))  p99 \(format(percentile(rpcSorted, 0.99)))"
      + String(format: "  (%.2fx the raw round trip at p50)", seconds(percentile(rpcSorted, 0.5)) / seconds(percentile(rawSorted, 0.5))))
print(String(format: "  RPC calls, %d in flight: %.0f calls/s", concurrency, Double(calls * 4) / seconds(concurrentElapsed)))
print(String(format: "  RPC casts (persistent, confirmed), %d in flight: %.0f casts/s confirmed, %.0f casts/s handled",
             concurrency, Double(casts) / seconds(castConfirmed), Double(casts) / seconds(castHandled)))

client.stop()
serving.cancel()
if let connection = try? await clientLink.connection() {
    try? await connection.deleteQueue(topic)
    try? await connection.deleteQueue("\(topic).bench")
    try? await connection.deleteExchange(RPCTopology.fanoutExchange(topic))
}
await clientLink.close()
