import PetrelHTTP

/// Nova's registry of flavor extra specs (`nova/api/validation/extra_specs`), which the
/// os-extra_specs create and update routes hold a spec to from 2.86: a registered spec's value
/// must be of its kind, and a name in a registered namespace (`hw:`, `quota:`, `resources1:`, …)
/// must be a registered spec. Names in other namespaces, and names without ':', pass. The
/// messages are Nova's (`ExtraSpecValidator.validate`, `validators.validate`).
///
/// Nova matches its name and value patterns with Python's `re.fullmatch`; they are matched here
/// by hand, with Python's meaning of `\d` (any decimal digit), `\w`, `\s` and `.`, so that no
/// value can make a regular expression backtrack without end (`([a-zA-Z0-9_]+(,)?)+`).
enum NovaExtraSpecs {
    /// The kind of value a registered spec takes.
    enum Value: Sendable {
        /// Any string.
        case text
        /// One of these strings.
        case choice([String])
        /// A string of this format.
        case format(Format)
        /// An integer as Python's `int()` reads it, within the bounds given.
        case integer(min: Int?, max: Int?)
        /// A boolean as oslo's `strutils.bool_from_string(strict=True)` reads it.
        case boolean
    }

    /// The value patterns of Nova's registry.
    enum Format: Sendable {
        /// `hw:cpu_realtime_mask`.
        case realtimeMask
        /// `hw:cpu_dedicated_mask`, `hw:numa_cpus.{num}`: the same language, written differently.
        case cpuSet
        /// `hw:mem_page_size`.
        case pageSize
        /// `hw:pmem`.
        case pmemLabels
        /// `pci_passthrough:alias`.
        case pciAliases

        /// Nova's pattern, as its message prints it.
        var pattern: String {
            switch self {
            case .realtimeMask: return #"(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"#
            case .cpuSet: return #"\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"#
            case .pageSize: return #"(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)"#
            case .pmemLabels: return #"([a-zA-Z0-9_]+(,)?)+"#
            case .pciAliases: return #"[^:]+:\d+(?:\s*,\s*[^:]+:\d+)*"#
            }
        }

        /// Whether the whole of `text` is of this format.
        func matches(_ text: String) -> Bool {
            let scalars = Array(text.unicodeScalars)
            switch self {
            case .realtimeMask, .cpuSet: return NovaExtraSpecs.isCPUSet(scalars)
            case .pageSize: return NovaExtraSpecs.isPageSize(scalars)
            case .pmemLabels: return NovaExtraSpecs.isPmemLabels(scalars)
            case .pciAliases: return NovaExtraSpecs.isPCIAliases(scalars)
            }
        }
    }

    // MARK: checking

    /// Nova's refusal of the first of `specs` it refuses (in the order of their names, as a
    /// JSON object's order is not kept), or nil when it takes them all.
    static func refusal(_ specs: [String: String]) -> String? {
        for name in specs.keys.sorted() {
            if let message = refusal(name: name, value: specs[name] ?? "") { return message }
        }
        return nil
    }

    /// Nova's refusal of `value` for the spec `name` (its 400 message), or nil when it passes.
    static func refusal(name: String, value: String) -> String? {
        let scalars = Array(name.unicodeScalars)
        if let kind = rule(for: name, scalars) { return refusal(of: value, by: kind) }
        guard let colon = scalars.firstIndex(of: ":"), isNamespace(Array(scalars[..<colon])) else { return nil }
        return "Validation failed; extra spec '\(name)' does not appear to be a valid extra spec."
    }

    /// Nova's refusal of `value` for a spec of this kind, or nil.
    static func refusal(of value: String, by kind: Value) -> String? {
        switch kind {
        case .text:
            return nil
        case .choice(let options):
            if options.contains(where: { $0.unicodeScalars.elementsEqual(value.unicodeScalars) }) { return nil }
            return "Validation failed; '\(value)' is not one of: \(options.joined(separator: ", "))."
        case .format(let format):
            if format.matches(value) { return nil }
            return "Validation failed; '\(value)' is not of the format '\(format.pattern)'."
        case .integer(let minimum, let maximum):
            guard let number = pythonInteger(value) else {
                return "Validation failed; '\(value)' is not a valid integer value."
            }
            if let maximum, compare(number, maximum) > 0 {
                return "Validation failed; '\(number.text)' is greater than the max value of '\(maximum)'."
            }
            if let minimum, compare(number, minimum) < 0 {
                return "Validation failed; '\(number.text)' is less than the min value of '\(minimum)'."
            }
            return nil
        case .boolean:
            if isPythonBoolean(value) { return nil }
            return "Validation failed; '\(value)' is not a valid boolean-like value."
        }
    }

    /// A spec value as Nova stores it: a string as given, a number as Python's `str()` writes
    /// it (an integral one without a fraction), a boolean as `True`/`False`; nil for the rest.
    static func text(of value: JSON) -> String? {
        switch value {
        case .string(let text): return text
        case .number(let number): return Int(exactly: number).map(String.init) ?? String(number)
        case .bool(let flag): return flag ? "True" : "False"
        default: return nil
        }
    }

    // MARK: names

    /// The registered spec `name` is, by its exact name and then by the names with parameters.
    static func rule(for name: String, _ scalars: [Unicode.Scalar]) -> Value? {
        if scalars.allSatisfy({ $0.isASCII }), let kind = registered[name] { return kind }
        // hw:numa_cpus.{num}, hw:numa_mem.{num}: Nova's '.' there is a pattern's '.' (any character but a newline)
        for (stem, kind) in [("hw:numa_cpus", Value.format(.cpuSet)), ("hw:numa_mem", Value.integer(min: 1, max: nil))] {
            if let rest = dropping(stem, from: scalars), rest.count >= 2, rest[rest.startIndex] != "\n",
               rest.dropFirst().allSatisfy(isDigit) {
                return kind
            }
        }
        // aggregate_instance_extra_specs:{key}, the key '.+'
        if let rest = dropping("aggregate_instance_extra_specs:", from: scalars), !rest.isEmpty, !rest.contains("\n") { return .text }
        // capabilities:{capability}{filter}, the filter '(:\w+)*'
        if let rest = dropping("capabilities:", from: scalars) {
            for capability in nestedCapabilities {
                if let filter = dropping(capability, from: Array(rest)), isFilter(filter) { return .text }
            }
        }
        // resources{group}:{resource_class} and trait{group}:{trait}, the group '([a-zA-Z0-9_-]{1,64})?'
        if let colon = scalars.firstIndex(of: ":") {
            let prefix = Array(scalars[..<colon]), suffix = Array(scalars[(colon + 1)...])
            if let group = dropping("resources", from: prefix), isGroup(group),
               resourceClasses.contains(where: { $0.unicodeScalars.elementsEqual(suffix) }) || isCustom(suffix) {
                return .integer(min: nil, max: nil)
            }
            if let group = dropping("trait", from: prefix), isGroup(group), isCustom(suffix) || isTrait(suffix) {
                return .choice(["required", "forbidden"])
            }
        }
        return nil
    }

    /// Whether `prefix` (a name's part before its first ':') is one of the registry's namespaces.
    static func isNamespace(_ prefix: [Unicode.Scalar]) -> Bool {
        if namespaces.contains(where: { $0.unicodeScalars.elementsEqual(prefix) }) { return true }
        if let group = dropping("resources", from: prefix), isGroup(group) { return true }
        if let group = dropping("trait", from: prefix), isGroup(group) { return true }
        return false
    }

    /// What follows `stem` in `scalars`, or nil when they do not start with it.
    static func dropping(_ stem: String, from scalars: [Unicode.Scalar]) -> ArraySlice<Unicode.Scalar>? {
        let head = Array(stem.unicodeScalars)
        guard scalars.count >= head.count, scalars.prefix(head.count).elementsEqual(head) else { return nil }
        return scalars[head.count...]
    }

    /// `([a-zA-Z0-9_-]{1,64})?`
    static func isGroup(_ scalars: ArraySlice<Unicode.Scalar>) -> Bool {
        scalars.count <= 64 && scalars.allSatisfy { isASCIIWord($0) || $0 == "-" }
    }

    /// `CUSTOM_[A-Z0-9_]+`
    static func isCustom(_ scalars: [Unicode.Scalar]) -> Bool {
        guard let rest = dropping("CUSTOM_", from: scalars), !rest.isEmpty else { return false }
        return rest.allSatisfy(isUpperName)
    }

    /// One of os-traits' standard traits.
    static func isTrait(_ scalars: [Unicode.Scalar]) -> Bool {
        guard !scalars.isEmpty, scalars.allSatisfy(isUpperName) else { return false }
        var name = String.UnicodeScalarView()
        name.append(contentsOf: scalars)
        return traits.contains(String(name))
    }

    /// `(:\w+)*`
    static func isFilter(_ scalars: ArraySlice<Unicode.Scalar>) -> Bool {
        if scalars.isEmpty { return true }
        guard scalars.first == ":" else { return false }
        return scalars.dropFirst().split(separator: ":", omittingEmptySubsequences: false).allSatisfy { part in
            !part.isEmpty && part.allSatisfy(isPythonWord)
        }
    }

    // MARK: values

    /// `\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*`, which takes what `\^?\d+(-\d+|,\^?\d+)*` takes.
    static func isCPUSet(_ scalars: [Unicode.Scalar]) -> Bool {
        var index = 0
        func digits() -> Bool {
            let start = index
            while index < scalars.count, isDigit(scalars[index]) { index += 1 }
            return index > start
        }
        if index < scalars.count, scalars[index] == "^" { index += 1 }
        guard digits() else { return false }
        while index < scalars.count {
            if scalars[index] == "-" {
                index += 1
            } else if scalars[index] == "," {
                index += 1
                if index < scalars.count, scalars[index] == "^" { index += 1 }
            } else {
                return false
            }
            guard digits() else { return false }
        }
        return true
    }

    /// `(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)`
    static func isPageSize(_ scalars: [Unicode.Scalar]) -> Bool {
        if ["large", "small", "any"].contains(where: { $0.unicodeScalars.elementsEqual(scalars) }) { return true }
        var index = 0
        while index < scalars.count, isDigit(scalars[index]) { index += 1 }
        guard index > 0 else { return false }
        if index < scalars.count, "kKMGT".unicodeScalars.contains(scalars[index]) {
            index += 1
            if index < scalars.count, scalars[index] == "i" { index += 1 }
        }
        let unit = scalars[index...]
        return ["", "b", "bit", "B"].contains { $0.unicodeScalars.elementsEqual(unit) }
    }

    /// `([a-zA-Z0-9_]+(,)?)+`: labels of ASCII letters, digits and '_', each followed by at most
    /// one comma.
    static func isPmemLabels(_ scalars: [Unicode.Scalar]) -> Bool {
        guard let first = scalars.first, isASCIIWord(first) else { return false }
        var previous = first
        for scalar in scalars.dropFirst() {
            if scalar == "," {
                if previous == "," { return false }
            } else if !isASCIIWord(scalar) {
                return false
            }
            previous = scalar
        }
        return true
    }

    /// `[^:]+:\d+(?:\s*,\s*[^:]+:\d+)*`: split at its colons, the first part is not empty, the
    /// last is digits, and each between is digits, spaces, a comma and at least one character more.
    static func isPCIAliases(_ scalars: [Unicode.Scalar]) -> Bool {
        let parts = scalars.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 2, !parts[0].isEmpty else { return false }
        let last = parts[parts.count - 1]
        guard !last.isEmpty, last.allSatisfy(isDigit) else { return false }
        for part in parts.dropFirst().dropLast() {
            var index = part.startIndex
            while index < part.endIndex, isDigit(part[index]) { index += 1 }
            guard index > part.startIndex else { return false }
            while index < part.endIndex, isPythonSpace(part[index]) { index += 1 }
            guard index < part.endIndex, part[index] == "," else { return false }
            guard part.index(after: index) < part.endIndex else { return false }
        }
        return true
    }

    /// A number as Python's `int()` reads a string: surrounding whitespace, a sign, then decimal
    /// digits of any script with single underscores between them; nil where Python raises.
    static func pythonInteger(_ text: String) -> (negative: Bool, digits: [UInt8], text: String)? {
        // int() strips what strip() does but the ASCII separators 0x1C to 0x1F
        let scalars = stripped(text) { isPythonSpace($0) && !(0x1C...0x1F).contains($0.value) }
        var index = scalars.startIndex
        var negative = false
        if index < scalars.endIndex, scalars[index] == "+" || scalars[index] == "-" {
            negative = scalars[index] == "-"
            index += 1
        }
        var digits: [UInt8] = []
        var underscore = false
        while index < scalars.endIndex {
            let scalar = scalars[index]
            if scalar == "_" {
                guard !digits.isEmpty, !underscore else { return nil }
                underscore = true
            } else if let digit = decimalValue(scalar) {
                digits.append(digit)
                underscore = false
            } else {
                return nil
            }
            index += 1
        }
        guard !digits.isEmpty, !underscore else { return nil }
        let significant = Array(digits.drop(while: { $0 == 0 }))
        if significant.isEmpty { return (false, [0], "0") }
        return (negative, significant, (negative ? "-" : "") + significant.map { String($0) }.joined())
    }

    /// The sign of `number` - `bound`.
    static func compare(_ number: (negative: Bool, digits: [UInt8], text: String), _ bound: Int) -> Int {
        // 18 digits fit an Int; more are beyond any bound of the registry
        guard number.digits.count <= 18 else { return number.negative ? -1 : 1 }
        let magnitude = number.digits.reduce(0) { $0 * 10 + Int($1) }
        let value = number.negative ? -magnitude : magnitude
        return value < bound ? -1 : (value > bound ? 1 : 0)
    }

    /// Whether oslo's `bool_from_string(strict=True)` reads `text`: stripped and lowercased, one
    /// of its true or false strings.
    static func isPythonBoolean(_ text: String) -> Bool {
        let scalars = stripped(text)
        guard scalars.allSatisfy({ $0.isASCII }) else { return false }
        let lowered = String(String.UnicodeScalarView(scalars)).lowercased()
        return ["1", "t", "true", "on", "y", "yes", "0", "f", "false", "off", "n", "no"].contains(lowered)
    }

    /// `text` without the whitespace Python's `str.strip()` removes (or `space`) at either end.
    static func stripped(_ text: String, _ space: (Unicode.Scalar) -> Bool = NovaExtraSpecs.isPythonSpace) -> ArraySlice<Unicode.Scalar> {
        var scalars = Array(text.unicodeScalars)[...]
        while let first = scalars.first, space(first) { scalars.removeFirst() }
        while let last = scalars.last, space(last) { scalars.removeLast() }
        return scalars
    }

    /// Python's `str.isspace()`, which its `\s` and `strip()` share.
    static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// Python's `\d`: a decimal digit of any script.
    static func isDigit(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.generalCategory == .decimalNumber
    }

    /// The value of a decimal digit of any script, as `int()` reads it.
    static func decimalValue(_ scalar: Unicode.Scalar) -> UInt8? {
        guard scalar.properties.numericType == .decimal, let value = scalar.properties.numericValue,
              value >= 0, value <= 9 else { return nil }
        return UInt8(value)
    }

    /// Python's `\w`: a letter, a number of any kind, or '_'.
    static func isPythonWord(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "_" || scalar.properties.numericType != nil { return true }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// `[a-zA-Z0-9_]`
    static func isASCIIWord(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "_": return true
        default: return false
        }
    }

    /// `[A-Z0-9_]`
    static func isUpperName(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "A"..."Z", "0"..."9", "_": return true
        default: return false
        }
    }

    // MARK: the registry

    /// The specs without parameters, by name.
    static let registered: [String: Value] = {
        var table: [String: Value] = [:]
        for (names, kind) in NovaExtraSpecs.plain {
            for name in names.split(separator: " ") { table[String(name)] = kind }
        }
        for capability in NovaExtraSpecs.capabilities.split(separator: " ") { table["capabilities:" + String(capability)] = .text }
        return table
    }()

    /// Space-separated names, and what their values must be.
    static let plain: [(String, Value)] = [
        // accel, vmware (capabilities below)
        ("accel:device_profile vmware:hw_version vmware:storage_policy", .text),
        // hw, hw_rng, null
        (NovaExtraSpecs.booleans, .boolean),
        ("hw:cpu_realtime_mask", .format(.realtimeMask)),
        ("hw:cpu_dedicated_mask", .format(.cpuSet)),
        ("hw:mem_page_size", .format(.pageSize)),
        ("hw:pmem", .format(.pmemLabels)),
        ("hw:cpu_policy", .choice(["dedicated", "shared", "mixed"])),
        ("hw:cpu_thread_policy", .choice(["prefer", "isolate", "require"])),
        ("hw:emulator_threads_policy", .choice(["isolate", "share"])),
        ("hw:pci_numa_affinity_policy", .choice(["required", "preferred", "legacy", "socket"])),
        ("hw:mem_encryption_model", .choice(["amd-sev", "amd-sev-es", "amd-sev-snp"])),
        ("hw:tpm_model", .choice(["tpm-tis", "tpm-crb"])),
        ("hw:tpm_version", .choice(["1.2", "2.0"])),
        ("hw:tpm_secret_security", .choice(["user", "host", "deployment"])),
        ("hw:watchdog_action", .choice(["none", "pause", "poweroff", "reset", "disabled"])),
        ("hw:viommu_model", .choice(["intel", "smmuv3", "virtio", "auto"])),
        ("hw:sound_model", .choice(["sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "virtio"])),
        ("hw:usb_model", .choice(["none", "nec-xhci", "qemu-xhci"])),
        ("hw:ephemeral_encryption_format", .choice(["plain", "luks", "luksv2"])),
        ("group_policy", .choice(["isolate", "none"])),
        ("hw:numa_nodes hw:cpu_sockets hw:cpu_cores hw:cpu_threads hw:cpu_max_sockets hw:cpu_max_cores hw:cpu_max_threads",
         .integer(min: 1, max: nil)),
        ("hw:serial_port_count hw_rng:rate_bytes hw_rng:rate_period hw_video:ram_max_mb", .integer(min: 0, max: nil)),
        ("hw:redirected_usb_ports", .integer(min: 0, max: 15)),
        // os, pci_passthrough
        ("os:secure_boot", .choice(["disabled", "required"])),
        ("pci_passthrough:alias", .format(.pciAliases)),
        // quota: VMware's CPU, memory, disk IO and VIF quotas, libvirt's CPU, disk and VIF quotas
        (NovaExtraSpecs.quotaCounts, .integer(min: 0, max: nil)),
        ("quota:cpu_reservation quota:memory_reservation quota:disk_io_reservation quota:vif_reservation quota:cpu_quota",
         .integer(min: nil, max: nil)),
        ("quota:cpu_shares_level quota:memory_shares_level quota:disk_io_shares_level quota:vif_shares_level",
         .choice(["custom", "high", "normal", "low"])),
    ]

    /// hw, hw_rng and null's booleans.
    static let booleans = """
        hw:cpu_realtime hw:hide_hypervisor_id hw:locked_memory hw:boot_menu hw:vif_multiqueue_enabled hw:mem_encryption hw:pmu \
        hw:virtio_packed_ring hw:ephemeral_encryption hw_rng:allowed hide_hypervisor_id
        """

    /// The quotas of at least 0: VMware's limits and shares, libvirt's CPU shares and period,
    /// disk and VIF quotas.
    static let quotaCounts = """
        quota:cpu_limit quota:memory_limit quota:disk_io_limit quota:vif_limit \
        quota:cpu_shares_share quota:memory_shares_share quota:disk_io_shares_share quota:vif_shares_share \
        quota:cpu_shares quota:cpu_period \
        quota:disk_read_bytes_sec quota:disk_read_iops_sec quota:disk_write_bytes_sec quota:disk_write_iops_sec \
        quota:disk_total_bytes_sec quota:disk_total_iops_sec \
        quota:vif_inbound_average quota:vif_inbound_peak quota:vif_inbound_burst \
        quota:vif_outbound_average quota:vif_outbound_peak quota:vif_outbound_burst
        """

    /// `capabilities:{capability}`, any string.
    static let capabilities = """
        id uuid service_id host vcpus memory_mb local_gb vcpus_used memory_mb_used local_gb_used hypervisor_type \
        hypervisor_version hypervisor_hostname free_ram_mb free_disk_gb current_workload running_vms disk_available_least \
        host_ip mapped cpu_allocation_ratio ram_allocation_ratio disk_allocation_ratio total_usable_ram_mb \
        total_usable_disk_gb disk_mb_used free_disk_mb vcpus_total num_instances num_io_ops failed_builds aggregates \
        cell_uuid updated
        """

    /// `capabilities:{capability}{filter}`, any string.
    static let nestedCapabilities = ["cpu_info", "metrics", "stats", "numa_topology", "supported_hv_specs", "pci_device_pools",
                                     "nodename", "pci_stats", "supported_instances", "limits", "instances"]

    /// The namespaces of the registry's names, but the `resources{group}` and `trait{group}` ones.
    static let namespaces = ["accel", "aggregate_instance_extra_specs", "capabilities", "hw", "hw_rng", "hw_video", "os",
                             "pci_passthrough", "quota", "vmware"]

    /// os-resource-classes' standard classes (`resources{group}:{resource_class}`, an integer).
    static let resourceClasses = [
        "VCPU", "MEMORY_MB", "DISK_GB", "PCI_DEVICE", "SRIOV_NET_VF", "NUMA_SOCKET", "NUMA_CORE", "NUMA_THREAD", "NUMA_MEMORY_MB",
        "IPV4_ADDRESS", "VGPU", "VGPU_DISPLAY_HEAD", "NET_BW_EGR_KILOBIT_PER_SEC", "NET_BW_IGR_KILOBIT_PER_SEC", "PCPU",
        "MEM_ENCRYPTION_CONTEXT", "FPGA", "PGPU", "NET_PACKET_RATE_KILOPACKET_PER_SEC", "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
        "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
    ]

    /// os-traits' standard traits (`trait{group}:{trait}`, required or forbidden).
    static let traits: Set<String> = {
        var names: Set<String> = []
        for line in NovaExtraSpecs.traitTable.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard let stem = words.first else { continue }
            for word in words.dropFirst() { names.insert(String(stem) + String(word)) }
        }
        return names
    }()

    /// os-traits' standard traits: on each line a stem, then the names that follow it.
    static let traitTable = """
        COMPUTE_ DEVICE_TAGGING NODE TRUSTED_CERTS SAME_HOST_COLD_MIGRATE RESCUE_BFV ACCELERATORS SOCKET_PCI_NUMA_AFFINITY
        COMPUTE_ REMOTE_MANAGED_PORTS MEM_BACKING_FILE MANAGED_PCI_DEVICE ADDRESS_SPACE_PASSTHROUGH ADDRESS_SPACE_EMULATED
        COMPUTE_ SHARE_LOCAL_FS
        COMPUTE_ARCH_ AARCH64 PPC64LE MIPSEL S390X RISCV64 X86_64
        COMPUTE_CONFIG_DRIVE_ REGENERATION
        COMPUTE_EPHEMERAL_ ENCRYPTION ENCRYPTION_PLAIN ENCRYPTION_LUKS ENCRYPTION_LUKSV2
        COMPUTE_FIRMWARE_ BIOS UEFI
        COMPUTE_GRAPHICS_ MODEL_BOCHS MODEL_CIRRUS MODEL_GOP MODEL_NONE MODEL_QXL MODEL_VGA MODEL_VIRTIO MODEL_VMVGA MODEL_XEN
        COMPUTE_IMAGE_ TYPE_AKI TYPE_AMI TYPE_ARI TYPE_ISO TYPE_QCOW2 TYPE_RAW TYPE_VDI TYPE_VHD TYPE_VHDX TYPE_VMDK TYPE_PLOOP
        COMPUTE_MIGRATE_ AUTO_CONVERGE POST_COPY
        COMPUTE_NET_ ATTACH_INTERFACE ATTACH_INTERFACE_WITH_TAG VIRTIO_PACKED VIF_MODEL_E1000 VIF_MODEL_E1000E VIF_MODEL_LAN9118
        COMPUTE_NET_ VIF_MODEL_NETFRONT VIF_MODEL_NE2K_PCI VIF_MODEL_PCNET VIF_MODEL_RTL8139 VIF_MODEL_SPAPR_VLAN VIF_MODEL_SRIOV
        COMPUTE_NET_ VIF_MODEL_VIRTIO VIF_MODEL_VMXNET VIF_MODEL_VMXNET3 VIF_MODEL_IGB
        COMPUTE_SECURITY_ TPM_1_2 TPM_2_0 TPM_TIS TPM_CRB TPM_SECRET_SECURITY_USER TPM_SECRET_SECURITY_HOST
        COMPUTE_SECURITY_ TPM_SECRET_SECURITY_DEPLOYMENT UEFI_SECURE_BOOT STATELESS_FIRMWARE
        COMPUTE_SOUND_ MODEL_SB16 MODEL_ES1370 MODEL_PCSPK MODEL_AC97 MODEL_ICH6 MODEL_ICH9 MODEL_USB MODEL_VIRTIO
        COMPUTE_STATUS_ DISABLED
        COMPUTE_STORAGE_ BUS_FDC BUS_IDE BUS_LXC BUS_SATA BUS_SCSI BUS_USB BUS_VIRTIO BUS_UML BUS_XEN VIRTIO_FS
        COMPUTE_USB_ MODEL_QEMU_XHCI MODEL_NEC_XHCI
        COMPUTE_VIOMMU_ MODEL_INTEL MODEL_SMMUV3 MODEL_VIRTIO MODEL_AUTO
        COMPUTE_VOLUME_ ATTACH ATTACH_WITH_TAG EXTEND MULTI_ATTACH
        HW_ARCH_ ALPHA ARMV6 ARMV7 ARMV7B AARCH64 CRIS I686 IA64 LM32 M68K MICROBLAZE MICROBLAZEEL MIPS MIPSEL MIPS64 MIPS64EL
        HW_ARCH_ OPENRISC PARISC PARISC64 PPC PPCLE PPC64 PPC64LE PPCEMB S390 S390X SH4 SH4EB SPARC SPARC64 UNICORE32 X86_64 XTENSA
        HW_ARCH_ XTENSAEB
        HW_CPU_ HYPERTHREADING
        HW_CPU_AARCH64_ FP ASIMD EVTSTRM AES PMULL SHA1 SHA2 CRC32 FPHP ASIMDHP ASIMDRDM ATOMICS JSCVT FCMA LRCPC DCPOP SHA3 SM3 SM4
        HW_CPU_AARCH64_ ASIMDDP SHA512 SVE CPUID
        HW_CPU_AMD_ SEV
        HW_CPU_PPC64LE_ POWER8 POWER9
        HW_CPU_X86_ AVX AVX2 CLMUL FMA3 FMA4 F16C MMX SSE SSE2 SSE3 SSSE3 SSE41 SSE42 SSE4A XOP 3DNOW AVX512F AVX512CD AVX512PF
        HW_CPU_X86_ AVX512ER AVX512VL AVX512BW AVX512DQ AVX512VNNI AVX512VBMI AVX512IFMA AVX512VBMI2 AVX512BITALG AVX512VAES
        HW_CPU_X86_ AVX512GFNI AVX512VPCLMULQDQ AVX512VPOPCNTDQ ABM BMI BMI2 TBM AESNI SHA MPX SGX TSX ASF VMX SVM PDPE1GB STIBP
        HW_CPU_X86_ AMXBF16 AMXINT8 AMXTILE
        HW_CPU_X86_AMD_ SEV SEV_ES SEV_SNP SVM IBPB NO_SSB SSBD VIRT_SSBD
        HW_CPU_X86_INTEL_ MD_CLEAR PCID SPEC_CTRL SSBD VMX TDX
        HW_GPU_API_ DIRECTX_V10 DIRECTX_V11 DIRECTX_V12 DIRECT2D DIRECT3D_V6_0 DIRECT3D_V7_0 DIRECT3D_V8_0 DIRECT3D_V8_1 DIRECT3D_V9_0
        HW_GPU_API_ DIRECT3D_V9_0B DIRECT3D_V9_0C DIRECT3D_V9_0L DIRECT3D_V10_0 DIRECT3D_V10_1 DIRECT3D_V11_0 DIRECT3D_V11_1
        HW_GPU_API_ DIRECT3D_V11_2 DIRECT3D_V11_3 DIRECT3D_V12_0 VULKAN DXVA OPENCL_V1_0 OPENCL_V1_1 OPENCL_V1_2 OPENCL_V2_0
        HW_GPU_API_ OPENCL_V2_1 OPENCL_V2_2 OPENGL_V1_1 OPENGL_V1_2 OPENGL_V1_3 OPENGL_V1_4 OPENGL_V1_5 OPENGL_V2_0 OPENGL_V2_1
        HW_GPU_API_ OPENGL_V3_0 OPENGL_V3_1 OPENGL_V3_2 OPENGL_V3_3 OPENGL_V4_0 OPENGL_V4_1 OPENGL_V4_2 OPENGL_V4_3 OPENGL_V4_4
        HW_GPU_API_ OPENGL_V4_5
        HW_GPU_CUDA_ COMPUTE_CAPABILITY_V1_0 COMPUTE_CAPABILITY_V1_1 COMPUTE_CAPABILITY_V1_2 COMPUTE_CAPABILITY_V1_3
        HW_GPU_CUDA_ COMPUTE_CAPABILITY_V2_0 COMPUTE_CAPABILITY_V2_1 COMPUTE_CAPABILITY_V3_0 COMPUTE_CAPABILITY_V3_2
        HW_GPU_CUDA_ COMPUTE_CAPABILITY_V3_5 COMPUTE_CAPABILITY_V3_7 COMPUTE_CAPABILITY_V5_0 COMPUTE_CAPABILITY_V5_2
        HW_GPU_CUDA_ COMPUTE_CAPABILITY_V5_3 COMPUTE_CAPABILITY_V6_0 COMPUTE_CAPABILITY_V6_1 COMPUTE_CAPABILITY_V6_2
        HW_GPU_CUDA_ COMPUTE_CAPABILITY_V7_0 COMPUTE_CAPABILITY_V7_1 COMPUTE_CAPABILITY_V7_2 SDK_V6_5 SDK_V7_5 SDK_V8_0 SDK_V9_0
        HW_GPU_CUDA_ SDK_V9_1 SDK_V9_2 SDK_V10_0
        HW_GPU_MAX_DISPLAY_HEADS_ 1 2 4 6 8
        HW_GPU_RESOLUTION_ W320H240 W640H480 W800H600 W1024H600 W1024H768 W1152H864 W1280H720 W1280H768 W1280H800 W1280H1024 W1360H768
        HW_GPU_RESOLUTION_ W1366H768 W1440H900 W1600H900 W1600H1200 W1680H1050 W1920H1080 W1920H1200 W2560H1440 W2560H1600 W3840H2160
        HW_GPU_RESOLUTION_ W7680H4320
        HW_NIC_ SRIOV MULTIQUEUE VMDQ PROGRAMMABLE_PIPELINE
        HW_NIC_ACCEL_ SSL IPSEC TLS DIFFIEH RSA ECC LZS DEFLATE
        HW_NIC_DCB_ PFC ETS QCN
        HW_NIC_OFFLOAD_ TSO GRO GSO UFO LRO LSO TCS UCS SCS L2CRC FDF RXVLAN TXVLAN VXLAN GRE GENEVE TXUDP QINQ RDMA RXHASH RX TX SG
        HW_NIC_OFFLOAD_ SWITCHDEV
        HW_NIC_SRIOV_ QOS_TX QOS_RX MULTIQUEUE TRUSTED
        HW_NUMA_ ROOT
        HW_NVME_ CES BES WZS
        HW_PCI_ LIVE_MIGRATABLE ONE_TIME_USE
        MISC_ SHARES_VIA_AGGREGATE
        OWNER_ CYBORG NOVA
        STORAGE_DISK_ HDD SSD
        """
}
