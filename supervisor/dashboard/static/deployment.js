/* The deployment page: a row per location, kept live by /events. */
"use strict";

(() => {
  const RESTING = new Set(["STOPPED", "FATAL", "BUILD_FAILED"]);
  const TONES = ["good", "bad", "warn", "idle", "busy"];
  const body = document.querySelector("#locations tbody");

  function rowOf(name) {
    for (const tr of body.rows) if (tr.dataset.name === name) return tr;
    return null;
  }

  function field(tr, name) { return tr.querySelector(`[data-field="${name}"]`); }

  function newRow(name) {
    const template = body.rows[0];
    let tr;
    if (template) {
      tr = template.cloneNode(true);
    } else {
      location.reload();
      return null;
    }
    tr.dataset.name = name;
    const link = field(tr, "name");
    link.textContent = name;
    link.href = `/locations/${encodeURIComponent(name)}`;
    const ext = tr.querySelector("a.ext");
    if (ext) ext.remove();
    body.appendChild(tr);
    return tr;
  }

  function update(row) {
    const tr = rowOf(row.name) || newRow(row.name);
    if (!tr) return;
    tr.dataset.state = row.state;
    const state = field(tr, "state");
    state.textContent = row.state;
    state.classList.remove(...TONES);
    state.classList.add(row.tone);
    const reason = field(tr, "reason");
    reason.textContent = Dashboard.firstLine(row.reason);
    reason.title = row.reason;
    field(tr, "runtime").textContent = row.runtime;
    field(tr, "python").textContent = row.python || "–";
    const env = field(tr, "env");
    env.textContent = row.env ? row.env.substring(0, 12) : "–";
    env.title = row.env;
    field(tr, "pid").textContent = row.pid || "–";
    field(tr, "restarts").textContent = row.restarts;
    const error = field(tr, "last_error");
    const full = row.load_error || row.last_error;
    error.textContent = Dashboard.firstLine(full);
    error.dataset.full = full;
    field(tr, "warning").textContent = row.warning || "";
    const resting = RESTING.has(row.state);
    tr.querySelector('[data-action="stop"]').hidden = resting;
    tr.querySelector('[data-action="start"]').hidden = !resting;
    if (!row.pid) {
      for (const name of ["uptime", "rss", "cpu"]) field(tr, name).textContent = "–";
    }
    countServing();
  }

  function countServing() {
    let serving = 0;
    for (const tr of body.rows) if (tr.dataset.state === "SERVING") serving += 1;
    document.getElementById("serving").textContent = serving;
  }

  function figures(all) {
    for (const tr of body.rows) {
      const figure = all[tr.dataset.name];
      if (!figure) continue;
      field(tr, "uptime").textContent = Dashboard.duration(figure.uptime);
      field(tr, "rss").textContent = Dashboard.size(figure.rss);
      field(tr, "cpu").textContent = `${figure.cpu.toFixed(1)} %`;
    }
  }

  function removed(item) {
    const tr = rowOf(item.name);
    if (tr) tr.remove();
    countServing();
  }

  body.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) {
      const name = button.closest("tr").dataset.name;
      button.disabled = true;
      Dashboard.post(`/api/locations/${encodeURIComponent(name)}/${button.dataset.action}`)
        .then((reply) => { if (!reply.ok) alert(`${name}: ${reply.message}`); })
        .finally(() => { button.disabled = false; });
      return;
    }
    const error = event.target.closest('[data-field="last_error"]');
    if (error) {
      event.preventDefault();
      const tr = error.closest("tr");
      if (tr.dataset.state === "LOAD_ERROR") {
        // The code server keeps the whole traceback of its load error.
        fetch(`/api/locations/${encodeURIComponent(tr.dataset.name)}/error`, { credentials: "same-origin" })
          .then((response) => response.json())
          .then((reply) => Dashboard.showDetail(tr.dataset.name, reply.text || error.dataset.full))
          .catch(() => Dashboard.showDetail(tr.dataset.name, error.dataset.full));
      } else if (error.dataset.full) {
        Dashboard.showDetail(tr.dataset.name, error.dataset.full);
      }
    }
  });

  document.getElementById("reload").addEventListener("click", (event) => {
    const button = event.target;
    const note = document.getElementById("reload-result");
    button.disabled = true;
    note.textContent = "reloading…";
    Dashboard.post("/api/reload").then((reply) => {
      if (reply.changes) {
        const changed = reply.changes.filter((c) => c.message !== "unchanged");
        note.textContent = changed.length
          ? changed.map((c) => `${c.location}: ${c.message}`).join("; ")
          : "nothing changed";
      } else {
        note.textContent = reply.message;
      }
    }).finally(() => { button.disabled = false; });
  });

  Dashboard.listen("/events", { location: update, figures, removed });
})();
