#!/usr/bin/env python3
"""A console proxy client for the end-to-end tests, standard library only.

  console-client.py vnc URL      noVNC's URL (…/vnc_lite.html?path=%3Ftoken%3D…): opens the
                                 WebSocket it names, does the RFB handshake (ProtocolVersion,
                                 security type None, ClientInit, ServerInit), asks for a
                                 FramebufferUpdate and prints what it got.
  console-client.py serial URL   the serial console's ws:// URL: types a command into the guest's
                                 console shell and prints what comes back.
  console-client.py refused URL [ORIGIN]
                                 exits 0 when the proxy refuses the WebSocket (HTTP status printed),
                                 asked from a page of ORIGIN when given.
  console-client.py browser URL PNG
                                 headless Chromium (Debian's) opens noVNC's page at URL, as a user's
                                 browser would; waits for noVNC to say it is connected to the
                                 guest's display, and saves a screenshot of it to PNG.
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import socket
import struct
import sys
import time
import urllib.parse


class Refused(Exception):
    pass


class WebSocket:
    def __init__(self, url, protocol="binary", origin=None):
        parts = urllib.parse.urlsplit(url)
        assert parts.scheme == "ws", url
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        request = (f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                   + (f"Sec-WebSocket-Protocol: {protocol}\r\n" if protocol else "")
                   + (f"Origin: {origin}\r\n" if origin else "") + "\r\n")
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise Refused("connection closed during the handshake")
            head += chunk
        status = head.split(b"\r\n")[0].decode()
        if " 101 " not in status + " ":
            raise Refused(status)
        headers = head.decode().lower()
        assert not protocol or f"sec-websocket-protocol: {protocol}" in headers, head
        self.buffer = b""

    def send(self, payload, opcode=0x2):
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the proxy closed the WebSocket")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def frame(self):
        """The next data frame's payload (pings answered, close → EOFError)."""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise EOFError("close frame")
            if opcode == 0x9:
                continue
            return payload


class Stream:
    """Bytes from WebSocket frames, read exactly."""

    def __init__(self, ws):
        self.ws, self.data = ws, b""

    def read(self, count):
        while len(self.data) < count:
            self.data += self.ws.frame()
        out, self.data = self.data[:count], self.data[count:]
        return out


def vnc(url):
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    path = query["path"][0]  # "?token=…", as noVNC's page reads it
    parts = urllib.parse.urlsplit(url)
    ws = WebSocket(f"ws://{parts.netloc}/{path.lstrip('/')}")
    rfb = Stream(ws)
    version = rfb.read(12)
    assert version.startswith(b"RFB 003."), version
    ws.send(b"RFB 003.008\n")
    count = rfb.read(1)[0]
    assert count > 0, "the server refused the connection"
    types = rfb.read(count)
    assert 1 in types, f"no security type None in {list(types)}"
    ws.send(bytes([1]))
    result = struct.unpack("!I", rfb.read(4))[0]
    assert result == 0, f"SecurityResult {result}"
    ws.send(bytes([1]))  # ClientInit: shared
    width, height = struct.unpack("!HH", rfb.read(4))
    pixel_format = rfb.read(16)
    name = rfb.read(struct.unpack("!I", rfb.read(4))[0]).decode(errors="replace")
    assert width > 0 and height > 0, (width, height)
    # SetEncodings: Raw only; FramebufferUpdateRequest: the whole screen, not incremental.
    ws.send(struct.pack("!BBHi", 2, 0, 1, 0))
    ws.send(struct.pack("!BBHHHH", 3, 0, 0, 0, width, height))
    while True:
        kind = rfb.read(1)[0]
        if kind == 0:
            break
        if kind == 2:  # Bell
            continue
        if kind == 3:  # ServerCutText
            rfb.read(3)
            rfb.read(struct.unpack("!I", rfb.read(4))[0])
            continue
        raise AssertionError(f"unexpected server message {kind}")
    rfb.read(1)
    rectangles = struct.unpack("!H", rfb.read(2))[0]
    assert rectangles > 0
    bits = pixel_format[0]
    pixels = 0
    for _ in range(rectangles):
        x, y, w, h, encoding = struct.unpack("!HHHHi", rfb.read(12))
        assert encoding == 0, f"encoding {encoding}"
        rfb.read(w * h * bits // 8)
        pixels += w * h
    print(f"{version.decode().strip()} desktop '{name}' {width}x{height}, {bits} bpp: "
          f"FramebufferUpdate with {rectangles} rectangle(s), {pixels} pixels")


def serial(url):
    ws = WebSocket(url)
    ws.sock.settimeout(3)
    seen = b""
    deadline = time.time() + 60
    while time.time() < deadline and b"PETREL-SERIAL-42" not in seen:
        ws.send(b"\recho PETREL-SERIAL-$((6*7))\r")
        try:
            while b"PETREL-SERIAL-42" not in seen:
                seen += ws.frame()
        except socket.timeout:
            pass
    sys.stdout.write(seen.decode(errors="replace").replace("\r", ""))
    if b"PETREL-SERIAL-42" not in seen:
        sys.exit("no answer from the guest's console shell")


def refused(url, origin=None):
    if "path=" in url:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        url = f"ws://{urllib.parse.urlsplit(url).netloc}/{query['path'][0].lstrip('/')}"
    try:
        WebSocket(url, origin=origin)
    except Refused as error:
        print(f"refused: {error}")
        return
    sys.exit("the proxy accepted the WebSocket")


def browser(url, png):
    profile = tempfile.mkdtemp(prefix="petrel-chromium-")
    chromium = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
                                 f"--user-data-dir={profile}", "--window-size=1024,768", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1) and time.time() < deadline:
            time.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        import urllib.request
        pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(p for p in pages if p["type"] == "page")
        cdp = WebSocket(page["webSocketDebuggerUrl"], protocol=None)
        calls = iter(range(1, 1000))

        def call(method, **params):
            number = next(calls)
            cdp.send(json.dumps({"id": number, "method": method, "params": params}).encode(), opcode=0x1)
            while True:
                answer = json.loads(cdp.frame())
                if answer.get("id") == number:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer["result"]

        call("Page.navigate", url=url)
        status = ""
        deadline = time.time() + 60
        while time.time() < deadline:
            result = call("Runtime.evaluate", expression="(document.getElementById('status') || {}).textContent || ''")
            status = result["result"].get("value", "")
            if status.startswith("Connected") or "closed" in status or "Failed" in status:
                break
            time.sleep(0.5)
        # The guest's screen drawn in noVNC's canvas: pixels that are not black.
        drawn = 0
        deadline = time.time() + 20
        while status.startswith("Connected") and drawn < 1000 and time.time() < deadline:
            time.sleep(0.5)
            drawn = call("Runtime.evaluate", expression="""(() => {
                const canvas = document.querySelector('#screen canvas'); if (!canvas || !canvas.width) return 0;
                const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                let lit = 0; for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] > 96) lit++;
                return lit; })()""")["result"].get("value", 0)
        shot = call("Page.captureScreenshot", format="png")
        with open(png, "wb") as out:
            out.write(base64.b64decode(shot["data"]))
        print(f"noVNC in Chromium: '{status}', {drawn} lit pixels of the guest's screen in its canvas")
        if not status.startswith("Connected"):
            sys.exit(f"noVNC did not connect: '{status}'")
        if drawn < 1000:
            sys.exit("noVNC's canvas shows nothing of the guest's screen")
    finally:
        chromium.terminate()
        chromium.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    {"vnc": vnc, "serial": serial, "refused": refused, "browser": browser}[sys.argv[1]](*sys.argv[2:])
