// The moderator's slides: upload the deck before the call, step through it during it.
"use strict";
(function () {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
  const base = `/api/events/${meta("event-id")}`;
  const csrf = meta("csrf-token");
  const form = document.getElementById("deck-form");
  const state = document.getElementById("deck-state");
  const buttons = document.getElementById("slide-buttons");
  const now = document.getElementById("slide-now");
  const count = document.getElementById("slide-count");
  let pages = 0;
  let current = 0;

  function reason(data, fallback) {
    if (typeof data.detail === "string") return data.detail;
    if (Array.isArray(data.detail)) return data.detail.map((e) => e.msg).join("; ");
    return fallback;
  }

  async function send(path, body) {
    const headers = { "X-CSRF-Token": csrf };
    if (!(body instanceof FormData)) headers["Content-Type"] = "application/json";
    const response = await fetch(base + path, {
      method: "POST", headers: headers, credentials: "same-origin",
      body: body instanceof FormData ? body : JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (error) { /* not JSON */ }
    if (!response.ok) {
      state.textContent = reason(data, response.statusText);
      return null;
    }
    return data;
  }

  function show(deck) {
    pages = deck.pages;
    current = deck.current || current;
    count.textContent = String(pages);
    now.textContent = current ? String(current) : "–";
    buttons.hidden = false;
  }

  async function load() {
    const response = await fetch(base + "/deck", { credentials: "same-origin" });
    if (!response.ok) { state.textContent = "No deck yet."; return; }
    const deck = await response.json();
    state.textContent = `${deck.filename}: ${deck.pages} slides.`;
    show(deck);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = document.getElementById("deck-file").files[0];
    if (!file) { state.textContent = "Choose the deck's PDF first."; return; }
    const body = new FormData();
    body.append("deck", file);
    state.textContent = "Uploading and rendering…";
    const deck = await send("/deck", body);
    if (deck) {
      state.textContent = `${deck.filename}: ${deck.pages} slides, rendered in ${deck.render_seconds} s.`;
      show(deck);
    }
  });

  async function go(slide) {
    if (slide < 1 || slide > pages) return;
    const change = await send("/slides", { slide: slide });
    if (change) {
      current = change.slide;
      now.textContent = String(current);
      state.textContent = "";
    }
  }
  document.getElementById("slide-next").addEventListener("click", () => go(current + 1));
  document.getElementById("slide-prev").addEventListener("click", () => go(current - 1));
  load();
})();
