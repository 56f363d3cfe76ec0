// The trajsynth page: click a start and an end point (or type a distance and direction), get a generated
// movement from /v1/path, replay it at its own timing, plot its speed, download it. With the server's
// --data-dir, a real movement of similar distance (from /v1/real, turned toward the same end) replays beside it.
//
// Canvas coordinates are the API's pixels (the canvas is drawn 1:1). For tests and tools the page exposes
// window.trajsynth: {start, end, movement, real, drawn} where `drawn` is the generated path as drawn on the
// canvas ([x, y] points), and the canvas's data-state attribute: idle | start | loading | replaying | done | error.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
const COLORS = { generated: "#1f6fd1", real: "#8a8f98", start: "#1a9c4a", end: "#d1431f", axis: "#555" };
const state = { model: null, start: null, end: null, movement: null, real: null, drawn: [], frame: 0 };
window.trajsynth = state;

function setState(name) { canvas.dataset.state = name; }

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function api(path, body) {
  const headers = { "Content-Type": "application/json" };
  const key = $("api-key").value;
  if (key) headers["X-API-Key"] = key;
  const init = body === undefined ? { headers } : { method: "POST", headers, body: JSON.stringify(body) };
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  if (response.status === 401) $("key-row").hidden = false;
  if (!response.ok) throw new Error(`${response.status}: ${data.detail || response.statusText}`);
  return data;
}

async function loadModel() {
  try {
    const m = await api("v1/model");
    state.model = m;
    const [lo, hi] = m.distance_range_px;
    const data = m.data.source || m.data.data_dir || "unknown data";
    $("model").textContent = `${m.family} (version ${m.family_version}), trained on ${lo}–${hi} px movements of ${data}`;
  } catch (e) {
    $("model").textContent = "model: unavailable";
    say(e.message + (String(e.message).startsWith("401") ? " (enter the API key, then click again)" : ""), true);
  }
}

// ----- input -------------------------------------------------------------------------------------
function canvasPoint(event) {  // the click in canvas pixels: inside the border, scaled if CSS resized the canvas
  const r = canvas.getBoundingClientRect();
  const x = event.clientX - r.left - canvas.clientLeft, y = event.clientY - r.top - canvas.clientTop;
  return [x * canvas.width / canvas.clientWidth, y * canvas.height / canvas.clientHeight];
}

canvas.addEventListener("click", (event) => {
  const p = canvasPoint(event);
  if (state.start === null || state.end !== null) {
    stopReplay();
    Object.assign(state, { start: p, end: null, movement: null, real: null, drawn: [] });
    setState("start");
    drawScene(0);
    say("now click the end point");
  } else {
    state.end = p;
    generate();
  }
});

$("typed").addEventListener("submit", (event) => {
  event.preventDefault();
  const d = Number($("distance").value), a = Number($("direction").value) * Math.PI / 180;
  const c = [canvas.width / 2, canvas.height / 2];
  stopReplay();
  state.start = [c[0] - d / 2 * Math.cos(a), c[1] - d / 2 * Math.sin(a)];
  state.end = [c[0] + d / 2 * Math.cos(a), c[1] + d / 2 * Math.sin(a)];
  generate();
});

function seed() {
  const s = $("seed").value.trim();
  return s === "" ? {} : { seed: Number(s) };
}

async function generate() {
  const body = { start: state.start, end: state.end, ...seed() };
  setState("loading");
  say("generating…");
  try {
    const [movement, real] = await Promise.all([
      api("v1/path", body), state.model && state.model.real_movements ? api("v1/real", body) : null]);
    Object.assign(state, { movement, real });
    showReal(real);
    say(`${movement.t_ms.length} points, ${Math.round(movement.t_ms.at(-1))} ms`);
    for (const id of ["replay", "download-json", "download-csv"]) $(id).disabled = false;
    replay();
  } catch (e) {
    setState("error");
    say(e.message, true);
  }
}

function showReal(real) {
  $("real-legend").hidden = !real;
  if (real) $("real-text").textContent = `real movement of ${real.user}, ${Math.round(real.distance_px)} px, ` +
    "turned toward the same end";
}

// ----- replay ------------------------------------------------------------------------------------
function pointsUntil(m, tMs) {
  const out = [];
  for (let i = 0; i < m.t_ms.length && m.t_ms[i] <= tMs; i++) out.push([m.x[i], m.y[i]]);
  return out;
}

function replay() {
  stopReplay();
  setState("replaying");
  const t0 = performance.now();
  const total = Math.max(state.movement.t_ms.at(-1), state.real ? state.real.t_ms.at(-1) : 0);
  const step = (now) => {
    const t = now - t0;
    drawScene(t);
    drawSpeed(t);
    if (t >= total) {
      state.frame = 0;
      setState("done");
    } else {
      state.frame = requestAnimationFrame(step);
    }
  };
  state.frame = requestAnimationFrame(step);
}

function stopReplay() {
  if (state.frame) cancelAnimationFrame(state.frame);
  state.frame = 0;
}

$("replay").addEventListener("click", () => state.movement && replay());

// ----- drawing -----------------------------------------------------------------------------------
function drawScene(tMs) {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (state.real) drawPath(pointsUntil(state.real, tMs), COLORS.real, [6, 4]);
  if (state.movement) {
    state.drawn = pointsUntil(state.movement, tMs);
    drawPath(state.drawn, COLORS.generated, []);
  }
  if (state.start) drawDot(state.start, COLORS.start);
  if (state.end) drawDot(state.end, COLORS.end);
}

function drawPath(points, color, dash) {
  if (points.length === 0) return;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.setLineDash(dash);
  ctx.beginPath();
  points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  ctx.stroke();
  ctx.restore();
  drawDot(points.at(-1), color, 3);
}

function drawDot([x, y], color, radius = 5) {
  ctx.fillStyle = color;
  ctx.beginPath();
  ctx.arc(x, y, radius, 0, 2 * Math.PI);
  ctx.fill();
}

// ----- speed over time ---------------------------------------------------------------------------
function speeds(m) {  // [t_ms at the step's end, px/ms] for steps with time between them
  const out = [];
  for (let i = 1; i < m.t_ms.length; i++) {
    const dt = m.t_ms[i] - m.t_ms[i - 1];
    if (dt > 0) out.push([m.t_ms[i], Math.hypot(m.x[i] - m.x[i - 1], m.y[i] - m.y[i - 1]) / dt]);
  }
  return out;
}

function drawSpeed(tMs) {
  const c = $("speed"), g = c.getContext("2d");
  const box = { left: 44, right: c.width - 10, top: 10, bottom: c.height - 30 };
  const sets = [[state.real, COLORS.real], [state.movement, COLORS.generated]].filter(([m]) => m);
  const all = sets.flatMap(([m]) => speeds(m));
  const tMax = Math.max(1, ...all.map(([t]) => t)), vMax = Math.max(0.1, ...all.map(([, v]) => v));
  const sx = (t) => box.left + (box.right - box.left) * t / tMax;
  const sy = (v) => box.bottom - (box.bottom - box.top) * v / vMax;
  g.clearRect(0, 0, c.width, c.height);
  drawAxes(g, box, tMax, vMax);
  for (const [m, color] of sets) {
    g.strokeStyle = color;
    g.lineWidth = 1.5;
    g.beginPath();
    speeds(m).forEach(([t, v], i) => (i ? g.lineTo(sx(t), sy(v)) : g.moveTo(sx(t), sy(v))));
    g.stroke();
  }
  g.strokeStyle = COLORS.end;
  g.beginPath();
  g.moveTo(sx(Math.min(tMs, tMax)), box.top);
  g.lineTo(sx(Math.min(tMs, tMax)), box.bottom);
  g.stroke();
}

function drawAxes(g, box, tMax, vMax) {
  g.strokeStyle = COLORS.axis;
  g.fillStyle = COLORS.axis;
  g.lineWidth = 1;
  g.font = "11px system-ui, sans-serif";
  g.strokeRect(box.left, box.top, box.right - box.left, box.bottom - box.top);
  g.fillText("0", box.left - 10, box.bottom + 12);
  g.fillText(`${Math.round(tMax)} ms`, box.right - 40, box.bottom + 12);
  g.fillText(`${vMax.toFixed(2)}`, 2, box.top + 10);
  g.fillText("px/ms", 2, box.top + 24);
  g.fillText("time", (box.left + box.right) / 2 - 12, box.bottom + 24);
}

// ----- downloads ---------------------------------------------------------------------------------
function download(name, type, text) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

$("download-json").addEventListener("click", () => {
  const m = state.movement;
  const body = { model: state.model && state.model.family, start: state.start, end: state.end, ...m };
  download("trajsynth_movement.json", "application/json", JSON.stringify(body, null, 1));
});

$("download-csv").addEventListener("click", () => {
  const m = state.movement;
  const rows = m.t_ms.map((t, i) => `${t},${m.x[i]},${m.y[i]}`);
  download("trajsynth_movement.csv", "text/csv", ["t_ms,x,y", ...rows].join("\n") + "\n");
});

loadModel();
drawSpeed(0);
