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

  function time(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
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

  // One primary action at a time: "Start call" only before the call,
  // "End call" only while it is live, neither after it has ended.
  const startButton = document.querySelector('button[data-call="start"]');
  const endButton = document.querySelector('button[data-call="end"]');
  const callButtons = document.getElementById("call-buttons");
  function showCallState(state) {
    callButtons.dataset.eventState = state;
    document.getElementById("call-state").textContent = state;
    startButton.hidden = startButton.disabled = state !== "scheduled";
    endButton.hidden = endButton.disabled = state !== "live";
  }

  function render(view) {
    // The conference's own "waiting" and "idle" say nothing about the event's
    // state; "live" and "ended" do.
    if (view.state === "live" || view.state === "ended") showCallState(view.state);
    else if (callButtons.dataset.eventState === "scheduled") {
      document.getElementById("call-state").textContent = view.state;
    }
    document.getElementById("lock-state").hidden = !view.locked;
    document.getElementById("count-phone").textContent = view.listeners_by_channel.phone || 0;
    document.getElementById("count-web").textContent = view.listeners_by_channel.web || 0;

    const queue = document.getElementById("queue");
    queue.replaceChildren();
    view.queue.forEach((entry, index) => {
      const li = document.createElement("li");
      li.dataset.participant = entry.participant_id;
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = entry.kind === "written" ? (entry.reading ? "written · reading" : "written") : "phone";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = entry.name;
      li.append(kind, " ", name);
      const last = view.queue.length - 1;
      if (entry.kind === "written") {
        // A written question: its words as text, never markup.
        li.className = "written";
        const words = document.createElement("span");
        words.className = "question";
        words.textContent = entry.text;
        li.append(words);
        const id = entry.participant_id;
        if (!entry.reading) li.append(questionButton("Read out", "read_out", id), " ");
        li.append(questionButton("Answered", "answer", id), " ", questionButton("Dismiss", "dismiss", id));
        if (index > 0) li.append(" ", questionButton("Up", "move_question", id, index - 1));
        if (index < last) li.append(" ", questionButton("Down", "move_question", id, index + 1));
        const silence = questionButton("Silence asker", "", id);
        silence.dataset.silence = id;
        silence.dataset.confirm = `Refuse further written questions from ${entry.name}?`;
        li.append(" ", silence);
      } else {
        li.append(" ", button("Open line", "open_line", entry.participant_id));
        if (index > 0) li.append(" ", button("Up", "move", entry.participant_id, index - 1));
        if (index < last) li.append(" ", button("Down", "move", entry.participant_id, index + 1));
        li.append(" ", button("Remove", "dequeue", entry.participant_id));
      }
      queue.append(li);
    });
    document.getElementById("queue-empty").hidden = view.queue.length > 0;

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

    const rows = document.getElementById("participants");
    rows.replaceChildren();
    for (const p of view.participants) {
      const tr = document.createElement("tr");
      tr.dataset.participant = p.id;
      const cells = [
        p.name || p.caller_id,
        p.line_open ? "question (line open)" : p.role + (p.state === "hold" ? " (on hold)" : ""),
        p.talking ? "talking" : p.muted ? "muted" : "",
        time(p.joined_at),
      ];
      for (const text of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      const actions = document.createElement("td");
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
      rename.className = "secondary";
      rename.textContent = "Name";
      rename.dataset.rename = p.id;
      rename.dataset.current = p.name || "";
      rename.dataset.who = p.name || p.caller_id;
      actions.append(rename, " ", button("Disconnect", "disconnect", p.id));
      tr.append(actions);
      rows.append(tr);
    }
  }

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
      render(view);
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
      if (view) render(view);
    }
  });

  const stream = new EventSource(`${base}/live/stream`);
  stream.onmessage = (message) => render(JSON.parse(message.data));
  stream.onerror = () => say("The live connection dropped; reconnecting…");
  stream.onopen = () => say("");
})();
