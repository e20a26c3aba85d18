import ArgumentParser
import PetrelCore
import PetrelHTTP

@main
struct PetrelController: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "petrel-controller",
        abstract: "Petrel's controller: identity, catalog, scheduler and the OpenStack APIs.",
        version: PetrelVersion.current,
        subcommands: [Serve.self, SampleConfig.self],
        defaultSubcommand: Serve.self)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTP APIs on [api] listen until SIGTERM.")

    @OptionGroup var options: ConfigFileOptions

    func run() async throws {
        let config = try options.load()
        let logger = PetrelProgram.prepare("petrel-controller", config: config)
        let api = PetrelHTTPListener.application(router: PetrelHTTPListener.observabilityRouter(),
                                                 address: config.apiListen, serverName: "petrel-controller",
                                                 logger: logger)
        logger.info("starting", metadata: ["listen": "\(config.apiListen)", "public_url": "\(config.publicURL)",
                                            "version": "\(PetrelVersion.current)"])
        try await PetrelProgram.run([api], logger: logger)
    }
}

struct SampleConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample-config",
        abstract: "Print a sample configuration file documenting every key.")

    func run() {
        print(ConfigSchema.sampleFile(), terminator: "")
    }
}
