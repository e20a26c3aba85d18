import Foundation
import Logging
import NodeCore
import PetrelCore
import ProcessDriver
import TestSupport
import Testing

/// HTTPS on the controller's listener: a controller with a certificate of a CA made here,
/// driven by the unmodified `openstack` CLI with the CA in clouds.yaml (`cacert`), refused by
/// a client without it, re-reading its certificate on SIGHUP, speaking TLS 1.2 and 1.3 only.
@Suite struct TLSCLITests {
    /// A throw-away CA (EC P-256) in `directory`, issuing server certificates for 127.0.0.1.
    struct TestCA {
        let directory: String
        var certificate: String { directory + "/ca.pem" }
        var key: String { directory + "/ca-key.pem" }

        static func make(in directory: String, name: String = "Petrel test CA") async throws -> TestCA {
            let ca = TestCA(directory: directory)
            try await Command.check("openssl", [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-sha256", "-days", "2",
                "-subj", "/CN=\(name)", "-keyout", ca.key, "-out", ca.certificate,
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            return ca
        }

        /// A certificate for 127.0.0.1 and localhost with serial `serial` (hex) and a new key,
        /// written to `certificate` and `key` (each through a rename, as an operator replaces them).
        func issue(serial: String, certificate: String, key: String) async throws {
            let scratch = directory + "/issue-\(serial)"
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            try """
                basicConstraints = critical, CA:FALSE
                keyUsage = critical, digitalSignature
                extendedKeyUsage = serverAuth
                subjectAltName = IP:127.0.0.1, DNS:localhost
                """.write(toFile: scratch + "/extensions", atomically: true, encoding: .utf8)
            try await Command.check("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                                "-subj", "/CN=127.0.0.1", "-keyout", scratch + "/key.pem", "-out", scratch + "/request.pem"])
            try await Command.check("openssl", ["x509", "-req", "-sha256", "-days", "2", "-in", scratch + "/request.pem",
                                                "-CA", self.certificate, "-CAkey", self.key, "-set_serial", "0x" + serial,
                                                "-extfile", scratch + "/extensions", "-out", scratch + "/cert.pem"])
            for (from, to) in [(scratch + "/key.pem", key), (scratch + "/cert.pem", certificate)] {
                guard rename(from, to) == 0 else { throw SystemCallError("rename \(from) to \(to)") }
            }
        }
    }

    /// The serial number (uppercase hex) of the certificate a new connection to `port` gets, verified against `ca`.
    static func servedSerial(port: Int, ca: String) async throws -> String? {
        let result = try await Command.run("bash", ["-c", """
            openssl s_client -connect 127.0.0.1:\(port) -servername localhost -CAfile '\(ca)' -verify_return_error </dev/null 2>/dev/null |
              openssl x509 -noout -serial
            """])
        guard result.status == 0, let line = result.stdout.split(separator: "\n").first, line.hasPrefix("serial=") else { return nil }
        return String(line.dropFirst("serial=".count))
    }

    /// `openssl s_client` offering only `version` (tls1_1, tls1_2, tls1_3), with OpenSSL's own
    /// floor lowered (no system openssl.cnf, security level 0) so that TLS 1.1 is really offered.
    static func handshake(port: Int, version: String, ca: String) async throws -> CommandResult {
        try await Command.run("env", ["OPENSSL_CONF=/dev/null", "openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-\(version)",
                                      "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", ca], input: "")
    }

    @Test func theCLIWorksOverHTTPSAndTheCertificateIsReloadedOnSIGHUP() async throws {
        let openstack = try KeystoneCLITests.openstack()
        try Requirement.tool("openssl")
        try Requirement.tool("curl")
        let controller = Repository.binDirectory.appendingPathComponent("petrel-controller").path
        try Requirement.require(FileManager.default.isExecutableFile(atPath: controller), "\(controller) is not built")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ca = try await TestCA.make(in: directory)
        let certificate = directory + "/controller.pem", key = directory + "/controller-key.pem"
        try await ca.issue(serial: "A1A1", certificate: certificate, key: key)
        let port = TestPorts.free()
        let url = "https://127.0.0.1:\(port)"
        // No public_url: with a certificate configured it defaults to https://.
        let config = directory + "/petrel.conf"
        try """
            [database]
            connection = sqlite:///\(directory)/petrel.db
            [api]
            listen = 127.0.0.1:\(port)
            tls_cert_file = \(certificate)
            tls_key_file = \(key)
            [token]
            key_repository = \(directory)/keys
            [image]
            store_path = \(directory)/images
            [identity]
            password_hash_rounds = 4
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let clouds = directory + "/clouds.yaml"
        try """
            clouds:
              petrel:
                auth: {auth_url: "\(url)/v3", username: admin, password: admin-pw, project_name: admin,
                       user_domain_name: Default, project_domain_name: Default}
                identity_api_version: 3
                cacert: \(ca.certificate)
              petrel-without-ca:
                auth: {auth_url: "\(url)/v3", username: admin, password: admin-pw, project_name: admin,
                       user_domain_name: Default, project_domain_name: Default}
                identity_api_version: 3
            """.write(toFile: clouds, atomically: true, encoding: .utf8)
        try await Command.check(controller, ["--config", config, "db-sync"])
        try await Command.check(controller, ["--config", config, "token-keys", "setup"])
        try await Command.check(controller, ["--config", config, "bootstrap", "--admin-password", "admin-pw"])
        let child = try ChildProcess(name: "controller", executable: controller, arguments: ["--config", config], logger: Logger(label: "test"))
        // A plain OpenSSL server that does accept TLS 1.1: proof that the client below really offers it.
        let legacyPort = TestPorts.free()
        let legacy = try ChildProcess(name: "s_server", executable: "env", arguments: [
            "OPENSSL_CONF=/dev/null", "openssl", "s_server", "-accept", "127.0.0.1:\(legacyPort)", "-cert", certificate, "-key", key,
            "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-quiet"], logger: Logger(label: "test"))
        try child.start()
        try legacy.start()
        try await withCleanup {
            let up = await eventually {
                (try? await Command.run("curl", ["-sf", "--cacert", ca.certificate, "\(url)/healthcheck"]))?.stdout == "OK"
            }
            try #require(up, "\(child.recentOutput)")
            #expect(child.recentOutput.contains { $0.contains("public_url=\(url)") && $0.contains("serial A1A1") }, "\(child.recentOutput)")
            func cli(_ cloud: String, _ arguments: [String]) async throws -> CommandResult {
                try await Command.run("env", ["-u", "OS_CACERT", "-u", "REQUESTS_CA_BUNDLE", "-u", "SSL_CERT_FILE",
                                              "OS_CLIENT_CONFIG_FILE=\(clouds)", openstack, "--os-cloud", cloud] + arguments)
            }

            // The unmodified CLI, the CA checked: a token, a catalog of https:// endpoints, the compute API.
            let token = try await cli("petrel", ["token", "issue", "-f", "value", "-c", "id"])
            #expect(token.status == 0 && !token.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(token.stderr)")
            let catalog = try await cli("petrel", ["catalog", "list", "-f", "json"])
            let services = (try? JSONSerialization.jsonObject(with: Data(catalog.stdout.utf8))) as? [[String: Any]] ?? []
            let endpoints = services.flatMap { ($0["Endpoints"] as? [[String: Any]]) ?? [] }.compactMap { $0["url"] as? String }
            #expect(catalog.status == 0 && endpoints.contains("\(url)/v3") && endpoints.contains("\(url)/compute/v2.1")
                    && endpoints.allSatisfy { $0.hasPrefix(url + "/") }, "\(catalog.stdout)\n\(catalog.stderr)")
            let servers = try await cli("petrel", ["server", "list", "-f", "json"])
            #expect(servers.status == 0 && servers.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(servers.stdout)\n\(servers.stderr)")

            // Without the CA the certificate does not verify: the CLI and curl refuse the server.
            let unverified = try await cli("petrel-without-ca", ["token", "issue"])
            #expect(unverified.status != 0 && unverified.stderr.contains("CERTIFICATE_VERIFY_FAILED"), "\(unverified.stderr)")
            #expect(try await Command.run("curl", ["-s", "\(url)/healthcheck"]).status == 60, "curl: SSL certificate problem")
            // Plain HTTP on the TLS port gets no answer.
            #expect(try await Command.run("curl", ["-s", "http://127.0.0.1:\(port)/healthcheck"]).stdout != "OK")

            // TLS 1.2 and 1.3 are served, TLS 1.1 is refused (the same client gets TLS 1.1 from s_server).
            for version in ["tls1_2", "tls1_3"] {
                let result = try await Self.handshake(port: port, version: version, ca: ca.certificate)
                #expect(result.status == 0 && result.stdout.contains("Verify return code: 0 (ok)"), "\(version): \(result.stdout)\n\(result.stderr)")
            }
            #expect(await eventually { Requirement.canConnect(port: UInt16(legacyPort)) }, "s_server: \(legacy.recentOutput)")
            let control = try await Self.handshake(port: legacyPort, version: "tls1_1", ca: ca.certificate)
            #expect(control.status == 0 && control.stdout.contains("Protocol  : TLSv1.1"), "s_server: \(control.stdout)\n\(control.stderr)")
            let old = try await Self.handshake(port: port, version: "tls1_1", ca: ca.certificate)
            #expect(old.status != 0 && old.stderr.contains("alert protocol version"), "\(old.stdout)\n\(old.stderr)")

            // The node's client (its service user's token, the image API from the catalog) verifies the
            // controller against [service_user] cafile: an image uploaded by the CLI comes down intact.
            let bytes = directory + "/image.raw"
            try Data((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: bytes))
            let image = try await cli("petrel", ["image", "create", "--file", bytes, "--disk-format", "raw", "--container-format", "bare",
                                                 "-f", "value", "-c", "id", "petrel-test-tls-image"])
            let imageID = image.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(image.status == 0 && !imageID.isEmpty, "\(image.stderr)")
            let nodeConfig = directory + "/node.conf"
            try "[service_user]\nauth_url = \(url)/v3\nusername = admin\npassword = admin-pw\nproject_name = admin\ncafile = \(ca.certificate)\n"
                .write(toFile: nodeConfig, atomically: true, encoding: .utf8)
            let node = try PetrelConfig.load(path: nodeConfig, mustExist: true, environment: [:])
            let user = try #require(node.serviceUser)
            let cloud = CloudClient(user: user, http: try ControllerHTTPClient.shared(cafile: node.serviceCAFile), logger: Logger(label: "test"))
            let md5 = try await cloud.download(image: imageID, to: directory + "/downloaded.raw")
            let expected = try await Command.check("md5sum", [bytes]).prefix(32)
            #expect(md5 == String(expected))
            // Without the bundle (the system's trust store) the node refuses the controller.
            let untrusting = CloudClient(user: user, http: try ControllerHTTPClient.shared(cafile: nil), logger: Logger(label: "test"))
            await #expect(throws: (any Error).self) { _ = try await untrusting.download(image: imageID, to: directory + "/refused.raw") }
            #expect(throws: ControllerHTTPClient.CAFileError.self) { _ = try ControllerHTTPClient.shared(cafile: directory + "/missing-ca.pem") }

            // SIGHUP with a new certificate (and key) in place: new connections get it, the CLI still works.
            #expect(try await Self.servedSerial(port: port, ca: ca.certificate) == "A1A1")
            try await ca.issue(serial: "B2B2", certificate: certificate, key: key)
            child.signal(SIGHUP)
            let reloaded = await eventually { (try? await Self.servedSerial(port: port, ca: ca.certificate)) == "B2B2" }
            #expect(reloaded, "\(child.recentOutput.suffix(5))")
            #expect(child.recentOutput.contains { $0.contains("TLS certificate reloaded") && $0.contains("serial B2B2") })
            #expect(try await cli("petrel", ["token", "issue", "-f", "value", "-c", "id"]).status == 0)

            // A key that is not the certificate's: logged, and the previous pair stays in service.
            try FileManager.default.removeItem(atPath: key)
            try FileManager.default.copyItem(atPath: ca.key, toPath: key)
            child.signal(SIGHUP)
            #expect(await eventually { child.recentOutput.contains { $0.contains("TLS certificate not reloaded") } }, "\(child.recentOutput.suffix(5))")
            #expect(child.recentOutput.contains { $0.contains("is not the private key of the certificate") })
            #expect(try await Self.servedSerial(port: port, ca: ca.certificate) == "B2B2")
            #expect(try await cli("petrel", ["token", "issue", "-f", "value", "-c", "id"]).status == 0)

            #expect(!child.recentOutput.contains { $0.contains("request failed") })
            child.signal(SIGTERM)
            #expect(await child.wait() == .exited(0))
        } cleanup: {
            child.signal(SIGKILL)
            legacy.signal(SIGKILL)
            _ = await child.wait()
            _ = await legacy.wait()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// `tls = true` without the files is a configuration error; a certificate file that is not
    /// there stops `serve` with the file named; `tls = false` keeps plain HTTP.
    @Test func missingCertificatesStopTheControllerClearly() async throws {
        let controller = Repository.binDirectory.appendingPathComponent("petrel-controller").path
        try Requirement.require(FileManager.default.isExecutableFile(atPath: controller), "\(controller) is not built")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func write(_ api: String) throws -> String {
            let path = directory + "/petrel-\(UUID().uuidString).conf"
            try "[database]\nconnection = sqlite:///\(directory)/petrel.db\n[token]\nkey_repository = \(directory)/keys\n[api]\nlisten = 127.0.0.1:\(TestPorts.free())\n\(api)\n"
                .write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let noFiles = try await Command.run(controller, ["--config", try write("tls = true")])
        #expect(noFiles.status != 0 && noFiles.stderr.contains("[api] tls") && noFiles.stderr.contains("tls_cert_file")
                && noFiles.stderr.contains("tls_key_file"), "\(noFiles.stderr)")
        let noKey = try await Command.run(controller, ["--config", try write("tls_cert_file = \(directory)/cert.pem")])
        #expect(noKey.status != 0 && noKey.stderr.contains("tls_key_file is not"), "\(noKey.stderr)")

        let missing = try write("tls_cert_file = \(directory)/missing.pem\ntls_key_file = \(directory)/missing-key.pem")
        try await Command.check(controller, ["--config", missing, "db-sync"])
        try await Command.check(controller, ["--config", missing, "token-keys", "setup"])
        let refused = try await Command.run(controller, ["--config", missing])
        #expect(refused.status != 0 && refused.stderr.contains("cannot serve HTTPS") && refused.stderr.contains("\(directory)/missing.pem does not exist"),
                "\(refused.stderr)")

        // tls = false: plain HTTP even with (here missing) certificate files named.
        let port = TestPorts.free()
        let plain = directory + "/plain.conf"
        try "[database]\nconnection = sqlite:///\(directory)/petrel.db\n[token]\nkey_repository = \(directory)/keys\n[api]\nlisten = 127.0.0.1:\(port)\ntls = false\ntls_cert_file = \(directory)/missing.pem\ntls_key_file = \(directory)/missing-key.pem\n"
            .write(toFile: plain, atomically: true, encoding: .utf8)
        let child = try ChildProcess(name: "controller", executable: controller, arguments: ["--config", plain], logger: Logger(label: "test"))
        try child.start()
        try await withCleanup {
            let up = await eventually { (try? await Command.run("curl", ["-sf", "http://127.0.0.1:\(port)/healthcheck"]))?.stdout == "OK" }
            #expect(up, "\(child.recentOutput)")
            #expect(child.recentOutput.contains { $0.contains("public_url=http://127.0.0.1:\(port)") && $0.contains("tls=off") })
            // SIGHUP on plain HTTP is logged, and the controller keeps serving.
            child.signal(SIGHUP)
            #expect(await eventually { child.recentOutput.contains { $0.contains("SIGHUP: the listener serves plain HTTP") } })
            let after = try await Command.run("curl", ["-sf", "http://127.0.0.1:\(port)/healthcheck"])
            #expect(after.stdout == "OK")
            child.signal(SIGTERM)
            #expect(await child.wait() == .exited(0))
        } cleanup: {
            child.signal(SIGKILL)
            _ = await child.wait()
        }
    }
}
