"""Cross-site requests through real HTTP on a loopback port: another origin's
page gets 403 unless allowed_origins lists it (then CORS, preflight included),
programs that send no Origin keep working, and a Host other than a loopback
name gets 421 (DNS rebinding)."""
import json
import unittest

from llamad_server import Server

BODY = {"prompt": "Once upon a time", "max_tokens": 2, "temperature": 0}
APP = "https://app.example"


class Shared:
    plain = None  # no allowed_origins
    cors = None   # allowed_origins and an API key


def setUpModule():
    Shared.plain = Server().__enter__()
    Shared.cors = Server("--allowed-origins", APP + ", http://localhost:3000",
                         "--api-key", "k-origin").__enter__()


def tearDownModule():
    Shared.plain.__exit__(None, None, None)
    Shared.cors.__exit__(None, None, None)


def post(server, headers, body=None):
    data = json.dumps(body or BODY).encode()
    return server.request("POST", "/v1/completions", data, headers)


class NoAllowedOriginsTest(unittest.TestCase):
    def setUp(self):
        self.s = Shared.plain

    def expect_error(self, status, code, headers, path="/v1/completions"):
        if path == "/v1/completions":
            st, hdrs, data = post(self.s, headers)
        else:
            st, hdrs, data = self.s.request("GET", path, None, headers)
        self.assertEqual(st, status, data)
        self.assertEqual(json.loads(data)["error"]["code"], code)
        self.assertNotIn("access-control-allow-origin", hdrs)

    def test_programs_without_origin(self):
        # curl -d sends a form Content-Type, or none at all.
        for ct in ({}, {"Content-Type": "application/x-www-form-urlencoded"},
                   {"Content-Type": "application/json"}):
            st, hdrs, data = post(self.s, ct)
            self.assertEqual(st, 200, data)
            self.assertNotIn("vary", hdrs)

    def test_same_origin(self):
        port = self.s.port
        for host, origin in (("127.0.0.1:%d" % port, "http://127.0.0.1:%d" % port),
                             ("localhost:%d" % port, "http://LOCALHOST:%d" % port)):
            st, _, data = post(self.s, {"Host": host, "Origin": origin,
                                        "Sec-Fetch-Site": "same-origin"})
            self.assertEqual(st, 200, data)

    def test_cross_origin_is_forbidden(self):
        port = self.s.port
        for origin in ("http://evil.example", "http://127.0.0.1:%d" % (port + 1),
                       "https://127.0.0.1:%d" % port, "null"):
            self.expect_error(403, "cross_origin", {"Origin": origin})
        self.expect_error(403, "cross_origin", {"Origin": "http://evil.example"}, "/v1/models")
        # Preflights of an unlisted origin too.
        st, hdrs, _ = self.s.request("OPTIONS", "/v1/completions", None,
                                     {"Origin": "http://evil.example",
                                      "Access-Control-Request-Method": "POST"})
        self.assertEqual(st, 403)
        self.assertNotIn("access-control-allow-origin", hdrs)

    def test_sec_fetch_site_cross_site(self):
        self.expect_error(403, "cross_origin", {"Sec-Fetch-Site": "cross-site"})
        for site in ("same-origin", "none"):
            self.assertEqual(post(self.s, {"Sec-Fetch-Site": site})[0], 200)

    def test_host_must_be_loopback(self):
        port = self.s.port
        for host in ("evil.example", "evil.example:%d" % port, "10.0.0.1:%d" % port,
                     "localhost.evil.example:%d" % port):
            self.expect_error(421, "misdirected_request", {"Host": host})
        self.expect_error(421, "misdirected_request", {"Host": "evil.example"}, "/health")
        for host in ("localhost:%d" % port, "localhost", "127.0.0.1", "127.0.0.2:%d" % port,
                     "[::1]:%d" % port):
            st, _, data = post(self.s, {"Host": host})
            self.assertEqual(st, 200, (host, data))


class AllowedOriginsTest(unittest.TestCase):
    def setUp(self):
        self.s = Shared.cors
        self.auth = {"Authorization": "Bearer k-origin"}

    def test_listed_origin_gets_cors_headers(self):
        st, hdrs, data = post(self.s, dict(self.auth, Origin=APP, **{"Sec-Fetch-Site": "cross-site"}))
        self.assertEqual(st, 200, data)
        self.assertEqual(hdrs["access-control-allow-origin"], APP)
        self.assertEqual(hdrs["vary"], "Origin")
        # Streams and errors too: the page may read why it failed.
        c, r = self.s.stream("/v1/completions", dict(BODY, stream=True),
                             dict(self.auth, Origin="http://localhost:3000"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Access-Control-Allow-Origin"), "http://localhost:3000")
        r.read()
        c.close()
        st, hdrs, _ = post(self.s, {"Origin": APP})
        self.assertEqual(st, 401)
        self.assertEqual(hdrs["access-control-allow-origin"], APP)

    def test_preflight(self):
        st, hdrs, data = self.s.request("OPTIONS", "/v1/chat/completions", None, {
            "Origin": APP, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        self.assertEqual(st, 204, data)  # no key asked: browsers send none with it
        self.assertEqual(data, b"")
        self.assertEqual(hdrs["access-control-allow-origin"], APP)
        self.assertIn("POST", hdrs["access-control-allow-methods"])
        allowed = [h.strip().lower() for h in hdrs["access-control-allow-headers"].split(",")]
        self.assertIn("authorization", allowed)
        self.assertIn("content-type", allowed)
        self.assertGreater(int(hdrs["access-control-max-age"]), 0)
        self.assertEqual(hdrs["vary"], "Origin")
        # The path must exist; OPTIONS without an Origin is no preflight.
        self.assertEqual(self.s.request("OPTIONS", "/nope", None, {"Origin": APP})[0], 404)
        self.assertEqual(self.s.request("OPTIONS", "/v1/completions", None, self.auth)[0], 405)

    def test_unlisted_origin_still_forbidden(self):
        for origin in ("https://evil.example", "http://app.example", "https://app.example:444"):
            st, hdrs, data = post(self.s, dict(self.auth, Origin=origin))
            self.assertEqual(st, 403, data)
            self.assertNotIn("access-control-allow-origin", hdrs)
            self.assertEqual(hdrs["vary"], "Origin")
        self.assertEqual(post(self.s, dict(self.auth, **{"Sec-Fetch-Site": "cross-site"}))[0], 403)
        self.assertEqual(post(self.s, self.auth)[0], 200)


if __name__ == "__main__":
    unittest.main()
