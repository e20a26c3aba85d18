import Compute
@testable import ComputeAPI
import PetrelHTTP
import Testing

/// `config_drive` in `POST /servers`: Nova's booleans (the CLI sends the string "True"), an
/// empty string or null for none, anything else refused.
@Suite struct ConfigDriveRequestTests {
    @Test func novasBooleansAndNothingElse() throws {
        for (value, expected) in [(JSON.bool(true), true), (.bool(false), false), (.string("True"), true), (.string("1"), true),
                                  (.string("yes"), true), (.string(""), false), (.string("false"), false), (.null, false)] {
            #expect(try ComputeAPI.configDrive(value) == expected, "\(value)")
        }
        #expect(try ComputeAPI.configDrive(nil) == false)
        for value in [JSON.string("maybe"), .number(2), .array([])] {
            #expect(throws: APIFault.self, "\(value)") { try ComputeAPI.configDrive(value) }
        }
    }
}

/// Nova's schema of `POST /servers`, per microversion: what the probe found accepted and Nova
/// refuses, each refused in Nova's words; what the CLI sends passes.
@Suite struct ServerSchemaTests {
    let v287 = Microversion(2, 87)
    let image = "8d3f5c3e-8a3b-4a7e-9c55-5d2b0f5e7a10"

    func body(_ extra: [String: JSON]) -> JSON {
        var server: [String: JSON] = ["name": "vm", "imageRef": .string(image), "flavorRef": "1", "networks": "none"]
        for (key, value) in extra { server[key] = value }
        return ["server": .object(server)]
    }

    func refusal(_ extra: [String: JSON], _ version: Microversion? = nil) -> String? {
        ServerSchemas.create(version ?? v287).violation(body(extra))?.fault(.nova).message
    }

    @Test func whatTheCLISendsPasses() {
        #expect(refusal([:]) == nil)
        #expect(refusal(["min_count": 1, "max_count": 2, "key_name": "k", "user_data": "aGk=", "config_drive": "True",
                         "security_groups": [["name": "default"]], "metadata": ["role": "web"], "availability_zone": "nova:host-1",
                         "networks": [["uuid": .string(image), "fixed_ip": "198.18.0.5"], ["port": .string(image)]],
                         "block_device_mapping_v2": [["boot_index": 0, "uuid": .string(image), "source_type": "image",
                                                      "destination_type": "local", "delete_on_termination": true]],
                         "description": "d", "tags": ["a", "b"]]) == nil)
        #expect(ServerSchemas.create(Microversion(2, 1)).violation(["server": ["name": "vm", "imageRef": .string(image), "flavorRef": 1]]) == nil,
                "networks is required only from 2.37")
    }

    @Test func whatTheProbeFoundIsRefused() {
        let name = "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace."
        #expect(refusal(["name": " vm"]) == name)
        #expect(refusal(["name": "vm "]) == name)
        #expect(refusal(["name": "v\u{0}m"]) == name)
        #expect(refusal(["name": "v\nm"]) == name)
        #expect(refusal(["hostname": "h"]) == "Invalid input for field/attribute server. Value: {'flavorRef': '1', 'hostname': 'h', 'imageRef': '\(image)', 'name': 'vm', 'networks': 'none'}. Additional properties are not allowed ('hostname' was unexpected)")
        #expect(refusal(["security_groups": "default"]) == "Invalid input for field/attribute security_groups. Value: default. 'default' is not of type 'array'")
        #expect(refusal(["security_groups": ["default"]])?.hasSuffix("'default' is not of type 'object'") == true)
        #expect(refusal(["config_drive": "maybe"])?.hasPrefix("Invalid input for field/attribute config_drive. Value: maybe. 'maybe' is not one of [True, 'True'") == true)
        #expect(refusal(["adminPass": 12345]) == "Invalid input for field/attribute adminPass. Value: 12345. 12345 is not of type 'string'")
        #expect(refusal(["accessIPv4": "1.2.3"]) == "Invalid input for field/attribute accessIPv4. Value: 1.2.3. '1.2.3' is not a 'ipv4'")
        #expect(refusal(["description": .string(String(repeating: "d", count: 256))])?.hasSuffix("is too long") == true)
        #expect(refusal(["tags": ["a/b"]]) == "Invalid input for field/attribute 0. Value: a/b. 'a/b' does not match '^[^,/]*$'")
        #expect(refusal(["tags": ["a,b"]])?.hasSuffix("'a,b' does not match '^[^,/]*$'") == true)
        #expect(refusal(["networks": "some"]) == "Invalid input for field/attribute networks. Value: some. 'some' is not one of ['none', 'auto']")
        #expect(refusal(["metadata": ["k": 1]]) == "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'")
        #expect(refusal(["min_count": 0]) == "Invalid input for field/attribute min_count. Value: 0. 0 is less than the minimum of 1")
        #expect(refusal(["description": "d", "networks": []], Microversion(2, 18))?.hasSuffix("('description' was unexpected)") == true)
        #expect(refusal(["tags": ["a"]], Microversion(2, 51))?.hasSuffix("('tags' was unexpected)") == true)
    }

    @Test func updates() {
        #expect(ServerSchemas.update(v287).violation(["server": ["name": "new", "description": nil]]) == nil)
        #expect(ServerSchemas.update(v287).violation(["server": ["hostname": "h"]])?.message == "Additional properties are not allowed ('hostname' was unexpected)")
        #expect(ServerSchemas.update(v287).violation(["server": ["name": " x"]]) != nil)
    }
}

/// Nova's schemas of key pairs and flavors: what the probe found accepted is refused.
@Suite struct KeyPairAndFlavorSchemaTests {
    let v287 = Microversion(2, 87)

    @Test func keyPairs() {
        let schema = KeyPairSchemas.create(v287)
        #expect(schema.violation(["keypair": ["name": "k", "public_key": "ssh-ed25519 AAAA x", "type": "ssh"]]) == nil)
        #expect(schema.violation(["keypair": ["name": "k"]]) == nil, "no key: Nova generates one")
        for key: JSON in [42, ["ssh-rsa"], ["key": "ssh-rsa"]] {
            #expect(schema.violation(["keypair": ["name": "k", "public_key": key]])?.fault(.nova).message
                    == "Invalid input for field/attribute public_key. Value: \(key.pythonStr). \(key.pythonRepr) is not of type 'string'")
        }
        #expect(KeyPairSchemas.create(Microversion(2, 1)).violation(["keypair": ["name": "k", "type": "ssh"]]) != nil, "type from 2.2")
        #expect(schema.violation(["keypair": ["name": "k", "type": "pgp"]]) != nil)
    }

    @Test func flavors() {
        let schema = FlavorSchemas.create(v287)
        #expect(schema.violation(["flavor": ["name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1, "id": "auto",
                                             "os-flavor-access:is_public": "False", "swap": "", "rxtx_factor": .number(1.5)]]) == nil)
        #expect(schema.violation(["flavor": ["name": "m1\u{0}", "ram": 512, "vcpus": 1, "disk": 1]]) != nil, "NUL in a name")
        #expect(schema.violation(["flavor": ["name": "m1", "ram": 0, "vcpus": 1, "disk": 1]])?.message == "0 is less than the minimum of 1")
        #expect(schema.violation(["flavor": ["name": "m1", "ram": 512, "vcpus": 1]])?.message == "'disk' is a required property")
        #expect(schema.violation(["flavor": ["name": "m1", "ram": 512, "vcpus": 1, "disk": 1, "id": " x"]]) != nil)
        #expect(schema.violation(["flavor": ["name": "m1", "ram": 512, "vcpus": 1, "disk": 1, "os-flavor-access:is_public": "perhaps"]]) != nil)
        #expect(FlavorSchemas.create(Microversion(2, 54)).violation(["flavor": ["name": "m1", "ram": 1, "vcpus": 1, "disk": 1, "description": "d"]]) != nil)
        #expect(FlavorSchemas.update.violation(["flavor": ["name": "new"]]) != nil)
    }
}

/// `block_device_mapping_v2` as the CLI sends it for `--volume`, `--boot-from-volume`,
/// `--block-device` and `--snapshot`, read into the volumes a build makes or takes; what Nova
/// refuses is refused in its words.
@Suite struct BlockDeviceRequestTests {
    let volume = "0c7f3b0e-4c52-4a57-9d2f-0b9a8f3b2e11"
    let v287 = Microversion(2, 87)

    func request(_ mappings: [JSON], imageRef: String? = nil) throws -> ServerRequest {
        var fields: [String: JSON] = ["name": "vm", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": .array(mappings)]
        if let imageRef { fields["imageRef"] = .string(imageRef) }
        return try ComputeAPI.serverRequest(fields, v287, project: "p")
    }

    @Test func whatTheCLISendsBecomesVolumes() throws {
        let fromVolume = try request([["uuid": .string(volume), "boot_index": 0, "source_type": "volume", "destination_type": "volume"]])
        #expect(fromVolume.imageRef == "")
        #expect(fromVolume.blockDevices == [BlockDeviceRequest(source: "volume", uuid: volume, bootIndex: 0)])
        #expect(fromVolume.blockDevices.first?.volumeID == volume, "an existing volume is its own volume")

        // --block-device sends its values as strings.
        let fromImage = try request([["uuid": .string(volume), "boot_index": "0", "source_type": "image", "destination_type": "volume",
                                      "volume_size": "2", "delete_on_termination": "true"]])
        #expect(fromImage.blockDevices == [BlockDeviceRequest(source: "image", uuid: volume, size: 2, bootIndex: 0, deleteOnTermination: true)])
        #expect(fromImage.blockDevices.first?.volumeID == nil, "made by the build")

        let extra = try request([["uuid": .string(volume), "boot_index": 0, "source_type": "image", "destination_type": "local"],
                                 ["source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": -1]])
        #expect(extra.imageRef == volume, "the local image is the root disk")
        #expect(extra.blockDevices == [BlockDeviceRequest(source: "blank", uuid: nil, size: 1)])
        #expect(extra.blockDevices.allSatisfy { !$0.isRoot })
    }

    @Test func whatNovaRefusesIsRefused() throws {
        func message(_ mappings: [JSON], imageRef: String? = nil) -> String? {
            do { _ = try request(mappings, imageRef: imageRef); return nil } catch let fault as APIFault { return fault.message } catch { return "\(error)" }
        }
        #expect(message([["source_type": "volume", "destination_type": "volume", "boot_index": 0]]) == "Block Device Mapping is Invalid: Missing device UUID.")
        #expect(message([["source_type": "blank", "destination_type": "local", "volume_size": 1, "guest_format": "swap"]],
                        imageRef: volume)?.contains("come from the flavor") == true)
        #expect(message([["uuid": .string(volume), "source_type": "image", "destination_type": "local", "boot_index": 1]])?
            .contains("Boot sequence") == true)
        #expect(message([["uuid": .string(volume), "source_type": "volume", "destination_type": "volume", "volume_size": "x"]],
                        imageRef: volume)?.contains("volume_size") == true)
        #expect(message([["uuid": .string(volume), "source_type": "volume", "destination_type": "volume"]]) ==
                "Invalid input for field/attribute imageRef. 'imageRef' is a required property.", "no root disk at all")
    }

    /// Server actions: Nova's schema of each, what the CLI sends passes.
    @Test func serverActionsFollowNovasSchemas() {
        func refusal(_ body: JSON, _ version: Microversion = Microversion(2, 87)) -> String? {
            ServerActionSchemas.action(version).violation(body)?.fault(.nova).message
        }
        for sent: JSON in [["reboot": ["type": "SOFT"]], ["os-stop": nil], ["pause": [:]], ["os-getConsoleOutput": [:]],
                           ["os-getConsoleOutput": ["length": 10]], ["os-getConsoleOutput": ["length": "-1"]],
                           ["rebuild": ["imageRef": "70a599e0-31e7-49b7-b260-868f441e862b", "name": "n", "preserve_ephemeral": false]],
                           ["createImage": ["name": "snap", "metadata": [:]]], ["addSecurityGroup": ["name": "web"]]] {
            #expect(refusal(sent) == nil, "\(sent)")
        }
        #expect(refusal(["reboot": ["type": "sideways"]])
                == "Invalid input for field/attribute type. Value: sideways. 'sideways' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']")
        #expect(refusal(["reboot": [:]]) == "Invalid input for field/attribute reboot. Value: {}. 'type' is a required property")
        #expect(refusal(["rebuild": ["imageRef": "x"]])?.hasPrefix("Invalid input for field/attribute imageRef. Value: x.") == true)
        #expect(refusal(["rebuild": ["imageRef": "70a599e0-31e7-49b7-b260-868f441e862b", "hostname": "h"]])?
            .hasSuffix("Additional properties are not allowed ('hostname' was unexpected)") == true)
        #expect(refusal(["rebuild": ["imageRef": "70a599e0-31e7-49b7-b260-868f441e862b", "key_name": "k"]], Microversion(2, 53)) != nil,
                "key_name from 2.54")
        #expect(refusal(["os-getConsoleOutput": ["length": "ten"]]) != nil)
        #expect(refusal(["createImage": ["name": " edge "]]) != nil)
        #expect(refusal(["addSecurityGroup": ["name": ""]]) != nil)
    }
}

/// Nova's registry of flavor extra specs (checked from 2.86): a registered spec's value, and a
/// spec of a registered namespace that is not registered, refused in Nova's words; unknown
/// namespaces and names without one pass.
@Suite struct ExtraSpecRegistryTests {
    @Test func registeredSpecsAreHeldToNovasValidators() {
        for (name, value, message) in [
            ("hw:cpu_policy", "bogus", "Validation failed; 'bogus' is not one of: dedicated, shared, mixed."),
            ("hw:bogus", "1", "Validation failed; extra spec 'hw:bogus' does not appear to be a valid extra spec."),
            ("hw:numa_nodes", "0", "Validation failed; '0' is less than the min value of '1'."),
            ("hw:redirected_usb_ports", "16", "Validation failed; '16' is greater than the max value of '15'."),
            ("hw:cpu_realtime", "maybe", "Validation failed; 'maybe' is not a valid boolean-like value."),
            ("hw:mem_page_size", "huge", "Validation failed; 'huge' is not of the format '(large|small|any|\\d+([kKMGT]i?)?(b|bit|B)?)'."),
            ("trait:HW_CPU_X86_AVX2", "maybe", "Validation failed; 'maybe' is not one of: required, forbidden."),
            ("resources1:VCPU", "two", "Validation failed; 'two' is not a valid integer value."),
            ("capabilities:hypervisor_type:x", "QEMU",
             "Validation failed; extra spec 'capabilities:hypervisor_type:x' does not appear to be a valid extra spec."),
        ] {
            #expect(NovaExtraSpecs.refusal(name: name, value: value) == message, "\(name)=\(value)")
        }
        for (name, value) in [("hw:cpu_policy", "shared"), ("hw:numa_nodes", "1"), ("hw:numa_nodes", " 007 "), ("foo:bar", "x"), ("k", "v"),
                              ("aggregate_instance_extra_specs:ssd", "anything"), ("hw:cpu_realtime", "True"), ("trait:CUSTOM_FOO", "required"),
                              ("hw:numa_cpus.0", "0-3"), ("resources:VCPU", "2"), ("quota:cpu_shares", "1024")] {
            #expect(NovaExtraSpecs.refusal(name: name, value: value) == nil, "\(name)=\(value)")
        }
    }
}
