// Prescient's dashboard: node, queue, tasks, task and signatures pages
// over the daemon's API (same origin), live over GET /v1/events. Charts
// with uPlot (vendor/, bundled by `make web`). No build step, no
// framework: one file of plain JavaScript.
'use strict';

(function () {
  const main = document.getElementById('main');
  const liveEl = document.getElementById('live');

  // window.prescient is what the page shows, for tests and the curious:
  // the page's name, its data, its charts and whether it has rendered.
  const state = window.prescient = { page: null, ready: false, data: null, charts: {}, events: 0, error: null };

  const COLORS = {
    capacity: '#8a939c', committed: '#d9822b', soft: '#6b8fd6', used: '#2a9d4b', machine: '#b4434b',
    p50: '#7b5ea7', upper: '#7b5ea7', band: 'rgba(123,94,167,0.16)', limit: '#d9822b',
  };
  const REASON_COLORS = {
    commit: '#d9822b', adjust_up: '#c0392b', adjust_down: '#2a7fbf', throttle: '#8e44ad', unthrottle: '#16a085',
    evict: '#000000', oom_retry: '#e67e22', release: '#7f8c8d', restore: '#34495e', lost: '#95a5a6',
  };
  const DIMS = [
    { key: 'cpu', name: 'CPU', unit: 'cores', limit: 'cpu_cores', amount: 'cpu_cores', digits: 2 },
    { key: 'memory', name: 'Memory', unit: 'MB', limit: 'memory_mb', amount: 'memory_mb', digits: 0 },
    { key: 'iops', name: 'Block IO', unit: 'ops/s', limit: 'iops', amount: 'iops', digits: 0 },
    { key: 'net', name: 'Network', unit: 'Mbps', limit: 'net_mbps', amount: 'net_mbps', digits: 1 },
  ];

  // --- helpers --------------------------------------------------------------

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'style') e.style.cssText = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids.flat()) {
      if (k == null || k === false) continue;
      e.append(k.nodeType ? k : document.createTextNode(String(k)));
    }
    return e;
  }

  async function getJSON(url) {
    const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    return r.json();
  }

  const pad = (n) => String(n).padStart(2, '0');
  function clock(d) {
    if (d == null) return '';
    if (!(d instanceof Date)) d = new Date(typeof d === 'number' ? d * 1000 : d);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function when(d) {
    if (!d) return '';
    const t = new Date(d);
    return t.toISOString().slice(0, 10) + ' ' + clock(t);
  }
  function num(v, digits) {
    if (v == null || Number.isNaN(v)) return '–';
    return Number(v).toFixed(digits == null ? 2 : digits);
  }
  function dur(s) {
    if (s == null) return '–';
    if (s < 60) return s.toFixed(1) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' m ' + Math.round(s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' m';
  }
  const pct = (r) => (r == null ? '–' : (r * 100).toFixed(1) + ' %');
  const short = (id) => (id ? id.slice(-8) : '');
  const stateTag = (s) => h('span', { class: 'state ' + s, text: s });
  const argv = (t) => (t.spec && t.spec.argv ? t.spec.argv.join(' ') : '');
  const terminal = (s) => s === 'succeeded' || s === 'failed' || s === 'cancelled';
  const unix = (d) => new Date(d).getTime() / 1000;

  function table(cols, rows) {
    return h('table', {},
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { class: c.num ? 'num' : null, text: c.name })))),
      h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => {
        const v = c.get(r);
        if (c.cls === 'argv') return h('td', {}, h('span', { class: 'argv', title: v, text: v }));
        return h('td', { class: c.num ? 'num' : c.cls || null }, v);
      })))));
  }

  // chart draws a uPlot chart into el; null (with a note) when the
  // library was not bundled.
  function chart(name, el, opts, data) {
    if (!window.uPlot) {
      el.append(h('p', { class: 'muted', text: 'Charts unavailable: the uPlot bundle is missing (build with make web).' }));
      return null;
    }
    const width = Math.max(el.clientWidth || 0, 320);
    const u = new window.uPlot(Object.assign({ width, height: 220, legend: { live: true } }, opts), data, el);
    state.charts[name] = u;
    return u;
  }

  function resizeCharts() {
    for (const u of Object.values(state.charts)) {
      const el = u.root.parentElement;
      if (el && el.clientWidth) u.setSize({ width: el.clientWidth, height: u.height });
    }
  }
  window.addEventListener('resize', () => { clearTimeout(resizeCharts.t); resizeCharts.t = setTimeout(resizeCharts, 150); });

  function destroyCharts() {
    for (const u of Object.values(state.charts)) u.destroy();
    state.charts = {};
  }

  const stepped = () => (window.uPlot ? window.uPlot.paths.stepped({ align: 1 }) : undefined);

  // --- pages ----------------------------------------------------------------

  // page runs a page: load() fetches and renders; it is called at once,
  // every `every` ms while the page is shown, and (debounced) on events
  // that `wants`.
  function page(name, load, every, wants) {
    let timer = null, debounce = null, stopped = false, busy = false;
    const alive = () => !stopped;
    const run = async () => {
      if (stopped || busy) return;
      busy = true;
      try {
        // A load that finds the page gone (the user moved on while it
        // fetched) returns false and must not touch the DOM or the state.
        if ((await load(alive)) !== false && !stopped) state.ready = true;
        state.error = null;
      } catch (e) {
        if (stopped) return;
        state.error = String(e.message || e);
        const old = main.querySelector('.loaderr');
        if (old) old.remove();
        main.prepend(h('p', { class: 'err loaderr', text: 'Could not load: ' + state.error }));
      } finally {
        busy = false;
      }
    };
    state.page = name;
    run();
    if (every) timer = setInterval(run, every);
    return {
      stop() { stopped = true; clearInterval(timer); clearTimeout(debounce); },
      onEvent(ev) {
        if (wants && !wants(ev)) return;
        clearTimeout(debounce);
        debounce = setTimeout(run, 500);
      },
    };
  }

  // Node: per dimension over the last hour, capacity, committed, soft
  // reserved and used, with the machine's own use beside them.
  function nodePage() {
    return page('node', async (alive) => {
      const rep = await getJSON('/v1/dashboard/node');
      if (!alive()) return false;
      const n = rep.node;
      destroyCharts();
      main.replaceChildren(
        h('h1', {}, 'Node ', h('span', { class: 'muted', text: `policy ${n.policy}, daemon pid ${n.pid}, up ${dur((Date.now() - new Date(n.started_at)) / 1000)}` })),
        h('p', {}, `running ${n.running} of ${n.max_running}, queued ${n.queued}` + (n.dims ? ` (${n.reserved || 0} holding a soft reservation)` : '') +
          (n.policy === 'predict' ? (n.model_version ? `; sequence models version ${n.model_version}` : '; no sequence models trained yet') : '')),
        table([
          { name: '', get: (d) => d.name + ' (' + d.unit + ')' },
          { name: 'capacity', num: true, get: (d) => num((n.dims || {})[d.key]?.capacity, d.digits) },
          { name: 'committed', num: true, get: (d) => num((n.dims || {})[d.key]?.committed, d.digits) },
          { name: 'soft reserved now', num: true, get: (d) => num((n.dims || {})[d.key]?.soft_reserved, d.digits) },
          { name: 'soft reserved peak', num: true, get: (d) => num((n.dims || {})[d.key]?.soft_peak, d.digits) },
          { name: 'used', num: true, get: (d) => num((n.dims || {})[d.key]?.used, d.digits) },
        ], DIMS),
      );
      const grid = h('div', { class: 'grid' });
      main.append(h('h2', { text: `Over the last ${dur(rep.t.length * rep.step_s)} (a point every ${rep.step_s} s)` }), grid);
      // All cards first, so that each chart is sized in its final column.
      const els = DIMS.map((d) => {
        const el = h('div', { class: 'chart', 'data-points': rep.t.length });
        grid.append(h('div', { class: 'card' }, h('h3', { text: `${d.name} (${d.unit})` }), el));
        return el;
      });
      DIMS.forEach((d, i) => {
        const el = els[i];
        const series = [{},
          { label: 'capacity', stroke: COLORS.capacity, dash: [6, 4], width: 1.5, points: { show: false } },
          { label: 'committed', stroke: COLORS.committed, width: 2, points: { show: false } },
          { label: 'soft reserved', stroke: COLORS.soft, fill: 'rgba(107,143,214,0.15)', width: 1.5, points: { show: false } },
          { label: 'used', stroke: COLORS.used, width: 2, points: { show: false } }];
        const data = [rep.t, rep.capacity[i], rep.committed[i], rep.soft_reserved[i], rep.used[i]];
        if (d.key === 'cpu' || d.key === 'memory') {
          series.push({ label: 'machine (all processes)', stroke: COLORS.machine, width: 1, dash: [2, 3], points: { show: false } });
          data.push(d.key === 'cpu' ? rep.machine_cpu_cores : rep.machine_memory_mb);
        }
        chart(d.key, el, { series, scales: { x: { time: true } }, axes: [{}, { size: 60 }] }, data);
      });
      const la = rep.loadavg_1m.length ? rep.loadavg_1m[rep.loadavg_1m.length - 1] : null;
      main.append(h('p', { class: 'legend-note', text: `Machine load average (1 min): ${num(la, 2)}. Committed: the hard limits of running tasks; soft reserved: the calendar's reservations of queued tasks now; used: what running tasks measurably use.` }));
      state.data = rep;
    }, 5000, () => true);
  }

  // Queue: running and queued tasks on a timeline of the calendar (the
  // Gantt of their reservations), then as a table.
  function queuePage() {
    return page('queue', async (alive) => {
      const rep = await getJSON('/v1/dashboard/live');
      if (!alive()) return false;
      const now = new Date(rep.now).getTime() / 1000;
      const ts = rep.tasks;
      destroyCharts();
      main.replaceChildren(h('h1', {}, 'Queue ', h('span', { class: 'muted', text: `${ts.filter((t) => t.state === 'running').length} running, ${ts.filter((t) => t.state === 'queued').length} queued shown` })));
      const bars = ts.map((t) => {
        const d = predictedDuration(t) || 60;
        let start = null, kind = 'waiting';
        if (t.started_at) { start = unix(t.started_at); kind = 'running'; }
        else if (t.reservation && t.reservation.held && t.reservation.start) { start = unix(t.reservation.start); kind = 'reserved'; }
        return { t, start, end: start == null ? null : Math.max(start + d, kind === 'running' ? now + 1 : 0), kind };
      });
      const placed = bars.filter((b) => b.start != null);
      const lo = Math.min(now - 60, ...placed.map((b) => b.start));
      const hi = Math.max(now + Math.max(rep.horizon_s, 120), ...placed.map((b) => b.end));
      const labelW = 240, width = Math.max(main.clientWidth - 4, 700), span = width - labelW - 10;
      const x = (s) => labelW + ((s - lo) / (hi - lo)) * span;
      const g = h('div', { class: 'gantt', 'data-bars': placed.length });
      const axis = h('div', { class: 'axis', style: `width:${width}px` });
      for (let i = 0; i <= 6; i++) {
        const s = lo + ((hi - lo) * i) / 6;
        axis.append(h('span', { style: `left:${x(s)}px`, text: clock(s) }));
      }
      g.append(axis);
      for (const b of bars) {
        const row = h('div', { class: 'row', style: `width:${width}px` },
          h('div', { class: 'label' }, h('a', { href: '#/task/' + b.t.id, text: short(b.t.id) }), ' ', argv(b.t)));
        if (b.start != null) {
          const soft = b.t.reservation ? b.t.reservation.soft : null;
          const lim = b.t.allocations && b.t.allocations.length ? b.t.allocations[b.t.allocations.length - 1].limits : null;
          const what = soft ? `${num(soft.cpu_cores, 2)} cores, ${num(soft.memory_mb, 0)} MB` : lim ? `${num(lim.cpu_cores, 2)} cores, ${num(lim.memory_mb, 0)} MB` : '';
          row.append(h('div', { class: 'bar ' + b.kind, title: `${b.t.id} ${b.kind} ${clock(b.start)}–${clock(b.end)} ${what}`,
            style: `left:${x(b.start)}px;width:${Math.max(x(b.end) - x(b.start), 3)}px`, text: what }));
        }
        g.append(row);
      }
      g.append(h('div', { class: 'now', style: `left:${x(now)}px`, title: 'now' }));
      main.append(g, h('p', { class: 'legend-note', text: 'Green: running (to its predicted end); blue: queued with a soft reservation at its planned start; tasks waiting for room or deferred have no bar. Bars without a prediction are drawn 60 s long.' }));
      main.append(h('h2', { text: 'Tasks' }), table([
        { name: 'task', get: (t) => h('a', { href: '#/task/' + t.id, text: t.id }) },
        { name: 'state', get: (t) => stateTag(t.state) },
        { name: 'priority', num: true, get: (t) => t.priority },
        { name: 'start', get: (t) => t.started_at ? clock(t.started_at) : t.reservation && t.reservation.start ? 'planned ' + clock(t.reservation.start) : t.reservation && t.reservation.deferred ? 'deferred' : 'waiting for room' },
        { name: 'predicted', num: true, get: (t) => predictedDuration(t) ? dur(predictedDuration(t)) : '–' },
        { name: 'cpu (cores)', num: true, get: (t) => num(holding(t).cpu_cores, 2) },
        { name: 'memory (MB)', num: true, get: (t) => num(holding(t).memory_mb, 0) },
        { name: 'model', get: (t) => t.prediction ? t.prediction.model : 'requests' },
        { name: 'command', cls: 'argv', get: (t) => argv(t) },
      ], ts));
      state.data = rep;
    }, 5000, () => true);
  }

  function predictedDuration(t) {
    if (!t.prediction) return 0;
    return t.prediction.steps.reduce((s, x) => s + x.duration_s, 0);
  }

  // holding is what a task holds: its hard limits when running, its soft
  // reservation (else its requests) when queued.
  function holding(t) {
    if (t.state === 'running' && t.allocations && t.allocations.length) return t.allocations[t.allocations.length - 1].limits;
    if (t.reservation && t.reservation.held) return t.reservation.soft;
    return t.requests || {};
  }

  // Tasks: the newest tasks.
  function tasksPage() {
    return page('tasks', async (alive) => {
      const ts = await getJSON('/v1/tasks?limit=200');
      if (!alive()) return false;
      destroyCharts();
      main.replaceChildren(h('h1', {}, 'Tasks ', h('span', { class: 'muted', text: `the ${ts.length} newest` })), table([
        { name: 'task', get: (t) => h('a', { href: '#/task/' + t.id, text: t.id }) },
        { name: 'state', get: (t) => stateTag(t.state) },
        { name: 'submitted', get: (t) => when(t.submitted_at) },
        { name: 'duration', num: true, get: (t) => (t.started_at ? dur(t.duration_s) : '–') },
        { name: 'peak cpu %', num: true, get: (t) => num(t.peak.cpu_pct, 1) },
        { name: 'peak MB', num: true, get: (t) => num(t.peak.memory_mb, 1) },
        { name: 'model', get: (t) => (t.prediction ? t.prediction.model : '') },
        { name: 'changes', num: true, get: (t) => (t.allocations ? t.allocations.length : 0) },
        { name: 'command', cls: 'argv', get: (t) => argv(t) },
      ], ts));
      state.data = ts;
    }, 10000, () => true);
  }

  // stepAt is the value of a step function (times ascending) at t.
  function stepAt(steps, t) {
    let v = null;
    for (const s of steps) {
      if (s.t > t) break;
      v = s.v;
    }
    return v;
  }

  // Task: per dimension, the predicted band (p50 to the upper quantile),
  // the allocation as a step line with each change marked by its reason,
  // and the measured use; then the changes, the events and the logs.
  function taskPage(id) {
    const events = [];
    let shownState = null;
    const p = page('task', async (alive) => {
      const fetched0 = performance.now();
      const rep = await getJSON('/v1/dashboard/task/' + encodeURIComponent(id));
      if (!alive()) return false;
      const fetched1 = performance.now();
      const t = rep.task, c = rep.curve;
      shownState = t.state;
      destroyCharts();
      const allocs = (t.allocations || []).map((a) => Object.assign({ ts: unix(a.time) }, a));
      const t0 = t.started_at ? unix(t.started_at) : (c.t.length ? c.t[0] : (t.reservation && t.reservation.start ? unix(t.reservation.start) : null));
      // The predicted curve's steps from the start.
      const pred = [];
      if (t.prediction && t0 != null) {
        let at = t0;
        for (const s of t.prediction.steps) { pred.push({ t: at, s }); at += s.duration_s; }
        pred.push({ t: at, s: null });
      }
      const end = t.finished_at ? unix(t.finished_at) : Date.now() / 1000;
      const xs = new Set(c.t);
      for (const a of allocs) xs.add(a.ts);
      for (const q of pred) xs.add(q.t);
      if (t0 != null) { xs.add(t0); xs.add(Math.max(end, t0)); }
      const x = Array.from(xs).sort((a, b) => a - b);
      const sampleAt = new Map(c.t.map((v, i) => [v, i]));

      main.replaceChildren(
        h('h1', {}, 'Task ', h('span', { class: 'mono', text: t.id }), ' ', stateTag(t.state)),
        h('dl', { class: 'kv' },
          h('dt', { text: 'command' }), h('dd', { class: 'mono', text: argv(t) }),
          h('dt', { text: 'signature' }), h('dd', { class: 'mono', text: t.signature }),
          h('dt', { text: 'submitted' }), h('dd', { text: when(t.submitted_at) }),
          h('dt', { text: 'started' }), h('dd', { text: t.started_at ? when(t.started_at) : '–' }),
          h('dt', { text: 'finished' }), h('dd', { text: t.finished_at ? when(t.finished_at) + ` after ${dur(t.duration_s)}` : '–' }),
          h('dt', { text: 'outcome' }), h('dd', { text: t.error || (t.exit_code != null ? 'exit ' + t.exit_code : t.state) }),
          h('dt', { text: 'prediction' }), h('dd', { text: t.prediction ? `${t.prediction.model}: ${t.prediction.steps.length} steps over ${dur(predictedDuration(t))}, band p50 to p${Math.round(t.prediction.upper_quantile * 100)}` : 'none (sized by its requests)' }),
          h('dt', { text: 'samples' }), h('dd', { text: String(c.t.length) + (t.retries ? `; retried ${t.retries} times` : '') }),
        ),
      );
      const grid = h('div', { class: 'grid' });
      main.append(h('h2', { text: 'Predicted, allocated and used' }), grid);
      const shownDims = DIMS.filter((d) => d.key === 'cpu' || d.key === 'memory' ||
        c[d.key].some((v) => v != null && v > 0) || allocs.some((a) => a.limits[d.limit] > 0));
      const els = shownDims.map((d) => {
        const el = h('div', { class: 'chart', 'data-dim': d.key });
        grid.append(h('div', { class: 'card' }, h('h3', { text: `${d.name} (${d.unit})` }), el));
        return el;
      });
      for (const [k, d] of shownDims.entries()) {
        const used = x.map((v) => { const i = sampleAt.get(v); return i == null ? null : c[d.key][i]; });
        const limSteps = allocs.map((a) => ({ t: a.ts, v: a.reason === 'release' ? null : (a.limits[d.limit] || null) }));
        const limit = x.map((v) => (v > end + 0.001 ? null : stepAt(limSteps, v)));
        const p50Steps = pred.map((q) => ({ t: q.t, v: q.s ? q.s.p50[d.amount] : null }));
        const upSteps = pred.map((q) => ({ t: q.t, v: q.s ? q.s.upper[d.amount] : null }));
        const p50 = x.map((v) => stepAt(p50Steps, v));
        const up = x.map((v) => stepAt(upSteps, v));
        const nSamples = used.filter((v) => v != null).length;
        const el = els[k];
        el.dataset.samples = nSamples;
        el.dataset.allocations = allocs.length;
        const markers = allocs;
        chart(d.key, el, {
          scales: { x: { time: true } },
          axes: [{}, { size: 60 }],
          series: [{},
            { label: 'predicted p50', stroke: COLORS.p50, width: 1.5, paths: stepped(), spanGaps: false, points: { show: false } },
            { label: 'predicted upper', stroke: COLORS.upper, width: 1, dash: [4, 3], paths: stepped(), spanGaps: false, points: { show: false } },
            { label: 'allocated (hard limit)', stroke: COLORS.limit, width: 2, paths: stepped(), spanGaps: false, points: { show: false } },
            { label: 'used', stroke: COLORS.used, width: 2, spanGaps: true, points: { show: nSamples < 120 } }],
          bands: [{ series: [2, 1], fill: COLORS.band }],
          plugins: [markerPlugin(markers)],
        }, [x, p50, up, limit, used]);
      }
      main.append(h('h2', { text: 'Allocation changes' }), allocs.length ? table([
        { name: 'time', get: (a) => clock(a.ts) + '.' + String(Math.round((a.ts % 1) * 1000)).padStart(3, '0') },
        { name: 'reason', get: (a) => h('span', { class: 'reason', style: `background:${REASON_COLORS[a.reason] || '#555'}`, text: a.reason }) },
        { name: 'cpu (cores)', num: true, get: (a) => (a.limits.cpu_cores ? num(a.limits.cpu_cores, 3) : 'none') },
        { name: 'memory (MB)', num: true, get: (a) => (a.limits.memory_mb ? num(a.limits.memory_mb, 0) : 'none') },
        { name: 'soft memory (MB)', num: true, get: (a) => (a.soft_memory_mb ? num(a.soft_memory_mb, 0) + (a.soft_applied ? '' : ' (not set)') : '–') },
        { name: 'detail', get: (a) => a.detail || '' },
      ], allocs) : h('p', { class: 'muted', text: 'None (the fit policy holds declared limits, or the task has not started).' }));
      const evs = [{ at: unix(t.submitted_at), what: 'submitted' }];
      if (t.started_at) evs.push({ at: unix(t.started_at), what: 'started' + (t.attempt ? ` (attempt ${t.attempt + 1})` : '') });
      for (const a of allocs) evs.push({ at: a.ts, what: a.reason + (a.detail ? ': ' + a.detail : '') });
      if (t.finished_at) evs.push({ at: unix(t.finished_at), what: `${t.state}` + (t.error ? ': ' + t.error : t.exit_code != null ? `, exit ${t.exit_code}` : '') });
      for (const e of events) evs.push(e);
      evs.sort((a, b) => a.at - b.at);
      main.append(h('h2', { text: 'Events' }), table([
        { name: 'time', get: (e) => clock(e.at) },
        { name: 'event', get: (e) => e.what },
      ], evs));
      const logs = h('div', { class: 'grid' });
      main.append(h('h2', { text: 'Logs (the last 200 lines)' }), logs);
      for (const stream of ['stdout', 'stderr']) {
        const pre = h('pre', { class: 'log', 'data-stream': stream, text: '…' });
        logs.append(h('div', { class: 'card' }, h('h3', { text: stream }), pre));
        fetch(`/v1/tasks/${encodeURIComponent(id)}/logs?stream=${stream}`, { credentials: 'same-origin' })
          .then((r) => (r.ok ? r.text() : r.json().then((e) => Promise.reject(new Error(e.error)))))
          .then((s) => { const lines = s.split('\n'); pre.textContent = lines.slice(-201).join('\n') || '(empty)'; })
          .catch((e) => { pre.textContent = 'unavailable: ' + e.message; });
      }
      state.data = rep;
      state.task = { id: t.id, state: t.state, samples: c.t.length, allocations: allocs.map((a) => a.reason) };
      state.timing = { fetch_ms: fetched1 - fetched0, render_ms: performance.now() - fetched1, since_navigation_ms: performance.now() };
    }, 2000, (ev) => ev.task.id === id);
    // While the task runs, the page polls (samples and allocation
    // changes are not events); once it has ended, only events reload it.
    const stopPoll = setInterval(() => { if (terminal(shownState)) p.stop(); }, 1000);
    return {
      stop() { clearInterval(stopPoll); p.stop(); },
      onEvent(ev) {
        if (ev.task.id !== id) return;
        events.push({ at: Date.now() / 1000, what: 'event: ' + ev.task.state });
        p.onEvent(ev);
      },
    };
  }

  // markerPlugin draws a dashed vertical line at each allocation change,
  // labelled with its reason.
  function markerPlugin(allocs) {
    return {
      hooks: {
        draw: [(u) => {
          const ctx = u.ctx;
          const { top, height } = u.bbox;
          ctx.save();
          ctx.font = `${Math.round(10 * devicePixelRatio)}px sans-serif`;
          ctx.textBaseline = 'top';
          let lastX = -1e9, row = 0;
          for (const a of allocs) {
            const px = u.valToPos(a.ts, 'x', true);
            if (px < u.bbox.left - 1 || px > u.bbox.left + u.bbox.width + 1) continue;
            const color = REASON_COLORS[a.reason] || '#555';
            ctx.strokeStyle = color;
            ctx.fillStyle = color;
            ctx.setLineDash([3 * devicePixelRatio, 3 * devicePixelRatio]);
            ctx.lineWidth = devicePixelRatio;
            ctx.beginPath();
            ctx.moveTo(px, top);
            ctx.lineTo(px, top + height);
            ctx.stroke();
            row = px - lastX < 70 * devicePixelRatio ? (row + 1) % 4 : 0;
            ctx.fillText(a.reason, px + 3 * devicePixelRatio, top + 2 * devicePixelRatio + row * 12 * devicePixelRatio);
            lastX = px;
          }
          ctx.restore();
        }],
      },
    };
  }

  // Signatures: runs per signature, the model serving it, its recent
  // prediction error and slack.
  function signaturesPage() {
    return page('signatures', async (alive) => {
      const sigs = await getJSON('/v1/dashboard/signatures');
      if (!alive()) return false;
      destroyCharts();
      main.replaceChildren(h('h1', {}, 'Signatures ', h('span', { class: 'muted', text: `${sigs.length} among the newest tasks` })), table([
        { name: 'signature', get: (s) => h('span', { class: 'mono', title: s.signature, text: s.signature.slice(0, 12) }) },
        { name: 'runs', num: true, get: (s) => s.runs },
        { name: 'ok', num: true, get: (s) => s.succeeded },
        { name: 'failed', num: true, get: (s) => s.failed },
        { name: 'active', num: true, get: (s) => s.active },
        { name: 'model', get: (s) => s.model },
        { name: 'error cpu', num: true, get: (s) => pct(s.error_cpu) },
        { name: 'error memory', num: true, get: (s) => pct(s.error_memory) },
        { name: 'slack cpu', num: true, get: (s) => pct(s.slack_cpu) },
        { name: 'slack memory', num: true, get: (s) => pct(s.slack_memory) },
        { name: 'mean duration', num: true, get: (s) => (s.scored ? dur(s.mean_duration_s) : '–') },
        { name: 'last', get: (s) => when(s.last_at) },
        { name: 'command', cls: 'argv', get: (s) => (s.argv || []).join(' ') },
      ], sigs), h('p', { class: 'legend-note', text: `Error: |predicted median peak − measured peak| / measured peak; slack: 1 − mean use / mean hard limit held; both over each signature's ${20} newest succeeded runs.` }));
      state.data = sigs;
    }, 15000, (ev) => terminal(ev.task.state));
  }

  // --- routing and the event stream -----------------------------------------

  const routes = [
    [/^#?\/?$/, nodePage], [/^#\/node$/, nodePage], [/^#\/queue$/, queuePage], [/^#\/tasks$/, tasksPage],
    [/^#\/task\/([0-9A-Za-z]+)$/, taskPage], [/^#\/signatures$/, signaturesPage],
  ];
  let current = null;
  function route() {
    if (current) current.stop();
    destroyCharts();
    state.ready = false;
    state.task = null;
    state.timing = null;
    state.data = null;
    const hash = location.hash || '#/node';
    for (const [re, fn] of routes) {
      const m = hash.match(re);
      if (m) {
        current = fn(...m.slice(1));
        for (const a of document.querySelectorAll('nav a')) a.classList.toggle('on', a.dataset.page === state.page);
        return;
      }
    }
    current = null;
    main.replaceChildren(h('p', { class: 'err', text: 'No such page: ' + hash }));
  }
  window.addEventListener('hashchange', route);

  // The event stream holds one of the browser's few connections to this
  // host (six over HTTP/1.1): it is closed when the page is hidden for good
  // or put in the back-forward cache, and opened again when it is shown.
  let es = null;
  window.addEventListener('pagehide', () => { if (es) { es.close(); es = null; } });
  window.addEventListener('pageshow', (e) => { if (e.persisted && !es) connect(); });

  function connect() {
    es = new EventSource('/v1/events', { withCredentials: true });
    es.onopen = () => { liveEl.textContent = '● live'; liveEl.classList.add('on'); };
    es.onerror = () => { liveEl.textContent = '○ reconnecting'; liveEl.classList.remove('on'); };
    es.addEventListener('task', (e) => {
      state.events++;
      let ev;
      try { ev = JSON.parse(e.data); } catch (_) { return; }
      if (current && current.onEvent) current.onEvent(ev);
    });
  }

  route();
  connect();
})();
