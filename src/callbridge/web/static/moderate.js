// The moderator's live view: Server-Sent Events in, actions out with the CSRF header.
"use strict";
(function () {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
  const eventId = meta("event-id");
  const csrf = meta("csrf-token");
  const base = `/api/events/${eventId}`;
  const problem = document.getElementById("problem");

  function say(text) {
    problem.textContent = text;
    problem.hidden = !text;
  }

  // Where a refused field is: "name", or "speaker 2 phone" for an entry of a list.
  function where(loc) {
    const field = String(loc[loc.length - 1]);
    const index = loc.findIndex((part) => typeof part === "number");
    return index >= 0 && index < loc.length - 1 ? `speaker ${loc[index] + 1} ${field}` : field;
  }

  async function post(path, body, method = "POST") {
    const response = await fetch(base + path, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    if (!response.ok) {
      let detail = response.statusText;
      try {
        const data = await response.json();
        if (typeof data.detail === "string") detail = data.detail;
        else if (Array.isArray(data.detail)) {
          // A refused field: which one and why ("name: a name cannot be blank").
          detail = data.detail.map((e) => `${where(e.loc || [])}: ${e.msg}`).join("; ");
        } else detail = JSON.stringify(data.detail);
      } catch (error) { /* not JSON */ }
      say(detail);
      return null;
    }
    say("");
    return response.json();
  }

  function button(label, action, participantId, extra) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.className = "secondary small";
    b.dataset.action = action;
    b.dataset.participant = participantId;
    if (extra !== undefined) b.dataset.position = extra;
    return b;
  }

  function questionButton(label, action, questionId, position) {
    const b = button(label, action, "", position);
    delete b.dataset.participant;
    b.dataset.question = questionId;
    return b;
  }

  // A small arrow button that says in words what it does.
  function arrow(symbol, words, b) {
    b.textContent = symbol;
    b.setAttribute("aria-label", words);
    b.title = words;
    b.classList.add("icon");
    return b;
  }

  function time(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  }

  function span(className, text) {
    const s = document.createElement("span");
    s.className = className;
    s.textContent = text;
    return s;
  }

  // "Mark Chen, Chief Financial Officer" or "Ana Ruiz, Fjord Capital": the name, then the rest.
  function person(label) {
    const at = label.indexOf(", ");
    return at > 0 ? [label.slice(0, at), label.slice(at + 2)] : [label, ""];
  }

  function who(label) {
    const [name, firm] = person(label);
    const parts = [span("name", name)];
    if (firm) parts.push(" ", span("firm", firm));
    return parts;
  }

  // After the call the recording is transcribed; show how far it has got.
  async function transcriptProgress() {
    let again = 10000;
    try {
      const response = await fetch(base + "/transcript/progress", { credentials: "same-origin" });
      if (response.ok) {
        const p = await response.json();
        document.getElementById("transcript-card").hidden = false;
        document.getElementById("transcript-progress").value = p.fraction;
        document.getElementById("transcript-state").textContent =
          p.state === "running" ? Math.round(p.fraction * 100) + "% transcribed"
          : p.state === "done" ? "Done: captions and the searchable transcript are on the webcast page."
          : "Failed: " + (p.detail || "see the server log");
        again = p.state === "running" ? 2000 : 0;
      }
    } catch (error) { /* the next poll tries again */ }
    if (again) setTimeout(transcriptProgress, again);
  }
  transcriptProgress();

  // -- the call's state, its timer and the actions it allows ------------------------------

  const desk = document.getElementById("desk");
  const callButtons = document.getElementById("call-buttons");
  const actions = {
    start: callButtons.querySelector('[data-call="start"]'),
    end: callButtons.querySelector('[data-call="end"]'),
    lock: callButtons.querySelector('[data-action="lock"]'),
    unlock: callButtons.querySelector('[data-action="unlock"]'),
    muteAll: callButtons.querySelector('[data-action="mute_all"]'),
    unmuteAll: callButtons.querySelector('[data-action="unmute_all"]'),
  };
  const stateLabel = document.getElementById("call-state");
  const timer = document.getElementById("call-timer");
  const timerLabel = document.getElementById("call-timer-label");
  // The server's clock minus the browser's: the timer and the waits count on the server's.
  const skew = (Date.parse(desk.dataset.serverNow) - Date.now()) || 0;
  const moment = (iso) => (iso ? Date.parse(iso) : null);
  let eventState = desk.dataset.eventState;
  let startedAt = moment(desk.dataset.started);
  let endedAt = moment(desk.dataset.ended);
  let lastView = null;

  function show(element, shown) {
    element.hidden = !shown;
    if (element.tagName === "BUTTON") element.disabled = !shown;
  }

  // Only what applies now: Start before the call; Lock or Unlock, Mute all or
  // Unmute all, and End while it is live; nothing after it.
  function applyActions() {
    const live = eventState === "live";
    const view = lastView;
    const locked = Boolean(view && view.locked);
    const speakers = view ? view.participants.filter((p) => p.role === "speaker") : [];
    const allMuted = speakers.length > 0 && speakers.every((p) => p.muted);
    show(actions.start, eventState === "scheduled");
    show(actions.end, live);
    show(actions.lock, live && !locked);
    show(actions.unlock, live && locked);
    show(actions.muteAll, live && !allMuted);
    show(actions.unmuteAll, live && allMuted);
    document.getElementById("lock-state").hidden = !(live && locked);
    document.getElementById("desk-keys").hidden = eventState !== "scheduled" && !live;
    const deckForm = document.getElementById("deck-form");
    if (deckForm) deckForm.hidden = eventState !== "scheduled";
  }

  function showCallState(state) {
    if (state === eventState) return;
    eventState = state;
    desk.dataset.eventState = callButtons.dataset.eventState = state;
    stateLabel.textContent = state;
    stateLabel.className = "state state-" + state;
    if (state === "live" && startedAt === null) startedAt = Date.now() + skew;
    if (state === "ended" && endedAt === null && startedAt !== null) endedAt = Date.now() + skew;
    applyActions();
    renderOnAir();
    tick();
    document.dispatchEvent(new CustomEvent("callstate", { detail: state }));
  }

  function clock(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h + ":" + String(m).padStart(2, "0") + ":" + String(r).padStart(2, "0");
  }

  function waited(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    return s < 60 ? s + " s" : Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
  }

  // Once a second: the call's running time (it stops at the end) and each question's wait.
  function tick() {
    const now = Date.now() + skew;
    let label = "Not started", text = "0:00:00";
    if (startedAt !== null && endedAt !== null) {
      label = "Lasted";
      text = clock(endedAt - startedAt);
    } else if (startedAt !== null) {
      label = "Call time";
      text = clock(now - startedAt);
    }
    if (timer.textContent !== text) timer.textContent = text;
    if (timerLabel.textContent !== label) timerLabel.textContent = label;
    timer.dataset.running = String(startedAt !== null && endedAt === null);
    for (const wait of document.querySelectorAll("#queue .waited[data-since]")) {
      wait.textContent = "waiting " + waited(now - Number(wait.dataset.since));
    }
  }
  setInterval(tick, 500);
  tick();

  // -- on air: whose line is open, who speaks --------------------------------------------

  // A part is drawn again only when what it shows has changed, so a button is
  // not replaced under the moderator's pointer because somebody began talking:
  // who talks is marked in place.
  const drawn = {};
  function changed(part, value) {
    const key = JSON.stringify(value);
    if (drawn[part] === key) return false;
    drawn[part] = key;
    return true;
  }

  function speaking(p) {
    return Boolean(p && p.talking && !p.muted);
  }

  function onAirKind(item) {
    const p = item.p;
    if (!p || p.line_open) return item.kind;
    return item.kind + (p.state === "hold" ? " · on hold" : p.muted ? " · muted" : p.talking ? " · speaking" : "");
  }

  function renderOnAir() {
    const list = document.getElementById("on-air");
    const empty = document.getElementById("on-air-empty");
    const view = lastView;
    const items = [];
    if (view && eventState === "live") {
      for (const p of view.participants) {
        if (p.state === "left") continue;
        if (p.line_open) {
          items.push({ rank: 0, p, kind: "Question · phone line open" });
        } else if (p.role === "speaker" || p.role === "host") {
          items.push({ rank: 1, p, kind: p.role === "host" ? "Host" : "Speaker" });
        }
      }
      for (const entry of view.queue) {
        if (entry.kind === "written" && entry.reading) {
          items.push({ rank: 0, entry, kind: "Written question · being read out" });
        }
      }
    }
    items.sort((a, b) => a.rank - b.rank);
    empty.textContent = eventState === "live" ? "Nobody is on the line yet."
      : eventState === "scheduled" ? "The call has not started." : "The call has ended.";
    empty.hidden = items.length > 0;
    const shape = items.map((item) => (item.p
      ? [item.p.id, item.p.name || item.p.caller_id, item.p.line_open, item.p.muted, item.p.state, item.kind]
      : [item.entry.participant_id, item.entry.name, item.kind]));
    if (!changed("on-air", shape)) {
      for (const item of items) {
        if (!item.p) continue;
        const li = list.querySelector(`li[data-participant="${CSS.escape(item.p.id)}"]`);
        if (!li) continue;
        li.classList.toggle("talking", speaking(item.p));
        li.querySelector(".kind").textContent = onAirKind(item);
      }
      return;
    }
    list.replaceChildren(...items.map((item) => {
      const li = document.createElement("li");
      const label = item.p ? (item.p.name || item.p.caller_id) : item.entry.name;
      li.dataset.participant = item.p ? item.p.id : item.entry.participant_id;
      if (speaking(item.p)) li.classList.add("talking");
      if (item.p && item.p.line_open) li.classList.add("open-line");
      const dot = span("dot", "");
      dot.setAttribute("aria-hidden", "true");
      const text = document.createElement("span");
      text.className = "who";
      text.append(...who(label), span("kind", onAirKind(item)));
      li.append(dot, text);
      if (item.p && item.p.line_open) li.append(button("Close line", "close_line", item.p.id));
      return li;
    }));
  }

  // -- the question queue ----------------------------------------------------------------

  function renderQueue(view) {
    const queue = document.getElementById("queue");
    const open = new Set(view.participants.filter((p) => p.line_open).map((p) => p.id));
    if (!changed("queue", [view.queue, [...open]])) return;
    const last = view.queue.length - 1;
    queue.replaceChildren(...view.queue.map((entry, index) => {
      const li = document.createElement("li");
      li.dataset.participant = entry.participant_id;
      const head = document.createElement("div");
      head.className = "q-head";
      const written = entry.kind === "written";
      const kind = span("kind", written ? (entry.reading ? "written · reading" : "written") : "phone *1");
      const name = document.createElement("span");
      name.className = "who";
      name.append(...who(entry.name));
      head.append(span("place", String(index + 1)), kind, " ", name);
      if (entry.asked_at) {
        const wait = span("waited", "");
        wait.dataset.since = String(Date.parse(entry.asked_at));
        head.append(" ", wait);
      }
      li.append(head);
      const id = entry.participant_id;
      const row = document.createElement("div");
      row.className = "q-actions";
      if (written) {
        // A written question: its words as text, never markup.
        li.className = "written";
        const words = document.createElement("span");
        words.className = "question";
        words.textContent = entry.text;
        li.append(words);
        if (!entry.reading) row.append(questionButton("Read out", "read_out", id), " ");
        row.append(questionButton("Answered", "answer", id), " ", questionButton("Dismiss", "dismiss", id));
        const silence = questionButton("Silence asker", "", id);
        silence.dataset.silence = id;
        silence.dataset.confirm = `Refuse further written questions from ${entry.name}?`;
        row.append(" ", silence);
        if (index > 0) row.append(" ", arrow("↑", "Move up", questionButton("Up", "move_question", id, index - 1)));
        if (index < last) row.append(" ", arrow("↓", "Move down", questionButton("Down", "move_question", id, index + 1)));
      } else {
        li.className = "phone";
        const primary = open.has(id) ? button("Close line", "close_line", id) : button("Open line", "open_line", id);
        primary.className = open.has(id) ? "small" : "small primary";
        row.append(primary, " ", button("Dismiss", "dequeue", id));
        if (index > 0) row.append(" ", arrow("↑", "Move up", button("Up", "move", id, index - 1)));
        if (index < last) row.append(" ", arrow("↓", "Move down", button("Down", "move", id, index + 1)));
      }
      li.append(row);
      return li;
    }));
    document.getElementById("queue-empty").hidden = view.queue.length > 0;
    document.getElementById("queue-count").textContent = String(view.queue.length);
  }

  // -- participants: counts, search, the table -------------------------------------------

  // At most this many rows are drawn (the busiest first); a search finds the others.
  const MAX_ROWS = 300;
  const peopleBox = document.getElementById("people-q");

  function matchesPerson(p, query) {
    if (!query) return true;
    return [p.name || "", p.caller_id, p.role, p.line_open ? "question" : ""]
      .some((text) => text.toLowerCase().includes(query));
  }

  function renderPeople(view) {
    const people = view.participants.filter((p) => p.state !== "left");
    const channels = view.listeners_by_channel || {};
    document.getElementById("count-speakers").textContent =
      String(people.filter((p) => (p.role === "speaker" || p.role === "host") && !p.line_open).length);
    document.getElementById("count-phone").textContent = String(channels.phone || 0);
    document.getElementById("count-web").textContent = String(channels.web || 0);
    document.getElementById("count-open").textContent = String(people.filter((p) => p.line_open).length);

    const rank = (p) => (p.line_open ? 0 : p.role === "host" ? 1 : p.role === "speaker" ? 2 : 3);
    const query = peopleBox.value.trim().toLowerCase();
    const found = people.filter((p) => matchesPerson(p, query));
    found.sort((a, b) => rank(a) - rank(b));
    const shown = found.slice(0, MAX_ROWS);
    const queued = new Map(view.queue.map((entry, i) => [entry.participant_id, i + 1]));
    const rows = document.getElementById("participants");
    if (!changed("people", [shown.map((p) => ({ ...p, talking: false })), [...queued]])) {
      for (const p of shown) {
        const tr = rows.querySelector(`tr[data-participant="${CSS.escape(p.id)}"]`);
        if (!tr) continue;
        tr.className = p.line_open ? "open-line" : speaking(p) ? "talking" : "";
        tr.querySelector(".c-talk").textContent = p.talking ? "talking" : p.muted ? "muted" : "";
      }
    } else rows.replaceChildren(...shown.map((p) => {
      const tr = document.createElement("tr");
      tr.dataset.participant = p.id;
      tr.className = p.line_open ? "open-line" : speaking(p) ? "talking" : "";
      const cells = [
        p.name || p.caller_id,
        p.line_open ? "question (line open)"
          : p.role + (p.state === "hold" ? " (on hold)" : queued.has(p.id) ? ` · queued #${queued.get(p.id)}` : ""),
        p.talking ? "talking" : p.muted ? "muted" : "",
        time(p.joined_at),
      ];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        td.textContent = text;
        td.className = ["c-name", "c-role", "c-talk", "c-joined"][i];
        if (i === 0 && p.name && p.caller_id !== p.name) td.title = p.caller_id;
        tr.append(td);
      });
      const actions = document.createElement("td");
      actions.className = "c-actions";
      if (p.line_open) actions.append(button("Close line", "close_line", p.id), " ");
      if (p.role === "listener" || p.line_open) {
        actions.append(button("Make speaker", "promote", p.id), " ");
      } else if (p.role === "speaker") {
        actions.append(button("Listen only", "demote", p.id), " ");
      }
      if (p.role !== "listener") {
        actions.append(button(p.muted ? "Unmute" : "Mute", p.muted ? "unmute" : "mute", p.id), " ");
      }
      const rename = document.createElement("button");
      rename.type = "button";
      rename.className = "secondary small";
      rename.textContent = "Name";
      rename.dataset.rename = p.id;
      rename.dataset.current = p.name || "";
      rename.dataset.who = p.name || p.caller_id;
      actions.append(rename, " ", button("Disconnect", "disconnect", p.id));
      tr.append(actions);
      return tr;
    }));
    const more = document.getElementById("people-more");
    more.textContent = found.length > shown.length
      ? `Showing ${shown.length} of ${found.length}; search to find the others.`
      : query && !found.length ? "Nobody matches."
        : people.length ? "" : eventState === "live" || eventState === "scheduled" ? "Nobody has dialled in yet."
        : "The call has ended.";
  }
  peopleBox.addEventListener("input", () => { if (lastView) renderPeople(lastView); });
  document.getElementById("people-search").addEventListener("submit", (e) => e.preventDefault());

  function renderAlerts(view) {
    const alerts = view.alerts || [];
    const alertList = document.getElementById("alerts");
    alertList.replaceChildren();
    alerts.forEach((alert) => {
      const li = document.createElement("li");
      li.className = "alert-" + alert.standing;
      const what = alert.standing === "refused"
        ? "refused until " + time(alert.until)
        : "slowed (" + alert.delay_s + " s before each answer)";
      // The identity comes from the caller's signalling: text, never markup.
      li.textContent = time(alert.at) + " · " + alert.identity + " · " + alert.failures +
        " wrong passcodes · " + what;
      alertList.append(li);
    });
    document.getElementById("alerts-card").hidden = alerts.length === 0;

    const lost = view.lost || [];
    const lostList = document.getElementById("lost");
    lostList.replaceChildren();
    lost.forEach((caller) => {
      const li = document.createElement("li");
      // Names and numbers come from callers and their signalling: text, never markup.
      li.textContent = time(caller.at) + " · " + (caller.name || caller.caller_id) +
        (caller.name ? " (" + caller.caller_id + ")" : "") + " · lost with node " + caller.node;
      lostList.append(li);
    });
    document.getElementById("lost-card").hidden = lost.length === 0;
  }

  // The button that had the focus is drawn again: give the focus to its new self.
  function focusKey() {
    const el = document.activeElement;
    if (!el || el.tagName !== "BUTTON" || !el.closest("#queue, #participants, #on-air")) return null;
    const d = el.dataset;
    return `button[data-action="${d.action || ""}"][data-participant="${d.participant || ""}"]`;
  }

  // The media plane says whether it reaches the database (bridge.outage); what it
  // could not write waits in its journal and is written when the database is back.
  function renderDatabase(view) {
    const banner = document.getElementById("db-outage");
    const down = view.database_reachable === false;
    banner.hidden = !down;
    desk.dataset.database = down ? "unreachable" : "reachable";
    if (!down) return;
    const n = view.writes_waiting || 0;
    document.getElementById("db-outage-waiting").textContent =
      (n === 0 ? "Nothing waits" : n === 1 ? "1 log entry waits" : n + " log entries wait") +
      " to be saved when it is back.";
  }

  function render(view) {
    const focused = focusKey();
    lastView = view;
    desk.dataset.version = String(view.version); // the last view drawn (tests wait on it)
    if (view.started_at) startedAt = moment(view.started_at);
    if (view.ended_at) endedAt = moment(view.ended_at);
    // The conference's own "waiting" and "idle" say nothing about the event's
    // state (it is "scheduled" until started); "live" and "ended" do.
    if (view.state === "live" || view.state === "ended") showCallState(view.state);
    applyActions();
    renderOnAir();
    renderQueue(view);
    renderPeople(view);
    renderAlerts(view);
    renderDatabase(view);
    tick();
    if (focused) {
      const again = document.querySelector(focused);
      if (again) again.focus();
    }
  }

  // An action's answer counts phone legs only; the stream adds the web's.
  function answered(view) {
    if (lastView) view.listeners_by_channel.web = lastView.listeners_by_channel.web;
    render(view);
  }

  // -- keyboard: slides and the first question, never while typing ------------------------

  function usable(b) {
    return b && !b.hidden && !b.disabled && b.offsetParent !== null;
  }

  function press(b) {
    if (!usable(b)) return false;
    b.classList.add("pressed");
    setTimeout(() => b.classList.remove("pressed"), 250);
    b.click();
    return true;
  }

  const KEYS = {
    ArrowRight: () => document.getElementById("slide-next"),
    n: () => document.getElementById("slide-next"),
    ArrowLeft: () => document.getElementById("slide-prev"),
    p: () => document.getElementById("slide-prev"),
    o: () => document.querySelector("#queue li.phone button[data-action=open_line]"),
    c: () => document.querySelector("#on-air button[data-action=close_line]"),
  };
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const target = event.target;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (target instanceof Element) {
      if (target.closest("input, textarea, select, [contenteditable], dialog")) return;
      // A box that scrolls sideways keeps its arrows.
      if (key.startsWith("Arrow") && target.matches(".scroll, .live-captions")) return;
    }
    const find = KEYS[key];
    if (find && press(find())) event.preventDefault();
  });

  // Naming happens in a dialog: the table under it is redrawn on every change.
  const nameDialog = document.getElementById("name-dialog");
  const nameInput = document.getElementById("name-input");
  document.getElementById("name-cancel").addEventListener("click", () => nameDialog.close());
  async function saveName(name) {
    const view = await post("/actions", {
      action: "name", participant_id: nameDialog.dataset.participant, name,
    });
    if (view) {
      nameDialog.close();
      answered(view);
    }
  }
  document.getElementById("name-form").addEventListener("submit", (event) => {
    event.preventDefault();
    saveName(nameInput.value);
  });

  // The event's speaker list, offered in the name dialog (text only, never markup).
  function offerSpeakers(speakers) {
    const labels = speakers.map((s) => (s.title ? `${s.name}, ${s.title}` : s.name));
    const list = document.getElementById("speaker-labels");
    list.replaceChildren(...labels.map((label) => {
      const option = document.createElement("option");
      option.value = label;
      return option;
    }));
    const choices = document.getElementById("name-choices");
    choices.querySelector(".buttons").replaceChildren(...labels.map((label) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "secondary small";
      b.dataset.speakerLabel = label;
      b.textContent = label;
      return b;
    }));
    choices.hidden = labels.length === 0;
  }

  const speakersForm = document.getElementById("speakers-form");
  if (speakersForm) {
    const rows = document.getElementById("speaker-rows");
    const saved = document.getElementById("speakers-state");
    document.getElementById("speaker-add").addEventListener("click", () => {
      if (rows.rows.length >= Number(speakersForm.dataset.max)) {
        saved.textContent = `At most ${speakersForm.dataset.max} speakers.`;
        return;
      }
      const row = rows.rows[rows.rows.length - 1].cloneNode(true);
      const n = rows.rows.length + 1;
      for (const input of row.querySelectorAll("input")) {
        input.value = "";
        input.setAttribute("aria-label", input.getAttribute("aria-label").replace(/^Speaker \d+/, `Speaker ${n}`));
      }
      rows.append(row);
      row.querySelector("input").focus();
    });
    speakersForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const speakers = [];
      for (const row of rows.rows) {
        const value = (field) => row.querySelector(`input[name=${field}]`).value.trim();
        if (!value("name") && !value("title") && !value("phone")) continue; // a blank row
        speakers.push({ name: value("name"), title: value("title") || null, phone: value("phone") || null });
      }
      saved.textContent = "";
      const record = await post("", { speakers }, "PATCH");
      if (record) {
        offerSpeakers(record.speakers);
        // Numbers come back as stored (E.164), so the operator sees what callers must match.
        const filled = [...rows.rows].filter((row) => [...row.querySelectorAll("input")].some((i) => i.value.trim()));
        record.speakers.forEach((s, i) => { filled[i].querySelector("input[name=phone]").value = s.phone || ""; });
        saved.textContent = `Saved ${record.speakers.length} speaker${record.speakers.length === 1 ? "" : "s"}.`;
      } else {
        saved.textContent = problem.textContent;
      }
    });
  }

  document.addEventListener("click", async (event) => {
    const target = event.target.closest("button");
    if (!target) return;
    if (target.dataset.speakerLabel) {
      saveName(target.dataset.speakerLabel); // one click names them
      return;
    }
    if (target.dataset.rename) {
      nameDialog.dataset.participant = target.dataset.rename;
      document.getElementById("name-who").textContent = target.dataset.who;
      nameInput.value = target.dataset.current;
      nameDialog.showModal();
      nameInput.focus();
      return;
    }
    if (target.dataset.confirm && !window.confirm(target.dataset.confirm)) return;
    if (target.dataset.call) {
      target.disabled = true; // one click, one request
      const record = await post(`/${target.dataset.call}`);
      if (record) showCallState(record.state);
      else target.disabled = false;
      return;
    }
    if (target.dataset.silence) {
      const done = await post(`/questions/${target.dataset.silence}/silence`);
      if (done) say(`No further written questions from ${done.name}.`);
      return;
    }
    if (target.dataset.action) {
      const body = { action: target.dataset.action };
      if (target.dataset.participant) body.participant_id = target.dataset.participant;
      if (target.dataset.question) body.question_id = target.dataset.question;
      if (target.dataset.position !== undefined) body.position = Number(target.dataset.position);
      const view = await post("/actions", body);
      if (view) answered(view);
    }
  });

  applyActions();
  renderOnAir();

  const stream = new EventSource(`${base}/live/stream`);
  stream.onmessage = (message) => render(JSON.parse(message.data));
  stream.onerror = () => say("The live connection dropped; reconnecting…");
  stream.onopen = () => say("");
})();
