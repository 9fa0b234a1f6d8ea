// Sisyphus dashboard: confirmation of dangerous buttons, live refresh of the page's #live part
// on change events, and the Run page's live log. No inline script anywhere (the CSP forbids it).
"use strict";

(function () {
  // Buttons that ask first.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      e.preventDefault();
    }
  });

  var conn = document.getElementById("conn");
  var live = document.getElementById("live");
  var log = document.getElementById("log");
  var search = document.getElementById("log-search");

  // Fetch this page again and swap in its live part; at most one fetch at a time, and one more
  // if a change came in meanwhile.
  var fetching = false;
  var again = false;
  function refresh() {
    if (!live) return;
    if (fetching) { again = true; return; }
    fetching = true;
    fetch(window.location.href, { headers: { "X-Fragment": "1" }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { window.location.href = "/sign-in"; return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) { live.innerHTML = html; }
      })
      .catch(function () {})
      .then(function () {
        fetching = false;
        if (again) { again = false; setTimeout(refresh, 100); }
      });
  }

  // The Run page's log: append the lines after the last one shown.
  var pulling = false;
  var pullAgain = false;
  function pullLines() {
    if (!log) return;
    if (pulling) { pullAgain = true; return; }
    pulling = true;
    var url = "/runs/" + log.dataset.run + "/lines?after=" + log.dataset.last;
    if (log.dataset.tag) url += "&tag=" + encodeURIComponent(log.dataset.tag);
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (lines) {
        var atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
        var body = log.tBodies[0];
        lines.forEach(function (l) {
          var tr = document.createElement("tr");
          tr.className = "s-" + l.stream;
          [["seq", String(l.seq)], ["at", l.at]].forEach(function (c) {
            var td = document.createElement("td"); td.className = c[0]; td.textContent = c[1]; tr.appendChild(td);
          });
          var tags = document.createElement("td"); tags.className = "tags";
          l.tags.forEach(function (t) {
            var s = document.createElement("span"); s.className = "tag"; s.textContent = t; tags.appendChild(s);
          });
          tr.appendChild(tags);
          var text = document.createElement("td"); text.className = "text"; text.textContent = l.text;
          tr.appendChild(text);
          filterRow(tr);
          body.appendChild(tr);
          log.dataset.last = String(l.seq);
        });
        if (lines.length && atBottom) window.scrollTo(0, document.body.scrollHeight);
        if (lines.length >= 2000) pullAgain = true;
      })
      .catch(function () {})
      .then(function () {
        pulling = false;
        if (pullAgain) { pullAgain = false; setTimeout(pullLines, 50); }
      });
  }

  // Search within the shown lines.
  function filterRow(tr) {
    var q = search ? search.value.toLowerCase() : "";
    tr.hidden = q !== "" && tr.textContent.toLowerCase().indexOf(q) < 0;
  }
  if (search && log) {
    search.addEventListener("input", function () {
      Array.prototype.forEach.call(log.tBodies[0].rows, filterRow);
    });
  }

  var url = document.body.dataset.events;
  if (!url || !window.EventSource) return;
  var source = new EventSource(url);
  var opened = false;
  source.addEventListener("open", function () {
    if (conn) conn.className = "conn on";
    // A reconnection: catch up on what happened while the stream was away.
    if (opened) { refresh(); pullLines(); }
    opened = true;
  });
  source.addEventListener("error", function () {
    if (conn) conn.className = "conn off";
  });
  source.addEventListener("changed", refresh);
  source.addEventListener("log", pullLines);
  source.addEventListener("resync", function () { refresh(); pullLines(); });
})();
