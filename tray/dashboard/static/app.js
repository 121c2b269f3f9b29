// tray dashboard: plain JavaScript, no build step. Each page is a function that fetches
// the REST API and renders HTML; the current page refreshes every few seconds. State kept
// in the page is bounded (the Metrics page keeps the server's bounded history only).
"use strict";

const REFRESH_MS = 3000;
const main = document.getElementById("main");
let timer = null;
let pageState = {};

const esc = (v) => String(v === null || v === undefined ? "" : v)
  .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const state = (s) => `<span class="state ${esc(s)}">${esc(s)}</span>`;
const fmtBytes = (n) => {
  if (!n) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(n < 10 && i ? 1 : 0)} ${u[i]}`;
};
const fmtTime = (ms) => ms ? new Date(ms).toLocaleTimeString() : "";

async function api(path) {
  const r = await fetch(path, {credentials: "same-origin"});
  if (r.status === 401) { location.href = "/login?next=/"; throw new Error("401"); }
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  const ct = r.headers.get("content-type") || "";
  return ct.includes("json") ? r.json() : r.text();
}
const rows = async (resource, query = "") =>
  (await api(`/api/v0/${resource}?limit=10000&detail=true${query}`)).data.result.result;

function table(cols, data, empty = "nothing yet") {
  if (!data.length) return `<p class="muted">${empty}</p>`;
  const head = cols.map((c) => `<th>${esc(c[0])}</th>`).join("");
  const body = data.map((r) => "<tr>" + cols.map((c) => `<td${c[2] ? ` class="${c[2]}"` : ""}>${c[1](r)}</td>`)
    .join("") + "</tr>").join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}
const card = (k, v) => `<div class="card"><div class="v">${v}</div><div class="k">${esc(k)}</div></div>`;
const bar = (used, total) => `<div class="bar" title="${used} / ${total}"><span style="width:${
  total ? Math.min(100, 100 * used / total).toFixed(1) : 0}%"></span></div>`;

// ------------------------------------------------------------------------- pages

async function overview() {
  const [status, jobs, tasks, actors] = await Promise.all([
    api("/api/cluster_status"), api("/api/jobs/"), rows("tasks"), rows("actors")]);
  const s = status.data.clusterStatus;
  const used = s.resources_used, total = s.resources_total;
  const storeUsed = Object.values(s.object_stores).reduce((a, x) => a + (x.used || 0), 0);
  const storeTotal = Object.values(s.object_stores).reduce((a, x) => a + (x.budget || 0), 0);
  const running = jobs.filter((j) => j.status === "RUNNING" || j.status === "PENDING");
  const failures = [...tasks.filter((t) => t.state === "FAILED").map((t) => ({what: `task ${t.name}`, why: t.error_message || t.error_type, when: t.end_time_ms})),
    ...actors.filter((a) => a.state === "DEAD" && a.death_cause && !/tray\.kill/.test(a.death_cause)).map((a) => ({what: `actor ${a.class_name}`, why: a.death_cause, when: null})),
    ...jobs.filter((j) => j.status === "FAILED").map((j) => ({what: `job ${j.submission_id}`, why: j.message, when: j.end_time}))]
    .slice(-20).reverse();
  return `<h2>Overview</h2><div class="cards">
    ${card("nodes alive", s.alive)}${card("CPUs used", `${(used.CPU || 0)} / ${(total.CPU || 0)}`)}
    ${card("memory reserved", `${fmtBytes(used.memory || 0)} / ${fmtBytes(total.memory || 0)}`)}
    ${card("object store", `${fmtBytes(storeUsed)} / ${fmtBytes(storeTotal)}`)}
    ${card("running jobs", running.length)}${card("actors alive", actors.filter((a) => a.state === "ALIVE").length)}</div>
    <section><h2>Nodes</h2>${table([["node", (n) => esc(n.node_id)], ["ip", (n) => esc(n.node_ip)],
      ["state", (n) => state(n.state)], ["head", (n) => n.is_head_node ? "yes" : ""],
      ["CPU", (n) => bar((n.resources_total.CPU || 0) - (n.resources_available.CPU || 0), n.resources_total.CPU || 0)],
      ["resources", (n) => esc(JSON.stringify(n.resources_total))]], s.nodes)}</section>
    <section><h2>Running jobs</h2>${table([["submission", (j) => esc(j.submission_id)], ["status", (j) => state(j.status)],
      ["entrypoint", (j) => esc(j.entrypoint)]], running, "no job is running")}</section>
    <section><h2>Recent failures</h2>${table([["what", (f) => esc(f.what)], ["why", (f) => esc(f.why), "wrap"],
      ["when", (f) => fmtTime(f.when)]], failures, "no failures")}</section>`;
}

async function jobs() {
  const [list, drivers] = await Promise.all([api("/api/jobs/"), rows("jobs")]);
  const sel = pageState.job;
  let detail = "";
  if (sel) {
    const job = list.find((j) => j.submission_id === sel);
    const logs = await api(`/api/jobs/${encodeURIComponent(sel)}/logs`);
    // the job's own drivers: its entrypoint's script, started after the job was
    const driverJobs = drivers.filter((d) => d.submission_id === sel || (job && d.entrypoint &&
      job.entrypoint.includes(d.entrypoint.split(" ")[0].split("/").pop()) && d.start_time >= job.start_time));
    const tasks = driverJobs.length ? await rows("tasks", driverJobs.map((d) => `&filter=job_id=${d.job_id}`).slice(0, 1).join("")) : [];
    const counts = {};
    tasks.forEach((t) => { counts[t.state] = (counts[t.state] || 0) + 1; });
    detail = `<section id="job-detail"><h2>Job ${esc(sel)} ${job ? state(job.status) : ""}</h2>
      <p>${esc(job ? job.message : "")}</p>
      <p>Tasks by state: ${Object.entries(counts).map(([k, v]) => `${state(k)} ${v}`).join(" ") || "<span class=muted>none</span>"}
      ${driverJobs.length ? ` &middot; <a class="link" href="/api/v0/timeline?job_id=${esc(driverJobs[0].job_id)}" download="timeline.json">timeline (Chrome trace)</a>` : ""}</p>
      <pre class="log" id="job-log">${esc(logs.logs)}</pre></section>`;
  }
  return `<h2>Jobs</h2><section>${table([
    ["submission", (j) => `<a class="link" data-job="${esc(j.submission_id)}">${esc(j.submission_id)}</a>`],
    ["status", (j) => state(j.status)], ["entrypoint", (j) => esc(j.entrypoint)],
    ["started", (j) => fmtTime(j.start_time)], ["ended", (j) => fmtTime(j.end_time)],
    ["message", (j) => esc(j.message), "wrap"]], list.slice().reverse(), "no jobs submitted")}</section>
    <section><h2>Drivers</h2>${table([["job id", (d) => esc(d.job_id)], ["status", (d) => state(d.status)],
      ["entrypoint", (d) => esc(d.entrypoint)], ["namespace", (d) => esc(d.namespace)]], drivers)}</section>${detail}`;
}

async function actors() {
  const list = await rows("actors");
  const sel = pageState.actor;
  let detail = "";
  if (sel) {
    const a = list.find((x) => x.actor_id === sel);
    if (a) {
      const files = (await api(`/api/v0/logs?node_id=${encodeURIComponent(a.node_id)}`)).data.result[a.node_id] || {};
      const mine = [...(files.worker_out || []), ...(files.worker_err || [])].filter((f) => f.pid === a.pid);
      const texts = await Promise.all(mine.map((f) => api(`/api/v0/logs/file?node_id=${a.node_id}&filename=${f.name}&lines=200`)));
      detail = `<section id="actor-detail"><h2>Actor ${esc(a.class_name)} ${state(a.state)}</h2>
        <p>restarts: ${a.num_restarts} &middot; pid ${esc(a.pid)} &middot; node ${esc(a.node_id)}</p>
        ${a.death_cause ? `<p>death cause: ${esc(a.death_cause)}</p>` : ""}
        ${mine.map((f, i) => `<h3>${esc(f.name)}</h3><pre class="log">${esc(texts[i])}</pre>`).join("") || "<p class=muted>no logs</p>"}</section>`;
    }
  }
  return `<h2>Actors</h2><section>${table([
    ["actor", (a) => `<a class="link" data-actor="${esc(a.actor_id)}">${esc(a.actor_id)}</a>`],
    ["class", (a) => esc(a.class_name)], ["name", (a) => esc(a.name)], ["state", (a) => state(a.state)],
    ["restarts", (a) => esc(a.num_restarts)], ["pid", (a) => esc(a.pid)], ["node", (a) => esc(a.node_id)],
    ["death cause", (a) => esc(a.death_cause), "wrap"]], list)}</section>${detail}`;
}

async function tasks() {
  const f = pageState.taskFilter || {state: "", name: ""};
  let q = "";
  if (f.state) q += `&filter=state=${encodeURIComponent(f.state)}`;
  if (f.name) q += `&filter=func_or_class_name=${encodeURIComponent(f.name)}`;
  const list = await rows("tasks", q);
  const states = ["", "PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "RUNNING", "FINISHED", "FAILED"];
  return `<h2>Tasks</h2><div class="filters">state <select id="task-state">${states.map((s) =>
      `<option${s === f.state ? " selected" : ""}>${s}</option>`).join("")}</select>
    function <input id="task-name" value="${esc(f.name)}" placeholder="name"><button id="task-apply">filter</button></div>
    <section>${table([["task", (t) => esc(t.task_id)], ["name", (t) => esc(t.name)], ["state", (t) => state(t.state)],
      ["type", (t) => esc(t.type)], ["job", (t) => esc(t.job_id)], ["node", (t) => esc(t.node_id)],
      ["pid", (t) => esc(t.worker_pid)], ["error", (t) => esc(t.error_message || t.error_type || ""), "wrap"]],
      list.slice(-500).reverse())}</section>`;
}

async function cluster() {
  const [nodes, workers] = await Promise.all([rows("nodes"), rows("workers")]);
  const status = (await api("/api/cluster_status")).data.clusterStatus;
  return `<h2>Cluster</h2><section><h2>Nodes</h2>${table([["node", (n) => esc(n.node_id)], ["state", (n) => state(n.state)],
      ["ip", (n) => esc(n.node_ip)], ["head", (n) => n.is_head_node ? "yes" : ""],
      ["CPU used", (n) => `${(n.resources_total.CPU || 0) - (n.resources_available.CPU || 0)} / ${n.resources_total.CPU || 0}`],
      ["memory", (n) => fmtBytes(n.resources_total.memory || 0)],
      ["host CPU", (n) => { const h = status.node_stats[n.node_id]; return h ? `${bar(h.cpu_percent, 100)} ${h.cpu_percent.toFixed(0)}%` : ""; }],
      ["host memory", (n) => { const h = status.node_stats[n.node_id]; return h ? `${fmtBytes(h.mem_used)} / ${fmtBytes(h.mem_total)}` : ""; }],
      ["node RSS", (n) => { const h = status.node_stats[n.node_id]; return h ? `${fmtBytes(h.procs_rss)} (${h.procs} processes)` : ""; }],
      ["object store", (n) => { const st = status.object_stores[n.node_id] || {}; return `${fmtBytes(st.used)} / ${fmtBytes(st.budget)}`; }]],
      nodes)}</section>
    <section><h2>Workers</h2>${table([["worker", (w) => esc(w.worker_id)], ["type", (w) => esc(w.worker_type)],
      ["alive", (w) => w.is_alive ? state("ALIVE") : state("DEAD")], ["pid", (w) => esc(w.pid)], ["node", (w) => esc(w.node_id)],
      ["job", (w) => esc(w.job_id)], ["actor", (w) => esc(w.actor_id)]], workers)}</section>`;
}

async function logs() {
  const listing = (await api("/api/v0/logs")).data.result;
  const sel = pageState.log;
  let view = "";
  if (sel) {
    const text = await api(`/api/v0/logs/file?node_id=${encodeURIComponent(sel.node)}&filename=${encodeURIComponent(sel.name)}&lines=1000`);
    view = `<section><h2>${esc(sel.name)} <span class="muted">(node ${esc(sel.node)}, tailing)</span></h2><pre class="log" id="log-view">${esc(text)}</pre></section>`;
  }
  const files = [];
  Object.entries(listing).forEach(([node, cats]) => Object.values(cats).forEach((fs) => fs.forEach((f) => files.push({...f, node}))));
  return `<h2>Logs</h2><section>${table([["file", (f) => `<a class="link" data-log="${esc(f.node)}|${esc(f.name)}">${esc(f.name)}</a>`],
    ["node", (f) => esc(f.node)], ["pid", (f) => esc(f.pid)], ["size", (f) => fmtBytes(f.size)]], files, "no log files")}</section>${view}`;
}

async function metrics() {
  const samples = (await api("/api/metrics/series")).data.samples;
  const series = (fn) => samples.map((s) => [s.ts, fn(s)]);
  const charts = [
    ["Tasks running", series((s) => s.tasks.RUNNING || 0)],
    ["Tasks finished (recent)", series((s) => s.tasks.FINISHED || 0)],
    ["Actors alive", series((s) => s.actors.ALIVE || 0)],
    ["CPUs in use", series((s) => s.cpus_used)],
    ["Object store bytes", series((s) => s.store_used)],
    ["Hosts CPU % (mean over machines)", series((s) => s.host_cpu_percent)],
    ["Hosts memory used", series((s) => s.host_mem_used)],
  ];
  const nodeIds = new Set();
  samples.forEach((s) => Object.keys(s.nodes || {}).forEach((k) => nodeIds.add(k)));
  nodeIds.forEach((n) => charts.push([`Node ${n}: host CPU %`, series((s) => ((s.nodes || {})[n] || {}).cpu_percent || 0)]));
  const appNames = new Set();
  samples.forEach((s) => Object.keys(s.app || {}).forEach((k) => appNames.add(k)));
  appNames.forEach((n) => charts.push([n, series((s) => (s.app || {})[n] || 0)]));
  pageState.charts = charts;
  return `<h2>Metrics</h2><p class="muted">Sampled every few seconds while this page is open; Prometheus text at
    <a class="link" href="/metrics">/metrics</a>.</p><div class="charts">${charts.map((c, i) =>
    `<section><h2>${esc(c[0])}</h2><canvas id="chart-${i}" width="600" height="180"></canvas></section>`).join("")}</div>`;
}

function drawCharts() {
  (pageState.charts || []).forEach(([, pts], i) => {
    const cv = document.getElementById(`chart-${i}`);
    if (!cv) return;
    const g = cv.getContext("2d"), W = cv.width, H = cv.height, pad = 30;
    g.clearRect(0, 0, W, H);
    g.strokeStyle = "#ccd"; g.strokeRect(pad, 5, W - pad - 5, H - pad);
    if (!pts.length) return;
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y1 = Math.max(...ys, 1);
    g.fillStyle = "#556"; g.font = "11px sans-serif";
    g.fillText(y1 >= 1e6 ? fmtBytes(y1) : String(+y1.toFixed(2)), 2, 14); g.fillText("0", 2, H - pad);
    g.strokeStyle = "#2563c9"; g.lineWidth = 2; g.beginPath();
    pts.forEach(([x, y], j) => {
      const px = pad + (W - pad - 5) * (x - x0) / (x1 - x0), py = 5 + (H - pad) * (1 - y / y1);
      if (j) g.lineTo(px, py); else g.moveTo(px, py);
    });
    g.stroke();
  });
}

async function serve() {
  const d = await api("/api/serve/applications/");
  const apps = Object.values(d.applications);
  if (!d.controller_info) return `<h2>Serve</h2><p class="muted">Serve is not running on this cluster (serve.run starts it).</p>`;
  const proxy = d.http_options ? `HTTP proxy on ${esc(d.http_options.host)}:${esc(d.http_options.port)}` : "no HTTP proxy";
  const sections = apps.map((a) => `<section><h2>${esc(a.name)} ${state(a.status)}</h2>
    <p class="muted">route ${esc(a.route_prefix || "(none)")}, ingress ${esc(a.ingress)}${a.message ? `: ${esc(a.message)}` : ""}</p>
    ${table([["deployment", (x) => esc(x.name)], ["status", (x) => state(x.status)], ["target replicas", (x) => esc(x.target_num_replicas)],
      ["replicas", (x) => Object.entries(x.replica_states).map(([k, v]) => `${state(k)} ${v}`).join(" ")],
      ["message", (x) => esc(x.message), "wrap"]], Object.values(a.deployments), "no deployments")}</section>`).join("");
  return `<h2>Serve</h2><p class="muted">${proxy}</p><section><h2>Applications</h2>${table([["application", (a) => esc(a.name)],
    ["status", (a) => state(a.status)], ["route", (a) => esc(a.route_prefix)],
    ["deployments", (a) => Object.keys(a.deployments).length],
    ["last deployed", (a) => fmtTime(a.last_deployed_time_s * 1000)]], apps, "no applications")}</section>${sections}`;
}

const PAGES = {overview, jobs, actors, tasks, cluster, logs, metrics, serve};

async function render() {
  const page = (location.hash.replace(/^#\//, "").split("?")[0]) || "overview";
  const fn = PAGES[page] || overview;
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  try {
    const html = await fn();
    const logEl = document.querySelector("pre.log");
    const keepScroll = logEl && logEl.scrollTop + logEl.clientHeight < logEl.scrollHeight - 5;
    main.innerHTML = html;
    main.dataset.page = page;
    document.querySelectorAll("pre.log").forEach((el) => { if (!keepScroll) el.scrollTop = el.scrollHeight; });
    if (page === "metrics") drawCharts();
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e.message !== "401") main.innerHTML = `<section class="error">could not load: ${esc(e.message)}</section>`;
  }
}

main.addEventListener("click", (ev) => {
  const t = ev.target;
  if (t.dataset.job) { pageState.job = t.dataset.job; render(); }
  else if (t.dataset.actor) { pageState.actor = t.dataset.actor; render(); }
  else if (t.dataset.log) { const [node, name] = t.dataset.log.split("|"); pageState.log = {node, name}; render(); }
  else if (t.id === "task-apply") {
    pageState.taskFilter = {state: document.getElementById("task-state").value, name: document.getElementById("task-name").value.trim()};
    render();
  }
});

function schedule() {
  clearInterval(timer);
  timer = setInterval(() => { if (!document.hidden) render(); }, REFRESH_MS);
}
window.addEventListener("hashchange", () => { pageState = {taskFilter: pageState.taskFilter}; render(); schedule(); });
render();
schedule();
