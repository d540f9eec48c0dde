// The chat page in headless Chromium (tests/test_browser.py starts the daemons
// and hands this script a JSON config as its one argument):
//   base      a daemon without keys, serving the bundled story model
//   keyBase   a daemon with the API key `key`, serving a slow random model
//   artifacts the folder the screenshots go to
//   chromium  the browser to drive
// Prints one JSON line of what it saw; exits non-zero on the first failed check.
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
  "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const report = { screenshots: [] };

function log(...args) {
  console.error("[browser]", ...args);
}

// Every console error, page error and CSP violation of a page, kept for the checks.
async function watch(page) {
  const seen = { errors: [], requests: [] };
  page.on("console", (m) => { if (m.type() === "error") seen.errors.push(m.text()); });
  page.on("pageerror", (e) => seen.errors.push("page error: " + e.message));
  page.on("request", (r) => {
    if (r.url().includes("/v1/"))
      seen.requests.push({ url: r.url(), method: r.method(), headers: r.headers(),
                           body: r.postData() });
  });
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation",
      (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
  });
  return seen;
}

// Records every text the newest assistant bubble is given, as it is given
// (each textContent assignment is one mutation record), with the time.
async function recordGrowth(page) {
  await page.evaluate(() => {
    window.__growth = [];
    new MutationObserver((records) => {
      for (const rec of records) {
        const box = rec.target.closest && rec.target.closest(".msg.assistant");
        if (box && rec.target.classList.contains("text") && rec.addedNodes.length)
          window.__growth.push([performance.now(), rec.addedNodes[0].textContent]);
      }
    }).observe(document.getElementById("log"), { childList: true, subtree: true });
  });
}

async function setSetting(page, id, value) {
  if (await page.locator("#settings").isHidden())
    await page.click("#settings-toggle");
  await page.fill("#" + id, String(value));
}

async function sendMessage(page, text) {
  await page.fill("#input", text);
  await page.click("#send");
}

async function waitIdle(page, timeout = 60000) {
  await page.waitForSelector('body[data-state="idle"]', { timeout });
}

function lastAssistant(page) {
  return page.locator(".msg.assistant").last();
}

async function metrics(base, key) {
  const resp = await fetch(base + "/metrics", {
    headers: key ? { Authorization: "Bearer " + key } : {},
  });
  assert.equal(resp.status, 200);
  const values = {};
  for (const line of (await resp.text()).split("\n")) {
    if (line && !line.startsWith("#")) {
      const at = line.lastIndexOf(" ");
      values[line.slice(0, at)] = Number(line.slice(at + 1));
    }
  }
  return values;
}

// Checks each growth record extends the one before, and returns them.
function checkGrowth(growth, final) {
  const texts = growth.map(([, t]) => t).filter((t) => t.length > 0);
  for (let i = 1; i < texts.length; i++)
    assert.ok(texts[i].startsWith(texts[i - 1]) && texts[i].length > texts[i - 1].length,
              `the answer grows by appending: ${JSON.stringify(texts.slice(i - 1, i + 1))}`);
  if (final !== undefined) assert.equal(texts[texts.length - 1], final);
  return texts;
}

async function screenshot(page, name) {
  const path = cfg.artifacts + "/" + name;
  await page.screenshot({ path, fullPage: true });
  report.screenshots.push(path);
  log("screenshot:", path);
}

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

try {
  // ---------- A daemon without keys: chat, session, rendering, policy ----------
  {
    const context = await browser.newContext({ viewport: { width: 900, height: 800 } });
    const page = await context.newPage();
    const seen = await watch(page);
    const resp = await page.goto(cfg.base + "/");
    assert.equal(resp.status(), 200);
    const headers = resp.headers();
    assert.equal(headers["content-security-policy"], CSP);
    assert.equal(headers["content-type"], "text/html; charset=utf-8");
    assert.equal(headers["x-content-type-options"], "nosniff");
    await page.waitForFunction(() => document.getElementById("model").textContent === "stories260K.gguf");
    assert.ok(await page.locator("#key-panel").isHidden(), "no key is asked for");

    // Turn 1: tokens arrive one after another into the assistant's bubble.
    await setSetting(page, "temperature", 0);
    await setSetting(page, "max-tokens", 60);
    await recordGrowth(page);
    await sendMessage(page, "Tell me a story about a cat.");
    await waitIdle(page);
    const first = lastAssistant(page);
    const answer1 = await first.locator(".text").textContent();
    const growth1 = checkGrowth(await page.evaluate(() => window.__growth), answer1);
    assert.ok(growth1.length >= 10, `the answer arrived in ${growth1.length} pieces`);
    const stats1 = await first.locator(".stats").textContent();
    assert.match(stats1, /TTFT \d+ ms · [\d.]+ tok\/s · 60 tokens/);
    assert.match(stats1, /length$/);
    assert.equal(await first.getAttribute("data-ending"), "length");
    assert.ok(await page.locator("#stop").isDisabled());
    report.turn1 = { pieces: growth1.length, stats: stats1 };

    // Turn 2: the same session_id, and the conversation so far from the cache.
    await sendMessage(page, "What happened next?");
    await waitIdle(page);
    const stats2 = await lastAssistant(page).locator(".stats").textContent();
    const cached = stats2.match(/(\d+) of (\d+) prompt tokens cached/);
    assert.ok(cached, stats2);
    const chats = seen.requests.filter((r) => r.url.endsWith("/v1/chat/completions"));
    assert.equal(chats.length, 2);
    const bodies = chats.map((r) => JSON.parse(r.body));
    assert.match(bodies[0].session_id, /^[A-Za-z0-9._:-]{1,128}$/);
    assert.equal(bodies[1].session_id, bodies[0].session_id);
    assert.equal(bodies[0].temperature, 0);
    assert.equal(bodies[0].max_tokens, 60);
    assert.equal(bodies[1].messages.length, 3);
    assert.deepEqual(bodies[1].messages[1], { role: "assistant", content: answer1 });
    const turn1Prompt = Number(stats1.match(/of (\d+) prompt/)[1]);
    // The whole first prompt came from the session's cache: without the session,
    // only its full 16-position blocks would have (the check needs a prompt that
    // does not end on a block boundary).
    assert.notEqual(turn1Prompt % 16, 0, stats1);
    assert.ok(Number(cached[1]) >= turn1Prompt, stats1 + " / " + stats2);
    const m = await metrics(cfg.base);
    assert.ok(m["llamad_prompt_tokens_cached_total"] >= Number(cached[1]));
    report.turn2 = { stats: stats2, session: bodies[0].session_id };
    await screenshot(page, "chat-page.png");

    // Text is text: HTML typed by the user, and HTML in a model's answer.
    await page.click("#new-chat");
    assert.equal(await page.locator(".msg").count(), 0);
    const html = '<img src=x onerror="window.__xss=1"><b>bold</b>';
    await setSetting(page, "max-tokens", 4);
    await sendMessage(page, html);
    await waitIdle(page);
    const chats2 = seen.requests.filter((r) => r.url.endsWith("/v1/chat/completions"));
    const body3 = JSON.parse(chats2[chats2.length - 1].body);
    assert.notEqual(body3.session_id, bodies[0].session_id, "New chat starts a new session");
    assert.equal(body3.messages.length, 1);
    assert.equal(await page.locator(".msg.user .text").last().textContent(), html);
    // a model's answer holding markup, streamed through the page's own reading and rendering
    const evil = ['<img src=x onerror="window.__xss=2">', "<script>window.__xss=3</script>",
                  "&lt;i&gt; & <a href=javascript:alert(1)>link</a>"];
    await page.route("**/v1/chat/completions", (route) => route.fulfill({
      status: 200, contentType: "text/event-stream",
      body: evil.map((t) => "data: " + JSON.stringify(
        { choices: [{ index: 0, delta: { content: t }, finish_reason: null }] }) + "\n\n").join("") +
        "data: " + JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }) +
        "\n\ndata: [DONE]\n\n",
    }), { times: 1 });
    await sendMessage(page, "Show me some HTML.");
    await waitIdle(page);
    assert.equal(await lastAssistant(page).locator(".text").textContent(), evil.join(""));
    assert.equal(await page.locator("#log img, #log b, #log script, #log a, #log i").count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);

    // Nothing went wrong, and the policy was never broken ...
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(await page.evaluate(() => window.__violations), []);
    // ... and it is enforced: an inline script is refused and reported.
    await page.evaluate(() => {
      const s = document.createElement("script");
      s.textContent = "window.__inline = true";
      document.body.append(s);
    });
    await page.waitForFunction(() => window.__violations.length > 0);
    assert.equal(await page.evaluate(() => window.__inline), undefined);
    assert.match((await page.evaluate(() => window.__violations))[0], /^script-src/);
    await context.close();
  }

  // ---------- A daemon with an API key: asked for, then used; Stop ----------
  {
    const context = await browser.newContext({ viewport: { width: 900, height: 800 } });
    const page = await context.newPage();
    const seen = await watch(page);
    const resp = await page.goto(cfg.keyBase + "/");
    assert.equal(resp.status(), 200, "the page itself needs no key");
    await page.waitForSelector("#key-panel:not([hidden])");
    assert.match(await page.locator("#key-reason").textContent(), /needs an API key/);
    await screenshot(page, "chat-page-key-prompt.png");
    await page.fill("#api-key", "not-the-key");
    await page.click("#key-save");
    await page.waitForFunction(() => /refused/.test(document.getElementById("key-reason").textContent)
                               && !document.getElementById("key-panel").hidden);
    await page.fill("#api-key", cfg.key);
    await page.press("#api-key", "Enter");
    await page.waitForFunction((name) => document.getElementById("model").textContent === name,
                               cfg.keyModel);
    assert.ok(await page.locator("#key-panel").isHidden());
    assert.equal(await page.evaluate(() => sessionStorage.getItem("llamad.apiKey")), cfg.key);
    assert.equal(await page.evaluate(() => localStorage.getItem("llamad.apiKey")), null);

    await setSetting(page, "max-tokens", 8);
    await sendMessage(page, "Hello there");
    await waitIdle(page);
    assert.equal(await lastAssistant(page).getAttribute("data-ending"), "length");
    assert.match(await lastAssistant(page).locator(".stats").textContent(), /8 tokens/);
    const chat = seen.requests.filter((r) => r.url.endsWith("/v1/chat/completions")).pop();
    assert.equal(chat.headers["authorization"], "Bearer " + cfg.key);

    // A long answer, stopped: the page is idle again and the daemon stops generating.
    const before = await metrics(cfg.keyBase, cfg.key);
    await setSetting(page, "max-tokens", 100000);
    await recordGrowth(page);
    await sendMessage(page, "Go on for a long time");
    await page.waitForFunction(() => window.__growth.length >= 5, null, { timeout: 30000 });
    assert.equal(await page.getAttribute("body", "data-state"), "busy");
    const running = await metrics(cfg.keyBase, cfg.key);
    assert.equal(running["llamad_requests_running"], 1);
    await page.click("#stop");
    await waitIdle(page, 5000);
    const stopped = lastAssistant(page);
    assert.equal(await stopped.getAttribute("data-ending"), "stopped");
    assert.match(await stopped.locator(".stats").textContent(), /TTFT \d+ ms · [\d.]+ tok\/s · \d+ tokens · stopped/);
    const growth = checkGrowth(await page.evaluate(() => window.__growth),
                               await stopped.locator(".text").textContent());
    const times = new Set((await page.evaluate(() => window.__growth)).map(([t]) => Math.round(t)));
    assert.ok(times.size >= 2, "the pieces arrived over time");
    let after;
    for (let i = 0; i < 50; i++) {
      after = await metrics(cfg.keyBase, cfg.key);
      if (after["llamad_requests_running"] === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(after["llamad_requests_running"], 0, "the daemon cancelled the generation");
    const generated = after["llamad_generation_tokens_total"] - before["llamad_generation_tokens_total"];
    assert.ok(generated < cfg.keyContext / 2, `${generated} tokens generated before the stop`);
    report.stop = { pieces: growth.length, generated, stats: await stopped.locator(".stats").textContent() };

    // The conversation goes on after a stop.
    await setSetting(page, "max-tokens", 4);
    await sendMessage(page, "Again");
    await waitIdle(page);
    assert.equal(await lastAssistant(page).getAttribute("data-ending"), "length");
    await screenshot(page, "chat-page-key.png");

    // The only errors: the browser's lines for the two answers 401 (no key, a wrong one).
    const unexpected = seen.errors.filter((e) => !/status of 401/.test(e));
    assert.deepEqual(unexpected, []);
    assert.equal(seen.errors.length, 2, seen.errors.join("\n"));
    assert.deepEqual(await page.evaluate(() => window.__violations), []);
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
