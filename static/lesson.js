// Lessons (issue 12): digits answer a question, [ and ] change era keeping the step, and after
// an answer the result takes the focus so a keyboard or screen-reader user lands on it. Every
// one of these is a plain link on the page: without this file the lesson still works.
(function () {
  "use strict";

  function isTyping(el) {
    if (!el || !el.tagName) return false;
    var tag = el.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable;
  }

  var ERA_KEYS = { "[": "era-prev", "]": "era-next" };

  // In a live room that follows the teacher, the poll is the one question (live.js): the
  // lesson's own question yields, its digits and its predict-then-reveal stay off.
  function inLiveRoom() {
    return !!document.querySelector("#live-panel:not(.detached)");
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey || isTyping(ev.target)) return;
    var help = document.getElementById("help");
    if (help && help.open) return;
    var link = null;
    if (/^[1-9]$/.test(ev.key)) {
      if (inLiveRoom()) return;
      link = document.querySelector('#narration a[data-choice="' + ev.key + '"]');
    } else if (ERA_KEYS[ev.key]) {
      link = document.querySelector('a[data-nav="' + ERA_KEYS[ev.key] + '"]');
    }
    if (link) {
      ev.preventDefault();
      link.click();
    }
  });

  // Predict, then reveal: at a question nobody answered, the next-step keys (a presentation
  // clicker sends PageDown) show the answer first; the next press moves on. Captured on the
  // window so it runs before app.js's stepping, which leaves a handled key alone.
  window.addEventListener("keydown", function (ev) {
    if (ev.key !== "PageDown" && ev.key !== "ArrowRight") return;
    if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey || isTyping(ev.target)) return;
    var reveal = document.querySelector('#narration a[data-nav="reveal"]');
    if (!reveal || inLiveRoom()) return;
    ev.preventDefault();
    reveal.click();
  }, true);

  function focusResult() {
    var result = document.querySelector("#narration .q-result");
    if (result) result.focus({ preventScroll: true });
  }

  // An answer is a link of its own (a page load): the result is there when the page is.
  document.addEventListener("DOMContentLoaded", focusResult);
})();
