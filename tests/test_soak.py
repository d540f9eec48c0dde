"""A soak: 10,000 mixed requests from concurrent clients against one daemon
(streamed, whole, cancelled mid-stream, clients that hang up before the answer,
chat sessions taken up again, tokenize and detokenize, kept-alive connections,
refused bodies, the GET endpoints). None may get a 5xx; afterwards the daemon
holds the file descriptors it held after the warm-up, and its resident size is
within 5 % of that after the warm-up (of 10,000 requests more). Prints the
figures.

Release build only (tests/run-suite leaves the suite `soak` out of the
sanitizer builds, where it would take many times as long)."""
import json
import os
import random
import socket
import threading
import time
import unittest

from llamad_server import Server, sse_events

REQUESTS = 10000
WARMUP = 10000
CLIENTS = 8
SESSIONS = 24
WORDS = ("once upon a time there was a little girl named lily she liked to play in the park "
         "with her dog and her friend tom one day they found a big red ball").split()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Client:
    """One client thread's requests; each returns the HTTP status it got (None:
    the client left before an answer)."""

    def __init__(self, server, seed):
        self.s = server
        self.rng = random.Random(seed)

    def text(self, n):
        return " ".join(self.rng.choice(WORDS) for _ in range(n))

    def whole(self):
        path = self.rng.choice(["/v1/completions", "/completion"])
        body = {"prompt": self.text(self.rng.randint(1, 40)), "max_tokens": 8,
                "temperature": self.rng.choice([0, 0.8]), "seed": 7}
        st, _, res = self.s.post(path, body)
        if st == 200:
            assert res.get("usage", res.get("timings")), res
        return st

    def streamed(self):
        body = {"prompt": self.text(self.rng.randint(1, 40)), "max_tokens": 8, "stream": True}
        c, r = self.s.stream("/v1/completions", body)
        events = [e for e in sse_events(r) if e is not None]
        c.close()
        assert r.status != 200 or events[-1] == "[DONE]", events[-3:]
        return r.status

    def cancelled(self):
        """Reads the first event of a long stream and hangs up."""
        body = {"prompt": self.text(5), "max_tokens": 400, "stream": True, "ignore_eos": True}
        c, r = self.s.stream("/v1/completions", body)
        if r.status == 200:
            next(sse_events(r))
        c.close()
        return r.status

    def hang_up(self):
        """Sends a whole request and closes the socket before any answer."""
        body = json.dumps({"prompt": self.text(20), "max_tokens": 64}).encode()
        sock = socket.create_connection(("127.0.0.1", self.s.port), timeout=30)
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        sock.close()
        return None

    def session(self):
        """A chat turn of one of a few sessions, its history growing up to a point."""
        sid = "soak-%d" % self.rng.randrange(SESSIONS)
        turns = self.rng.randint(1, 6)
        msgs = []
        for t in range(turns):
            msgs.append({"role": "user", "content": "turn %d of %s" % (t, sid)})
            if t < turns - 1:
                msgs.append({"role": "assistant", "content": "ok %d" % t})
        body = {"messages": msgs, "max_tokens": 6, "temperature": 0, "session_id": sid,
                "stream": self.rng.random() < 0.5}
        if not body["stream"]:
            return self.s.post("/v1/chat/completions", body)[0]
        c, r = self.s.stream("/v1/chat/completions", body)
        list(sse_events(r))
        c.close()
        return r.status

    def text_routes(self):
        """/tokenize then /detokenize of its tokens, on one kept-alive connection."""
        c = self.s.conn()
        text = self.text(self.rng.randint(1, 200))
        c.request("POST", "/tokenize", json.dumps({"content": text}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        tokens = json.loads(r.read())["tokens"]
        c.request("POST", "/detokenize", json.dumps({"tokens": tokens}),
                  {"Content-Type": "application/json"})
        r2 = c.getresponse()
        back = json.loads(r2.read())["content"]
        c.close()
        assert back.strip() == text, (back, text)
        return max(r.status, r2.status)

    def refused(self):
        st, _, res = self.s.post("/v1/completions", {"prompt": "x", "max_tokens": "lots"})
        assert st == 400, res
        return st

    def gets(self):
        return self.s.request("GET", self.rng.choice(["/health", "/v1/models", "/metrics"]))[0]

    def one(self):
        kinds = [(self.whole, 20), (self.streamed, 20), (self.cancelled, 8), (self.hang_up, 6),
                 (self.session, 16), (self.text_routes, 14), (self.refused, 6), (self.gets, 10)]
        pick = self.rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        return pick.__name__, pick()


def run_clients(server, n, seed):
    """n requests from CLIENTS threads: {(kind, status): count}."""
    left = [n]
    lock = threading.Lock()
    tally = {}
    errors = []

    def client(i):
        c = Client(server, seed * 100 + i)
        while True:
            with lock:
                if left[0] == 0 or errors:
                    return
                left[0] -= 1
            try:
                kind, status = c.one()
            except Exception as e:  # noqa: BLE001 - reported with the kind of request
                with lock:
                    errors.append(repr(e))
                return
            with lock:
                tally[(kind, status)] = tally.get((kind, status), 0) + 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return tally


def settled_fds(pid, want=None, timeout=15):
    """The daemon's descriptor count once its connections have closed: stable
    for a moment (or equal to want)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        n = fd_count(pid)
        if n == want or (want is None and n == last):
            return n
        last = n
        time.sleep(0.3)
    return fd_count(pid)


class SoakTest(unittest.TestCase):
    def test_soak(self):
        with Server("--parallel", "4") as s:
            pid = s.proc.pid
            # Warm-up: distinct long prompts enough to have touched every block of
            # the KV cache once, then every kind of request until the allocator's
            # arenas have settled (measured: the resident size grows by 2.3 % in
            # the 10,000 requests after 5,000 and by 0.4 % in those after 10,000).
            filler = Client(s, 1)
            for i in range(24):
                st, _, res = s.post("/v1/completions", {"prompt": "%d %s" % (i, filler.text(300)),
                                                        "max_tokens": 16})
                self.assertEqual(st, 200, res)
            warm_tally = run_clients(s, WARMUP, seed=1)
            fds_warm = settled_fds(pid)
            rss_warm = rss_kb(pid)

            start = time.monotonic()
            tally = run_clients(s, REQUESTS, seed=2)
            seconds = time.monotonic() - start

            fds_end = settled_fds(pid, want=fds_warm)
            rss_end = rss_kb(pid)
            self.assertEqual(s.get_json("/health"), (200, {"status": "ok"}))
            m = s.metrics()
            server_errors = {k: v for k, v in list(tally.items()) + list(warm_tally.items())
                             if k[1] is not None and k[1] >= 500}
            by_kind = {}
            for (kind, status), count in sorted(tally.items(), key=str):
                by_kind.setdefault(kind, []).append("%s x%d" % (status, count))
            print("\nsoak: %d requests in %.1f s (%.0f/s) from %d clients, after a warm-up "
                  "of %d" % (REQUESTS, seconds, REQUESTS / seconds, CLIENTS, WARMUP))
            print("soak: " + "; ".join("%s %s" % (k, ", ".join(v)) for k, v in by_kind.items()))
            print("soak: open descriptors %d after the warm-up, %d at the end" % (fds_warm,
                                                                                  fds_end))
            print("soak: VmRSS %d kB after the warm-up, %d kB at the end (%+.2f %%)"
                  % (rss_warm, rss_end, 100.0 * (rss_end - rss_warm) / rss_warm))
            print("soak: the daemon counted %d requests answered 5xx"
                  % sum(v for k, v in m.items() if 'code="5' in k))
            self.assertEqual(server_errors, {})
            self.assertEqual(sum(v for k, v in m.items() if 'code="5' in k), 0)
            self.assertEqual(fds_end, fds_warm)
            self.assertLessEqual(abs(rss_end - rss_warm), 0.05 * rss_warm)


if __name__ == "__main__":
    unittest.main(verbosity=2)
