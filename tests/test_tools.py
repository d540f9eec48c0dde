"""Tool calling through HTTP, on the bundled model under several chat templates:
tools and tool messages rendered into the prompt (/apply-template shows it),
requests with tools answered and streamed as without them, tool_choice "none"
leaving the prompt untouched, and the constrained choices ("required", a named
function): refused with a 400 until the grammar engine and the JSON Schema
converter are merged, after which (CONSTRAINED = True) their output is checked
to be a valid call, whole and streamed, for each call syntax.

The parsing of calls out of text is held to its cases in test_tool_calls.c: an
unconstrained model with random or story weights does not write calls."""
import json
import unittest

from llamad_server import Server, sse_events

# Set at the merge of the grammar engine and the JSON Schema converter.
CONSTRAINED = False

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


class ToolsTest(unittest.TestCase):
    """The bundled model with no template of its own: the plain layout."""
    template = None

    @classmethod
    def setUpClass(cls):
        args = ("--chat-template", cls.template) if cls.template else ()
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

    def test_constrained_choices(self):
        named = {"type": "function", "function": {"name": "add"}}
        if not CONSTRAINED:
            for choice in ("required", named):
                res = self.post("/v1/chat/completions", {
                    "messages": ASK, "tools": [WEATHER, ADD], "tool_choice": choice}, 400)
                self.assertEqual(res["error"]["param"], "tool_choice")
                self.assertIn("not yet supported", res["error"]["message"])
            return
        for choice, names, parallel in (("required", {"get_weather", "add"}, True),
                                        (named, {"add"}, True), ("required", None, False)):
            body = {"messages": ASK, "tools": [WEATHER, ADD], "tool_choice": choice,
                    "parallel_tool_calls": parallel, "max_tokens": 200, "temperature": 0}
            whole = self.chat(**body)["choices"][0]
            self.assertEqual(whole["finish_reason"], "tool_calls", whole)
            calls = whole["message"]["tool_calls"]
            self.assertGreaterEqual(len(calls), 1)
            if not parallel:
                self.assertEqual(len(calls), 1)
            for call in calls:
                self.assertRegex(call["id"], r"^call_[A-Za-z0-9]{24}$")
                self.assertEqual(call["type"], "function")
                self.assertIn(call["function"]["name"], names or {"get_weather", "add"})
                self.assertIsInstance(json.loads(call["function"]["arguments"]), dict)
            content, streamed, finish = assemble(stream_chunks(self.server, body))
            self.assertEqual(finish, "tool_calls")
            self.assertEqual([(c["name"], c["arguments"]) for _, c in sorted(streamed.items())],
                             [(c["function"]["name"], c["function"]["arguments"])
                              for c in calls])


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


if __name__ == "__main__":
    unittest.main(verbosity=2)
