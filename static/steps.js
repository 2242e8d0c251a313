// The step deck (issue 23): a step shown in the key press's own frame, with no round trip.
//
// The server sends the steps around the one on screen as <template>s (`/steps?<link>`, see
// app/views/deck.py), each holding exactly what a step request would have answered and the
// link it shows. A press of a step link, a timeline button, a verdict's step, the player or
// Back/Forward whose step is in the deck swaps that markup in at once and pushes its link;
// anything else goes to the server as before (htmx). The downloaded file (/export.html) holds
// every step in #step-deck and steps with no server at all; its address is `#step=K`.
(function () {
  "use strict";

  var MARGIN = 6;  // fetch the deck around the step again this close to its edge
  var deck = new Map();  // link → {step, target, template}
  var byStep = new Map();  // step → link of the step as a step link shows it
  var span = null;  // {lo, hi, moreBefore, moreAfter} of the deck held
  var fetching = null;
  var offline = false;

  // ROT47 (app.views.deck.seal): the offline file's lesson answers are no markup until used.
  function unseal(text) {
    var out = new Array(text.length);
    for (var i = 0; i < text.length; i++) {
      var c = text.charCodeAt(i);
      out[i] = c >= 33 && c <= 126 ? String.fromCharCode(33 + ((c + 14) % 94)) : text[i];
    }
    return out.join("");
  }

  function hold(root) {
    deck = new Map();
    byStep = new Map();
    root.querySelectorAll("template[data-push]").forEach(function (t) {
      var entry = { step: Number(t.dataset.step), target: t.dataset.target, template: t,
                    hash: t.dataset.hash || "" };
      deck.set(t.dataset.push, entry);
      if (t.hasAttribute("data-plain")) byStep.set(entry.step, t.dataset.push);
    });
    var box = root.querySelector(".step-deck");
    span = box && {
      lo: Number(box.dataset.lo), hi: Number(box.dataset.hi),
      moreBefore: box.hasAttribute("data-more-before"),
      moreAfter: box.hasAttribute("data-more-after")
    };
  }

  function contentOf(entry) {
    var t = entry.template;
    if (t.hasAttribute("data-sealed")) {
      var opened = document.createElement("template");
      opened.innerHTML = unseal(t.getAttribute("data-sealed"));
      return opened.content;
    }
    return t.content;
  }

  function address(link, entry) {
    return offline ? "#" + entry.hash : link;
  }

  // Swap step `link` in, as htmx would swap the server's answer: the body into its region,
  // each <hx-partial> into the element it names. `how`: "push", "replace" or "none".
  function show(link, how) {
    var entry = deck.get(link);
    var target = entry && document.getElementById(entry.target);
    if (!target) return false;
    document.dispatchEvent(new CustomEvent("cowlab:before-step"));
    var content = contentOf(entry).cloneNode(true);
    var regions = [target];
    var partials = Array.prototype.slice.call(content.querySelectorAll("hx-partial"));
    partials.forEach(function (p) { p.remove(); });
    target.replaceChildren(content);
    partials.forEach(function (p) {
      var region = document.querySelector(p.getAttribute("hx-target"));
      if (!region) return;
      region.replaceChildren.apply(region, Array.prototype.slice.call(p.childNodes));
      regions.push(region);
    });
    if (window.htmx) regions.forEach(function (el) { htmx.process(el); });
    var state = { cowlab: link };
    if (how === "push") history.pushState(state, "", address(link, entry));
    else if (how === "replace") history.replaceState(state, "", address(link, entry));
    document.dispatchEvent(new CustomEvent("cowlab:stepped", { detail: { step: entry.step } }));
    ensureDeck();
    return true;
  }

  function showStep(step) {
    if (inRoom()) return false;
    var link = byStep.get(Number(step));
    return !!link && show(link, "push");
  }

  // A live room (live.js) follows the teacher: its steps are the room's, reported to it and
  // never pushed to the address bar, which stays the room's. The deck stays out of it.
  function inRoom() {
    return !!document.getElementById("live-panel");
  }

  function togglePresent(link) {
    var on = document.body.classList.toggle("present");
    link.textContent = on ? "Exit presentation" : "Present";
  }

  // Captured on the window: it runs before htmx sees the click, and leaves alone any press
  // it cannot answer from the deck.
  window.addEventListener("click", function (ev) {
    if (ev.defaultPrevented || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey ||
        ev.altKey || !ev.target.closest || inRoom()) return;
    var el = ev.target.closest("a[href], #timeline button[name=step]");
    if (!el) return;
    if (offline && el.matches('[data-nav="present"]')) {
      ev.preventDefault();
      togglePresent(el);
      return;
    }
    var link = el.tagName === "A" ? el.getAttribute("href") : byStep.get(Number(el.value));
    if (!link || !deck.has(link)) return;
    ev.preventDefault();
    ev.stopPropagation();
    show(link, "push");
  }, true);

  window.addEventListener("popstate", function (ev) {
    var link = ev.state && ev.state.cowlab;
    if (link === undefined || link === null) return;  // htmx's own entries are htmx's
    if (show(link, "none")) return;
    if (!offline) location.reload();  // a step the deck no longer holds: ask the server
  });

  function currentBar() {
    return document.querySelector("#stepbar .stepbar[data-step]");
  }

  // Online: hold the steps around the one on screen; fetch again near the deck's edge.
  function ensureDeck() {
    if (offline || fetching || !window.fetch || inRoom()) return;
    var bar = currentBar();
    var share = bar && bar.getAttribute("data-share");
    if (!share || share.indexOf("?") < 0) return;
    var step = Number(bar.getAttribute("data-step"));
    if (span && deck.has(share) &&
        (!span.moreBefore || step - MARGIN > span.lo) &&
        (!span.moreAfter || step + MARGIN < span.hi)) return;
    var asked = share;
    fetching = fetch("/steps" + share.slice(share.indexOf("?")), {
      headers: { Accept: "text/html" }, credentials: "same-origin"
    }).then(function (r) {
      if (!r.ok) throw new Error("steps " + r.status);
      return r.text();
    }).then(function (html) {
      var box = document.createElement("div");
      box.innerHTML = html;
      hold(box);
      var bar = currentBar();
      // Keep what Back returns to: this entry is the step the deck was asked for.
      if (bar && bar.getAttribute("data-share") === asked && !history.state) {
        history.replaceState({ cowlab: asked }, "", location.href);
      }
    }).catch(function () { span = null; }).then(function () {
      fetching = null;
      var bar = currentBar();
      if (bar && bar.getAttribute("data-share") !== asked) ensureDeck();
    });
  }

  document.addEventListener("htmx:after:settle", function () { setTimeout(ensureDeck, 0); });

  document.addEventListener("DOMContentLoaded", function () {
    var held = document.getElementById("step-deck");
    if (held && held.hasAttribute("data-offline")) {
      offline = true;
      hold(held);
      var m = /^#(step=\d+(?:&answer=.*)?)$/.exec(location.hash);
      var start = null;
      if (m) deck.forEach(function (entry, link) { if (entry.hash === m[1]) start = link; });
      var bar = currentBar();
      if (start === null && bar) start = byStep.get(Number(bar.getAttribute("data-step")));
      if (start !== null) {
        if (m) show(start, "replace");
        else history.replaceState({ cowlab: start }, "", address(start, deck.get(start)));
      }
      return;
    }
    ensureDeck();
  });

  window.cowlabDeck = { showStep: showStep };
})();
