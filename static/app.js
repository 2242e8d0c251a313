// cowlab's own script: keyboard stepping, the help dialog, marking the current timeline step and
// keeping it in view. Everything else is htmx and plain links; without this file the page still works.
(function () {
  "use strict";

  // Arrow keys for people, PageUp/PageDown for presentation clickers (they send those).
  var NAV_KEYS = {
    ArrowLeft: "prev", PageUp: "prev",
    ArrowRight: "next", PageDown: "next",
    Home: "home", End: "end"
  };

  function isTyping(el) {
    if (!el || !el.tagName) return false;
    var tag = el.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable;
  }

  function helpDialog() { return document.getElementById("help"); }

  function toggleHelp() {
    var dialog = helpDialog();
    if (!dialog) return;
    if (dialog.open) dialog.close(); else dialog.showModal();
  }

  // A step answer of a short scenario does not send the timeline again (it is all on the
  // page): mark the step the step bar now shows. The server marks it on every full render.
  function markCurrentStep() {
    var bar = document.querySelector("#stepbar [data-step]");
    var box = document.getElementById("timeline");
    if (!bar || !box) return;
    var step = bar.getAttribute("data-step");
    box.querySelectorAll("ol > li:not(.cut)").forEach(function (li) {
      var button = li.querySelector("button[name=step]");
      var current = !!button && button.value === step;
      li.classList.toggle("current", current);
      if (current) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    });
  }

  // The title names the step (browser tabs, history entries): a swapped-in step bar carries it.
  function retitle() {
    var bar = document.querySelector(".stepbar[data-title]");
    if (bar) document.title = bar.getAttribute("data-title");
  }

  function revealCurrentStep() {
    var box = document.getElementById("timeline");
    var current = box && box.querySelector("li.current");
    if (!current) return;
    var top = current.offsetTop;
    if (top < box.scrollTop || top + current.offsetHeight > box.scrollTop + box.clientHeight) {
      box.scrollTop = Math.max(0, top - box.clientHeight / 3);
    }
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.defaultPrevented) return;
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && ev.target.id === "scenario-text") {
      ev.preventDefault();
      ev.target.form.requestSubmit();
      return;
    }
    if (ev.altKey || ev.ctrlKey || ev.metaKey || isTyping(ev.target)) return;
    var dialog = helpDialog();
    if (ev.key === "?") {
      ev.preventDefault();
      toggleHelp();
      return;
    }
    if (dialog && dialog.open) return;
    var which = ev.key === "p" ? "present" : NAV_KEYS[ev.key];
    if (!which) return;
    var link = document.querySelector('a[data-nav="' + which + '"]');
    if (link) {
      ev.preventDefault();
      link.click();
    }
  });

  document.addEventListener("click", function (ev) {
    var opener = ev.target.closest && ev.target.closest(".help-open");
    if (opener) toggleHelp();
  });

  document.addEventListener("focusin", function (ev) {
    if (ev.target.classList && ev.target.classList.contains("share-link")) ev.target.select();
  });

  // A swap replaces the button or link that had the focus; a keyboard user would be thrown
  // back to the top of the page. Remember what had it and give it to its replacement.
  var focusSelector = null;

  document.addEventListener("htmx:before:request", function () {
    var el = document.activeElement;
    focusSelector = null;
    if (!el || el === document.body) return;
    if (el.matches("button[name=add], button[name=step]")) {
      focusSelector =
        'button[name="' + el.name + '"][value="' + CSS.escape(el.value) + '"]';
    } else if (el.dataset && el.dataset.nav) {
      focusSelector = 'a[data-nav="' + CSS.escape(el.dataset.nav) + '"]';
    }
  });

  document.addEventListener("htmx:after:settle", function () {
    markCurrentStep();
    retitle();
    revealCurrentStep();
    if (!focusSelector) return;
    var el = document.querySelector(focusSelector);
    focusSelector = null;
    if (!el) return;
    var details = el.closest("details");
    if (details) details.open = true;
    el.focus({ preventScroll: true });
  });
  document.addEventListener("DOMContentLoaded", revealCurrentStep);
})();
