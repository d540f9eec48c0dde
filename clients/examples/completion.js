// A completion from llamad with the official OpenAI Node client (npm install openai).
// Usage: node completion.js [BASE_URL]   (default http://127.0.0.1:8080/v1)
const OpenAI = require("openai");

const client = new OpenAI({
  baseURL: process.argv[2] ?? "http://127.0.0.1:8080/v1",
  apiKey: process.env.LLAMAD_API_KEY ?? "none", // any key when the daemon has none
});

async function main() {
  const completion = await client.completions.create({
    model: "llamad", // any name: the daemon serves its one model
    prompt: "Once upon a time",
    max_tokens: 40,
    temperature: 0,
  });
  console.log(completion.choices[0].text);
  console.log(`(${completion.usage.completion_tokens} tokens, ${completion.choices[0].finish_reason})`);
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
