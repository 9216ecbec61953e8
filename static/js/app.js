// The dashboard's only script of its own, loaded from a file so the Content-Security-Policy
// can forbid inline script. htmx does the fetching and swapping; this file adds what htmx
// does not: pausing live refreshes in a hidden tab, keeping "3 min ago" current, and copying.
(function () {
  "use strict";

  // No refresh while the tab is hidden: the server is spared and nothing is missed, because
  // coming back triggers an immediate refresh (the "live:visible" trigger in the templates).
  document.addEventListener("htmx:confirm", function (event) {
    var elt = event.detail.elt;
    var cause = event.detail.triggeringEvent;
    if (document.hidden && elt && elt.hasAttribute("data-live") && !(cause && cause.type === "live:visible")) {
      event.preventDefault();
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && window.htmx) {
      window.htmx.trigger(document.body, "live:visible");
      refreshTimes();
    }
  });

  function span(seconds) {
    seconds = Math.floor(Math.abs(seconds));
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min";
    var hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    if (hours < 48) return (minutes && hours < 10) ? hours + " h " + minutes + " min" : hours + " h";
    return Math.floor(hours / 24) + " days";
  }

  // Same wording as the server's `ago`, `time_left` and `eta_left` filters (videos/templatetags).
  function refreshTimes() {
    var now = Date.now();
    document.querySelectorAll("time[data-relative]").forEach(function (el) {
      var when = Date.parse(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      var seconds = (now - when) / 1000;
      var kind = el.getAttribute("data-relative");
      if (kind === "left") {
        el.textContent = seconds < 0 ? "in " + span(seconds) : "expired";
      } else if (kind === "eta") {
        el.textContent = seconds < 0 ? "in " + span(seconds) : "any moment now";
      } else if (seconds < 5) {
        el.textContent = "just now";
      } else {
        el.textContent = seconds > 0 ? span(seconds) + " ago" : "in " + span(seconds);
      }
    });
  }
  setInterval(refreshTimes, 15000);

  // A provider without thumbnails answers 404: hide the broken image rather than show it,
  // at either size (img.thumb, and img.thumb-small in the rows). Error events do not
  // bubble, hence the capture phase; one that came before this deferred script ran has left
  // an image complete but empty.
  var THUMBNAILS = "img.thumb, img.thumb-small";
  document.addEventListener("error", function (event) {
    if (event.target && event.target.matches && event.target.matches(THUMBNAILS)) {
      event.target.hidden = true;
    }
  }, true);
  document.querySelectorAll(THUMBNAILS).forEach(function (img) {
    if (img.complete && img.naturalWidth === 0) img.hidden = true;
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text, done); });
    } else {
      fallbackCopy(text, done);
    }
  });

  function fallbackCopy(text, done) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { area.remove(); }
  }
})();
