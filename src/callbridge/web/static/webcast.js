// The webcast page: plays the live call (LL-HLS through hls.js, or the browser's
// own HLS), then offers the replay, and sends a listening beacon while it plays.
// The server decides what there is to play: /api/events/{id}/webcast.
// The replay only ever starts from the listener's own click ("Play the replay",
// a transcript time): a live listener whose page stayed open past the end is
// told the call has ended, and is not counted as a replay listener for it.
// The page follows the call's state as it polls (scheduled, live, ended, the
// replay ready) without a reload: the live styling, the question form's state.
// hls.js is told to add no <track> of its own: it would give each a data: URL,
// which the page's policy (media-src 'self' blob:) refuses; the live captions
// come to the page as cues instead (CUES_PARSED), which it puts in a text track
// of its own (addTextTrack: no URL), shown as the replay's are.
(function () {
  "use strict";
  const root = document.getElementById("webcast");
  const player = document.getElementById("player");
  if (!root || !player) return;
  const eventId = root.dataset.event;
  const beaconSeconds = Number(root.dataset.beacon || "15");
  const media = document.getElementById("media");
  const playButton = document.getElementById("play");
  const volume = document.getElementById("volume");
  const elapsed = document.getElementById("elapsed");
  const durationPart = document.getElementById("duration-part");
  const durationText = document.getElementById("duration");
  const speedPart = document.getElementById("speed-part");
  const speed = document.getElementById("speed");
  const seek = document.getElementById("seek");
  const badge = document.getElementById("live-badge");
  const title = document.getElementById("player-title");
  const captions = document.getElementById("captions");
  const downloads = document.getElementById("downloads");
  const download = document.getElementById("download");
  const downloadsCard = document.getElementById("downloads-card");
  const statusBox = document.getElementById("webcast-status");
  const captionsToggle = document.getElementById("captions-toggle");
  const captionsArea = document.getElementById("captions-area");
  let captionsOn = true;
  // The live captions' track, made once (a media element's text tracks cannot be
  // removed), emptied when the player stops; and the cues it holds, by time and text.
  let liveTrack = null;
  let liveKeys = new Set();

  let hls = null;
  let mode = null; // "live" | "replay" | null
  // What other scripts of the page (slides.js) may ask of the player: the
  // wall-clock time (EXT-X-PROGRAM-DATE-TIME) of the audio playing now.
  window.callbridgePlayer = {
    playingDate: function () { return hls && hls.playingDate ? hls.playingDate : null; },
    // The live playlist's EXT-X-DATERANGE tags (slide changes), by id.
    dateRanges: function () {
      const details = hls && hls.latestLevelDetails;
      return details && details.dateRanges ? details.dateRanges : {};
    },
  };
  let source = null;
  let pendingSeek = null;
  let heardLive = false; // this page played the live call
  let offered = null; // the status whose replay the page offers, until the listener plays it
  const wanted = new URLSearchParams(location.search).get("t");
  if (wanted !== null && !Number.isNaN(Number(wanted))) pendingSeek = Number(wanted);
  // A moment of the replay in the address's fragment ("#t=123": a key figure's link,
  // opened apart or copied): the replay plays from there once the listener plays it, and
  // a new one seeks a replay that plays already.
  function fragmentTime() {
    const found = /^#t=(\d+(?:\.\d+)?)$/.exec(location.hash);
    return found ? Number(found[1]) : null;
  }
  if (fragmentTime() !== null) pendingSeek = fragmentTime();
  window.addEventListener("hashchange", function () {
    const at = fragmentTime();
    if (at === null) return;
    if (mode === "replay") {
      media.currentTime = at;
      media.play();
    } else if (offered) {
      playReplay(at);
    } else {
      pendingSeek = at;
    }
  });

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }

  function say(html) {
    statusBox.innerHTML = html;
  }

  function stop() {
    if (hls) { hls.destroy(); hls = null; }
    media.pause();
    media.removeAttribute("src");
    for (const t of Array.from(media.querySelectorAll("track"))) t.remove();
    captions.textContent = "";
    captionsArea.hidden = true;
    emptyLiveTrack();
    media.load();
    mode = null;
    source = null;
  }

  // Captions: the replay's <track>, or the page's track of the live call's subtitle
  // rendition (addLiveCues). An <audio> element draws no cues, so the page shows
  // the active ones itself, and the toggle turns them off and on.
  function showCues(track) {
    if (!captionsOn || track.mode === "disabled") { captions.textContent = ""; return; }
    const cues = track.activeCues;
    showText(cues ? Array.from(cues) : []);
  }

  function wireTrack(track) {
    if (!track || (track.kind !== "subtitles" && track.kind !== "captions") || track.cbWired) return;
    track.cbWired = true;
    track.addEventListener("cuechange", function () { showCues(track); });
    captionsArea.hidden = false;
  }

  // A cue's speaker (WebVTT's <v Name>) leads its text when the call has named them:
  // "Speaker" or "Speaker 2" says nothing a listener can use.
  const UNNAMED = /^Speaker( \d+)?$/;
  function showText(cues) {
    const parts = [];
    let last = null;
    for (const cue of cues) {
      const voice = /^<v(?:\.[^ >]*)? ([^>]+)>/.exec(cue.text);
      const who = voice ? voice[1].trim() : "";
      if (who && !UNNAMED.test(who) && who !== last) {
        const name = document.createElement("span");
        name.className = "who";
        name.textContent = who + ": ";
        parts.push(name);
        last = who;
      }
      parts.push(cue.text.replace(/<[^>]*>/g, "") + " ");
    }
    captions.replaceChildren.apply(captions, parts);
  }

  // Live cues from hls.js (CUES_PARSED): a cue repeated in several subtitle segments
  // comes once per segment, with the same times and text, and is added once.
  function addLiveCues(cues) {
    if (!liveTrack) {
      liveTrack = media.addTextTrack("subtitles", "English (automatic captions)", "en");
      liveTrack.mode = "hidden";
      wireTrack(liveTrack);
    }
    for (const cue of cues) {
      const key = cue.startTime + "|" + cue.endTime + "|" + cue.text;
      if (liveKeys.has(key)) continue;
      liveKeys.add(key);
      liveTrack.addCue(cue instanceof VTTCue ? cue : new VTTCue(cue.startTime, cue.endTime, cue.text));
    }
    captionsArea.hidden = false;
  }

  function emptyLiveTrack() {
    liveKeys = new Set();
    if (!liveTrack || !liveTrack.cues) return;
    for (const cue of Array.from(liveTrack.cues)) liveTrack.removeCue(cue);
  }

  media.textTracks.addEventListener("addtrack", function (e) { wireTrack(e.track); });

  function setCaptions(on) {
    captionsOn = on;
    captionsToggle.setAttribute("aria-pressed", on ? "true" : "false");
    captionsToggle.textContent = on ? "Captions on" : "Captions off";
    if (hls) {
      if (on && hls.subtitleTrack < 0 && hls.subtitleTracks.length) hls.subtitleTrack = 0;
      hls.subtitleDisplay = on;
    }
    for (const track of Array.from(media.textTracks)) {
      if (track.kind !== "subtitles" && track.kind !== "captions") continue;
      if (!hls && track !== liveTrack) track.mode = on ? "hidden" : "disabled";
      showCues(track);
    }
    if (!on) captions.textContent = "";
    captions.hidden = !on;
  }
  captionsToggle.addEventListener("click", function () { setCaptions(!captionsOn); });

  function attach(url, live) {
    // Our own low-latency settings: start at the live edge less the server's
    // PART-HOLD-BACK, and catch up by playing slightly faster when behind.
    if (window.Hls && window.Hls.isSupported()) {
      hls = new window.Hls({
        lowLatencyMode: live,
        backBufferLength: live ? 30 : 90,
        // Aim about a second behind the newest part; after a stall, play up
        // to 20% faster to catch up, and jump ahead if more than 4 s behind.
        liveSyncDuration: live ? 1.0 : undefined,
        liveMaxLatencyDuration: live ? 4.0 : undefined,
        maxLiveSyncPlaybackRate: 1.2,
        // hls.js adds this to its target after each stall (1 s by default):
        // the start of playback counts as one, which would double our delay.
        liveSyncOnStallIncrease: 0.25,
        enableWorker: true,
        // The live captions are a subtitle rendition: shown from the start, by
        // the page (CUES_PARSED), not as a <track> hls.js would add with a
        // data: URL the page's policy refuses.
        subtitleDisplay: captionsOn,
        renderTextTracksNatively: false,
        // No metadata tracks either (each another data: URL): the slides read
        // the playlist's date ranges from hls.js itself (latestLevelDetails).
        enableDateRangeMetadataCues: false,
        enableEmsgMetadataCues: false,
        enableID3MetadataCues: false,
        xhrSetup: function (xhr) { xhr.withCredentials = true; },
      });
      hls.on(window.Hls.Events.ERROR, function (_e, data) {
        if (!data.fatal) return;
        if (data.type === window.Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
        else if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      });
      hls.on(window.Hls.Events.SUBTITLE_TRACKS_UPDATED, function (_e, data) {
        if (!data.subtitleTracks.length) return;
        captionsArea.hidden = false;
        for (const track of Array.from(media.textTracks)) wireTrack(track);
      });
      hls.on(window.Hls.Events.NON_NATIVE_TEXT_TRACKS_FOUND, function (_e, data) {
        if (data.tracks.length) captionsArea.hidden = false;
      });
      hls.on(window.Hls.Events.CUES_PARSED, function (_e, data) {
        if (data.type === "subtitles" || data.type === "captions") addLiveCues(data.cues);
      });
      root.hlsPlayer = hls; // for the page's tests and for support: hls.latency
      hls.loadSource(url);
      hls.attachMedia(media);
    } else if (media.canPlayType("application/vnd.apple.mpegurl")) {
      media.src = url;
    } else {
      say("<p><strong>This browser cannot play the webcast.</strong> Dial in by phone instead.</p>");
      return false;
    }
    return true;
  }

  // The call is over and its replay ready: say so, with a button. Only the
  // listener's click starts it.
  function offerReplay(status) {
    offered = status;
    root.dataset.offer = "replay";
    statusBox.textContent = "";
    const line = document.createElement("p");
    const strong = document.createElement("strong");
    strong.textContent = "The call has ended.";
    line.appendChild(strong);
    let note = heardLive ? " Thank you for listening. The replay is ready." : " The replay is ready.";
    if (status.replay_until) note += " It is available through " + untilText(status.replay_until) + ".";
    line.appendChild(document.createTextNode(note));
    const actions = document.createElement("p");
    const button = document.createElement("button");
    button.type = "button";
    button.id = "replay-start";
    button.textContent = "Play the replay";
    button.addEventListener("click", function () { playReplay(null); });
    actions.appendChild(button);
    statusBox.append(line, actions);
    showDownload(status);
    if (!afterCallShown) { afterCallShown = true; showAfterCall(); }
  }

  // What the page drawn after the call has and this one lacks: the transcript and its
  // downloads. Read from the page itself, so that it is drawn once, on the server.
  let afterCallShown = false;
  async function showAfterCall() {
    try {
      const response = await fetch(location.pathname, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return;
      const drawn = new DOMParser().parseFromString(await response.text(), "text/html");
      const transcript = drawn.querySelector(".stage-transcript");
      const stage = root.querySelector(".stage");
      if (transcript && stage && !stage.querySelector(".stage-transcript")) {
        stage.appendChild(document.adoptNode(transcript));
      }
      const figures = drawn.querySelector("#key-figures");
      const extras = root.querySelector(".stage-extras");
      if (figures && extras && !document.getElementById("key-figures")) {
        const before = extras.querySelector("#callme-section");
        extras.insertBefore(document.adoptNode(figures), before);
      }
      const list = downloadsCard && downloadsCard.querySelector("ul");
      const listed = drawn.querySelectorAll("#downloads-card li:not(#downloads)");
      if (list) {
        const known = new Set(Array.from(list.querySelectorAll("a")).map(function (a) { return a.getAttribute("href"); }));
        for (const item of Array.from(listed)) {
          const link = item.querySelector("a");
          if (link && !known.has(link.getAttribute("href"))) list.appendChild(document.adoptNode(item));
        }
        if (list.querySelector("li:not([hidden])")) downloadsCard.hidden = false;
      }
    } catch (_e) { /* the page shows them when it is next loaded */ }
  }

  // The recording's download, listed with the others once the replay is ready.
  function showDownload(status) {
    if (!status.replay_download || !downloads) return;
    download.href = status.replay_download;
    downloads.hidden = false;
    if (downloadsCard) downloadsCard.hidden = false;
  }

  function playReplay(at) {
    if (!offered) return;
    if (at !== null) pendingSeek = at;
    const status = offered;
    offered = null;
    root.dataset.offer = "";
    start("replay", status);
  }

  // The page was drawn while the call was live: what only a live call has goes
  // (the LIVE badge and border, the question form, the live dial-in and passcode).
  function markEnded() {
    root.classList.remove("is-live");
    for (const b of Array.from(root.querySelectorAll(".badge.live:not(#live-badge)"))) b.remove();
    for (const s of Array.from(root.querySelectorAll("section.ask, section.dial-in, .links .calendar"))) s.hidden = true;
    const waiting = document.getElementById("player-waiting");
    if (waiting) waiting.hidden = true;
    for (const w of Array.from(root.querySelectorAll(".slides-waiting"))) {
      w.textContent = "The slides follow the replay as it plays.";
    }
  }

  // The call went live while the page was open: what a live call has shows, as a
  // page drawn live has it (the LIVE badge and border); an answer the question
  // form gave before the call ("Not sent: … not live") no longer holds.
  function markLive() {
    if (root.classList.contains("is-live")) return;
    root.classList.add("is-live");
    const company = root.querySelector("header .company");
    if (company && !company.querySelector(".badge.live")) {
      const live = document.createElement("span");
      live.className = "badge live";
      live.textContent = "LIVE";
      company.append(" ", live);
    }
    const waiting = document.getElementById("player-waiting");
    if (waiting) {
      waiting.querySelector(".badge").hidden = false;
      waiting.querySelector(".waiting-text").textContent = "The webcast starts in a moment.";
    }
    const asked = document.getElementById("ask-status");
    if (asked && asked.textContent.startsWith("Not sent")) asked.textContent = "";
    if (!mode) {
      say("<p><strong>The call is live now.</strong>" +
        (root.dataset.mayListen === "yes" ? " The webcast starts in a moment." : " Register below to listen.") + "</p>");
    }
  }

  function untilText(day) {
    const until = new Date(day + "T12:00:00");
    return until.toLocaleDateString(undefined, { year: "numeric", month: "long", day: "numeric" });
  }

  function start(kind, status) {
    const url = kind === "live" ? status.live_playlist : status.replay_playlist;
    if (mode === kind && source === url) return;
    stop();
    mode = kind;
    source = url;
    player.hidden = false;
    root.dataset.playing = kind;
    badge.hidden = kind !== "live";
    title.textContent = kind === "live" ? "Live call" : "Replay";
    seek.hidden = kind !== "replay";
    speedPart.hidden = kind !== "replay";
    durationPart.hidden = true;
    if (kind === "replay") {
      if (status.captions) {
        const track = document.createElement("track");
        track.kind = "captions";
        track.srclang = "en";
        track.label = "English";
        track.src = status.captions;
        track.default = true;
        media.appendChild(track);
        track.addEventListener("load", function () { track.track.mode = captionsOn ? "hidden" : "disabled"; });
        wireTrack(track.track);
      }
      showDownload(status);
      if (status.replay_until) {
        say("<p><strong>Replay.</strong> Available through " + untilText(status.replay_until) + ".</p>");
      } else {
        say("<p><strong>Replay.</strong></p>");
      }
    } else {
      heardLive = true;
      if (downloads) downloads.hidden = true;
      say("<p><strong>The call is live now.</strong></p>");
    }
    if (!attach(url, kind === "live")) return;
    setSpeed(kind === "replay" ? Number(speed.value) : 1);
    media.play().then(function () { showPlaying(true); })
      .catch(function () { showPlaying(false); });
  }

  function showPlaying(playing) {
    playButton.textContent = playing ? "Pause" : "Play";
    playButton.setAttribute("aria-pressed", playing ? "true" : "false");
  }

  // The button says what it did as soon as it is pressed: the media's own play and
  // pause events come a task later (and play's promise later still), and a screen
  // reader or a script reading the button in between would hear the old state.
  playButton.addEventListener("click", function () {
    if (media.paused) {
      showPlaying(true);
      media.play().catch(function () { showPlaying(!media.paused); });
    } else {
      media.pause();
      showPlaying(false);
    }
  });
  media.addEventListener("play", function () { showPlaying(true); });
  media.addEventListener("pause", function () { showPlaying(false); });
  volume.addEventListener("input", function () { media.volume = Number(volume.value); });
  // The replay's speed: the listener's choice, kept when the media reloads (a new
  // source resets playbackRate to defaultPlaybackRate). The live call plays at 1×,
  // hls.js's catch-up aside.
  function setSpeed(rate) {
    media.defaultPlaybackRate = rate;
    media.playbackRate = rate;
  }
  speed.addEventListener("change", function () { if (mode === "replay") setSpeed(Number(speed.value)); });
  media.addEventListener("timeupdate", function () {
    elapsed.textContent = clock(media.currentTime);
    if (mode === "replay" && !seek.matches(":active")) seek.value = String(Math.floor(media.currentTime));
  });
  function showDuration() {
    if (mode !== "replay" || !Number.isFinite(media.duration) || media.duration <= 0) return;
    seek.max = String(Math.floor(media.duration));
    durationText.textContent = clock(media.duration);
    durationPart.hidden = false;
  }
  media.addEventListener("durationchange", showDuration);
  media.addEventListener("loadedmetadata", function () {
    showDuration();
    if (mode === "replay" && pendingSeek !== null) { media.currentTime = pendingSeek; pendingSeek = null; }
  });
  seek.addEventListener("change", function () { media.currentTime = Number(seek.value); });
  document.addEventListener("click", function (e) {
    const link = e.target.closest("[data-seek]");
    if (!link) return;
    if (mode !== "replay") {
      // A transcript time is a choice to play the replay from there.
      if (!offered) return;
      e.preventDefault();
      playReplay(Number(link.dataset.seek));
      player.scrollIntoView({ block: "nearest" });
      return;
    }
    e.preventDefault();
    media.currentTime = Number(link.dataset.seek);
    media.play();
    player.scrollIntoView({ block: "nearest" });
  });

  // Listening time: a beacon when the audio starts playing and one per interval
  // from then on, counted from the start of playback (a schedule from the page's
  // load left the first interval's beacon a moment after the first, crediting
  // almost nothing). A pause sends one (the time up to it) and stops the
  // schedule; the first beacon after it says "resumed", so the pause is not
  // credited as listening.
  let beaconTimer = null;
  let pausedSince = false;
  // A beacon still on its way: where registration is optional, the first one
  // answers with the browser's id (a cookie), and the registration must carry
  // that id so the listening it counted gets the name. A registration sent
  // before that answer made a second listener, and the beacon's late cookie
  // then took the page's place from the registration's: the named listener
  // was never credited. So the form waits for a beacon on its way, and once
  // it is sent the page sends none (the page after it does).
  let beaconInFlight = null;
  let registering = false; // the registration is on its way: no beacon may race its cookie
  function sendBeacon(resumed) {
    if (!mode || registering) return;
    const body = { mode: mode };
    if (resumed) body.resumed = true;
    const sent = fetch("/api/events/" + eventId + "/webcast/beacon", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      keepalive: true,
    }).catch(function () {}).finally(function () {
      if (beaconInFlight === sent) beaconInFlight = null;
    });
    beaconInFlight = sent;
  }
  const registerForm = document.querySelector("form.register");
  if (registerForm) {
    registerForm.addEventListener("submit", function (e) {
      // From here on this page sends no beacon: one sent now, without an id, would be
      // answered with a new id that could land after the registration's cookie.
      registering = true;
      if (!beaconInFlight) return;
      e.preventDefault();
      const waited = beaconInFlight;
      let sent = false;
      const go = function () { if (!sent) { sent = true; registerForm.submit(); } };
      waited.then(go, go);
      setTimeout(go, 3000); // a beacon that never answers keeps nobody from registering
    });
  }
  media.addEventListener("playing", function () {
    if (beaconTimer !== null) return; // playing again after a stall: the schedule runs on
    sendBeacon(pausedSince);
    pausedSince = false;
    beaconTimer = setInterval(function () { if (!media.paused) sendBeacon(false); }, beaconSeconds * 1000);
  });
  media.addEventListener("pause", function () {
    if (beaconTimer === null) return;
    clearInterval(beaconTimer);
    beaconTimer = null;
    sendBeacon(false);
    pausedSince = true;
  });
  // A new source (live to replay) starts its own count: its first beacon is a first.
  media.addEventListener("emptied", function () { pausedSince = false; });

  async function poll() {
    let delay = 5000;
    try {
      const response = await fetch("/api/events/" + eventId + "/webcast", { credentials: "same-origin", cache: "no-store" });
      if (response.ok) {
        const status = await response.json();
        if (status.poll_s > 0) delay = status.poll_s * 1000;
        root.dataset.state = status.state;
        if (status.state === "live") markLive();
        if (status.state === "ended" || status.state === "archived") markEnded();
        if (status.may_listen && status.live_playlist) {
          start("live", status);
        } else if (mode === "live" && status.state !== "live") {
          stop();
          player.hidden = true;
          root.dataset.playing = "";
          say("<p><strong>The call has ended.</strong> Thank you for listening." +
            (status.replay === "none" ? "" : " The replay will be offered here shortly.") + "</p>");
          delay = 2000;
        } else if (status.may_listen && status.replay === "ready") {
          // Playing already (the listener chose it): follow a new recording.
          // Otherwise offer it, and wait for the listener's click.
          if (mode === "replay") start("replay", status);
          else if (!offered || offered.replay_playlist !== status.replay_playlist) offerReplay(status);
          else offered = status;
          delay = 30000;
        } else if (status.replay === "preparing") {
          delay = 2000;
        } else if (status.replay === "expired" && (mode === "replay" || offered)) {
          stop();
          offered = null;
          root.dataset.offer = "";
          player.hidden = true;
          say("<p><strong>The replay has expired.</strong></p>");
        }
      }
    } catch (_e) { /* the next poll tries again */ }
    setTimeout(poll, delay);
  }
  poll();
})();
