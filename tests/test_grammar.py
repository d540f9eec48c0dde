"""Grammar-constrained generation through HTTP, on the synthetic synth256-Q8_0
of ../shared (random weights, a 32k SentencePiece vocabulary): at temperature 1
its output is noise, so only the grammar makes it valid. `grammar` on
/completion, /v1/completions and /v1/chat/completions, streamed and not, each
output held to the grammar; grammars that do not parse get a 400 naming line
and column; hostile grammars get a 400 or 413 and the daemon goes on."""
import json
import re
import unittest

from llamad_server import Server, raw_socket, read_answer, shared_model, sse_events

YES_NO = 'root ::= "yes" | "no"'

# A small JSON object of a fixed shape.
PERSON = r'''
root   ::= "{" ws "\"name\":" ws name "," ws "\"age\":" ws age ws "}"
name   ::= "\"" [A-Za-z ]{1,12} "\""
age    ::= [1-9] [0-9]{0,2}
ws     ::= [ ]?
'''

# Nested lists of small numbers: recursion, `*`, and a closing the model
# has to be brought to (the list depth is bounded by the rules).
LISTS = r'''
root  ::= list
list  ::= "[" ( item ( ", " item )* )? "]"
item  ::= [0-9]{1,2} | inner
inner ::= "[" ( [0-9] ( "," [0-9] )* )? "]"
'''


class GrammarTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = shared_model("synth256-Q8_0.gguf")
        if not cls.model:
            raise unittest.SkipTest("../shared/testdata is not beside this checkout")
        cls.server = Server("--model", cls.model, "--parallel", "4").__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)

    def generate(self, endpoint, grammar, seed, max_tokens=64, stream=False, **extra):
        """(text, finish_reason) of one generation."""
        if endpoint == "/completion":
            body = {"prompt": "Answer:", "n_predict": max_tokens}
        elif endpoint == "/v1/completions":
            body = {"prompt": "Answer:", "max_tokens": max_tokens}
        else:
            body = {"messages": [{"role": "user", "content": "Answer."}],
                    "max_tokens": max_tokens}
        body.update({"grammar": grammar, "temperature": 1, "seed": seed}, **extra)
        if stream:
            body["stream"] = True
            conn, resp = self.server.stream(endpoint, body)
            self.assertEqual(resp.status, 200)
            text, finish = "", None
            for ev in sse_events(resp):
                if ev is None:
                    continue
                if ev == "[DONE]":
                    break
                ev = json.loads(ev)
                if endpoint == "/completion":
                    text += ev.get("content", "")
                    finish = "stop" if ev.get("stop") and ev.get("stop_type") != "limit" else finish
                    if ev.get("stop") and ev.get("stop_type") == "limit":
                        finish = "length"
                    if ev.get("stop"):
                        break

                else:
                    ch = ev["choices"][0] if ev.get("choices") else None
                    if ch is None:
                        continue
                    text += ch.get("text") or (ch.get("delta") or {}).get("content") or ""
                    finish = ch.get("finish_reason") or finish
            conn.close()
            return text, finish
        status, _, res = self.server.post(endpoint, body)
        self.assertEqual(status, 200, res)
        if endpoint == "/completion":
            return res["content"], ("length" if res.get("stop_type") == "limit" else "stop")
        ch = res["choices"][0]
        return ch.get("text", (ch.get("message") or {}).get("content")), ch["finish_reason"]

    def test_yes_no_everywhere(self):
        for endpoint in ("/completion", "/v1/completions", "/v1/chat/completions"):
            for seed in range(4):
                for stream in (False, True):
                    text, finish = self.generate(endpoint, YES_NO, seed, stream=stream)
                    self.assertIn(text, ("yes", "no"), (endpoint, seed, stream))
                    self.assertEqual(finish, "stop", (endpoint, seed, stream))

    def test_ignore_eos_still_ends_with_the_grammar(self):
        text, finish = self.generate("/v1/completions", YES_NO, 7, ignore_eos=True)
        self.assertIn(text, ("yes", "no"))
        self.assertEqual(finish, "stop")

    def test_json_objects(self):
        for endpoint in ("/completion", "/v1/completions", "/v1/chat/completions"):
            for seed in range(5):
                text, finish = self.generate(endpoint, PERSON, seed, max_tokens=80)
                self.assertEqual(finish, "stop", (endpoint, seed, text))
                obj = json.loads(text)
                self.assertEqual(sorted(obj), ["age", "name"])
                self.assertRegex(obj["name"], r"^[A-Za-z ]{1,12}$")
                self.assertTrue(1 <= obj["age"] <= 999)

    def test_nested_lists(self):
        pattern = re.compile(r"^\[((\d{1,2}|\[(\d(,\d)*)?\])(, (\d{1,2}|\[(\d(,\d)*)?\]))*)?\]")
        for seed in range(6):
            text, finish = self.generate("/v1/completions", LISTS, seed, max_tokens=48)
            if finish == "stop":
                self.assertRegex(text, pattern.pattern + "$", seed)
                json.loads(text)
            else:  # cut by max_tokens: still a prefix the grammar allows
                self.assertEqual(finish, "length")
                self.assertTrue(text.startswith("["), text)
                self.assertNotRegex(text, r"[^\[\], 0-9]")

    def test_bad_grammar_names_line_and_column(self):
        for endpoint in ("/completion", "/v1/completions", "/v1/chat/completions"):
            status, _, res = self.server.post(endpoint, {
                "prompt": "x", "messages": [{"role": "user", "content": "x"}],
                "grammar": 'root ::= item\nitem ::= "a" | ]\n'})
            self.assertEqual(status, 400, res)
            self.assertEqual(res["error"]["param"], "grammar")
            self.assertIn("line 2, column 16", res["error"]["message"])
        status, _, res = self.server.post("/v1/completions", {"prompt": "x", "grammar": 'root ::= x'})
        self.assertEqual(status, 400)
        self.assertIn("undefined rule 'x'", res["error"]["message"])
        status, _, res = self.server.post("/v1/completions", {"prompt": "x", "grammar": 5})
        self.assertEqual(status, 400)
        self.assertEqual(res["error"]["param"], "grammar")

    def test_hostile_grammars(self):
        deep = "root ::= " + "(" * 5000 + '"a"' + ")" * 5000
        cases = [
            ('root ::= "a"{1000000000}', 400, "repetition count"),
            ('root ::= "a"{0,100000} "b"{0,100000}', 400, "too large"),
            (deep, 400, "nested more than"),
            ("root ::= " + '"a" ' * 30000, 400, "at most 65536 bytes"),
            ('root ::= root "a" | "a"', 400, "left recursion"),
        ]
        for grammar, want_status, want in cases:
            status, _, res = self.server.post("/v1/completions",
                                              {"prompt": "x", "grammar": grammar})
            self.assertEqual(status, want_status, (grammar[:40], res))
            self.assertIn(want, res["error"]["message"])
        # A megabyte of grammar: past the body limit.
        body = json.dumps({"prompt": "x", "grammar": "#" * (1 << 20)}).encode()
        s = raw_socket(self.server.port)
        s.sendall(b"POST /completion HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        try:
            s.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered before reading the body
        answer = read_answer(s)
        s.close()
        self.assertEqual(int(answer.split(b" ", 2)[1]), 413)
        # Ambiguity past the matcher's limit ends the generation with an error.
        alts = " | ".join('"a"? "b%d"' % i for i in range(300))
        status, _, res = self.server.post("/v1/completions", {
            "prompt": "x", "grammar": 'root ::= x*\nx ::= "a" (%s)' % alts, "max_tokens": 4})
        self.assertEqual(status, 400, res)
        self.assertEqual(res["error"]["type"], "invalid_request_error")
        self.assertIn("too ambiguous", res["error"]["message"])
        status, _, _ = self.server.request("GET", "/health")
        self.assertEqual(status, 200)
        # And it still generates.
        text, finish = self.generate("/v1/completions", YES_NO, 1)
        self.assertIn(text, ("yes", "no"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
