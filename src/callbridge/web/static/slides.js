// Slides in step with the audio: a change shows when the audio playing reaches it.
// Live: the part's program date-time (the wall clock when it was spoken) against the
// change's time. Replay: the position against the change's offset into the recording.
"use strict";
(function () {
  const box = document.getElementById("slides");
  if (!box) return;
  const img = document.getElementById("slide");
  const label = document.getElementById("slide-number");
  const media = document.getElementById("media");
  const webcast = document.getElementById("webcast");
  const eventId = box.dataset.eventId;
  let view = null;
  let shown = 0;
  let loading = false;
  let loadedAt = 0;

  async function load() {
    if (loading) return;
    loading = true;
    loadedAt = Date.now();
    try {
      const response = await fetch(`/api/events/${eventId}/slides`, { credentials: "same-origin" });
      if (response.ok) view = await response.json();
    } catch (error) { /* the next poll tries again */ }
    loading = false;
  }

  // The replay needs each change's offset into the recording, which the API gives only
  // once the replay exists: a view loaded while the call was live has none, and a page
  // that switched to the replay within a poll of its being ready once kept that view.
  function needsLoad() {
    if (!view) return true;
    if (webcast.dataset.playing !== "replay") return true;
    return view.changes.some((change) => change.offset === null);
  }

  // Changes the live playlist carries (EXT-X-DATERANGE): known with the next part,
  // sooner than the next poll of the API.
  function playlistChanges(player) {
    const found = [];
    const ranges = player.dateRanges();
    for (const id of Object.keys(ranges)) {
      const range = ranges[id];
      const slide = Number(range.attr && range.attr["X-CB-SLIDE"]);
      if (slide && range.startDate) found.push({ slide: slide, atMs: range.startDate.getTime() });
    }
    return found;
  }

  // The slide the audio playing now has reached, and where the audio is (ms or s).
  function reached() {
    if (!view) return null;
    const playing = webcast.dataset.playing;
    let changes = view.changes;
    let now;
    let key;
    if (playing === "live") {
      const player = window.callbridgePlayer;
      const date = player && player.playingDate();
      if (!date) return null;
      now = date.getTime();
      key = (change) => (change.atMs !== undefined ? change.atMs : Date.parse(change.at));
      changes = changes.concat(playlistChanges(player));
    } else if (playing === "replay") {
      if (changes.some((change) => change.offset === null)) {
        if (Date.now() - loadedAt > 1000) load(); // at most a second apart, not every tick
        return null;
      }
      now = media.currentTime;
      key = (change) => change.offset;
    } else return null;
    let slide = 0;
    let latest = -Infinity;
    for (const change of changes) {
      const at = key(change);
      if (at !== null && at <= now && at >= latest) { latest = at; slide = change.slide; }
    }
    return slide ? { slide: slide, now: now } : null;
  }

  function tick() {
    const found = reached();
    if (!found || found.slide === shown) return;
    shown = found.slide;
    img.src = view.image.replace("{n}", String(shown));
    img.alt = `Slide ${shown} of ${view.pages}`;
    label.textContent = `Slide ${shown} of ${view.pages}`;
    box.dataset.slide = String(shown);
    box.dataset.audioAt = String(found.now); // where the audio was at the switch
    box.hidden = false;
  }

  load();
  // The API gives every change (a page that joins late, the replay's offsets); while
  // live the playlist brings new ones sooner, so the API is asked only now and then.
  setInterval(function () { if (needsLoad()) load(); }, 5000);
  setInterval(tick, 100);
  media.addEventListener("seeked", tick);
})();
