// The master's dashboard: polls ../api/dashboard once a second and draws what the
// master sampled. Each chart's legend carries the series' latest value in
// data-value (and the window's highest in data-max), so what is on screen can be
// read back by a person or a test.
"use strict";

const API = "../api/dashboard";
const POLL_MS = 1000;
const HEIGHT = 180;
const PALETTE = ["#2f6fdb", "#e8702a", "#1a9e77", "#c2338a", "#7a5af5", "#b58b00",
  "#0f9bb5", "#d1453b", "#5b8c2a", "#8c564b"];

const CHARTS = [
  { key: "throughput", title: "Throughput per topic", unit: "msg/s" },
  { key: "instances", title: "Instances per stage", unit: "live", integer: true, stepped: true },
  { key: "lag", title: "Consumer lag per stage", unit: "messages", integer: true },
  { key: "node_score", title: "Node score", unit: "0–1", max: 1 },
  { key: "node_free_cpu", title: "Node capacity", unit: "free CPU cores" },
  { key: "tasks", title: "Task queue", unit: "tasks", integer: true, stepped: true },
];

const plots = {};

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(value, integer) {
  if (value === null || value === undefined) return "–";
  if (integer) return String(Math.round(value));
  const abs = Math.abs(value);
  return abs >= 100 ? value.toFixed(0) : abs >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
  return null;
}

function setupCards() {
  const holder = document.getElementById("charts");
  for (const spec of CHARTS) {
    const card = el("article", { class: "card", "data-chart": spec.key, "data-points": "0" });
    const title = el("h2", {}, spec.title + " ");
    title.appendChild(el("small", {}, spec.unit));
    card.append(title, el("div", { class: "plot" }), el("ul", { class: "legend" }));
    holder.appendChild(card);
    plots[spec.key] = { spec, card, plot: null, names: "" };
  }
  window.addEventListener("resize", () => {
    for (const entry of Object.values(plots)) {
      if (entry.plot) entry.plot.setSize({ width: plotWidth(entry), height: HEIGHT });
    }
  });
}

function plotWidth(entry) {
  return Math.max(200, entry.card.querySelector(".plot").clientWidth);
}

function makePlot(entry, names) {
  const { spec } = entry;
  const box = entry.card.querySelector(".plot");
  box.textContent = "";
  const paths = spec.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
  const series = [{}].concat(names.map((name, i) => ({
    label: name, stroke: PALETTE[i % PALETTE.length], width: 2, paths, spanGaps: false,
    points: { show: false },
  })));
  const opts = {
    width: plotWidth(entry), height: HEIGHT, series, legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => yRange(spec, max) } },
    axes: [{ stroke: "#6b7785" }, {
      stroke: "#6b7785", size: 48,
      incrs: spec.integer ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10000] : undefined,
    }],
  };
  return new uPlot(opts, [[]].concat(names.map(() => [])), box);
}

function yRange(spec, max) {
  if (spec.max !== undefined) return [0, spec.max];
  const top = max === null || !isFinite(max) || max <= 0 ? 1 : max;
  return [0, spec.integer ? Math.ceil(top) + 1 : top * 1.15];
}

function drawChart(entry, t, columns) {
  const names = Object.keys(columns);
  const box = entry.card.querySelector(".plot");
  if (names.length === 0) {
    if (entry.plot) { entry.plot.destroy(); entry.plot = null; }
    entry.names = "";
    box.replaceChildren(el("p", { class: "empty" }, "nothing to show yet"));
  } else {
    if (entry.names !== names.join("\n")) {
      if (entry.plot) entry.plot.destroy();
      entry.plot = makePlot(entry, names);
      entry.names = names.join("\n");
    }
    entry.plot.setData([t].concat(names.map((n) => columns[n])));
  }
  entry.card.setAttribute("data-points", String(t.length));
  drawLegend(entry, names, columns);
}

function drawLegend(entry, names, columns) {
  const items = names.map((name, i) => {
    const values = columns[name];
    const present = values.filter((v) => v !== null);
    const latest = lastValue(values);
    const item = el("li", {
      "data-series": name, "data-value": latest === null ? "" : String(latest),
      "data-max": present.length ? String(Math.max(...present)) : "",
      style: `--swatch: ${PALETTE[i % PALETTE.length]}`,
    }, name);
    item.appendChild(el("b", {}, fmt(latest, entry.spec.integer)));
    return item;
  });
  entry.card.querySelector(".legend").replaceChildren(...items);
}

function cell(value, attrs = {}) {
  const none = value === null || value === undefined || value === "";
  return el("td", { ...attrs, class: none ? "none" : undefined }, none ? "–" : String(value));
}

function drawStages(stages) {
  const rows = stages.map((s) => {
    const row = el("tr", { "data-stage": s.stage, "data-live": String(s.live) });
    const limits = s.min === null ? null : `${s.min}..${s.max}`;
    row.append(cell(s.stage), cell(s.live, { "data-field": "live" }),
      cell(s.starting, { "data-field": "starting" }), cell(limits), cell(s.provider),
      cell(fmt(s.consumed_rate)), cell(fmt(s.produced_rate)), cell(s.lag), cell(s.verdict));
    return row;
  });
  document.querySelector("#stages tbody").replaceChildren(...rows);
}

function drawNodes(nodes) {
  const rows = nodes.map((n) => {
    const battery = n.battery_percent === null ? null
      : `${Math.round(n.battery_percent)}%${n.charging ? " ⚡" : ""}`;
    const row = el("tr", { "data-node": n.node });
    row.append(cell(n.node), cell(fmt(n.score)), cell(`${fmt(n.free_cpu)} / ${n.cpu_cores}`),
      cell(battery), cell(n.thermal_state + (n.blocker ? ` (${n.blocker})` : "")), cell(n.tasks));
    return row;
  });
  document.querySelector("#nodes tbody").replaceChildren(...rows);
}

function drawTasks(tasks) {
  const parts = [];
  const states = Object.keys(tasks);
  if (states.length === 0) parts.push(el("dt", {}, "no tasks"), el("dd", {}, ""));
  for (const state of states) {
    parts.push(el("dt", {}, state), el("dd", { "data-state": state }, String(tasks[state])));
  }
  document.getElementById("tasks").replaceChildren(...parts);
}

function drawDecisions(decisions) {
  const items = decisions.map((d) => {
    const item = el("li", { "data-action": d.action, "data-code": d.code, "data-stage": d.stage });
    const at = new Date(d.at * 1000);
    item.append(el("time", { datetime: at.toISOString() }, at.toLocaleTimeString()),
      document.createTextNode(d.stage), el("span", { class: `action ${d.action}` }, d.action),
      el("span", { class: "code" }, d.code), document.createTextNode(d.reason));
    return item;
  });
  if (items.length === 0) items.push(el("li", { class: "empty" }, "no decisions yet"));
  document.getElementById("decisions").replaceChildren(...items);
}

function render(data) {
  for (const entry of Object.values(plots)) {
    drawChart(entry, data.t, data.charts[entry.spec.key] || {});
  }
  drawStages(data.stages);
  drawNodes(data.nodes);
  drawTasks(data.tasks);
  drawDecisions(data.decisions);
}

function setConnection(state, text) {
  const node = document.getElementById("connection");
  node.setAttribute("data-state", state);
  node.textContent = text;
}

async function poll() {
  try {
    const response = await fetch(API, { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const data = await response.json();
    render(data);
    setConnection("live", `live · updated ${new Date(data.now * 1000).toLocaleTimeString()}`);
  } catch (err) {
    setConnection("error", `cannot reach the master (${err.message}); retrying`);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

setupCards();
poll();
