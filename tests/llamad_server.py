"""Starts a real llamad on a free loopback port for the integration tests and
talks plain HTTP/1.1 to it (standard library only)."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

BUILD = os.environ["LLAMAD_BUILD_DIR"]
DAEMON = os.path.join(BUILD, "llamad")

# What systemd does for a socket unit's service: the socket as descriptor 3, and
# LISTEN_FDS and LISTEN_PID (the pid that execs the daemon) in the environment.
SYSTEMD_EXEC = """
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.setdefault("LISTEN_FDS", "1")
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


class Server:
    """One llamad process; use as a context manager."""

    def __init__(self, *args, wait_ready=True, env=None, listen_socket=None):
        self.args = list(args)
        # listen_socket: a listening socket handed over the systemd way (LISTEN_FDS);
        # the daemon then gets no --host or --port of ours
        self.listen_socket = listen_socket
        self.wait_ready = wait_ready
        # env: variables to set, or to remove (None), for the daemon's environment
        self.env = {k: v for k, v in dict(os.environ, **(env or {})).items() if v is not None}
        self.proc = None
        self.host = None
        self.port = None
        self.log = []
        self._log_cond = threading.Condition()

    def __enter__(self):
        cmd, fds = [DAEMON, "--host", "127.0.0.1", "--port", "0"] + self.args, ()
        if self.listen_socket:
            fds = (self.listen_socket.fileno(),)
            cmd = [sys.executable, "-c", SYSTEMD_EXEC, str(fds[0]), DAEMON] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=self.env, pass_fds=fds)
        threading.Thread(target=self._read_log, daemon=True).start()
        line = self.wait_log(r"listening on http://(127\.0\.0\.1|\[::1\]):(\d+)/", 30)
        where = re.search(r"//\[?([^/]*?)\]?:(\d+)/", line)
        self.host, self.port = where.group(1), int(where.group(2))
        if self.wait_ready:
            self.wait_log(r"\bready$", 60)
        return self

    def __exit__(self, *exc):
        """Stops the daemon (SIGINT) and checks it exits cleanly: status 0 and no
        sanitizer report (leaks are reported at exit)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError("llamad did not stop on SIGINT")
            time.sleep(0.1)  # the reader thread takes the last lines
            status = self.proc.returncode
            report = [l for l in self.log if "Sanitizer" in l or "runtime error" in l]
            if exc[0] is None and (status != 0 or report):
                raise AssertionError("llamad exited with %s:\n%s" % (status, "\n".join(self.log[-40:])))
        self.proc.stderr.close()

    def _read_log(self):
        for raw in self.proc.stderr:
            with self._log_cond:
                self.log.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._log_cond.notify_all()

    def wait_log(self, pattern, timeout=30, nth=1):
        """The nth log line matching pattern (waits for it)."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        with self._log_cond:
            while True:
                found = [line for line in self.log if rx.search(line)]
                if len(found) >= nth:
                    return found[nth - 1]
                exited = self.proc.poll() is not None
                if time.monotonic() > deadline or exited:
                    if exited:  # let the reader catch the last lines first
                        self._log_cond.wait(0.5)
                        if sum(1 for line in self.log if rx.search(line)) >= nth:
                            continue
                    raise AssertionError("no log line matching %r; log:\n%s"
                                         % (pattern, "\n".join(self.log)))
                self._log_cond.wait(0.5)

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=30):
        return self.proc.wait(timeout)

    def conn(self, timeout=60):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers dict, body bytes) of one request on a new connection."""
        c = self.conn(timeout)
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def post(self, path, body, headers=None, timeout=60):
        status, hdrs, data = self.request("POST", path, body, headers, timeout)
        return status, hdrs, json.loads(data) if data else None

    def get_json(self, path, headers=None):
        status, hdrs, data = self.request("GET", path, None, headers)
        return status, json.loads(data)

    def stream(self, path, body, headers=None, timeout=60):
        """Opens a streaming request; returns (connection, response)."""
        c = self.conn(timeout)
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        c.request("POST", path, body=json.dumps(body).encode(), headers=hdrs)
        return c, c.getresponse()

    def metrics(self):
        status, _, data = self.request("GET", "/metrics")
        assert status == 200
        values = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values


def shared_model(name):
    """The path of ../shared's synthetic model `name`, or None when the shared
    data is not beside the checkout (or at $LLAMAD_SHARED_DIR)."""
    shared = os.environ.get("LLAMAD_SHARED_DIR") or os.environ["LLAMAD_SHARED_DIR_DEFAULT"]
    path = os.path.join(shared, "testdata", "models", name)
    return path if os.path.exists(path) else None


def sse_events(resp):
    """Yields each SSE event's data (str) as it arrives; comments are skipped
    and reported as None."""
    buf = b""
    while True:
        chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(1)
        if not chunk:
            return
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            data = []
            for line in event.split(b"\n"):
                if line.startswith(b":"):
                    yield None
                elif line.startswith(b"data: "):
                    data.append(line[6:].decode("utf-8"))
            if data:
                yield "\n".join(data)


def raw_socket(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    return s


def read_answer(s):
    """Everything the daemon sends on a raw socket until it closes the connection."""
    out = b""
    while True:
        data = s.recv(65536)
        if not data:
            return out
        out += data
