"""The official OpenAI client library (Node) against a real llamad. Skipped
(exit 77) when node or the client package is not installed, which fails
tests/run-suite: the README's test command installs it with
`npm install --prefix tests/openai`."""
import json
import os
import shutil
import subprocess
import sys
import unittest

from llamad_server import Server

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_DIR = os.path.join(HERE, "openai")


class OpenAIClientTest(unittest.TestCase):
    def test_official_client(self):
        with Server() as s:
            base = "http://127.0.0.1:%d/v1" % s.port
            r = subprocess.run(["node", os.path.join(CLIENT_DIR, "client.mjs"), base],
                               capture_output=True, timeout=120, cwd=CLIENT_DIR)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            out = json.loads(r.stdout)
            _, _, direct = s.post("/v1/completions", {"prompt": "Once upon a time",
                                                      "max_tokens": 24, "temperature": 0})
        self.assertEqual(out["completion"]["choices"][0]["text"], direct["choices"][0]["text"])
        self.assertEqual(out["completion"]["usage"]["completion_tokens"], 24)
        chat = out["chat"]["choices"][0]
        self.assertEqual(chat["message"]["role"], "assistant")
        self.assertEqual(len(chat["logprobs"]["content"]), 12)
        self.assertEqual(out["stream"]["text"], chat["message"]["content"])
        self.assertEqual(out["stream"]["usage"]["completion_tokens"], 12)
        self.assertEqual(out["stream"]["finish"], "length")
        self.assertEqual(out["error"]["status"], 400)
        self.assertEqual(out["error"]["param"], "n")
        self.assertEqual(out["models"], ["stories260K.gguf"])

    def test_tool_calls(self):
        """tools through the client, whole and streamed; a call and its result back
        in the conversation; the constrained choices as test_tools.py has them."""
        with Server() as s:
            base = "http://127.0.0.1:%d/v1" % s.port
            r = subprocess.run(["node", os.path.join(CLIENT_DIR, "tools.mjs"), base],
                               capture_output=True, timeout=120, cwd=CLIENT_DIR)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        out = json.loads(r.stdout)
        auto, stream = out["auto"], out["autoStream"]
        self.assertIn(auto["finish_reason"], ("stop", "length", "tool_calls"))
        self.assertEqual(stream["finish"], auto["finish_reason"])
        self.assertEqual(stream["content"], auto["message"]["content"] or "")
        self.assertEqual(len(stream["calls"]), len(auto["message"].get("tool_calls") or []))
        self.assertEqual(out["roundTrip"]["message"]["role"], "assistant")
        for key in ("required", "named"):
            got = out[key]
            whole, streamed = got["whole"], got["streamed"]
            self.assertEqual(whole["finish_reason"], "tool_calls")
            self.assertIsNone(whole["message"]["content"])
            [call] = whole["message"]["tool_calls"]  # parallel_tool_calls false: one
            self.assertEqual(call["function"]["name"], "get_weather")
            self.assertIn(json.loads(call["function"]["arguments"])["unit"], ("c", "f"))
            self.assertEqual(streamed["finish"], "tool_calls")
            [scall] = streamed["calls"]
            self.assertRegex(scall["id"], r"^call_[A-Za-z0-9]{24}$")
            self.assertEqual((scall["name"], scall["arguments"]),
                             (call["function"]["name"], call["function"]["arguments"]))


if __name__ == "__main__":
    if not shutil.which("node") or not os.path.isdir(
            os.path.join(CLIENT_DIR, "node_modules", "openai")):
        print("SKIP: node or the openai package is missing (npm install --prefix tests/openai)")
        sys.exit(77)
    unittest.main(verbosity=2)
