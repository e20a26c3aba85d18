import PetrelHTTP
import Testing

/// Application credentials' access-rule paths, matched as keystonemiddleware matches them.
@Suite struct AccessRuleTests {
    func rule(_ path: String) -> Caller.AccessRule { Caller.AccessRule(service: "compute", path: path, method: "GET") }

    @Test func literalPathsMatchExactly() {
        #expect(rule("/v2.1/servers").matches(path: "/v2.1/servers"))
        #expect(!rule("/v2.1/servers").matches(path: "/v2.1/servers/detail"))
        #expect(!rule("/v2.1/servers").matches(path: "/v2x1/servers"), "a dot is a dot")
        #expect(!rule("/v2.1/servers").matches(path: "/v2.1/servers/"))
    }

    @Test func wildcardsStandForOneSegmentOrAnything() {
        #expect(rule("/v2.1/servers/*").matches(path: "/v2.1/servers/abc"))
        #expect(!rule("/v2.1/servers/*").matches(path: "/v2.1/servers/abc/ips"))
        #expect(rule("/v2.1/servers/{server_id}/ips").matches(path: "/v2.1/servers/abc/ips"))
        #expect(rule("/v2.1/servers/**").matches(path: "/v2.1/servers/abc/ips/public"))
        #expect(!rule("/v2.1/servers/*").matches(path: "/v2.1/servers/"))
    }
}
