"""Tool calling through HTTP, on the bundled model under several chat templates
and on the synthetic models of ../shared under their own: tools and tool
messages rendered into the prompt (/apply-template shows it), requests with
tools answered and streamed as without them, tool_choice "none" leaving the
prompt untouched, and the constrained choices ("required", a named function):
at temperature 1 over several seeds (random weights: only the constraint makes
the output a call), whole and streamed, in each template's call syntax, every
answer must be calls of the right functions whose arguments Debian's
python3-jsonschema accepts under the function's parameters; and a request that
constrains the output another way too is refused, naming the field.

The parsing of calls out of text is held to its cases in test_tool_calls.c: an
unconstrained model with random or story weights does not write calls.

Needs python3-jsonschema (run by /usr/bin/python3 when the python3 first on the
PATH lacks it); exits 77 (skipped) without it."""
import json
import unittest

from debian_python import import_or_skip, schema_errors
from llamad_server import Server, shared_model, sse_events

import_or_skip("jsonschema")

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather now",
    "parameters": {"type": "object", "properties": {"unit": {"enum": ["c", "f"]}},
                   "required": ["unit"], "additionalProperties": False}}}
ADD = {"type": "function", "function": {
    "name": "add", "parameters": {"type": "object", "properties": {"a": {"enum": [1, 2]}},
                                  "required": ["a"], "additionalProperties": False}}}
ASK = [{"role": "user", "content": "What is the weather?"}]
ROUND_TRIP = ASK + [
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_abc", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"unit\": \"c\"}"}}]},
    {"role": "tool", "tool_call_id": "call_abc", "content": "5 degrees"}]


def stream_chunks(server, body):
    c, r = server.stream("/v1/chat/completions", dict(body, stream=True))
    assert r.status == 200, r.read()
    chunks = []
    for data in sse_events(r):
        if data is None:
            continue
        if data == "[DONE]":
            break
        chunks.append(json.loads(data))
    c.close()
    return chunks


def assemble(chunks):
    """(content, tool_calls by index, finish_reason) of a chat stream, as a client
    puts the deltas together."""
    content, calls, finish = "", {}, None
    for ch in chunks:
        for choice in ch["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for tc in delta.get("tool_calls") or []:
                call = calls.setdefault(tc["index"], {"id": None, "name": "", "arguments": ""})
                if "id" in tc:
                    call["id"] = tc["id"]
                    assert tc["type"] == "function", tc
                fn = tc.get("function", {})
                call["name"] += fn.get("name", "")
                call["arguments"] += fn.get("arguments", "")
            finish = choice["finish_reason"] or finish
    return content, calls, finish


# The seeds each constrained request is run with, at temperature 1.
SEEDS = (1, 2, 3)
PARAMETERS = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, ADD)}


class ToolsTest(unittest.TestCase):
    """The bundled model with no template of its own: the plain layout."""
    template = None
    model = None  # a synthetic model of ../shared, or the bundled one
    # Whether the model ends an answer of calls by itself: the bundled story model
    # goes on calling, one call after another, up to max_tokens.
    ends_calls = False

    @classmethod
    def setUpClass(cls):
        args = ("--chat-template", cls.template) if cls.template else ()
        if cls.model:
            path = shared_model(cls.model)
            if not path:
                raise unittest.SkipTest("../shared/testdata is not beside this checkout")
            args += ("--model", path)
        cls.server = Server(*args).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)

    def post(self, path, body, want=200):
        status, _, res = self.server.post(path, body)
        self.assertEqual(status, want, res)
        return res

    def prompt(self, **body):
        return self.post("/apply-template", body)["prompt"]

    def chat(self, **body):
        return self.post("/v1/chat/completions",
                         dict({"messages": ASK, "max_tokens": 12, "temperature": 0}, **body))

    def test_tools_in_the_prompt(self):
        plain = self.prompt(messages=ASK)
        with_tools = self.prompt(messages=ASK, tools=[WEATHER, ADD])
        self.assertNotIn("get_weather", plain)
        for text in ('"name": "get_weather"', '"description": "The weather now"',
                     '"parameters": {"type":"object","properties":{"unit":{"enum":["c","f"]}}',
                     '"name": "add"', "What is the weather?"):
            self.assertIn(text, with_tools)
        # "none": the model is not told of the tools
        self.assertEqual(self.prompt(messages=ASK, tools=[WEATHER], tool_choice="none"), plain)

    def test_tool_messages_in_the_prompt(self):
        p = self.prompt(messages=ROUND_TRIP)
        self.assertIn('"name": "get_weather", "', p)
        self.assertIn('{"unit":"c"}', p)  # the arguments, as compact JSON
        self.assertIn("5 degrees", p)
        self.assertLess(p.index("get_weather"), p.index("5 degrees"))
        res = self.chat(messages=ROUND_TRIP, tools=[WEATHER])
        self.assertEqual(res["choices"][0]["message"]["role"], "assistant")

    def test_answer_with_tools_whole_and_streamed(self):
        body = {"tools": [WEATHER, ADD], "tool_choice": "auto", "seed": 7}
        whole = self.chat(**body)["choices"][0]
        self.assertIn(whole["finish_reason"], ("stop", "length", "tool_calls"))
        content, calls, finish = assemble(stream_chunks(self.server, dict(
            {"messages": ASK, "max_tokens": 12, "temperature": 0}, **body)))
        self.assertEqual(finish, whole["finish_reason"])
        self.assertEqual(content, whole["message"]["content"] or "")
        self.assertEqual(len(calls), len(whole["message"].get("tool_calls") or []))

    def test_none_is_as_without_tools(self):
        a = self.chat()["choices"][0]["message"]["content"]
        b = self.chat(tools=[WEATHER], tool_choice="none")["choices"][0]
        self.assertEqual(b["message"]["content"], a)
        self.assertNotIn("tool_calls", b["message"])
        content, calls, finish = assemble(stream_chunks(self.server, {
            "messages": ASK, "max_tokens": 12, "temperature": 0, "tools": [WEATHER],
            "tool_choice": "none"}))
        self.assertEqual((content, calls), (a, {}))

    def check_calls(self, calls, names, parallel, where):
        """calls: (name, arguments) pairs, all of the functions names and valid."""
        self.assertGreaterEqual(len(calls), 1, where)
        if not parallel:
            self.assertEqual(len(calls), 1, where)
        for name, arguments in calls:
            self.assertIn(name, names, where)
            self.assertEqual(schema_errors(PARAMETERS[name], arguments), [],
                             f"{where}: {arguments!r}")

    def constrained(self, body, where):
        """The answer's finish_reason, content and (name, arguments) calls, once
        checked that the ids are OpenAI's and that the stream has the same calls."""
        whole = self.chat(**body)["choices"][0]
        calls = whole["message"].get("tool_calls") or []
        for call in calls:
            self.assertRegex(call["id"], r"^call_[A-Za-z0-9]{24}$")
            self.assertEqual(call["type"], "function")
        pairs = [(c["function"]["name"], c["function"]["arguments"]) for c in calls]
        content, streamed, finish = assemble(stream_chunks(self.server, body))
        self.assertEqual((content or None, finish),
                         (whole["message"]["content"], whole["finish_reason"]), where)
        self.assertEqual([(c["name"], c["arguments"]) for _, c in sorted(streamed.items())],
                         pairs, where)
        return whole["finish_reason"], whole["message"]["content"], pairs

    def test_constrained_choices(self):
        """Whatever the seed, the answer is calls, whole and streamed alike."""
        def named(name):
            return {"type": "function", "function": {"name": name}}

        both = {"get_weather", "add"}
        # parallel_tool_calls None: not given (one call or more, as with true)
        for choice, names, parallel in (("required", both, True), (named("add"), {"add"}, None),
                                        ("required", both, False),
                                        (named("get_weather"), {"get_weather"}, False)):
            for seed in SEEDS:
                body = {"messages": ASK, "tools": [WEATHER, ADD], "tool_choice": choice,
                        "max_tokens": 300, "temperature": 1, "seed": seed}
                if parallel is not None:
                    body["parallel_tool_calls"] = parallel
                where = f"{choice}, parallel {parallel}, seed {seed}"
                finish, content, calls = self.constrained(body, where)
                if parallel is not False and not self.ends_calls:
                    # Cut short by max_tokens: the calls before the cut, if the syntax
                    # has them without its end (Mistral's "]").
                    self.assertIn(finish, ("tool_calls", "length"), where)
                    if calls:
                        self.check_calls(calls, names, True, where)
                    continue
                self.assertEqual((finish, content), ("tool_calls", None), where)
                self.check_calls(calls, names, parallel is not False, where)

    def test_constrained_conflicts(self):
        """tool_choice "required" or named is the output's constraint: no other one beside it."""
        for choice in ("required", {"type": "function", "function": {"name": "add"}}):
            for field, value in (("grammar", 'root ::= "x"'),
                                 ("json_schema", {"type": "string"}),
                                 ("response_format", {"type": "json_object"}),
                                 ("response_format", {"type": "json_schema", "json_schema": {
                                     "name": "n", "schema": {"type": "string"}}})):
                res = self.post("/v1/chat/completions", {
                    "messages": ASK, "tools": [WEATHER, ADD], "tool_choice": choice,
                    field: value}, 400)
                self.assertEqual(res["error"]["param"], field)
                self.assertIn(f"'{field}' cannot be given with tool_choice",
                              res["error"]["message"])
        # "auto" leaves the output free, so a grammar may constrain it.
        res = self.chat(tools=[WEATHER], tool_choice="auto", grammar='root ::= "x"')
        self.assertEqual(res["choices"][0]["message"]["content"], "x")


class ChatMLToolsTest(ToolsTest):
    template = "chatml"

    def test_hermes_form(self):
        p = self.prompt(messages=ROUND_TRIP, tools=[WEATHER])
        self.assertTrue(p.startswith("<s><|im_start|>system\nThese functions can be called"), p)
        self.assertIn("<tools>\n{\"type\": \"function\"", p)
        self.assertIn("<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", "
                      "\"arguments\": {\"unit\":\"c\"}}\n</tool_call><|im_end|>", p)
        self.assertIn("<|im_start|>tool\n<tool_response>\n5 degrees\n</tool_response><|im_end|>",
                      p)


class Llama3ToolsTest(ToolsTest):
    template = "llama3"

    def test_llama31_form(self):
        p = self.prompt(messages=ROUND_TRIP, tools=[WEATHER])
        self.assertIn("<|start_header_id|>user<|end_header_id|>\n\nThese functions can be called", p)
        self.assertIn("<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": "
                      "\"get_weather\", \"parameters\": {\"unit\":\"c\"}}<|eot_id|>", p)
        self.assertIn("<|start_header_id|>ipython<|end_header_id|>\n\n5 degrees<|eot_id|>", p)


class MistralToolsTest(ToolsTest):
    template = "mistral"

    def test_mistral_form(self):
        p = self.prompt(messages=ROUND_TRIP + [{"role": "user", "content": "And tomorrow?"}],
                        tools=[WEATHER])
        self.assertIn("[/INST][TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": "
                      "{\"unit\":\"c\"}, \"id\": \"call_abc\"}]</s>", p)
        self.assertIn("[TOOL_RESULTS] {\"content\": \"5 degrees\", \"call_id\": \"call_abc\"}"
                      "[/TOOL_RESULTS][AVAILABLE_TOOLS] [{\"type\": \"function\"", p)
        self.assertTrue(p.endswith("[/AVAILABLE_TOOLS][INST] And tomorrow? [/INST]"), p)


class SynthPlainToolsTest(ToolsTest):
    """The synthetic 32k SentencePiece model under the plain layout (Hermes's calls)."""
    template = "plain"
    model = "synth256-Q8_0.gguf"
    ends_calls = True


class SynthLlama3ToolsTest(Llama3ToolsTest):
    """The synthetic 128k LLaMA-3 model under its own template."""
    model = "synth-llama3-Q8_0.gguf"
    ends_calls = True


class SynthMistralToolsTest(MistralToolsTest):
    """The synthetic 32k SentencePiece model under Mistral's template."""
    model = "synth256-Q8_0.gguf"
    ends_calls = True


class SynthChatMLToolsTest(ChatMLToolsTest):
    """The synthetic 32k SentencePiece model under ChatML (Hermes's calls)."""
    model = "synth256-Q8_0.gguf"
    ends_calls = True


if __name__ == "__main__":
    unittest.main(verbosity=2)
