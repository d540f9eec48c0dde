"""Replicas behind nginx, with conf/nginx-llamad.conf itself: two daemons and
Debian's nginx on loopback ports. The shipped file is included from a
top-level nginx.conf written here; of its lines only the addresses (the
upstream's server lines, listen) and the access log's path are replaced, each
checked to be there.

Streams pass through nginx as they are made; a session's second turn lands on
the replica that holds its KV cache (its cached_tokens says so); sessions spread
over both replicas; and with one replica stopped, every request still succeeds.

nginx missing: skipped (exit 77), which tests/run-suite counts as a failure;
under CI=true it fails at once. The README's test command installs nginx-light."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from llamad_server import Server, sse_events

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = os.path.join(HERE, "..", "conf", "nginx-llamad.conf")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

UPSTREAM_SERVER = re.compile(r"^(\s*server\s+)(\S+:\d+)(\s+[^;]*;.*)$")
LISTEN = re.compile(r"^(\s*listen\s+)(\S+)(;.*)$")
ACCESS_LOG = re.compile(r"^(\s*access_log\s+)(\S+)(\s+llamad;.*)$")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def shipped_conf_for(ports, listen_port, log_path):
    """The shipped file with only its addresses (and the access log) replaced:
    the upstream's server lines become one per daemon, with the file's
    parameters (max_fails, fail_timeout)."""
    with open(CONF) as f:
        lines = f.read().split("\n")
    out, servers, listens, logs = [], 0, 0, 0
    upstream = False
    for line in lines:
        if re.match(r"^\s*upstream\s+llamad\s*\{", line):
            upstream = True
        elif upstream and line.strip() == "}":
            upstream = False
        m = UPSTREAM_SERVER.match(line)
        if upstream and m:
            servers += 1
            if servers == 1:
                out += [m.group(1) + "127.0.0.1:%d" % p + m.group(3) for p in ports]
            continue
        m = LISTEN.match(line)
        if m:
            listens += 1
            line = m.group(1) + "127.0.0.1:%d" % listen_port + m.group(3)
        m = ACCESS_LOG.match(line)
        if m:
            logs += 1
            line = m.group(1) + log_path + m.group(3)
        out.append(line)
    assert servers >= 1 and listens == 1 and logs == 1, (servers, listens, logs)
    return "\n".join(out)


def top_conf(tmp, include, user_root):
    """nginx.conf in the foreground with every path in tmp, including the
    shipped file in its http block."""
    configure = subprocess.run([NGINX, "-V"], capture_output=True, text=True).stderr
    temp = ["client_body_temp_path %s/client_body;" % tmp, "proxy_temp_path %s/proxy;" % tmp]
    for module in ("fastcgi", "uwsgi", "scgi"):
        if "--without-http_%s_module" % module not in configure:
            temp.append("%s_temp_path %s/%s;" % (module, tmp, module))
    return "\n".join([
        "daemon off;",
        "master_process on;",
        "worker_processes 1;",
        "pid %s/nginx.pid;" % tmp,
        "error_log %s/error.log info;" % tmp,
        "user root;" if user_root else "",
        "events { worker_connections 1024; }",
        "http {",
        "    " + "\n    ".join(temp),
        "    include %s;" % include,
        "}",
        ""])


class Nginx:
    def __init__(self, ports):
        self.tmp = tempfile.mkdtemp(prefix="llamad-nginx-")
        self.port = free_port()
        self.log = os.path.join(self.tmp, "access.log")
        include = os.path.join(self.tmp, "nginx-llamad.conf")
        with open(include, "w") as f:
            f.write(shipped_conf_for(ports, self.port, self.log))
        self.conf = os.path.join(self.tmp, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(top_conf(self.tmp, include, os.geteuid() == 0))
        self.proc = None

    def __enter__(self):
        cmd = [NGINX, "-p", self.tmp, "-c", self.conf, "-e", os.path.join(self.tmp, "error.log")]
        test = subprocess.run(cmd + ["-t"], capture_output=True, text=True)
        assert test.returncode == 0, "nginx -t:\n" + test.stderr
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("nginx did not start:\n" + self.errors())
                time.sleep(0.05)

    def errors(self):
        try:
            with open(os.path.join(self.tmp, "error.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: the workers finish
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Via(Server):
    """A Server's HTTP helpers, aimed at nginx's port instead."""

    def __init__(self, port):
        super().__init__()
        self.host, self.port = "127.0.0.1", port


class ReplicasTest(unittest.TestCase):
    def test_replicas_behind_nginx(self):
        args = ("--max-connections-per-ip", "0", "--parallel", "4")
        with Server(*args) as a, Server(*args) as b, Nginx([a.port, b.port]) as ngx:
            self.daemons, self.via, self.ngx = [a, b], Via(ngx.port), ngx
            try:
                self.check_health()
                self.check_stream_arrives_as_made()
                on_b = self.check_sessions_keep_their_replica()
                self.check_one_replica_stopped(b, on_b)
            except AssertionError:
                print("nginx error log:\n" + ngx.errors(), file=sys.stderr)
                raise

    def check_health(self):
        self.assertEqual(self.via.get_json("/health"), (200, {"status": "ok"}))

    def check_stream_arrives_as_made(self):
        # A long stream: its first tokens must reach the client well before its
        # end, each read of the socket timed as it returns.
        body = {"prompt": "Once upon a time", "max_tokens": 400, "ignore_eos": True,
                "temperature": 0, "stream": True}
        t0 = time.monotonic()
        c, r = self.via.stream("/v1/completions", body, headers={"X-Session-Id": "stream-1"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Type"), "text/event-stream")
        stamps, text = [], ""
        for data in sse_events(r):
            if data is None:
                continue
            stamps.append(time.monotonic() - t0)
            if data != "[DONE]":
                text += json.loads(data)["choices"][0]["text"]
        c.close()
        self.assertEqual(len(stamps), 401)  # 400 tokens, then [DONE]
        first, done = stamps[0], stamps[-1]
        # Streamed as made: the first token came in the first half of the
        # stream's time, and the events came over many separate moments (a
        # buffering proxy hands over one lump at the end, or a few).
        self.assertLess(first, done / 2, (first, done))
        self.assertGreater(len(set(round(s, 3) for s in stamps)), 10, stamps[:20])
        # The same text as the daemons give directly.
        _, _, direct = self.daemons[0].post("/v1/completions", dict(body, stream=False))
        self.assertEqual(text, direct["choices"][0]["text"])

    def turn(self, sid, prompt, n=8):
        st, hdrs, res = self.via.post("/v1/completions",
                                      {"prompt": prompt, "max_tokens": n, "ignore_eos": True,
                                       "temperature": 0},
                                      headers={"X-Session-Id": sid})
        self.assertEqual(st, 200, (sid, res))
        return res

    def check_sessions_keep_their_replica(self):
        """Each session's second turn takes the first's KV cache: on the same
        replica. Returns the sessions replica b served."""
        a, b = self.daemons
        gen = "llamad_generation_tokens_total"
        before = [d.metrics() for d in self.daemons]
        on_b = []
        for i in range(32):
            sid = "sess-%d" % i
            prompt = "Tom %d had a ball." % i  # under 16 tokens: no shared prefix blocks
            b_before = b.metrics()[gen]
            first = self.turn(sid, prompt)
            second = self.turn(sid, prompt + first["choices"][0]["text"] + " Then")
            cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
            self.assertEqual(cached, first["usage"]["prompt_tokens"] + 8 - 1, sid)
            # Both turns' 8 tokens on b, or neither.
            on_b_now = b.metrics()[gen] - b_before
            self.assertIn(on_b_now, (0, 16), sid)
            if on_b_now:
                on_b.append(sid)
        after = [d.metrics() for d in self.daemons]
        made = [after[i][gen] - before[i][gen] for i in range(2)]
        cached = [after[i]["llamad_prompt_tokens_cached_total"]
                  - before[i]["llamad_prompt_tokens_cached_total"] for i in range(2)]
        # Sessions spread over both replicas, which both took turns from their caches.
        self.assertEqual(made[0] + made[1], 32 * 16, made)
        self.assertTrue(0 < len(on_b) < 32, made)
        self.assertEqual(made[1], 16 * len(on_b), made)
        self.assertGreater(cached[0], 0, cached)
        self.assertGreater(cached[1], 0, cached)
        return on_b

    def check_one_replica_stopped(self, b, on_b):
        b.signal(signal.SIGTERM)
        self.assertEqual(b.wait_exit(30), 0)
        # The sessions b held (their requests now go to a), new sessions, no
        # session at all, and streams: all answered.
        for sid in on_b[:8]:
            res = self.turn(sid, "Lily saw a cat.")
            self.assertEqual(res["usage"]["completion_tokens"], 8)
        for i in range(16):
            self.turn("after-%d" % i, "Sue %d ran home." % i)
        for i in range(4):
            st, _, res = self.via.post("/v1/chat/completions",
                                       {"messages": [{"role": "user", "content": "Hi %d" % i}],
                                        "max_tokens": 4})
            self.assertEqual(st, 200, res)
        for sid in on_b[:2] + ["after-stream"]:
            c, r = self.via.stream("/v1/completions",
                                   {"prompt": "Once", "max_tokens": 16, "ignore_eos": True,
                                    "stream": True, "stream_options": {"include_usage": True}},
                                   headers={"X-Session-Id": sid})
            self.assertEqual(r.status, 200)
            events = [e for e in sse_events(r) if e]
            c.close()
            self.assertEqual(events[-1], "[DONE]")
            self.assertEqual(json.loads(events[-2])["usage"]["completion_tokens"], 16)
        self.check_health()


if __name__ == "__main__":
    if not os.path.exists(NGINX):
        if os.environ.get("CI") == "true":
            sys.exit("FAIL: nginx is missing (apt-get install nginx-light)")
        print("SKIP: nginx is missing (apt-get install nginx-light)")
        sys.exit(77)
    unittest.main(verbosity=2)
