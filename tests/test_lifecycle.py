"""The daemon's life under load, through a real process: stopping (SIGINT, and
SIGTERM past the drain timeout) while thread-pool jobs are queued, and what it
tells systemd ($NOTIFY_SOCKET): READY, STATUS, STOPPING, and watchdog pings
that stop while the engine is stuck in a step."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from llamad_server import BUILD, Server

MKMODEL = os.path.join(BUILD, "llamad-mkmodel")
BUNDLED = os.path.join(os.environ["LLAMAD_MODELS_DIR"], "stories260K.gguf")
N_JOBS = 50
POOL_THREADS = 4  # libuv's: at most as many jobs run at once
TEXT = ("Once upon a time there was a little girl named Lily. " * 20000)[:1000000]


def assert_exited_cleanly(test, server, timeout=120):
    """Status 0 and no sanitizer report in the log."""
    status = server.wait_exit(timeout)
    time.sleep(0.1)  # the reader thread takes the last lines
    report = [l for l in server.log if "Sanitizer" in l or "runtime error" in l]
    test.assertEqual((status, report), (0, []), "\n".join(server.log[-40:]))


class Client(threading.Thread):
    """One POST /tokenize of 1 MB on its own connection; `status` is the answer's
    status and `body` its JSON, or status None when the connection closed
    without an answer."""

    def __init__(self, port):
        super().__init__(daemon=True)
        body = json.dumps({"content": TEXT}).encode()
        self.request = (b"POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                        % len(body)) + body
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=300)
        self.sent = threading.Event()
        self.status = self.body = None

    def run(self):
        data = b""
        try:
            self.sock.sendall(self.request)
            self.sent.set()
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
                head, sep, rest = data.partition(b"\r\n\r\n")
                length = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
                          if l.lower().startswith(b"content-length:")]
                if sep and length and len(rest) >= length[0]:
                    self.status = int(head.split(b" ")[1])
                    self.body = json.loads(rest[:length[0]])
                    break
        except OSError:
            pass  # reset: no answer
        finally:
            self.sent.set()
            self.sock.close()


def queue_jobs(test, server):
    """N_JOBS clients whose bodies are in and whose jobs wait for the thread
    pool (a backlog: most are still unanswered)."""
    clients = [Client(server.port) for _ in range(N_JOBS)]
    for c in clients:
        c.start()
    for c in clients:
        c.sent.wait(60)
    # Every connection was accepted before /health's (one loop, in order);
    # a moment more for MHD to read the last bodies.
    test.assertEqual(server.get_json("/health")[0], 200)
    time.sleep(0.5)
    answered = sum(c.status is not None for c in clients)
    test.assertLess(answered, N_JOBS // 2, "no backlog to stop under")
    return clients


class ShutdownUnderLoadTest(unittest.TestCase):
    def stop(self, server, *signals, closed=POOL_THREADS):
        """Sends signals to a daemon with a backlog of jobs; it exits cleanly.
        Every client is answered 200 or 503, but for at most `closed`, whose
        connections close unanswered (jobs that ran past the grace)."""
        clients = queue_jobs(self, server)
        for i, sig in enumerate(signals):
            if i > 0:  # two signals at once may reach the loop as one
                server.wait_log(r"draining")
            server.signal(sig)
        assert_exited_cleanly(self, server)
        for c in clients:
            c.join(30)
        statuses = [c.status for c in clients]
        self.assertEqual(set(statuses) - {200, 503, None}, set(), statuses)
        self.assertLessEqual(statuses.count(None), closed, statuses)
        return [c.body for c in clients if c.status == 503]

    def test_sigint_with_queued_tokenize_jobs(self):
        # The queued jobs are cancelled (503); the running ones finish, or are
        # cut off after the grace of 5 s.
        with Server() as s:
            refused = self.stop(s, signal.SIGINT)
            self.assertTrue(refused)

    def test_second_sigint_stops_while_jobs_run(self):
        # No grace: MHD closes every connection while jobs still run on the
        # thread pool, which then hold their requests and answer nobody.
        with Server() as s:
            self.stop(s, signal.SIGINT, signal.SIGINT, closed=N_JOBS)
            s.wait_log(r"request id=\d+ method=POST path=/tokenize status=499 .*client_gone=1")

    def test_sigterm_past_the_drain_timeout_with_queued_tokenize_jobs(self):
        with Server("--drain-timeout", "1") as s:
            refused = self.stop(s, signal.SIGTERM)
            self.assertTrue(refused, "the backlog outlasted the drain timeout")
            for b in refused:
                self.assertEqual(b["error"]["message"], "the server is shutting down")


class NotifySocket:
    """A fake systemd: an AF_UNIX datagram socket collecting (time, message)."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode()))

    def lines(self):
        with self.lock:
            return [l for _, m in self.messages for l in m.split("\n")]

    def pings(self, since=0.0):
        with self.lock:
            return [t for t, m in self.messages if m == "WATCHDOG=1" and t >= since]

    def wait_for(self, line, timeout=30):
        deadline = time.monotonic() + timeout
        while line not in self.lines():
            if time.monotonic() > deadline:
                raise AssertionError("no %r among %r" % (line, self.lines()))
            time.sleep(0.05)

    def close(self):
        self.sock.close()


def longest_gap(times):
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)


class NotifyTest(unittest.TestCase):
    WATCHDOG_USEC = 400000  # checked every 100 ms

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.notify = NotifySocket(self.tmp.name)
        self.env = {"NOTIFY_SOCKET": self.notify.path, "WATCHDOG_USEC": str(self.WATCHDOG_USEC)}

    def tearDown(self):
        self.notify.close()
        self.tmp.cleanup()

    def test_ready_status_watchdog_stopping(self):
        with Server(env=self.env) as s:
            self.notify.wait_for("READY=1")
            lines = self.notify.lines()
            self.assertIn("STATUS=loading the model", lines)
            self.assertIn("STATUS=serving stories260K.gguf", lines)
            start = time.monotonic()
            time.sleep(1.0)
            # Every 100 ms while idle; a busy machine may delay a few.
            self.assertGreaterEqual(len(self.notify.pings(start)), 4)
            s.signal(signal.SIGTERM)
            assert_exited_cleanly(self, s)
            lines = self.notify.lines()
            self.assertIn("STOPPING=1", lines)
            self.assertIn("STATUS=draining", lines)

    def test_no_pings_while_a_step_does_not_end(self):
        # A step the engine cannot end for longer than the watchdog interval is,
        # to the watchdog, a hung engine: one forward pass over a 1,000-token
        # prompt of a model with random weights on one thread (200 GFLOP: two
        # seconds or more on a 2020s core, many times the 400 ms interval; a
        # quarter of the model took 0.6 s). No test hook is needed. The loop
        # keeps answering meanwhile.
        model = os.path.join(self.tmp.name, "slow.gguf")
        subprocess.run([MKMODEL, "-o", model, "--vocab", BUNDLED, "--dim", "1024", "--layers",
                        "8", "--heads", "16", "--kv-heads", "16", "--ff", "2816", "--type", "F32"],
                       check=True, capture_output=True, timeout=120)
        with Server("--model", model, "--threads", "1", env=self.env) as s:
            self.notify.wait_for("READY=1")
            done = threading.Event()
            answer = []

            def generate():
                answer.append(s.post("/v1/completions", {"prompt": "Once upon a time " * 250,
                                                         "max_tokens": 1}, timeout=600))
                done.set()

            start = time.monotonic()
            threading.Thread(target=generate, daemon=True).start()
            while not done.wait(0.2):
                self.assertEqual(s.get_json("/health")[0], 200)
            end = time.monotonic()
            took = end - start
            self.assertEqual(answer[0][0], 200)
            self.assertGreater(took, 1.0, "the step was too short to tell")
            gap = longest_gap([start] + self.notify.pings(start) + [end])
            self.assertGreater(gap, max(0.5 * took, 0.8), (gap, took))
            after = time.monotonic()
            time.sleep(0.5)
            self.assertTrue(self.notify.pings(after), "the pings came back once the step ended")


if __name__ == "__main__":
    unittest.main(verbosity=2)
