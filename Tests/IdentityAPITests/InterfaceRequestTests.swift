import Compute
@testable import ComputeAPI
import PetrelCore
import PetrelHTTP
import Testing

/// The body of `POST /servers/{id}/os-interface`, by Nova's schema.
@Suite struct InterfaceRequestTests {
    let net = "6a2c1f0e-52b4-4f6e-9a57-3a1ab6a0c2d1"
    let port = "0f6d3c2e-8d5b-4b1a-9a36-4c0d2f7e1b90"

    @Test func aNetworkAPortOrNothing() throws {
        let v = Microversion(2, 87)
        #expect(try ComputeAPI.interfaceRequest(["interfaceAttachment": ["net_id": .string(net)]], v) == InterfaceRequest(networkID: net))
        #expect(try ComputeAPI.interfaceRequest(["interfaceAttachment": ["port_id": .string(port.uppercased())]], v)
                == InterfaceRequest(portID: port))
        #expect(try ComputeAPI.interfaceRequest(["interfaceAttachment": ["net_id": .string(net), "fixed_ips": [["ip_address": "198.18.85.9"]]]], v)
                == InterfaceRequest(networkID: net, fixedIP: "198.18.85.9"))
        #expect(try ComputeAPI.interfaceRequest([:], v) == InterfaceRequest())
    }

    @Test func whatNovaRefuses() {
        let v = Microversion(2, 87)
        let refused: [[String: JSON]] = [
            ["interfaceAttachment": ["net_id": .string(net), "port_id": .string(port)]],
            ["interfaceAttachment": ["port_id": .string(port), "fixed_ips": [["ip_address": "198.18.85.9"]]]],
            ["interfaceAttachment": ["net_id": "not-a-uuid"]],
            ["interfaceAttachment": ["net_id": .string(net), "fixed_ips": [["ip_address": "198.18.85.999"]]]],
            ["interfaceAttachment": ["net_id": .string(net), "fixed_ips": [["ip_address": "198.18.85.9"], ["ip_address": "198.18.85.10"]]]],
            ["interfaceAttachment": ["net_id": .string(net), "tag": "nic1"]],
            ["interfaceAttachment": ["network": .string(net)]],
            ["interfaceAttachment": "net"],
            ["attachment": ["net_id": .string(net)]],
        ]
        for body in refused {
            #expect(throws: APIFault.self, "\(body)") { try ComputeAPI.interfaceRequest(body, v) }
        }
        // Before 2.49 a tag is not even a known field; either way it is a 400.
        #expect(throws: APIFault.self) { try ComputeAPI.interfaceRequest(["interfaceAttachment": ["net_id": .string(net), "tag": "x"]], Microversion(2, 1)) }
    }
}
