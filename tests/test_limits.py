"""What one client can make the daemon hold is bounded by its configuration:
memory for a request's sampling window and its /tokenize answer, bodies over
max_body_size (refused before they are read), requests without a key (refused
before their body is read), connections from one address, and the time a
request may take to arrive."""
import http.client
import json
import socket
import time
import unittest

from llamad_server import Server, read_answer


def proc_status(server, field):
    """A /proc/PID/status field of the daemon, in kB."""
    with open("/proc/%d/status" % server.proc.pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s" % field)


def connect(port, source="127.0.0.1"):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s



def status_of(answer):
    return int(answer.split(b" ", 2)[1])


def body_of(answer):
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


def closed_within(s, seconds):
    """Whether the daemon closes s (or resets it) within seconds."""
    s.settimeout(seconds)
    try:
        while s.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Shared:
    server = None


def setUpModule():
    Shared.server = Server().__enter__()


def tearDownModule():
    Shared.server.__exit__(None, None, None)


class MemoryTest(unittest.TestCase):
    def setUp(self):
        self.s = Shared.server

    def test_huge_repeat_last_n_is_bounded_by_the_context(self):
        # 2^31-1 positions of penalty window were a ring of 8 GiB, asked for at once.
        before = proc_status(self.s, "VmPeak")
        for path, body in (("/completion", {"prompt": "Once", "n_predict": 8,
                                            "repeat_last_n": 2**31 - 1, "repeat_penalty": 1.1}),
                           ("/v1/completions", {"prompt": "Once", "max_tokens": 8,
                                                "penalty_last_n": 2**31 - 1,
                                                "frequency_penalty": 0.5})):
            status, _, res = self.s.post(path, body)
            self.assertEqual(status, 200, res)
        grown = proc_status(self.s, "VmPeak") - before
        self.assertLess(grown, 1 << 20, "address space grew by %d kB" % grown)  # < 1 GiB

    def test_tokenize_a_megabyte_of_emoji_with_pieces(self):
        # Each emoji is four byte tokens of the bundled vocabulary: ~1M tokens,
        # which as a JSON node per field were ~400 MB.
        content = "\U0001F600" * 262000
        body = json.dumps({"content": content, "with_pieces": True},
                          ensure_ascii=False).encode()
        self.assertLessEqual(len(body), 1 << 20)
        before = proc_status(self.s, "VmHWM")
        status, _, data = self.s.request("POST", "/tokenize", body, timeout=120)
        self.assertEqual(status, 200)
        grown = proc_status(self.s, "VmHWM") - before
        tokens = json.loads(data)["tokens"]
        self.assertGreaterEqual(len(tokens), 4 * 262000)
        self.assertEqual(tokens[1]["piece"], [240])  # a byte of U+1F600, not whole UTF-8
        self.assertLess(grown, 200 << 10, "peak RSS grew by %d kB" % grown)  # < 200 MB
        self.assertEqual(self.s.get_json("/health")[0], 200)


class BodyTest(unittest.TestCase):
    def setUp(self):
        self.s = Shared.server

    def test_content_length_over_the_limit_gets_413_before_the_body(self):
        s = connect(self.s.port)
        t0 = time.monotonic()
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n")
        s.settimeout(1.0)
        answer = read_answer(s)  # not one byte of the body was sent
        s.close()
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(status_of(answer), 413)
        self.assertIn("larger than 1048576 bytes", body_of(answer)["error"]["message"])

    def test_chunked_body_is_cut_at_the_limit(self):
        s = connect(self.s.port)
        s.sendall(b"POST /tokenize HTTP/1.1\r\nHost: localhost\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
        try:
            for _ in range(20):  # 1.25 MiB
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon stopped reading at the limit
        answer = read_answer(s)
        s.close()
        self.assertEqual(status_of(answer), 413)
        self.assertIn("error", body_of(answer))
        self.assertEqual(self.s.get_json("/health")[0], 200)

    def test_chunked_body_within_the_limit(self):
        s = connect(self.s.port)
        body = json.dumps({"content": "Once upon a time"}).encode()
        s.sendall(b"POST /tokenize HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        answer = read_answer(s)
        s.close()
        self.assertEqual(status_of(answer), 200)
        self.assertGreater(len(body_of(answer)["tokens"]), 3)

    def test_without_a_key_401_before_the_body(self):
        head = (b"POST /v1/completions HTTP/1.1\r\nHost: localhost\r\n%s"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n")
        body = json.dumps({"prompt": "Once", "max_tokens": 2}).encode()
        with Server("--api-key", "sekrit-key-1") as srv:
            for auth in (b"", b"Authorization: Bearer wrong\r\n"):
                s = connect(srv.port)
                s.sendall(head % (auth, len(body)))
                s.settimeout(1.0)
                answer = read_answer(s)
                s.close()
                self.assertEqual(status_of(answer), 401)
            # With the key, the daemon waits for the body.
            s = connect(srv.port)
            s.sendall(head % (b"Authorization: Bearer sekrit-key-1\r\nConnection: close\r\n",
                              len(body)))
            s.settimeout(0.5)
            self.assertRaises(socket.timeout, s.recv, 1)
            s.settimeout(30)
            s.sendall(body)
            answer = read_answer(s)
            s.close()
            self.assertEqual(status_of(answer), 200)


class ConnectionTest(unittest.TestCase):
    def test_idle_connections_from_one_address_leave_others_served(self):
        # All of 127/8 is loopback: the idle clients come from 127.0.0.2, the new one
        # from 127.0.0.1. Default limits: 64 per address, 1024 in all.
        with Server() as srv:
            idle = [connect(srv.port, "127.0.0.2") for _ in range(1000)]
            try:
                t0 = time.monotonic()
                c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=1.0)
                c.request("GET", "/health")
                r = c.getresponse()
                self.assertEqual((r.status, json.loads(r.read())), (200, {"status": "ok"}))
                c.close()
                self.assertLess(time.monotonic() - t0, 1.0)
                open_ones = sum(not closed_within(s, 0.01) for s in idle)
                self.assertEqual(open_ones, 64)
            finally:
                for s in idle:
                    s.close()
            srv.wait_log(r"connection limit reached .*: 1 connection\(s\) refused")
            self.assertEqual(sum("connection limit" in line for line in srv.log), 1)

    def test_a_request_must_arrive_within_request_timeout(self):
        with Server("--request-timeout", "1") as srv:
            silent = connect(srv.port)
            half_headers = connect(srv.port)
            half_headers.sendall(b"POST /tokenize HTTP/1.1\r\nHost: localhost\r\n")
            trickle = connect(srv.port)
            trickle.sendall(b"POST /tokenize HTTP/1.1\r\nHost: localhost\r\n"
                            b"Content-Length: 100\r\n\r\n")
            t0 = time.monotonic()
            try:
                for _ in range(50):  # a byte every 0.1 s keeps no idle timeout from firing
                    trickle.sendall(b" ")
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.assertLess(time.monotonic() - t0, 2.5)
            for s in (silent, half_headers, trickle):
                self.assertTrue(closed_within(s, 2.0))
                s.close()
            self.assertEqual(srv.get_json("/health")[0], 200)


if __name__ == "__main__":
    unittest.main()
