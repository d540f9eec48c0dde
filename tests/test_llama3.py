"""A LLaMA-3 model through HTTP (the synthetic synth-llama3-F16 of ../shared: the
128,256-token byte-level BPE vocabulary, rope scaling): each of its end tokens
stops generation with finish_reason "stop" and is never text; ignore_eos goes
past all of them; a user typing <|eot_id|> gets characters, not the token."""
import unittest

from llamad_server import Server, shared_model

EOT, EOM, END_OF_TEXT = 128009, 128008, 128001


class Llama3Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = shared_model("synth-llama3-F16.gguf")
        if not cls.model:
            raise unittest.SkipTest("../shared/testdata is not beside this checkout")
        cls.server = Server("--model", cls.model, "--chat-template", "llama3").__enter__()

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

    def test_apply_template_shows_the_llama3_prompt(self):
        # What llama.cpp's /apply-template gives for LLaMA-3: BOS once, content trimmed.
        status, _, res = self.server.post("/apply-template", {"messages": [
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": " Hi\n"}]})
        self.assertEqual(status, 200, res)
        self.assertEqual(res["prompt"],
                         "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                         "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                         "Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")

    def test_chat_ends_at_eot(self):
        status, _, res = self.server.post("/v1/chat/completions", {
            "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8,
            "temperature": 0, "logit_bias": {str(EOT): 100}})
        self.assertEqual(status, 200, res)
        self.assertEqual(res["choices"][0]["finish_reason"], "stop")
        self.assertEqual(res["choices"][0]["message"]["content"], "")
        # BOS; <|start_header_id|> user <|end_header_id|>; "\n\n" "Hi"; <|eot_id|>;
        # <|start_header_id|> assistant <|end_header_id|>; "\n\n"
        self.assertEqual(res["usage"]["prompt_tokens"], 11)

    def test_typed_special_text_is_text(self):
        status, _, res = self.server.post("/tokenize", {"content": "<|eot_id|>"})
        self.assertEqual(status, 200)
        self.assertNotIn(EOT, res["tokens"])
        self.assertGreater(len(res["tokens"]), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
