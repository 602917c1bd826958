// The transcript editor (templates/transcript_editor.html): plays the recording from a
// segment's time, keeps track of what changed, saves it as a draft and publishes,
// through /api/events/<id>/transcript with the session's CSRF header.
(() => {
  "use strict";
  const root = document.getElementById("transcript-editor");
  if (!root) return;
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
  const csrf = meta("csrf-token");
  const base = `/api/events/${root.dataset.event}/transcript`;
  const audio = document.getElementById("te-audio");
  const list = document.getElementById("te-list");
  const state = document.getElementById("te-state");
  const errorBox = document.getElementById("te-error");
  const saveButton = document.getElementById("te-save");
  const publishButton = document.getElementById("te-publish");
  const rows = Array.from(list.querySelectorAll(".te-seg"));
  const starts = rows.map((row) => parseFloat(row.dataset.start));
  const dirty = new Set();
  const HEADINGS = { remarks: "Prepared remarks", qa: "Question-and-answer session", question: "Question" };

  const say = (text) => { state.textContent = text; };
  const showError = (text) => { errorBox.textContent = text; errorBox.hidden = !text; };

  async function call(path, body) {
    const response = await fetch(base + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = answer.detail;
      let text = `The server refused (${response.status}).`;
      if (typeof detail === "string") text = detail;
      else if (Array.isArray(detail) && detail.length) {
        const where = (detail[0].loc || []).filter((p) => p !== "body").join(".");
        text = where ? `${where}: ${detail[0].msg}` : detail[0].msg;
      }
      const error = new Error(text);
      error.detail = detail;
      throw error;
    }
    return answer;
  }

  // -- the player ----------------------------------------------------------------
  function playFrom(seconds) {
    const go = () => { audio.currentTime = seconds; audio.play().catch(() => {}); };
    if (audio.readyState >= 1) go();
    else { audio.addEventListener("loadedmetadata", go, { once: true }); audio.load(); }
  }
  let playing = null;
  audio.addEventListener("timeupdate", () => {
    let lo = 0, hi = starts.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid] <= audio.currentTime + 0.05) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    const row = found >= 0 ? rows[found] : null;
    if (row !== playing) {
      if (playing) playing.classList.remove("playing");
      if (row) row.classList.add("playing");
      playing = row;
    }
  });

  // -- what changed ----------------------------------------------------------------
  function markValue(row) {
    const kind = row.querySelector(".te-mark").value;
    const label = row.querySelector(".te-mark-label").value.trim();
    return kind === "question" && label ? `${kind}:${label}` : kind;
  }
  function showMark(row) {
    const kind = row.querySelector(".te-mark").value;
    const label = row.querySelector(".te-mark-label");
    label.hidden = kind !== "question";
    row.classList.toggle("marked", Boolean(kind));
    const text = label.value.trim();
    row.querySelector("[data-banner]").textContent =
      kind ? HEADINGS[kind] + (kind === "question" && text ? ` from ${text}` : "") : "";
  }
  function counted() {
    if (dirty.size) say(`${dirty.size} unsaved ${dirty.size === 1 ? "segment" : "segments"}`);
  }
  list.addEventListener("input", (event) => {
    const row = event.target.closest(".te-seg");
    if (!row) return;
    event.target.removeAttribute("aria-invalid");
    dirty.add(row);
    row.classList.add("dirty");
    if (event.target.matches(".te-mark, .te-mark-label")) showMark(row);
    counted();
  });
  // A new speaker for a segment: offer it for the segments after it that the old
  // speaker still holds, up to the next other speaker or section mark (the rest of the turn).
  list.addEventListener("focusin", (event) => {
    if (event.target.matches(".te-speaker")) event.target.dataset.was = event.target.value;
  });
  function restOfTurn(row, was) {
    const found = [];
    for (let at = rows.indexOf(row) + 1; at < rows.length; at += 1) {
      const next = rows[at];
      if (next.querySelector(".te-mark").value) break;
      if (next.querySelector(".te-speaker").value !== was) break;
      found.push(next);
    }
    return found;
  }
  function offerRest(row, input) {
    const old = row.querySelector(".te-apply");
    if (old) old.remove();
    const was = input.dataset.was ?? "";
    const now = input.value.trim();
    if (!now || now === was) return;
    const rest = restOfTurn(row, was);
    if (!rest.length) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary small te-apply";
    button.textContent = `Also the next ${rest.length} ${rest.length === 1 ? "segment" : "segments"} of ${was || "this speaker"}`;
    button.addEventListener("click", () => {
      for (const next of restOfTurn(row, was)) {
        next.querySelector(".te-speaker").value = now;
        dirty.add(next);
        next.classList.add("dirty");
      }
      button.remove();
      counted();
    });
    input.insertAdjacentElement("afterend", button);
    input.dataset.was = now;
  }
  list.addEventListener("change", (event) => {
    if (event.target.matches(".te-speaker")) {
      offerRest(event.target.closest(".te-seg"), event.target);
      return;
    }
    if (event.target.matches(".te-mark")) {
      const row = event.target.closest(".te-seg");
      showMark(row);
      if (event.target.value === "question") row.querySelector(".te-mark-label").focus();
    }
  });
  list.addEventListener("click", (event) => {
    const button = event.target.closest("[data-seek]");
    if (button) playFrom(parseFloat(button.dataset.seek));
  });
  window.addEventListener("beforeunload", (event) => {
    if (dirty.size) { event.preventDefault(); event.returnValue = ""; }
  });

  function changes() {
    return Array.from(dirty, (row) => ({
      segment: parseInt(row.dataset.index, 10),
      text: row.querySelector(".te-words").value,
      speaker: row.querySelector(".te-speaker").value,
      mark: markValue(row),
    }));
  }

  function flagField(detail, sent) {
    // "edits[3].text": the third change sent, its text field.
    if (!Array.isArray(detail) || !detail.length) return;
    const loc = detail[0].loc || [];
    const at = /^edits\[(\d+)\]$/.exec(loc[1] || "");
    if (!at) return;
    const change = sent[parseInt(at[1], 10)];
    const row = change && document.getElementById(`seg-${change.segment}`);
    const field = row && row.querySelector({ text: ".te-words", speaker: ".te-speaker", mark: ".te-mark-label" }[loc[2]] || ".te-words");
    if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
  }

  function showCorrected(answer) {
    const corrected = new Set(answer.corrected);
    for (const row of rows) {
      const index = parseInt(row.dataset.index, 10);
      row.classList.toggle("corrected", corrected.has(index));
    }
    document.getElementById("te-corrected").textContent = String(corrected.size);
    showOffers(answer.offers || []);
  }

  async function save() {
    if (!dirty.size) return true;
    const sent = changes();
    saveButton.disabled = true;
    say("Saving…");
    try {
      const answer = await call("/edits", { edits: sent });
      for (const row of dirty) row.classList.remove("dirty");
      dirty.clear();
      showError("");
      showCorrected(answer);
      const when = new Date().toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
      say(`Draft saved at ${when}`);
      return true;
    } catch (error) {
      showError(`Not saved. ${error.message}`);
      flagField(error.detail, sent);
      say("Not saved");
      return false;
    } finally {
      saveButton.disabled = false;
    }
  }
  saveButton.addEventListener("click", save);

  publishButton.addEventListener("click", async () => {
    publishButton.disabled = true;
    try {
      if (!(await save())) return;
      say("Publishing…");
      const answer = await call("/publish", {});
      showError("");
      say(`Published version ${answer.version}: listeners see it now`);
      publishButton.textContent = `Publish version ${answer.version + 1}`;
      const revisions = document.getElementById("te-revisions");
      const item = document.createElement("li");
      const strong = document.createElement("strong");
      strong.textContent = `Version ${answer.version}`;
      item.append(strong, ` · ${answer.corrections} ${answer.corrections === 1 ? "segment" : "segments"} corrected · ${answer.published_by}, just now`);
      revisions.prepend(item);
      revisions.hidden = false;
      const empty = document.getElementById("te-revisions-empty");
      if (empty) empty.hidden = true;
    } catch (error) {
      showError(`Not published. ${error.message}`);
      say("Not published");
    } finally {
      publishButton.disabled = false;
    }
  });

  // -- the glossary -------------------------------------------------------------------
  const offers = document.getElementById("te-offers");
  const glossaryList = document.getElementById("te-glossary-list");
  function showOffers(found) {
    offers.replaceChildren(...found.map((offer) => {
      const item = document.createElement("li");
      item.dataset.term = offer.term;
      const text = document.createElement("span");
      const strong = document.createElement("strong");
      strong.textContent = offer.term;
      const note = document.createElement("span");
      note.className = "te-muted";
      note.textContent = ` corrected ${offer.count}× (was “${offer.heard.join("”, “")}”)`;
      text.append(strong, note);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary small";
      button.dataset.addTerm = offer.term;
      button.textContent = "Add";
      item.append(text, " ", button);
      return item;
    }));
    document.getElementById("te-offers-empty").hidden = found.length > 0;
  }
  async function addTerms(terms) {
    try {
      const answer = await call("/glossary", { terms });
      glossaryList.textContent = answer.glossary.length
        ? `In the glossary: ${answer.glossary.join(", ")}` : "The glossary is empty.";
      for (const term of terms) {
        const offered = offers.querySelector(`li[data-term="${CSS.escape(term)}"]`);
        if (offered) offered.remove();
      }
      document.getElementById("te-offers-empty").hidden = offers.children.length > 0;
      showError("");
      say(answer.added.length ? `Added to the glossary: ${answer.added.join(", ")}` : "Already in the glossary");
      return true;
    } catch (error) {
      showError(`Not added. ${error.message}`);
      return false;
    }
  }
  offers.addEventListener("click", (event) => {
    const button = event.target.closest("[data-add-term]");
    if (button) addTerms([button.dataset.addTerm]);
  });
  document.getElementById("te-term-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("te-term");
    const term = input.value.trim();
    if (term && (await addTerms([term]))) input.value = "";
  });
})();
