// Tool calling through the official OpenAI Node client; prints one JSON line of
// results for tests/test_openai_client.py to check.
// Usage: node tools.mjs BASE_URL
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.argv[2], apiKey: "unused", maxRetries: 0 });
const out = {};

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "The weather now",
      parameters: {
        type: "object", properties: { unit: { enum: ["c", "f"] } },
        required: ["unit"], additionalProperties: false,
      },
    },
  },
];
const ask = [{ role: "user", content: "What is the weather?" }];
const base = { model: "any-name", messages: ask, tools, max_tokens: 12, temperature: 0 };

// A stream put together the way the client's documentation does it.
async function collect(stream) {
  const got = { content: "", calls: [], finish: null, chunks: 0 };
  for await (const chunk of stream) {
    got.chunks++;
    for (const c of chunk.choices) {
      got.content += c.delta?.content ?? "";
      for (const tc of c.delta?.tool_calls ?? []) {
        const call = (got.calls[tc.index] ??= { id: null, name: "", arguments: "" });
        if (tc.id) call.id = tc.id;
        call.name += tc.function?.name ?? "";
        call.arguments += tc.function?.arguments ?? "";
      }
      if (c.finish_reason) got.finish = c.finish_reason;
    }
  }
  return got;
}

out.auto = (await client.chat.completions.create({ ...base, tool_choice: "auto" })).choices[0];
out.autoStream = await collect(await client.chat.completions.create({
  ...base, tool_choice: "auto", stream: true,
}));

// The assistant's call and the tool's answer, back into the conversation.
out.roundTrip = (await client.chat.completions.create({
  ...base,
  messages: [
    ...ask,
    {
      role: "assistant", content: null,
      tool_calls: [{
        id: "call_abc", type: "function",
        function: { name: "get_weather", arguments: JSON.stringify({ unit: "c" }) },
      }],
    },
    { role: "tool", tool_call_id: "call_abc", content: "5 degrees" },
  ],
})).choices[0];

const choices = { required: "required", named: { type: "function", function: { name: "get_weather" } } };
for (const [key, choice] of Object.entries(choices)) {
  const body = { ...base, tool_choice: choice, max_tokens: 200, parallel_tool_calls: false };
  const whole = (await client.chat.completions.create(body)).choices[0];
  const streamed = await collect(await client.chat.completions.create({ ...body, stream: true }));
  out[key] = { whole, streamed };
}
console.log(JSON.stringify(out));
