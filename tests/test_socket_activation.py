"""Socket activation: the daemon serves a listening socket handed to it the
systemd way (descriptor 3, LISTEN_FDS, LISTEN_PID), takes its address for the
loopback Host check instead of --host, and a connection made while no daemon
runs (before the first, between a stop and the next start) waits in the queue
and is answered."""
import json
import socket
import time
import unittest

from llamad_server import Server, read_answer

BODY = {"prompt": "Once upon a time", "max_tokens": 4, "temperature": 0}
# A documentation address no interface has: binding it would fail, so a daemon
# that serves at all serves the socket it was handed.
UNBINDABLE = ("--host", "192.0.2.1", "--port", "9")


def early_request(port):
    """A connection and a request sent while no daemon accepts it yet."""
    c = socket.create_connection(("127.0.0.1", port), timeout=60)
    c.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    return c


class SocketActivationTest(unittest.TestCase):
    def setUp(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]

    def tearDown(self):
        self.listener.close()

    def serve(self):
        return Server(*UNBINDABLE, listen_socket=self.listener)

    def test_serves_the_passed_socket(self):
        early = early_request(self.port)
        time.sleep(0.2)
        with self.serve() as s:
            self.assertEqual(s.port, self.port)
            s.wait_log(r"a socket from systemd")
            # /health may answer while the model still loads: an answer is the point.
            answer = read_answer(early)
            early.close()
            self.assertRegex(answer, rb"^HTTP/1\.1 (200|503) ")
            self.assertIn(b'"status"', answer)
            status, _, body = s.post("/v1/completions", BODY)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["usage"]["completion_tokens"], 4)
            # The socket is on loopback, whatever --host says: a foreign Host gets 421.
            status, _, body = s.request("GET", "/v1/models", None, {"Host": "rebind.example"})
            self.assertEqual(status, 421, body)
            self.assertEqual(json.loads(body)["error"]["code"], "misdirected_request")

    def test_ipv6_loopback(self):
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as listener:
            listener.bind(("::1", 0))
            listener.listen(8)
            with Server(*UNBINDABLE, listen_socket=listener) as s:
                self.assertEqual((s.host, s.port), ("::1", listener.getsockname()[1]))
                status, _, body = s.request("GET", "/v1/models", None, {"Host": "[::1]"})
                self.assertEqual(status, 200, body)
                status, _, body = s.request("GET", "/v1/models", None, {"Host": "rebind.example"})
                self.assertEqual(status, 421, body)

    def test_connections_wait_across_a_restart(self):
        with self.serve() as s:
            self.assertEqual(s.post("/v1/completions", BODY)[0], 200)
        # The daemon is gone, the socket (held here, as systemd holds it) is not.
        waiting = early_request(self.port)
        time.sleep(0.2)
        with self.serve() as s:
            s.wait_log(r"\bready$")
            self.assertRegex(read_answer(waiting), rb"^HTTP/1\.1 (200|503) ")
            waiting.close()
            self.assertEqual(s.post("/v1/completions", BODY)[0], 200)

    def test_variables_for_another_process_are_ignored(self):
        # LISTEN_PID names another process: descriptor 3 is not the daemon's.
        with Server(env={"LISTEN_FDS": "1", "LISTEN_PID": "1"}) as s:
            self.assertNotEqual(s.port, self.port)
            self.assertEqual(s.post("/v1/completions", BODY)[0], 200)

    def test_more_than_one_socket_is_refused(self):
        with self.assertRaisesRegex(AssertionError, "passed 2 sockets"):
            with Server(listen_socket=self.listener, env={"LISTEN_FDS": "2"}):
                pass


if __name__ == "__main__":
    unittest.main()
