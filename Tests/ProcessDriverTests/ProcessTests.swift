import Foundation
import Logging
import NetlinkDriver
import ProcessDriver
import TestSupport
import Testing

@Suite struct ProcessTests {
    let logger = Logger(label: "petrel-test")

    @Test func commandsReturnOutputAndStatus() async throws {
        let result = try await Command.run("sh", ["-c", "cat; echo out; echo err >&2; exit 3"], input: "in\n")
        #expect(result.status == 3 && result.stdout == "in\nout\n" && result.stderr == "err\n")
        do {
            try await Command.check("sh", ["-c", "echo broken >&2; exit 2"])
            Issue.record("non-zero status not reported")
        } catch let error as CommandError {
            #expect(error.status == 2 && error.stderr == "broken\n")
        }
        await #expect(throws: CommandError.self) { try await Command.run("petrel-no-such-tool", []) }
    }

    @Test func childOutputIsCapturedAndItStopsOnSignal() async throws {
        let child = try ChildProcess(name: "talker", executable: "sh",
                                     arguments: ["-c", "echo ready; echo complaint >&2; exec sleep 60"], logger: logger)
        try child.start()
        #expect(child.isRunning && child.pid > 0)
        #expect(await eventually { Set(child.recentOutput) == ["ready", "complaint"] })
        let termination = await child.stop(grace: .seconds(5))
        #expect(termination == .signalled(SIGTERM))
        #expect(!child.isRunning)
    }

    @Test func stubbornChildIsKilled() async throws {
        let child = try ChildProcess(name: "stubborn", executable: "sh",
                                     arguments: ["-c", "trap '' TERM; echo up; while :; do sleep 0.1; done"], logger: logger)
        try child.start()
        #expect(await eventually { child.recentOutput == ["up"] })
        let termination = await child.stop(grace: .milliseconds(300))
        #expect(termination == .signalled(SIGKILL))
    }

    @Test func childRunsInsideANamespace() async throws {
        try Requirement.root()
        let namespace = try NetworkNamespace.create(TestNames.unique("petrel-test-"))
        defer { try? namespace.delete() }
        let child = try ChildProcess(name: "inside", executable: "sleep", arguments: ["60"], namespace: namespace, logger: logger)
        try child.start()
        var info = stat()
        #expect(stat("/proc/\(child.pid)/ns/net", &info) == 0)
        #expect(UInt64(info.st_ino) == (try namespace.inode()))
        var own = stat()
        stat("/proc/self/ns/net", &own)
        #expect(own.st_ino != info.st_ino, "this test process must stay outside")
        // A command run inside sees only the namespace's loopback.
        let links = try await Command.check("ip", ["-o", "link"], namespace: namespace)
        #expect(links.contains("lo:") && links.split(separator: "\n").count == 1)
        #expect(await child.stop() == .signalled(SIGTERM))
    }
}

@Suite struct ProcessMemoryTests {
    /// glibc takes the arena cap the node sets at start (a symbol lookup that could silently fail).
    @Test func glibcTakesTheArenaCap() {
        #expect(ProcessMemory.limitMallocArenas(8))
    }
}
