/* A location's page: its lineage drawn as a layered graph (dagre lays it out, this draws
   it as SVG), asset selection, the materialize buttons, and its log, live. */
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const name = decodeURIComponent(window.location.pathname.split("/")[2]);
  const selected = new Set();
  const dataNode = document.getElementById("graph-data");

  function element(tag, attributes, parent) {
    const made = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, value);
    if (parent) parent.appendChild(made);
    return made;
  }

  function layout(graph) {
    const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
    g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 56, marginx: 12, marginy: 12 });
    g.setDefaultEdgeLabel(() => ({}));
    const groups = new Set(graph.nodes.map((node) => node.group));
    const clustered = groups.size > 1;
    if (clustered) {
      for (const group of groups) g.setNode(`group:${group}`, { label: group, clusterLabelPos: "top" });
    }
    const nodeSize = (key) => ({ width: Math.max(60, key.length * 7.4 + 26), height: 30 });
    for (const node of graph.nodes) {
      g.setNode(node.key, { key: node.key, external: false, ...nodeSize(node.key) });
      if (clustered) g.setParent(node.key, `group:${node.group}`);
    }
    for (const edge of graph.edges) {
      if (edge.external && !g.hasNode(edge.from)) {
        g.setNode(edge.from, { key: edge.from, external: true, ...nodeSize(edge.from) });
      }
      g.setEdge(edge.from, edge.to);
    }
    dagre.layout(g);
    return { g, clustered };
  }

  function draw(graph) {
    const holder = document.getElementById("graph");
    holder.textContent = "";
    if (!graph.nodes.length) {
      holder.textContent = "This location defines no assets.";
      return;
    }
    const { g } = layout(graph);
    const size = g.graph();
    const svg = element("svg", {
      width: Math.ceil(size.width), height: Math.ceil(size.height),
      viewBox: `0 0 ${Math.ceil(size.width)} ${Math.ceil(size.height)}`,
    }, holder);
    const defs = element("defs", {}, svg);
    const marker = element("marker", {
      id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
      orient: "auto-start-reverse",
    }, defs);
    element("path", { d: "M0,0 L10,5 L0,10 z", fill: "#94a3b8" }, marker);
    for (const id of g.nodes()) {
      if (!id.startsWith("group:") || g.children(id).length === 0) continue;
      const cluster = g.node(id);
      element("rect", {
        class: "cluster", x: cluster.x - cluster.width / 2, y: cluster.y - cluster.height / 2,
        width: cluster.width, height: cluster.height, rx: 8,
      }, svg);
      const label = element("text", {
        class: "cluster-label", x: cluster.x - cluster.width / 2 + 8, y: cluster.y - cluster.height / 2 + 12,
      }, svg);
      label.textContent = cluster.label;
    }
    for (const edge of g.edges()) {
      const points = g.edge(edge).points;
      const d = points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
      element("path", { class: "edge", d, "marker-end": "url(#arrow)", "data-from": edge.v, "data-to": edge.w }, svg);
    }
    for (const id of g.nodes()) {
      if (id.startsWith("group:")) continue;
      const node = g.node(id);
      const group = element("g", {
        class: node.external ? "node external" : "node", "data-key": id,
        transform: `translate(${node.x - node.width / 2},${node.y - node.height / 2})`,
      }, svg);
      element("rect", { width: node.width, height: node.height, rx: 6 }, group);
      const text = element("text", { x: 13, y: 19 }, group);
      text.textContent = id;
      if (node.external) {
        const title = element("title", {}, group);
        title.textContent = `${id}: not in this location`;
      } else {
        group.addEventListener("click", () => toggle(id));
      }
    }
  }

  function toggle(key, on) {
    const wanted = on === undefined ? !selected.has(key) : on;
    if (wanted) selected.add(key); else selected.delete(key);
    const node = document.querySelector(`#graph .node[data-key="${CSS.escape(key)}"]`);
    if (node) node.classList.toggle("selected", wanted);
    const box = document.querySelector(`.groups input[value="${CSS.escape(key)}"]`);
    if (box) box.checked = wanted;
    document.getElementById("selected-count").textContent = selected.size;
    document.getElementById("materialize-selected").disabled = selected.size === 0;
  }

  function materialize(body, button) {
    const note = document.getElementById("materialize-result");
    if (button) button.disabled = true;
    note.textContent = "starting a run…";
    Dashboard.post("/api/materialize", { location: name, ...body }).then((reply) => {
      if (reply.ok) {
        window.location.href = `/runs/${reply.run_id}`;
      } else {
        note.textContent = reply.message;
        if (button) button.disabled = false;
      }
    });
  }

  if (dataNode) {
    draw(JSON.parse(dataNode.textContent));
    document.querySelector(".groups").addEventListener("change", (event) => {
      if (event.target.matches("input[type=checkbox]")) toggle(event.target.value, event.target.checked);
    });
    document.querySelector(".groups").addEventListener("click", (event) => {
      const button = event.target.closest("button.materialize-one");
      if (button) materialize({ assets: [button.dataset.asset] }, button);
    });
    document.getElementById("materialize-selected").addEventListener("click", (event) => {
      materialize({ assets: [...selected] }, event.target);
    });
    document.getElementById("materialize-all").addEventListener("click", (event) => {
      materialize({ all: true }, event.target);
    });
  }

  const log = document.getElementById("log");
  const KEEP = 2000;
  const logSource = Dashboard.listen(log.dataset.source, {
    lines: (lines) => {
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.append(lines.join("\n") + "\n");
      if (log.childNodes.length > KEEP) log.firstChild.remove();
      if (atEnd) log.scrollTop = log.scrollHeight;
    },
  });
  // A stream that reconnects starts again with the log's last lines.
  logSource.addEventListener("open", () => { log.textContent = ""; });
})();
