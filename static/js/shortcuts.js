// Keyboard shortcuts for the board and the task page: "/" search, "j"/"k" move between
// tasks, Enter opens the highlighted one, "r" refreshes, "?" lists them. A separate file
// from app.js so the live refresh's script stays as it is; loaded with defer, no inline
// script (the Content-Security-Policy forbids it).
(function () {
  "use strict";

  var current = null; // the highlighted row's id; rows are swapped by the live refresh

  function typing(target) {
    if (!target || !target.closest) return false;
    // Typing a "j" into a search box or a prompt must stay a "j".
    return Boolean(target.closest("input, textarea, select, [contenteditable]:not([contenteditable=false])"));
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#task-rows tr.task"));
  }

  function highlight(row) {
    document.querySelectorAll("tr.row-focus").forEach(function (el) {
      el.classList.remove("row-focus");
    });
    if (!row) return;
    current = row.id;
    row.classList.add("row-focus");
    // Focus goes to the row's own link, so a screen reader says which task it is and the
    // browser's own Enter opens it.
    var link = row.querySelector(".task-name a[href]");
    (link || row).focus();
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var index = all.findIndex(function (row) {
      return row.id === current;
    });
    var next = index < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(Math.max(index + step, 0), all.length - 1);
    highlight(all[next]);
  }

  function open() {
    var row = current && document.getElementById(current);
    var link = row && row.querySelector(".task-name a[href]");
    if (link) window.location.assign(link.href);
    return Boolean(link);
  }

  function refresh() {
    // The highlighted row's own Refresh button when it has one, else the task page's, else
    // the page's live refresh (the same event coming back to the tab sends).
    var row = current && document.getElementById(current);
    var button = (row && row.querySelector("[data-shortcut=refresh]")) || document.querySelector("#task-detail [data-shortcut=refresh]");
    if (button) {
      button.click();
    } else if (window.htmx) {
      window.htmx.trigger(document.body, "live:visible");
    }
  }

  function showHelp() {
    var dialog = document.getElementById("shortcuts-dialog");
    if (dialog && !dialog.open && dialog.showModal) dialog.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    var dialog = document.getElementById("shortcuts-dialog");
    if (dialog && dialog.open) return;
    switch (event.key) {
      case "/":
        var search = document.getElementById("filter-q");
        if (!search) return;
        event.preventDefault(); // else the "/" lands in the box
        search.focus();
        search.select();
        break;
      case "?":
        event.preventDefault();
        showHelp();
        break;
      case "j":
        event.preventDefault();
        move(1);
        break;
      case "k":
        event.preventDefault();
        move(-1);
        break;
      case "Enter":
        // Only for the highlighted row when focus is not on something Enter already works on.
        if (event.target.closest && event.target.closest("a, button, summary")) return;
        if (open()) event.preventDefault();
        break;
      case "r":
        event.preventDefault();
        refresh();
        break;
    }
  });

  // A live refresh replaces rows: put the highlight back on the new copy of the same row.
  document.addEventListener("htmx:afterSettle", function () {
    if (!current) return;
    var row = document.getElementById(current);
    if (row && !row.classList.contains("row-focus")) {
      var hadFocus = document.activeElement === document.body;
      row.classList.add("row-focus");
      if (hadFocus) {
        var link = row.querySelector(".task-name a[href]");
        if (link) link.focus({ preventScroll: true });
      }
    }
  });

  // Phones: the board's forms start folded so the tasks show on the first screen. The
  // markup has them open, so without this script nothing is hidden.
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.matchMedia || !window.matchMedia("(max-width: 720px)").matches) return;
    document.querySelectorAll("details[data-fold-narrow]").forEach(function (details) {
      if (!details.querySelector("[role=alert], .form-errors")) details.open = false;
    });
  });
})();
