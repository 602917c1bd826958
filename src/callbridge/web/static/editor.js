// The event editor, enhanced: rows added and removed in place, and the start shown in its
// zone and in UTC as it is typed ("Thu 5 Nov 2026, 4:30 pm EST = 21:30 UTC"). Without this
// script the page still works: one blank row per group, the preview as the server wrote it.
(function () {
  "use strict";
  var form = document.querySelector("form.editor");
  if (!form) return;

  // --- rows -------------------------------------------------------------------------------
  function renumber(group) {
    var rows = group.querySelectorAll(".row-list > [data-row]");
    rows.forEach(function (row, i) {
      var n = row.querySelector(".row-number");
      if (n) n.textContent = String(i + 1);
    });
    var add = group.querySelector("[data-add]");
    var limit = parseInt(group.getAttribute("data-limit"), 10) || 20;
    if (add) add.hidden = rows.length >= limit;
  }

  function nextIndex(group) {
    var most = -1;
    group.querySelectorAll(".row-list input[name]").forEach(function (input) {
      var parts = input.name.split(".");
      var n = parseInt(parts[parts.length - 2], 10);
      if (n > most) most = n;
    });
    return most + 1;
  }

  document.querySelectorAll("fieldset[data-rows]").forEach(function (group) {
    group.querySelectorAll("[data-remove]").forEach(function (b) { b.hidden = false; });
    renumber(group);
  });

  form.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target.closest("button") : null;
    if (!target) return;
    var group = target.closest("fieldset[data-rows]");
    if (!group) return;
    if (target.hasAttribute("data-add")) {
      var template = group.querySelector("template[data-template]");
      var index = String(nextIndex(group));
      var html = template.innerHTML.split("__i__").join(index);
      var holder = document.createElement("ol");
      holder.innerHTML = html;
      var row = holder.firstElementChild;
      group.querySelector(".row-list").appendChild(row);
      renumber(group);
      var first = row.querySelector("input");
      if (first) first.focus();
    } else if (target.hasAttribute("data-remove")) {
      var gone = target.closest("[data-row]");
      var after = gone.nextElementSibling || gone.previousElementSibling;
      gone.remove();
      renumber(group);
      var focus = after ? after.querySelector("input") : group.querySelector("[data-add]");
      if (focus) focus.focus();
    }
  });

  // --- the start in its zone and in UTC ---------------------------------------------------
  var day = form.querySelector("[name='event.start_date']");
  var clock = form.querySelector("[name='event.start_time']");
  var zone = form.querySelector("[name='event.timezone']");
  var preview = form.querySelector("[data-preview]");
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

  function wallIn(ms, tz) {
    // The wall clock in tz at the instant ms, as if it were UTC (ms since the epoch).
    var parts = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit"
    }).formatToParts(new Date(ms)).forEach(function (p) { parts[p.type] = p.value; });
    return Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24, +parts.minute);
  }

  function zoneName(ms, tz) {
    var name = "";
    new Intl.DateTimeFormat("en-US", { timeZone: tz, timeZoneName: "short" })
      .formatToParts(new Date(ms)).forEach(function (p) { if (p.type === "timeZoneName") name = p.value; });
    return name;
  }

  function show() {
    var d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day.value);
    var t = /^(\d{2}):(\d{2})/.exec(clock.value);
    if (!d || !t || !zone.value) { preview.textContent = ""; return; }
    var wall = Date.UTC(+d[1], +d[2] - 1, +d[3], +t[1], +t[2]);
    var instant = wall;
    try {
      for (var i = 0; i < 3; i++) instant += wall - wallIn(instant, zone.value);
      if (wallIn(instant, zone.value) !== wall) {
        preview.textContent = t[1] + ":" + t[2] + " does not exist in " + zone.value +
          " that day (the clocks skip it)";
        return;
      }
    } catch (e) { preview.textContent = ""; return; }
    var w = new Date(wall);
    var h = w.getUTCHours() % 12 || 12;
    var said = DAYS[w.getUTCDay()] + " " + w.getUTCDate() + " " + MONTHS[w.getUTCMonth()] + " " +
      w.getUTCFullYear() + ", " + h + ":" + t[2] + " " + (w.getUTCHours() < 12 ? "am" : "pm") +
      " " + zoneName(instant, zone.value);
    var u = new Date(instant);
    var hhmm = ("0" + u.getUTCHours()).slice(-2) + ":" + ("0" + u.getUTCMinutes()).slice(-2);
    var sameDay = u.getUTCDate() === w.getUTCDate();
    preview.textContent = said + " = " + (sameDay ? "" : DAYS[u.getUTCDay()] + " " + u.getUTCDate() +
      " " + MONTHS[u.getUTCMonth()] + ", ") + hhmm + " UTC";
  }
  if (day && clock && zone && preview) {
    ["input", "change"].forEach(function (kind) {
      day.addEventListener(kind, show); clock.addEventListener(kind, show); zone.addEventListener(kind, show);
    });
    show();
  }

  // --- the accent colour as a swatch beside its field --------------------------------------
  // Set through the CSSOM (element.style), which the page's CSP allows; a style attribute it refuses.
  var accent = form.querySelector("[name='company.accent']");
  if (accent) {
    var swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.setAttribute("aria-hidden", "true");
    accent.insertAdjacentElement("afterend", swatch);
    var paint = function () {
      var value = accent.value.trim();
      var ok = /^#[0-9a-fA-F]{6}$/.test(value);
      swatch.style.backgroundColor = ok ? value : (value ? "transparent" : accent.placeholder);
      swatch.classList.toggle("empty", !ok && !!value);
    };
    accent.addEventListener("input", paint);
    paint();
  }

  // --- the first problem in view ------------------------------------------------------------
  var summary = document.getElementById("errors") || document.getElementById("conflict");
  if (summary) {
    summary.setAttribute("tabindex", "-1");
    summary.focus();
  }
})();
