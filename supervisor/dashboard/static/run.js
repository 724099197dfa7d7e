/* A run's page: its events as they are recorded, and its steps on a timeline. */
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const run = JSON.parse(document.getElementById("run-data").textContent);
  const events = run.events || [];
  const tbody = document.querySelector("#events tbody");
  let seen = 0;

  const seconds = (text) => (text ? Date.parse(text) / 1000 : null);

  function element(tag, attributes, parent) {
    const made = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, value);
    if (parent) parent.appendChild(made);
    return made;
  }

  function addRow(event) {
    const tr = document.createElement("tr");
    tr.className = `event-${event.type}`;
    const cells = [Dashboard.clock(seconds(event.time)), event.type, event.step, event.message];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      if (i === 0 || i === 2) td.className = "mono";
      td.textContent = text || "";
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
    if (event.traceback) {
      const failures = document.getElementById("failures");
      const title = document.createElement("h3");
      title.textContent = event.type + (event.step ? ` of ${event.step}` : "");
      const pre = document.createElement("pre");
      pre.className = "traceback";
      pre.textContent = event.traceback;
      failures.append(title, pre);
    }
  }

  /* Each step from its STEP_START to its STEP_SUCCESS or STEP_FAILURE (or now). */
  function steps() {
    const found = new Map();
    for (const event of events) {
      if (!event.step) continue;
      const at = seconds(event.time);
      if (event.type === "STEP_START") found.set(event.step, { step: event.step, start: at, end: null, outcome: "running" });
      if ((event.type === "STEP_SUCCESS" || event.type === "STEP_FAILURE") && found.has(event.step)) {
        Object.assign(found.get(event.step), { end: at, outcome: event.type });
      }
    }
    return [...found.values()];
  }

  function drawTimeline() {
    const holder = document.getElementById("timeline");
    const rows = steps();
    holder.textContent = "";
    if (!rows.length) {
      holder.innerHTML = '<p class="muted">No step has started.</p>';
      return;
    }
    const begin = seconds(run.started_at) || rows[0].start;
    const finish = seconds(run.ended_at) || Date.now() / 1000;
    const last = Math.max(finish, ...rows.map((r) => r.end || finish));
    const span = Math.max(last - begin, 0.001);
    const labelWidth = Math.min(260, 20 + Math.max(...rows.map((r) => r.step.length)) * 7.4);
    const width = Math.max(holder.clientWidth || 800, 500);
    const plot = width - labelWidth - 90;
    const height = rows.length * 24 + 30;
    const svg = element("svg", { width, height, viewBox: `0 0 ${width} ${height}` }, holder);
    rows.forEach((row, i) => {
      const y = 8 + i * 24;
      const label = element("text", { class: "timeline-label", x: 8, y: y + 13 }, svg);
      label.textContent = row.step;
      const x = labelWidth + ((row.start - begin) / span) * plot;
      const w = Math.max(2, (((row.end || finish) - row.start) / span) * plot);
      const bar = element("rect", {
        class: `bar-step ${row.outcome}`, x, y, width: w, height: 16, rx: 3, "data-step": row.step,
      }, svg);
      const title = element("title", {}, bar);
      title.textContent = `${row.step}: ${Dashboard.duration((row.end || finish) - row.start)} (${row.outcome})`;
      const figure = element("text", { class: "axis", x: x + w + 6, y: y + 13 }, svg);
      figure.textContent = Dashboard.duration((row.end || finish) - row.start);
    });
    const axis = element("text", { class: "axis", x: labelWidth, y: height - 6 }, svg);
    axis.textContent = `0 → ${Dashboard.duration(span)}`;
  }

  function finished(ended) {
    const status = document.getElementById("run-status");
    status.textContent = ended.status;
    status.className = `state status-${ended.status}`;
    Object.assign(run, ended);
    document.getElementById("run-ended").textContent = ended.ended_at ? Dashboard.clock(seconds(ended.ended_at)) : "–";
    document.getElementById("run-reason").textContent = ended.reason || "–";
    const start = seconds(run.started_at);
    const end = seconds(run.ended_at);
    if (start && end) document.getElementById("run-duration").textContent = Dashboard.duration(end - start);
    drawTimeline();
  }

  drawTimeline();
  const source = Dashboard.listen(`/runs/${run.id}/events`, {
    events: (batch) => {
      for (const event of batch) {
        if (seen >= events.length) {
          events.push(event);
          addRow(event);
        }
        seen += 1;
      }
      drawTimeline();
    },
    run: (ended) => { finished(ended); source.close(); document.getElementById("live").className = "live"; },
  });
  // A stream that reconnects starts again from the run's first event.
  source.addEventListener("open", () => { seen = 0; });
})();
