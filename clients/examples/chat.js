// A chat answer from llamad with the official OpenAI Node client (npm install openai).
// Usage: node chat.js [BASE_URL]   (default http://127.0.0.1:8080/v1)
const OpenAI = require("openai");

const client = new OpenAI({
  baseURL: process.argv[2] ?? "http://127.0.0.1:8080/v1",
  apiKey: process.env.LLAMAD_API_KEY ?? "none",
});

async function main() {
  const chat = await client.chat.completions.create({
    model: "llamad",
    messages: [
      { role: "system", content: "You tell short stories." },
      { role: "user", content: "Tell me a story about a cat." },
    ],
    max_tokens: 40,
    temperature: 0.7,
    seed: 1,
  });
  const message = chat.choices[0].message;
  console.log(`${message.role}: ${message.content}`);
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
