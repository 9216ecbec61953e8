// The dashboard's only script of its own, loaded from a file so the Content-Security-Policy
// can forbid inline script. htmx does the fetching and swapping; this file adds what htmx
// does not: slowing live refreshes in a hidden tab, keeping "3 min ago" current, copying, and
// the board's tab title and opt-in desktop notifications.
(function () {
  "use strict";

  // A hidden tab sends one refresh in HIDDEN_TICKS of the page's own timer, and only while a
  // task it shows is running: enough to flag the tab title and notify when a video finishes,
  // without a forgotten tab asking every few seconds (an idle board does not ask at all).
  // Nothing is missed: coming back triggers an immediate refresh (the "live:visible" trigger
  // in the templates).
  var HIDDEN_TICKS = 4;
  var lastAsked = Date.now();

  function isHidden() {
    return document.visibilityState === "hidden";
  }

  // The live element's own period ("every 3s"), so a test that speeds it up speeds this up.
  function tickMs(elt) {
    var match = /every\s+(\d+(?:\.\d+)?)(ms|s)\b/.exec(elt.getAttribute("hx-trigger") || "");
    return match ? parseFloat(match[1]) * (match[2] === "s" ? 1000 : 1) : 3000;
  }

  document.addEventListener("htmx:confirm", function (event) {
    var elt = event.detail.elt;
    var cause = event.detail.triggeringEvent;
    if (!isHidden() || !elt || !elt.hasAttribute("data-live") || (cause && cause.type === "live:visible")) return;
    // Timers drift late, never early; half a tick of slack keeps the fourth tick in.
    var due = Date.now() - lastAsked >= (HIDDEN_TICKS - 0.5) * tickMs(elt);
    if (!due || runningCount() === 0) event.preventDefault();
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.hasAttribute("data-live")) lastAsked = Date.now();
  });
  document.addEventListener("visibilitychange", function () {
    if (!isHidden() && window.htmx) {
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
      } else if (kind === "next") {
        // Same as the server's `next_check` filter.
        el.textContent = overdue(el) ? "overdue" : el.hasAttribute("data-under-way") ? "under way"
          : seconds < 0 ? "in " + span(seconds) : "due now";
      } else if (kind === "eta") {
        // Frozen while the task's next check is overdue: nobody is asking the provider.
        var check = el.closest("tr, #task-detail");
        check = check && check.querySelector("[data-overdue-at]");
        el.textContent = check && overdue(check) ? "unknown (next check overdue)"
          : seconds < 0 ? "in " + span(seconds) : "any moment now";
      } else if (seconds < 5) {
        el.textContent = "just now";
      } else {
        el.textContent = seconds > 0 ? span(seconds) + " ago" : "in " + span(seconds);
      }
    });
  }
  setInterval(refreshTimes, 15000);

  // A task whose next check is late (data-overdue-at, from the server's `overdue_at` filter)
  // says so from the first missed beat: a dead worker sends no news, so the page must notice.
  function overdue(el) {
    var when = Date.parse(el.getAttribute("data-overdue-at") || "");
    return !isNaN(when) && Date.now() > when;
  }
  function markOverdue() {
    var changed = false;
    document.querySelectorAll(".next-check[data-overdue-at]").forEach(function (el) {
      var late = overdue(el);
      if (el.hidden === late) { el.hidden = !late; changed = true; }
    });
    document.querySelectorAll("time[data-relative='next']").forEach(function (el) {
      if (overdue(el) && el.textContent !== "overdue") changed = true;
    });
    if (changed) refreshTimes();
  }
  setInterval(markOverdue, 2000);

  // The live refreshes (the board's #live, the task page's #task-detail, the worker banner):
  // when one fails, a small notice says so and the page asks again after 3 s, 6 s, 12 s ...
  // at most 60 s, instead of every tick; the first success clears it. A signed-out session
  // (401 with HX-Signed-Out, see videos.views.live_login_required) says so with a link.
  var RETRY_MAX = 60000;
  var retryDelay = 0;
  var retryTimer = null;
  var retrying = false;

  function isLive(elt) {
    return elt && (elt.hasAttribute("data-live") || elt.id === "worker-status");
  }

  function connectionNotice() {
    var notice = document.getElementById("connection-notice");
    if (!notice) {
      notice = document.createElement("div");
      notice.id = "connection-notice";
      notice.className = "connection-notice";
      notice.setAttribute("role", "status");
      document.body.appendChild(notice);
    }
    return notice;
  }

  function showLost(xhr) {
    var notice = connectionNotice();
    var login = xhr && xhr.getResponseHeader && xhr.getResponseHeader("HX-Signed-Out") && xhr.getResponseHeader("HX-Login");
    notice.textContent = "";
    if (login) {
      notice.className = "connection-notice signed-out";
      notice.appendChild(document.createTextNode("Signed out \u2014 "));
      var link = document.createElement("a");
      link.href = login;
      link.textContent = "sign in again";
      notice.appendChild(link);
      return; // asking again cannot help until the person signs in
    }
    notice.className = "connection-notice";
    notice.textContent = "Connection lost; retrying\u2026";
    scheduleRetry();
  }

  function scheduleRetry() {
    if (retryTimer) return;
    var live = document.querySelector("[data-live]");
    var base = Math.min(3000, live ? tickMs(live) : 3000);
    retryDelay = retryDelay ? Math.min(retryDelay * 2, RETRY_MAX) : base;
    retryTimer = setTimeout(function () {
      retryTimer = null;
      retrying = true;
      if (window.htmx) window.htmx.trigger(document.body, "live:visible");
      retrying = false;
    }, retryDelay);
  }

  // While failing, only the scheduled retries go out (the regular ticks would defeat the backoff).
  document.addEventListener("htmx:confirm", function (event) {
    if ((retryDelay || retryTimer) && isLive(event.detail.elt) && !retrying) event.preventDefault();
  });
  document.addEventListener("htmx:sendError", function (event) {
    if (isLive(event.detail.elt)) showLost(null);
  });
  document.addEventListener("htmx:responseError", function (event) {
    if (isLive(event.detail.elt)) showLost(event.detail.xhr);
  });
  // On beforeSwap, not afterRequest: a 200 swaps a new #live in out of band, and the events
  // htmx sends after that go to the old element, no longer in the document.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!isLive(event.detail.elt) || event.detail.isError) return;
    retryDelay = 0;
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    var notice = document.getElementById("connection-notice");
    if (notice) notice.remove();
  });

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

  // The board's tab title: "(2 running) Team · Video tasks", counted from the rows shown and
  // redrawn after every swap. A task that finishes or fails while the tab is hidden puts
  // "• " in front until the tab is seen again. Statuses come from data-status, not the
  // class: during a swap htmx keeps the old class on the new row until it settles.
  var RUNNING = { pending: true, processing: true };
  var FINAL = { completed: "Video finished", failed: "Video failed" };
  var baseTitle = document.title;
  var unseen = false;
  // Each row's status as this page last saw it, so only changes seen here count as news:
  // never a row already finished when the page loaded, nor one a redraw brings in.
  var known = statuses();

  // Each row's status cell: data-status, data-name and data-mine (videos/_task_row.html).
  function rows() {
    return document.querySelectorAll("#task-rows td[data-status]");
  }

  function statuses() {
    var seen = {};
    rows().forEach(function (cell) { seen[cell.parentNode.id] = cell.getAttribute("data-status"); });
    return seen;
  }

  function runningCount() {
    var running = 0;
    rows().forEach(function (cell) {
      if (RUNNING[cell.getAttribute("data-status")]) running++;
    });
    return running;
  }

  function showTitle() {
    if (!document.getElementById("task-rows")) return;
    var running = runningCount();
    document.title = (unseen ? "\u2022 " : "") + (running ? "(" + running + " running) " : "") + baseTitle;
  }

  function boardSwapped() {
    if (!document.getElementById("task-rows")) return;
    var now = {};
    rows().forEach(function (cell) {
      var id = cell.parentNode.id;
      var status = cell.getAttribute("data-status");
      var before = known[id];
      now[id] = status;
      if (before && RUNNING[before] && FINAL[status]) {
        announce(FINAL[status] + ": " + (cell.getAttribute("data-name") || ""));
        if (isHidden()) {
          unseen = true;
          notify(cell, status);
        }
      }
    });
    known = now;
    showTitle();
  }

  // A refresh swaps rows out of band one by one, then settles; checking after each is
  // cheap and sees every change exactly once (`known` moves on each time).
  // Said politely to screen readers, in the page's aria-live region (templates/base.html).
  function announce(text) {
    var region = document.getElementById("live-announcer");
    if (!region) return;
    // Emptied first, so the same words twice are still read twice.
    region.textContent = "";
    setTimeout(function () { region.textContent = text; }, 50);
  }

  // A row a refresh brought news for glows briefly (not under prefers-reduced-motion: see
  // app.css), so a change is seen without reading the whole table again.
  var HIGHLIGHT_MS = 2000;
  function highlight(event) {
    var target = event.detail && event.detail.target;
    var id = target && target.id;
    if (!id || !/^task-\d+$/.test(id)) return;
    // After htmx settles the new row: settling puts back the class the server sent.
    var settle = (window.htmx && window.htmx.config.defaultSettleDelay) || 20;
    setTimeout(function () {
      var row = document.getElementById(id);
      if (!row) return;
      row.classList.add("just-changed");
      clearTimeout(row._highlightTimer);
      row._highlightTimer = setTimeout(function () { row.classList.remove("just-changed"); }, HIGHLIGHT_MS);
    }, settle + 30);
  }
  document.addEventListener("htmx:oobAfterSwap", highlight);

  // The task page: its own task finishing while watched is announced the same way.
  var detailStatus = taskPageStatus();
  function taskPageStatus() {
    var detail = document.getElementById("task-detail");
    var match = detail && /\bstatus-(\w+)/.exec(detail.className);
    return match ? match[1] : "";
  }
  document.addEventListener("htmx:afterSettle", function () {
    var now = taskPageStatus();
    if (!now) return;
    if (RUNNING[detailStatus] && FINAL[now]) {
      var title = document.querySelector(".task-title");
      announce(FINAL[now] + ": " + (title ? title.textContent.trim() : ""));
    }
    detailStatus = now;
  });

  document.addEventListener("htmx:oobAfterSwap", boardSwapped);
  document.addEventListener("htmx:afterSettle", boardSwapped);
  document.addEventListener("visibilitychange", function () {
    if (!isHidden() && unseen) {
      unseen = false;
      showTitle();
    }
  });
  showTitle();

  // Desktop notifications, opt-in: the board's button asks the browser's permission when
  // clicked (never on load), and the choice is kept in this browser's localStorage. While
  // the tab is hidden, each of the person's own tasks (data-mine) that this page sees finish
  // or fail shows one notification.
  var NOTIFY_KEY = "videos.notify-finished";
  var DENIED = "Your browser blocks notifications from this site: allow them in its site settings, then try again.";
  var choiceInMemory = false; // where localStorage is unavailable (some private modes)
  var panel = document.getElementById("notify");
  var toggle = document.getElementById("notify-toggle");
  var toggleState = document.getElementById("notify-state");

  function chosen() {
    try {
      return window.localStorage.getItem(NOTIFY_KEY) === "on";
    } catch (error) {
      return choiceInMemory;
    }
  }

  function choose(on) {
    choiceInMemory = on;
    try {
      if (on) window.localStorage.setItem(NOTIFY_KEY, "on");
      else window.localStorage.removeItem(NOTIFY_KEY);
    } catch (error) { /* kept in memory for this page only */ }
  }

  function notifying() {
    return "Notification" in window && window.Notification.permission === "granted" && chosen();
  }

  function notify(cell, status) {
    if (!cell.hasAttribute("data-mine") || !notifying()) return;
    try {
      // The tag folds the same task's notice from two open tabs into one.
      new window.Notification(FINAL[status], { body: cell.getAttribute("data-name") || "", tag: cell.parentNode.id });
    } catch (error) { /* e.g. Chrome on Android allows notifications from service workers only */ }
  }

  function askPermission() {
    // Older Safari takes a callback and returns nothing; the others return a promise.
    return new Promise(function (resolve) {
      var answer = window.Notification.requestPermission(resolve);
      if (answer && answer.then) answer.then(resolve, function () { resolve("default"); });
    });
  }

  function showToggle(message) {
    var on = notifying();
    toggle.textContent = on ? "Stop notifying me" : "Notify me when my videos finish";
    toggleState.textContent = message || (on
      ? "On: this browser tells you when one of your videos finishes or fails while this tab is hidden."
      : "");
  }

  if (panel && toggle && toggleState && "Notification" in window) {
    panel.hidden = false;
    showToggle();
    toggle.addEventListener("click", function () {
      if (notifying()) {
        choose(false);
        showToggle("Off: this browser no longer notifies you.");
      } else if (window.Notification.permission === "denied") {
        showToggle(DENIED);
      } else {
        askPermission().then(function (answer) {
          if (answer === "granted") {
            choose(true);
            showToggle();
          } else {
            showToggle(answer === "denied" ? DENIED : "Not turned on: the browser's question was dismissed.");
          }
        });
      }
    });
    // Turned on or off in another tab.
    window.addEventListener("storage", function (event) {
      if (event.key === NOTIFY_KEY) showToggle();
    });
  }

  // Bulk selection. "Select every task on this page" needs JavaScript, so the HTML keeps it
  // hidden until here (without it, rows are ticked one by one and the form still works).
  // The live refresh redraws changed rows unticked: the ticks are read before a swap and
  // put back after it settles.
  var selectPage = document.getElementById("select-page");
  if (selectPage) {
    var rowBoxes = function () { return document.querySelectorAll('#task-rows input[name="pk"]'); };
    selectPage.hidden = false;
    selectPage.addEventListener("change", function () {
      rowBoxes().forEach(function (box) { box.checked = selectPage.checked; });
    });
    var ticked = {};
    document.body.addEventListener("htmx:beforeSwap", function () {
      ticked = {};
      rowBoxes().forEach(function (box) { if (box.checked) ticked[box.value] = true; });
    });
    document.body.addEventListener("htmx:afterSettle", function () {
      rowBoxes().forEach(function (box) { if (ticked[box.value]) box.checked = true; });
    });
  }
})();
