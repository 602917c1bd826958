// The moderator's slides: upload the deck before the call; during it, the slide
// shown now large, the next one previewed, every slide as a thumbnail, and
// previous/next (the desk's keys press these buttons: moderate.js).
"use strict";
(function () {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
  const base = `/api/events/${meta("event-id")}`;
  const csrf = meta("csrf-token");
  const desk = document.getElementById("desk");
  const form = document.getElementById("deck-form");
  const state = document.getElementById("deck-state");
  const stage = document.getElementById("slide-stage");
  const buttons = document.getElementById("slide-buttons");
  const thumbs = document.getElementById("slide-thumbs");
  const now = document.getElementById("slide-now");
  const count = document.getElementById("slide-count");
  const prev = document.getElementById("slide-prev");
  const next = document.getElementById("slide-next");
  let pages = 0;
  let current = 0;
  let version = 0; // a new deck's images are new: the URLs say so (its size)

  const image = (n) => `${base}/deck/slides/${n}.png?v=${version}`;
  const live = () => desk.dataset.eventState === "live";

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

  function picture(img, none, n) {
    img.hidden = !n;
    none.hidden = Boolean(n);
    if (n) {
      const src = image(n);
      if (img.getAttribute("src") !== src) img.src = src;
      img.alt = `Slide ${n} of ${pages}`;
    } else {
      img.removeAttribute("src");
      img.alt = "";
    }
  }

  // The stage, the thumbnails' marks and the buttons, as `current` and the call's state say.
  function draw() {
    const shown = live() || desk.dataset.eventState === "ended" ? current : 0;
    now.textContent = shown ? String(shown) : "–";
    count.textContent = String(pages);
    picture(document.getElementById("slide-current"), document.getElementById("slide-none"), shown);
    const over = desk.dataset.eventState !== "live" && desk.dataset.eventState !== "scheduled";
    document.getElementById("slide-now-label").textContent = over ? "Last shown" : "Showing";
    const coming = shown < pages && !over ? shown + 1 : 0;
    picture(document.getElementById("slide-next-image"), document.getElementById("slide-next-none"), coming);
    document.getElementById("slide-next-caption").textContent =
      coming ? (shown ? `Next: slide ${coming}` : `First: slide ${coming}`) : "Next";
    document.querySelector(".slide-next").hidden = over;
    document.getElementById("slide-none").textContent =
      live() ? "No slide shown yet: press Next slide" : "Slides are shown once the call is live";
    buttons.hidden = !live();
    stage.dataset.live = String(live());
    prev.disabled = !live() || current <= 1;
    next.disabled = !live() || current >= pages;
    for (const thumb of thumbs.querySelectorAll("button")) {
      const n = Number(thumb.dataset.slide);
      thumb.disabled = !live();
      if (n === shown) thumb.setAttribute("aria-current", "true");
      else thumb.removeAttribute("aria-current");
    }
  }

  function show(deck) {
    pages = deck.pages;
    version = deck.size;
    current = deck.current || current;
    stage.hidden = thumbs.hidden = pages === 0;
    thumbs.replaceChildren();
    for (let n = 1; n <= pages; n += 1) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "thumb";
      b.dataset.slide = String(n);
      b.setAttribute("aria-label", `Show slide ${n}`);
      const img = document.createElement("img");
      img.src = image(n);
      img.alt = "";
      img.loading = "lazy";
      img.width = 160;
      img.height = 90;
      const label = document.createElement("span");
      label.textContent = String(n);
      b.append(img, label);
      li.append(b);
      thumbs.append(li);
    }
    draw();
  }

  async function load() {
    const response = await fetch(base + "/deck", { credentials: "same-origin" });
    if (!response.ok) { state.textContent = "No deck yet."; draw(); return; }
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
    if (slide < 1 || slide > pages || !live()) return;
    const change = await send("/slides", { slide: slide });
    if (change) {
      current = change.slide;
      state.textContent = "";
      draw();
    }
  }
  next.addEventListener("click", () => go(current + 1));
  prev.addEventListener("click", () => go(current - 1));
  thumbs.addEventListener("click", (event) => {
    const thumb = event.target.closest("button[data-slide]");
    if (thumb) go(Number(thumb.dataset.slide));
  });
  document.addEventListener("callstate", draw);
  load();
})();
