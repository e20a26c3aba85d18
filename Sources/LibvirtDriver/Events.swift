import CLibvirt
import Foundation

/// A domain lifecycle event (`VIR_DOMAIN_EVENT_ID_LIFECYCLE`).
public struct LifecycleEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case defined, undefined, started, suspended, resumed, stopped, shutdown, pmSuspended = "pmsuspended", crashed,
             unknown
    }

    public let domainName: String
    public let uuid: String
    public let kind: Kind
    /// libvirt's detail code for the event (e.g. for `stopped`: 0 shutdown, 1 destroyed, 2 crashed).
    public let detail: Int32

    /// A `stopped` event whose detail says the guest crashed, or a `crashed` event.
    public var isCrash: Bool {
        kind == .crashed || (kind == .stopped && detail == Int32(VIR_DOMAIN_EVENT_STOPPED_CRASHED.rawValue))
    }

    static func kind(_ raw: Int32) -> Kind {
        switch UInt32(bitPattern: raw) {
        case VIR_DOMAIN_EVENT_DEFINED.rawValue: return .defined
        case VIR_DOMAIN_EVENT_UNDEFINED.rawValue: return .undefined
        case VIR_DOMAIN_EVENT_STARTED.rawValue: return .started
        case VIR_DOMAIN_EVENT_SUSPENDED.rawValue: return .suspended
        case VIR_DOMAIN_EVENT_RESUMED.rawValue: return .resumed
        case VIR_DOMAIN_EVENT_STOPPED.rawValue: return .stopped
        case VIR_DOMAIN_EVENT_SHUTDOWN.rawValue: return .shutdown
        case VIR_DOMAIN_EVENT_PMSUSPENDED.rawValue: return .pmSuspended
        case VIR_DOMAIN_EVENT_CRASHED.rawValue: return .crashed
        default: return .unknown
        }
    }
}

final class EventSubscription {
    let continuation: AsyncStream<LifecycleEvent>.Continuation
    let connection: LibvirtConnection

    init(continuation: AsyncStream<LifecycleEvent>.Continuation, connection: LibvirtConnection) {
        self.continuation = continuation
        self.connection = connection
    }
}

let lifecycleCallback: virConnectDomainEventCallback = { _, domain, event, detail, opaque in
    guard let opaque, let domain else { return 0 }
    let subscription = Unmanaged<EventSubscription>.fromOpaque(opaque).takeUnretainedValue()
    let name = virDomainGetName(domain).map { String(cString: $0) } ?? ""
    var buffer = [CChar](repeating: 0, count: Int(VIR_UUID_STRING_BUFLEN))
    let uuid = virDomainGetUUIDString(domain, &buffer) == 0
        ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    subscription.continuation.yield(LifecycleEvent(domainName: name, uuid: uuid, kind: LifecycleEvent.kind(event),
                                                   detail: detail))
    return 0
}

let releaseSubscription: virFreeCallback = { opaque in
    guard let opaque else { return }
    let subscription = Unmanaged<EventSubscription>.fromOpaque(opaque).takeRetainedValue()
    subscription.continuation.finish()
}

/// libvirt's default event loop, run on one dedicated thread for the whole process.
/// It must be registered before any connection that delivers events is opened.
final class LibvirtEventLoop: @unchecked Sendable {
    static let shared = LibvirtEventLoop()
    private let lock = NSLock()
    private var started = false

    func start() {
        lock.lock()
        defer { lock.unlock() }
        guard !started else { return }
        started = true
        // Errors are returned to callers as LibvirtError; do not also print them.
        virSetErrorFunc(nil, { _, _ in })
        virEventRegisterDefaultImpl()
        let thread = Thread {
            while true {
                if virEventRunDefaultImpl() < 0 { usleep(100_000) }
            }
        }
        thread.name = "libvirt-events"
        thread.start()
    }
}
