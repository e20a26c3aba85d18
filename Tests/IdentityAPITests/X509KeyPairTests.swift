import Compute
import ComputeAPI
import Foundation
import HTTPTypes
import Hosts
import Hummingbird
import HummingbirdTesting
@testable import IdentityAPI
import Identity
import Logging
import NIOCore
import PetrelCore
import PetrelHTTP
import ProcessDriver
import Store
import TestSupport
import Testing

/// x509 key pairs (microversion 2.2's `type`): an imported certificate is read as Nova reads
/// it and fingerprinted as Nova does (SHA-1 of the DER, as openssl computes it); a generated
/// one is Nova's self-signed client certificate with its key as PKCS#12, which openssl opens.
@Suite struct X509KeyPairTests {
    struct Cloud: Sendable {
        let client: any TestClientProtocol
        let member: String
        let userID: String
    }

    func withCloud(_ body: @Sendable (Cloud) async throws -> Void) async throws {
        try await withBootstrappedIdentity { database, service in
            let logger = Logger(label: "x509-test")
            let identity = KeystoneAPI(service: service, policy: try Policy(defaults: KeystonePolicy.defaults + ComputeAPI.policyDefaults),
                                       publicURL: "http://controller:5000", logger: logger)
            let router = Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
            ComputeAPI(environment: identity.environment, hosts: HostInventory(database: database, serviceDownTime: 3600), logger: logger)
                .register(on: router)
            identity.register(on: router)
            let (_, member) = try await addProjectUser(service, project: "demo", user: "alice")
            let userID = try await service.write { sql in try await IdentityTables.users.first(sql, where: [.equals("name", "alice")])!.id }
            try await Application(router: router).test(.router) { client in
                try await body(Cloud(client: client, member: member, userID: userID))
            }
        }
    }

    func call(_ cloud: Cloud, _ path: String, method: HTTPRequest.Method = .get, body: JSON? = nil,
              version: String = "2.2") async throws -> (HTTPResponse.Status, JSON?) {
        let headers: HTTPFields = [HTTPField.Name("X-Auth-Token")!: cloud.member, .contentType: "application/json",
                                   HTTPField.Name("OpenStack-API-Version")!: "compute \(version)"]
        return try await cloud.client.execute(uri: "/compute/v2.1" + path, method: method, headers: headers,
                                              body: body.map { ByteBuffer(bytes: $0.encoded()) }) {
            ($0.status, JSON.parse(Array($0.body.readableBytesView)))
        }
    }

    func withDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-x509-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try await body(directory)
    }

    /// A self-signed certificate made by openssl, and openssl's SHA-1 fingerprint of it in Nova's form.
    func opensslCertificate(_ directory: String, subject: String = "/CN=imported") async throws -> (pem: String, fingerprint: String) {
        let pem = try await Command.check("openssl", ["req", "-x509", "-nodes", "-days", "30", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                                      "-keyout", directory + "/imported.key", "-subj", subject])
        let printed = try await Command.check("openssl", ["x509", "-noout", "-fingerprint", "-sha1"], input: pem)
        let fingerprint = try #require(printed.split(separator: "=").last).trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        return (pem, fingerprint)
    }

    @Test func importedCertificatesAreFingerprintedAsNovaDoes() async throws {
        try Requirement.tool("openssl")
        try await withCloud { cloud in
            try await withDirectory { directory in
                let (pem, fingerprint) = try await opensslCertificate(directory)
                var (status, json) = try await call(cloud, "/os-keypairs", method: .post,
                                                    body: ["keypair": ["name": "cert", "type": "x509", "public_key": .string(pem)]])
                #expect(status == .created, "\(String(describing: json))")
                #expect(json == ["keypair": ["name": "cert", "type": "x509", "public_key": .string(pem), "fingerprint": .string(fingerprint),
                                             "user_id": .string(cloud.userID)]], "\(String(describing: json))")
                (status, json) = try await call(cloud, "/os-keypairs/cert")
                #expect(status == .ok && json?["keypair"]?["type"] == "x509" && json?["keypair"]?["fingerprint"] == .string(fingerprint))
                (status, json) = try await call(cloud, "/os-keypairs")
                #expect(json?["keypairs"]?.arrayValue?.first?["keypair"]?["type"] == "x509")
                // Before 2.2 no type is shown, and none may be given.
                (status, json) = try await call(cloud, "/os-keypairs/cert", version: "2.1")
                #expect(status == .ok && json?["keypair"]?["type"] == nil && json?["keypair"]?["fingerprint"] == .string(fingerprint))
                (status, json) = try await call(cloud, "/os-keypairs", method: .post, body: ["keypair": ["name": "c2", "type": "x509", "public_key": .string(pem)]],
                                                version: "2.1")
                #expect(status == .badRequest)

                // Text around the certificate (openssl's `-text` dump, another PEM block first) is ignored, as cryptography ignores it.
                let key = try String(contentsOfFile: directory + "/imported.key", encoding: .utf8)
                #expect(try KeyPairs.fingerprint(ofCertificate: "Certificate:\n  Data: …\n" + key + pem + "trailing words\n") == fingerprint)
                #expect(try KeyPairs.fingerprint(ofCertificate: pem.replacingOccurrences(of: "\n", with: "\r\n")) == fingerprint)
            }
        }
    }

    @Test func aBadCertificateIsRefusedInNovasWords() async throws {
        try Requirement.tool("openssl")
        try await withCloud { cloud in
            try await withDirectory { directory in
                let (pem, _) = try await opensslCertificate(directory)
                let lines = pem.split(separator: "\n").map(String.init)
                let body = lines.dropFirst().dropLast().joined()
                let der = try #require(Data(base64Encoded: body))
                func wrap(_ bytes: Data) -> String {
                    "-----BEGIN CERTIFICATE-----\n" + bytes.base64EncodedString(options: .lineLength64Characters) + "\n-----END CERTIFICATE-----\n"
                }
                var tampered = der
                tampered[tampered.count - 5] ^= 0xFF  // a flipped byte inside the signature keeps the DER whole: still a certificate
                let key = try String(contentsOfFile: directory + "/imported.key", encoding: .utf8)
                let bad: [(String, String)] = [
                    ("not PEM", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv Generated-by-Nova"),
                    ("no end line", lines.dropLast().joined(separator: "\n")),
                    ("a private key", key),
                    ("cut short", wrap(der.dropLast(10))),
                    ("a byte after it", wrap(der + Data([0]))),
                    ("not base64", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
                    ("a DER that is no certificate", wrap(Data([0x30, 0x03, 0x02, 0x01, 0x01]))),
                    ("a wrong inner tag", wrap(Data([der[0], der[1], der[2], der[3]]) + Data([0x31]) + der.dropFirst(5))),
                ]
                let prefix = "Keypair data is invalid: failed to generate X509 fingerprint. Error message: "
                for (what, text) in bad {
                    let (status, json) = try await call(cloud, "/os-keypairs", method: .post,
                                                        body: ["keypair": ["name": "bad", "type": "x509", "public_key": .string(text)]])
                    #expect(status == .badRequest, "\(what)")
                    let message = json?["badRequest"]?["message"]?.stringValue ?? ""
                    #expect(message.hasPrefix(prefix) && message.count > prefix.count, "\(what): \(message)")
                }
                #expect(message(try await call(cloud, "/os-keypairs", method: .post,
                                               body: ["keypair": ["name": "bad", "type": "x509", "public_key": .string(key)]]).1)
                        == prefix + "Valid PEM but no BEGIN CERTIFICATE/END CERTIFICATE delimiters. Are you sure this is a certificate?")
                #expect(try await call(cloud, "/os-keypairs/bad").0 == .notFound, "nothing was stored")
                // A certificate is no SSH key, and an SSH key no certificate.
                #expect(try await call(cloud, "/os-keypairs", method: .post,
                                       body: ["keypair": ["name": "bad", "type": "ssh", "public_key": .string(pem)]]).0 == .badRequest)
                #expect(throws: Never.self) { try KeyPairs.fingerprint(ofCertificate: wrap(tampered)) }
            }
        }
    }

    func message(_ json: JSON?) -> String? { json?.objectValue?.values.first?["message"]?.stringValue }

    @Test func generatedKeyPairsAreNovasClientCertificates() async throws {
        try Requirement.tool("openssl")
        try await withCloud { cloud in
            try await withDirectory { directory in
                var (status, json) = try await call(cloud, "/os-keypairs", method: .post, body: ["keypair": ["name": "made", "type": "x509"]])
                #expect(status == .created, "\(String(describing: json))")
                let keypair = try #require(json?["keypair"])
                #expect(keypair["type"] == "x509" && keypair["user_id"] == .string(cloud.userID))
                let certificate = try #require(keypair["public_key"]?.stringValue)
                let privateKey = try #require(keypair["private_key"]?.stringValue)
                #expect(certificate.hasPrefix("-----BEGIN CERTIFICATE-----\n"))
                // The fingerprint is openssl's SHA-1 of the certificate.
                let printed = try await Command.check("openssl", ["x509", "-noout", "-fingerprint", "-sha1", "-subject", "-ext",
                                                                  "extendedKeyUsage,subjectAltName", "-enddate", "-startdate"], input: certificate)
                let sha1 = try #require(printed.split(separator: "\n").first { $0.contains("Fingerprint=") }?.split(separator: "=").last).lowercased()
                #expect(keypair["fingerprint"] == .string(sha1), "\(printed)")
                #expect(printed.contains("subject=CN = \(cloud.userID)"), "\(printed)")
                #expect(printed.contains("TLS Web Client Authentication"), "\(printed)")
                #expect(printed.contains("UPN:") && printed.contains(":\(cloud.userID)@localhost"), "the user's UPN: \(printed)")
                // 3650 days.
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.timeZone = TimeZone(identifier: "UTC")
                formatter.dateFormat = "MMM d HH:mm:ss yyyy 'GMT'"
                func date(_ prefix: String) -> Date? {
                    printed.split(separator: "\n").first { $0.hasPrefix(prefix) }
                        .flatMap { formatter.date(from: $0.dropFirst(prefix.count).split(separator: " ").joined(separator: " ")) }
                }
                let start = try #require(date("notBefore="), "\(printed)"), end = try #require(date("notAfter="), "\(printed)")
                #expect(abs(end.timeIntervalSince(start) - 3650 * 86400) < 2)

                // The private key is a PKCS#12 (empty password) holding the key of this certificate.
                let bundle = directory + "/made.p12"
                let pkcs12 = try #require(Data(base64Encoded: privateKey))
                try pkcs12.write(to: URL(fileURLWithPath: bundle))
                let opened = try await Command.check("openssl", ["pkcs12", "-in", bundle, "-nodes", "-passin", "pass:"])
                #expect(opened.contains("-----BEGIN PRIVATE KEY-----"))
                let bundled = try #require(opened.range(of: "-----BEGIN CERTIFICATE-----")).lowerBound
                let bundledCertificate = String(opened[bundled...])
                #expect(try KeyPairs.fingerprint(ofCertificate: bundledCertificate) == sha1)
                try String(opened).write(toFile: directory + "/made.pem", atomically: true, encoding: .utf8)
                let keyModulus = try await Command.check("openssl", ["rsa", "-in", directory + "/made.pem", "-noout", "-modulus"])
                let certificateModulus = try await Command.check("openssl", ["x509", "-noout", "-modulus"], input: certificate)
                #expect(keyModulus == certificateModulus && keyModulus.hasPrefix("Modulus="))
                #expect(try await Command.check("openssl", ["rsa", "-in", directory + "/made.pem", "-noout", "-text"]).contains("2048 bit"))

                (status, json) = try await call(cloud, "/os-keypairs/made")
                #expect(json?["keypair"]?["public_key"] == .string(certificate) && json?["keypair"]?["private_key"] == nil)
                // Another generation gives another certificate.
                (status, json) = try await call(cloud, "/os-keypairs", method: .post, body: ["keypair": ["name": "made-2", "type": "x509"]])
                #expect(status == .created && json?["keypair"]?["fingerprint"] != .string(sha1))
                // From 2.92 Nova generates no key pair: the public key is required.
                (status, json) = try await call(cloud, "/os-keypairs", method: .post, body: ["keypair": ["name": "late", "type": "x509"]], version: "2.92")
                #expect(status == .badRequest && message(json)?.contains("'public_key' is a required property") == true, "\(String(describing: json))")
                // A user id with characters openssl's configuration or `-subj` would read is taken as it is.
                let odd = try await KeyPairs.generateX509(userID: "odd$user#1/x+y")
                let oddSubject = try await Command.check("openssl", ["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-ext", "subjectAltName"],
                                                         input: odd.certificate)
                #expect(oddSubject.contains("CN=odd$user#1/x\\+y") && oddSubject.contains("odd$user#1/x+y@localhost"), "\(oddSubject)")
                // ssh generation is unchanged.
                (status, json) = try await call(cloud, "/os-keypairs", method: .post, body: ["keypair": ["name": "ssh-made"]], version: "2.91")
                #expect(status == .created && json?["keypair"]?["type"] == "ssh"
                        && json?["keypair"]?["private_key"]?.stringValue?.hasPrefix("-----BEGIN RSA PRIVATE KEY-----") == true)
            }
        }
    }
}
