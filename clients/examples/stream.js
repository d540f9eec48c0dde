// A chat answer streamed from llamad, token by token, with the official OpenAI
// Node client (npm install openai). Usage: node stream.js [BASE_URL]
const OpenAI = require("openai");

const client = new OpenAI({
  baseURL: process.argv[2] ?? "http://127.0.0.1:8080/v1",
  apiKey: process.env.LLAMAD_API_KEY ?? "none",
});

async function main() {
  const stream = await client.chat.completions.create({
    model: "llamad",
    messages: [{ role: "user", content: "Tell me a story about a dog." }],
    max_tokens: 40,
    stream: true,
    stream_options: { include_usage: true },
  });
  let chunks = 0;
  for await (const chunk of stream) {
    const text = chunk.choices[0]?.delta?.content;
    if (text) {
      process.stdout.write(text);
      chunks++;
    }
    if (chunk.usage) process.stdout.write(`\n(${chunks} chunks, ${chunk.usage.completion_tokens} tokens)\n`);
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
