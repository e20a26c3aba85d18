import Foundation
import Logging
@testable import PetrelCore
import TestSupport
import Testing

@Suite struct ConfigTests {
    func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-\(UUID().uuidString).conf").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func defaultsWithoutAFile() throws {
        let config = try PetrelConfig.load(path: "/nonexistent/petrel.conf", mustExist: false, environment: [:])
        #expect(config.apiListen == HostPort(host: "0.0.0.0", port: 5000))
        #expect(config.databaseConnection == .sqlite(path: "/var/lib/petrel/petrel.db"))
        #expect(config.transportURL.brokers == [BrokerAddress(host: "127.0.0.1", port: 5672, user: "guest", password: "guest")])
        #expect(config.transportURL.virtualHost == "/")
        #expect(config.libvirtURI == "qemu:///system")
        #expect(config.virtType == "kvm")
        #expect(config.nodeMetricsListen == HostPort(host: "127.0.0.1", port: 9180))
        #expect(config.publicURL == "http://\(config.host):5000")
        #expect(!config.host.isEmpty)
    }

    /// Volume backends: sections named by enabled_backends, with their own keys and defaults.
    @Test func volumeBackendSections() throws {
        let path = try write("""
        [DEFAULT]
        state_path = /srv/petrel
        enabled_backends = file-1, lvm-1
        [node]
        services = volume
        [file-1]
        volume_driver = file
        max_over_subscription_ratio = 4
        [lvm-1]
        volume_driver = lvm
        volume_group = vg0
        volume_backend_name = fast
        """)
        let config = try PetrelConfig.load(path: path, mustExist: true, environment: [:])
        #expect(config.volumeBackends.map(\.name) == ["file-1", "lvm-1"])
        #expect(config.volumeBackends[0].volumesDirectory == "/srv/petrel/volumes/file-1" && config.volumeBackends[0].maxOverSubscriptionRatio == 4)
        #expect(config.volumeBackends[0].backendName == "file-1")
        #expect(config.volumeBackends[1].driver == "lvm" && config.volumeBackends[1].volumeGroup == "vg0" && config.volumeBackends[1].backendName == "fast")
        #expect(config.quotaDefaults["volumes"] == 10 && config.quotaDefaults["gigabytes"] == 1000)

        for bad in ["[DEFAULT]\nenabled_backends = b1\n[b1]\nvolume_driver = ceph\n",         // no such driver
                    "[DEFAULT]\nenabled_backends = b1\n[b1]\ncolour = red\n",                 // no such key
                    "[DEFAULT]\nenabled_backends = b1\n[b2]\nvolume_driver = file\n",         // a section no one named
                    "[DEFAULT]\nenabled_backends = node\n",                                      // one of Petrel's sections
                    "[node]\nservices = volume\n"] {                                            // the service without a backend
            let file = try write(bad)
            #expect(throws: ConfigError.self, "\(bad)") { try PetrelConfig.load(path: file, mustExist: true, environment: [:]) }
        }
    }

    @Test func explicitMissingFileIsRefused() throws {
        #expect(throws: ConfigError.self) { try PetrelConfig.load(path: "/nonexistent/petrel.conf", mustExist: true, environment: [:]) }
    }

    @Test func fileValuesAndEnvironmentOverrides() throws {
        let path = try write("""
        # comment
        [DEFAULT]
        host = node-7
        transport_url = rabbit://petrel:s3cret@10.0.0.1:5673,petrel:s3cret@10.0.0.2/cloud
        log_format = json

        [database]
        connection = postgresql://petrel:pw@db.example:5432/petrel

        [api]
        listen = [::1]:8774
        public_url = https://cloud.example.com:443/

        [libvirt]
        uri = test:///default
        virt_type = qemu
        """)
        let config = try PetrelConfig.load(path: path, mustExist: true, environment: ["PETREL_API_LISTEN": "127.0.0.1:9999",
                                                                                       "PETREL_NOT_A_SECTION": "ignored"])
        #expect(config.host == "node-7")
        #expect(config.transportURL.brokers.map(\.host) == ["10.0.0.1", "10.0.0.2"])
        #expect(config.transportURL.brokers.map(\.port) == [5673, 5672])
        #expect(config.transportURL.brokers[1].user == "petrel")
        #expect(config.transportURL.virtualHost == "cloud")
        #expect(config.logFormat == .json)
        #expect(config.databaseConnection == .postgresql(url: "postgresql://petrel:pw@db.example:5432/petrel"))
        #expect(config.apiListen == HostPort(host: "127.0.0.1", port: 9999))
        #expect(config.publicURL == "https://cloud.example.com:443")
        #expect(config.virtType == "qemu")
    }

    @Test(arguments: [
        ("[api]\nlisten = 0.0.0.0:5000\nlistn = x\n", ":3", "unknown key 'listn'"),
        ("[api]\nlisten = nowhere\n", ":2", "[api] listen = 'nowhere'"),
        ("[libvirt]\nvirt_type = xen\n", ":2", "must be one of: kvm, qemu"),
        // Only node services whose code exists can be named.
        ("[node]\nservices = compute, storage\n", ":2", "'storage' is not one of: compute, network"),
        ("[DEFAULT]\ncompute_driver = xenapi\n", ":2", "must be one of: libvirt"),
        ("[database]\nconnection = mysql://x/y\n", ":2", "expected sqlite:////"),
        ("[database]\nconnection = sqlite:///relative.db\n", ":2", "expected sqlite:////"),
        ("[DEFAULT]\ntransport_url = amqp://x\n", ":2", "rabbit://"),
        ("[DEFAULT]\ndebug = maybe\n", ":2", "true or false"),
        ("[nova]\nx = 1\n", ":1", "unknown section [nova]"),
        ("host = a\n", ":1", "before any [section]"),
        ("[DEFAULT]\nhost\n", ":2", "expected 'key = value'"),
        ("[DEFAULT]\nhost = a\nhost = b\n", ":3", "already set"),
    ])
    func badFilesAreRefusedWithFileAndLine(text: String, line: String, message: String) throws {
        let path = try write(text)
        do {
            _ = try PetrelConfig.load(path: path, mustExist: true, environment: [:])
            Issue.record("accepted: \(text)")
        } catch let error as ConfigError {
            #expect(error.origin.hasPrefix(path), "\(error)")
            #expect(error.description.contains("\(path)\(line)"), "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }

    @Test func badEnvironmentValuesAreRefused() throws {
        #expect(throws: ConfigError(origin: "environment variable PETREL_API_LISTN", message: "no such configuration key")) {
            try PetrelConfig.load(path: nil, mustExist: false, environment: ["PETREL_API_LISTN": "x"])
        }
        do {
            _ = try PetrelConfig.load(path: nil, mustExist: false, environment: ["PETREL_DATABASE_CONNECTION": "oracle://x"])
            Issue.record("accepted a bad database URL")
        } catch let error as ConfigError {
            #expect(error.origin == "environment variable PETREL_DATABASE_CONNECTION")
        }
    }

    @Test func sampleFileDocumentsEveryKey() throws {
        let sample = try String(contentsOf: Repository.root.appendingPathComponent("etc/petrel.conf.sample"), encoding: .utf8)
        #expect(sample == ConfigSchema.sampleFile(), "regenerate it: petrel-controller sample-config > etc/petrel.conf.sample")
        for option in ConfigSchema.options { #expect(sample.contains("#\(option.key) = ")) }
        for option in ConfigSchema.backendOptions { #expect(sample.contains("#\(option.key) = ")) }
        // The sample, uncommented, is itself a valid configuration (up to the volume backend's
        // section, a template for the sections enabled_backends names).
        let marker = try #require(sample.range(of: "\n# One section per volume backend"))
        let uncommented = sample[..<marker.lowerBound].split(separator: "\n").map { line in
            line.hasPrefix("#") && line.contains(" = ") && !line.contains("<computed>") ? String(line.dropFirst()) : String(line)
        }.joined(separator: "\n")
        _ = try PetrelConfig.load(path: try write(uncommented), mustExist: true, environment: [:])
    }

    @Test func logLinesAsTextAndJSON() throws {
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        let text = PetrelLogHandler.render(format: .text, label: "petrel-node", level: .info, message: "started",
                                           metadata: ["request_id": "req-1"], source: "PetrelCore", date: date)
        #expect(text.hasPrefix("2023-11-14T22:13:20.000Z INFO petrel-node: started request_id=req-1"))
        let json = PetrelLogHandler.render(format: .json, label: "petrel-node", level: .warning, message: "a \"quoted\" word",
                                           metadata: ["request_id": "req-1"], source: "PetrelCore", date: date)
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect(object?["message"] as? String == "a \"quoted\" word")
        #expect(object?["level"] as? String == "warning")
        #expect(object?["request_id"] as? String == "req-1")
        #expect(json.hasSuffix("\n") && json.filter { $0 == "\n" }.count == 1)
    }
}
