#!/usr/bin/env python3
"""Petrel's layer check: who may import whom (see ../shared/DESIGN.md, "The layers, and who may know whom").

Reads the targets of Package.swift and the `import` statements of every .swift file of every target
under Sources/ (targets under Tests/ and Benchmarks/ are not checked), and fails with one line per
violation of these rules:

  rule 1  controller-side modules and node-side modules never import each other
  rule 2  a C module is imported only by its one driver
  rule 3  the HTTP framework appears only in the API layer (APIs, PetrelHTTP, APIKit, the programs,
          the node's metadata proxy)
  rule 4  an API module does not touch the store or SQL (Store, SQLKit, SQLiteKit, PostgresKit);
          known exceptions being fixed are listed in RULE4_KNOWN, printed as warnings, and an entry
          that is no longer needed is an error, so the list only shrinks
  rule 5  the layers point down: API -> services -> store/drivers/shared; services never import API
          modules; drivers never import services, APIs or Store; shared modules import no service or
          API; no production module imports a test or benchmark target

Usage:  layer-check.sh [ROOT]          check ROOT (default: the repository holding this script)
        layer-check.sh --self-test     prove each rule can fail, on copies of the tree
        layer-check.sh --markdown      print the layer table (for README's Layout section)
Standard library only (python3 >= 3.8).
"""

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile

# ─────────────────────────────────────────────────────────────────────────────────────────────────
# THE LAYER TABLE — edit here.
#
# A target is classified by the explicit lists first, then by the name patterns below. A target
# under Sources/ that matches nothing is an error ("unclassified target X"), so the table stays complete.
# Modules that are not targets of this package (Foundation, Logging, NIOCore…) are external: only
# rules 3 and 4 name some of them.

LAYERS = {
    # layer          explicit modules (future ones may be listed before they exist)
    "c":          ["CLibvirt", "CNetlink", "CRabbitMQ", "CLVM", "CCrypt"],
    "driver":     ["LibvirtDriver", "NetlinkDriver", "RabbitMQDriver", "LVMDriver", "IptablesDriver",
                   "ProcessDriver", "CryptDriver"],
    "shared":     ["PetrelCore", "PetrelHTTP", "Contracts", "RPC", "APIKit"],
    "service":    ["Store", "Identity", "Hosts", "Images", "Compute",
                   "Networking", "Volumes", "Placement"],          # controller services (Placement: future)
    "api":        ["IdentityAPI", "ComputeAPI", "NetworkAPI", "VolumeAPI", "ImageAPI"],
    "node":       ["NodeCore", "NodeCompute", "NodeNetwork", "NodeVolume"],  # node services
    "controller-program": ["petrel-controller"],
    "node-program":       ["petrel-node"],
}

# Name patterns for targets not listed above: (layer, regex on the name, required target kind or None).
PATTERNS = [
    ("c",      r"C[A-Z0-9].*", "systemLibrary"),   # C libraries are .systemLibrary targets named C*
    ("driver", r".+Driver",    None),
    ("api",    r".+API",       None),
    ("node",   r"Node[A-Z].*", None),
]

LAYER_TITLES = {
    "c": "C libraries", "driver": "drivers", "shared": "shared",
    "service": "controller services", "api": "controller API", "node": "node services",
    "controller-program": "controller program", "node-program": "node program",
}

# Rule 1: the two sides. Everything else (C, drivers, shared) is common ground.
CONTROLLER_SIDE = {"service", "api", "controller-program"}
NODE_SIDE = {"node", "node-program"}

# Rule 2: each C module and the one driver that may import it.
C_OWNER = {
    "CLibvirt": "LibvirtDriver",
    "CNetlink": "NetlinkDriver",
    "CRabbitMQ": "RabbitMQDriver",
    "CLVM": "LVMDriver",
    "CCrypt": "CryptDriver",
}

# Rule 3: the HTTP framework, and who may import it (besides every "api" module).
HTTP_FRAMEWORK = {"Hummingbird", "HummingbirdCore", "HummingbirdTesting", "HTTPTypes", "HummingbirdRouter"}
HTTP_ALLOWED_LAYERS = {"api", "controller-program", "node-program"}
HTTP_ALLOWED_MODULES = {"PetrelHTTP", "APIKit",
                        "NodeNetwork"}   # the node's metadata proxy lives in its network service

# Rule 4: what API modules must not import…
API_FORBIDDEN = {"Store", "SQLKit", "SQLiteKit", "PostgresKit"}
# …and the known exceptions, being fixed: (API module, forbidden import). Printed as warnings.
# Delete an entry when its module is fixed; an entry that is no longer needed fails the check.
RULE4_KNOWN = [
]

# Rule 5: the layers point down. Layer -> layers it must never import.
MUST_NOT_IMPORT = {
    "c":       {"driver", "shared", "service", "api", "node", "controller-program", "node-program"},
    "driver":  {"service", "api", "node", "controller-program", "node-program"},
    "shared":  {"service", "api", "node", "controller-program", "node-program"},
    "service": {"api", "controller-program", "node-program"},
    "node":    {"api", "controller-program", "node-program"},
    "api":     {"controller-program", "node-program"},
    "controller-program": {"node-program"},
    "node-program":       {"controller-program"},
}

# Target folders not checked at all (test targets and benchmarks).
SKIPPED_PATH_PREFIXES = ("Tests/", "Benchmarks/")

# ─────────────────────────────────────────────────────────────────────────────────────────────────

RULE_NAMES = {
    1: "rule 1 (controller and node never import each other)",
    2: "rule 2 (a C module only in its driver)",
    3: "rule 3 (the HTTP framework only in the API layer)",
    4: "rule 4 (API modules do not touch Store/SQL)",
    5: "rule 5 (layers point down)",
}

TARGET_KINDS = ("target", "executableTarget", "systemLibrary", "testTarget", "macro", "plugin", "binaryTarget")


# ── Package.swift ────────────────────────────────────────────────────────────────────────────────

def strip_swift(text):
    """Blank out comments and the contents of string literals with spaces, keeping newlines and
    every offset (so line numbers and positions still match the original text)."""
    blanks = []           # (start, end) ranges to blank
    i, n = 0, len(text)
    tok = re.compile(r'//|/\*|"|#')
    inner = re.compile(r'/\*|\*/')
    while True:
        m = tok.search(text, i)
        if not m:
            break
        t, s = m.group(0), m.start()
        if t == "//":
            e = text.find("\n", s)
            e = n if e < 0 else e
            blanks.append((s, e)); i = e
        elif t == "/*":
            depth, j = 1, m.end()
            while depth:
                b = inner.search(text, j)
                if not b:
                    j = n; break
                depth += 1 if b.group(0) == "/*" else -1
                j = b.end()
            blanks.append((s, j)); i = j
        else:
            j = s
            while j < n and text[j] == "#":
                j += 1
            hashes = j - s
            if j >= n or text[j] != '"':
                i = max(j, s + 1)
                continue
            multi = text.startswith('"""', j)
            body = j + (3 if multi else 1)
            closer = ('"""' if multi else '"') + "#" * hashes
            k = body
            while True:
                if k >= n:
                    break
                c = text[k]
                if c == "\\" and hashes == 0:
                    k += 2; continue
                if c == "\n" and not multi:       # unterminated single-line string: stop at the line
                    break
                if c == '"' and text.startswith(closer, k):
                    break
                k += 1
            k = min(k, n)
            blanks.append((body, k))
            i = k + (len(closer) if text.startswith(closer, k) else 1)
    if not blanks:
        return text
    out, pos = [], 0
    for a, b in blanks:
        out.append(text[pos:a])
        seg = text[a:b]
        out.append(re.sub(r"[^\n]", " ", seg) if "\n" in seg else " " * len(seg))
        pos = b
    out.append(text[pos:])
    return "".join(out)


def read_targets(package_swift):
    """[(kind, name, path or None)] for every target declared in Package.swift."""
    raw = open(package_swift, encoding="utf-8").read()
    code = strip_swift(raw)       # same offsets as raw; comments and string contents blanked
    targets = []
    call = re.compile(r"\.(" + "|".join(TARGET_KINDS) + r")\s*\(")
    i = 0
    while True:
        m = call.search(code, i)
        if not m:
            break
        kind = m.group(1)
        # find the matching parenthesis; keep only the call's own (depth-1) text
        depth, j, top = 1, m.end(), []
        while j < len(code) and depth:
            ch = code[j]
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            if depth == 1 and ch not in ")]}":
                top.append((j, ch))
            j += 1
        i = j   # continue after this call: `.target(name:)` dependencies inside it are skipped
        top_text = "".join(c for _, c in top)
        offsets = [o for o, _ in top]

        def arg(label):
            a = re.search(r"\b" + label + r'\s*:\s*"', top_text)
            if not a:
                return None
            start = offsets[a.end() - 1]     # offset of the opening quote in the file
            end = raw.index('"', start + 1)
            return raw[start + 1:end]

        name = arg("name")
        if name is None:
            continue
        targets.append((kind, name, arg("path")))
    return targets


# ── imports ──────────────────────────────────────────────────────────────────────────────────────

IMPORT = re.compile(
    r"^\s*(?:(?:@[A-Za-z_][A-Za-z0-9_]*(?:\([^)]*\))?|public|package|internal|fileprivate|private|open)\s+)*"
    r"import\s+(?:(?:typealias|struct|class|enum|protocol|let|var|func)\s+)?"
    r"([A-Za-z_][A-Za-z0-9_]*)")


CANDIDATE = re.compile(r"^[^\n]*\bimport[^\S\n]", re.M)


def imports_of(path):
    """[(line number, module, statement text)] for each import in a Swift file."""
    text = open(path, encoding="utf-8", errors="replace").read()
    last = None
    for last in CANDIDATE.finditer(text):
        pass
    if last is None:
        return []
    # Only the text up to the last line that might be an import needs comments and strings blanked
    # (blanking depends only on what comes before), and imports are nearly always at the top.
    end = text.find("\n", last.end())
    code = strip_swift(text if end < 0 else text[:end])
    raw_lines = text.split("\n")
    found = []
    for no, line in enumerate(code.split("\n"), 1):
        if "import" not in line:
            continue
        for part in line.split(";"):
            m = IMPORT.match(part)
            if m:
                stmt = raw_lines[no - 1].strip() if no <= len(raw_lines) else part.strip()
                if ";" in line:
                    stmt = part.strip()
                found.append((no, m.group(1), stmt))
    return found


# ── the check ────────────────────────────────────────────────────────────────────────────────────

def classify(name, kind):
    for layer, names in LAYERS.items():
        if name in names:
            return layer
    for layer, pattern, need_kind in PATTERNS:
        if re.fullmatch(pattern, name) and (need_kind is None or need_kind == kind):
            return layer
    return None


def side(layer):
    if layer in CONTROLLER_SIDE:
        return "controller"
    if layer in NODE_SIDE:
        return "node"
    return None


def check(root, extra_known=()):
    """Returns (errors, warnings, module count, import count)."""
    errors, warnings = [], []
    package = os.path.join(root, "Package.swift")
    if not os.path.isfile(package):
        return ["%s: not found" % package], [], 0, 0
    targets = read_targets(package)

    modules = {}         # name -> (layer, folder relative to root) for checked targets
    all_targets = {}     # name -> layer or "skipped"
    for kind, name, path in targets:
        if kind == "testTarget":
            folder = path or "Tests/" + name
        else:
            folder = path or "Sources/" + name
        folder = folder.strip("/")
        if kind in ("plugin", "binaryTarget"):
            continue      # treated like external modules
        if (folder + "/").startswith(SKIPPED_PATH_PREFIXES):
            all_targets[name] = "skipped"
            continue
        layer = classify(name, kind)
        if layer is None:
            errors.append("Package.swift: unclassified target %s: add it to the layer table in "
                          "Packaging/layer_check.py" % name)
            all_targets[name] = "unclassified"
            continue
        all_targets[name] = layer
        modules[name] = (layer, folder)
    for name, (layer, _) in modules.items():
        if layer == "c" and name not in C_OWNER:
            errors.append("Package.swift: C module %s has no driver in C_OWNER: add the one driver "
                          "that may import it to the table" % name)

    known = set(RULE4_KNOWN) | set(extra_known)
    rule4_seen = {}      # (module, import) -> [locations]
    n_imports = 0

    for name in sorted(modules):
        layer, folder = modules[name]
        base = os.path.join(root, folder)
        files = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            files += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".swift")]
        for path in files:
            rel = os.path.relpath(path, root)
            for no, imp, stmt in imports_of(path):
                n_imports += 1
                where = "%s:%d: '%s'" % (rel, no, stmt)
                if imp == name:
                    continue
                imp_layer = all_targets.get(imp)      # None: external module
                broken = []

                # rule 1
                a, b = side(layer), side(imp_layer)
                if a and b and a != b:
                    broken.append((1, "%s-side %s imports %s-side %s" % (a, name, b, imp)))
                # rule 2
                if imp_layer == "c" and C_OWNER.get(imp) != name:
                    owner = C_OWNER.get(imp)
                    broken.append((2, "%s may be imported only by %s, not by %s"
                                   % (imp, owner or "(no driver listed in C_OWNER)", name)))
                # rule 3
                if imp in HTTP_FRAMEWORK and layer not in HTTP_ALLOWED_LAYERS \
                        and name not in HTTP_ALLOWED_MODULES:
                    broken.append((3, "%s is the HTTP framework; %s (%s) is not in the API layer"
                                   % (imp, name, LAYER_TITLES[layer])))
                # rule 4
                if layer == "api" and imp in API_FORBIDDEN:
                    if (name, imp) in known:
                        rule4_seen.setdefault((name, imp), []).append("%s:%d" % (rel, no))
                    else:
                        broken.append((4, "API module %s must not import %s (go through a service)"
                                       % (name, imp)))
                # rule 5
                if imp_layer == "skipped":
                    broken.append((5, "%s is a test or benchmark target; %s is production code"
                                   % (imp, name)))
                elif imp_layer in MUST_NOT_IMPORT.get(layer, ()) and not (1 in [r for r, _ in broken]):
                    broken.append((5, "%s (%s) must not import %s (%s)"
                                   % (name, LAYER_TITLES[layer], imp, LAYER_TITLES[imp_layer])))

                for rule, why in broken:
                    errors.append("%s: %s: %s" % (where, RULE_NAMES[rule], why))

    for (mod, imp) in sorted(known):
        locs = rule4_seen.get((mod, imp))
        if locs:
            warnings.append("warning: %s: known, being fixed: %s imports %s in %d file%s (first %s); "
                            "delete (%s, %s) from RULE4_KNOWN when fixed"
                            % (RULE_NAMES[4], mod, imp, len(locs), "" if len(locs) == 1 else "s",
                               locs[0], mod, imp))
        else:
            errors.append("Packaging/layer_check.py: stale RULE4_KNOWN entry (%s, %s): %s no longer "
                          "imports %s; delete the entry so the list only shrinks" % (mod, imp, mod, imp))
    return errors, warnings, len(modules), n_imports


def run(root, extra_known=()):
    errors, warnings, n_mod, n_imp = check(root, extra_known)
    for w in warnings:
        print(w)
    for e in errors:
        print(e)
    if errors:
        print("layer-check: %d violation%s in %d modules (%d imports)"
              % (len(errors), "" if len(errors) == 1 else "s", n_mod, n_imp))
        return 1
    print("layer-check: %d modules, %d imports checked, no violations" % (n_mod, n_imp))
    return 0


# ── --markdown ───────────────────────────────────────────────────────────────────────────────────

def markdown(root):
    targets = read_targets(os.path.join(root, "Package.swift"))
    present = {}
    for kind, name, path in targets:
        folder = (path or ("Tests/" if kind == "testTarget" else "Sources/") + name).strip("/")
        if (folder + "/").startswith(SKIPPED_PATH_PREFIXES):
            continue
        layer = classify(name, kind)
        if layer:
            present.setdefault(layer, []).append(name)
    order = ["api", "controller-program", "node-program", "service", "node", "shared", "driver", "c"]
    may = {
        "api": "controller services, other APIs, shared, drivers; the HTTP framework. "
               "Not Store/SQLKit/SQLiteKit/PostgresKit (rule 4), not node modules",
        "controller-program": "controller services and APIs, shared, drivers; the HTTP framework. Not node modules",
        "node-program": "node services, shared, drivers; the HTTP framework. Not controller modules",
        "service": "other controller services (Store, SQL libraries), shared, drivers. "
                   "Not API modules, not node modules, not the HTTP framework",
        "node": "other node services, shared, drivers (NodeNetwork also the HTTP framework, for the metadata "
                "proxy). Not controller modules, not API modules",
        "shared": "other shared modules, drivers (RPC uses RabbitMQDriver); PetrelHTTP and APIKit also the "
                  "HTTP framework. Not services, APIs, node services",
        "driver": "its own C module (only it may), other drivers, shared (PetrelCore). "
                  "Not Store, services, APIs, node services",
        "c": "nothing (system headers)",
    }
    print("| layer | modules | may import |")
    print("| --- | --- | --- |")
    for layer in order:
        names = present.get(layer, [])
        print("| %s | %s | %s |" % (LAYER_TITLES[layer], ", ".join(names) or "—", may[layer]))
    return 0


# ── --self-test ──────────────────────────────────────────────────────────────────────────────────

def self_test(root):
    """Copies Package.swift and Sources/ once into a temporary directory (removed at the end); each
    case makes its edits to that copy, runs the check on it, and undoes its edits."""
    me = os.path.abspath(__file__)
    passed, failed = [0], [0]

    def result(ok, what, detail=""):
        if ok:
            passed[0] += 1
            print("  ok    %s" % what)
        else:
            failed[0] += 1
            print("  FAIL  %s%s" % (what, ("\n" + detail) if detail else ""))

    work = tempfile.mkdtemp(prefix="layer-check.")
    try:
        tree = os.path.join(work, "tree")
        os.mkdir(tree)
        shutil.copy2(os.path.join(root, "Package.swift"), tree)
        shutil.copytree(os.path.join(root, "Sources"), os.path.join(tree, "Sources"),
                        ignore=lambda d, names: [n for n in names if not n.endswith(".swift")
                                                 and not os.path.isdir(os.path.join(d, n))])
        saved = {}      # path -> original text, or None for a file or folder the case created

        def edit(path, new_text):
            if path not in saved:
                saved[path] = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            d = os.path.dirname(path)
            if not os.path.isdir(d):
                top = d
                while not os.path.isdir(os.path.dirname(top)):
                    top = os.path.dirname(top)
                saved.setdefault(top, None)
                os.makedirs(d)
            with open(path, "w", encoding="utf-8") as f:
                f.write(new_text)

        def undo():
            for path, text in sorted(saved.items(), key=lambda kv: -len(kv[0])):
                if text is None:
                    if os.path.isdir(path):
                        shutil.rmtree(path)
                    elif os.path.exists(path):
                        os.remove(path)
                else:
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(text)
            saved.clear()

        def swift_files(module):
            out = []
            for dirpath, dirnames, filenames in os.walk(os.path.join(tree, "Sources", module)):
                dirnames.sort()
                out += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".swift")]
            return out

        def inject(module, line):
            files = swift_files(module)
            if not files:
                return None
            edit(files[0], line + "\n" + open(files[0], encoding="utf-8").read())
            return os.path.relpath(files[0], tree)

        def check_tree(*extra):
            # in-process (fast); the two process runs below prove the script's own exit codes
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                rc = main(list(extra) + [tree])
            return rc, buf.getvalue()

        def check_process():
            p = subprocess.run(["bash", os.path.join(os.path.dirname(me), "layer-check.sh"), tree],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            return p.returncode, p.stdout

        def detail(rc, out):
            return "    exit %d, output:\n%s" % (rc, out)

        def expect_fail(label, module, line, needles):
            rel = inject(module, line)
            if rel is None:
                result(False, label, "    no .swift file in Sources/%s to inject into" % module)
                return
            rc, out = check_tree()
            lines = [l for l in out.splitlines() if l.startswith(rel + ":1: ")]
            ok = rc == 1 and any(all(w in l for w in needles) for l in lines)
            result(ok, "%s: '%s' in %s fails" % (label, line, rel), detail(rc, out))
            undo()

        # the unmodified copy passes, and a copy with one bad import fails, as processes
        rc, out = check_process()
        result(rc == 0 and "no violations" in out, "unmodified tree passes (layer-check.sh exits 0)",
               detail(rc, out))
        rel = inject("Compute", "import NodeCompute")
        rc, out = check_process()
        result(rc == 1 and (rel + ":1: 'import NodeCompute': rule 1") in out,
               "one bad import: layer-check.sh exits 1 and names file:line, import and rule", detail(rc, out))
        undo()

        # rule 1, both directions
        expect_fail("rule 1", "Compute", "import NodeCompute", ["rule 1", "NodeCompute"])
        expect_fail("rule 1", "NodeCompute", "import Compute", ["rule 1", "Compute"])
        expect_fail("rule 1", "petrel-node", "import Identity", ["rule 1", "Identity"])
        expect_fail("rule 1", "petrel-controller", "import NodeCompute", ["rule 1", "NodeCompute"])
        # rule 2
        expect_fail("rule 2", "Compute", "import CLibvirt", ["rule 2", "CLibvirt"])
        expect_fail("rule 2", "NetlinkDriver", "import CLibvirt", ["rule 2", "CLibvirt"])
        # rule 3
        expect_fail("rule 3", "Compute", "import Hummingbird", ["rule 3", "Hummingbird"])
        expect_fail("rule 3", "NodeCompute", "import HTTPTypes", ["rule 3", "HTTPTypes"])
        # rule 4: an (API module, forbidden import) pair not on the allow-list
        known = set(RULE4_KNOWN)
        apis = sorted(n for k, n, p in read_targets(os.path.join(tree, "Package.swift"))
                      if classify(n, k) == "api" and swift_files(n))
        pair = next(((a, f) for f in ["SQLKit", "PostgresKit", "SQLiteKit", "Store"] for a in apis
                     if (a, f) not in known), None)
        if pair:
            expect_fail("rule 4", pair[0], "import %s" % pair[1], ["rule 4", pair[1]])
        else:
            result(False, "rule 4: every API/forbidden pair is on the allow-list; nothing to inject")
        # rule 5
        expect_fail("rule 5", "Compute", "import ComputeAPI", ["rule 5", "ComputeAPI"])
        expect_fail("rule 5", "LibvirtDriver", "import Store", ["rule 5", "Store"])
        expect_fail("rule 5", "PetrelCore", "import Identity", ["rule 5", "Identity"])
        expect_fail("rule 5", "Compute", "import TestSupport", ["rule 5", "TestSupport"])
        # every import syntax is seen
        for stmt in ["@testable import NodeCompute", "import struct NodeCompute.Foo",
                     "@_implementationOnly import NodeCompute", "public import NodeCompute",
                     "internal import NodeCompute", "@preconcurrency import NodeCompute.Sub",
                     "import Foundation; import NodeCompute"]:
            expect_fail("syntax", "Compute", stmt, ["rule 1", "NodeCompute"])

        # imports in comments and strings are not imports
        path = swift_files("Compute")[0]
        edit(path, open(path, encoding="utf-8").read()
             + '\n// import NodeCompute\n/* a /* nested */\nimport CLibvirt\n*/\n'
               'let _layerCheckText = """\nimport Hummingbird\n"""\nlet _s = #"\\"#\n')
        rc, out = check_tree()
        result(rc == 0, "imports inside comments and strings are ignored", detail(rc, out))
        undo()

        # a stale allow-list entry fails
        rc, out = check_tree("--also-allow", "VolumeAPI:PostgresKit")
        result(rc == 1 and "stale RULE4_KNOWN entry (VolumeAPI, PostgresKit)" in out,
               "a stale allow-list entry (VolumeAPI, PostgresKit) fails", detail(rc, out))
        if RULE4_KNOWN:
            mod, imp = RULE4_KNOWN[0]
            pat = re.compile(r"^[^\S\n]*(?:(?:@\w+|public|internal|package)\s+)*import\s+%s\s*$" % imp, re.M)
            for p in swift_files(mod):
                text = open(p, encoding="utf-8").read()
                if pat.search(text):
                    edit(p, pat.sub("", text))
            rc, out = check_tree()
            result(rc == 1 and "stale RULE4_KNOWN entry (%s, %s)" % (mod, imp) in out,
                   "fixing %s (no more 'import %s') makes its allow-list entry stale" % (mod, imp),
                   detail(rc, out))
            undo()

        # an unclassified target fails
        package = os.path.join(tree, "Package.swift")
        text = open(package, encoding="utf-8").read()
        edit(package, text.replace("targets: [", 'targets: [\n        .target(name: "Frobnicator", '
                                   'dependencies: [.target(name: "PetrelCore")]),', 1))
        edit(os.path.join(tree, "Sources", "Frobnicator", "F.swift"), "import PetrelCore\n")
        rc, out = check_tree()
        result(rc == 1 and "unclassified target Frobnicator" in out
               and "unclassified target PetrelCore" not in out,
               "an unclassified target (Frobnicator) fails", detail(rc, out))
        undo()

        # a target's path: is where its files are read
        text2 = re.sub(r'\.target\(name:\s*"Hosts",', '.target(name: "Hosts", path: "Sources/Elsewhere/Hosts",',
                       text, count=1)
        edit(package, text2)
        edit(os.path.join(tree, "Sources", "Elsewhere", "Hosts", "Injected.swift"), "import Hummingbird\n")
        rc, out = check_tree()
        result(text2 != text and rc == 1
               and "Sources/Elsewhere/Hosts/Injected.swift:1: 'import Hummingbird': rule 3" in out,
               "a target's path: is honoured (Hosts at Sources/Elsewhere/Hosts)", detail(rc, out))
        undo()

        # after all the undos the copy passes again
        rc, out = check_tree()
        result(rc == 0, "the copy passes again after every case is undone", detail(rc, out))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("layer-check self-test: %d passed, %d failed" % (passed[0], failed[0]))
    return 1 if failed[0] else 0


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    default_root = os.path.dirname(here)
    args = list(argv)
    extra = []
    mode = "check"
    while args and args[0].startswith("--"):
        a = args.pop(0)
        if a == "--self-test":
            mode = "self-test"
        elif a == "--markdown":
            mode = "markdown"
        elif a == "--also-allow" and args:      # for the self-test: an extra RULE4_KNOWN entry
            m, _, i = args.pop(0).partition(":")
            extra.append((m, i))
        elif a in ("--help", "-h"):
            print(__doc__)
            return 0
        else:
            print("layer-check: unknown option %s" % a, file=sys.stderr)
            return 2
    root = os.path.abspath(args[0]) if args else default_root
    if mode == "self-test":
        return self_test(root)
    if mode == "markdown":
        return markdown(root)
    return run(root, extra)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
