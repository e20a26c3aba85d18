import CNetlink
import Foundation
import PetrelCore

/// A change the kernel announced on a link (RTNLGRP_LINK), so the node reacts to a tap
/// appearing, going away or being enslaved to a bridge without polling.
public struct LinkEvent: Sendable, Equatable {
    public enum Change: Sendable, Equatable {
        /// A link this monitor had not seen.
        case added
        /// A known link whose `LinkInfo` differs from what was last seen (name, MTU, MAC,
        /// up/down, operstate, master). Messages that change none of these are dropped.
        case changed
        case removed
    }

    public let change: Change
    /// The link as the kernel described it in the event (for `.removed`: its last state).
    public let link: LinkInfo
    /// The name of `link.masterIndex`'s link when it is known, e.g. the `brq…` bridge.
    public let masterName: String?
}

/// Watches the links of one network namespace (or the host's) and delivers `LinkEvent`s.
///
/// The kernel's messages are received on a thread of the monitor's own (the receive
/// blocks in poll(2)); `stop()` wakes it through a pipe and ends `events`. Dropping the
/// monitor, or cancelling the task that iterates `events`, stops it too.
///
/// Nothing is lost silently: if the kernel's queue for the socket overflows (ENOBUFS,
/// e.g. thousands of links changing at once), the monitor lists the links again and
/// delivers the differences as `.added`/`.changed`/`.removed`, so a consumer that applies
/// events to its own view stays correct.
///
///     let monitor = try LinkMonitor(namespace: nil)
///     for await event in monitor.events where event.link.name.hasPrefix("tap") { … }
public final class LinkMonitor: Sendable {
    /// Events in the order the kernel sent them. Iterate from one task.
    public let events: AsyncStream<LinkEvent>
    private let worker: Worker

    /// Subscribes, then takes a snapshot of the links (so events about links that exist
    /// already are `.changed`, not `.added`), then starts the receive thread.
    public convenience init(namespace: NetworkNamespace? = nil) throws {
        try self.init(namespace: namespace, receiveBuffer: 4 << 20)
    }

    /// `receiveBuffer`: the socket's receive buffer in bytes; a larger one makes overflow
    /// (and the resynchronization it costs) rarer. Tests shrink it to force overflow.
    init(namespace: NetworkNamespace?, receiveBuffer: Int32) throws {
        let socket: OpaquePointer
        if let namespace {
            socket = try namespace.perform { try SocketBox(LinkMonitor.subscribe(receiveBuffer)) }.socket
        } else {
            socket = try LinkMonitor.subscribe(receiveBuffer)
        }
        let snapshot: [LinkInfo]
        do {
            snapshot = try Netlink(namespace: namespace).links()
        } catch {
            nl_socket_free(socket)
            throw error
        }
        let (stream, continuation) = AsyncStream<LinkEvent>.makeStream(bufferingPolicy: .unbounded)
        events = stream
        worker = try Worker(socket: socket, namespace: namespace, snapshot: snapshot, continuation: continuation)
        let worker = self.worker
        continuation.onTermination = { _ in worker.stop() }
        let thread = Thread { worker.run() }
        thread.name = "petrel-link-monitor"
        thread.start()
    }

    deinit { worker.stop() }

    /// Stops receiving and ends `events`. Safe to call more than once.
    public func stop() { worker.stop() }

    /// How often the kernel's queue overflowed and the links were listed again (for
    /// metrics: a node that resynchronizes often needs a larger buffer or fewer links).
    public var resynchronizations: Int { worker.resynchronizations }

    private static func subscribe(_ receiveBuffer: Int32) throws -> OpaquePointer {
        guard let socket = nl_socket_alloc() else { throw NetlinkError(operation: "allocate netlink socket", code: -NLE_NOMEM) }
        // Events carry no sequence numbers of ours.
        nl_socket_disable_seq_check(socket)
        var rc = nl_connect(socket, NETLINK_ROUTE)
        if rc == 0 { rc = nl_socket_add_membership(socket, petrel_rtnlgrp_link()) }
        if rc == 0 { rc = nl_socket_set_nonblocking(socket) }
        if rc == 0 { rc = nl_socket_set_buffer_size(socket, receiveBuffer, 0) }
        guard rc == 0 else {
            nl_socket_free(socket)
            throw NetlinkError(operation: "subscribe to link events", code: rc)
        }
        return socket
    }
}

/// The receive thread's state. Only `stop()` is called from other threads.
private final class Worker: @unchecked Sendable {
    private let socket: OpaquePointer
    private let namespace: NetworkNamespace?
    private let continuation: AsyncStream<LinkEvent>.Continuation
    private let wakeRead: Int32, wakeWrite: Int32
    private let lock = NSLock()
    private var stopped = false
    private var resyncCount = 0
    /// What the monitor believes the kernel has, by index; touched on the thread only.
    private var known: [Int32: LinkInfo]
    /// Messages parsed by the current nl_recvmsgs call.
    fileprivate var received: [(type: Int32, link: LinkInfo)] = []

    init(socket: OpaquePointer, namespace: NetworkNamespace?, snapshot: [LinkInfo],
         continuation: AsyncStream<LinkEvent>.Continuation) throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            nl_socket_free(socket)
            throw SystemCallError("pipe")
        }
        self.socket = socket
        self.namespace = namespace
        self.continuation = continuation
        (wakeRead, wakeWrite) = (fds[0], fds[1])
        known = Dictionary(snapshot.map { ($0.index, $0) }, uniquingKeysWith: { $1 })
        let context = Unmanaged.passUnretained(self).toOpaque()
        nl_socket_modify_cb(socket, NL_CB_VALID, NL_CB_CUSTOM, { message, context in
            guard let message, let context else { return Int32(NL_OK.rawValue) }
            nl_msg_parse(message, { object, context in
                // Bridge port messages (family AF_BRIDGE) describe the port's STP state, and a
                // port leaving its bridge sends an AF_BRIDGE RTM_DELLINK: not link events.
                guard let object, let context, rtnl_link_get_family(object) == AF_UNSPEC else { return }
                let worker = Unmanaged<Worker>.fromOpaque(context).takeUnretainedValue()
                worker.received.append((nl_object_get_msgtype(object), Netlink.info(object)))
            }, context)
            return Int32(NL_OK.rawValue)
        }, context)
    }

    func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    func run() {
        defer {
            // Marked stopped first, under the lock: a later stop() must not write to a
            // closed (and perhaps reused) descriptor.
            lock.lock()
            stopped = true
            lock.unlock()
            nl_socket_free(socket)
            close(wakeRead)
            close(wakeWrite)
            continuation.finish()
        }
        var fds = [pollfd(fd: nl_socket_get_fd(socket), events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        while !isStopped {
            let n = poll(&fds, 2, -1)
            if n < 0 && errno == EINTR { continue }
            guard n > 0, fds[1].revents == 0 else { return }
            received.removeAll(keepingCapacity: true)
            let rc = nl_recvmsgs_default(socket)
            for (type, link) in received { deliver(type: type, link) }
            if rc == -NLE_NOMEM || rc == -NLE_MSG_OVERFLOW {
                // ENOBUFS: the kernel dropped messages. Learn the truth by listing.
                resynchronize()
            } else if rc < 0 && rc != -NLE_AGAIN && rc != -NLE_INTR {
                return
            }
        }
    }

    private func deliver(type: Int32, _ link: LinkInfo) {
        if type == Int32(RTM_DELLINK) {
            known[link.index] = nil
            emit(.removed, link)
        } else if let previous = known[link.index] {
            guard previous != link else { return }
            known[link.index] = link
            emit(.changed, link)
        } else {
            known[link.index] = link
            emit(.added, link)
        }
    }

    var resynchronizations: Int {
        lock.lock()
        defer { lock.unlock() }
        return resyncCount
    }

    private func resynchronize() {
        lock.lock()
        resyncCount += 1
        lock.unlock()
        // What is still queued predates the drop: applied after the listing, it would undo it
        // (a link deleted since would come back). Discard it, then list; messages queued
        // after this are in order and only confirm or follow the listing.
        var buffer = [UInt8](repeating: 0, count: 65536)
        let fd = nl_socket_get_fd(socket)
        while recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) > 0 {}
        // A dump that links changing meanwhile interrupt can come back short: a link counts as
        // gone only when two listings in a row lack it.
        guard let netlink = try? Netlink(namespace: namespace), let links = try? netlink.links(),
              let again = try? netlink.links() else { return }
        let now = Dictionary((links + again).map { ($0.index, $0) }, uniquingKeysWith: { $1 })
        for (index, link) in known where now[index] == nil { deliver(type: Int32(RTM_DELLINK), link) }
        for link in links { deliver(type: Int32(RTM_NEWLINK), link) }
    }

    private func emit(_ change: LinkEvent.Change, _ link: LinkInfo) {
        let master = link.masterIndex > 0 ? known[link.masterIndex]?.name : nil
        continuation.yield(LinkEvent(change: change, link: link, masterName: master))
    }
}
