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


if __name__ == "__main__":
    if not shutil.which("node") or not os.path.isdir(
            os.path.join(CLIENT_DIR, "node_modules", "openai")):
        print("SKIP: node or the openai package is missing (npm install --prefix tests/openai)")
        sys.exit(77)
    unittest.main(verbosity=2)
