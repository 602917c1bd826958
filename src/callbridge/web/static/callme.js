// Call me: the registrant's number goes as JSON with the webcast cookie; the page
// then polls the call's progress until it is joined, failed or ended.
"use strict";
(function () {
  const form = document.getElementById("callme");
  if (!form) return;
  const number = document.getElementById("callme-number");
  const status = document.getElementById("callme-status");
  const button = form.querySelector("button[type=submit]");
  const SAID = {
    calling: "Calling you…",
    ringing: "Your phone is ringing. Answer it and press 1 to join.",
    answered: "Answered: press 1 on your phone to join the call.",
    joined: "You are on the call.",
    ended: "The call has ended.",
  };
  const POLL_MS = 1000;
  const base = `/api/events/${form.dataset.eventId}/webcast/call-me`;

  // Shown only where the server can place the call and the operator has not switched it off.
  fetch(base, { credentials: "same-origin", cache: "no-store" })
    .then((response) => (response.ok ? response.json() : { available: false }))
    .then((data) => { document.getElementById("callme-section").hidden = !data.available; })
    .catch(() => { /* left hidden: the dial-in numbers are on the page */ });
  const MAX_POLLS = 180;

  function reason(data, fallback) {
    if (typeof data.detail === "string") return data.detail;
    if (Array.isArray(data.detail)) return data.detail.map((e) => e.msg).join("; ");
    return fallback;
  }

  function say(text, invalid) {
    status.textContent = /[.!?…]$/.test(text) ? text : text + ".";
    if (invalid) number.setAttribute("aria-invalid", "true");
    else number.removeAttribute("aria-invalid");
  }

  async function follow(url) {
    for (let i = 0; i < MAX_POLLS; i += 1) {
      await new Promise((done) => setTimeout(done, POLL_MS));
      let data;
      try {
        const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
        if (!response.ok) continue;
        data = await response.json();
      } catch (error) {
        continue; // the connection dropped for a moment: ask again
      }
      form.dataset.state = data.state;
      if (data.state === "failed") {
        say("The call did not get through" + (data.detail ? ` (${data.detail})` : "") + ". You can dial in instead.");
        return;
      }
      say(SAID[data.state] || data.state);
      if (data.state === "joined" || data.state === "ended") return;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    say("Placing the call…");
    try {
      const response = await fetch(base, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ number: number.value.replace(/[\s().-]/g, "") }),
        credentials: "same-origin",
      });
      let data = {};
      try { data = await response.json(); } catch (error) { /* not JSON */ }
      if (response.status === 202) {
        form.dataset.dial = data.dial_id;
        form.dataset.state = "calling";
        say(SAID.calling);
        await follow(data.status_url);
      } else if (response.status === 429) {
        const wait = response.headers.get("Retry-After");
        say("Not now: " + reason(data, "too many calls") + (wait ? ` (try again in ${wait} s).` : "."));
      } else {
        say("We cannot call that: " + reason(data, response.statusText), response.status === 422);
      }
    } catch (error) {
      say("The request failed: the connection dropped. Please try again.");
    } finally {
      button.disabled = false;
    }
  });
})();
