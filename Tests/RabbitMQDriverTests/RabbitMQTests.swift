import Foundation
import RabbitMQDriver
import TestSupport
import Testing

/// Exchanges and queues a test declares, removed at the end whatever happened.
final class Topology: @unchecked Sendable {
    let connection: AMQPConnection
    var queues: [String] = []
    var exchanges: [String] = []
    init(_ connection: AMQPConnection) { self.connection = connection }

    func exchange(_ type: ExchangeType, durable: Bool = false) async throws -> String {
        let name = TestNames.unique("petrel-test-")
        try await connection.declareExchange(name, type: type, durable: durable)
        exchanges.append(name)
        return name
    }

    func queue(durable: Bool = false, ttl: Duration? = nil) async throws -> String {
        let name = try await connection.declareQueue(TestNames.unique("petrel-test-"), durable: durable, messageTTL: ttl)
        queues.append(name)
        return name
    }

    func tearDown() async {
        for queue in queues { try? await connection.deleteQueue(queue) }
        for exchange in exchanges { try? await connection.deleteExchange(exchange) }
        await connection.close()
    }
}

func connect() async throws -> AMQPConnection {
    try Requirement.rabbitmq()
    return try await AMQPConnection.connect(ConnectionOptions(heartbeat: 5))
}

@Suite struct RabbitMQTests {
    @Test func topicPublishConsumeAck() async throws { try await BrokerUse.shared.withShared { try await topicPublishConsumeAck_() } }
    func topicPublishConsumeAck_() async throws {
        let connection = try await connect()
        let topology = Topology(connection)
        do {
            let exchange = try await topology.exchange(.topic, durable: true)
            let queue = try await topology.queue(durable: true, ttl: .seconds(60))
            try await connection.bindQueue(queue, exchange: exchange, routingKey: "compute.*")
            let deliveries = try await connection.consume(queue)
            try await connection.publish(exchange: exchange, routingKey: "compute.node1", body: Array("hello".utf8),
                                         properties: MessageProperties(persistent: true, correlationID: "c-1", replyTo: "reply-q"))
            var iterator = deliveries.makeAsyncIterator()
            let delivery = try #require(try await iterator.next())
            #expect(delivery.body == Array("hello".utf8))
            #expect(delivery.routingKey == "compute.node1" && delivery.exchange == exchange)
            #expect(delivery.properties.correlationID == "c-1" && delivery.properties.replyTo == "reply-q")
            #expect(delivery.properties.persistent && delivery.properties.contentType == "application/json")
            #expect(!delivery.redelivered)
            try await delivery.ack()
            // A key the binding does not match reaches no queue: with mandatory, it says so.
            await #expect(throws: AMQPError.unroutable(exchange: exchange, routingKey: "network.node1")) {
                try await connection.publish(exchange: exchange, routingKey: "network.node1", body: [1], mandatory: true)
            }
        } catch {
            await topology.tearDown()
            throw error
        }
        await topology.tearDown()
    }

    @Test func fanoutReachesEveryQueue() async throws { try await BrokerUse.shared.withShared { try await fanoutReachesEveryQueue_() } }
    func fanoutReachesEveryQueue_() async throws {
        let connection = try await connect()
        let topology = Topology(connection)
        do {
            let exchange = try await topology.exchange(.fanout)
            var streams: [AsyncThrowingStream<Delivery, any Error>] = []
            for _ in 0..<3 {
                let queue = try await topology.queue()
                try await connection.bindQueue(queue, exchange: exchange, routingKey: "")
                streams.append(try await connection.consume(queue))
            }
            try await connection.publish(exchange: exchange, routingKey: "ignored", body: Array("to all".utf8))
            for stream in streams {
                var iterator = stream.makeAsyncIterator()
                let delivery = try #require(try await iterator.next())
                #expect(delivery.body == Array("to all".utf8))
                try await delivery.ack()
            }
        } catch {
            await topology.tearDown()
            throw error
        }
        await topology.tearDown()
    }

    @Test func manyConfirmedPublishesInFlight() async throws { try await BrokerUse.shared.withShared { try await manyConfirmedPublishesInFlight_() } }
    func manyConfirmedPublishesInFlight_() async throws {
        let connection = try await connect()
        let topology = Topology(connection)
        do {
            let queue = try await topology.queue()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<500 {
                    group.addTask { try await connection.publish(exchange: "", routingKey: queue, body: Array("\(index)".utf8)) }
                }
                try await group.waitForAll()
            }
            var seen = Set<String>()
            for try await delivery in try await connection.consume(queue, prefetch: 100) {
                seen.insert(String(decoding: delivery.body, as: UTF8.self))
                try await delivery.ack()
                if seen.count == 500 { break }
            }
            #expect(seen.count == 500)
        } catch {
            await topology.tearDown()
            throw error
        }
        await topology.tearDown()
    }

    @Test func unacknowledgedMessagesAreRedelivered() async throws { try await BrokerUse.shared.withShared { try await unacknowledgedMessagesAreRedelivered_() } }
    func unacknowledgedMessagesAreRedelivered_() async throws {
        let first = try await connect()
        let topology = Topology(first)
        let queue = try await topology.queue(durable: true)
        try await first.publish(exchange: "", routingKey: queue, body: Array("work".utf8),
                                properties: MessageProperties(persistent: true))
        // A consumer takes the message and dies before acknowledging it.
        let consumer = try await connect()
        var iterator = try await consumer.consume(queue).makeAsyncIterator()
        let taken = try #require(try await iterator.next())
        #expect(!taken.redelivered)
        await consumer.close()
        #expect(!consumer.isOpen)
        await #expect(throws: AMQPError.self) { try await taken.ack() }

        var again = try await first.consume(queue).makeAsyncIterator()
        let redelivered = try #require(try await again.next())
        #expect(redelivered.body == Array("work".utf8) && redelivered.redelivered)
        try await redelivered.ack()
        await topology.tearDown()
    }

    @Test func channelErrorsLeaveTheConnectionUsable() async throws { try await BrokerUse.shared.withShared { try await channelErrorsLeaveTheConnectionUsable_() } }
    func channelErrorsLeaveTheConnectionUsable_() async throws {
        let connection = try await connect()
        let topology = Topology(connection)
        let queue = try await topology.queue(durable: false)
        // Redeclaring with other properties: 406 PRECONDITION_FAILED closes the channel…
        do {
            _ = try await connection.declareQueue(queue, durable: true)
            Issue.record("conflicting declaration accepted")
        } catch let AMQPError.channelClosed(code, text) {
            #expect(code == 406 && text.contains("PRECONDITION_FAILED"))
        }
        // …publishing to a missing exchange: 404 NOT_FOUND…
        do {
            try await connection.publish(exchange: TestNames.unique("petrel-missing-"), routingKey: "x", body: [1])
            Issue.record("publish to a missing exchange confirmed")
        } catch let AMQPError.channelClosed(code, _) {
            #expect(code == 404)
        }
        // …and the connection carries on.
        #expect(connection.isOpen)
        try await connection.publish(exchange: "", routingKey: queue, body: [42])
        var iterator = try await connection.consume(queue).makeAsyncIterator()
        #expect(try await iterator.next()?.body == [42])
        await topology.tearDown()
    }

    @Test func connectionFailuresAreClear() async throws { try await BrokerUse.shared.withShared { try await connectionFailuresAreClear_() } }
    func connectionFailuresAreClear_() async throws {
        try Requirement.rabbitmq()
        do {
            _ = try await AMQPConnection.connect(ConnectionOptions(user: "guest", password: "wrong-password"))
            Issue.record("bad password accepted")
        } catch let AMQPError.authenticationRefused(user, _, reason) {
            #expect(user == "guest" && !reason.isEmpty)
        }
        do {
            _ = try await AMQPConnection.connect(ConnectionOptions(port: 1, connectTimeout: .seconds(2)))
            Issue.record("connected to a closed port")
        } catch let AMQPError.brokerUnreachable(host, port, _) {
            #expect(host == "127.0.0.1" && port == 1)
        }
        let connection = try await connect()
        await connection.close()
        await #expect(throws: AMQPError.self) { try await connection.declareQueue("petrel-after-close") }
    }
}
