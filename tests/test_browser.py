"""The chat page at / in headless Chromium: tests/browser/chat_page.mjs drives
Debian's chromium through playwright-core against two real daemons, one
without keys serving the bundled model, one with an API key serving a random
110M model on one thread (slow enough to stop mid-answer on every kernel set:
a 15M one reached its 4096 positions before the page could stop it once AVX2
machines got an int8 GEMM and attention kernels; and it seldom ends by itself).
Screenshots go to BUILD/meson-logs/browser/.

Without node, chromium or the playwright-core package (the README's test command
installs them: `npm install --prefix tests/browser`) it fails under CI=true and
skips (exit 77) otherwise, which tests/run-suite also fails."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from llamad_server import BUILD, Server

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER_DIR = os.path.join(HERE, "browser")
ARTIFACTS = os.path.join(BUILD, "meson-logs", "browser")
VOCAB = os.path.join(os.environ["LLAMAD_TEST_DATA_DIR"], "ggml-vocab-llama-spm.gguf")
KEY = "k-browser-test"
KEY_CONTEXT = 4096


def chromium():
    """The browser: $LLAMAD_CHROMIUM, else Debian's chromium; None when not there."""
    named = os.environ.get("LLAMAD_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing():
    """What the test needs and this machine lacks."""
    lacks = []
    if not shutil.which("node"):
        lacks.append("node")
    if not chromium():
        lacks.append("chromium")
    if not os.path.isdir(os.path.join(DRIVER_DIR, "node_modules", "playwright-core")):
        lacks.append("playwright-core (npm install --prefix tests/browser)")
    return lacks


class BrowserTest(unittest.TestCase):
    def test_chat_page(self):
        os.makedirs(ARTIFACTS, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "random-110M.gguf")
            subprocess.run([os.path.join(BUILD, "llamad-mkmodel"), "--preset", "110M", "--ctx",
                            str(KEY_CONTEXT), "--vocab", VOCAB, "-o", model],
                           check=True, capture_output=True)
            with Server() as plain, Server("--model", model, "--api-key", KEY,
                                           "--threads", "1") as keyed:
                cfg = {"base": "http://127.0.0.1:%d" % plain.port,
                       "keyBase": "http://127.0.0.1:%d" % keyed.port,
                       "key": KEY, "keyModel": "random-110M.gguf", "keyContext": KEY_CONTEXT,
                       "artifacts": ARTIFACTS, "chromium": chromium()}
                r = subprocess.run(["node", os.path.join(DRIVER_DIR, "chat_page.mjs"),
                                    json.dumps(cfg)], cwd=DRIVER_DIR, capture_output=True,
                                   timeout=240)
                sys.stderr.write(r.stderr.decode("utf-8", "replace"))
                self.assertEqual(r.returncode, 0, "the browser test failed (above)")
                out = json.loads(r.stdout.decode().strip().splitlines()[-1])
                # the daemon saw the stopped answer's client leave, and the
                # answer ended there, far short of its context
                line = keyed.wait_log(r"path=/v1/chat/completions .*client_gone=1", 5)
                tokens = int(re.search(r"completion_tokens=(\d+)", line).group(1))
                self.assertLess(tokens, KEY_CONTEXT // 2, line)
        for path in out["screenshots"]:
            self.assertGreater(os.path.getsize(path), 10000, path)
            print("screenshot:", path)
        print("turn 1:", out["turn1"]["stats"])
        print("turn 2:", out["turn2"]["stats"])
        print("stopped:", out["stop"]["stats"])


if __name__ == "__main__":
    lacks = missing()
    if lacks:
        msg = "the browser test needs " + ", ".join(lacks)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            print("FAIL: " + msg + " (CI must run it)")
            sys.exit(1)
        print("SKIP: " + msg)
        sys.exit(77)
    unittest.main(verbosity=2)
