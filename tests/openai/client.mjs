// Drives llamad with the official OpenAI Node client; prints one JSON line of
// results for tests/test_openai_client.py to check. Usage: node client.mjs BASE_URL
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.argv[2], apiKey: "unused", maxRetries: 0 });
const out = {};

const completion = await client.completions.create({
  model: "any-name", prompt: "Once upon a time", max_tokens: 24, temperature: 0,
});
out.completion = completion;

const chat = await client.chat.completions.create({
  model: "any-name", messages: [{ role: "user", content: "Tell me a story." }],
  max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 2,
});
out.chat = chat;

const stream = await client.chat.completions.create({
  model: "any-name", messages: [{ role: "user", content: "Tell me a story." }],
  max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true },
});
out.stream = { text: "", chunks: 0, usage: null, finish: null };
for await (const chunk of stream) {
  out.stream.chunks++;
  if (chunk.usage) out.stream.usage = chunk.usage;
  for (const c of chunk.choices) {
    out.stream.text += c.delta?.content ?? "";
    if (c.finish_reason) out.stream.finish = c.finish_reason;
  }
}

try {
  await client.completions.create({ model: "any-name", prompt: "hi", n: 2 });
  out.error = null;
} catch (e) {
  out.error = { status: e.status, param: e.param ?? null, type: e.type ?? null };
}

const models = await client.models.list();
out.models = models.data.map((m) => m.id);
console.log(JSON.stringify(out));
