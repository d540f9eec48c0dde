"""Allocation failures, one at a time, in every request a client can make: run
in the faults build only (meson -Dfault_injection=true; src/server/fault.c),
where a request carrying X-Llamad-Fail-Alloc: N has the Nth allocation after
its start fail. For each kind of request, N = 1, 2, 3, ... until the request
no longer reaches its Nth allocation; each failure must end in one of:

- a 500 or 503 with an error object (for a stream whose 200 went out: its
  events so far, then an error event);
- the same answer as without a failure (the allocation had a fallback);
- the connection closed without a (whole) answer, when even the error could not
  be made;

and the daemon must answer the next request (/health, then at the end each
request once more as before)."""
import http.client
import json
import os
import re
import unittest

from llamad_server import Server, sse_events

STORY = "Once upon a time"
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "A story."}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                           "parameters": {"type": "object"}}}]
TOOL_CHAT = CHAT + [
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "5 C"}]
# (method, path, body): every route, errors among them, streams and whole answers.
REQUESTS = [
    ("GET", "/health", None),
    ("GET", "/v1/models", None),
    ("GET", "/metrics", None),
    ("GET", "/nowhere", None),
    ("GET", "/", None),
    ("POST", "/v1/completions", {"prompt": 5}),
    ("POST", "/v1/completions", {"prompt": STORY, "max_tokens": 4, "temperature": 0}),
    ("POST", "/v1/completions", {"prompt": STORY, "max_tokens": 4, "temperature": 0,
                                 "logprobs": 2, "stop": ["zz", "qq"],
                                 "logit_bias": {"5": 1}}),
    ("POST", "/v1/completions", {"prompt": [1, 300, 400], "max_tokens": 3, "stream": True,
                                 "temperature": 0}),
    ("POST", "/v1/chat/completions", {"messages": CHAT, "max_tokens": 3, "temperature": 0,
                                      "logprobs": True, "top_logprobs": 2}),
    ("POST", "/v1/chat/completions", {"messages": CHAT, "max_tokens": 3, "temperature": 0,
                                      "stream": True, "session_id": "s1",
                                      "stream_options": {"include_usage": True}}),
    ("POST", "/completion", {"prompt": STORY, "n_predict": 3, "n_probs": 2, "temperature": 0}),
    ("POST", "/completion", {"prompt": STORY, "n_predict": 3, "stream": True,
                             "temperature": 0}),
    ("POST", "/tokenize", {"content": "Once \u00e1 time", "with_pieces": True}),
    ("POST", "/detokenize", {"tokens": [1, 300, 400, 5]}),
    ("POST", "/apply-template", {"messages": CHAT}),
    ("POST", "/v1/chat/completions", {"messages": TOOL_CHAT, "tools": TOOLS, "max_tokens": 3,
                                      "temperature": 0}),
    ("POST", "/v1/chat/completions", {"messages": CHAT, "tools": TOOLS, "max_tokens": 3,
                                      "temperature": 0, "stream": True}),
    ("POST", "/apply-template", {"messages": TOOL_CHAT, "tools": TOOLS}),
]
# What differs between two answers to one request: ids, clocks, the KV cache.
VOLATILE = {"id", "created", "timings", "cached_tokens", "tokens_cached",
            "prompt_tokens_details", "system_fingerprint"}
METRIC_LINE = re.compile(rb"^[a-z_]+(\{[^}]*\})? \S+$")


def stable(v):
    if isinstance(v, dict):
        return {k: stable(x) for k, x in v.items() if k not in VOLATILE}
    if isinstance(v, list):
        return [stable(x) for x in v]
    return v


class Answer:
    """One request's outcome: status (None: closed without an answer), the body
    as JSON or text, and a stream's events."""

    def __init__(self, status=None, body=None, events=None, closed=False):
        self.status, self.body, self.events, self.closed = status, body, events, closed

    def __repr__(self):
        return "Answer(%r, %r, %r, closed=%r)" % (self.status, str(self.body)[:200],
                                                   str(self.events)[:300], self.closed)


def send(server, method, path, body, fail_at=None):
    headers = {"X-Llamad-Fail-Alloc": str(fail_at)} if fail_at else {}
    c = server.conn(timeout=20)
    try:
        if body is not None:
            headers["Content-Type"] = "application/json"
            c.request(method, path, json.dumps(body).encode(), headers)
        else:
            c.request(method, path, headers=headers)
        r = c.getresponse()
        if r.getheader("Content-Type") == "text/event-stream":
            events = []
            try:
                for e in sse_events(r):
                    if e is not None:
                        events.append(e if e == "[DONE]" else stable(json.loads(e)))
            except (http.client.IncompleteRead, ConnectionError):
                return Answer(r.status, events=events, closed=True)
            return Answer(r.status, events=events)
        data = r.read()
    except (http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionError):
        return Answer(closed=True)
    finally:
        c.close()
    if path == "/metrics" and r.status == 200:  # counters move: the shape is what stays
        return Answer(r.status, body=[l for l in data.splitlines()
                                      if not METRIC_LINE.match(l) and not l.startswith(b"#")])
    if r.getheader("Content-Type", "").startswith("text/html"):  # the chat page
        return Answer(r.status, body=data)
    return Answer(r.status, body=stable(json.loads(data)))


def is_error(v):
    return (isinstance(v, dict) and isinstance(v.get("error"), dict)
            and isinstance(v["error"].get("message"), str))


class FaultTest(unittest.TestCase):
    def test_every_allocation_of_every_request(self):
        with Server("--parallel", "2", "--sse-keepalive", "0") as s:
            reference = [send(s, *req) for req in REQUESTS]
            for ref, req in zip(reference, REQUESTS):
                self.assertIsNotNone(ref.status, req)
            ends = 0  # fault injection lines read so far
            report = []
            for req, ref in zip(REQUESTS, reference):
                outcomes = {}
                n = 0
                while True:
                    n += 1
                    got = send(s, *req, fail_at=n)
                    ends += 1
                    line = s.wait_log(r"fault injection: ", 20, nth=ends)
                    fired = "failed" in line
                    kind = self.judge(req, n, ref, got, fired)
                    outcomes[kind] = outcomes.get(kind, 0) + 1
                    self.assertEqual(s.get_json("/health"), (200, {"status": "ok"}),
                                     (req, n))
                    if not fired:
                        break
                report.append("%s %s: %d allocations; %s" % (
                    req[0], req[1], n - 1,
                    ", ".join("%s x%d" % kv for kv in sorted(outcomes.items()))))
            for ref, req in zip(reference, REQUESTS):  # all as before
                again = send(s, *req)
                self.assertEqual((again.status, again.body, again.events),
                                 (ref.status, ref.body, ref.events), req)
            print("\nfaults: each allocation of each request failed in turn:\n  " +
                  "\n  ".join(report))

    def judge(self, req, n, ref, got, fired):
        """The kind of outcome, failing the test on any other."""
        what = "%s %s, allocation %d: %r (without a failure: %r)" % (req[0], req[1], n, got,
                                                                     ref)
        same = (got.status, got.body, got.events) == (ref.status, ref.body, ref.events)
        if not fired:
            self.assertTrue(same and not got.closed, what)
            return "answered"
        if same and not got.closed:
            return "same answer"
        if got.status is None:
            return "closed"
        if got.events is not None:  # a stream: what it sent before the failure, then its end
            self.assertEqual(got.status, 200, what)
            sent = got.events
            if sent and sent[-1] == "[DONE]":
                sent = sent[:-1]
            if sent and is_error(sent[-1]):
                self.assertEqual(sent[:-1], ref.events[:len(sent) - 1], what)
                return "stream error event"
            self.assertTrue(got.closed, what)
            self.assertEqual(sent, ref.events[:len(sent)], what)
            return "stream cut"
        self.assertIn(got.status, (500, 503), what)
        self.assertTrue(is_error(got.body), what)
        return str(got.status)


if __name__ == "__main__":
    unittest.main(verbosity=2)
