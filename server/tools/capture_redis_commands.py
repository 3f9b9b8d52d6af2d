#!/usr/bin/env python3
"""Captures what Debian's redis-server 7.0.15 answers to COMMAND INFO and COMMAND DOCS for
every command and subcommand the RESP service serves, as one RESP3 map

    %<n> ( $<name> *2 <COMMAND INFO element> <COMMAND DOCS map> )*

written to server/src/resp/cmd/redis_commands.resp, which `cmd::docs` embeds and serves
(filtered to the subcommands we serve). Re-run it when a command is added:

    redis-server --port 7399 --save '' --daemonize yes
    python3 server/tools/capture_redis_commands.py 7399 < names.txt

with one command name per line on stdin (`client|list` for a subcommand). Names redis-server
7.0 does not know (7.2's `client|setinfo`) are skipped; the Rust side supplies them.
"""
import socket
import sys


def enc(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.s.recv(65536)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def raw(self):
        """One whole reply, as the bytes that encoded it."""
        line = self.line()
        out = line + b"\r\n"
        t, rest = line[:1], line[1:]
        if t in b"$=!":
            n = int(rest)
            if n >= 0:
                while len(self.buf) < n + 2:
                    self.buf += self.s.recv(65536)
                out += self.buf[: n + 2]
                self.buf = self.buf[n + 2 :]
        elif t in b"*~>":
            for _ in range(max(int(rest), 0)):
                out += self.raw()
        elif t in b"%|":
            for _ in range(2 * int(rest)):
                out += self.raw()
        return out

    def cmd(self, *args):
        self.s.sendall(enc(*args))
        return self.raw()


def main():
    port = int(sys.argv[1])
    out = sys.argv[2] if len(sys.argv) > 2 else "server/src/resp/cmd/redis_commands.resp"
    c = Conn(port)
    c.cmd("HELLO", "3")
    entries = []
    for name in (l.strip() for l in sys.stdin):
        if not name:
            continue
        info = c.cmd("COMMAND", "INFO", name)
        # `*1\r\n` then the element, or `*1\r\n_\r\n` for an unknown name.
        element = info[len(b"*1\r\n") :]
        if element.startswith(b"_"):
            print(f"skipped {name}: unknown to this redis-server", file=sys.stderr)
            continue
        docs = c.cmd("COMMAND", "DOCS", name)
        # `%1\r\n$len\r\nname\r\n` then the docs map.
        head = b"%1\r\n" + enc(name)[len(b"*1\r\n") :]
        assert docs.startswith(head), (name, docs[:80])
        entries.append(enc(name)[len(b"*1\r\n") :] + b"*2\r\n" + element + docs[len(head) :])
    with open(out, "wb") as f:
        f.write(b"%%%d\r\n" % len(entries))
        for e in entries:
            f.write(e)
    print(f"wrote {len(entries)} commands to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
