"""The daemon through real HTTP on a loopback port: every endpoint, streaming
event by event, errors, disconnects, SIGTERM, concurrency, a storm of clients,
KV cache reuse."""
import http.client
import json
import os
import random
import tempfile
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

from llamad_server import BUILD, DAEMON, Server, sse_events

RUN = os.path.join(BUILD, "llamad-run")
MKMODEL = os.path.join(BUILD, "llamad-mkmodel")
BUNDLED = os.path.join(os.environ["LLAMAD_MODELS_DIR"], "stories260K.gguf")
STORY = "Once upon a time"


def llamad_run(prompt, n):
    r = subprocess.run([RUN, "-p", prompt, "-n", str(n), "--temp", "0"], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def greedy(prompt=STORY, **kw):
    body = {"prompt": prompt, "temperature": 0, "max_tokens": 32}
    body.update(kw)
    return body


class Shared:
    server = None
    tmp = None
    slow_model = None


def setUpModule():
    # A model slow enough (a few hundred tokens/s) that a stream is still
    # running when a test disconnects or signals: random weights, the bundled
    # model's vocabulary.
    Shared.tmp = tempfile.TemporaryDirectory()
    Shared.slow_model = os.path.join(Shared.tmp.name, "slow.gguf")
    subprocess.run([MKMODEL, "-o", Shared.slow_model, "--vocab", BUNDLED, "--dim", "512",
                    "--layers", "8", "--heads", "8", "--kv-heads", "8", "--ff", "1536",
                    "--type", "F32"], check=True, capture_output=True, timeout=120)
    Shared.server = Server("--parallel", "4").__enter__()


def tearDownModule():
    Shared.server.__exit__(None, None, None)
    Shared.tmp.cleanup()


def slow_server(*args):
    return Server("--model", Shared.slow_model, *args)


class EndpointTest(unittest.TestCase):
    def setUp(self):
        self.s = Shared.server

    def test_health_models_metrics(self):
        self.assertEqual(self.s.get_json("/health"), (200, {"status": "ok"}))
        status, models = self.s.get_json("/v1/models")
        self.assertEqual(status, 200)
        self.assertEqual(models["object"], "list")
        self.assertEqual(models["data"][0]["id"], "stories260K.gguf")
        m = self.s.metrics()
        for name in ("llamad_requests_waiting", "llamad_requests_running",
                     "llamad_kv_cache_usage_ratio", "llamad_forward_passes_total"):
            self.assertIn(name, m)

    def test_completion_equals_llamad_run(self):
        status, hdrs, body = self.s.post("/v1/completions", greedy(max_tokens=48, model="gpt-4"))
        self.assertEqual(status, 200)
        self.assertEqual(body["object"], "text_completion")
        self.assertEqual(body["model"], "stories260K.gguf")  # any name accepted, ours returned
        self.assertTrue(body["id"].startswith("cmpl-"))
        choice = body["choices"][0]
        self.assertEqual(choice["text"], llamad_run(STORY, 48))
        self.assertEqual(choice["finish_reason"], "length")
        self.assertEqual(body["usage"], {"prompt_tokens": 5, "completion_tokens": 48,
                                         "total_tokens": 53,
                                         "prompt_tokens_details": {"cached_tokens": 0}})

    def test_default_max_tokens_is_16(self):
        _, _, body = self.s.post("/v1/completions", {"prompt": STORY, "temperature": 0})
        self.assertEqual(body["usage"]["completion_tokens"], 16)

    def test_stream_matches_whole_response(self):
        _, _, whole = self.s.post("/v1/completions", greedy(max_tokens=40))
        c, r = self.s.stream("/v1/completions", greedy(max_tokens=40, stream=True))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Type"), "text/event-stream")
        self.assertEqual(r.getheader("X-Accel-Buffering"), "no")
        self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
        events = [e for e in sse_events(r) if e is not None]
        c.close()
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        self.assertGreaterEqual(len(chunks), 20)  # token by token, not one blob
        for ch in chunks:
            self.assertEqual(ch["object"], "text_completion")
        self.assertEqual("".join(ch["choices"][0]["text"] for ch in chunks),
                         whole["choices"][0]["text"])
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "length")
        self.assertTrue(all(ch["choices"][0]["finish_reason"] is None for ch in chunks[:-1]))

    def test_chat_stream_with_usage(self):
        body = {"messages": [{"role": "user", "content": "Tell me a story."}],
                "temperature": 0, "max_tokens": 20, "stream": True,
                "stream_options": {"include_usage": True}}
        c, r = self.s.stream("/v1/chat/completions", body)
        events = [e for e in sse_events(r) if e is not None]
        c.close()
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        usage = chunks[-1]
        self.assertEqual(usage["choices"], [])
        self.assertEqual(usage["usage"]["completion_tokens"], 20)
        for ch in chunks[:-1]:
            self.assertEqual(ch["object"], "chat.completion.chunk")
            self.assertIsNone(ch["usage"])
        text = "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks[:-1])
        _, _, whole = self.s.post("/v1/chat/completions", {k: v for k, v in body.items()
                                                            if k not in ("stream",
                                                                         "stream_options")})
        self.assertEqual(whole["object"], "chat.completion")
        self.assertEqual(whole["choices"][0]["message"],
                         {"role": "assistant", "content": text})

    def test_stop_string_across_tokens(self):
        full = self.s.post("/v1/completions", greedy(max_tokens=20))[2]["choices"][0]["text"]
        self.assertTrue(full.startswith(", there was a little girl"))
        # "ere was" spans the tokens " there" and " was".
        for stream in (False, True):
            body = greedy(max_tokens=20, stop=["ere was", "never"], stream=stream)
            if not stream:
                _, _, res = self.s.post("/v1/completions", body)
                text = res["choices"][0]["text"]
                reason = res["choices"][0]["finish_reason"]
            else:
                c, r = self.s.stream("/v1/completions", body)
                chunks = [json.loads(e) for e in sse_events(r) if e not in (None, "[DONE]")]
                c.close()
                pieces = [ch["choices"][0]["text"] for ch in chunks]
                self.assertFalse(any("ere" in p for p in pieces), pieces)
                text = "".join(pieces)
                reason = chunks[-1]["choices"][0]["finish_reason"]
            self.assertEqual(text, ", th")
            self.assertEqual(reason, "stop")

    def test_chat_special_tokens_in_content_are_text(self):
        def prompt_tokens(content):
            body = {"messages": [{"role": "user", "content": content}], "max_tokens": 1}
            return self.s.post("/v1/chat/completions", body)[2]["usage"]["prompt_tokens"]

        _, _, tok = self.s.post("/tokenize", {"content": "</s>"})
        eos_as_text = len(tok["tokens"]) - 1  # without its leading space-prefix token or with
        self.assertGreater(len(tok["tokens"]), 1)
        self.assertNotIn(2, tok["tokens"])
        with_eos = prompt_tokens("hi </s> there")
        without = prompt_tokens("hi there")
        self.assertGreater(with_eos - without, 1)  # "</s>" took several text tokens, not one
        self.assertGreaterEqual(eos_as_text, 1)

    def test_native_completion(self):
        status, _, body = self.s.post("/completion", {"prompt": STORY, "n_predict": 24,
                                                      "temperature": 0})
        self.assertEqual(status, 200)
        self.assertEqual(body["content"], llamad_run(STORY, 24))
        self.assertEqual(body["tokens_predicted"], 24)
        self.assertEqual(body["tokens_evaluated"], 5)
        self.assertIn("timings", body)
        c, r = self.s.stream("/completion", {"prompt": STORY, "n_predict": 8, "temperature": 0,
                                             "stream": True})
        events = [json.loads(e) for e in sse_events(r) if e is not None]
        c.close()
        self.assertTrue(events[-1]["stop"])
        self.assertEqual("".join(e["content"] for e in events), llamad_run(STORY, 8))

    def test_native_n_predict_zero_and_minus_one(self):
        # llama.cpp: 0 evaluates the prompt and generates nothing; -1 has no limit.
        for field in ("n_predict", "max_tokens"):
            status, _, body = self.s.post("/completion", {"prompt": STORY, field: 0})
            self.assertEqual(status, 200, body)
            self.assertEqual((body["content"], body["tokens_predicted"], body["stop_type"]),
                             ("", 0, "limit"))
            self.assertEqual(body["tokens_evaluated"], 5)
        c, r = self.s.stream("/completion", {"prompt": STORY, "n_predict": 0, "stream": True})
        events = [json.loads(e) for e in sse_events(r) if e is not None]
        c.close()
        self.assertEqual("".join(e["content"] for e in events), "")
        self.assertTrue(events[-1]["stop"])
        self.assertEqual(events[-1]["tokens_predicted"], 0)
        _, _, body = self.s.post("/completion", {"prompt": STORY, "n_predict": -1,
                                                 "temperature": 0})
        self.assertGreater(body["tokens_predicted"], 24)
        self.assertTrue(body["content"].startswith(llamad_run(STORY, 24)))

    def test_apply_template(self):
        # The bundled model has no chat template: the plain layout, BOS as its piece.
        status, _, res = self.s.post("/apply-template", {"messages": [
            {"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]})
        self.assertEqual((status, res), (200, {"prompt": "<s>system: Be kind.\nuser: Hi\n"
                                                         "assistant:"}))
        for body in ({"messages": []}, {"messages": [{"role": "robot", "content": "x"}]},
                     {"prompt": "x"}):
            status, _, res = self.s.post("/apply-template", body)
            self.assertEqual(status, 400, body)
            self.assertIn("messages", res["error"]["message"])

    def test_tokenize_detokenize(self):
        status, _, tok = self.s.post("/tokenize", {"content": STORY, "add_special": True})
        self.assertEqual((status, tok["tokens"]), (200, [1, 403, 407, 261, 378]))
        status, _, det = self.s.post("/detokenize", {"tokens": [403, 407, 261, 378]})
        self.assertEqual(status, 200)
        self.assertEqual(det["content"].strip(), STORY)

    def test_logprobs(self):
        _, _, res = self.s.post("/v1/completions", greedy(max_tokens=5, logprobs=3))
        lp = res["choices"][0]["logprobs"]
        self.assertEqual(len(lp["tokens"]), 5)
        self.assertEqual(len(lp["token_logprobs"]), 5)
        self.assertEqual(len(lp["top_logprobs"][0]), 3)
        self.assertEqual("".join(lp["tokens"]), res["choices"][0]["text"])
        self.assertTrue(all(v <= 0 for v in lp["token_logprobs"]))
        body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4,
                "logprobs": True, "top_logprobs": 2, "temperature": 0}
        _, _, chat = self.s.post("/v1/chat/completions", body)
        content = chat["choices"][0]["logprobs"]["content"]
        self.assertEqual(len(content), 4)
        self.assertEqual(len(content[0]["top_logprobs"]), 2)
        self.assertIsInstance(content[0]["bytes"], list)

    def test_seeded_sampling_is_reproducible(self):
        body = {"prompt": STORY, "max_tokens": 30, "temperature": 1.0, "seed": 7}
        a = self.s.post("/v1/completions", body)[2]["choices"][0]["text"]
        b = self.s.post("/v1/completions", body)[2]["choices"][0]["text"]
        self.assertEqual(a, b)

    def test_two_requests_at_once(self):
        prompts = [STORY, "Lily and Tom went to the park."]
        want = [self.s.post("/v1/completions", greedy(p, max_tokens=40))[2] for p in prompts]
        got = [None, None]

        def worker(i):
            got[i] = self.s.post("/v1/completions", greedy(prompts[i], max_tokens=40))[2]

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(2):
            self.assertEqual(got[i]["choices"][0]["text"], want[i]["choices"][0]["text"])


class StreamingTest(unittest.TestCase):
    def test_keepalive_comments_during_a_long_prompt(self):
        # The comments come every 0.25 s here, so the prompt (one thread, ~1300
        # tokens of the slow model) takes several intervals on any machine.
        with slow_server("--sse-keepalive", "0.25", "--threads", "1") as s:
            prompt = "Once upon a time, there was a little girl. " * 120  # ~1300 tokens
            c, r = s.stream("/v1/completions", {"prompt": prompt, "max_tokens": 2,
                                                "stream": True})
            events = list(sse_events(r))
            c.close()
            first_data = next(i for i, e in enumerate(events) if e is not None)
            self.assertGreater(first_data, 0, "no keep-alive comment before the first token")
            self.assertEqual(events[-1], "[DONE]")

    def test_split_utf8_characters_are_held_back(self):
        s = Shared.server
        # Force the byte token <0xE6>, the first byte of a 3-byte character, at
        # every step: each is held back until the next shows the character cannot
        # complete, then released as U+FFFD; raw bytes never reach the JSON.
        ids = s.post("/tokenize", {"content": "\u65e5"})[2]["tokens"]
        lead = ids[1]
        self.assertEqual(s.post("/detokenize", {"tokens": [lead]})[0], 200)
        body = {"prompt": STORY, "max_tokens": 6, "temperature": 0, "logprobs": 0,
                "logit_bias": {str(lead): 100}, "stream": True}
        c, r = s.stream("/v1/completions", body)
        chunks = [json.loads(e) for e in sse_events(r) if e not in (None, "[DONE]")]
        c.close()
        texts = [ch["choices"][0]["text"] for ch in chunks]
        tokens = [t for ch in chunks if ch["choices"][0]["logprobs"]
                  for t in ch["choices"][0]["logprobs"]["tokens"]]
        self.assertEqual(tokens, ["bytes:\\xe6"] * 6)
        self.assertEqual(texts[0], "")  # the first byte alone is held back
        self.assertEqual("".join(texts), "\ufffd" * 6)


class ErrorTest(unittest.TestCase):
    def setUp(self):
        self.s = Shared.server

    def expect(self, status, path, body, param=None, raw=False, method="POST"):
        if raw:
            st, hdrs, data = self.s.request(method, path, body,
                                            {"Content-Type": "application/json"})
            res = json.loads(data)
        else:
            st, hdrs, res = self.s.post(path, body)
        self.assertEqual(st, status, res)
        self.assertIn("message", res["error"])
        self.assertIn("type", res["error"])
        if param is not None:
            self.assertEqual(res["error"]["param"], param)
        self.assertEqual(self.s.get_json("/health")[0], 200)  # still serving
        return res, hdrs

    def test_bad_bodies(self):
        self.expect(400, "/v1/completions", b"{not json", raw=True)
        self.expect(400, "/v1/completions", b"[1, 2]", raw=True)
        self.expect(400, "/v1/completions", b'{"prompt": "a\xff\xfe"}', raw=True)
        self.expect(400, "/v1/completions", b'{"prompt": "a\\u0000b"}', raw=True)
        self.expect(400, "/v1/completions", {"prompt": 5}, "prompt")
        self.expect(400, "/v1/completions", {"prompt": "x", "max_tokens": "10"}, "max_tokens")
        self.expect(400, "/v1/completions", {"prompt": "x", "max_tokens": 3.5}, "max_tokens")
        self.expect(400, "/v1/completions", {"prompt": "x", "max_tokens": 1e300}, "max_tokens")
        self.expect(400, "/v1/completions", {"prompt": "x", "temperature": 3}, "temperature")
        self.expect(400, "/v1/completions", {"prompt": "x", "n": 2}, "n")
        self.expect(400, "/v1/completions", {"prompt": "x", "logit_bias": {"99999": 1}},
                    "logit_bias")
        self.expect(400, "/v1/chat/completions", {"messages": []}, "messages")
        self.expect(400, "/v1/chat/completions",
                    {"messages": [{"role": "user", "content": "x"}],
                     "tools": [{"type": "function"}]}, "tools[0].function")
        self.expect(400, "/v1/chat/completions",
                    {"messages": [{"role": "user", "content": "x"}], "functions": []}, "functions")
        self.expect(400, "/v1/completions", {"prompt": [1, 2, 70000]}, "prompt")

    def test_max_tokens_below_one(self):
        chat = {"messages": [{"role": "user", "content": "x"}]}
        self.expect(400, "/v1/completions", {"prompt": "x", "max_tokens": 0}, "max_tokens")
        self.expect(400, "/v1/completions", {"prompt": "x", "max_tokens": -1}, "max_tokens")
        self.expect(400, "/v1/chat/completions", dict(chat, max_tokens=0), "max_tokens")
        self.expect(400, "/v1/chat/completions", dict(chat, max_completion_tokens=0),
                    "max_completion_tokens")
        res, _ = self.expect(400, "/v1/completions", {"prompt": "x", "max_tokens": 0,
                                                      "stream": True}, "max_tokens")
        self.assertEqual(res["error"]["type"], "invalid_request_error")

    def test_status_codes(self):
        res, _ = self.expect(404, "/v1/nothing", {})
        _, hdrs = self.expect(405, "/v1/completions", None, raw=True, method="GET")
        self.assertEqual(hdrs.get("allow"), "POST")
        big = json.dumps({"prompt": "x" * (2 << 20)}).encode()
        try:
            st, _, data = self.s.request("POST", "/v1/completions", big,
                                         {"Content-Type": "application/json"})
            self.assertEqual(st, 413)
            self.assertIn("error", json.loads(data))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the 413 came on the headers and the connection closed mid-body (test_limits)

    def test_empty_and_unknown_fields(self):
        st, _, res = self.s.post("/v1/completions", {"prompt": "", "max_tokens": 3,
                                                     "some_future_field": {"x": 1}})
        self.assertEqual(st, 200)
        self.assertEqual(res["usage"]["prompt_tokens"], 1)  # BOS alone


class ConfiguredServerTest(unittest.TestCase):
    def test_api_keys(self):
        with Server("--api-key", "sekrit-key-1", "--api-key", "other-key-22") as s:
            self.assertEqual(s.get_json("/health")[0], 200)
            st, hdrs, _ = s.post("/v1/completions", greedy(max_tokens=2))
            self.assertEqual(st, 401)
            self.assertEqual(hdrs.get("www-authenticate"), "Bearer")
            st, _, _ = s.post("/v1/completions", greedy(max_tokens=2),
                              {"Authorization": "Bearer wrong"})
            self.assertEqual(st, 401)
            st, _, _ = s.post("/v1/completions", greedy(max_tokens=2),
                              {"Authorization": "Bearer other-key-22"})
            self.assertEqual(st, 200)
            self.assertEqual(s.request("GET", "/metrics")[0], 401)

    def test_strict_model_name_and_context_limit(self):
        with Server("--strict-model-name", "--model-alias", "story", "--ctx-size", "32") as s:
            st, _, res = s.post("/v1/completions", greedy(model="gpt-4"))
            self.assertEqual(st, 404)
            self.assertEqual(res["error"]["code"], "model_not_found")
            st, _, res = s.post("/v1/completions", greedy(model="story", max_tokens=4))
            self.assertEqual((st, res["model"]), (200, "story"))
            st, _, res = s.post("/v1/completions", greedy("Once upon a time " * 20))
            self.assertEqual(st, 400)
            self.assertEqual(res["error"]["code"], "context_length_exceeded")
            # Generation stops at the end of the context.
            st, _, res = s.post("/v1/completions", greedy(max_tokens=100, ignore_eos=True))
            self.assertEqual(res["usage"]["completion_tokens"], 32 - 5)
            self.assertEqual(res["choices"][0]["finish_reason"], "length")

    def test_queue_full_gets_503(self):
        with slow_server("--parallel", "1", "--queue-length", "0") as s:
            c, r = s.stream("/v1/completions", greedy(max_tokens=1500, ignore_eos=True,
                                                     stream=True))
            next(e for e in sse_events(r) if e)  # running now
            st, hdrs, res = s.post("/v1/completions", greedy(max_tokens=2))
            self.assertEqual(st, 503)
            self.assertIn("retry-after", hdrs)
            c.close()


def generated_after(server, pattern):
    line = server.wait_log(pattern, 30)
    return int(re.search(r"completion_tokens=(\d+)", line).group(1))


class DisconnectTest(unittest.TestCase):
    def test_disconnect_mid_stream_stops_generation(self):
        with slow_server() as s:
            c, r = s.stream("/v1/completions", greedy(max_tokens=1800, ignore_eos=True,
                                                     stream=True))
            events = sse_events(r)
            for _ in range(5):
                next(events)
            c.sock.shutdown(socket.SHUT_RDWR)
            c.close()
            n = generated_after(s, r"path=/v1/completions status=200 .*client_gone=1")
            self.assertLess(n, 1800)

    def test_disconnect_during_non_streamed_request(self):
        with slow_server() as s:
            c = s.conn()
            c.request("POST", "/v1/completions", body=json.dumps(
                greedy(max_tokens=1800, ignore_eos=True)).encode(),
                headers={"Content-Type": "application/json"})
            time.sleep(0.2)
            c.sock.shutdown(socket.SHUT_RDWR)
            c.close()
            n = generated_after(s, r"path=/v1/completions status=499 .*client_gone=1")
            self.assertLess(n, 1800)

    def test_disconnect_while_queued(self):
        with slow_server("--parallel", "1") as s:
            a, ra = s.stream("/v1/completions", greedy(max_tokens=1800, ignore_eos=True,
                                                      stream=True))
            next(e for e in sse_events(ra) if e)
            b = s.conn()
            b.request("POST", "/v1/completions", body=json.dumps(greedy(max_tokens=5)).encode(),
                      headers={"Content-Type": "application/json"})
            time.sleep(0.2)
            b.sock.shutdown(socket.SHUT_RDWR)
            b.close()
            n = generated_after(s, r"status=499 prompt_tokens=\d+ completion_tokens=\d+ .*"
                                   r"client_gone=1")
            self.assertEqual(n, 0)
            a.close()


class StormTest(unittest.TestCase):
    """Many clients at once for a few seconds: streamed and whole, sessions
    shared between concurrent requests, clients that hang up after a random
    number of bytes, bodies with bad values. Every request a client waits for
    ends (a stream with its last event), nothing is left running, and the
    daemon exits cleanly (the server helper fails on any sanitizer report)."""

    def client(self, port, seed, until, failures, counts):
        rng = random.Random(seed)
        while time.time() < until:
            stream = rng.random() < 0.7
            body = {"prompt": STORY + " and" * rng.randint(0, 40),
                    "max_tokens": rng.randint(1, 48), "temperature": rng.choice([0, 0.8]),
                    "stream": stream}
            if rng.random() < 0.3:
                body["session_id"] = "storm-%d" % rng.randint(0, 3)
            if rng.random() < 0.05:
                body["max_tokens"] = -3
            path = rng.choice(["/v1/completions", "/completion"])
            data = json.dumps(body).encode()
            try:
                if rng.random() < 0.3:  # hang up after a random number of bytes
                    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
                        c.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/"
                                  b"json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                                  % (path.encode(), len(data)) + data)
                        want, got = rng.randint(0, 1500), 0
                        while got < want:
                            chunk = c.recv(512)
                            if not chunk:
                                break
                            got += len(chunk)
                    counts["hung up"] += 1
                    continue
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                c.request("POST", path, data, {"Content-Type": "application/json"})
                r = c.getresponse()
                text = r.read()
                c.close()
                counts[r.status] = counts.get(r.status, 0) + 1
                if r.status == 200 and stream and path == "/v1/completions" and \
                        not text.rstrip().endswith(b"data: [DONE]"):
                    failures.append("stream without [DONE]: %r" % text[-200:])
                elif r.status not in (200, 400):
                    failures.append("status %d: %r" % (r.status, text[:200]))
            except OSError as e:  # a timeout is a request that never ended
                failures.append("%s %s: %s" % (path, body, e))

    def test_storm_of_clients(self):
        with Server("--parallel", "4", "--kv-cache-mb", "2") as s:
            failures, counts = [], {"hung up": 0}
            until = time.time() + 8
            threads = [threading.Thread(target=self.client,
                                        args=(s.port, i, until, failures, counts))
                       for i in range(12)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(len(failures), 0, failures[:5])
            self.assertGreater(counts.get(200, 0), 50, counts)
            self.assertGreater(counts["hung up"], 10, counts)
            self.assertGreater(counts.get(400, 0), 0, counts)
            deadline = time.time() + 10  # the hung-up ones are cancelled at the next step
            while s.metrics()["llamad_requests_running"] and time.time() < deadline:
                time.sleep(0.05)
            m = s.metrics()
            self.assertEqual(m["llamad_requests_running"], 0)
            self.assertEqual(m["llamad_requests_waiting"], 0)


def delta(before, after, name):
    return after[name] - before[name]


class KvCacheTest(unittest.TestCase):
    def test_session_second_turn_computes_only_new_tokens(self):
        s = Shared.server
        first = s.post("/v1/completions", greedy(max_tokens=40, session_id="kv-turns"))[2]
        self.assertEqual(first["usage"]["prompt_tokens"], 5)
        prompt = STORY + first["choices"][0]["text"] + " Then the sun came out."
        before = s.metrics()
        _, _, second = s.post("/v1/completions", greedy(prompt, max_tokens=10,
                                                        session_id="kv-turns"))
        after = s.metrics()
        usage = second["usage"]
        # The first turn's prompt and answer are in the cache, but for the
        # answer's last token, which was never fed to the model.
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        self.assertEqual(cached, 5 + 40 - 1)
        self.assertEqual(delta(before, after, "llamad_prompt_tokens_computed_total"),
                         usage["prompt_tokens"] - cached)
        self.assertEqual(delta(before, after, "llamad_prompt_tokens_cached_total"), cached)
        self.assertEqual(second["choices"][0]["text"], llamad_run(prompt, 10))

    def test_session_header_names_the_session(self):
        # X-Session-Id names a session as session_id does, on every generation
        # endpoint (the body's field too, when it names the same one).
        s = Shared.server
        prompt = "Tom had a red ball."
        for path, body, sid in (
                ("/v1/completions", greedy(prompt, max_tokens=12), "hdr-v1"),
                ("/completion", {"prompt": prompt, "n_predict": 12, "temperature": 0}, "hdr-native"),
                ("/v1/completions", greedy(prompt, max_tokens=12, session_id="hdr-both"),
                 "hdr-both")):
            st, _, first = s.post(path, body, headers={"X-Session-Id": sid})
            self.assertEqual(st, 200, first)
            text = first["choices"][0]["text"] if "choices" in first else first["content"]
            n_first = (first["usage"]["prompt_tokens"] if "usage" in first
                       else first["tokens_evaluated"])
            again = dict(body, prompt=prompt + text + " He ran.")
            st, _, second = s.post(path, again, headers={"X-Session-Id": sid})
            self.assertEqual(st, 200, second)
            cached = (second["usage"]["prompt_tokens_details"]["cached_tokens"]
                      if "usage" in second else second["tokens_cached"])
            self.assertEqual(cached, n_first + 12 - 1, (path, sid))
        # A chat, streamed: the header alone.
        msgs = [{"role": "user", "content": "Hi there"}]
        chat = {"messages": msgs, "max_tokens": 8, "temperature": 0, "stream": True,
                "stream_options": {"include_usage": True}}
        usages = []
        for turn in range(2):
            c, r = s.stream("/v1/chat/completions", chat, headers={"X-Session-Id": "hdr-chat"})
            self.assertEqual(r.status, 200)
            answer = ""
            for data in sse_events(r):
                if data and data != "[DONE]":
                    ev = json.loads(data)
                    if ev.get("usage"):
                        usages.append(ev["usage"])
                    for ch in ev.get("choices", []):
                        answer += ch["delta"].get("content") or ""
            c.close()
            msgs += [{"role": "assistant", "content": answer}, {"role": "user", "content": "More"}]
        self.assertEqual(usages[1]["prompt_tokens_details"]["cached_tokens"],
                         usages[0]["prompt_tokens"] + 8 - 1)

    def test_session_header_conflict_is_refused(self):
        s = Shared.server
        for path, body in (("/v1/completions", greedy(max_tokens=1, session_id="a")),
                           ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}],
                                                     "max_tokens": 1, "session_id": "a"}),
                           ("/completion", {"prompt": "x", "n_predict": 1, "session_id": "a"})):
            st, _, res = s.post(path, body, headers={"X-Session-Id": "b"})
            self.assertEqual(st, 400, res)
            self.assertEqual(res["error"]["param"], "X-Session-Id")
            self.assertIn("session_id", res["error"]["message"])
            st, _, res = s.post(path, body, headers={"X-Session-Id": "a b"})
            self.assertEqual((st, res["error"]["param"]), (400, "X-Session-Id"))

    def test_step_tokens_bounds_each_forward_pass(self):
        # A prompt of n tokens takes ceil(n / 8) passes of at most 8 tokens, and
        # each generated token after the first one pass more.
        prompt = STORY + " The cat sat on the warm mat and looked at the birds in the tree."
        with Server("--step-tokens", "8") as s:
            before = s.metrics()
            st, _, res = s.post("/v1/completions", greedy(prompt, max_tokens=3, ignore_eos=True))
            after = s.metrics()
        self.assertEqual(st, 200)
        n = res["usage"]["prompt_tokens"]
        self.assertGreater(n, 16)
        self.assertEqual(delta(before, after, "llamad_forward_passes_total"), -(-n // 8) + 2)
        self.assertEqual(res["choices"][0]["text"], llamad_run(prompt, 3))

    def test_chat_turn_reuses_the_conversation(self):
        s = Shared.server
        messages = [{"role": "user", "content": "Hi"}]
        body = {"messages": messages, "max_tokens": 20, "temperature": 0,
                "session_id": "kv-chat"}
        first = s.post("/v1/chat/completions", body)[2]
        answer = first["choices"][0]["message"]["content"]
        self.assertTrue(answer.startswith(" "))  # as the model wrote it after "assistant:"
        messages += [{"role": "assistant", "content": answer},
                     {"role": "user", "content": "And then?"}]
        second = s.post("/v1/chat/completions", body)[2]["usage"]
        # Everything but the new message (and the answer's last token, never fed).
        self.assertEqual(second["prompt_tokens_details"]["cached_tokens"],
                         first["usage"]["prompt_tokens"] + 20 - 1)

    def test_shared_prefix_without_session(self):
        s = Shared.server
        system = ("Once upon a time, there was a little girl named Lily. She loved to play "
                  "outside in the park with her friends. ")
        s.post("/v1/completions", greedy(system + "One day", max_tokens=8))
        _, _, res = s.post("/v1/completions", greedy(system + "The sun", max_tokens=8))
        cached = res["usage"]["prompt_tokens_details"]["cached_tokens"]
        self.assertGreaterEqual(cached, 32)  # whole blocks of 16 positions are shared
        self.assertEqual(cached % 16, 0)
        self.assertEqual(res["choices"][0]["text"], llamad_run(system + "The sun", 8))
        m = s.metrics()
        self.assertLessEqual(m["llamad_kv_cache_blocks_used"], m["llamad_kv_cache_blocks_reserved"])
        self.assertLessEqual(m["llamad_kv_cache_blocks_reserved"], m["llamad_kv_cache_blocks_total"])
        self.assertGreater(m["llamad_kv_cache_sequences_idle"], 0)
        self.assertTrue(0 < m["llamad_kv_cache_usage_ratio"] <= 1)

    def test_more_than_the_whole_cache_gets_400(self):
        # 1 MiB holds 102 blocks of 16 positions of the bundled model in the
        # default f16 cache (51 in f32): 1632 positions.
        with Server("--kv-cache-mb", "1") as s:
            self.assertEqual(s.metrics()["llamad_kv_cache_blocks_total"], 102)
            st, _, res = s.post("/v1/completions", greedy(max_tokens=1700))
            self.assertEqual(st, 400)
            self.assertEqual(res["error"]["param"], "max_tokens")
            self.assertIn("KV cache", res["error"]["message"])
            st, _, res = s.post("/v1/completions", greedy(max_tokens=1600, ignore_eos=True))
            self.assertEqual((st, res["usage"]["completion_tokens"]), (200, 1600))
        with Server("--kv-cache-mb", "1", "--kv-cache-type", "f32") as s:
            self.assertEqual(s.metrics()["llamad_kv_cache_blocks_total"], 51)

    def test_first_content_event_while_running(self):
        with slow_server() as s:
            c, r = s.stream("/v1/completions", greedy(max_tokens=1000, ignore_eos=True,
                                                     stream=True))
            first = json.loads(next(e for e in sse_events(r) if e is not None))
            self.assertIsNone(first["choices"][0]["finish_reason"])
            m = s.metrics()
            self.assertEqual(m["llamad_requests_running"], 1)
            self.assertEqual(m["llamad_generation_tokens_total"], 0)  # none finished yet
            c.close()

    def test_four_streams_advance_with_one_pass_per_step(self):
        n = 200
        with slow_server("--parallel", "4") as s:
            before = s.metrics()
            streams = [s.stream("/v1/completions", greedy(p, max_tokens=n, ignore_eos=True,
                                                         stream=True))
                       for p in (STORY, "The cat", "A dog", "Tom and Lily")]
            for c, r in streams:
                chunks = [e for e in sse_events(r) if e is not None]
                c.close()
                self.assertEqual(chunks[-1], "[DONE]")
            after = s.metrics()
            self.assertEqual(delta(before, after, "llamad_generation_tokens_total"), 4 * n)
            # One at a time that is 4n passes; together n and a few while they start.
            passes = delta(before, after, "llamad_forward_passes_total")
            self.assertLess(passes, 2 * n)


def histogram_delta(before, after, name):
    """(count, sum, count above the largest finite bound) of the observations of
    histogram `name` between two scrapes."""
    def buckets(m):
        return sorted((float(k[len(name) + 12:-2]), v) for k, v in m.items()
                      if k.startswith(name + '_bucket{le="'))
    b, a = buckets(before), buckets(after)
    above = (a[-1][1] - a[-2][1]) - (b[-1][1] - b[-2][1])
    return (delta(before, after, name + "_count"), delta(before, after, name + "_sum"), above)


class LatencyMetricsTest(unittest.TestCase):
    """The TTFT and inter-token histograms after known requests: one TTFT per
    response and one inter-token gap per later token, streamed or not, each a
    gap of this run (never the time since boot)."""

    def run_requests(self, stream, n=3, max_tokens=8):
        s = Shared.server
        before = s.metrics()
        t0 = time.monotonic()
        for i in range(n):
            body = greedy("%s %d" % (STORY, i), max_tokens=max_tokens, ignore_eos=True,
                          stream=stream)
            if stream:
                c, r = s.stream("/v1/completions", body)
                self.assertEqual([e for e in sse_events(r) if e is not None][-1], "[DONE]")
                c.close()
            else:
                st, _, res = s.post("/v1/completions", body)
                self.assertEqual((st, res["usage"]["completion_tokens"]), (200, max_tokens))
        wall = time.monotonic() - t0
        after = s.metrics()
        ttft = histogram_delta(before, after, "llamad_time_to_first_token_seconds")
        itl = histogram_delta(before, after, "llamad_inter_token_latency_seconds")
        self.assertEqual(ttft[0], n)
        self.assertEqual(itl[0], n * (max_tokens - 1))
        for count, total, above in (ttft, itl):
            self.assertEqual(above, 0)  # none only in +Inf
            self.assertTrue(0 <= total < wall, (total, wall))
        # The gaps of a response lie between its first token and its end.
        self.assertLess(ttft[1] + itl[1], wall)

    def test_whole_responses(self):
        self.run_requests(stream=False)

    def test_streams(self):
        self.run_requests(stream=True)


class KvCacheTypeTest(unittest.TestCase):
    def test_q8_0_cache_same_tokens_alone_or_together(self):
        # The slow model's heads are 64 wide: two Q8_0 blocks each.
        prompts = [STORY, "Lily and Tom went to the park.", "The dog ran", "One day"]
        with slow_server("--kv-cache-type", "q8_0", "--parallel", "4") as s:
            alone = [s.post("/v1/completions", greedy(p, max_tokens=12, ignore_eos=True))[2]
                     for p in prompts]
            together = [None] * len(prompts)

            def worker(i):
                together[i] = s.post("/v1/completions",
                                     greedy(prompts[i], max_tokens=12, ignore_eos=True))[2]

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        for a, b in zip(alone, together):
            self.assertEqual(a["choices"][0]["text"], b["choices"][0]["text"])
        r = subprocess.run([RUN, "-m", Shared.slow_model, "-p", STORY, "-n", "12", "--temp", "0",
                            "--ignore-eos", "--kv-cache-type", "q8_0"], capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode(), alone[0]["choices"][0]["text"])

    def test_q8_0_cache_refuses_heads_of_8(self):
        # The bundled model's heads are 8 values: not a whole Q8_0 block.
        with Server("--kv-cache-type", "q8_0", wait_ready=False) as s:
            self.assertEqual(s.wait_exit(30), 1)
            s.wait_log(r"q8_0 KV cache needs attention heads of a multiple of 32")


def cpu_kernel_set():
    """The kernel set /proc/cpuinfo's flags allow (cpu.c decides it from CPUID)."""
    with open("/proc/cpuinfo") as f:
        flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    ladder = [("avx2", {"avx2", "fma", "f16c"}),
              ("avx512", {"avx512f", "avx512bw", "avx512dq", "avx512vl"}),
              ("vnni", {"avx512_vnni"}), ("amx", {"amx_tile", "amx_int8"})]
    chosen = "scalar"
    for name, needs in ladder:
        if not needs <= set(flags):
            break
        chosen = name
    return chosen


class KernelSetTest(unittest.TestCase):
    """The daemon picks its kernels from the CPU running it, with nothing set in
    its environment (an AVX2 or AVX-512 machine never runs the plain references),
    logs them, and LLAMAD_CPU caps the choice."""

    def test_logs_the_cpus_own_set(self):
        with Server(env={"LLAMAD_CPU": None}) as s:
            s.wait_log(r"kernel set: %s$" % cpu_kernel_set())

    def test_llamad_cpu_caps_the_set(self):
        own = cpu_kernel_set()
        with Server(env={"LLAMAD_CPU": "scalar"}) as s:
            s.wait_log(r"kernel set: scalar" + ("" if own == "scalar" else
                                                 r" \(LLAMAD_CPU caps this CPU's %s\)" % own))

    def test_unknown_llamad_cpu_is_refused(self):
        r = subprocess.run([DAEMON, "--port", "0"], env=dict(os.environ, LLAMAD_CPU="sse9"),
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b'LLAMAD_CPU is "sse9": expected scalar, avx2, avx512, vnni or amx',
                      r.stderr)


class SignalTest(unittest.TestCase):
    def test_sigterm_lets_a_stream_finish(self):
        # A drain long enough for 150 tokens of the slow model in a sanitizer
        # build on a busy machine (ThreadSanitizer, load 5: 3 tokens/s).
        with slow_server("--drain-timeout", "300") as s:
            c, r = s.stream("/v1/completions", greedy(max_tokens=150, ignore_eos=True,
                                                     stream=True))
            events = sse_events(r)
            next(events)
            s.signal(signal.SIGTERM)
            rest = [e for e in events if e is not None]
            c.close()
            self.assertEqual(rest[-1], "[DONE]")
            self.assertEqual(json.loads(rest[-2])["choices"][0]["finish_reason"], "length")
            self.assertEqual(s.wait_exit(30), 0)

    def test_sigterm_drain_timeout_ends_streams_with_error(self):
        with slow_server("--drain-timeout", "1") as s:
            c, r = s.stream("/v1/completions", greedy(max_tokens=2000, ignore_eos=True,
                                                     stream=True))
            events = sse_events(r)
            next(events)
            s.signal(signal.SIGTERM)
            rest = [e for e in events if e is not None]
            c.close()
            self.assertEqual(rest[-1], "[DONE]")
            self.assertIn("error", json.loads(rest[-2]))
            self.assertEqual(s.wait_exit(30), 0)

    def test_draining_answers_kept_alive_connections_with_503(self):
        with slow_server() as s:
            kept = s.conn()
            kept.request("GET", "/health")
            self.assertEqual(kept.getresponse().read(), b'{"status":"ok"}')
            c, r = s.stream("/v1/completions", greedy(max_tokens=150, ignore_eos=True,
                                                     stream=True))
            events = sse_events(r)
            next(events)
            s.signal(signal.SIGTERM)
            s.wait_log("draining")
            kept.request("POST", "/v1/completions", body=json.dumps(greedy()).encode(),
                         headers={"Content-Type": "application/json"})
            resp = kept.getresponse()
            self.assertEqual(resp.status, 503)
            self.assertEqual(resp.getheader("Connection"), "close")
            resp.read()
            kept.close()
            self.assertEqual(list(events)[-1], "[DONE]")
            c.close()
            self.assertEqual(s.wait_exit(30), 0)

    def test_health_while_loading_and_bad_model(self):
        with Server("--model", "/nonexistent/model.gguf", wait_ready=False) as s:
            self.assertEqual(s.wait_exit(30), 1)
            s.wait_log(r"cannot load the model: .*nonexistent")

    def test_health_is_503_while_the_model_loads(self):
        # Opening a FIFO blocks until a writer comes: the model load hangs there
        # while the port is already bound.
        fifo = os.path.join(Shared.tmp.name, "loading.gguf")
        os.mkfifo(fifo)
        with Server("--model", fifo, wait_ready=False) as s:
            self.assertEqual(s.get_json("/health"), (503, {"status": "loading"}))
            st, _, res = s.post("/v1/completions", greedy())
            self.assertEqual(st, 503)
            with open(fifo, "wb"):
                pass  # lets the load go on, and fail: not a GGUF file
            self.assertEqual(s.wait_exit(30), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
