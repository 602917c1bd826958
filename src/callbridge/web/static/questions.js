// A registered listener's written question: sent as JSON with the webcast cookie.
"use strict";
(function () {
  const form = document.getElementById("ask");
  if (!form) return;
  const text = document.getElementById("ask-text");
  const count = document.getElementById("ask-count");
  const status = document.getElementById("ask-status");
  const button = form.querySelector("button[type=submit]");

  text.addEventListener("input", () => { count.textContent = String(text.value.length); });

  function reason(data, fallback) {
    if (typeof data.detail === "string") return data.detail;
    if (Array.isArray(data.detail)) return data.detail.map((e) => e.msg).join("; ");
    return fallback;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    status.textContent = "Sending…";
    try {
      const response = await fetch(`/api/events/${form.dataset.eventId}/questions`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text: text.value }),
        credentials: "same-origin",
      });
      let data = {};
      try { data = await response.json(); } catch (error) { /* not JSON */ }
      if (response.ok) {
        status.textContent = "Your question was sent to the moderator.";
        text.value = "";
        count.textContent = "0";
      } else {
        status.textContent = "Not sent: " + reason(data, response.statusText);
      }
    } catch (error) {
      status.textContent = "Not sent: the connection failed. Please try again.";
    } finally {
      button.disabled = false;
    }
  });
})();
