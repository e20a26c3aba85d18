import CLVM
import Foundation
import PetrelCore

/// A failed LVM command, with what LVM printed as its error.
public struct LVMError: Error, CustomStringConvertible, Sendable {
    public let command: String
    public let code: Int32
    public let messages: [String]
    public var description: String {
        "lvm \(command) failed (\(LVM.describe(code))): \(messages.isEmpty ? "no message" : messages.joined(separator: "; "))"
    }
}

public struct VolumeGroupInfo: Sendable, Equatable {
    public let name: String
    public let sizeBytes: UInt64
    public let freeBytes: UInt64
    public let logicalVolumeCount: Int
}

public struct LogicalVolumeInfo: Sendable, Equatable {
    public let name: String
    public let volumeGroup: String
    public let sizeBytes: UInt64
    /// LVM's attribute string, e.g. "-wi-a-----" (5th character 'a' when active).
    public let attributes: String
    public var isActive: Bool {
        let chars = Array(attributes)
        return chars.count > 4 && chars[4] == "a"
    }
}

/// What a create or resize did. Where the kernel has no device-mapper, LVM can change
/// its metadata but not activate volumes: `activated` is then false and `note` says so.
public struct LVMChange: Sendable, Equatable {
    public let volume: LogicalVolumeInfo
    public let activated: Bool
    public let note: String?
}

/// LVM through liblvm2cmd, in this process. liblvm2cmd keeps process-wide state and is not
/// thread-safe: every instance runs its commands one at a time on the driver's one thread
/// (a command can take seconds: it scans devices), never on the caller's.
/// Reports come back as JSON (`--reportformat json`).
public final class LVM: Sendable {
    /// Whether the kernel offers device-mapper, i.e. whether LVs can be activated.
    public let deviceMapperAvailable: Bool

    public init() {
        deviceMapperAvailable = FileManager.default.fileExists(atPath: "/dev/mapper/control")
            && ((try? String(contentsOfFile: "/proc/misc", encoding: .utf8))?.contains("device-mapper") ?? false)
    }

    static let unavailableNote = "device-mapper is not available in this kernel: the volume exists in LVM metadata but is not activated"

    /// Runs one LVM command line (e.g. `vgs --reportformat json`) and returns what it printed.
    public func run(_ arguments: [String]) async throws -> [String] {
        for argument in arguments where argument.isEmpty || argument.contains(where: { $0.isWhitespace || $0 == "\"" || $0 == "'" }) {
            throw LVMError(command: arguments.first ?? "", code: 3, messages: ["argument '\(argument)' is empty or contains spaces or quotes"])
        }
        // LVM sets the process umask to its `global/umask` (077) for the length of a command:
        // any thread of this process creating a directory meanwhile (dnsmasq's state, which
        // dnsmasq reads as nobody) would get 0700. With 022, the process umask never changes.
        let commandLine = (arguments + ["--config", "global/umask=022"]).joined(separator: " ")
        return try await LVMLibrary.thread.run { try LVMLibrary.run(commandLine) }
    }

    /// Runs a reporting command and decodes its JSON report's first list under `key`.
    func report(_ arguments: [String], key: String) async throws -> [[String: String]] {
        let lines = try await run(arguments + ["--reportformat", "json", "--units", "b", "--nosuffix"])
        guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "{" }) else { return [] }
        let json = lines[start...].joined(separator: "\n")
        struct Report: Decodable { let report: [[String: [[String: String]]]] }
        let decoded = try JSONDecoder().decode(Report.self, from: Data(json.utf8))
        return decoded.report.first?[key] ?? []
    }

    public func volumeGroups() async throws -> [VolumeGroupInfo] {
        try await report(["vgs", "-o", "vg_name,vg_size,vg_free,lv_count"], key: "vg").map {
            VolumeGroupInfo(name: $0["vg_name"] ?? "", sizeBytes: UInt64($0["vg_size"] ?? "") ?? 0,
                            freeBytes: UInt64($0["vg_free"] ?? "") ?? 0, logicalVolumeCount: Int($0["lv_count"] ?? "") ?? 0)
        }
    }

    public func logicalVolumes(in volumeGroup: String) async throws -> [LogicalVolumeInfo] {
        try checkName(volumeGroup)
        return try await report(["lvs", "-o", "lv_name,vg_name,lv_size,lv_attr", volumeGroup], key: "lv").map {
            LogicalVolumeInfo(name: $0["lv_name"] ?? "", volumeGroup: $0["vg_name"] ?? "",
                              sizeBytes: UInt64($0["lv_size"] ?? "") ?? 0, attributes: $0["lv_attr"] ?? "")
        }
    }

    public func logicalVolume(_ name: String, in volumeGroup: String) async throws -> LogicalVolumeInfo? {
        try await logicalVolumes(in: volumeGroup).first { $0.name == name }
    }

    public func createPhysicalVolume(_ device: String) async throws { _ = try await whileDeviceBusy { try await run(["pvcreate", "-y", device]) } }
    /// (udev's probe after a pvcreate holds the device as a pvremove right after it wants it.)
    public func removePhysicalVolume(_ device: String) async throws { _ = try await whileDeviceBusy { try await run(["pvremove", "-y", device]) } }

    public func createVolumeGroup(_ name: String, devices: [String]) async throws {
        try checkName(name)
        _ = try await whileDeviceBusy { try await run(["vgcreate", name] + devices) }
    }

    /// Runs `body` again (up to ~10 s) while LVM cannot open a device exclusively: right after
    /// pvcreate, udev's probe of the device may still hold it open (over 3 s on a loaded CI host),
    /// for a vgcreate or a pvremove alike.
    func whileDeviceBusy<T>(_ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let error as LVMError where attempt < 50 && error.messages.contains(where: { $0.contains("exclusively") }) {
                attempt += 1
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    public func removeVolumeGroup(_ name: String) async throws {
        try checkName(name)
        _ = try await run(["vgremove", "-y", name] + noDriverFlags)
    }

    /// Creates a logical volume of `sizeBytes` (rounded up to whole extents by LVM).
    public func createLogicalVolume(_ name: String, in volumeGroup: String, sizeBytes: UInt64) async throws -> LVMChange {
        try checkName(name)
        try checkName(volumeGroup)
        let activation = deviceMapperAvailable ? ["-ay"] : ["-an", "-Zn"] + noDriverFlags
        _ = try await run(["lvcreate", "-y", "-n", name, "-L", "\(sizeBytes)b"] + activation + [volumeGroup])
        return try await change(name, volumeGroup)
    }

    /// Grows a logical volume to `sizeBytes`.
    public func extendLogicalVolume(_ name: String, in volumeGroup: String, toBytes sizeBytes: UInt64) async throws -> LVMChange {
        try checkName(name)
        try checkName(volumeGroup)
        _ = try await run(["lvextend", "-L", "\(sizeBytes)b"] + noDriverFlags + ["\(volumeGroup)/\(name)"])
        return try await change(name, volumeGroup)
    }

    /// Removes a logical volume; removing one that does not exist is not an error.
    public func removeLogicalVolume(_ name: String, in volumeGroup: String) async throws {
        try checkName(name)
        try checkName(volumeGroup)
        guard try await logicalVolume(name, in: volumeGroup) != nil else { return }
        _ = try await run(["lvremove", "-y"] + noDriverFlags + ["\(volumeGroup)/\(name)"])
    }

    private var noDriverFlags: [String] { deviceMapperAvailable ? [] : ["--driverloaded", "n"] }

    private func change(_ name: String, _ volumeGroup: String) async throws -> LVMChange {
        guard let volume = try await logicalVolume(name, in: volumeGroup) else {
            throw LVMError(command: "lvs", code: 5, messages: ["\(volumeGroup)/\(name) not found after the change"])
        }
        return LVMChange(volume: volume, activated: volume.isActive, note: deviceMapperAvailable ? nil : Self.unavailableNote)
    }

    /// LVM's own rule for VG and LV names.
    private func checkName(_ name: String) throws {
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+_.-")
        guard !name.isEmpty, name.count <= 127, !name.hasPrefix("-"), name != ".", name != "..",
              name.unicodeScalars.allSatisfy({ allowed.contains($0) }) else {
            throw LVMError(command: "", code: 3, messages: ["invalid LVM name '\(name)' (letters, digits, + _ . - only)"])
        }
    }

    static func describe(_ code: Int32) -> String {
        switch code {
        case 2: return "no such command"
        case 3: return "invalid parameters"
        case 4: return "initialisation failed"
        case 5: return "processing failed"
        default: return "code \(code)"
        }
    }
}

/// The process's one liblvm2cmd handle, used only on `thread`. The library is opened on first
/// use (dlopen), not linked: a node without an LVM backend never loads it.
enum LVMLibrary {
    static let thread = BlockingExecutor(label: "petrel.lvm", serial: true)
    nonisolated(unsafe) private static var handle: UnsafeMutableRawPointer?
    nonisolated(unsafe) private static var functions: Functions?

    struct Functions {
        let initialise: @convention(c) () -> UnsafeMutableRawPointer?
        let run: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> Int32
        let setLogFunction: @convention(c) (lvm2_log_fn_t?) -> Void
        let setLogLevel: @convention(c) (UnsafeMutableRawPointer?, Int32) -> Void
        let exit: @convention(c) (UnsafeMutableRawPointer?) -> Void
    }

    /// liblvm2cmd's entry points; call only on `thread`.
    static func load() throws -> Functions {
        if let functions { return functions }
        guard let library = dlopen("liblvm2cmd.so.2.03", RTLD_NOW | RTLD_GLOBAL) ?? dlopen("liblvm2cmd.so", RTLD_NOW | RTLD_GLOBAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "not found"
            throw LVMError(command: "dlopen", code: 4, messages: ["cannot load liblvm2cmd (Debian package liblvm2cmd2.03): \(reason)"])
        }
        func symbol<T>(_ name: String, as type: T.Type) throws -> T {
            guard let pointer = dlsym(library, name) else {
                throw LVMError(command: "dlsym", code: 4, messages: ["liblvm2cmd has no \(name)"])
            }
            return unsafeBitCast(pointer, to: type)
        }
        let loaded = Functions(initialise: try symbol("lvm2_init", as: (@convention(c) () -> UnsafeMutableRawPointer?).self),
                               run: try symbol("lvm2_run", as: (@convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> Int32).self),
                               setLogFunction: try symbol("lvm2_log_fn", as: (@convention(c) (lvm2_log_fn_t?) -> Void).self),
                               setLogLevel: try symbol("lvm2_log_level", as: (@convention(c) (UnsafeMutableRawPointer?, Int32) -> Void).self),
                               exit: try symbol("lvm2_exit", as: (@convention(c) (UnsafeMutableRawPointer?) -> Void).self))
        functions = loaded
        return loaded
    }

    /// Runs one command line; call only on `thread`.
    static func run(_ commandLine: String) throws -> [String] {
        let lvm = try load()
        // LVM sets the process umask to 0077 for its own files while it works: the rest of the
        // process (instance directories qemu must read, for one) gets the umask it had back.
        let umaskBefore = umask(0o022)
        umask(umaskBefore)
        defer { umask(umaskBefore) }
        return try runLocked(lvm, commandLine)
    }

    /// Commands that take a device's size: a handle remembers the devices it has seen, so one
    /// that saw a loop device before it was detached and attached to another file would size
    /// the new one as the old (a 64 MB PV on an 8 GB file). They start from a fresh handle.
    static let deviceCommands: Set<Substring> = ["pvcreate", "pvremove", "pvresize", "vgcreate", "vgextend"]

    private static func runLocked(_ lvm: Functions, _ commandLine: String) throws -> [String] {
        if let open = handle, let verb = commandLine.split(separator: " ").first, deviceCommands.contains(verb) {
            lvm.exit(open)
            handle = nil
        }
        if handle == nil {
            lvm.setLogFunction(lvmLogCallback)
            handle = lvm.initialise()
            guard handle != nil else { throw LVMError(command: commandLine, code: 4, messages: ["lvm2_init failed"]) }
            lvm.setLogLevel(handle, 4)
        }
        LVMCapture.lines = []
        let rc = lvm.run(handle, commandLine)
        let lines = LVMCapture.lines
        LVMCapture.lines = []
        guard rc == 1 else {
            throw LVMError(command: commandLine, code: rc, messages: lines.filter { $0.level <= 3 }.map(\.text))
        }
        return lines.filter { $0.level == 4 }.map(\.text)
    }
}

/// liblvm2cmd reports through a C callback with no context pointer: it writes here, and
/// `LVMLibrary.run` (on the driver's one thread) reads it.
enum LVMCapture {
    nonisolated(unsafe) static var lines: [(level: Int32, text: String)] = []
}

private let lvmLogCallback: lvm2_log_fn_t = { level, _, _, _, message in
    guard let message, level <= 4 else { return }
    LVMCapture.lines.append((level, String(cString: message)))
}
