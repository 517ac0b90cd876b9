// Chat simulator for /sandbox: no framework, no build step. Renders only what the
// server returns, so a reload (or a second tab) shows the same conversation.
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("sandbox-config").textContent);
  const strings = config.strings;
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const sendButton = document.getElementById("send");
  const channelSelect = document.getElementById("channel");
  const status = document.getElementById("status");
  const resetButton = document.getElementById("reset");
  const intro = document.getElementById("intro");

  const STORAGE_KEY = "learnbot.sandbox.address";
  const ADDRESS_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$/;

  let address = loadAddress();
  let cursor = 0;
  let entries = [];
  let seen = new Set();
  let poller = null; // AbortController of the running long-poll

  function newAddress() {
    // crypto.getRandomValues works on plain http too (randomUUID needs a secure context).
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function loadAddress() {
    let stored = null;
    try { stored = localStorage.getItem(STORAGE_KEY); } catch (e) { /* storage disabled */ }
    if (stored && ADDRESS_PATTERN.test(stored)) return stored;
    const fresh = newAddress();
    try { localStorage.setItem(STORAGE_KEY, fresh); } catch (e) { /* storage disabled */ }
    return fresh;
  }

  function addEntries(list) {
    for (const entry of list) {
      cursor = Math.max(cursor, entry.seq);
      if (seen.has(entry.seq)) continue;
      seen.add(entry.seq);
      entries.push(entry);
    }
    entries.sort((a, b) => a.seq - b.seq);
    render();
  }

  // The parts to show for one entry on the selected channel: the preview rendered by the
  // server for that channel if there is one, else the sandbox rendering (Telegram-like).
  function partsFor(entry, channel) {
    if (entry.from_learner || !entry.preview) return [entry];
    if (!entry.preview.first) return [];
    return entry.preview[channel] || [entry];
  }

  function render() {
    const channel = channelSelect.value;
    log.classList.toggle("sms", channel === "sms");
    // The intro only says how to start: once there is a conversation it gives its room
    // to the messages (at 375 px it took 15% of the height). A new conversation shows it again.
    intro.hidden = entries.length > 0;
    log.replaceChildren();
    for (const entry of entries) {
      for (const part of partsFor(entry, channel)) {
        log.appendChild(bubble(entry, part, channel));
      }
    }
    log.scrollTop = log.scrollHeight;
  }

  function bubble(entry, part, channel) {
    const item = document.createElement("li");
    item.className = entry.from_learner ? "bubble mine" : "bubble";
    item.setAttribute("aria-label", entry.from_learner ? strings.you : strings.bot);
    if (part.image_url && /^https?:\/\//.test(part.image_url)) {
      const image = document.createElement("img");
      image.src = part.image_url;
      image.alt = entry.image_alt || strings.image;
      image.loading = "lazy";
      item.appendChild(image);
      if (entry.image_alt) {
        const alt = document.createElement("p");
        alt.className = "alt";
        alt.dir = "auto";
        alt.textContent = entry.image_alt;
        item.appendChild(alt);
      }
    }
    const text = document.createElement("p");
    text.className = "text";
    text.dir = "auto";
    appendText(text, part.text, part.bold || []);
    item.appendChild(text);
    if (channel !== "sms" && part.buttons && part.buttons.length) {
      const row = document.createElement("div");
      row.className = "buttons";
      for (const choice of part.buttons) {
        const button = document.createElement("button");
        button.type = "button";
        button.dir = "auto";
        button.textContent = choice.label;
        button.addEventListener("click", () => send({ text: null, payload: choice.payload }));
        row.appendChild(button);
      }
      item.appendChild(row);
    }
    if (channel === "sms" && !entry.from_learner && part.encoding) {
      const meta = document.createElement("div");
      meta.className = "meta";
      meta.textContent = part.encoding + " · " +
        strings.segments.replace("%(count)s", String(part.segments));
      item.appendChild(meta);
    }
    return item;
  }

  // The text with its bold ranges ([start, end) in code points) as <strong>: DOM text
  // nodes only, so nothing in a message is ever parsed as markup.
  function appendText(parent, value, bold) {
    const chars = Array.from(value);
    let at = 0;
    for (const [start, end] of bold) {
      if (start < at || end > chars.length || start >= end) continue;
      parent.append(chars.slice(at, start).join(""));
      const strong = document.createElement("strong");
      strong.textContent = chars.slice(start, end).join("");
      parent.appendChild(strong);
      at = end;
    }
    parent.append(chars.slice(at).join(""));
  }

  async function send(body) {
    status.textContent = "";
    sendButton.disabled = true;
    try {
      const response = await fetch(config.messagesUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ address, after: cursor, ...body }),
      });
      const data = await response.json();
      if (!response.ok) {
        console.warn("sandbox: send refused", data);
        status.textContent = response.status === 429 ? strings.tooMany
          : response.status === 503 ? strings.busy : strings.sendFailed;
        return false;
      }
      addEntries(data.messages);
      return true;
    } catch (error) {
      console.warn("sandbox: send failed", error);
      status.textContent = strings.sendFailed;
      return false;
    } finally {
      sendButton.disabled = false;
    }
  }

  // Long-poll for messages the bot sends on its own (a trainer's push, a reminder).
  async function poll() {
    const controller = new AbortController();
    poller = controller;
    while (!controller.signal.aborted) {
      const url = config.messagesUrl + "?address=" + encodeURIComponent(address) +
        "&after=" + cursor;
      try {
        const response = await fetch(url, { signal: controller.signal });
        if (!response.ok) throw new Error("HTTP " + response.status);
        const data = await response.json();
        if (controller.signal.aborted) return;
        if (status.textContent === strings.reconnecting) status.textContent = "";
        addEntries(data.messages);
      } catch (error) {
        if (controller.signal.aborted) return;
        status.textContent = strings.reconnecting;
        await new Promise((resolve) => setTimeout(resolve, 3000));
      }
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    if (!(await send({ text, payload: null }))) input.value = text;
    input.focus();
  });

  channelSelect.addEventListener("change", render);

  resetButton.addEventListener("click", () => {
    if (poller) poller.abort();
    address = newAddress();
    try { localStorage.setItem(STORAGE_KEY, address); } catch (e) { /* storage disabled */ }
    cursor = 0;
    entries = [];
    seen = new Set();
    status.textContent = "";
    render();
    poll();
    input.focus();
  });

  poll();
  input.focus();
})();
