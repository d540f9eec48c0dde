"""JSON Schema constrained generation through HTTP, held to an independent
validator: on the synthetic models of ../shared (random weights: at temperature
1 their output is noise, so only the constraint makes it valid), the 32k
SentencePiece synth256-Q8_0 and the 128k LLaMA-3 synth-llama3-Q8_0, several
seeds of each schema through `response_format` on /v1/chat/completions
(streamed and not) and `json_schema` on /completion. Every answer must end by
itself (finish_reason "stop": the schemas bound every string, number and list)
and be JSON that Debian's python3-jsonschema accepts under the schema.

Needs python3-jsonschema (run by /usr/bin/python3 when the python3 first on the
PATH lacks it); exits 77 (skipped) without it."""
import json
import unittest

from debian_python import import_or_skip, schema_errors
from llamad_server import Server, shared_model, sse_events

import_or_skip("jsonschema")

# Every string, number and list bounded, so a random model comes to the end.
SCHEMAS = {
    "person": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 8},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "pet": {"enum": ["cat", "dog", None]},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    },
    "numbers": {
        "type": "array",
        "items": {"type": "integer", "minimum": -5, "maximum": 5},
        "minItems": 1,
        "maxItems": 4,
    },
    "event": {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date"},
            "id": {"type": "string", "format": "uuid"},
            "ok": {"type": "boolean"},
        },
        "required": ["when", "id", "ok"],
        "additionalProperties": False,
    },
    "choice": {
        "$defs": {
            "point": {
                "type": "object",
                "properties": {"x": {"type": "integer", "minimum": 0, "maximum": 9}},
                "required": ["x"],
                "additionalProperties": False,
            }
        },
        "anyOf": [{"$ref": "#/$defs/point"}, {"type": "string", "pattern": "^[a-c]{2,3}$"}],
    },
    "pair": {
        "type": "array",
        "prefixItems": [{"type": "boolean"}, {"const": "done"}],
        "minItems": 2,
        "maxItems": 2,
    },
}

MAX_TOKENS = 500


class StructuredOutput:
    """The checks, for one model (the subclasses below name it)."""
    MODEL = None
    SEEDS = ()

    @classmethod
    def setUpClass(cls):
        cls.model = shared_model(cls.MODEL)
        if not cls.model:
            raise unittest.SkipTest("../shared/testdata is not beside this checkout")
        cls.server = Server("--model", cls.model, "--parallel", "4").__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)

    def check(self, name, text, finish, seed, how):
        where = f"{name}, seed {seed}, {how}: {text!r}"
        self.assertEqual(finish, "stop", where)
        self.assertEqual(schema_errors(SCHEMAS[name], text), [], where)

    def chat(self, name, seed, stream):
        body = {
            "messages": [{"role": "user", "content": "Answer in JSON."}],
            "max_tokens": MAX_TOKENS, "temperature": 1, "seed": seed,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": name, "schema": SCHEMAS[name],
                                                "strict": True}},
        }
        if not stream:
            status, _, answer = self.server.post("/v1/chat/completions", body)
            self.assertEqual(status, 200, answer)
            choice = answer["choices"][0]
            return choice["message"]["content"], choice["finish_reason"]
        body["stream"] = True
        conn, resp = self.server.stream("/v1/chat/completions", body)
        self.assertEqual(resp.status, 200)
        text, finish = "", None
        for ev in sse_events(resp):
            if ev is None:
                continue
            if ev == "[DONE]":
                break
            choice = json.loads(ev)["choices"][0]
            text += choice["delta"].get("content") or ""
            finish = choice.get("finish_reason") or finish
        conn.close()
        return text, finish

    def native(self, name, seed):
        status, _, answer = self.server.post("/completion", {
            "prompt": "JSON:", "n_predict": MAX_TOKENS, "temperature": 1, "seed": seed,
            "json_schema": SCHEMAS[name]})
        self.assertEqual(status, 200, f"{name}, seed {seed}: {answer}")
        finish = {"eos": "stop", "limit": "length"}.get(answer["stop_type"], answer["stop_type"])
        return answer["content"], finish

    def test_chat_response_format(self):
        for name in SCHEMAS:
            for seed in self.SEEDS:
                text, finish = self.chat(name, seed, stream=seed % 2 == 1)
                self.check(name, text, finish, seed, "chat, streamed" if seed % 2 else "chat")

    def test_native_json_schema(self):
        for name in SCHEMAS:
            for seed in self.SEEDS:
                text, finish = self.native(name, seed)
                self.check(name, text, finish, seed, "/completion")

    def test_outputs_differ_by_seed(self):
        # the constraint leaves the model a choice: noise, not one fixed answer
        texts = {self.native("person", seed)[0] for seed in self.SEEDS}
        self.assertGreater(len(texts), 1, texts)


class SentencePiece32k(StructuredOutput, unittest.TestCase):
    MODEL = "synth256-Q8_0.gguf"
    SEEDS = (1, 2, 3, 4, 5)


class Llama3Bpe128k(StructuredOutput, unittest.TestCase):
    MODEL = "synth-llama3-Q8_0.gguf"
    SEEDS = (1, 2, 3)


if __name__ == "__main__":
    unittest.main(verbosity=2)
