// Rewrites every <time data-local datetime="…Z"> into the reader's own zone,
// with the zone's short name, so an investor abroad need not convert. The
// server's text (the time in UTC) stays when scripts are off.
(function () {
  "use strict";
  var format;
  try {
    format = new Intl.DateTimeFormat(undefined, {
      weekday: "long",
      year: "numeric",
      month: "long",
      day: "numeric",
      hour: "numeric",
      minute: "2-digit",
      timeZoneName: "short",
    });
  } catch (e) {
    return;
  }
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  var elements = document.querySelectorAll("time[data-local]");
  for (var i = 0; i < elements.length; i++) {
    var el = elements[i];
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) continue;
    el.textContent = format.format(when);
    if (zone) el.title = zone;
    el.setAttribute("data-localized", "");
  }
})();
