// Live sessions (app/live): "Go live" on every page; on a room's page, the event stream, the
// followed view, the poll. The view is the simulator's (or comparison's) own page, fetched and
// shown inside the room's page: its buttons work as everywhere, and this script only decides
// where their links go (the teacher's go to the room, a student's detach the student).
(function () {
  "use strict";

  // The form was drawn with the page's link; htmx has moved the address bar since.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.classList && form.classList.contains("golive")) {
      form.elements.link.value = location.pathname + location.search;
    }
  });

  var panel = document.getElementById("live-panel");
  if (!panel) return;
  var code = panel.dataset.code;
  var role = panel.dataset.role;
  var view = document.getElementById("live-view");
  var following = role === "student";
  var shown = null; // the link the view shows
  var latest = null; // the newest state
  var pollId = null;
  var myChoice = null;
  var loads = 0;
  var revealedShown = null; // the poll whose answered view the teacher's page has loaded
  var closesAt = null; // when the poll's countdown ends (this browser's clock)
  var ticker = null;
  var said = "";
  var saidStep = "";

  function $(id) { return document.getElementById(id); }

  // The room's one live region (#live-say): the step, the poll and its answer. Emptied first
  // so the same sentence twice is said twice.
  function announce(text) {
    var region = $("live-say");
    if (!region || !text || text === said) return;
    said = text;
    region.textContent = "";
    setTimeout(function () { region.textContent = text; }, 60);
  }

  function say(message) {
    var box = $("live-error");
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
  }

  function setText(id, text) {
    var el = $(id);
    if (el) el.textContent = text;
  }

  // The view's page, fetched whole; its <main> goes into the room's view and htmx wires it.
  function loadView(link) {
    shown = link;
    var ticket = ++loads;
    return fetch(link, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        if (ticket !== loads) return; // a newer link is on its way
        var doc = new DOMParser().parseFromString(html, "text/html");
        var main = doc.querySelector("main");
        if (!main) return;
        var nodes = Array.prototype.map.call(main.childNodes, function (node) {
          return document.importNode(node, true);
        });
        view.replaceChildren.apply(view, nodes);
        view.dataset.link = link;
        if (window.htmx) window.htmx.process(view);
        viewChanged();
      })
      .catch(function () { say("Could not load the view; it comes back with the next step."); });
  }

  // The view inside the room is a page of its own; in the room it is one region among others.
  function viewChanged() {
    var narration = view.querySelector("#narration");
    if (narration) {
      // One live region in the room (#live-say): the view's narration is read, not announced.
      narration.removeAttribute("aria-live");
      narration.removeAttribute("role");
    }
    var bar = view.querySelector(".stepbar[data-step]");
    var command = view.querySelector(".stepbar .command");
    var step = bar && ("Step " + bar.getAttribute("data-step") + " of " +
      bar.getAttribute("data-last") + (command ? ": " + command.textContent.trim() : ""));
    // The same step again (answered after a reveal) is not news: the answer is.
    if (step && step !== saidStep) {
      saidStep = step;
      announce(step);
    }
    scrollToChange();
  }

  // On a phone the picture keeps a readable size and scrolls sideways inside its box: it
  // starts at what this step changed, and says that it scrolls.
  function scrollToChange() {
    var picture = view.querySelector("figure.picture");
    if (!picture || picture.scrollWidth <= picture.clientWidth + 4) return;
    if (!picture.querySelector(".live-scrolls")) {
      var hint = document.createElement("p");
      hint.className = "live-scrolls";
      hint.textContent = "The picture scrolls sideways: swipe it to see the rest ⇆";
      picture.insertBefore(hint, picture.firstChild);
    }
    // The decisive thing first: a reference at risk, the frame the kernel decided on, a frame
    // that changed, then anything that changed.
    var changed = picture.querySelector("svg g.at-risk") ||
      picture.querySelector('svg g.frame[class*="decided-"]') ||
      picture.querySelector("svg g.frame.changed") ||
      picture.querySelector("svg g.changed:not(.gone)");
    if (!changed) return;
    var box = picture.getBoundingClientRect();
    var mark = changed.getBoundingClientRect();
    picture.scrollLeft += mark.left - box.left - Math.max(0, (box.width - mark.width) / 2);
  }

  // The teacher's own steps inside the view are htmx swaps: announced like the students' ones.
  var settling = null;
  if (view) {
    document.addEventListener("htmx:after:settle", function (ev) {
      if (!view.contains(ev.target) || settling) return;
      settling = setTimeout(function () { settling = null; viewChanged(); }, 0);
    });
  }

  // The teacher's changes go to the room one at a time, the newest last.
  var pending = null;
  var sending = false;

  // Whether the last refusal will pass (the store restarting: 503 with a retry; a worker
  // gone: 502/504; no answer at all), as opposed to a refusal that will not change.
  var transient = false;

  function post(what, body) {
    transient = false;
    return fetch("/api/v1/live/" + code + "/" + what, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body || {})
    }).then(function (response) {
      transient = response.status >= 502 && response.status <= 504;
      return response.json().then(function (data) {
        if (!response.ok) {
          say((data.detail && data.detail.message) || "The server refused.");
          return null;
        }
        say("");
        return data;
      });
    }).catch(function () {
      transient = true;
      say("The server cannot be reached; retrying when the stream comes back.");
      return null;
    });
  }

  // The teacher's steps are not lost to a fault: one the server could not take now (Redis
  // restarting, a worker gone) goes again until it is taken, unless a newer one replaces it.
  var retryReport = null;

  function report(link) {
    pending = link;
    if (sending) return;
    sending = true;
    clearTimeout(retryReport);
    var next = pending;
    pending = null;
    post("state", { link: next }).then(function (state) {
      sending = false;
      if (state) onState(state);
      else if (transient && pending === null) {
        retryReport = setTimeout(function () { report(next); }, 1500);
        return;
      }
      if (pending !== null) report(pending);
    });
  }

  function detach() {
    following = false;
    panel.classList.add("detached");
    setText("live-mode", "Exploring on my own");
    announce("You are exploring on your own; Back to the teacher follows the class again.");
    $("live-detach").hidden = true;
    $("live-rejoin").hidden = false;
  }

  function rejoin() {
    following = true;
    panel.classList.remove("detached");
    setText("live-mode", "Following the teacher");
    $("live-detach").hidden = false;
    $("live-rejoin").hidden = true;
    if (latest) loadView(wantedLink(latest));
  }

  // A link followed inside the view: the room's page keeps the address bar (it is the room).
  function navigated(link) {
    shown = link;
    if (role === "teacher") report(link);
    else if (following) detach();
  }

  // The projector's join screen has no view: only the count follows there.
  if (view) document.addEventListener("htmx:before:history:update", function (ev) {
    var source = ev.detail && ev.detail.sourceElement;
    if (source && !view.contains(source)) return;
    ev.preventDefault();
    navigated(ev.detail.history.path);
  });

  if (view) view.addEventListener("click", function (ev) {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
    var a = ev.target.closest && ev.target.closest("a[href]");
    if (!a || a.hasAttribute("download") || a.target) return;
    var url = new URL(a.href, location.href);
    if (url.origin !== location.origin || (url.pathname !== "/" && url.pathname !== "/compare")) return;
    ev.preventDefault();
    var link = url.pathname + url.search;
    loadView(link);
    navigated(link);
  });

  function bars(poll) {
    var list = $("live-choices");
    if (poll.id !== pollId) {
      pollId = poll.id;
      myChoice = null;
      setText("live-my-choice", "");
      list.replaceChildren();
      poll.choices.forEach(function (choice) {
        var li = document.createElement("li");
        li.className = "live-choice";
        li.dataset.choice = choice;
        var label = document.createElement(role === "student" ? "button" : "span");
        label.className = "choice-label";
        label.textContent = choice;
        if (role === "student") {
          label.type = "button";
          label.setAttribute("aria-pressed", "false");
          label.addEventListener("click", function () { vote(choice); });
        }
        var bar = document.createElement("span");
        bar.className = "bar";
        var fill = document.createElement("span");
        fill.className = "bar-fill";
        bar.appendChild(fill);
        var count = document.createElement("span");
        count.className = "choice-count";
        li.append(label, bar, count);
        list.appendChild(li);
      });
    }
    var most = Math.max.apply(null, poll.counts.concat([1]));
    Array.prototype.forEach.call(list.children, function (li, i) {
      var n = poll.counts[i] || 0;
      // Set through the CSS object model: the page's CSP refuses style attributes.
      li.querySelector(".bar-fill").style.width = (100 * n / most) + "%";
      li.querySelector(".choice-count").textContent = String(n);
      li.classList.toggle("answer", poll.revealed && poll.answer === li.dataset.choice);
      var button = li.querySelector("button");
      if (button) {
        button.disabled = poll.revealed;
        button.setAttribute("aria-pressed", String(myChoice === li.dataset.choice));
      }
    });
  }

  function onPoll(poll) {
    var box = $("live-poll");
    if (!box) return; // the projector's join screen shows no poll
    if (!poll) {
      box.hidden = true;
      pollId = null;
      countdown(null);
      return;
    }
    var fresh = poll.id !== pollId;
    box.hidden = false;
    box.classList.toggle("revealed", poll.revealed);
    setText("live-poll-command", poll.command);
    setText("live-poll-policy", poll.policy);
    setText("live-answered", String(poll.answered));
    if (myChoice !== null) {
      setText("live-my-choice", " · your answer: " + myChoice +
        (poll.revealed ? "" : " (you may change it until the reveal)"));
    }
    bars(poll);
    $("live-answer").hidden = !poll.revealed;
    setText("live-answer-value", poll.revealed ? poll.answer : "");
    setText("live-why", poll.revealed ? poll.why : "");
    var reveal = $("live-reveal");
    if (reveal) reveal.hidden = poll.revealed;
    countdown(poll);
    if (poll.revealed) {
      announce("The answer: " + poll.answer + ". " + (poll.why || ""));
    } else if (fresh) {
      announce("Poll: what will " + poll.command + " see under " + poll.policy + "? " +
        poll.choices.map(function (c, i) { return (i + 1) + ": " + c; }).join(", ") +
        (role === "student" ? ". Press a number to answer." : "."));
    }
  }

  // A poll's countdown: `seconds_left` as the server made the answer, counted down on this
  // browser's clock (the server refuses votes at zero; `closed` says it did).
  function countdown(poll) {
    var left = poll && !poll.revealed && typeof poll.seconds_left === "number"
      ? poll.seconds_left : null;
    closesAt = left === null ? null : Date.now() + 1000 * Math.max(0, left);
    if (poll && poll.closed && !poll.revealed) closesAt = Date.now();
    var start = $("live-countdown-tools");
    if (start) start.hidden = !poll || poll.revealed || closesAt !== null;
    clearInterval(ticker);
    ticker = null;
    tick();
    if (closesAt !== null) ticker = setInterval(tick, 250);
  }

  function closed() {
    return closesAt !== null && Date.now() >= closesAt;
  }

  function tick() {
    var box = $("live-countdown");
    if (!box) return;
    if (closesAt === null) {
      box.textContent = "";
      return;
    }
    var seconds = Math.ceil(Math.max(0, closesAt - Date.now()) / 1000);
    box.textContent = seconds > 0 ? " · closes in " + seconds + " s" : " · closed";
    box.classList.toggle("soon", seconds <= 5);
    if (seconds <= 0) {
      clearInterval(ticker);
      ticker = null;
      announce("The poll is closed.");
      $("live-choices").querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    }
  }

  function vote(choice) {
    if (closed()) {
      say("The poll is closed.");
      return;
    }
    post("vote", { choice: choice }).then(function (answer) {
      if (!answer) return;
      myChoice = choice;
      announce("Your answer: " + choice);
      if (latest && latest.poll) onPoll(latest.poll);
    });
  }

  // What a page in the room shows for a state: the room's link, and once a poll on this step
  // is revealed, the same step answered (the picture then shows the read's outcome, and a
  // lesson's question no longer asks to predict).
  function wantedLink(state) {
    var poll = state.poll;
    if (!poll || !poll.revealed || poll.step !== state.step || state.view !== "simulator") {
      return state.link;
    }
    return state.link + "&answer=";
  }

  function onState(state) {
    latest = state;
    setText("live-students", String(state.students));
    if (role === "screen") return;
    if (role === "teacher") {
      if (shown === null) loadView(state.link);
      else if (state.poll && state.poll.revealed && state.poll.id !== revealedShown) {
        revealedShown = state.poll.id;
        if (wantedLink(state) !== state.link) loadView(wantedLink(state));
      }
      var open = $("live-open-poll");
      open.disabled = !state.can_poll || !!(state.poll && !state.poll.revealed);
      open.title = state.can_poll ? "" : "A poll asks what a read will see: step to a read";
      document.querySelectorAll("[data-live-view]").forEach(function (button) {
        button.setAttribute("aria-pressed", String(button.dataset.liveView === state.view));
      });
    } else if (following && wantedLink(state) !== shown) {
      loadView(wantedLink(state));
    }
    onPoll(state.poll);
  }

  // The view stays, and is the student's now: nothing will move it any more.
  function ended(message) {
    if (panel.classList.contains("ended")) return; // said once (the teacher's own stream too)
    following = false;
    stopped = true;
    if (source) source.close();
    panel.classList.add("offline", "ended", "detached");
    // Only the teacher's key ends a room: on the teacher's page, that was this teacher.
    if (role === "teacher" && message) message = "You ended this live session";
    var text = (message || "This live session has ended") + ": the view is yours to explore";
    setText("live-mode", text);
    announce(text + ".");
    panel.querySelectorAll(".live-tools, .live-count, #live-poll, .live-more, .live-join")
      .forEach(function (el) { el.hidden = true; });
    countdown(null);
  }

  // The stream is ours to keep open: EventSource gives up for good after an error status (a
  // worker killed, Redis restarting, a full room for a moment), and a stalled connection
  // (a NAT forgetting it) looks open forever. Heartbeats come every 12 s; two missed (24 s
  // without any event, noticed within 2 s) say "reconnecting…" and open a new stream, after a
  // growing, jittered pause so a whole hall does not come back in the same millisecond.
  var source = null;
  var stopped = false;
  var lastSeen = Date.now();
  var failures = 0;
  var retryTimer = null;
  var STALL_MS = 24000;
  var modeText = $("live-mode") ? $("live-mode").textContent : "";

  function seen() {
    lastSeen = Date.now();
    failures = 0;
    if (panel.classList.contains("reconnecting")) {
      panel.classList.remove("reconnecting", "offline");
      setText("live-mode", modeText);
    }
  }

  function reconnecting() {
    if (stopped || panel.classList.contains("reconnecting")) return;
    panel.classList.add("reconnecting", "offline");
    setText("live-mode", "Reconnecting…");
    announce("The connection to the class dropped: reconnecting…"); // #live-mode is not a live region
  }

  function retry() {
    if (stopped || retryTimer) return;
    if (source) source.close();
    reconnecting();
    var pause = Math.min(15000, 1000 * Math.pow(2, failures)) * (0.5 + Math.random());
    failures += 1;
    // retryTimer stays set until the question is answered: one reconnection at a time.
    retryTimer = setTimeout(function () {
      // Ask first whether the room is still there: a room that ended answers 404, and
      // then there is nothing to reconnect to.
      fetch("/api/v1/live/" + code, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          retryTimer = null;
          if (response.status === 404) ended();
          else if (response.ok) connect();
          else retry();
        })
        .catch(function () {
          retryTimer = null;
          retry();
        });
    }, pause);
  }

  // A quiet room's count can change with no event (a killed worker's seats stop counting):
  // the teacher's page and the projector's re-read it at each heartbeat; students need not.
  function recount() {
    fetch("/api/v1/live/" + code, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) { if (state) setText("live-students", String(state.students)); })
      .catch(function () {});
  }

  function connect() {
    var url = "/live/" + code + "/events" + (role === "student" ? "" : "?role=" + role);
    if (source) source.close();
    source = new EventSource(url);
    lastSeen = Date.now();
    source.addEventListener("open", seen);
    source.addEventListener("heartbeat", seen);
    if (role !== "student") source.addEventListener("heartbeat", recount);
    source.addEventListener("state", function (ev) {
      seen();
      panel.classList.remove("offline");
      onState(JSON.parse(ev.data));
    });
    source.addEventListener("poll", function (ev) {
      seen();
      var poll = JSON.parse(ev.data);
      if (latest) latest.poll = poll;
      onPoll(poll);
    });
    source.addEventListener("ended", function (ev) {
      var data = ev.data ? JSON.parse(ev.data) : null;
      ended(data && data.message ? "The teacher ended this live session" : null);
    });
    source.addEventListener("error", function () {
      // CONNECTING: the browser retries by itself; CLOSED (an error status): we do.
      if (source.readyState === EventSource.CLOSED) retry();
      else reconnecting();
    });
  }

  setInterval(function () {
    if (!stopped && !retryTimer && Date.now() - lastSeen > STALL_MS) retry();
  }, 2000);

  if (role === "student") {
    $("live-detach").addEventListener("click", detach);
    $("live-rejoin").addEventListener("click", rejoin);
    // The poll is the room's one question: a digit answers it (the lesson's own `#?` box
    // yields to it while the student follows; lesson.js leaves digits alone in a room).
    window.addEventListener("keydown", function (ev) {
      if (!/^[1-9]$/.test(ev.key) || ev.altKey || ev.ctrlKey || ev.metaKey) return;
      var tag = ev.target && ev.target.tagName ? ev.target.tagName.toLowerCase() : "";
      if (tag === "input" || tag === "textarea" || tag === "select") return;
      if (!following) return;
      ev.preventDefault();
      var poll = latest && latest.poll;
      if (!poll || poll.revealed) return;
      var choice = poll.choices[Number(ev.key) - 1];
      if (choice !== undefined) vote(choice);
    }, true);
  }
  if (role === "teacher") {
    $("live-open-poll").addEventListener("click", function () {
      post("poll").then(function (state) { if (state) onState(state); });
    });
    // Presentation mode on the room's page is the page's own class (app.css), kept while
    // the view changes underneath; app.js's `p` key clicks this link as it does on the page.
    $("live-present").addEventListener("click", function (ev) {
      ev.preventDefault();
      var on = document.body.classList.toggle("present");
      this.setAttribute("aria-pressed", String(on));
      // A reload keeps it: the room's address says so.
      history.replaceState(history.state, "", location.pathname + (on ? "?view=present" : ""));
    });
    $("live-reveal").addEventListener("click", function () {
      post("reveal").then(function (state) { if (state) onState(state); });
    });
    $("live-countdown-start").addEventListener("click", function () {
      var seconds = Number($("live-countdown-seconds").value);
      post("countdown", { seconds: seconds }).then(function (state) {
        if (state) onState(state);
      });
    });
    $("live-end").addEventListener("click", function () {
      if (!window.confirm("End this live session? Every student's page will say it ended.")) return;
      fetch("/api/v1/live/" + code, { method: "DELETE", credentials: "same-origin" })
        .then(function (response) {
          if (response.ok || response.status === 404) ended("You ended this live session");
          else say("The server did not end the session (" + response.status + ").");
        })
        .catch(function () { say("The server cannot be reached; the session goes on."); });
    });
    // Another lesson or link in the same room: the code stays and the class follows.
    $("live-load").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var form = ev.target;
      var link = form.elements.link.value.trim() || form.elements.lesson.value;
      if (!link) {
        say("Choose a lesson or paste a simulator or comparison link.");
        return;
      }
      post("state", { link: link }).then(function (state) {
        if (!state) return;
        form.reset();
        form.closest("details").open = false;
        onState(state);
        loadView(state.link);
      });
    });
    document.querySelectorAll("[data-live-view]").forEach(function (button) {
      button.addEventListener("click", function () {
        post("state", { view: button.dataset.liveView }).then(function (state) {
          if (!state) return;
          onState(state);
          loadView(state.link);
        });
      });
    });
  }
  if (role !== "screen" && panel.dataset.link) loadView(panel.dataset.link);
  connect();
})();
