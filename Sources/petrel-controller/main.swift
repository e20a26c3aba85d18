import ArgumentParser
import ComputeAPI
import ConsoleAPI
import Contracts
import Foundation
import Compute
import Hosts
import Identity
import IdentityAPI
import ImageAPI
import Images
import Logging
import MetadataAPI
import NetworkAPI
import Networking
import PetrelCore
import PetrelHTTP
import Placement
import PlacementAPI
import RPC
import ServiceLifecycle
import Store
import VolumeAPI
import Volumes

@main
struct PetrelController: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "petrel-controller",
        abstract: "Petrel's controller: identity, catalog, scheduler and the OpenStack APIs.",
        version: PetrelVersion.current,
        subcommands: [Serve.self, DBSync.self, BootstrapCommand.self, TokenKeys.self, CredentialKeys.self, SampleConfig.self, SamplePolicy.self],
        defaultSubcommand: Serve.self)

    @OptionGroup var options: ConfigFileOptions
}

/// Opens the configured database, runs `body` with it and closes it. A failure ends the
/// program with "<what> failed: <reason>" in the log.
func withDatabase(_ config: PetrelConfig, logger: Logger, _ what: String,
                  _ body: (Database) async throws -> Void) async throws {
    let database: Database
    do {
        database = try Database(config.databaseConnection, logger: logger)
    } catch {
        logger.critical("\(what) failed: \(error)")
        throw ExitCode.failure
    }
    do {
        try await body(database)
        await database.shutdown()
    } catch {
        logger.critical("\(what) failed: \(error)")
        await database.shutdown()
        throw ExitCode.failure
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTP APIs on [api] listen until SIGTERM (the default command).")

    @ParentCommand var controller: PetrelController

    func run() async throws {
        let config = try controller.options.load()
        let logger = PetrelProgram.prepare("petrel-controller", config: config)
        // HTTPS: the certificate and key must load before anything starts.
        let certificate: ListenerCertificate?
        do {
            certificate = try config.apiTLS.map { try ListenerCertificate(certificateFile: $0.certificateFile, keyFile: $0.keyFile) }
        } catch {
            logger.critical("cannot serve HTTPS: \(error)")
            throw ExitCode.failure
        }
        try await withDatabase(config, logger: logger, "serve") { database in
            try await Migrator().requireCurrent(database)
            try await serve(config, certificate: certificate, database: database, logger: logger)
        }
    }

    func serve(_ config: PetrelConfig, certificate: ListenerCertificate?, database: Database, logger: Logger) async throws {
        let identity = try makeIdentity(config, database: database, logger: logger)
        try await identity.service.refreshRevocations()
        let router = PetrelHTTPListener.observabilityRouter(context: APIRequestContext.self, options: .autoGenerateHeadEndpoints)
        let hosts = HostInventory(database: database, serviceDownTime: TimeInterval(config.serviceDownTime))
        // Node reports and compute updates arrive over RabbitMQ; the controller keeps serving
        // HTTP while the broker is away, and the RPC server reconnects by itself.
        let link = BrokerLink(transport: config.transportURL, name: "controller", logger: logger)
        let images = try ImageService(database: database, directory: config.imageStorePath, sizeCap: Int64(config.imageSizeCap))
        try await images.recoverInterruptedUploads()
        var schedulerOptions = SchedulerOptions()
        schedulerOptions.cpuAllocationRatio = config.scheduler.cpuAllocationRatio
        schedulerOptions.ramAllocationRatio = config.scheduler.ramAllocationRatio
        schedulerOptions.diskAllocationRatio = config.scheduler.diskAllocationRatio
        schedulerOptions.ramWeightMultiplier = config.scheduler.ramWeightMultiplier
        schedulerOptions.allowResizeToSameHost = config.scheduler.allowResizeToSameHost
        // Placement: the compute nodes' providers current, and every placed instance's allocation
        // there (an upgraded cloud gets its instances' allocations here, once).
        let placement = PlacementService(database: database, ratios: schedulerOptions.inventoryRatios)
        let reconciled = try await placement.reconcile()
        if reconciled != (0, 0) {
            logger.info("placement allocations reconciled with the instances",
                        metadata: ["created": "\(reconciled.created)", "released": "\(reconciled.released)"])
        }

        let networkClient = RPCClient(link: link, logger: logger)
        let networking = NetworkService(database: database, settings: config.networking, quotaDefaults: config.quotaDefaults, hosts: hosts) { changed in
            // The nodes hear which networks changed and sync them; a broker outage only delays it
            // (every node syncs everything again when it reconnects and at start).
            do {
                try await networkClient.fanout(NetworksChanged.self, NetworksChanged.Arguments(networkIDs: changed), topic: NetworksChanged.topic,
                                               patience: .seconds(5))
            } catch {
                logger.warning("could not tell the nodes about changed networks", metadata: ["networks": "\(changed)", "error": "\(error)"])
            }
        } onFirewallChange: {
            do {
                try await networkClient.fanout(FirewallChanged.self, FirewallChanged.Arguments(), topic: FirewallChanged.topic, patience: .seconds(5))
            } catch {
                logger.warning("could not tell the nodes about changed security groups", metadata: ["error": "\(error)"])
            }
        } onRouterChange: { changed in
            do {
                try await networkClient.fanout(RoutersChanged.self, RoutersChanged.Arguments(routerIDs: changed), topic: RoutersChanged.topic,
                                               patience: .seconds(5))
            } catch {
                logger.warning("could not tell the nodes about changed routers", metadata: ["routers": "\(changed)", "error": "\(error)"])
            }
        }
        let volumeClient = RPCClient(link: link, logger: logger)
        let volumes = VolumeService(
            database: database,
            settings: .init(quotaDefaults: config.quotaDefaults, defaultTypeName: config.defaultVolumeType,
                            availabilityZone: config.storageAvailabilityZone, messageTTL: config.messageTTL),
            hosts: hosts, images: images,
            connect: { host, volume in
                try await volumeClient.call(VolumeConnection.self, volume, topic: RPCTopology.hostTopic(VolumeTopic.name, host: host),
                                            timeout: .seconds(30))
            },
            sendSnapshot: { host, work in
                try await volumeClient.cast(SnapshotWork.self, work, topic: RPCTopology.hostTopic(VolumeTopic.name, host: host), patience: .seconds(10))
            },
            sendBackup: { host, work in
                try await volumeClient.cast(BackupWork.self, work, topic: RPCTopology.hostTopic(VolumeTopic.name, host: host), patience: .seconds(10))
            },
            export: { host, export in
                try await volumeClient.call(ExportVolume.self, export, topic: RPCTopology.hostTopic(VolumeTopic.name, host: host),
                                            timeout: .seconds(30))
            },
            unexport: { host, export in
                _ = try await volumeClient.call(UnexportVolume.self, export, topic: RPCTopology.hostTopic(VolumeTopic.name, host: host),
                                                timeout: .seconds(30))
            }) { host, work in
            try await volumeClient.cast(VolumeWork.self, work, topic: RPCTopology.hostTopic(VolumeTopic.name, host: host), patience: .seconds(10))
        }
        let servers = {
            var servers = Servers(database: database, images: images, quotas: Quotas(database: database, defaults: config.quotaDefaults),
                                  networking: networking, volumes: volumes)
            servers.reclaimInstanceInterval = config.reclaimInstanceInterval
            return servers
        }()
        let conductor = Conductor(servers: servers, scheduler: Scheduler(hosts: hosts, options: schedulerOptions),
                                  client: RPCClient(link: link, logger: logger), maxAttempts: config.scheduler.maxAttempts, logger: logger)
        // Each API under its prefix with its own error style; identity last, as its error
        // middleware applies to the routes added after it.
        var compute = ComputeAPI(environment: identity.environment, hosts: hosts, quotaDefaults: config.quotaDefaults, conductor: conductor, logger: logger)
        // Remote consoles: URLs with single-use tokens, taken by the console proxy's listener.
        let consoleTokens = ConsoleTokens(database: database, ttl: config.consoles.tokenTTL)
        let consoleProxy = config.consoles.proxyListen.map {
            ConsoleProxy(tokens: consoleTokens, listen: $0, webDirectory: config.consoles.webDirectory,
                         allowedOrigins: config.consoles.allowedOrigins, logger: logger)
        }
        if consoleProxy != nil {
            compute.consoles = ConsoleAccess(tokens: consoleTokens, novncBaseURL: config.consoles.novncBaseURL,
                                             serialBaseURL: config.consoles.serialBaseURL)
        }
        compute.register(on: router)
        NetworkAPI(environment: identity.environment, hosts: hosts, service: networking, logger: logger).register(on: router)
        VolumeAPI(environment: identity.environment, hosts: hosts, volumes: volumes, logger: logger).register(on: router)
        ImageAPI(environment: identity.environment, images: images, propertyQuota: config.imagePropertyQuota, logger: logger).register(on: router)
        PlacementAPI(environment: identity.environment, service: placement, logger: logger).register(on: router)
        MetadataAPI(metadata: MetadataService(database: database, interfaces: { try await servers.guestInterfaces($0) }), sharedSecret: config.metadataSharedSecret, logger: logger)
            .register(on: router)
        identity.register(on: router)
        let api = PetrelHTTPListener.application(router: router, address: config.apiListen, serverName: "petrel-controller",
                                                 tls: certificate, logger: logger)
        logger.info("starting", metadata: ["listen": "\(config.apiListen)", "public_url": "\(config.publicURL)",
                                            "tls": "\(certificate.map { "\($0.summary)" } ?? "off (plain HTTP)")",
                                            "database": "\(database.backend.rawValue)", "version": "\(PetrelVersion.current)"])
        let reports = RPCServer(link: link, topic: ReportState.topic, host: config.host, logger: logger)
        conductor.register(on: reports)
        let services = ServiceStore(database)
        reports.register(ReportState.self) { report, context in
            try await services.record(
                host: report.host, version: report.version, services: report.services.map { ($0.binary, $0.topic) },
                hypervisor: report.hypervisor.map {
                    HypervisorRecord(type: $0.type, version: $0.version, cpuModel: $0.cpuModel, vcpus: $0.vcpus,
                                     memoryMB: $0.memoryMB, localGB: $0.localGB, hostIP: $0.hostIP, uptime: $0.uptime,
                                     runningVMs: $0.runningVMs ?? 0)
                })
            if let hypervisor = report.hypervisor {
                // Its resource provider's inventory, and the traits the node reports (CPU flags, COMPUTE_*).
                try await placement.recordReportedTraits(host: report.host, traits: hypervisor.traits ?? [])
            }
            if let backends = report.volumeBackends { try await volumes.recordBackends(host: report.host, backends) }
            logger.debug("node report", metadata: ["node": "\(report.host)", "request_id": "\(context.requestID)"])
            return Nothing()
        }
        // The nodes' volume services: what should be on their backends, and how their work went.
        reports.register(VolumesOnHost.self) { query, _ in
            VolumesOnHost.Result(volumes: try await volumes.specs(host: query.host, ids: query.ids),
                                 snapshots: try await volumes.snapshotSpecs(host: query.host, ids: query.ids),
                                 backups: try await volumes.backupSpecs(host: query.host, ids: query.ids),
                                 exports: try await volumes.exports(host: query.host))
        }
        reports.register(BackupUpdate.self) { update, context in
            let applied = try await volumes.applyBackup(update, requestID: context.requestID)
            logger.info("backup update", metadata: ["backup": "\(update.backupID)", "outcome": "\(update.outcome)", "applied": "\(applied)",
                                                    "request_id": "\(context.requestID)"])
            return Nothing()
        }
        reports.register(SnapshotUpdate.self) { update, context in
            let applied = try await volumes.applySnapshot(update, requestID: context.requestID)
            logger.info("snapshot update", metadata: ["snapshot": "\(update.snapshotID)", "outcome": "\(update.outcome)", "applied": "\(applied)",
                                                      "request_id": "\(context.requestID)"])
            return Nothing()
        }
        reports.register(VolumeUpdate.self) { update, context in
            let applied = try await volumes.apply(update, requestID: context.requestID)
            logger.info("volume update", metadata: ["volume": "\(update.volumeID)", "outcome": "\(update.outcome)", "applied": "\(applied)",
                                                    "request_id": "\(context.requestID)"])
            if applied, update.from == "extending", update.outcome == "available" {
                await conductor.volumeExtended(update.volumeID, context: context)
            }
            return Nothing()
        }
        // The nodes' network services: what to wire and serve, and the ports they wired.
        let neutron = RPCServer(link: link, topic: HostNetworks.topic, host: nil, logger: logger)
        neutron.register(HostNetworks.self) { request, _ in
            if request.servesDHCP {
                var alive = try await networking.aliveDHCPHosts()
                if !alive.contains(request.host) { alive.append(request.host) }
                let moved = try await networking.scheduleDHCP(hosts: alive)
                if !moved.isEmpty { logger.info("DHCP duties handed out", metadata: ["networks": "\(moved)"]) }
            }
            return try await networking.hostNetworks(host: request.host, networkIDs: request.networkIDs, tunnelIP: request.tunnelIP)
        }
        neutron.register(HostFirewall.self) { request, _ in
            try await networking.hostFirewall(host: request.host)
        }
        neutron.register(HostRouters.self) { request, _ in
            // Routers without a live L3 agent go to the least loaded live one (this one counts).
            var alive = try await networking.aliveL3Hosts()
            if !alive.contains(request.host) { alive.append(request.host) }
            let moved = try await networking.scheduleRouters(hosts: alive)
            if !moved.isEmpty { logger.info("routers scheduled", metadata: ["routers": "\(moved)"]) }
            return try await networking.hostRouters(host: request.host)
        }
        neutron.register(FloatingIPsStatus.self) { request, _ in
            try await networking.floatingIPsStatus(host: request.host, active: request.active, down: request.down)
            return Nothing()
        }
        neutron.register(PortsStatus.self) { request, _ in
            try await networking.portsStatus(host: request.host, active: request.active, down: request.down)
            return Nothing()
        }
        var consoleServices: [any Service] = []
        if let consoleProxy, let listen = config.consoles.proxyListen {
            logger.info("console proxy", metadata: ["listen": "\(listen)", "novncproxy_base_url": "\(config.consoles.novncBaseURL)",
                                                    "serial_base_url": "\(config.consoles.serialBaseURL)"])
            consoleServices.append(consoleProxy.application(certificate: certificate))
        }
        try await PetrelProgram.run(consoleServices + [api, ListenerReload(certificate: certificate, logger: logger), BackgroundTask { await reports.run() }, BackgroundTask { await neutron.run() }, BackgroundTask { await identity.service.runRefresh() },
                                     BackgroundTask(once: true) { await conductor.resumeWaitingBuilds(); await conductor.resumeWaitingResizes() },
                                     BackgroundTask { await conductor.watchBuilds(every: .seconds(max(1, min(15, config.serviceDownTime / 2)))) },
                                     BackgroundTask(once: true) { await conductor.reclaimSoftDeleted(interval: config.reclaimInstanceInterval) }],
                                    logger: logger)
        await link.close()
    }
}

/// Every API's policy rules: one policy file for the controller, as one enforcement point.
let allPolicyDefaults = KeystonePolicy.defaults + ComputeAPI.policyDefaults + NetworkAPI.policyDefaults + VolumeAPI.policyDefaults + ImageAPI.policyDefaults
    + PlacementAPI.policyDefaults

/// The identity service and its API from the configuration: the Fernet keys must exist, and
/// a policy file (if present) overrides the built-in rules.
func makeIdentity(_ config: PetrelConfig, database: Database, logger: Logger) throws -> KeystoneAPI {
    var options = IdentityOptions(keyRepository: config.tokenKeyRepository)
    options.tokenExpiration = TimeInterval(config.tokenExpiration)
    options.maxActiveKeys = config.tokenMaxActiveKeys
    options.passwordCost = config.passwordHashRounds
    options.maxPasswordLength = config.maxPasswordLength
    options.lockout = LockoutPolicy(failureAttempts: config.lockoutFailureAttempts, duration: TimeInterval(config.lockoutDuration))
    options.credentialKeyRepository = config.credentialKeyRepository
    options.allowExpiredWindow = TimeInterval(config.tokenAllowExpiredWindow)
    options.passwordRules.regex = config.passwordRegex
    options.passwordRules.regexDescription = config.passwordRegexDescription
    options.passwordRules.uniqueLastPasswordCount = config.uniqueLastPasswordCount
    options.passwordRules.minimumPasswordAgeDays = config.minimumPasswordAge
    options.passwordRules.expiresDays = config.passwordExpiresDays > 0 ? config.passwordExpiresDays : nil
    options.passwordRules.changePasswordUponFirstUse = config.changePasswordUponFirstUse
    options.totpPreviousWindows = config.totpPreviousWindows
    options.receiptExpiration = TimeInterval(config.receiptExpiration)
    options.ec2AuthTTL = TimeInterval(config.credentialAuthTTL * 60)
    if (try? FernetKeyRepository(directory: config.credentialKeyRepository).load()) == nil {
        logger.warning("no credential keys: /v3/credentials and EC2 credentials will fail until `petrel-controller credential-keys setup` runs",
                       metadata: ["key_repository": "\(config.credentialKeyRepository)"])
    }
    let service: IdentityService
    do {
        service = try IdentityService(database: database, options: options, logger: logger)
    } catch {
        throw ValidationError("cannot load the Fernet keys in \(config.tokenKeyRepository): \(error); run `petrel-controller --config <file> token-keys setup`")
    }
    var policy = try Policy(defaults: allPolicyDefaults)
    if let data = FileManager.default.contents(atPath: config.policyFile) {
        try policy.override(yaml: String(decoding: data, as: UTF8.self), file: config.policyFile)
        logger.info("policy overrides loaded", metadata: ["file": "\(config.policyFile)"])
    }
    return KeystoneAPI(service: service, policy: policy, publicURL: config.publicURL, maxBodySize: config.maxRequestBodySize,
                       logger: logger)
}

struct DBSync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db-sync",
        abstract: "Create or upgrade the database schema ([database] connection). Safe to repeat.")

    @ParentCommand var controller: PetrelController

    func run() async throws {
        let config = try controller.options.load()
        let logger = PetrelProgram.prepare("petrel-controller", config: config)
        try await withDatabase(config, logger: logger, "db-sync") { database in
            let migrator = Migrator()
            let before = try await migrator.currentVersion(database)
            if before > migrator.latest { throw StoreError.newerThanThisProgram(current: before, latest: migrator.latest) }
            let applied = try await migrator.migrate(database)
            print(applied.isEmpty
                  ? "database schema is current (version \(migrator.latest))"
                  : "database schema migrated from version \(before) to \(migrator.latest)")
        }
    }
}

struct BootstrapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bootstrap",
        abstract: "Create the Default domain, the admin project and user, the roles and the catalog. Safe to repeat.")

    @ParentCommand var controller: PetrelController
    @Option(help: "Password of the admin user (used only when the user is created).") var adminPassword: String
    @Option(help: "Name of the admin user.") var adminUser = "admin"
    @Option(help: "Name of the admin project.") var adminProject = "admin"
    @Option(help: "Region of the endpoints.") var region = "RegionOne"
    @Option(help: "Base URL of the endpoints (default: [api] public_url).") var publicURL: String?

    func run() async throws {
        let config = try controller.options.load()
        let logger = PetrelProgram.prepare("petrel-controller", config: config)
        try await withDatabase(config, logger: logger, "bootstrap") { database in
            try await Migrator().requireCurrent(database)
            var bootstrap = Bootstrap(adminPassword: adminPassword, publicURL: publicURL ?? config.publicURL)
            bootstrap.adminUser = adminUser
            bootstrap.adminProject = adminProject
            bootstrap.region = region
            bootstrap.passwordCost = config.passwordHashRounds
            let created = try await bootstrap.run(on: database)
            print(created.isEmpty ? "bootstrap: everything already existed" : "bootstrap created: " + created.joined(separator: ", "))
        }
    }
}

struct CredentialKeys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credential-keys",
        abstract: "Set up or rotate the credential encryption keys ([credential] key_repository).",
        discussion: """
            setup   create the repository with a staged and a primary key (nothing if keys exist)
            rotate  re-encrypt every stored credential with the staged key, then promote it to
                    primary and stage a new one; keys beyond [token] max_active_keys are dropped
                    (no credential needs them any more). Copy the repository to every controller
                    afterwards.
            """)

    @ParentCommand var controller: PetrelController
    @Argument(help: "setup or rotate") var action: TokenKeys.Action

    func run() async throws {
        let config = try controller.options.load()
        let repository = FernetKeyRepository(directory: config.credentialKeyRepository, maxActiveKeys: config.tokenMaxActiveKeys)
        do {
            switch action {
            case .setup:
                try repository.setup()
            case .rotate:
                let logger = PetrelProgram.prepare("petrel-controller", config: config)
                let staged = try repository.stagedKey()
                try await withDatabase(config, logger: logger, "credential-keys rotate") { database in
                    try await Migrator().requireCurrent(database)
                    let count = try await IdentityService.reencryptCredentials(
                        database: database, cipher: CredentialCipher(repository: repository), with: staged)
                    print("re-encrypted \(count) credential\(count == 1 ? "" : "s") with the staged key")
                }
                try repository.rotate()
            }
            let keys = try repository.indices().sorted()
            print("\(config.credentialKeyRepository): keys \(keys.map(String.init).joined(separator: ", ")) (primary \(keys.max() ?? 0), staged 0)")
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("credential-keys \(action.rawValue): \(error)")
        }
    }
}

struct TokenKeys: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token-keys",
        abstract: "Set up or rotate the Fernet key repository ([token] key_repository).",
        discussion: """
            setup   create the repository with a staged and a primary key (nothing if keys exist)
            rotate  promote the staged key to primary, stage a new one, drop the oldest beyond
                    [token] max_active_keys. Copy the repository to every controller afterwards.
            """)

    enum Action: String, ExpressibleByArgument, CaseIterable {
        case setup, rotate
    }

    @ParentCommand var controller: PetrelController
    @Argument(help: "setup or rotate") var action: Action

    func run() throws {
        let config = try controller.options.load()
        let repository = FernetKeyRepository(directory: config.tokenKeyRepository, maxActiveKeys: config.tokenMaxActiveKeys)
        do {
            switch action {
            case .setup: try repository.setup()
            case .rotate: try repository.rotate()
            }
            let keys = try repository.indices().sorted()
            print("\(config.tokenKeyRepository): keys \(keys.map(String.init).joined(separator: ", ")) (primary \(keys.max() ?? 0), staged 0)")
        } catch {
            throw ValidationError("token-keys \(action.rawValue): \(error)")
        }
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

struct SamplePolicy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample-policy",
        abstract: "Print a sample policy file listing every rule with its default.")

    func run() {
        print(Policy.sampleFile(allPolicyDefaults), terminator: "")
    }
}
