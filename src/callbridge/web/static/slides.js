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

  async function load() {
    try {
      const response = await fetch(`/api/events/${eventId}/slides`, { credentials: "same-origin" });
      if (response.ok) view = await response.json();
    } catch (error) { /* the next poll tries again */ }
  }

  // The slide the audio playing now has reached, and where the audio is (ms or s).
  function reached() {
    if (!view || !view.changes.length) return null;
    const playing = webcast.dataset.playing;
    let now;
    let key;
    if (playing === "live") {
      const date = window.callbridgePlayer && window.callbridgePlayer.playingDate();
      if (!date) return null;
      now = date.getTime();
      key = (change) => Date.parse(change.at);
    } else if (playing === "replay") {
      now = media.currentTime;
      key = (change) => change.offset;
    } else return null;
    let slide = 0;
    for (const change of view.changes) {
      const at = key(change);
      if (at !== null && at <= now) slide = change.slide;
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
  setInterval(function () { if (webcast.dataset.playing !== "replay" || !view) load(); }, 2000);
  setInterval(tick, 100);
  media.addEventListener("seeked", tick);
})();
