"""llamad-cli (clients/cli/) against a real llamad: a one-shot prompt, a chat of
two turns on one session, Ctrl-C mid-answer, API keys."""
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

from llamad_server import Server

BUILD = os.environ["LLAMAD_BUILD_DIR"]
CLI = os.path.join(BUILD, "clients", "cli", "llamad-cli")
MKMODEL = os.path.join(BUILD, "llamad-mkmodel")
BUNDLED = os.path.join(os.environ["LLAMAD_MODELS_DIR"], "stories260K.gguf")
STATS = re.compile(r"^\[(\d+) tokens, prompt (\d+) \((\d+) cached\), TTFT [\d.]+ ms, "
                   r"[\d.]+ tokens/s\]$", re.M)


def cli(server, *args, stdin=None, env=None):
    env = {k: v for k, v in dict(os.environ, **(env or {})).items() if v is not None}
    return subprocess.run([CLI, "--url", "http://127.0.0.1:%d" % server.port] + list(args),
                          input=stdin, capture_output=True, text=True, timeout=120, env=env)


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)

    def test_one_shot_streams_text_and_stats(self):
        r = cli(self.server, "-n", "24", "-t", "0", "Once upon a time")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, _, direct = self.server.post("/v1/chat/completions", {
            "messages": [{"role": "user", "content": "Once upon a time"}],
            "max_tokens": 24, "temperature": 0})
        self.assertEqual(r.stdout, direct["choices"][0]["message"]["content"] + "\n")
        stats = STATS.search(r.stderr)
        self.assertIsNotNone(stats, r.stderr)
        self.assertEqual(stats.group(1), "24")

    def test_chat_keeps_history_and_session(self):
        r = cli(self.server, "-n", "16", "--seed", "7", "--system", "You tell stories.",
                stdin="Tell me about a cat.\nAnd then?\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        turns = [tuple(map(int, m.groups())) for m in STATS.finditer(r.stderr)]
        self.assertEqual(len(turns), 2, r.stderr)
        (_, first_prompt, _), (_, second_prompt, cached) = turns
        # The second turn repeats the first with its answer: all of that comes
        # from the session's cache.
        self.assertGreater(second_prompt, first_prompt + 16)
        self.assertGreaterEqual(cached, first_prompt + 15)
        self.assertTrue(r.stdout.strip())

    def test_server_error_is_clear(self):
        r = cli(self.server, "--top-p", "7", "hello")
        self.assertEqual(r.returncode, 1)
        self.assertIn("error 400", r.stderr)
        self.assertIn("top_p", r.stderr)

    def test_no_daemon(self):
        r = subprocess.run([CLI, "--url", "http://127.0.0.1:1", "hi"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("127.0.0.1:1", r.stderr)

    def test_bad_option(self):
        r = subprocess.run([CLI, "--max-tokens", "0", "hi"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--max-tokens", r.stderr)


class CliApiKeyTest(unittest.TestCase):
    def test_api_key(self):
        with Server("--api-key", "sesame") as s:
            r = cli(s, "-n", "4", "hi", env={"LLAMAD_API_KEY": None})
            self.assertEqual(r.returncode, 1)
            self.assertIn("error 401 invalid_api_key", r.stderr)
            r = cli(s, "-n", "4", "--api-key", "sesame", "hi")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stderr, STATS)
            r = cli(s, "-n", "4", "hi", env={"LLAMAD_API_KEY": "sesame"})
            self.assertEqual(r.returncode, 0, r.stderr)


class CliInterruptTest(unittest.TestCase):
    def test_ctrl_c_stops_the_answer(self):
        # Random weights: slow enough (a few hundred tokens/s) that the answer
        # is still running when the signal comes.
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "slow.gguf")
            subprocess.run([MKMODEL, "-o", model, "--vocab", BUNDLED, "--dim", "512",
                            "--layers", "8", "--heads", "8", "--kv-heads", "8", "--ff", "1536",
                            "--type", "F32"], check=True, capture_output=True, timeout=120)
            with Server("--model", model) as s:
                p = subprocess.Popen([CLI, "--url", "http://127.0.0.1:%d" % s.port, "-n",
                                      "1800", "--ignore-eos", "-t", "0", "Once upon a time"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                self.assertTrue(p.stdout.read(1))  # the answer has begun
                p.send_signal(signal.SIGINT)
                start = time.monotonic()
                out, err = p.communicate(timeout=30)
                self.assertLess(time.monotonic() - start, 5)
                self.assertEqual(p.returncode, 130, err)
                self.assertIn("[stopped, ", err.decode())
                line = s.wait_log(r"path=/v1/chat/completions status=200 .*client_gone=1")
                generated = int(re.search(r"completion_tokens=(\d+)", line).group(1))
                self.assertLess(generated, 1800)


if __name__ == "__main__":
    unittest.main(verbosity=2)
