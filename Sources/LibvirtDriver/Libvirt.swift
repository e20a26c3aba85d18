import CLibvirt
import Foundation
import PetrelCore

/// An error libvirt reported, with its own code and message.
public struct LibvirtError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    /// libvirt's `virErrorNumber` (e.g. 42 = VIR_ERR_NO_DOMAIN).
    public let code: Int32
    public let message: String

    public var description: String { "libvirt \(operation) failed: \(message) (code \(code))" }

    /// libvirt's VIR_ERR_NO_DOMAIN.
    public var isNoDomain: Bool { code == Int32(VIR_ERR_NO_DOMAIN.rawValue) }
    /// libvirt's VIR_ERR_OPERATION_INVALID (e.g. starting a running domain).
    public var isOperationInvalid: Bool { code == Int32(VIR_ERR_OPERATION_INVALID.rawValue) }

    /// The calling thread's last libvirt error. Read it before any other libvirt call
    /// (even a name lookup), which would reset it: `operation` is evaluated afterwards.
    static func last(_ operation: @autoclosure () -> String) -> LibvirtError {
        guard let error = virGetLastError() else {
            return LibvirtError(operation: operation(), code: -1, message: "unknown error")
        }
        let code = error.pointee.code
        let message = error.pointee.message.map { String(cString: $0) } ?? "unknown error"
        return LibvirtError(operation: operation(), code: code, message: message)
    }
}

/// A domain's state as libvirt reports it (`virDomainState`).
public enum DomainState: String, Sendable, CaseIterable {
    case noState = "nostate", running, blocked, paused, shuttingDown = "shutdown", shutOff = "shutoff", crashed,
         pmSuspended = "pmsuspended"

    init(raw: Int32) {
        switch UInt32(bitPattern: raw) {
        case VIR_DOMAIN_RUNNING.rawValue: self = .running
        case VIR_DOMAIN_BLOCKED.rawValue: self = .blocked
        case VIR_DOMAIN_PAUSED.rawValue: self = .paused
        case VIR_DOMAIN_SHUTDOWN.rawValue: self = .shuttingDown
        case VIR_DOMAIN_SHUTOFF.rawValue: self = .shutOff
        case VIR_DOMAIN_CRASHED.rawValue: self = .crashed
        case VIR_DOMAIN_PMSUSPENDED.rawValue: self = .pmSuspended
        default: self = .noState
        }
    }
}

public struct DomainSummary: Sendable, Equatable {
    public let name: String
    public let uuid: String
    public let state: DomainState
    public let persistent: Bool
}

/// What the host offers, from `virNodeGetInfo` and `virConnectGetVersion`.
public struct HostInfo: Sendable {
    public let cpuModel: String
    public let cpus: Int
    public let memoryKiB: UInt64
    public let hypervisorType: String
    /// Encoded as libvirt does: major * 1,000,000 + minor * 1,000 + release.
    public let hypervisorVersion: UInt
    public let hostname: String
}

/// A connection to a libvirt hypervisor (`qemu:///system`, `test:///default`, …).
/// libvirt connections are thread-safe; calls block until libvirt answers.
public final class LibvirtConnection: @unchecked Sendable {
    let handle: OpaquePointer
    public let uri: String

    public init(uri: String) throws {
        LibvirtEventLoop.shared.start()
        guard let handle = virConnectOpen(uri) else { throw LibvirtError.last("open \(uri)") }
        self.handle = handle
        self.uri = uri
    }

    deinit { virConnectClose(handle) }

    public var isAlive: Bool { virConnectIsAlive(handle) == 1 }

    public func hostInfo() throws -> HostInfo {
        var info = virNodeInfo()
        guard virNodeGetInfo(handle, &info) == 0 else { throw LibvirtError.last("node info") }
        var version: UInt = 0
        guard virConnectGetVersion(handle, &version) == 0 else { throw LibvirtError.last("hypervisor version") }
        let type = virConnectGetType(handle).map { String(cString: $0) } ?? "unknown"
        let hostname: String
        if let name = virConnectGetHostname(handle) {
            hostname = String(cString: name)
            free(name)
        } else {
            hostname = ""
        }
        let model = withUnsafeBytes(of: info.model) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return HostInfo(cpuModel: model, cpus: Int(info.cpus), memoryKiB: UInt64(info.memory),
                        hypervisorType: type, hypervisorVersion: version, hostname: hostname)
    }

    /// The host CPU's features (libvirt's names: `sse4.2`, `avx2`, `vmx`, …) and its
    /// architecture, from the capabilities, expanded with the features its model implies
    /// (`virConnectBaselineCPU` with `EXPAND_FEATURES`) where the hypervisor can.
    public func hostCPUFeatures() throws -> (arch: String, features: [String]) {
        guard let raw = virConnectGetCapabilities(handle) else { throw LibvirtError.last("capabilities") }
        let capabilities = String(cString: raw)
        free(raw)
        guard let host = capabilities.range(of: "<host>"),
              let start = capabilities.range(of: "<cpu>", range: host.upperBound..<capabilities.endIndex),
              let end = capabilities.range(of: "</cpu>", range: start.upperBound..<capabilities.endIndex) else { return ("", []) }
        let cpu = String(capabilities[start.lowerBound..<end.upperBound])
        var xml = cpu
        if let copy = strdup(cpu) {
            defer { free(copy) }
            var documents: [UnsafePointer<CChar>?] = [UnsafePointer(copy)]
            if let expanded = virConnectBaselineCPU(handle, &documents, 1, UInt32(VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES.rawValue)) {
                xml = String(cString: expanded) + cpu
                free(expanded)
            }
        }
        func attribute(_ name: String, in element: Substring) -> String? {
            for quote in ["'", "\""] {
                if let range = element.range(of: " \(name)=\(quote)"),
                   let close = element[range.upperBound...].firstIndex(of: Character(quote)) {
                    return String(element[range.upperBound..<close])
                }
            }
            return nil
        }
        var features: Set<String> = []
        for element in xml.components(separatedBy: "<feature ").dropFirst().map({ Substring($0.prefix { $0 != ">" }) }) {
            guard let name = attribute("name", in: element) else { continue }
            if let policy = attribute("policy", in: element), policy == "disable" || policy == "forbid" { continue }
            features.insert(name)
        }
        let arch = cpu.range(of: "<arch>").flatMap { open in
            cpu.range(of: "</arch>", range: open.upperBound..<cpu.endIndex).map { String(cpu[open.upperBound..<$0.lowerBound]) }
        } ?? ""
        return (arch, features.sorted())
    }

    /// Defines (or redefines) a persistent domain from its XML.
    @discardableResult
    public func define(xml: String) throws -> Domain {
        guard let domain = virDomainDefineXML(handle, xml) else { throw LibvirtError.last("define domain") }
        return Domain(handle: domain, connection: self)
    }

    /// The domain with this name, or nil when libvirt has none.
    public func domain(named name: String) throws -> Domain? {
        guard let domain = virDomainLookupByName(handle, name) else {
            let error = LibvirtError.last("look up domain \(name)")
            if error.isNoDomain { return nil }
            throw error
        }
        return Domain(handle: domain, connection: self)
    }

    /// The domain with this UUID (`8-4-4-4-12` text), or nil when libvirt has none.
    public func domain(uuid: String) throws -> Domain? {
        guard let domain = virDomainLookupByUUIDString(handle, uuid) else {
            let error = LibvirtError.last("look up domain \(uuid)")
            if error.isNoDomain { return nil }
            throw error
        }
        return Domain(handle: domain, connection: self)
    }

    /// Every domain, running or defined, with its state.
    public func listDomains() throws -> [DomainSummary] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = virConnectListAllDomains(handle, &list, 0)
        guard count >= 0, let list else { throw LibvirtError.last("list domains") }
        defer { free(list) }
        var result: [DomainSummary] = []
        for index in 0..<Int(count) {
            guard let raw = list[index] else { continue }
            let domain = Domain(handle: raw, connection: self)
            // A domain can vanish between listing and asking; skip it then.
            if let summary = try? domain.summary() { result.append(summary) }
        }
        return result
    }

    // MARK: Secrets (the CHAP passwords of disks QEMU reaches over iSCSI)

    /// Stores `value` in the private, persistent iSCSI secret with this usage name (defined when
    /// missing; its value replaced when present). Disks name it in `<auth><secret usage=…/>`.
    public func setISCSISecret(usage: String, value: String) throws {
        var secret = virSecretLookupByUsage(handle, Int32(VIR_SECRET_USAGE_TYPE_ISCSI.rawValue), usage)
        if secret == nil {
            let xml = "<secret ephemeral='no' private='yes'><description>\(XMLNode.escape(usage))</description>"
                + "<usage type='iscsi'><target>\(XMLNode.escape(usage))</target></usage></secret>"
            secret = virSecretDefineXML(handle, xml, 0)
        }
        guard let secret else { throw LibvirtError.last("define secret \(usage)") }
        defer { virSecretFree(secret) }
        let bytes = Array(value.utf8)
        guard virSecretSetValue(secret, bytes, bytes.count, 0) == 0 else { throw LibvirtError.last("set secret \(usage)") }
    }

    /// Removes the iSCSI secret with this usage name; one that does not exist is not an error.
    public func removeISCSISecret(usage: String) throws {
        guard let secret = virSecretLookupByUsage(handle, Int32(VIR_SECRET_USAGE_TYPE_ISCSI.rawValue), usage) else {
            let error = LibvirtError.last("look up secret \(usage)")
            if error.code == Int32(VIR_ERR_NO_SECRET.rawValue) { return }
            throw error
        }
        defer { virSecretFree(secret) }
        guard virSecretUndefine(secret) == 0 else { throw LibvirtError.last("undefine secret \(usage)") }
    }

    /// The usage names of every iSCSI secret.
    public func iscsiSecretUsages() throws -> [String] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = virConnectListAllSecrets(handle, &list, 0)
        guard count >= 0, let list else { throw LibvirtError.last("list secrets") }
        defer { free(list) }
        var usages: [String] = []
        for index in 0..<Int(count) {
            guard let secret = list[index] else { continue }
            defer { virSecretFree(secret) }
            if virSecretGetUsageType(secret) == Int32(VIR_SECRET_USAGE_TYPE_ISCSI.rawValue), let usage = virSecretGetUsageID(secret) {
                usages.append(String(cString: usage))
            }
        }
        return usages
    }

    /// Lifecycle events of every domain on this connection, until the stream's consumer stops.
    /// Requires the event loop, which every connection starts.
    public func lifecycleEvents() throws -> AsyncStream<LifecycleEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: LifecycleEvent.self, bufferingPolicy: .unbounded)
        let box = Unmanaged.passRetained(EventSubscription(continuation: continuation, connection: self))
        let callbackID = petrel_vir_register_lifecycle(handle, lifecycleCallback, box.toOpaque(), releaseSubscription)
        guard callbackID >= 0 else {
            box.release()
            throw LibvirtError.last("register lifecycle events")
        }
        continuation.onTermination = { [self] _ in
            // libvirt then calls releaseSubscription, which drops the box.
            virConnectDomainEventDeregisterAny(self.handle, callbackID)
        }
        return stream
    }
}

/// A libvirt domain. Its operations map one to one onto libvirt's.
public final class Domain: @unchecked Sendable {
    let handle: OpaquePointer
    /// Keeps the connection open for as long as the domain handle lives.
    let connection: LibvirtConnection

    init(handle: OpaquePointer, connection: LibvirtConnection) {
        self.handle = handle
        self.connection = connection
    }

    deinit { virDomainFree(handle) }

    public var name: String { virDomainGetName(handle).map { String(cString: $0) } ?? "" }

    public var uuid: String {
        var buffer = [CChar](repeating: 0, count: Int(VIR_UUID_STRING_BUFLEN))
        guard virDomainGetUUIDString(handle, &buffer) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func state() throws -> DomainState {
        var state: Int32 = 0
        var reason: Int32 = 0
        guard virDomainGetState(handle, &state, &reason, 0) == 0 else { throw LibvirtError.last("state of \(name)") }
        return DomainState(raw: state)
    }

    public func summary() throws -> DomainSummary {
        let persistent = virDomainIsPersistent(handle)
        guard persistent >= 0 else { throw LibvirtError.last("persistence of \(name)") }
        return DomainSummary(name: name, uuid: uuid, state: try state(), persistent: persistent == 1)
    }

    /// The live XML description (or the inactive one when `inactive`).
    public func xml(inactive: Bool = false) throws -> String {
        let flags = inactive ? UInt32(VIR_DOMAIN_XML_INACTIVE.rawValue) : 0
        guard let text = virDomainGetXMLDesc(handle, flags) else { throw LibvirtError.last("XML of \(name)") }
        defer { free(text) }
        return String(cString: text)
    }

    public func start() throws {
        guard virDomainCreate(handle) == 0 else { throw LibvirtError.last("start \(name)") }
    }

    /// Asks the guest to shut down (ACPI); returns before it has.
    public func shutdown() throws {
        guard virDomainShutdown(handle) == 0 else { throw LibvirtError.last("shut down \(name)") }
    }

    /// Stops the domain at once, as pulling the plug.
    public func destroy() throws {
        guard virDomainDestroy(handle) == 0 else { throw LibvirtError.last("destroy \(name)") }
    }

    public func suspend() throws {
        guard virDomainSuspend(handle) == 0 else { throw LibvirtError.last("suspend \(name)") }
    }

    public func resume() throws {
        guard virDomainResume(handle) == 0 else { throw LibvirtError.last("resume \(name)") }
    }

    /// Saves the guest's memory to libvirt's managed-save file and stops it; the next
    /// `start` restores it.
    public func managedSave() throws {
        guard virDomainManagedSave(handle, 0) == 0 else { throw LibvirtError.last("managed save \(name)") }
    }

    public func hasManagedSave() throws -> Bool {
        let result = virDomainHasManagedSaveImage(handle, 0)
        guard result >= 0 else { throw LibvirtError.last("managed save image of \(name)") }
        return result == 1
    }

    public func removeManagedSave() throws {
        guard virDomainManagedSaveRemove(handle, 0) == 0 else { throw LibvirtError.last("remove managed save of \(name)") }
    }

    /// Adds a device (XML of one device) to the running guest (`live`) and/or to its stored
    /// definition (`config`).
    public func attachDevice(xml: String, live: Bool, config: Bool) throws {
        guard virDomainAttachDeviceFlags(handle, xml, Self.affect(live: live, config: config)) == 0 else {
            throw LibvirtError.last("attach a device to \(name)")
        }
    }

    /// Asks for a device's removal. From a stored definition it is gone at once; from a
    /// running guest only once the guest has let go of it (PCI hot-unplug needs the guest's
    /// acknowledgement): callers watch the live XML.
    public func detachDevice(xml: String, live: Bool, config: Bool) throws {
        guard virDomainDetachDeviceFlags(handle, xml, Self.affect(live: live, config: config)) == 0 else {
            throw LibvirtError.last("detach a device from \(name)")
        }
    }

    /// Tells QEMU a running guest's disk (by its target, `vdc`) is now `bytes` long, so the
    /// guest sees the new size at once (the file or device must already be that large).
    public func blockResize(disk: String, bytes: UInt64) throws {
        guard virDomainBlockResize(handle, disk, bytes, VIR_DOMAIN_BLOCK_RESIZE_BYTES.rawValue) == 0 else {
            throw LibvirtError.last("resize disk \(disk) of \(name)")
        }
    }

    /// Starts copying a running guest's disk (by its target, `vdc`) into the existing
    /// destination a `<disk>` element describes (a volume's file, device or iSCSI LUN), then
    /// mirroring writes to both; the guest keeps running. Allowed on a persistent domain as a
    /// job that does not survive a restart of the guest.
    public func blockCopy(disk: String, destinationXML: String) throws {
        let flags = VIR_DOMAIN_BLOCK_COPY_REUSE_EXT.rawValue | VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB.rawValue
        guard virDomainBlockCopy(handle, disk, destinationXML, nil, 0, flags) == 0 else {
            throw LibvirtError.last("copy disk \(disk) of \(name)")
        }
    }

    /// The disk's block job: nil when it has none; otherwise how far it is (`cur` of `end`).
    public func blockJob(disk: String) throws -> (cur: UInt64, end: UInt64)? {
        var info = virDomainBlockJobInfo()
        let found = virDomainGetBlockJobInfo(handle, disk, &info, 0)
        guard found >= 0 else { throw LibvirtError.last("read the block job of \(disk) of \(name)") }
        return found == 0 ? nil : (UInt64(info.cur), UInt64(info.end))
    }

    /// Ends the disk's block job: `pivot` switches a finished copy's guest over to the destination.
    public func endBlockJob(disk: String, pivot: Bool) throws {
        guard virDomainBlockJobAbort(handle, disk, pivot ? VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT.rawValue : 0) == 0 else {
            throw LibvirtError.last("end the block job of \(disk) of \(name)")
        }
    }

    static func affect(live: Bool, config: Bool) -> UInt32 {
        (live ? VIR_DOMAIN_AFFECT_LIVE.rawValue : 0) | (config ? VIR_DOMAIN_AFFECT_CONFIG.rawValue : 0)
    }

    /// Removes the persistent definition, with any managed-save image and snapshot metadata.
    public func undefine() throws {
        let flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE.rawValue | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA.rawValue
        guard virDomainUndefineFlags(handle, flags) == 0 else { throw LibvirtError.last("undefine \(name)") }
    }
}
