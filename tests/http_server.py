#!/usr/bin/env python3
"""Loopback HTTP server for celer's download tests (tests/test_pull.c). Python 3 stdlib only.

Listens on 127.0.0.1 at a free port, prints the port on stdout, and serves files from --root:

  /OWNER/REPO/resolve/REV/PATH   like Hugging Face: X-Linked-ETag (the SHA-256) and X-Linked-Size
  /files/PATH                    a plain file, no digest headers
  /cdn/PATH                      where _redirect sends /resolve/ requests

PATH is looked up under --root, then by its base name alone, so a repository layout such as
tinyllamas/stories260K.gguf need not be copied. Range requests ("bytes=A-" and "bytes=A-B")
get 206 or 416. Leading path segments starting with '_' change the behaviour of one request:

  _cutN       close the connection after N body bytes when the request has no Range header
  _cutallN    close the connection after N body bytes, every time
  _nolenN     send no Content-Length and only N body bytes (the file then looks complete)
  _badsha     announce a wrong SHA-256 in X-Linked-ETag
  _badsize    announce a wrong X-Linked-Size (one byte more)
  _norange    ignore Range headers (always 200 with the whole file)
  _redirect   answer /resolve/ with a 302 to /cdn/ carrying the X-Linked-* headers, as the Hub does

Every request is appended to --log as "METHOD PATH RANGE". The server exits by itself when its
parent process goes away or after --lifetime seconds, so a crashed test leaves nothing behind.
"""
import argparse
import hashlib
import http.server
import os
import re
import socket
import sys
import threading
import time

ARGS = None
LOG_LOCK = threading.Lock()
SHA_CACHE = {}


def file_sha256(path):
    if path not in SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        SHA_CACHE[path] = h.hexdigest()
    return SHA_CACHE[path]


def find_file(rel):
    root = os.path.realpath(ARGS.root)
    for cand in (os.path.join(root, rel), os.path.join(root, os.path.basename(rel))):
        real = os.path.realpath(cand)
        if real.startswith(root + os.sep) and os.path.isfile(real):
            return real
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a cut is a closed socket

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def log_request_line(self):
        if ARGS.log:
            with LOG_LOCK, open(ARGS.log, "a") as f:
                f.write("%s %s %s\n" % (self.command, self.path, self.headers.get("Range", "-")))

    def parse_mods(self):
        segs = self.path.split("?", 1)[0].split("/")[1:]
        mods = {}
        while segs and segs[0].startswith("_"):
            m = re.fullmatch(r"_([a-z]+)(\d*)", segs[0])
            if m:
                mods[m.group(1)] = int(m.group(2)) if m.group(2) else 0
            segs.pop(0)
        return mods, segs

    def do_GET(self):
        self.log_request_line()
        mods, segs = self.parse_mods()
        hub = len(segs) >= 5 and segs[2] == "resolve"
        if hub:
            rel = "/".join(segs[4:])
        elif segs and segs[0] in ("files", "cdn"):
            rel = "/".join(segs[1:])
        else:
            return self.send_plain(404, "no such route\n")
        path = find_file(rel) if rel else None
        if not path:
            return self.send_plain(404, "Entry not found\n")
        size = os.path.getsize(path)
        linked = {}
        if hub:
            sha = file_sha256(path)
            if "badsha" in mods:
                sha = hashlib.sha256(b"not the file").hexdigest()
            linked["X-Linked-ETag"] = '"%s"' % sha
            linked["X-Linked-Size"] = str(size + 1 if "badsize" in mods else size)
            linked["ETag"] = '"%s"' % sha
        if hub and "redirect" in mods:
            prefix = "".join("/_%s%s" % (k, v if v else "") for k, v in mods.items() if k != "redirect")
            self.send_response(302)
            self.send_header("Location", "%s/cdn/%s" % (prefix, rel))
            for k, v in linked.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_file(path, size, mods, linked)

    def send_plain(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_file(self, path, size, mods, linked):
        rng = None if "norange" in mods else self.headers.get("Range")
        first, last = 0, size - 1
        code = 200
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if m:
                first = int(m.group(1))
                last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                if first >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % size)
                    for k, v in linked.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                code = 206
        count = last - first + 1
        limit = count
        if "cut" in mods and not rng:
            limit = min(count, mods["cut"])
        if "cutall" in mods:
            limit = min(count, mods["cutall"])
        if "nolen" in mods:
            limit = min(count, mods["nolen"])
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        if "nolen" not in mods:
            self.send_header("Content-Length", str(count))
        if code == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (first, last, size))
        for k, v in linked.items():
            self.send_header(k, v)
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(first)
            left = limit
            while left > 0:
                chunk = f.read(min(left, 65536))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)
        self.wfile.flush()
        if limit < count:
            # Close abruptly so the client sees a truncated body, not a finished one.
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up mid-body (a test that aborts on a disk error) is expected.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--log")
    ap.add_argument("--lifetime", type=float, default=120.0)
    ARGS = ap.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    parent = os.getppid()
    deadline = time.monotonic() + ARGS.lifetime
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.2)
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
