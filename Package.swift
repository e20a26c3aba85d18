// swift-tools-version:6.2
// Petrel: an OpenStack-compatible cloud for KVM/QEMU hosts.
// `ls Sources` reads like the architecture (see ../shared/DESIGN.md):
//   C*            system libraries, each imported by exactly one driver
//   *Driver       one module per outside system (libvirt, netlink + netns, RabbitMQ, LVM, iptables, dnsmasq, tgt, processes)
//   Contracts     the messages controller and nodes exchange;  RPC  call/cast/fanout over RabbitMQ
//   Identity      Keystone's logic (tokens, revocation, roles, policy, passwords)
//   Networking    Neutron's core: networks and segments, subnets, ports, IPAM, quotas
//   IdentityAPI   the Keystone v3 HTTP API, and the token validator every API authenticates with
//   NetworkAPI    the Neutron v2.0 HTTP API (Compute, Image, Volume APIs likewise)
//   Store         the controller's SQL schema and migrations (SQLite | PostgreSQL)
//   NodeCore      what every node service is;  NodeCompute  the node's compute service
//   PetrelCore    configuration, logging, metrics bootstrap, errors shared by both programs
//   PetrelHTTP    what every HTTP listener serves (/metrics, /healthcheck), and the API kit
//   petrel-controller, petrel-node   the two programs
import PackageDescription

let package = Package(
    name: "petrel",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "petrel-controller", targets: ["petrel-controller"]),
        .executable(name: "petrel-node", targets: ["petrel-node"]),
        .executable(name: "petrel-bench-rpc", targets: ["petrel-bench-rpc"]),
        .executable(name: "petrel-bench-firewall", targets: ["petrel-bench-firewall"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/vapor/sql-kit", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit", from: "2.17.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
    ],
    targets: [
        // MARK: C libraries (Debian -dev packages)
        .systemLibrary(name: "CLibvirt", pkgConfig: "libvirt", providers: [.apt(["libvirt-dev"])]),
        .systemLibrary(name: "CNetlink", pkgConfig: "libnl-route-3.0", providers: [.apt(["libnl-route-3-dev"])]),
        .systemLibrary(name: "CRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(name: "CLVM", providers: [.apt(["liblvm2-dev"])]),
        .systemLibrary(name: "CCrypt", pkgConfig: "libxcrypt", providers: [.apt(["libcrypt-dev"])]),

        // MARK: shared core
        .target(name: "PetrelCore", dependencies: [
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),

        // MARK: drivers
        .target(name: "LibvirtDriver", dependencies: ["CLibvirt", "PetrelCore"]),
        .target(name: "NetlinkDriver", dependencies: ["CNetlink", "PetrelCore"]),
        .target(name: "RabbitMQDriver", dependencies: ["CRabbitMQ", "PetrelCore"]),
        .target(name: "LVMDriver", dependencies: ["CLVM", "PetrelCore"]),
        .target(name: "IptablesDriver", dependencies: ["ProcessDriver", "NetlinkDriver", "PetrelCore"]),
        .target(name: "ProcessDriver", dependencies: ["NetlinkDriver", "PetrelCore"]),
        .target(name: "CryptDriver", dependencies: ["CCrypt"]),
        .target(name: "TgtDriver", dependencies: ["ProcessDriver", "PetrelCore"]),
        // One dnsmasq per network inside its qdhcp- namespace: rendering, start, adopt, reload.
        .target(name: "DnsmasqDriver", dependencies: [
            "ProcessDriver", "NetlinkDriver", "PetrelCore", .product(name: "Logging", package: "swift-log"),
        ]),

        // MARK: controller ↔ node
        // The Codable messages that cross the wire; the only thing both sides share with RPC.
        .target(name: "Contracts"),
        // call / cast / fanout over RabbitMQ, with reconnection.
        .target(name: "RPC", dependencies: [
            "Contracts", "RabbitMQDriver", "PetrelCore",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // MARK: controller store
        // SQL schema, migrations and queries; SQLite by default, PostgreSQL for several controllers.
        .target(name: "Store", dependencies: [
            "PetrelCore",
            .product(name: "SQLKit", package: "sql-kit"),
            .product(name: "SQLiteKit", package: "sqlite-kit"),
            .product(name: "PostgresKit", package: "postgres-kit"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        ]),

        // MARK: controller services
        // Keystone's logic: Fernet tokens and their key repository, the policy engine,
        // password hashing and lockout (more to come).
        .target(name: "Identity", dependencies: [
            "PetrelCore", "Store", "CryptDriver",
            .product(name: "SQLKit", package: "sql-kit"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "_CryptoExtras", package: "swift-crypto"),
            .product(name: "Yams", package: "Yams"),
        ]),

        // The hosts as their nodes report them: services up or down, enabled or disabled, hypervisors.
        .target(name: "Hosts", dependencies: ["Store", .product(name: "SQLKit", package: "sql-kit")]),

        // Glance's logic: image records and their bytes in a directory, uploads hashed on the way.
        .target(name: "Images", dependencies: ["Store", .product(name: "SQLKit", package: "sql-kit"),
                                               .product(name: "Crypto", package: "swift-crypto")]),

        // Placement's logic: resource providers, inventories, allocations, traits, aggregates,
        // allocation candidates; the compute nodes' providers and the scheduler's claims.
        .target(name: "Placement", dependencies: ["Store", .product(name: "SQLKit", package: "sql-kit")]),

        // Nova's logic on the controller: flavors, key pairs, the scheduler (servers to come).
        .target(name: "Compute", dependencies: [
            "Store", "Hosts", "Placement", "Images", "Networking", "Volumes", "RPC", "Contracts", .product(name: "SQLKit", package: "sql-kit"),
            // openssl makes x509 key pairs, as Nova's crypto module does.
            "ProcessDriver",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"), .product(name: "_CryptoExtras", package: "swift-crypto"),
        ]),

        // Neutron's core on the controller: networks and their segments, subnets, ports, IPAM, quotas.
        .target(name: "Networking", dependencies: ["Store", "Hosts", "Contracts", "PetrelCore", .product(name: "SQLKit", package: "sql-kit")]),
        // Cinder on the controller: volume types, volumes and their placement on the nodes' backends, quotas.
        .target(name: "Volumes", dependencies: ["Store", "Hosts", "Images", "Contracts", "PetrelCore", .product(name: "SQLKit", package: "sql-kit")]),

        // MARK: APIs (the only modules besides PetrelHTTP that know the HTTP framework)
        // Each depends on its service modules and the API kit (PetrelHTTP) only; the policy
        // rules each declares are PetrelCore's PolicyDefault values.
        // Keystone v3: discovery, tokens, catalog, identity resources; the token validator
        // (PetrelHTTP's `TokenValidator`) every other API authenticates and enforces policy with.
        .target(name: "IdentityAPI", dependencies: [
            "Identity", "PetrelHTTP",
            .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
        ]),

        // MARK: node services
        // What every node service is: start, reconcile, run, stop, and what it reports.
        .target(name: "NodeCore", dependencies: [
            "Contracts", "RPC", "PetrelCore",
            .product(name: "Logging", package: "swift-log"),
            // The cloud's image API as the node's service user (images in, snapshots and volume uploads out).
            .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOFoundationCompat", package: "swift-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The node's compute service: hypervisor backends, image cache, instance disks, domains, lifecycle.
        .target(name: "NodeCompute", dependencies: [
            "NodeCore", "LibvirtDriver", "NetlinkDriver", "ProcessDriver", "RPC", "Contracts", "PetrelCore",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOFoundationCompat", package: "swift-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The node's network service: the L2 agent (backends behind `L2Driver`; Linux bridge), the
        // DHCP agent (dnsmasq per network in its qdhcp- namespace), the ports' status.
        // The node's volume service (cinder-volume): file and LVM backends behind one driver protocol,
        // exported to other hosts over iSCSI (tgt).
        .target(name: "NodeVolume", dependencies: [
            "NodeCore", "LVMDriver", "TgtDriver", "ProcessDriver", "RPC", "Contracts", "PetrelCore", .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "NodeNetwork", dependencies: [
            "NodeCore", "NetlinkDriver", "DnsmasqDriver", "ProcessDriver", "IptablesDriver", "RPC", "Contracts", "PetrelCore",
            .product(name: "Logging", package: "swift-log"),
            // The metadata proxy: NIO's HTTP server on sockets opened in the namespaces, forwarding with AsyncHTTPClient.
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "ComputeAPI", dependencies: [
            "Hosts", "Compute", "Networking", "Volumes", "PetrelHTTP", "PetrelCore", "Contracts", "Images",
            .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "NetworkAPI", dependencies: [
            "Hosts", "Networking", "PetrelHTTP", "PetrelCore",
            .product(name: "Hummingbird", package: "hummingbird"),
        ]),
        // Placement under /placement (microversions 1.0 to PlacementAPI.maximum).
        .target(name: "PlacementAPI", dependencies: [
            "Placement", "PetrelHTTP", "PetrelCore",
            .product(name: "Hummingbird", package: "hummingbird"),
        ]),
        .target(name: "VolumeAPI", dependencies: [
            "Hosts", "Volumes", "PetrelHTTP", "PetrelCore",
            .product(name: "Hummingbird", package: "hummingbird"),
        ]),

        // Nova's metadata API under /metadata, for the nodes' metadata proxies (HMAC-signed instance ids).
        .target(name: "MetadataAPI", dependencies: [
            "Compute", "PetrelHTTP",
            .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),

        // Glance v2 under /image.
        .target(name: "ImageAPI", dependencies: [
            "Images", "PetrelHTTP", "PetrelCore",
            .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
        ]),

        // The console proxy (nova-novncproxy and nova-serialproxy in one listener): WebSockets
        // authorised by single-use console tokens, bridged to the nodes' VNC and serial ports.
        .target(name: "ConsoleAPI", dependencies: [
            "Compute", "PetrelHTTP", "PetrelCore",
            .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        ]),

        // MARK: HTTP listeners
        // What every listener of both programs serves: /metrics, /healthcheck; and the API kit:
        // request bodies and queries, paging and sorting, OpenStack error bodies, the request
        // context with the authenticated caller.
        .target(name: "PetrelHTTP", dependencies: [
            "PetrelCore",
            .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
            // HTTPS on the controller's listener: the certificate re-read on SIGHUP.
            .product(name: "HummingbirdCore", package: "hummingbird"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),

        // MARK: programs
        .executableTarget(name: "petrel-controller", dependencies: [
            "PetrelCore", "PetrelHTTP", "Store", "RPC", "Contracts", "Identity", "IdentityAPI", "Hosts",
            "ComputeAPI", "NetworkAPI", "VolumeAPI", "Volumes", "Images", "ImageAPI", "Compute", "Networking", "MetadataAPI", "ConsoleAPI",
            "Placement", "PlacementAPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "petrel-node", dependencies: [
            "PetrelCore", "PetrelHTTP", "RPC", "Contracts", "NodeCore", "NodeCompute", "NodeNetwork", "NodeVolume", "NetlinkDriver",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),

        // MARK: benchmarks (print figures; run with -c release)
        .executableTarget(name: "petrel-bench-rpc", dependencies: [
            "RPC", "Contracts", "RabbitMQDriver", "PetrelCore",
            .product(name: "Logging", package: "swift-log"),
        ], path: "Benchmarks/RPCBenchmark"),
        .executableTarget(name: "petrel-bench-firewall", dependencies: ["NodeNetwork", "Contracts", "IptablesDriver", "NetlinkDriver"],
                          path: "Benchmarks/FirewallBenchmark"),
        .executableTarget(name: "petrel-bench-placement", dependencies: ["Compute", "Placement", "Hosts", "Store", "PetrelCore", .product(name: "Logging", package: "swift-log")],
                          path: "Benchmarks/PlacementBenchmark"),
        .executableTarget(name: "petrel-bench-router", dependencies: [
            "NodeNetwork", "Contracts", "NetlinkDriver", "ProcessDriver", .product(name: "Logging", package: "swift-log"),
        ], path: "Benchmarks/RouterBenchmark"),

        // MARK: tests
        .target(name: "TestSupport", dependencies: ["PetrelCore", "ProcessDriver"], path: "Tests/TestSupport"),
        .testTarget(name: "PetrelCoreTests", dependencies: ["PetrelCore", "TestSupport"]),
        .testTarget(name: "LibvirtDriverTests", dependencies: ["LibvirtDriver", "TestSupport"]),
        .testTarget(name: "NetlinkDriverTests", dependencies: ["NetlinkDriver", "ProcessDriver", "TestSupport"]),
        .testTarget(name: "RabbitMQDriverTests", dependencies: ["RabbitMQDriver", "TestSupport"]),
        .testTarget(name: "LVMDriverTests", dependencies: ["LVMDriver", "DnsmasqDriver", "ProcessDriver", "TestSupport"]),
        .testTarget(name: "IptablesDriverTests", dependencies: ["IptablesDriver", "TestSupport"]),
        .testTarget(name: "NodeNetworkTests", dependencies: ["NodeNetwork", "Contracts", "IptablesDriver", "NetlinkDriver", "ProcessDriver",
                                                             "TestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "DnsmasqDriverTests", dependencies: ["DnsmasqDriver", "NetlinkDriver", "ProcessDriver", "TestSupport",
                                                              .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "ProcessDriverTests", dependencies: ["ProcessDriver", "NetlinkDriver", "TestSupport"]),
        .testTarget(name: "GuestImageTests", dependencies: ["LibvirtDriver", "ProcessDriver", "TestSupport"]),
        .testTarget(name: "IdentityTests", dependencies: ["Identity", "CryptDriver", "Store", "PetrelCore", "ProcessDriver", "TestSupport",
                                                          .product(name: "SQLKit", package: "sql-kit")]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "PetrelCore", "ProcessDriver", "TestSupport",
                                                       .product(name: "SQLKit", package: "sql-kit")]),
        .testTarget(name: "RPCTests", dependencies: ["RPC", "Contracts", "RabbitMQDriver", "ProcessDriver", "TestSupport"]),
        .testTarget(name: "PetrelHTTPTests", dependencies: ["PetrelHTTP", .product(name: "HummingbirdTesting", package: "hummingbird")]),
        .testTarget(name: "IdentityAPITests", dependencies: ["IdentityAPI", "Identity", "Store", "Contracts", "PetrelHTTP", "PetrelCore", "TestSupport",
                                                             "ComputeAPI", "NetworkAPI", "VolumeAPI", "Volumes", "Images", "ImageAPI", "Hosts", "Compute", "ProcessDriver", "Networking",
                                                             "MetadataAPI", "RPC", "Placement", "PlacementAPI", .product(name: "Crypto", package: "swift-crypto"),
                                                             .product(name: "HummingbirdTesting", package: "hummingbird")]),
        .testTarget(name: "NodeComputeTests", dependencies: ["NodeCompute", "NodeCore", "LibvirtDriver", "Contracts", "PetrelCore", "ProcessDriver",
                                                            "TestSupport",
                                                            .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "ComputeTests", dependencies: ["Compute", "Hosts", "Images", "Store", "PetrelCore", "TestSupport", "Placement",
                                                         .product(name: "SQLKit", package: "sql-kit")]),
        .testTarget(name: "NetworkingTests", dependencies: ["Networking", "Contracts", "Hosts", "Store", "PetrelCore", "TestSupport",
                                                            .product(name: "SQLKit", package: "sql-kit")]),
        .testTarget(name: "ImagesTests", dependencies: ["Images", "Store", "TestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "NodeVolumeTests", dependencies: ["NodeVolume", "PetrelCore"]),
        .testTarget(name: "TgtDriverTests", dependencies: ["TgtDriver", "ProcessDriver", "TestSupport"]),
        .testTarget(name: "ProgramTests", dependencies: ["ProcessDriver", "NetlinkDriver", "LVMDriver", "PetrelCore", "Store", "TestSupport", "NodeCore"]),
    ]
)
