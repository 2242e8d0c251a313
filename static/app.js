// cowlab's own script: keyboard stepping and era switching, the help dialog, marking the current
// timeline step and keeping it in view, keeping the links outside a swapped step naming that
// step, the focus and the player (slider, autoplay). The steps around the current one are held
// by steps.js; everything else is htmx and plain links; without this file the page still works.
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


  // A step swap replaces only the stage, the step bar and the narration; the links outside
  // them (Present, the eras, Compare, the share box) were rendered for the step of the last
  // full page. The step bar names the step shown and its share link: bring them up to date.
  var STEP_RE = /([?&]step=)\d+/;

  function withStep(link, step) {
    if (STEP_RE.test(link)) return link.replace(STEP_RE, "$1" + step);
    return link + (link.indexOf("?") < 0 ? "?" : "&") + "step=" + step;
  }

  function toggledView(link) {
    if (/&view=present/.test(link)) return link.replace(/&view=present/, "");
    return link + "&view=present";
  }

  function followStep() {
    var bar = document.querySelector("#stepbar .stepbar[data-step], #cmp-stage .stepbar[data-step]");
    if (!bar) return;
    var step = bar.getAttribute("data-step");
    var share = bar.getAttribute("data-share");
    document.querySelectorAll('[data-follow="step"]').forEach(function (el) {
      if (el.tagName.toLowerCase() === "input") el.value = withStep(el.value, step);
      else el.setAttribute("href", withStep(el.getAttribute("href"), step));
    });
    if (!share) return;
    document.querySelectorAll('[data-follow="view"]').forEach(function (el) {
      el.setAttribute("href", toggledView(share));
    });
  }

  // `[` / `]`: the previous / next era at the same step (the era links follow the step).
  function switchEra(delta) {
    var eras = Array.prototype.slice.call(document.querySelectorAll("a.pol[data-era]"));
    if (!eras.length) return false;
    var at = eras.findIndex(function (a) { return a.classList.contains("current"); });
    var next = eras[at + delta];
    if (!next) return false;
    next.click();
    return true;
  }

  // The link that had the focus may be gone after the swap (▶ at the last step is no longer
  // a link): the focus goes to its nearest live neighbour, never back to the body.
  var FALLBACK = { next: ["prev", "home"], end: ["prev", "home"], prev: ["next", "end"], home: ["next", "end"] };

  function focusFallback(selector) {
    var m = /data-nav="(\w+)"/.exec(selector);
    var options = m ? FALLBACK[m[1]] || [] : [];
    for (var i = 0; i < options.length; i++) {
      var el = document.querySelector('a[data-nav="' + options[i] + '"]');
      if (el) return el;
    }
    return document.querySelector("#stepbar .counter, .stepbar .counter");
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
    if (ev.key === "[" || ev.key === "]") {
      var delta = ev.key === "]" ? 1 : -1;
      if (!document.querySelector("a.pol[data-era]")) return;
      ev.preventDefault();
      // The era links name the step once the step in flight is on screen.
      if (inFlight) queued = function () { switchEra(delta); };
      else switchEra(delta);
      return;
    }
    var which = ev.key === "p" ? "present" : NAV_KEYS[ev.key];
    if (!which) return;
    ev.preventDefault();
    if (inFlight) {
      // The step bar on screen is about to be replaced: its ▶ still points at the step being
      // fetched. Press the key again once the new step is in place.
      queued = function () { pressNav(which); };
      return;
    }
    pressNav(which);
  });

  function pressNav(which) {
    var link = document.querySelector('a[data-nav="' + which + '"]');
    if (link) link.click();
  }

  // A step request between its start and its swap (the address bar may already name the new
  // step while the old step bar is still on screen).
  var inFlight = false;
  var inFlightTimer = null;
  var queued = null;

  document.addEventListener("htmx:before:request", function () {
    inFlight = true;
    clearTimeout(inFlightTimer);
    // Never wedge the keyboard if a request ends without settling (an error, an abort).
    inFlightTimer = setTimeout(function () { inFlight = false; queued = null; }, 3000);
  });

  document.addEventListener("htmx:error", function () { inFlight = false; queued = null; });

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

  // A step from the page's own deck (steps.js) is swapped in at once, with no request.
  document.addEventListener("cowlab:before-step", rememberFocus);
  document.addEventListener("cowlab:stepped", function () {
    clearTimeout(settleTimer);
    afterAnswer();
  });

  document.addEventListener("htmx:before:request", rememberFocus);

  function rememberFocus() {
    var el = document.activeElement;
    focusSelector = null;
    if (!el || el === document.body) return;
    if (el.matches("a.pol[data-era]")) {
      focusSelector = 'a.pol[data-era="' + CSS.escape(el.dataset.era) + '"]';
    } else if (el.matches("button[name=add], button[name=step]")) {
      focusSelector =
        'button[name="' + el.name + '"][value="' + CSS.escape(el.value) + '"]';
    } else if (el.matches("a[data-backing]")) {
      focusSelector = 'a[data-backing="' + CSS.escape(el.dataset.backing) + '"]';
    } else if (el.dataset && el.dataset.nav) {
      focusSelector = 'a[data-nav="' + CSS.escape(el.dataset.nav) + '"]';
    }
  }

  // One answer settles region by region (the stage before the step bar and the narration
  // that come with it): the page is brought up to date once, after the last of them.
  var settleTimer = null;

  document.addEventListener("htmx:after:settle", function () {
    if (settleTimer === null) settleTimer = setTimeout(afterAnswer, 0);
  });

  function afterAnswer() {
    settleTimer = null;
    inFlight = false;
    clearTimeout(inFlightTimer);
    markCurrentStep();
    retitle();
    revealCurrentStep();
    followStep();
    syncPlayer();
    restoreFocus();
    var then = queued;
    queued = null;
    if (then) then();
  }

  function restoreFocus() {
    if (!focusSelector) return;
    var el = document.querySelector(focusSelector);
    if (!el) el = focusFallback(focusSelector);
    focusSelector = null;
    if (!el) return;
    var details = el.closest("details");
    if (details) details.open = true;
    el.focus({ preventScroll: true });
  }

  // The player: a slider over the timeline and autoplay at a chosen speed (as Python Tutor
  // and VisuAlgo have). Without JavaScript it stays hidden; the step bar does the same work.
  var playTimer = null;

  function stepBar() {
    return document.querySelector("#stepbar .stepbar[data-step]");
  }

  function goToStep(step) {
    var bar = stepBar();
    var share = bar && bar.getAttribute("data-share");
    if (!share || String(step) === bar.getAttribute("data-step")) return;
    if (window.cowlabDeck && window.cowlabDeck.showStep(step)) return;
    if (window.htmx) htmx.ajax("GET", withStep(share, step), { target: "#stage", swap: "innerHTML show:none" });
  }

  function setPlaying(on) {
    var button = document.querySelector("#player .play");
    if (playTimer) clearTimeout(playTimer);
    playTimer = null;
    if (!button) return;
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.textContent = on ? "❚❚ Pause" : "▶ Play";
    if (on) scheduleNext();
  }

  function scheduleNext() {
    var speed = document.getElementById("speed");
    playTimer = setTimeout(function () {
      var next = document.querySelector('#stepbar a[data-nav="next"]');
      if (next) next.click(); else setPlaying(false);
    }, speed ? Number(speed.value) : 1500);
  }

  function syncPlayer() {
    var bar = stepBar();
    var scrub = document.getElementById("scrub");
    if (!bar || !scrub) return;
    var player = document.getElementById("player");
    // Nothing to scrub or play before the first command.
    if (player) player.hidden = bar.getAttribute("data-last") === "0";
    scrub.max = bar.getAttribute("data-last");
    scrub.value = bar.getAttribute("data-step");
    scrub.setAttribute("aria-valuetext", "step " + scrub.value + " of " + scrub.max);
    var play = document.querySelector("#player .play");
    if (!play || play.getAttribute("aria-pressed") !== "true") return;
    if (bar.getAttribute("data-step") === bar.getAttribute("data-last")) setPlaying(false);
    else setPlaying(true);  // the next step after the chosen delay
  }

  document.addEventListener("change", function (ev) {
    if (ev.target.id === "scrub") goToStep(ev.target.value);
  });

  document.addEventListener("click", function (ev) {
    var play = ev.target.closest && ev.target.closest("#player .play");
    if (!play) return;
    var on = play.getAttribute("aria-pressed") !== "true";
    var bar = stepBar();
    if (on && bar && bar.getAttribute("data-step") === bar.getAttribute("data-last")) {
      // Playing from the end starts again from the first step.
      var first = document.querySelector('#stepbar a[data-nav="home"]');
      if (first) first.click();
    }
    setPlaying(on);
  });


  document.addEventListener("DOMContentLoaded", function () {
    revealCurrentStep();
    syncPlayer();
  });
})();
