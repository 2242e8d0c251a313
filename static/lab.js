// The policy lab (/lab): a knob change swaps the whole lab region, controls included. Give the
// focus back to the control that had it (a keyboard user stays on the knob they changed), and
// keep the tab title naming the design shown.
(function () {
  "use strict";
  var focusedId = null;

  document.addEventListener("htmx:before:request", function () {
    var el = document.activeElement;
    focusedId = el && el.closest && el.closest("#lab-form") && el.id ? el.id : null;
  });

  document.addEventListener("htmx:after:settle", function () {
    var lab = document.getElementById("lab");
    var title = lab && lab.querySelector("[data-title]");
    if (title) document.title = title.getAttribute("data-title");
    if (!focusedId) return;
    var el = document.getElementById(focusedId);
    focusedId = null;
    if (el) el.focus({ preventScroll: true });
  });
})();

// The sweep page while the sweep runs: reload every 2 s until its figures are there (a script,
// not <meta http-equiv=refresh>, which takes control of the page away from its reader — WCAG
// 2.2.1; without scripts the page offers a Reload link).
(function () {
  "use strict";
  if (document.querySelector("[data-sweep-running]")) {
    setTimeout(function () { window.location.reload(); }, 2000);
  }
})();
