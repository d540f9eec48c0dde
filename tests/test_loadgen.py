"""clients/loadgen.py: its HTTP reading, and whole runs against a real daemon."""
import json
import os
import subprocess
import sys
import unittest

from llamad_server import Server

CLIENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients")
LOADGEN = os.path.join(CLIENTS, "loadgen.py")
sys.path.insert(0, CLIENTS)
import loadgen  # noqa: E402

EVENTS = [b'data: {"n": %d}' % i for i in range(5)] + [b"data: [DONE]"]


def chunked_response(events):
    """A 200 response streaming each event as one chunk, as llamad sends them."""
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    body = b"".join(b"%x\r\n%s\r\n" % (len(e) + 2, e + b"\n\n") for e in events)
    return head + body + b"0\r\n\r\n"


class ResponseTest(unittest.TestCase):
    def feed_in_pieces(self, data, size):
        """Feeds data `size` bytes at a time, the n-th read at time n."""
        r = loadgen.Response()
        end = data.rfind(b"\r\n0\r\n") + 5 if b"chunked" in data else len(data)
        for n, at in enumerate(range(0, len(data), size)):
            r.feed(data[at:at + size], float(n))
            self.assertEqual(r.complete, at + size >= end, "complete at byte %d" % (at + size))
        return r

    def test_events_whatever_the_reads(self):
        data = chunked_response(EVENTS)
        for size in (1, 2, 3, 7, 64, len(data)):
            r = self.feed_in_pieces(data, size)
            self.assertEqual(r.status, 200)
            self.assertTrue(r.complete, size)
            self.assertEqual([e for _, e in r.events], EVENTS, size)

    def test_each_event_stamped_by_the_read_that_completed_it(self):
        data = chunked_response(EVENTS)
        r = self.feed_in_pieces(data, 1)
        for t, event in r.events:
            # the read at time t (byte t) is the second newline ending the event
            self.assertEqual(data[:int(t) + 1].count(event + b"\n\n"), 1)
            self.assertEqual(data[int(t) - 1:int(t) + 1], b"\n\n")

    def test_error_with_a_length_completes(self):
        body = b'{"error": {"message": "queue full"}}'
        data = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body), body)
        r = self.feed_in_pieces(data, 5)
        self.assertEqual(r.status, 503)
        self.assertTrue(r.complete)
        self.assertEqual(r.body, body)


def loadgen_rows(server, *args):
    out = subprocess.run([sys.executable, LOADGEN, "--url", "http://127.0.0.1:%d" % server.port,
                          "--json", "--pid", str(server.proc.pid)] + list(args),
                         capture_output=True, timeout=300)
    if out.returncode != 0:
        raise AssertionError(out.stderr.decode())
    return [json.loads(line) for line in out.stdout.decode().splitlines()]


class RunTest(unittest.TestCase):
    def test_streams(self):
        with Server("--parallel", "4") as s:
            rows = loadgen_rows(s, "--streams", "1,3", "--prompt-tokens", "16",
                                "--max-tokens", "8", "--repeat", "2")
        self.assertEqual([r["streams"] for r in rows], [1, 3])
        for r in rows:
            self.assertEqual(r["tokens"], 8 * r["streams"])
            self.assertGreater(r["tokens_per_second"], 0)
            self.assertGreater(r["ttft_p50_ms"], 0)
            self.assertLessEqual(r["ttft_p50_ms"], r["ttft_p99_ms"])
            self.assertGreaterEqual(r["itl_p50_ms"], 0)  # the bundled model is that fast
            self.assertLessEqual(r["itl_p50_ms"], r["itl_p99_ms"])
            self.assertGreater(r["peak_rss_mb"], 0)

    def test_sessions(self):
        with Server("--parallel", "4") as s:
            (row,) = loadgen_rows(s, "--sessions", "--streams", "2", "--system-tokens", "40",
                                  "--user-tokens", "6", "--max-tokens", "5")
        # turn 1 is the system prompt and a message; turn 2 repeats it and the
        # answer (all cached but the answer's last token) and adds a message
        self.assertEqual(row["turn1_prompt_tokens"], 46)
        self.assertEqual(row["turn2_prompt_tokens"], 46 + 5 + 6)
        self.assertEqual(row["turn2_cached_tokens"], 46 + 5 - 1)
        self.assertGreater(row["new_session_cached_tokens"], 0)  # the system prompt's blocks
        self.assertLessEqual(row["new_session_cached_tokens"], 40)


if __name__ == "__main__":
    unittest.main(verbosity=2)
