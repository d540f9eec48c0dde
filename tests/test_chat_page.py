"""The chat page's files over real HTTP: what GET and HEAD answer on /, /chat.js
and /chat.css (types, the Content-Security-Policy and the other security
headers, ETag and 304), that they need no API key while the API does, that the
HTML holds no inline script or style the policy would block, and that other
paths and methods are refused as before. tests/test_browser.py runs the page."""
import re
import unittest

from llamad_server import Server

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
FILES = {"/": "text/html; charset=utf-8", "/chat.css": "text/css; charset=utf-8",
         "/chat.js": "text/javascript; charset=utf-8"}
KEY = "k-page"


class Shared:
    plain = None
    keyed = None


def setUpModule():
    Shared.plain = Server().__enter__()
    Shared.keyed = Server("--api-key", KEY).__enter__()


def tearDownModule():
    Shared.plain.__exit__(None, None, None)
    Shared.keyed.__exit__(None, None, None)


class ChatPageTest(unittest.TestCase):
    def setUp(self):
        self.s = Shared.plain

    def check_headers(self, hdrs):
        self.assertEqual(hdrs["content-security-policy"], CSP)
        self.assertEqual(hdrs["x-content-type-options"], "nosniff")
        self.assertEqual(hdrs["referrer-policy"], "no-referrer")
        self.assertEqual(hdrs["cache-control"], "no-cache")
        self.assertRegex(hdrs["etag"], r'^"[0-9a-f]{20}"$')

    def test_get_and_head(self):
        for path, ctype in FILES.items():
            st, hdrs, body = self.s.request("GET", path)
            self.assertEqual(st, 200, path)
            self.assertEqual(hdrs["content-type"], ctype)
            self.check_headers(hdrs)
            self.assertEqual(int(hdrs["content-length"]), len(body))
            self.assertGreater(len(body), 500)
            body.decode("utf-8")
            st, head, hbody = self.s.request("HEAD", path)
            self.assertEqual(st, 200, path)
            self.assertEqual(hbody, b"")
            for name in ("content-type", "content-length", "etag", "content-security-policy"):
                self.assertEqual(head[name], hdrs[name], name)
        st, hdrs, _ = self.s.request("GET", "/?from=bookmark")
        self.assertEqual(st, 200)
        self.assertEqual(hdrs["content-type"], FILES["/"])

    def test_etag_and_304(self):
        _, hdrs, _ = self.s.request("GET", "/chat.js")
        etag = hdrs["etag"]
        _, other, _ = self.s.request("GET", "/")
        self.assertNotEqual(other["etag"], etag)  # each file its own
        for value in (etag, "W/" + etag, '"nope", ' + etag, etag + ', "nope"', "*"):
            st, h304, body = self.s.request("GET", "/chat.js", None, {"If-None-Match": value})
            self.assertEqual(st, 304, value)
            self.assertEqual(body, b"")
            self.assertEqual(h304["etag"], etag)
            self.check_headers(h304)
        for value in ('"nope"', etag[:-2] + '"', etag[1:]):
            st, _, body = self.s.request("GET", "/chat.js", None, {"If-None-Match": value})
            self.assertEqual(st, 200, value)
            self.assertGreater(len(body), 500)

    def test_no_inline_script_or_style(self):
        """The policy allows no inline code: the page loads its own two files."""
        _, _, body = self.s.request("GET", "/")
        html = body.decode()
        self.assertIn('<script src="/chat.js" defer></script>', html)
        self.assertIn('<link rel="stylesheet" href="/chat.css">', html)
        self.assertEqual(len(re.findall(r"<script\b", html)), 1)
        self.assertNotIn("<style", html)
        self.assertIsNone(re.search(r"\s(on\w+|style)\s*=", html))
        self.assertIsNone(re.search(r"(src|href)=\"(https?:)?//", html))  # nothing external
        _, _, js = self.s.request("GET", "/chat.js")
        self.assertNotIn(b"innerHTML", js)
        self.assertNotIn(b"eval(", js)

    def test_other_paths_and_methods(self):
        for path in ("/index.html", "/favicon.ico", "/chat.js/", "/chat", "//"):
            st, hdrs, body = self.s.request("GET", path)
            self.assertEqual(st, 404, path)
            self.assertNotIn("content-security-policy", hdrs)
            self.assertIn(b"no such endpoint", body)
        for method in ("POST", "PUT", "DELETE"):
            st, hdrs, _ = self.s.request(method, "/", b"{}")
            self.assertEqual(st, 405, method)
            self.assertEqual(hdrs["allow"], "GET, HEAD")
        st, hdrs, _ = self.s.request("HEAD", "/health")  # unchanged: GET only
        self.assertEqual(st, 405)

    def test_cross_site(self):
        port = self.s.port
        # A link from another site opens the page (navigations carry no Origin) ...
        st, _, _ = self.s.request("GET", "/", None, {"Sec-Fetch-Site": "cross-site",
                                                      "Sec-Fetch-Mode": "navigate"})
        self.assertEqual(st, 200)
        # ... but another site's script may not read it, nor the API
        st, _, _ = self.s.request("GET", "/", None, {"Origin": "http://evil.example",
                                                      "Sec-Fetch-Site": "cross-site"})
        self.assertEqual(st, 403)
        st, _, _ = self.s.request("GET", "/v1/models", None, {"Sec-Fetch-Site": "cross-site"})
        self.assertEqual(st, 403)
        # DNS rebinding gets nothing
        st, _, _ = self.s.request("GET", "/", None, {"Host": "evil.example:%d" % port})
        self.assertEqual(st, 421)
        # the page's own calls: same origin
        st, _, _ = self.s.request("GET", "/v1/models", None, {
            "Origin": "http://127.0.0.1:%d" % port, "Sec-Fetch-Site": "same-origin"})
        self.assertEqual(st, 200)

    def test_page_needs_no_key(self):
        k = Shared.keyed
        for path in FILES:
            st, hdrs, _ = k.request("GET", path)
            self.assertEqual(st, 200, path)
            self.check_headers(hdrs)
        st, hdrs, _ = k.request("GET", "/v1/models")
        self.assertEqual(st, 401)
        self.assertEqual(hdrs["www-authenticate"], "Bearer")
        st, _, _ = k.request("GET", "/v1/models", None, {"Authorization": "Bearer " + KEY})
        self.assertEqual(st, 200)
        st, _, _ = k.request("GET", "/metrics")
        self.assertEqual(st, 401)


if __name__ == "__main__":
    unittest.main(verbosity=2)
