// Nova console: the pages work without this script; it adds live updates.
"use strict";

function get(url) {
  return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error(url + ": " + r.status); return r.json(); });
}

function text(el, v) { if (el && el.textContent !== String(v)) el.textContent = String(v); }

// Overview: refresh the figures every 3 s.
function overview(box) {
  setInterval(function () {
    get(box.dataset.poll).then(function (o) {
      text(box.querySelector('[data-k="events"]'), o.events);
      text(box.querySelector('[data-k="head"]'), o.head);
      var c = box.querySelector('[data-k="counting"]');
      if (c && !o.counting) c.remove();
      if (o.outbox !== undefined) text(box.querySelector('[data-k="outbox"]'), o.outbox);
      Object.keys(o.sagas || {}).forEach(function (st) {
        text(box.querySelector('[data-k="sagas.' + st + '"]'), o.sagas[st]);
      });
    }).catch(function () {});
  }, 3000);
}

// Log: follow new events with server-sent events from /api/log/live.
function follow(btn) {
  var src = null;
  var state = document.getElementById("live-state");
  var body = document.querySelector("#log tbody");
  btn.addEventListener("click", function () {
    if (src) { src.close(); src = null; btn.textContent = "Follow live"; text(state, ""); return; }
    src = new EventSource("/api/log/live?after=" + encodeURIComponent(btn.dataset.after));
    btn.textContent = "Stop following";
    text(state, "following…");
    src.onmessage = function (m) {
      var e = JSON.parse(m.data);
      btn.dataset.after = e.position;
      var empty = document.getElementById("empty");
      if (empty) empty.remove();
      var tr = document.createElement("tr");
      tr.className = "new";
      var data = e.data === undefined ? "" : JSON.stringify(e.data);
      [e.position, null, e.version, e.type, e.recorded_at.replace("T", " ").replace("Z", ""), data.slice(0, 120)].forEach(function (v, i) {
        var td = document.createElement("td");
        if (i === 1) {
          var a = document.createElement("a");
          a.href = "/streams/" + encodeURIComponent(e.stream);
          a.textContent = e.stream;
          td.appendChild(a);
        } else if (i === 5) {
          var code = document.createElement("code");
          code.textContent = v;
          td.appendChild(code);
        } else {
          td.textContent = v;
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
      while (body.rows.length > 1000) body.deleteRow(0);
      text(state, "following: last " + e.position);
    };
    src.addEventListener("error", function (m) {
      text(state, m.data ? "error: " + JSON.parse(m.data) : "reconnecting…");
    });
  });
}

// Run: while the run has not ended, reload the page when it moves on.
function watchRun(card) {
  var terminal = ["completed", "compensated", "failed"];
  if (terminal.indexOf(card.dataset.status) >= 0) return;
  setInterval(function () {
    get(card.dataset.api).then(function (p) {
      if (String(p.run.version) !== card.dataset.version || p.run.status !== card.dataset.status) {
        location.replace(location.pathname);
      }
    }).catch(function () {});
  }, 1000);
}

// Projections: show a running rebuild's progress, reload when it ends.
function watchRebuild(box) {
  if (box.dataset.running !== "true") return;
  var t = setInterval(function () {
    get(box.dataset.api).then(function (s) {
      box.querySelector("progress").value = s.total > 0 ? Math.min(100, Math.floor(s.done * 100 / s.total)) : 0;
      text(box.querySelector('[data-k="progress"]'), s.done + "/" + s.total + " events" + (s.running ? ", running" : ""));
      if (!s.running) { clearInterval(t); location.reload(); }
    }).catch(function () {});
  }, 500);
}

document.addEventListener("DOMContentLoaded", function () {
  var o = document.querySelector("[data-poll]");
  if (o) overview(o);
  var f = document.getElementById("follow");
  if (f) follow(f);
  var r = document.getElementById("run");
  if (r) watchRun(r);
  document.querySelectorAll(".rebuild").forEach(watchRebuild);
});
