"""A hostile corpus against a real daemon: every request here is wrong (ids out of
range, huge arrays, deep nesting, bad UTF-8, lone surrogates, duplicate keys,
absurd numbers, each field of each endpoint's body of every wrong JSON type,
oversized stop lists, bad headers (X-Session-Id among them), odd methods and paths), and each must get a
4xx with an OpenAI-style error object while the daemon stays healthy: /health
answers 200 after every batch and the process is alive.

Raw HTTP the daemon's handlers never see (a malformed request line or header,
refused by libmicrohttpd itself) must get a 4xx, whose body is libmicrohttpd's
own and not JSON."""
import errno
import json
import socket
import unittest

from llamad_server import Server

N_VOCAB = 512  # the bundled stories260K model
ONE_MSG = [{"role": "user", "content": "hi"}]

# One sample of each JSON type; a field is sent every sample of a type it does
# not take. null is absent (as OpenAI treats it), so it is not among them.
SAMPLES = {"str": "x", "int": 7, "float": 1.5, "bool": True, "arr": [1], "obj": {"a": 1}}
NUM = {"int", "float"}

# Per endpoint: a valid body the cases start from, and each field with the JSON
# types it takes (every other type must be refused with a 400 naming the field;
# the extras are what the field needs beside it to be read).
SAMPLING = {"temperature": NUM, "top_p": NUM, "min_p": NUM, "presence_penalty": NUM,
            "frequency_penalty": NUM, "repeat_penalty": NUM, "top_k": {"int"},
            "repeat_last_n": {"int"}, "penalty_last_n": {"int"}, "seed": {"int"},
            "stop": {"str", "arr"}, "stream": {"bool"}, "ignore_eos": {"bool"},
            "user": {"str"}, "session_id": {"str"}, "model": {"str"}, "echo": {"bool"},
            "suffix": {"str"}, "n": {"int"}, "best_of": {"int"}, "response_format": {"obj"},
            "json_schema": {"obj", "bool"},
            "grammar": {"str"}}
ENDPOINTS = {
    "/v1/completions": ({"prompt": "Once", "max_tokens": 1}, dict(
        SAMPLING, prompt={"str", "arr"}, max_tokens={"int"}, logprobs={"int"},
        logit_bias={"obj"}, stream_options={"obj"})),
    "/v1/chat/completions": ({"messages": ONE_MSG, "max_tokens": 1}, dict(
        SAMPLING, messages={"arr"}, max_tokens={"int"}, max_completion_tokens={"int"},
        logprobs={"bool"}, top_logprobs={"int"}, logit_bias={"obj"}, stream_options={"obj"},
        tools={"arr"}, tool_choice={"str", "obj"}, parallel_tool_calls={"bool"})),
    "/completion": ({"prompt": "Once", "n_predict": 1}, dict(
        SAMPLING, prompt={"str", "arr"}, n_predict={"int"}, max_tokens={"int"},
        n_probs={"int"}, logit_bias={"obj", "arr"})),
    "/tokenize": ({"content": "Once"}, {"content": {"str"}, "add_special": {"bool"},
                                        "with_pieces": {"bool"}}),
    "/detokenize": ({"tokens": [1, 2]}, {"tokens": {"arr"}}),
    "/apply-template": ({"messages": ONE_MSG}, {"messages": {"arr"}, "tools": {"arr"},
                                                "tool_choice": {"str", "obj"}}),
}
# What a field needs beside it to be read at all.
NEEDS = {"stream_options": {"stream": True}, "top_logprobs": {"logprobs": True}}
GENERATE = ["/v1/completions", "/v1/chat/completions", "/completion"]


def wrong_types():
    """(path, field, body) for every field of every endpoint and every type it does not take."""
    cases = []
    for path, (base, fields) in ENDPOINTS.items():
        for field, takes in sorted(fields.items()):
            for kind, value in SAMPLES.items():
                if kind in takes or (kind == "int" and "float" in takes):
                    continue
                body = dict(base, **NEEDS.get(field, {}))
                body[field] = value
                cases.append((path, field, body))
    return cases


def deep(open_, close, n, inner=b"1"):
    return open_ * n + inner + close * n


def bad_values():
    """(path, body) whose fields have the right type and a value out of bounds."""
    c = "/v1/completions"
    chat = "/v1/chat/completions"
    native = "/completion"
    p = {"prompt": "Once", "max_tokens": 1}
    m = {"messages": ONE_MSG, "max_tokens": 1}
    cases = []
    # Token ids out of range, wherever ids go.
    for bad in (-1, N_VOCAB, 2 ** 31, 2 ** 63, 1e10, 0.5, -0.5, "1", None, [1], True):
        cases.append((c, dict(p, prompt=[1, bad])))
        cases.append(("/detokenize", {"tokens": [1, bad]}))
    for key in ("-1", str(N_VOCAB), "99999999999999999999", "1e2", "", "0x1", " 1", "1 "):
        cases.append((c, dict(p, logit_bias={key: 1})))
    for pair in ([-1, 1], [N_VOCAB, 1], [1], [1, 2, 3], [1, "x"], [1, 101], "x", [[1, 1]]):
        cases.append((native, {"prompt": "Once", "n_predict": 1, "logit_bias": [pair]}))
    for bias in (101, -101, 1e400, "1", True, None, [1]):
        cases.append((c, dict(p, logit_bias={"1": bias})))
    # Numbers out of range: huge, tiny, negative zero where below the minimum, not finite.
    for field, values in {
            "max_tokens": (0, -0.0, -1, 2 ** 31, 1e400, -1e400, 1e-400, 1.5, 2 ** 64),
            "temperature": (-0.001, 2.001, 1e400, -1e400),
            "top_p": (-1, 1.0001, 1e300), "min_p": (-1e-9, 2),
            "presence_penalty": (-2.5, 2.5), "frequency_penalty": (1e308, -3),
            "repeat_penalty": (0, -0.0, 10.5), "top_k": (-1, 2 ** 31, 0.5),
            "repeat_last_n": (-2, 2 ** 31), "penalty_last_n": (-2, 1e400),
            "seed": (2 ** 53 + 2, -(2 ** 53) - 2, 1e400, 0.5, 123456789012345678901234567890),
            "n": (0, 2, 2 ** 40), "best_of": (2, -1), "logprobs": (-1, 6, 1e400)}.items():
        for v in values:
            cases.append((c, dict(p, **{field: v})))
    for field, v in (("top_logprobs", 21), ("top_logprobs", -1), ("max_completion_tokens", 0),
                     ("max_completion_tokens", 2 ** 32)):
        cases.append((chat, dict(m, logprobs=True, **{field: v})))
    cases.append((chat, dict(m, top_logprobs=2)))  # without logprobs
    cases.append((chat, dict(m, logprobs=False, top_logprobs=2)))
    for v in (-2, 2 ** 31, 21):
        cases.append((native, {"prompt": "Once", "n_predict": v} if v != 21
                      else {"prompt": "Once", "n_predict": 1, "n_probs": v}))
    # Prompts: empty, mixed, several, empty array, far past the context, nested.
    for prompt in ([], ["a", "b"], ["a", 1], [1, "a"], [[1, 2]], [{"a": 1}], [None], [1.5],
                   [1] * 100000, "Once " * 60000):
        cases.append((c, dict(p, prompt=prompt)))
    cases.append((c, {"max_tokens": 1}))  # no prompt
    # Messages: wrong shapes, roles, content parts, far too many.
    for msgs in ([], [1], ["hi"], [[]], [None], [{}], [{"role": "user"}],
                 [{"content": "hi"}], [{"role": "tool", "content": "x"}],
                 [{"role": "function", "content": "x"}], [{"role": "User", "content": "x"}],
                 [{"role": "", "content": "x"}], [{"role": 1, "content": "x"}],
                 [{"role": "user", "content": None}], [{"role": "user", "content": 5}],
                 [{"role": "user", "content": {"text": "x"}}],
                 [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}],
                 [{"role": "user", "content": [{"type": "text"}]}],
                 [{"role": "user", "content": [{"type": "text", "text": 5}]}],
                 [{"role": "user", "content": [5]}], [{"role": "user", "content": [None]}]):
        cases.append((chat, dict(m, messages=msgs)))
        cases.append(("/apply-template", {"messages": msgs}))
    cases.append((chat, dict(m, messages=[{"role": "user", "content": "hi"}] * 20000)))
    # Tools: wrong shapes, names, choices; tool calls and tool messages likewise.
    fn = {"type": "function", "function": {"name": "f"}}
    for tools, choice in (([1], None), ([None], None), ([{}], None), ([{"type": "function"}], None),
                          ([{"type": "code_interpreter", "function": {"name": "f"}}], None),
                          ([{"type": "function", "function": {"name": "a b"}}], None),
                          ([{"type": "function", "function": {"name": "x" * 65}}], None),
                          ([{"type": "function", "function": {"name": ""}}], None),
                          ([{"type": "function", "function": {"name": 5}}], None),
                          ([{"type": "function", "function": {"name": "f", "parameters": []}}],
                           None),
                          ([{"type": "function", "function": {"name": "f", "parameters": "{}"}}],
                           None),
                          ([{"type": "function", "function": {"name": "f", "description": 1}}],
                           None),
                          ([fn, fn], None), ([fn] * 129, None), (None, "auto"), (None, "required"),
                          ([], None), ([], "auto"), ([fn], "sometimes"), ([fn], ""), ([fn], {}),
                          ([fn], {"type": "function"}), ([fn], {"type": "function", "function": {}}),
                          ([fn], {"type": "function", "function": {"name": "g"}}),
                          ([fn], {"type": "tool", "function": {"name": "f"}})):
        body = dict(m, **({"tools": tools} if tools is not None else {}),
                    **({"tool_choice": choice} if choice is not None else {}))
        cases.append((chat, body))
        cases.append(("/apply-template", {k: v for k, v in body.items() if k != "max_tokens"}))
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    for msgs in ([{"role": "assistant", "tool_calls": {}}],
                 [{"role": "assistant", "tool_calls": [1]}],
                 [{"role": "assistant", "tool_calls": []}],
                 [{"role": "assistant", "tool_calls": [dict(call, id=1)]}],
                 [{"role": "assistant", "tool_calls": [dict(call, type="x")]}],
                 [{"role": "assistant", "tool_calls": [dict(call, function={"name": "f"})]}],
                 [{"role": "assistant", "tool_calls": [dict(call, function={"arguments": "{}"})]}],
                 [{"role": "assistant", "tool_calls": [
                     dict(call, function={"name": "f", "arguments": {}})]}],
                 [{"role": "user", "content": "x", "tool_calls": [call]}],
                 [{"role": "tool", "content": "x", "tool_call_id": 5}],
                 [{"role": "tool", "tool_call_id": "c1"}],
                 [{"role": "tool", "content": "x", "tool_call_id": "c1", "name": []}]):
        cases.append((chat, dict(m, messages=msgs)))
        cases.append(("/apply-template", {"messages": msgs}))
    # Unsupported OpenAI parameters, and wrong tool fields beside a stream.
    for field, v in (("tools", [{"type": "function"}]), ("tool_choice", "auto"),
                     ("functions", []), ("function_call", "none"),
                     ("echo", True), ("suffix", "x"),
                     ("response_format", {"type": "xml"}), ("response_format", {}),
                     ("stream_options", {"include_usage": "yes"})):
        cases.append((chat, dict(m, stream=True, **{field: v})))
    # Structured output: bad shapes, schemas outside the subset, over the limits,
    # schemas that never end, more than one constraint.
    def rf(js):
        return {"type": "json_schema", "json_schema": js}
    nest = {}
    for _ in range(200):
        nest = {"type": "array", "items": nest}
    cycle = {"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/b"}]}, "b": {"$ref": "#/$defs/a"}},
             "$ref": "#/$defs/a"}
    for fmt in (rf(None), rf([]), rf({"schema": {}}), rf({"name": "a b"}), rf({"name": "x" * 65}),
                rf({"name": "n", "schema": "{}"}), rf({"name": "n", "strict": 1}),
                rf({"name": "n", "schema": {"allOf": []}}),
                rf({"name": "n", "schema": {"type": "string", "pattern": "(a)\\1"}}),
                rf({"name": "n", "schema": {"enum": list(range(5000))}}),
                rf({"name": "n", "schema": nest}), rf({"name": "n", "schema": cycle}),
                {"type": "json_object", "schema": 5}, {"type": None}):
        cases.append((chat, dict(m, response_format=fmt)))
    for schema in ({"type": "string", "maxLength": 10 ** 9}, {"minItems": 2 ** 62},
                   {"type": "integer", "minimum": 1e300}, {"$ref": "#/$defs/missing"},
                   {"$ref": "http://example.com/"}, {"properties": {"a": {"not": {}}}},
                   {"type": "string", "pattern": "a" * 5000}, {"type": "string", "pattern": "a{99999}"},
                   {"properties": {"p%d" % i: {"type": "string", "maxLength": 3} for i in range(2000)}},
                   {"enum": ["x" * 1000] * 400}, {"type": "number", "maximum": 3}, cycle):
        cases.append((native, {"prompt": "Once", "n_predict": 1, "json_schema": schema}))
        cases.append((c, dict(p, json_schema=schema)))
    cases.append((c, dict(p, json_schema={}, grammar="root ::= \"a\"")))
    cases.append((chat, dict(m, json_schema={}, response_format={"type": "json_object"})))
    # tool_choice "required" or named: parameters outside the subset, a second constraint.
    odd = {"type": "function", "function": {"name": "f", "parameters": {"not": {}}}}
    cases.append((chat, dict(m, tools=[odd], tool_choice="required")))
    for field, v in (("grammar", "root ::= \"a\""), ("json_schema", {}),
                     ("response_format", {"type": "json_object"})):
        cases.append((chat, dict(m, tools=[fn], tool_choice="required", **{field: v})))
    # Stop lists: too many, too long, not strings.
    for stop in (["s%d" % i for i in range(17)], ["s%d" % i for i in range(10000)],
                 "x" * 257, ["x" * 257], ["x" * 500000], [None], [1], ["a", ["b"]],
                 [{"a": 1}]):
        cases.append((c, dict(p, stop=stop)))
    # Session ids: characters outside the set, too long.
    for sid in ("a b", "../x", "x/y", "\u00e9", "a\nb", "a" * 129, "\u0001", "x;y", "%41"):
        cases.append((c, dict(p, session_id=sid)))
    cases.append(("/tokenize", {}))
    cases.append(("/detokenize", {}))
    cases.append(("/detokenize", {"tokens": [1] * 200000 + [-1]}))
    cases.append((c, dict(p, logit_bias={str(i % N_VOCAB): 1 for i in range(100000)},
                          max_tokens=0)))
    return cases


def raw_bodies():
    """(path, raw body bytes) that are not a JSON object, or not valid text."""
    c = "/v1/completions"
    bodies = [
        b"", b" ", b"\n\t ", b"null", b"true", b"1", b'"x"', b"[]", b"[{}]", b"{", b"}",
        b"{}}", b'{"prompt": "x"} {}', b'{"prompt": "x",}', b"{'prompt': 'x'}",
        b'{"prompt": "x" "max_tokens": 1}', b'{prompt: "x"}', b'{"prompt": x}',
b'{"prompt": "x"}\x00', b'{"prompt": "a\x00b"}',
        # Numbers JSON does not have.
        b'{"prompt": "x", "max_tokens": NaN}', b'{"prompt": "x", "max_tokens": Infinity}',
        b'{"prompt": "x", "max_tokens": -Infinity}', b'{"prompt": "x", "max_tokens": 0x10}',
        b'{"prompt": "x", "max_tokens": +1}', b'{"prompt": "x", "max_tokens": .5}',
        b'{"prompt": "x", "max_tokens": 1e}', b'{"prompt": "x", "max_tokens": --1}',
        b'{"prompt": "x", "max_tokens": 1' + b"0" * 400 + b"}",
        b'{"prompt": "x", "temperature": 1e400}', b'{"prompt": "x", "temperature": -0e-999}'
        b', "max_tokens": -0}',
        # Bad UTF-8: invalid bytes, overlong, truncated, encoded surrogates, past U+10FFFF.
        b'{"prompt": "\xff"}', b'{"prompt": "\xc0\xaf"}', b'{"prompt": "\xe0\x80\xaf"}',
        b'{"prompt": "\xe2\x82"}', b'{"prompt": "\xed\xa0\x80"}', b'{"prompt": "\xed\xbf\xbf"}',
        b'{"prompt": "\xf4\x90\x80\x80"}', b'{"prompt": "\xf8\x88\x80\x80\x80"}',
        b'{"prompt": "\x80"}', b'{"\xff": 1, "prompt": "x"}', b'{"prompt": "x"}\xff',
        b'{"prompt": "x", "stop": ["\xfe"]}', b'\xfe\xff\x00{',
        # Lone and misordered surrogate escapes, in values and in keys.
        b'{"prompt": "\\ud800"}', b'{"prompt": "\\udc00"}', b'{"prompt": "\\ud800\\u0041"}',
        b'{"prompt": "a\\ud800"}', b'{"prompt": "\\ud800\\ud800"}',
        b'{"prompt": "\\udc00\\ud800"}', b'{"prompt": "\\uDBFF"}', b'{"\\ud800": 1}',
        b'{"prompt": "x", "stop": "\\ud800"}', b'{"prompt": "\\u0000"}',
        b'{"prompt": "\\u00"}', b'{"prompt": "\\uzzzz"}', b'{"prompt": "\\x41"}',
        b'{"prompt": "\\', b'{"prompt": "x',
        # Duplicate keys: which of the two a parser takes differs between parsers.
        b'{"prompt": "x", "prompt": 5}', b'{"prompt": 5, "prompt": "x"}',
        b'{"prompt": "x", "max_tokens": 1, "max_tokens": 2}',
        b'{"prompt": "x", "stream": false, "stream": true}',
        b'{"prompt": "x", "logit_bias": {"1": 1, "1": 2}}',
        b'{"prompt": "x", "stream_options": {"include_usage": true, "include_usage": false}}',
    ]
    cases = [(c, b) for b in bodies]
    cases += [("/v1/chat/completions",
               b'{"messages": [{"role": "user", "role": "system", "content": "x"}]}'),
              ("/tokenize", b'{"content": "a", "content": "b"}'),
              ("/detokenize", b'{"tokens": [1], "tokens": [2]}')]
    # Deep nesting, at the top and inside a field.
    for n in (1001, 100000):
        cases.append((c, deep(b"[", b"]", n)))
        cases.append((c, deep(b'{"a":', b"}", n)))
        cases.append((c, b'{"prompt": ' + deep(b"[", b"]", n) + b"}"))
        cases.append(("/v1/chat/completions", b'{"messages": ' + deep(b"[", b"]", n) + b"}"))
    # Nesting within cJSON's limit, beside a bad field.
    cases.append(("/tokenize", b'{"content": 5, "a": ' + deep(b"[", b"]", 900) + b"}"))
    # Every endpoint's body as each non-object JSON value.
    for path in ENDPOINTS:
        for body in (b"[]", b"0", b'""', b"null", b"{"):
            cases.append((path, body))
    return cases


def session_header_cases():
    """(path, body, header lines) of generation requests whose X-Session-Id is
    wrong: the body's session_id rules, a different session than the body's, or
    the header twice."""
    bad = [b"a b", b"a/b", b"a,b", b"x" * 129, b"caf\xc3\xa9", b"\xff", b"a\tb",
           b"a;b", b"s*", b"\"s\"", b"%41"]
    cases = []
    for path in GENERATE:
        base = ENDPOINTS[path][0]
        for value in bad:
            cases.append((path, base, [value]))
        cases.append((path, dict(base, session_id="one"), [b"other"]))
        cases.append((path, dict(base, stream=True, session_id="one"), [b"ONE"]))
        cases.append((path, base, [b"one", b"two"]))
        cases.append((path, base, [b"one", b"one"]))
    return cases


def method_path_cases():
    """(method, path, expected status or None for any 4xx)."""
    cases = []
    for path in ("/health", "/v1/models", "/metrics"):
        for method in ("POST", "PUT", "DELETE", "PATCH", "TRACE", "get", "FOO", "HEAD"):
            cases.append((method, path, 405))
    for path in ENDPOINTS:
        for method in ("GET", "PUT", "DELETE", "PATCH", "TRACE", "post", "FOO", "HEAD"):
            cases.append((method, path, 405))
    for path in ("/", "/chat.js", "/chat.css"):  # the chat page: GET and HEAD
        for method in ("POST", "PUT", "DELETE", "PATCH", "TRACE", "get", "FOO"):
            cases.append((method, path, 405))
    for path in ("/v1", "/v1/", "/v1/completions/", "/v1/completion", "//health",
                 "/health/", "/HEALTH", "/v1//completions", "/./health", "/../etc/passwd",
                 "/v1/../health/..", "/%2e%2e/etc/passwd", "/health%20",
                 "/%ff%fe", "/%c3%a9t%c3%a9", "/a" * 2000,
                 "/tokenize%2F", "/v2/completions", "/embedding", "/embeddings",
                 "/v1/embeddings", "/slots", "/props", "/completionsx", "/index.html",
                 "/favicon.ico", "/%0d%0aSet-Cookie:%20x=1"):
        cases.append(("GET", path, 404))
    return cases


def raw_requests():
    """Raw bytes on a socket that libmicrohttpd itself refuses (4xx, its own body)."""
    body = b'{"prompt": "x", "max_tokens": 1}'
    post = b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    return [
        b"GET /health HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: a\r\n" + b"X-Big: " + b"a" * 100000 + b"\r\n\r\n",
        b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /health HTTP/1.1 extra\r\nHost: a\r\n\r\n",
        post + b"Content-Length: abc\r\n\r\n" + body,
        post + b"Content-Length: -1\r\n\r\n" + body,
        post + b"Content-Length: 99999999999999999999999\r\n\r\n" + body,
        post + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body + b"\r\n0\r\n\r\n",
        post + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n" + body,
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",  # not HTTP
    ]


class HostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server("--parallel", "2").__enter__()
        cls.count = 0

    @classmethod
    def tearDownClass(cls):
        cls.s.__exit__(None, None, None)
        print("\nhostile: %d requests, each refused with a 4xx" % cls.count)

    def healthy(self):
        self.assertIsNone(self.s.proc.poll(), "llamad exited")
        self.assertEqual(self.s.get_json("/health"), (200, {"status": "ok"}))

    def refused(self, what, status, data, want=None):
        """status is the one wanted (any 4xx when want is None), data an error object."""
        HostileTest.count += 1
        if want is None:
            self.assertTrue(400 <= status < 500, "%s: %d %r" % (what, status, data[:300]))
        else:
            self.assertEqual(status, want, "%s: %r" % (what, data[:300]))
        try:
            res = json.loads(data.decode("utf-8"))
        except ValueError as e:
            self.fail("%s: %d: not a JSON body (%s): %r" % (what, status, e, data[:300]))
        self.assertIsInstance(res.get("error"), dict, what)
        self.assertIsInstance(res["error"].get("message"), str, what)
        self.assertIsInstance(res["error"].get("type"), str, what)
        return res["error"]

    def post_raw(self, path, body):
        return self.s.request("POST", path, body, {"Content-Type": "application/json"})

    def test_wrong_types(self):
        cases = wrong_types()
        self.assertGreater(len(cases), 200)
        for path, field, body in cases:
            st, _, data = self.post_raw(path, json.dumps(body).encode())
            err = self.refused("%s %s" % (path, json.dumps(body)[:200]), st, data, 400)
            self.assertEqual(err.get("param"), field, (path, body, err))  # the wrong one
        self.healthy()

    def test_bad_values(self):
        for path, body in bad_values():
            st, _, data = self.post_raw(path, json.dumps(body).encode())
            self.refused("%s %s" % (path, json.dumps(body)[:200]), st, data, 400)
        self.healthy()

    def test_raw_bodies(self):
        for path, body in raw_bodies():
            st, _, data = self.post_raw(path, body)
            self.refused("%s %r" % (path, body[:120]), st, data, 400)
        self.healthy()

    def test_bad_session_headers(self):
        for path, body, values in session_header_cases():
            c = self.s.conn()
            data = json.dumps(body).encode()
            c.putrequest("POST", path)
            for name, value in ((b"Content-Type", b"application/json"),
                                (b"Content-Length", str(len(data)).encode())):
                c.putheader(name, value)
            for value in values:
                c.putheader(b"X-Session-Id", value)
            c.endheaders(data)
            r = c.getresponse()
            reply = r.read()
            c.close()
            err = self.refused("%s X-Session-Id: %r" % (path, values), r.status, reply, 400)
            self.assertEqual(err.get("param"), "X-Session-Id", (path, values, err))
        self.healthy()

    def test_methods_and_paths(self):
        for method, path, want in method_path_cases():
            st, _, data = self.s.request(method, path, None)
            if method == "HEAD":  # the same status, and no body
                HostileTest.count += 1
                self.assertEqual((st, data), (want, b""), path)
            else:
                self.refused("%s %s" % (method, path[:80]), st, data, want)
        self.healthy()

    def test_raw_http(self):
        for raw in raw_requests():
            HostileTest.count += 1
            sock = socket.create_connection(("127.0.0.1", self.s.port), timeout=20)
            reply = b""
            try:
                sock.sendall(raw)
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError as e:
                    # the daemon may have answered and closed already (a 400 for
                    # a malformed head): its answer is still there to read
                    if e.errno != errno.ENOTCONN:
                        raise
                reply = b""
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
            except (ConnectionResetError, BrokenPipeError):
                pass
            finally:
                sock.close()
            status = reply.split(b"\r\n", 1)[0].split(b" ")
            if not reply:
                # Closed without an answer: for what is not HTTP; or for a head
                # far over the limit, which the daemon refuses and closes on
                # while the rest still arrives, so the kernel may reset the
                # connection and drop the 4xx before it is read.
                self.assertTrue(raw.startswith(b"\x16") or len(raw) > 65536, raw[:80])
                continue
            self.assertTrue(len(status) > 1 and status[1][:1] == b"4", (raw[:80], reply[:200]))
        self.healthy()


if __name__ == "__main__":
    unittest.main(verbosity=2)
