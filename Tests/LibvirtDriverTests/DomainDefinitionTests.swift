import Foundation
import FoundationXML
import LibvirtDriver
import Testing

/// The typed domain model against libvirt's own parser: what the writer renders is defined
/// on libvirt's simulated hypervisor and read back, and libvirt kept every device.
@Suite struct DomainDefinitionTests {
    func definition(_ uuid: String) -> DomainDefinition {
        let metadata = XMLNode("app:thing", ["xmlns:app": "https://example.invalid/app/1"], [XMLNode("app:note", text: "a < b & 'c'")])
        return DomainDefinition(
            type: "test", name: "petrel-model-\(uuid.prefix(8))", uuid: uuid, title: "model \"test\"", metadata: [metadata],
            memoryMiB: 128, vcpus: 2, smbiosSystem: [("manufacturer", "Petrel")],
            devices: [
                .disk(Disk(source: .file("/var/lib/petrel/instances/x/disk"), format: "qcow2", target: "vda", bus: "virtio")),
                .disk(Disk(source: .block("/dev/petrel-volumes/volume-1"), format: "raw", target: "vdb", bus: "virtio",
                           serial: "volume-1")),
                .disk(Disk(source: .network(protocol: "iscsi", name: "iqn.2010-10.org.openstack:volume-2/1", host: "127.0.0.1",
                                            port: 3260), format: "raw", target: "vdc", bus: "virtio", readOnly: true)),
                .interface(Interface(attachment: .bridge("brq0123456789a"), mac: "fa:16:3e:00:00:01", targetDevice: "tap0123456789a",
                                     mtu: 1450)),
                .interface(Interface(attachment: .openvswitch(bridge: "br-int", interfaceID: "3f2a7c1e-0000-4000-8000-000000000001"),
                                     mac: "fa:16:3e:00:00:02")),
                .interface(Interface(attachment: .ethernet, mac: "fa:16:3e:00:00:03", targetDevice: "tapeth0000000")),
                .graphics(Graphics(listen: "127.0.0.1")),
                .memballoon(model: "virtio"),
            ])
    }

    @Test func libvirtKeepsEveryDeviceTheWriterRenders() throws {
        let connection = try LibvirtConnection(uri: "test:///default")
        let uuid = UUID().uuidString.lowercased()
        let domain = try connection.define(xml: definition(uuid).xml)
        defer { try? domain.undefine() }
        let stored = try XMLDocument(xmlString: try domain.xml(inactive: true))
        func nodes(_ path: String) throws -> [XMLElement] { try stored.nodes(forXPath: path).compactMap { $0 as? XMLElement } }
        func attribute(_ path: String, _ name: String) throws -> [String] {
            try nodes(path).compactMap { $0.attribute(forName: name)?.stringValue }
        }
        #expect(try attribute("/domain/devices/disk", "type") == ["file", "block", "network"])
        #expect(try attribute("/domain/devices/disk/target", "dev") == ["vda", "vdb", "vdc"])
        #expect(try attribute("/domain/devices/disk/source", "protocol") == ["iscsi"])
        #expect(try attribute("/domain/devices/disk/source/host", "port") == ["3260"])
        #expect(try nodes("/domain/devices/disk/readonly").count == 1)
        #expect(try nodes("/domain/devices/disk/serial").first?.stringValue == "volume-1")
        #expect(try attribute("/domain/devices/interface", "type") == ["bridge", "bridge", "ethernet"])
        #expect(try attribute("/domain/devices/interface/mac", "address") == ["fa:16:3e:00:00:01", "fa:16:3e:00:00:02", "fa:16:3e:00:00:03"])
        #expect(try attribute("/domain/devices/interface/source", "bridge") == ["brq0123456789a", "br-int"])
        #expect(try attribute("/domain/devices/interface/virtualport", "type") == ["openvswitch"])
        #expect(try attribute("/domain/devices/interface/virtualport/parameters", "interfaceid") == ["3f2a7c1e-0000-4000-8000-000000000001"])
        #expect(try attribute("/domain/devices/interface/mtu", "size") == ["1450"])
        #expect(try attribute("/domain/devices/graphics", "listen") == ["127.0.0.1"])
        #expect(try nodes("/domain/title").first?.stringValue == "model \"test\"")
        #expect(try nodes("/domain/memory").first?.stringValue == "131072")
        let note = try stored.nodes(forXPath: "/domain/metadata/*/*").first?.stringValue
        #expect(note == "a < b & 'c'", "metadata and its escaping survive libvirt")
        #expect(domain.uuid == uuid)
    }

    @Test func theWriterEscapesAndOrders() {
        let node = XMLNode("a", ["x": "1 < 2 & \"q\"", "y": "it's"], [XMLNode("b", text: "<&>")])
        #expect(node.rendered() == "<a x='1 &lt; 2 &amp; &quot;q&quot;' y='it&apos;s'>\n  <b>&lt;&amp;&gt;</b>\n</a>\n")
        #expect(definition("u").xml == definition("u").xml)
        #expect(definition("u") != definition("v"))
    }
}
