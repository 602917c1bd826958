// The desk's "Dial out": the bridge calls a number through its outbound trunk
// (POST /api/events/{id}/dial); the callee presses 1 and joins in the role chosen.
// The participants list shows them once they are on the call.
"use strict";
(function () {
  const form = document.getElementById("dial-form");
  if (!form) return;
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
  const url = `/api/events/${meta("event-id")}/dial`;
  const state = document.getElementById("dial-state");
  const number = document.getElementById("dial-number");

  // The form shows before the call and while it is live (the call state's bar says
  // when that changes): after the end there is nobody to join.
  const buttons = document.getElementById("call-buttons");
  function follow() {
    const state = buttons ? buttons.dataset.eventState : "";
    form.hidden = state !== "scheduled" && state !== "live";
  }
  if (buttons) new MutationObserver(follow).observe(buttons, { attributes: true, attributeFilter: ["data-event-state"] });

  // Call me: whether registrants may ask the bridge to call them; off mid-call stops
  // new requests (calls placed go on). The bridge keeps the switch.
  const callMe = document.getElementById("call-me-switch");
  const callMeState = document.getElementById("call-me-state");
  const callMeUrl = `/api/events/${meta("event-id")}/call-me`;
  async function callMeSwitch(enabled) {
    const response = await fetch(callMeUrl, {
      method: enabled === undefined ? "GET" : "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": meta("csrf-token") },
      body: enabled === undefined ? undefined : JSON.stringify({ enabled: enabled }),
    }).catch(function () { return null; });
    if (response === null || !response.ok) {
      callMe.disabled = true;
      callMeState.textContent = "Call me is not available on this bridge.";
      return;
    }
    const data = await response.json();
    callMe.checked = Boolean(data.enabled);
    callMe.disabled = false;
    callMeState.textContent = data.enabled ? "" : "Call me is off: the webcast page does not offer it.";
  }
  callMe.addEventListener("change", function () { callMeSwitch(callMe.checked); });
  callMeSwitch();

  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    const typed = number.value.replace(/[\s().-]/g, "");
    if (!typed) { state.textContent = "Type the number to call."; number.focus(); return; }
    state.textContent = "Calling " + typed + "…";
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": meta("csrf-token") },
      body: JSON.stringify({ number: typed, as_role: form.elements.as_role.value }),
    }).catch(function () { return null; });
    if (response === null) { state.textContent = "Not sent: the server cannot be reached."; return; }
    if (response.ok) {
      state.textContent = "Ringing " + typed + ": they join once they press 1.";
      number.value = "";
      return;
    }
    let detail = response.statusText;
    try {
      const data = await response.json();
      if (typeof data.detail === "string") detail = data.detail;
      else if (Array.isArray(data.detail)) detail = data.detail.map(function (p) { return p.msg; }).join("; ");
    } catch (_e) { /* not JSON */ }
    state.textContent = "Not called: " + detail;
  });
})();
