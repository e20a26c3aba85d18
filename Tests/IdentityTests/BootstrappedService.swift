import Foundation
@testable import Identity
import Logging
import PetrelCore
import Store
import TestSupport

/// A freshly bootstrapped cloud on `backend` (admin / admin-pw on project admin, bcrypt cost 4)
/// with an identity service whose options `configure` may change; removed afterwards. The
/// body also gets the directory that holds the token keys (free for other key repositories).
func withBootstrappedService(_ backend: TestDatabase, configure: (inout IdentityOptions) -> Void = { _ in },
                             _ body: @Sendable (Database, IdentityService, String) async throws -> Void) async throws {
    let (url, drop) = try await backend.makeDatabase()
    let database = try Database(url, logger: Logger(label: "identity-test"))
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-identity-\(UUID().uuidString)").path
    try await withCleanup {
        try await Migrator().migrate(database)
        var bootstrap = Bootstrap(adminPassword: "admin-pw", publicURL: "http://controller:5000")
        bootstrap.passwordCost = 4
        try await bootstrap.run(on: database)
        try FernetKeyRepository(directory: base + "/tokens").setup()
        var options = IdentityOptions(keyRepository: base + "/tokens")
        options.passwordCost = 4
        configure(&options)
        try await body(database, try IdentityService(database: database, options: options, logger: Logger(label: "identity-test")), base)
    } cleanup: {
        await database.shutdown()
        await drop()
        try? FileManager.default.removeItem(atPath: base)
    }
}
