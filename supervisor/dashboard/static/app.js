/* workspace-supervisor dashboard: what every page shares. No build step, no framework. */
"use strict";

const Dashboard = (() => {
  function post(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Supervisor-Dashboard": "1" },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    }).then(async (response) => {
      let data = {};
      try { data = await response.json(); } catch (e) { data = { message: response.statusText }; }
      data.status = response.status;
      return data;
    });
  }

  /* A stream of server-sent events; the dot in the bar says whether it is live. */
  function listen(path, handlers) {
    const dot = document.getElementById("live");
    const source = new EventSource(path);
    source.onopen = () => { if (dot) dot.className = "live on"; };
    source.onerror = () => { if (dot) dot.className = "live off"; };
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
    }
    return source;
  }

  function showDetail(title, text) {
    const dialog = document.getElementById("detail");
    document.getElementById("detail-title").textContent = title;
    document.getElementById("detail-text").textContent = text;
    dialog.showModal();
  }

  function size(bytes) {
    if (bytes === null || bytes === undefined) return "–";
    let amount = bytes;
    for (const unit of ["B", "KiB", "MiB", "GiB"]) {
      if (amount < 1024 || unit === "GiB") {
        return unit === "B" ? `${amount.toFixed(0)} B` : `${amount.toFixed(1)} ${unit}`;
      }
      amount /= 1024;
    }
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 1) return `${(seconds * 1000).toFixed(0)} ms`;
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    let minutes = Math.floor(seconds / 60);
    const secs = Math.floor(seconds % 60);
    if (minutes < 60) return `${minutes}m ${String(secs).padStart(2, "0")}s`;
    let hours = Math.floor(minutes / 60);
    minutes %= 60;
    if (hours < 48) return `${hours}h ${String(minutes).padStart(2, "0")}m`;
    return `${Math.floor(hours / 24)}d ${hours % 24}h`;
  }

  function firstLine(text) {
    const trimmed = (text || "").trim();
    return trimmed ? trimmed.split("\n")[0] : "";
  }

  function clock(seconds) {
    return `${new Date(seconds * 1000).toISOString().substring(11, 19)} UTC`;
  }

  return { post, listen, showDetail, size, duration, firstLine, clock };
})();
