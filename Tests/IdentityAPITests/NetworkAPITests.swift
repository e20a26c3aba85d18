import ComputeAPI
import Foundation
import HTTPTypes
import Hosts
import Hummingbird
import HummingbirdTesting
@testable import Identity
@testable import IdentityAPI
import Logging
import NetworkAPI
import Networking
import NIOCore
import PetrelCore
import PetrelHTTP
import Store
import TestSupport
import Testing

/// Neutron's core API in-process on a real SQLite store: shapes, filters, fields, sorting,
/// paging, tags, policy (admin, member, shared) and Neutron's error bodies.
@Suite struct NetworkAPITests {
    struct Setup {
        let admin: String
        let member: String
        let memberProject: String
        let other: String
    }

    func withNeutron(_ body: @Sendable (any TestClientProtocol, Setup) async throws -> Void) async throws {
        try await withBootstrappedIdentity { database, service in
            let (memberProject, member) = try await addProjectUser(service, project: "demo", user: "alice")
            let (_, other) = try await addProjectUser(service, project: "elsewhere", user: "bob")
            let defaults = KeystonePolicy.defaults + ComputeAPI.policyDefaults + NetworkAPI.policyDefaults
            let identity = KeystoneAPI(service: service, policy: try Policy(defaults: defaults), publicURL: "http://controller:5000",
                                       logger: Logger(label: "neutron-test"))
            let hosts = HostInventory(database: database, serviceDownTime: 3600)
            let networking = NetworkService(database: database, settings: .defaults,
                                            quotaDefaults: ["network": 100, "subnet": 100, "port": 500], hosts: hosts)
            let router = Hummingbird.Router(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
            NetworkAPI(environment: identity.environment, hosts: hosts, service: networking, logger: Logger(label: "neutron-test")).register(on: router)
            identity.register(on: router)
            let admin = try await adminToken(service)
            try await Application(router: router).test(.router) { client in
                try await body(client, Setup(admin: admin, member: member, memberProject: memberProject, other: other))
            }
        }
    }

    @discardableResult
    func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, _ token: String,
              _ body: JSON? = nil) async throws -> (HTTPResponse.Status, JSON) {
        try await client.execute(uri: "/networking/v2.0" + path, method: method,
                                 headers: [HTTPField.Name("X-Auth-Token")!: token, .contentType: "application/json"],
                                 body: body.map { ByteBuffer(bytes: $0.encoded()) }) {
            ($0.status, JSON.parse(Array($0.body.readableBytesView)) ?? .null)
        }
    }

    func ids(_ json: JSON, _ collection: String) -> [String] {
        (json[collection]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
    }

    @Test func networksSubnetsAndPortsRoundTrip() async throws {
        try await withNeutron { client, setup in
            // A member's network: a VXLAN segment from the ranges, MTU 1450, provider attributes hidden from them.
            let (status, created) = try await call(client, .post, "/networks", setup.member, ["network": ["name": "blue", "tags": ["a"]]])
            #expect(status == .created)
            let network = try #require(created["network"])
            let networkID = try #require(network["id"]?.stringValue)
            #expect(network["mtu"] == 1450 && network["status"] == "ACTIVE" && network["revision_number"] == 1)
            #expect(network["project_id"]?.stringValue == setup.memberProject && network["router:external"] == false)
            #expect(network["created_at"]?.stringValue?.hasSuffix("Z") == true)
            let seen = try await call(client, .get, "/networks/\(networkID)", setup.member).1["network"]
            #expect(seen?["provider:network_type"] == nil && seen?["name"] == "blue")
            let asAdmin = try await call(client, .get, "/networks/\(networkID)", setup.admin).1["network"]
            #expect(asAdmin?["provider:network_type"] == "vxlan" && asAdmin?["provider:segmentation_id"] == 1)
            // Members cannot share or pick a segment; another project does not see the network.
            let refused = try await call(client, .post, "/networks", setup.member, ["network": ["name": "x", "shared": true]])
            #expect(refused.0 == .forbidden && refused.1["NeutronError"]?["type"] == "PolicyNotAuthorized")
            #expect(try await call(client, .post, "/networks", setup.member,
                                   ["network": ["provider:network_type": "flat", "provider:physical_network": "public"]]).0 == .forbidden)
            #expect(try await call(client, .get, "/networks/\(networkID)", setup.other).0 == .notFound)
            #expect(try await call(client, .get, "/networks", setup.other).1["networks"] == [])
            // Bad input: unknown attribute, a non-boolean, an MTU above the underlay's.
            let unknown = try await call(client, .post, "/networks", setup.member, ["network": ["colour": "red"]])
            #expect(unknown.0 == .badRequest && unknown.1["NeutronError"]?["message"] == "Unrecognized attribute(s) 'colour'")
            #expect(try await call(client, .post, "/networks", setup.member, ["network": ["admin_state_up": "maybe"]]).0 == .badRequest)
            #expect(try await call(client, .put, "/networks/\(networkID)", setup.member, ["network": ["mtu": 9000]]).0 == .badRequest)

            // A subnet: pools around the gateway, DNS, host routes; then a port with a chosen address.
            let subnet = try await call(client, .post, "/subnets", setup.member, ["subnet": [
                "network_id": .string(networkID), "ip_version": 4, "cidr": "198.18.40.0/24", "name": "blue-v4",
                "dns_nameservers": ["198.18.40.53"], "host_routes": [["destination": "198.18.99.0/24", "nexthop": "198.18.40.254"]],
            ]])
            #expect(subnet.0 == .created)
            let subnetID = try #require(subnet.1["subnet"]?["id"]?.stringValue)
            #expect(subnet.1["subnet"]?["gateway_ip"] == "198.18.40.1")
            #expect(subnet.1["subnet"]?["allocation_pools"] == [["start": "198.18.40.2", "end": "198.18.40.254"]])
            let overlap = try await call(client, .post, "/subnets", setup.member, ["subnet": [
                "network_id": .string(networkID), "ip_version": 4, "cidr": "198.18.40.128/25"]])
            #expect(overlap.0 == .badRequest && overlap.1["NeutronError"]?["type"] == "InvalidInput")
            #expect(try await call(client, .get, "/networks/\(networkID)", setup.member).1["network"]?["subnets"] == [.string(subnetID)])

            let port = try await call(client, .post, "/ports", setup.member, ["port": [
                "network_id": .string(networkID), "name": "p1", "fixed_ips": [["ip_address": "198.18.40.10"]], "dns_name": "web",
            ]])
            #expect(port.0 == .created)
            let portJSON = try #require(port.1["port"])
            let portID = try #require(portJSON["id"]?.stringValue)
            #expect(portJSON["fixed_ips"] == [["subnet_id": .string(subnetID), "ip_address": "198.18.40.10"]])
            #expect(portJSON["status"] == "DOWN" && portJSON["binding:vif_type"] == nil)
            #expect(portJSON["dns_assignment"]?.arrayValue?.first?["fqdn"] == "web.openstacklocal.")
            #expect(portJSON["mac_address"]?.stringValue?.hasPrefix("fa:16:3e:") == true)
            let taken = try await call(client, .post, "/ports", setup.member, ["port": [
                "network_id": .string(networkID), "fixed_ips": [["ip_address": "198.18.40.10"]]]])
            #expect(taken.0 == .conflict && taken.1["NeutronError"]?["type"] == "IpAddressAlreadyAllocated")
            let second = try await call(client, .post, "/ports", setup.member, ["port": ["network_id": .string(networkID), "name": "p2"]])
            #expect(second.1["port"]?["fixed_ips"]?.arrayValue?.first?["ip_address"] == "198.18.40.2")
            // An admin sees the binding; the port is unbound.
            let bound = try await call(client, .get, "/ports/\(portID)", setup.admin).1["port"]
            #expect(bound?["binding:vif_type"] == "unbound" && bound?["binding:host_id"] == "")

            // Filters (repeated = OR), fixed_ips filters, fields, sorting and paging.
            #expect(Set(ids(try await call(client, .get, "/ports?name=p1&name=p2", setup.member).1, "ports")).count == 2)
            #expect(ids(try await call(client, .get, "/ports?fixed_ips=ip_address%3D198.18.40.10", setup.member).1, "ports") == [portID])
            #expect(try await call(client, .get, "/ports?colour=red", setup.member).0 == .badRequest)
            let fields = try await call(client, .get, "/ports?fields=id&fields=name&sort_key=name&sort_dir=desc", setup.member).1
            #expect(fields["ports"]?.arrayValue?.map { $0["name"] } == ["p2", "p1"])
            #expect(fields["ports"]?.arrayValue?.first?.objectValue?.keys.sorted() == ["id", "name"])
            let page = try await call(client, .get, "/ports?limit=1&sort_key=name", setup.member).1
            #expect(page["ports"]?.arrayValue?.count == 1 && page["ports_links"]?.arrayValue?.first?["rel"] == "next")
            let next = try await call(client, .get, "/ports?limit=1&sort_key=name&marker=\(portID)", setup.member).1
            #expect(next["ports"]?.arrayValue?.first?["name"] == "p2")

            // Tags: add, list, filter, replace, remove; each bumps the revision.
            #expect(try await call(client, .put, "/networks/\(networkID)/tags/b", setup.member).0 == .created)
            #expect(try await call(client, .get, "/networks/\(networkID)/tags", setup.member).1 == ["tags": ["a", "b"]])
            #expect(ids(try await call(client, .get, "/networks?tags=a,b", setup.member).1, "networks") == [networkID])
            #expect(ids(try await call(client, .get, "/networks?not-tags-any=b", setup.member).1, "networks") == [])
            #expect(try await call(client, .put, "/networks/\(networkID)/tags", setup.member, ["tags": ["z"]]).1 == ["tags": ["z"]])
            #expect(try await call(client, .delete, "/networks/\(networkID)/tags/nope", setup.member).0 == .notFound)
            #expect(try await call(client, .get, "/networks/\(networkID)", setup.member).1["network"]?["revision_number"] == 3)

            // In use: the network and subnet refuse deletion until their ports are gone.
            let busy = try await call(client, .delete, "/networks/\(networkID)", setup.member)
            #expect(busy.0 == .conflict && busy.1["NeutronError"]?["type"] == "NetworkInUse")
            #expect(try await call(client, .delete, "/subnets/\(subnetID)", setup.member).0 == .conflict)
            #expect(try await call(client, .delete, "/ports/\(portID)", setup.other).0 == .notFound)
            for id in ids(try await call(client, .get, "/ports", setup.member).1, "ports") {
                #expect(try await call(client, .delete, "/ports/\(id)", setup.member).0 == .noContent)
            }
            #expect(try await call(client, .delete, "/networks/\(networkID)", setup.member).0 == .noContent)
            #expect(try await call(client, .get, "/subnets/\(subnetID)", setup.member).0 == .notFound)
        }
    }

    @Test func sharedNetworksQuotasAndDiscovery() async throws {
        try await withNeutron { client, setup in
            let shared = try await call(client, .post, "/networks", setup.admin, ["network": [
                "name": "public", "shared": true, "provider:network_type": "flat", "provider:physical_network": "physnet0"]])
            #expect(shared.0 == .created && shared.1["network"]?["mtu"] == 1500)
            let sharedID = try #require(shared.1["network"]?["id"]?.stringValue)
            let dup = try await call(client, .post, "/networks", setup.admin, ["network": [
                "provider:network_type": "flat", "provider:physical_network": "physnet0"]])
            #expect(dup.0 == .conflict && dup.1["NeutronError"]?["type"] == "FlatNetworkInUse")
            _ = try await call(client, .post, "/subnets", setup.admin, ["subnet": [
                "network_id": .string(sharedID), "ip_version": 4, "cidr": "198.18.50.0/29"]])
            // Every project sees and may use the shared network, but not change it.
            #expect(ids(try await call(client, .get, "/networks", setup.other).1, "networks") == [sharedID])
            #expect(try await call(client, .put, "/networks/\(sharedID)", setup.other, ["network": ["name": "mine"]]).0 == .forbidden)
            let port = try await call(client, .post, "/ports", setup.other, ["port": ["network_id": .string(sharedID)]])
            #expect(port.0 == .created)
            #expect(try await call(client, .post, "/subnets", setup.other, ["subnet": [
                "network_id": .string(sharedID), "ip_version": 4, "cidr": "198.18.51.0/24"]]).0 == .forbidden)
            // Availability: 5 addresses in the pool, 1 used.
            let availability = try await call(client, .get, "/network-ip-availabilities/\(sharedID)", setup.admin).1["network_ip_availability"]
            #expect(availability?["total_ips"] == 5 && availability?["used_ips"] == 1)
            #expect(try await call(client, .get, "/network-ip-availabilities", setup.member).0 == .forbidden)
            // Quotas: defaults, a change by the admin, usage in the details.
            #expect(try await call(client, .get, "/quotas/\(setup.memberProject)", setup.member).1["quota"]?["port"] == 500)
            #expect(try await call(client, .put, "/quotas/\(setup.memberProject)", setup.member, ["quota": ["port": 1]]).0 == .forbidden)
            #expect(try await call(client, .put, "/quotas/\(setup.memberProject)", setup.admin, ["quota": ["network": 1]]).1["quota"]?["network"] == 1)
            _ = try await call(client, .post, "/networks", setup.member, ["network": ["name": "one"]])
            let over = try await call(client, .post, "/networks", setup.member, ["network": ["name": "two"]])
            #expect(over.0 == .conflict && over.1["NeutronError"]?["type"] == "OverQuota")
            let details = try await call(client, .get, "/quotas/\(setup.memberProject)/details", setup.member).1["quota"]
            #expect(details?["network"] == ["limit": 1, "used": 1, "reserved": 0])
            // Extensions: exactly the implemented ones (no QoS, trunks, HA or distributed routers).
            let aliases = Set((try await call(client, .get, "/extensions", setup.member).1["extensions"]?.arrayValue ?? []).compactMap { $0["alias"]?.stringValue })
            #expect(aliases.isSuperset(of: ["provider", "external-net", "binding", "quotas", "standard-attr-tag", "network-ip-availability",
                                            "security-group", "stateful-security-group", "address-group"]))
            #expect(aliases.isDisjoint(with: ["qos", "trunk", "l3-ha", "dvr", "l3_agent_scheduler"]))
            #expect(try await call(client, .get, "/availability_zones", setup.member).1["availability_zones"] == [])
        }
    }

    /// Security groups in Neutron's shapes: the default group on first use, rule bodies as the
    /// API samples have them, NeutronError bodies, and another project's group hidden.
    /// Each write route's body is checked before its handler, as Neutron's API layer checks it
    /// (unknown attributes, what a POST or PUT may not set, then each value), in Neutron's words;
    /// a refused request changes nothing.
    @Test func bodiesAreCheckedAsNeutronChecksThem() async throws {
        try await withNeutron { client, setup in
            let (_, created) = try await call(client, .post, "/networks", setup.member, ["network": ["name": "kept"]])
            let network = try #require(created["network"]?["id"]?.stringValue)
            let (_, router) = try await call(client, .post, "/routers", setup.member, ["router": ["name": "r"]])
            let routerID = try #require(router["router"]?["id"]?.stringValue)
            for (method, path, body, type, message) in [
                (HTTPRequest.Method.post, "/networks", ["network": ["name": "n", "colour": "red"]] as JSON, "HTTPBadRequest",
                 "Unrecognized attribute(s) 'colour'"),
                (.post, "/networks", ["network": ["admin_state_up": "maybe"]], "InvalidInput",
                 "Invalid input for operation: 'maybe' cannot be converted to boolean."),
                (.post, "/networks", ["network": ["name": " padded"]], "HTTPBadRequest",
                 "Invalid input for name. Reason: ' padded' is not a valid string."),
                (.post, "/networks", ["network": ["status": "DOWN"]], "HTTPBadRequest", "Attribute 'status' not allowed in POST"),
                (.post, "/networks", ["networks": [["name": "a"]]], "HTTPBadRequest", "Bulk operation not supported"),
                (.put, "/networks/\(network)", ["network": ["status": "DOWN"]], "HTTPBadRequest", "Cannot update read-only attribute status"),
                (.put, "/networks/\(network)", ["network": "kept"], "HTTPBadRequest", "Object 'network' contains invalid data"),
                (.post, "/subnets", ["subnet": ["network_id": .string(network), "cidr": "198.18.0.0/24", "ip_version": 5]],
                 "HTTPBadRequest", "Invalid input for ip_version. Reason: 5 is not in valid_values."),
                (.post, "/ports", ["port": ["network_id": .string(network), "fixed_ips": [["ip_address": "198.18.0.300"]]]],
                 "HTTPBadRequest", "Invalid input for fixed_ips. Reason: '198.18.0.300' is not a valid IP address."),
                (.put, "/networks/\(network)/tags", ["tags": ["a", "a"]], "InvalidInput",
                 "Invalid input for operation: Duplicate items in the list: 'a'."),
                (.put, "/routers/\(routerID)/add_router_interface", ["subnet_id": "nope"], "BadRequest",
                 "Bad router request: 'nope' is not a valid UUID."),
            ] {
                let (status, answer) = try await call(client, method, path, setup.member, body)
                #expect(status == .badRequest, "\(method) \(path) \(body)")
                #expect(answer["NeutronError"]?["type"]?.stringValue == type, "\(method) \(path) \(body): \(answer)")
                #expect(answer["NeutronError"]?["message"]?.stringValue == message, "\(method) \(path) \(body): \(answer)")
            }
            let (_, after) = try await call(client, .get, "/networks/\(network)", setup.member)
            #expect(after["network"]?["name"] == "kept" && after["network"]?["tags"] == [])
            #expect(ids(try await call(client, .get, "/networks", setup.member).1, "networks") == [network])
            #expect(try await call(client, .get, "/subnets", setup.member).1["subnets"]?.arrayValue?.isEmpty == true)
        }
    }

    @Test func securityGroupsShapesPolicyAndErrors() async throws {
        try await withNeutron { client, setup in
            let listed = try await call(client, .get, "/security-groups", setup.member)
            #expect(listed.0 == .ok)
            let groups = listed.1["security_groups"]?.arrayValue ?? []
            #expect(groups.count == 1 && groups.first?["name"] == "default" && groups.first?["stateful"] == true)
            let defaultRules = groups.first?["security_group_rules"]?.arrayValue ?? []
            #expect(defaultRules.count == 4 && defaultRules.allSatisfy { $0["belongs_to_default_sg"] == true })
            let sample: Set<String> = ["id", "security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
                                       "remote_ip_prefix", "remote_group_id", "remote_address_group_id", "project_id", "tenant_id",
                                       "revision_number", "created_at", "updated_at", "description", "belongs_to_default_sg"]
            let (created, body) = try await call(client, .post, "/security-groups", setup.member,
                                                 ["security_group": ["name": "web", "description": "web servers"]])
            #expect(created == .created)
            let web = try #require(body["security_group"]?["id"]?.stringValue)
            let (ruleStatus, rule) = try await call(client, .post, "/security-group-rules", setup.member, ["security_group_rule": [
                "security_group_id": .string(web), "direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80,
                "remote_ip_prefix": "198.18.95.7/24"]])
            #expect(ruleStatus == .created)
            let fields = Set(rule["security_group_rule"]?.objectValue?.keys.map { $0 } ?? [])
            #expect(sample.isSubset(of: fields), "missing: \(sample.subtracting(fields))")
            #expect(rule["security_group_rule"]?["normalized_cidr"] == "198.18.95.0/24")
            #expect(rule["security_group_rule"]?["port_range_min"] == 80)
            // Neutron's error bodies.
            let (duplicate, conflict) = try await call(client, .post, "/security-group-rules", setup.member, ["security_group_rule": [
                "security_group_id": .string(web), "direction": "ingress", "protocol": "6", "port_range_min": 80, "port_range_max": 80,
                "remote_ip_prefix": "198.18.95.0/24"]])
            #expect(duplicate == .conflict && conflict["NeutronError"]?["type"] == "SecurityGroupRuleExists")
            let (bad, refusal) = try await call(client, .post, "/security-group-rules", setup.member, ["security_group_rule": [
                "security_group_id": .string(web), "direction": "ingress", "port_range_min": 22]])
            #expect(bad == .badRequest && refusal["NeutronError"]?["type"] == "SecurityGroupProtocolRequiredWithPorts")
            let (unknown, _) = try await call(client, .post, "/security-group-rules", setup.member, ["security_group_rule": [
                "security_group_id": .string(web), "direction": "ingress", "colour": "blue"]])
            #expect(unknown == .badRequest)
            // Another project sees neither the group nor its rules, and cannot add to it.
            #expect(try await call(client, .get, "/security-groups/\(web)", setup.other).0 == .notFound)
            let (foreign, foreignBody) = try await call(client, .post, "/security-group-rules", setup.other, ["security_group_rule": [
                "security_group_id": .string(web), "direction": "egress"]])
            #expect(foreign == .notFound && foreignBody["NeutronError"]?["type"] == "SecurityGroupNotFound")
            // Bulk: all or none.
            let before = try await call(client, .get, "/security-group-rules?security_group_id=\(web)", setup.member).1["security_group_rules"]?.arrayValue?.count
            let (bulk, _) = try await call(client, .post, "/security-group-rules", setup.member, ["security_group_rules": [
                ["security_group_id": .string(web), "direction": "ingress", "protocol": "udp"],
                ["security_group_id": .string(web), "direction": "sideways"]]])
            #expect(bulk == .badRequest)
            #expect(try await call(client, .get, "/security-group-rules?security_group_id=\(web)", setup.member).1["security_group_rules"]?.arrayValue?.count == before)
            // Address groups: CIDR form, add and remove.
            let (agStatus, ag) = try await call(client, .post, "/address-groups", setup.member, ["address_group": ["name": "office", "addresses": ["198.18.96.1"]]])
            #expect(agStatus == .created && ag["address_group"]?["addresses"] == ["198.18.96.1/32"])
            let agID = try #require(ag["address_group"]?["id"]?.stringValue)
            let added = try await call(client, .put, "/address-groups/\(agID)/add_addresses", setup.member, ["addresses": ["198.18.97.0/24"]])
            #expect(added.1["address_group"]?["addresses"] == ["198.18.96.1/32", "198.18.97.0/24"])
            #expect(try await call(client, .delete, "/security-groups/\(web)", setup.member).0 == .noContent)
        }
    }

    @Test func routersAndFloatingIPsShapesPolicyAndErrors() async throws {
        try await withNeutron { client, setup in
            // An external network (admin) and a member's own network and subnet.
            let (_, external) = try await call(client, .post, "/networks", setup.admin, ["network": [
                "name": "public", "router:external": true, "provider:network_type": "flat", "provider:physical_network": "ext"]])
            let publicID = try #require(external["network"]?["id"]?.stringValue)
            #expect(try await call(client, .post, "/subnets", setup.admin, ["subnet": [
                "network_id": .string(publicID), "cidr": "198.18.97.0/24", "ip_version": 4, "enable_dhcp": false]]).0 == .created)
            let (_, own) = try await call(client, .post, "/networks", setup.member, ["network": ["name": "own"]])
            let ownID = try #require(own["network"]?["id"]?.stringValue)
            let (_, ownSubnet) = try await call(client, .post, "/subnets", setup.member, ["subnet": [
                "network_id": .string(ownID), "cidr": "198.18.98.0/24", "ip_version": 4, "enable_dhcp": false]])
            let subnetID = try #require(ownSubnet["subnet"]?["id"]?.stringValue)

            // A router with a gateway: Neutron's shape; SNAT and addresses are the admin's to choose.
            let (created, body) = try await call(client, .post, "/routers", setup.member, ["router": [
                "name": "r1", "external_gateway_info": ["network_id": .string(publicID)]]])
            #expect(created == .created)
            let router = try #require(body["router"]?.objectValue)
            let sample: Set<String> = ["admin_state_up", "created_at", "description", "distributed", "external_gateway_info", "ha", "id", "name",
                                       "revision_number", "routes", "status", "updated_at", "project_id", "tenant_id", "tags"]
            #expect(Set(router.keys) == sample, "keys: \(router.keys.sorted())")
            let routerID = try #require(router["id"]?.stringValue)
            #expect(router["external_gateway_info"]?["enable_snat"] == true && router["status"] == "ACTIVE" && router["ha"] == false)
            #expect(router["external_gateway_info"]?["external_fixed_ips"]?.arrayValue?.first?["ip_address"]?.stringValue?.hasPrefix("198.18.97.") == true)
            let (snat, _) = try await call(client, .put, "/routers/\(routerID)", setup.member, ["router": [
                "external_gateway_info": ["network_id": .string(publicID), "enable_snat": false]]])
            #expect(snat == .forbidden)
            let (off, offBody) = try await call(client, .put, "/routers/\(routerID)", setup.admin, ["router": [
                "external_gateway_info": ["network_id": .string(publicID), "enable_snat": false]]])
            #expect(off == .ok && offBody["router"]?["external_gateway_info"]?["enable_snat"] == false)
            #expect(try await call(client, .put, "/routers/\(routerID)", setup.member, ["router": ["ha": true]]).0 == .badRequest)
            #expect(try await call(client, .get, "/routers/\(routerID)", setup.other).0 == .notFound)

            // Interfaces: the subnet's gateway address; a second time → 400; the router then in use → 409.
            let (added, interface) = try await call(client, .put, "/routers/\(routerID)/add_router_interface", setup.member, ["subnet_id": .string(subnetID)])
            #expect(added == .ok && interface["subnet_id"]?.stringValue == subnetID && interface["network_id"]?.stringValue == ownID)
            let interfacePort = try #require(interface["port_id"]?.stringValue)
            let (_, portBody) = try await call(client, .get, "/ports/\(interfacePort)", setup.member)
            #expect(portBody["port"]?["device_owner"] == "network:router_interface")
            #expect(portBody["port"]?["fixed_ips"]?.arrayValue?.first?["ip_address"] == "198.18.98.1")
            let (twice, twiceBody) = try await call(client, .put, "/routers/\(routerID)/add_router_interface", setup.member, ["subnet_id": .string(subnetID)])
            #expect(twice == .badRequest && twiceBody["NeutronError"]?["type"] == "BadRequest")
            let (inUse, inUseBody) = try await call(client, .delete, "/routers/\(routerID)", setup.member)
            #expect(inUse == .conflict && inUseBody["NeutronError"]?["type"] == "RouterInUse")
            let (direct, directBody) = try await call(client, .delete, "/ports/\(interfacePort)", setup.member)
            #expect(direct == .conflict && directBody["NeutronError"]?["type"] == "ServicePortInUse")
            let (badRoute, badRouteBody) = try await call(client, .put, "/routers/\(routerID)/add_extraroutes", setup.member, ["router": [
                "routes": [["destination": "198.18.99.0/24", "nexthop": "198.18.96.9"]]]])
            #expect(badRoute == .badRequest && badRouteBody["NeutronError"]?["type"] == "InvalidRoutes")
            let (route, routeBody) = try await call(client, .put, "/routers/\(routerID)/add_extraroutes", setup.member, ["router": [
                "routes": [["destination": "198.18.99.0/24", "nexthop": "198.18.98.9"]]]])
            #expect(route == .ok && routeBody["router"]?["routes"]?.arrayValue?.count == 1)

            // Floating IPs: only from external networks; one per fixed address; Neutron's shape.
            let (notExternal, notExternalBody) = try await call(client, .post, "/floatingips", setup.member, ["floatingip": ["floating_network_id": .string(ownID)]])
            #expect(notExternal == .badRequest && notExternalBody["NeutronError"] != nil)
            let (_, guestPort) = try await call(client, .post, "/ports", setup.member, ["port": ["network_id": .string(ownID)]])
            let guestPortID = try #require(guestPort["port"]?["id"]?.stringValue)
            let (fipStatus, fipBody) = try await call(client, .post, "/floatingips", setup.member, ["floatingip": [
                "floating_network_id": .string(publicID), "port_id": .string(guestPortID)]])
            #expect(fipStatus == .created)
            let fip = try #require(fipBody["floatingip"]?.objectValue)
            let fipSample: Set<String> = ["floating_network_id", "router_id", "fixed_ip_address", "floating_ip_address", "project_id", "tenant_id",
                                          "status", "port_id", "id", "description", "dns_domain", "dns_name", "created_at", "updated_at",
                                          "revision_number", "port_details", "tags", "port_forwardings"]
            #expect(Set(fip.keys) == fipSample, "keys: \(fip.keys.sorted())")
            #expect(fip["router_id"]?.stringValue == routerID && fip["status"] == "DOWN" && fip["port_details"]?["network_id"]?.stringValue == ownID)
            let (second, secondBody) = try await call(client, .post, "/floatingips", setup.member, ["floatingip": [
                "floating_network_id": .string(publicID), "port_id": .string(guestPortID)]])
            #expect(second == .conflict && secondBody["NeutronError"]?["type"] == "FloatingIPPortAlreadyAssociated")
            let (chosen, _) = try await call(client, .post, "/floatingips", setup.member, ["floatingip": [
                "floating_network_id": .string(publicID), "floating_ip_address": "198.18.97.77"]])
            #expect(chosen == .forbidden)
            // A port forwarding needs a floating IP without a port.
            let fipID = try #require(fip["id"]?.stringValue)
            #expect(try await call(client, .put, "/floatingips/\(fipID)", setup.member, ["floatingip": ["port_id": .null]]).1["floatingip"]?["port_id"] == .null)
            let (forwarded, forwarding) = try await call(client, .post, "/floatingips/\(fipID)/port_forwardings", setup.member, ["port_forwarding": [
                "internal_port_id": .string(guestPortID), "internal_port": 80, "external_port": 8080, "protocol": "tcp"]])
            #expect(forwarded == .created && forwarding["port_forwarding"]?["internal_ip_address"]?.stringValue?.hasPrefix("198.18.98.") == true)
            #expect(try await call(client, .get, "/floatingips/\(fipID)", setup.member).1["floatingip"]?["port_forwardings"]?.arrayValue?.count == 1)
            let (removeUsed, removeUsedBody) = try await call(client, .put, "/routers/\(routerID)/remove_router_interface", setup.member, ["subnet_id": .string(subnetID)])
            #expect(removeUsed == .conflict && removeUsedBody["NeutronError"]?["type"] == "RouterInterfaceInUseByFloatingIP")
            // Deleting the port lets go of the forwarding; then the interface and the router go.
            #expect(try await call(client, .delete, "/ports/\(guestPortID)", setup.member).0 == .noContent)
            #expect(try await call(client, .get, "/floatingips/\(fipID)", setup.member).1["floatingip"]?["port_forwardings"] == [])
            #expect(try await call(client, .put, "/routers/\(routerID)/remove_router_interface", setup.member, ["subnet_id": .string(subnetID)]).0 == .ok)
            #expect(try await call(client, .delete, "/routers/\(routerID)", setup.member).0 == .noContent)
            #expect(try await call(client, .delete, "/floatingips/\(fipID)", setup.member).0 == .noContent)
            let extensions = try await call(client, .get, "/extensions", setup.member).1["extensions"]?.arrayValue?.compactMap { $0["alias"]?.stringValue } ?? []
            #expect(["router", "extraroute", "extraroute-atomic", "ext-gw-mode", "floating-ip-port-forwarding"].allSatisfy(extensions.contains))
            #expect(!extensions.contains("l3-ha") && !extensions.contains("dvr"))
        }
    }
}
