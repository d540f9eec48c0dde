"""Log-probability values through HTTP, not only their shapes: the bundled model
with an f32 KV cache (as the reference was made), teacher-forced on the
reference's greedy steps. At each checked step the prompt is the case's
prompt_ids plus the greedy ids before it; the two tokens generated from there
must report log(probability) of the reference's top entries, on /completion
(n_probs, as logprobs in llama.cpp's current shape) and /v1/completions
(logprobs). Chat takes messages, not ids: its logprobs must equal those
/v1/completions reports for the same rendered prompt, token by token."""
import json
import math
import os
import unittest

from llamad_server import Server

TOLERANCE = 2e-3  # the reference's logits hold to 1e-3, and so does their log-sum-exp


def load_reference():
    with open(os.path.join(os.environ["LLAMAD_TEST_DATA_DIR"], "stories260K.json")) as f:
        return json.load(f)


class Shared:
    server = None
    ref = None


def setUpModule():
    Shared.ref = load_reference()
    Shared.server = Server("--model", os.path.join(os.environ["LLAMAD_MODELS_DIR"],
                                                   "stories260K.gguf"),
                           "--kv-cache-type", "f32").__enter__()


def tearDownModule():
    Shared.server.__exit__(None, None, None)


def greedy_body(prompt, n):
    return {"prompt": prompt, "temperature": 0, "ignore_eos": True, "max_tokens": n}


class TeacherForcedTest(unittest.TestCase):
    def post(self, path, body):
        status, _, res = Shared.server.post(path, body)
        self.assertEqual(status, 200, res)
        return res

    def forced_steps(self):
        """(where, reference steps j and j+1, prompt ids) for every other step j of
        every case: two generated tokens each, so every step is checked once."""
        for c, case in enumerate(Shared.ref["cases"]):
            steps = case["steps"]
            for j in range(0, len(steps), 2):
                yield ("case %d step %d" % (c, j), steps[j:j + 2],
                       case["prompt_ids"] + [s["id"] for s in steps[:j]])

    def assert_close(self, got, prob, where):
        self.assertTrue(math.isfinite(got), where)
        self.assertLess(abs(got - math.log(prob)), TOLERANCE,
                        "%s: %.6f, reference log(%.7g) = %.6f" % (where, got, prob,
                                                                  math.log(prob)))

    def native(self, prompt):
        """/completion's two greedy tokens from prompt, each with its 10 likeliest
        (the reference's 8, with room for a near-tie at the 8th)."""
        res = self.post("/completion", dict(greedy_body(prompt, 2), n_probs=10))
        self.assertEqual(len(res["completion_probabilities"]), 2)
        return res["completion_probabilities"]

    def test_completion_n_probs(self):
        checked = 0
        for at, steps, prompt in self.forced_steps():
            probs = self.native(prompt)
            for k, step in enumerate(steps):
                where = "%s+%d" % (at, k)
                # Greedy reproduces the reference's ids (test_conformance holds that).
                self.assertEqual(probs[k]["id"], step["id"], where)
                ref = {t[0]: t[1] for t in step["top"]}
                self.assert_close(probs[k]["logprob"], ref[probs[k]["id"]], where + " sampled")
                got = {t["id"]: t["logprob"] for t in probs[k]["top_logprobs"]}
                for token, prob in ref.items():
                    self.assertIn(token, got, where)
                    self.assert_close(got[token], prob, "%s token %d" % (where, token))
                    checked += 1
        self.assertEqual(checked, 8 * sum(len(c["steps"]) for c in Shared.ref["cases"]))

    def test_v1_completions_logprobs(self):
        checked = 0
        for at, steps, prompt in self.forced_steps():
            # The same greedy tokens from /completion give their ids, and every
            # top id's text as this daemon renders it.
            probs = self.native(prompt)
            text = {t["id"]: t["token"] for p in probs for t in p["top_logprobs"]}
            res = self.post("/v1/completions", dict(greedy_body(prompt, len(steps)), logprobs=5))
            lp = res["choices"][0]["logprobs"]
            self.assertEqual(lp["tokens"], [p["token"] for p in probs[:len(steps)]])
            for k, step in enumerate(steps):
                where = "%s+%d" % (at, k)
                ref = {t[0]: t[1] for t in step["top"]}
                self.assert_close(lp["token_logprobs"][k], ref[probs[k]["id"]],
                                  where + " sampled")
                seen = set()
                for token, prob, _ in step["top"][:5]:
                    if text[token] in seen:
                        continue  # two ids of one text: the likelier one is reported
                    seen.add(text[token])
                    self.assertIn(text[token], lp["top_logprobs"][k], where)
                    self.assert_close(lp["top_logprobs"][k][text[token]], prob,
                                      "%s token %d" % (where, token))
                    checked += 1
        self.assertGreater(checked, 4 * sum(len(c["steps"]) for c in Shared.ref["cases"]))


class ChatTest(unittest.TestCase):
    def test_chat_logprobs_equal_completions_of_the_rendered_prompt(self):
        s = Shared.server
        messages = [{"role": "user", "content": "Tell me a story."}]
        n = 16
        st, _, chat = s.post("/v1/chat/completions",
                             {"messages": messages, "temperature": 0, "ignore_eos": True,
                              "max_tokens": n, "logprobs": True, "top_logprobs": 5})
        self.assertEqual(st, 200, chat)
        # The bundled model has no chat template: the plain layout, one text run.
        st, _, tok = s.post("/tokenize", {"content": "user: Tell me a story.\nassistant:",
                                          "add_special": True})
        self.assertEqual(st, 200, tok)
        self.assertEqual(len(tok["tokens"]), chat["usage"]["prompt_tokens"])
        st, _, comp = s.post("/v1/completions", dict(greedy_body(tok["tokens"], n), logprobs=5))
        self.assertEqual(st, 200, comp)
        self.assertEqual(chat["choices"][0]["message"]["content"], comp["choices"][0]["text"])

        content = chat["choices"][0]["logprobs"]["content"]
        lp = comp["choices"][0]["logprobs"]
        self.assertEqual([e["token"] for e in content], lp["tokens"])
        for k, entry in enumerate(content):
            self.assertLess(abs(entry["logprob"] - lp["token_logprobs"][k]), TOLERANCE, k)
            top = {}
            for t in entry["top_logprobs"]:
                top.setdefault(t["token"], t["logprob"])  # the likelier of one text, as there
            self.assertEqual(top.keys(), lp["top_logprobs"][k].keys(), k)
            for token, value in top.items():
                self.assertLess(abs(value - lp["top_logprobs"][k][token]), TOLERANCE,
                                (k, token))
            # A distribution: the top entries' probabilities add up to at most 1.
            self.assertLessEqual(sum(math.exp(t["logprob"]) for t in entry["top_logprobs"]),
                                 1 + 1e-4)


if __name__ == "__main__":
    unittest.main(verbosity=2)
