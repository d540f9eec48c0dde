// The chat page's script: streams answers from /v1/chat/completions of the
// daemon that served it. Model text is only ever set as textContent, never
// parsed as HTML; the page's Content-Security-Policy allows no inline script.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const log = $("log"), input = $("input"), sendButton = $("send"), stopButton = $("stop");
  const statusLine = $("status");
  const settings = { system: $("system"), temperature: $("temperature"), maxTokens: $("max-tokens") };
  const KEY_ITEM = "llamad.apiKey";

  let history = [];          // {role, content} of this conversation, sent each turn
  let sessionId = newSessionId();
  let controller = null;     // the running request's AbortController
  let apiKey = sessionStorage.getItem(KEY_ITEM) || "";
  let keyWaiters = [];       // requests waiting for the user to give a key

  // A session_id of the daemon's charset (A-Z a-z 0-9 . _ : -, at most 128):
  // the daemon keeps this conversation's KV cache between turns under it.
  function newSessionId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "chat-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", !!isError);
  }

  // One message of the conversation: its text set as text, never as HTML.
  function addMessage(role, text) {
    const box = document.createElement("div");
    box.className = "msg " + role;
    const label = document.createElement("span");
    label.className = "role";
    label.textContent = role;
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    box.append(label, body);
    log.append(box);
    log.scrollTop = log.scrollHeight;
    return box;
  }

  function setBusy(busy) {
    document.body.dataset.state = busy ? "busy" : "idle";
    sendButton.disabled = busy;
    stopButton.disabled = !busy;
  }

  // --- Settings, kept in localStorage ---
  for (const [name, el] of Object.entries(settings)) {
    const saved = localStorage.getItem("llamad." + name);
    if (saved !== null) el.value = saved;
    el.addEventListener("input", () => localStorage.setItem("llamad." + name, el.value));
  }
  $("settings-toggle").addEventListener("click", (e) => {
    const panel = $("settings");
    panel.hidden = !panel.hidden;
    e.currentTarget.setAttribute("aria-expanded", String(!panel.hidden));
  });

  // --- The API key: asked for when the daemon answers 401 ---
  function askForKey(reason, signal) {
    $("key-reason").textContent = reason;
    $("key-panel").hidden = false;
    $("api-key").focus();
    setStatus(reason, true);
    return new Promise((resolve, reject) => {
      keyWaiters.push(resolve);
      if (signal)
        signal.addEventListener("abort", () => reject(new DOMException("stopped", "AbortError")));
    });
  }

  function useKey() {
    const key = $("api-key").value.trim();
    if (!key) return;
    apiKey = key;
    sessionStorage.setItem(KEY_ITEM, key);
    $("api-key").value = "";
    $("key-panel").hidden = true;
    setStatus("");
    const waiting = keyWaiters;
    keyWaiters = [];
    waiting.forEach((resolve) => resolve());
  }
  $("key-save").addEventListener("click", useKey);
  $("api-key").addEventListener("keydown", (e) => { if (e.key === "Enter") useKey(); });

  // fetch() of the daemon's API with the key, if any; a 401 asks for one and tries again.
  async function api(path, init) {
    for (;;) {
      const headers = {};
      if (init.body) headers["Content-Type"] = "application/json";
      if (apiKey) headers.Authorization = "Bearer " + apiKey;
      const resp = await fetch(path, { ...init, headers });
      if (resp.status !== 401) return resp;
      await resp.text();
      await askForKey(apiKey ? "The API key was refused: enter a valid one."
                             : "This server needs an API key.", init.signal);
    }
  }

  // The message of an error answer (an OpenAI error object), or its status.
  async function errorMessage(resp) {
    const text = await resp.text();
    try {
      const msg = JSON.parse(text).error.message;
      if (msg) return resp.status + ": " + msg;
    } catch (_) { /* not an error object */ }
    return resp.status + " " + resp.statusText;
  }

  // Calls onData with each server-sent event's data until "[DONE]" or the end.
  async function readEvents(resp, onData) {
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let end;
      while ((end = buffered.indexOf("\n\n")) >= 0) {
        const event = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
        if (data === "[DONE]") return;
        if (data) onData(JSON.parse(data));
      }
    }
  }

  async function loadModel() {
    try {
      const resp = await api("/v1/models", { method: "GET" });
      if (!resp.ok) throw new Error(await errorMessage(resp));
      const models = (await resp.json()).data || [];
      $("model").textContent = models.map((m) => m.id).join(", ") || "(no model)";
    } catch (e) {
      $("model").textContent = "(unknown model)";
      setStatus("Could not read /v1/models: " + e.message, true);
    }
  }

  async function send() {
    const text = input.value.trim();
    if (!text || controller) return;
    input.value = "";
    setStatus("");
    const conversation = history; // New chat while this streams starts another
    conversation.push({ role: "user", content: text });
    addMessage("user", text);
    const bubble = addMessage("assistant", "");
    const bubbleText = bubble.querySelector(".text");
    bubble.classList.add("streaming");
    const stats = document.createElement("span");
    stats.className = "stats";
    bubble.append(stats);

    const system = settings.system.value.trim();
    const body = {
      messages: (system ? [{ role: "system", content: system }] : []).concat(conversation),
      stream: true,
      stream_options: { include_usage: true },
      session_id: sessionId,
    };
    const temperature = parseFloat(settings.temperature.value);
    if (Number.isFinite(temperature)) body.temperature = temperature;
    const maxTokens = parseInt(settings.maxTokens.value, 10);
    if (maxTokens > 0) body.max_tokens = maxTokens;

    const thisController = controller = new AbortController();
    setBusy(true);
    const started = performance.now();
    let first = null, last = null, chunks = 0, usage = null, answer = "", ending = "";
    try {
      const resp = await api("/v1/chat/completions", {
        method: "POST", body: JSON.stringify(body), signal: thisController.signal,
      });
      if (!resp.ok) throw new Error(await errorMessage(resp));
      await readEvents(resp, (event) => {
        if (event.error) throw new Error(event.error.message || "the stream ended with an error");
        if (event.usage) usage = event.usage;
        for (const choice of event.choices || []) {
          const piece = choice.delta && choice.delta.content;
          if (piece) {
            last = performance.now();
            if (first === null) first = last;
            chunks++;
            answer += piece;
            bubbleText.textContent = answer;
            log.scrollTop = log.scrollHeight;
          }
          if (choice.finish_reason) ending = choice.finish_reason;
        }
      });
    } catch (e) {
      if (e.name === "AbortError") {
        ending = "stopped";
      } else {
        ending = "error";
        const err = document.createElement("div");
        err.className = "error";
        err.textContent = "Error: " + e.message;
        bubble.insertBefore(err, stats);
        setStatus("Error: " + e.message, true);
      }
    } finally {
      thisController.abort(); // the connection closes, a broken stream's included
    }
    bubble.classList.remove("streaming");

    if (answer) {
      conversation.push({ role: "assistant", content: answer });
    } else if (ending === "error") {
      conversation.pop(); // the turn did not happen: the message can be sent again
    }
    const tokens = usage ? usage.completion_tokens : chunks;
    const parts = [];
    if (first !== null) parts.push("TTFT " + Math.round(first - started) + " ms");
    if (tokens > 1 && last > first)
      parts.push((((tokens - 1) * 1000) / (last - first)).toFixed(1) + " tok/s");
    parts.push(tokens + (tokens === 1 ? " token" : " tokens"));
    if (usage && usage.prompt_tokens_details)
      parts.push(usage.prompt_tokens_details.cached_tokens + " of " + usage.prompt_tokens +
                 " prompt tokens cached");
    if (ending) parts.push(ending);
    stats.textContent = parts.join(" · ");
    bubble.dataset.ending = ending;
    if (controller === thisController) {
      controller = null;
      setBusy(false);
    }
    input.focus();
  }

  function stop() {
    if (controller) controller.abort();
  }

  function newChat() {
    stop();
    history = [];
    sessionId = newSessionId();
    log.replaceChildren();
    setStatus("New chat");
    input.focus();
  }

  sendButton.addEventListener("click", send);
  stopButton.addEventListener("click", stop);
  $("new-chat").addEventListener("click", newChat);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });

  setBusy(false);
  loadModel();
  input.focus();
})();
