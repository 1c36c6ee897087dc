#!/usr/bin/python3
"""Records golden replies: runs tests/cmd/commands.txt against a fresh
redis-server on a loopback port and writes tests/cmd/golden.txt, one
`> command` line and one `< reply` line per command (raw RESP2 bytes,
escaped). test_cmd replays them through src/cmd and compares bytes.
`@resp3` and `@resp2` switch the connection's protocol (HELLO 3 / HELLO 2,
whose reply is not recorded); they are copied to golden.txt as they are.

Usage: gen_golden.py [redis-server binary]   (run by `make golden`)
The server listens on port 26379, or $GOLDEN_PORT.
"""
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def unescape(arg):
    out = bytearray()
    i = 0
    while i < len(arg):
        c = arg[i]
        if c == "\\" and i + 1 < len(arg):
            n = arg[i + 1]
            if n == "x":
                out.append(int(arg[i + 2:i + 4], 16))
                i += 4
                continue
            out += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}[n]
            i += 2
            continue
        out += c.encode()
        i += 1
    return bytes(out)


def escape(data):
    out = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif 0x21 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def read_reply(f):
    """Returns the raw bytes of one RESP2 or RESP3 reply read from file f."""
    line = f.readline()
    kind = line[:1]
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return line
    if kind in (b"$", b"=", b"!"):
        n = int(line[1:-2])
        return line if n < 0 else line + f.read(n + 2)
    if kind in (b"*", b"~", b">", b"%", b"|"):
        n = int(line[1:-2]) * (2 if kind in (b"%", b"|") else 1)
        raw = line
        for _ in range(max(n, 0)):
            raw += read_reply(f)
        return raw
    raise RuntimeError("bad reply line %r" % line)


def protocol_switch(line):
    """The HELLO of a `@resp3` / `@resp2` line, or None."""
    return {"@resp3": [b"hello", b"3"], "@resp2": [b"hello", b"2"]}.get(line)


def encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def main():
    server = sys.argv[1] if len(sys.argv) > 1 else "redis-server"
    port = int(os.environ.get("SHOAL_GOLDEN_PORT", "26379"))  # parallel runs pick theirs
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", tmp],
                                stdout=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    sock = socket.create_connection(("127.0.0.1", port))
                    break
                except OSError:
                    time.sleep(0.05)
            f = sock.makefile("rb")
            version = subprocess.run([server, "--version"], capture_output=True,
                                     text=True).stdout.strip()
            lines = ["# golden replies recorded from: " + version]
            for raw in open(os.path.join(HERE, "commands.txt")):
                raw = raw.rstrip("\n")
                if not raw or raw.startswith("#"):
                    continue
                if protocol_switch(raw):
                    sock.sendall(encode(protocol_switch(raw)))
                    read_reply(f)
                    lines.append(raw)
                    continue
                args = [b"flushall"] if raw == "@flush" else [unescape(a) for a in shlex.split(raw)]
                sock.sendall(encode(args))
                reply = read_reply(f)
                lines.append("> " + " ".join(escape(a) if a else "\\e" for a in args))
                lines.append("< " + escape(reply))
            with open(os.path.join(HERE, "golden.txt"), "w") as out:
                out.write("\n".join(lines) + "\n")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
