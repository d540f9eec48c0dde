"""A LLaMA-3 model through HTTP (the synthetic synth-llama3-F16 of ../shared: the
128,256-token byte-level BPE vocabulary, rope scaling): each of its end tokens
stops generation with finish_reason "stop" and is never text; ignore_eos goes
past all of them; a user typing <|eot_id|> gets characters, not the token."""
import os
import unittest

from llamad_server import Server

EOT, EOM, END_OF_TEXT = 128009, 128008, 128001


def shared_model():
    shared = os.environ.get("LLAMAD_SHARED_DIR") or os.environ["LLAMAD_SHARED_DIR_DEFAULT"]
    path = os.path.join(shared, "testdata", "models", "synth-llama3-F16.gguf")
    return path if os.path.exists(path) else None


class Llama3Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = shared_model()
        if not cls.model:
            raise unittest.SkipTest("../shared/testdata is not beside this checkout")
        cls.server = Server("--model", cls.model).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)

    def complete(self, **body):
        body = dict({"prompt": "The capital of France is", "max_tokens": 8,
                     "temperature": 0}, **body)
        status, _, res = self.server.post("/v1/completions", body)
        self.assertEqual(status, 200, res)
        return res["choices"][0]

    def test_every_end_token_stops_and_is_not_text(self):
        for end in (EOT, EOM, END_OF_TEXT):
            choice = self.complete(logit_bias={str(end): 100})
            self.assertEqual(choice["finish_reason"], "stop", end)
            self.assertEqual(choice["text"], "", end)

    def test_ignore_eos_goes_past_them(self):
        choice = self.complete(logit_bias={str(EOM): 100}, ignore_eos=True)
        self.assertEqual(choice["finish_reason"], "length")

    def test_typed_special_text_is_text(self):
        status, _, res = self.server.post("/tokenize", {"content": "<|eot_id|>"})
        self.assertEqual(status, 200)
        self.assertNotIn(EOT, res["tokens"])
        self.assertGreater(len(res["tokens"]), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
