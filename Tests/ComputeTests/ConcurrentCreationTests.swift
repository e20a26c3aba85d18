import Compute
import Foundation
import Hosts
import Logging
import Store
import TestSupport
import Testing

/// Key pairs and aggregates take their integer ids as MAX(id)+1; concurrent creations (two
/// controllers at once) must all land, and a real duplicate name must still be refused.
@Suite struct ConcurrentCreationTests {
    static let publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test"

    @Test(arguments: TestDatabase.allCases)
    func concurrentCreationsAllLand(backend: TestDatabase) async throws {
        let (url, drop) = try await backend.makeDatabase()
        let first = try Database(url, logger: Logger(label: "ids-test"), connectionWait: .seconds(120), busyBudget: .seconds(300))
        let second = try Database(url, logger: Logger(label: "ids-test-2"), connectionWait: .seconds(120), busyBudget: .seconds(300))
        try await withCleanup {
            try await Migrator().migrate(first)
            let keyPairs = [KeyPairs(database: first), KeyPairs(database: second)]
            let aggregates = [Aggregates(database: first), Aggregates(database: second)]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<12 {
                    group.addTask { _ = try await keyPairs[index % 2].create(userID: "u", name: "k\(index)", type: "ssh", publicKey: Self.publicKey) }
                    group.addTask { _ = try await aggregates[index % 2].create(name: "a\(index)", availabilityZone: nil) }
                }
                try await group.waitForAll()
            }
            #expect(try await keyPairs[0].list(userID: "u").count == 12)
            #expect(Set(try await aggregates[0].list().map(\.id)).count == 12)
            await #expect(throws: KeyPairs.Failure.duplicate("Key pair 'k0' already exists.")) {
                try await keyPairs[1].create(userID: "u", name: "k0", type: "ssh", publicKey: Self.publicKey)
            }
            await #expect(throws: Aggregates.Failure.duplicateName("a0")) { try await aggregates[1].create(name: "a0", availabilityZone: nil) }
        } cleanup: {
            await first.shutdown()
            await second.shutdown()
            await drop()
        }
    }
}
