"""clients/llamad_client.py and the OpenAI Node examples of clients/examples/
against a real llamad. The examples use the openai package the README's test
command installs in tests/openai (found through NODE_PATH); without node or it
this test skips (exit 77), which fails tests/run-suite."""
import os
import shutil
import subprocess
import sys
import unittest

from llamad_server import Server

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "clients"))
from llamad_client import Client, LlamadError  # noqa: E402

NODE_MODULES = os.path.join(HERE, "openai", "node_modules")
MESSAGES = [{"role": "user", "content": "Tell me a story."}]


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("--api-key", "sesame").__enter__()
        cls.url = "http://127.0.0.1:%d" % cls.server.port

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)

    def test_stream_chat_matches_whole_answer(self):
        client = Client(self.url, api_key="sesame")
        pieces = list(client.stream_chat(MESSAGES, max_tokens=20, temperature=0))
        self.assertGreater(len(pieces), 1)
        self.assertEqual(client.last_usage["completion_tokens"], 20)
        whole = client.chat(MESSAGES, max_tokens=20, temperature=0)
        self.assertEqual("".join(pieces), whole["choices"][0]["message"]["content"])

    def test_complete(self):
        out = Client(self.url + "/", api_key="sesame").complete("Once upon a time",
                                                                max_tokens=8)
        self.assertEqual(out["usage"]["completion_tokens"], 8)
        self.assertTrue(out["choices"][0]["text"])

    def test_errors_carry_the_error_object(self):
        with self.assertRaises(LlamadError) as cm:
            list(Client(self.url).stream_chat(MESSAGES, max_tokens=4))
        self.assertEqual(cm.exception.status, 401)
        self.assertEqual(cm.exception.error["code"], "invalid_api_key")
        with self.assertRaises(LlamadError) as cm:
            Client(self.url, api_key="sesame").chat(MESSAGES, top_p=7)
        self.assertEqual(cm.exception.status, 400)
        self.assertEqual(cm.exception.error["param"], "top_p")


class NodeExamplesTest(unittest.TestCase):
    def test_examples_run(self):
        if not shutil.which("node") or not os.path.isdir(os.path.join(NODE_MODULES, "openai")):
            self.skipTest("node or the openai package is missing "
                          "(npm install --prefix tests/openai)")
        env = dict(os.environ, NODE_PATH=NODE_MODULES)
        env.pop("LLAMAD_API_KEY", None)
        with Server() as s:
            base = "http://127.0.0.1:%d/v1" % s.port
            out = {}
            for name in ("completion", "chat", "stream"):
                r = subprocess.run(["node", os.path.join(ROOT, "clients", "examples", name + ".js"),
                                    base], capture_output=True, text=True, timeout=120, env=env)
                self.assertEqual(r.returncode, 0, r.stderr)
                out[name] = r.stdout
        self.assertRegex(out["completion"], r"\S+[\s\S]*\(40 tokens, length\)\n$")
        self.assertRegex(out["chat"], r"^assistant: .*\S")
        self.assertRegex(out["stream"], r"\S[\s\S]*\n\(\d+ chunks, 40 tokens\)\n$")


if __name__ == "__main__":
    result = unittest.main(verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if result.skipped else 0)
