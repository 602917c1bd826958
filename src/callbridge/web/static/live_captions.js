// The moderator's live transcript: follows /api/events/{id}/captions/live/stream
// (Server-Sent Events: each new cue as it is made; a reconnect goes on from the
// last one), and filters them as the moderator types (whole words, any case).
// A settled reading ("revises": the indices of the cues it replaces) takes the
// place of the first of them, in the same line, and the others go: the words
// settle where the moderator reads them rather than coming twice.
// The list is a box of fixed height: it follows the newest line unless the
// moderator has scrolled up to read, and then offers a way back down.
"use strict";
(function () {
  const card = document.getElementById("live-captions-card");
  const list = document.getElementById("live-captions");
  const box = document.getElementById("live-captions-q");
  const hits = document.getElementById("live-captions-hits");
  const form = document.getElementById("live-captions-search");
  const empty = document.getElementById("live-captions-empty");
  const latest = document.getElementById("live-captions-latest");
  if (!card || !list || !box) return;
  const eventId = document.querySelector('meta[name="event-id"]').content;
  const base = "/api/events/" + eventId + "/captions/live";
  const MAX_SHOWN = 2000;

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const m = Math.floor(s / 60), r = s % 60;
    return m + ":" + String(r).padStart(2, "0");
  }

  function words(text) {
    return (text.toLowerCase().match(/\w+/g) || []).join(" ");
  }

  function matches(item, query) {
    if (!query) return true;
    return (" " + item.dataset.words + " ").includes(" " + query + " ");
  }

  function filter() {
    const query = words(box.value);
    let count = 0;
    for (const item of list.children) {
      const shown = matches(item, query);
      item.hidden = !shown;
      if (shown) count += 1;
    }
    hits.textContent = query ? count + (count === 1 ? " match" : " matches") + " for “" + box.value.trim() + "”" : "";
  }

  function fill(item, cue) {
    item.textContent = "";
    item.dataset.index = String(cue.index);
    item.dataset.words = words(cue.text);
    const at = document.createElement("span");
    at.className = "ts";
    at.textContent = clock(cue.start);
    item.appendChild(at);
    if (cue.speaker) {
      const who = document.createElement("span");
      who.className = "speaker";
      who.textContent = " " + cue.speaker + ": ";
      item.appendChild(who);
    }
    const said = document.createElement("span");
    said.className = "text";
    said.textContent = cue.text;
    item.appendChild(said);
  }

  function shown(index) {
    return list.querySelector('li[data-index="' + Number(index) + '"]');
  }

  function add(cue) {
    const replaced = (cue.revises || []).map(shown).filter(Boolean);
    if (replaced.length) {
      // The first line it replaces takes its text (and its index, which a later
      // revision names); the rest of the lines it replaces go.
      fill(replaced[0], cue);
      replaced[0].classList.add("settled");
      for (const item of replaced.slice(1)) item.remove();
      return;
    }
    const item = document.createElement("li");
    fill(item, cue);
    list.appendChild(item);
    while (list.children.length > MAX_SHOWN) list.removeChild(list.firstChild);
  }

  // At the bottom (within a few pixels): new lines keep it there.
  function atBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 8;
  }

  function toBottom() {
    list.scrollTop = list.scrollHeight;
    if (latest) latest.hidden = true;
  }

  function follow() {
    const stream = new EventSource(base + "/stream?after=0");
    stream.onmessage = function (message) {
      const data = JSON.parse(message.data);
      if (!data.cues.length) return;
      const following = atBottom();
      for (const cue of data.cues) add(cue);
      card.hidden = false;
      if (empty) empty.hidden = true;
      filter();
      if (following) toBottom();
      else if (latest) latest.hidden = false;
    };
  }

  list.addEventListener("scroll", function () {
    if (latest && atBottom()) latest.hidden = true;
  });
  if (latest) latest.addEventListener("click", toBottom);

  box.addEventListener("input", filter);
  form.addEventListener("submit", function (e) { e.preventDefault(); filter(); });
  follow();
})();
