// The Weir live dashboard: one series (history + live results over SSE) and a top-K table.
//
// URL parameters (all optional; kept up to date as the selection changes):
//   metric, key, window            the series to chart
//   by, k, order, scope            the top-K table (it ranks the series' metric and window unless
//   topMetric, topWindow           these say otherwise)
//   token                          API token: stored in localStorage and sent as access_token
import { apiUrl, getJSON, initToken } from './api.js';
import { liveChart } from './charts.js';
import { fmt, fmtTime } from './format.js';

const HISTORY_MS = 15 * 60_000;
const TOP_REFRESH_MS = 1000;
const CATALOG_REFRESH_MS = 5000;
const KEYS_REFRESH_MS = 10_000;
const RANK_FIELDS = ['count', 'rate', 'sum', 'min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'p999'];
const DEFAULT_WINDOWS = [{ name: '10s', sizeMs: 10_000 }, { name: '1m', sizeMs: 60_000 }];

const $ = (id) => document.getElementById(id);
const tid = (name) => document.querySelector(`[data-testid="${name}"]`);

// ---- page state ---------------------------------------------------------------------------

const params = new URLSearchParams(window.location.search);
const state = {
  windows: DEFAULT_WINDOWS,
  metrics: [], // from the catalog
  series: {
    metric: params.get('metric') ?? '',
    key: params.get('key') ?? '',
    window: params.get('window') ?? '',
    gen: 0, // bumped on every selection change; stale callbacks compare and bail out
    es: null,
    retry: 0,
    points: new Map(), // window start -> point
  },
  top: {
    metric: params.get('topMetric') ?? '',
    window: params.get('topWindow') ?? '',
    follow: !params.get('topMetric') && !params.get('topWindow'), // follows the series' metric and window
    by: RANK_FIELDS.includes(params.get('by')) ? params.get('by') : 'count',
    k: clampK(Number(params.get('k') ?? 10)),
    order: params.get('order') === 'asc' ? 'asc' : 'desc',
    scope: params.get('scope') === 'final' ? 'final' : 'current',
    timer: 0,
    inFlight: false,
    again: false,
  },
};

function clampK(k) {
  return Number.isInteger(k) && k >= 1 ? Math.min(k, 1000) : 10;
}

// ---- errors shown in the banner, per source -------------------------------------------------

const errors = new Map();
function setError(source, err) {
  if (err) errors.set(source, err instanceof Error ? err.message : String(err));
  else errors.delete(source);
  const b = $('banner');
  b.hidden = errors.size === 0;
  b.textContent = [...errors.values()].join(' · ');
}

// ---- selects ------------------------------------------------------------------------------

function fillSelect(sel, values, current, label = (v) => v) {
  const want = values.map(String);
  const have = [...sel.options].map((o) => o.value);
  if (want.join('\u0000') !== have.join('\u0000')) {
    sel.replaceChildren(
      ...values.map((v) => {
        const o = document.createElement('option');
        o.value = String(v);
        o.textContent = label(v);
        return o;
      }),
    );
  }
  if (current !== undefined) sel.value = current;
}

function metricNames() {
  const names = new Set(state.metrics.map((m) => m.metric));
  if (state.series.metric) names.add(state.series.metric);
  if (state.top.metric) names.add(state.top.metric);
  return [...names].sort();
}

function keysOf(metric, window) {
  const m = state.metrics.find((x) => x.metric === metric && x.window === window);
  return m ? m.keys : undefined;
}

function renderPickers() {
  const names = metricNames();
  const windowNames = state.windows.map((w) => w.name);
  const label = (m) => {
    const n = keysOf(m, state.series.window || windowNames[0]);
    return n === undefined ? m : `${m} (${n} keys)`;
  };
  fillSelect($('metric'), names, state.series.metric, label);
  fillSelect($('top-metric'), names, state.top.metric, label);
  fillSelect($('window'), windowNames, state.series.window);
  fillSelect($('top-window'), windowNames, state.top.window);
}

function syncUrl() {
  const s = state.series;
  const t = state.top;
  const q = new URLSearchParams();
  if (s.metric) q.set('metric', s.metric);
  if (s.key) q.set('key', s.key);
  if (s.window) q.set('window', s.window);
  if (!t.follow) {
    q.set('topMetric', t.metric);
    q.set('topWindow', t.window);
  }
  if (t.by !== 'count') q.set('by', t.by);
  if (t.k !== 10) q.set('k', String(t.k));
  if (t.order !== 'desc') q.set('order', t.order);
  if (t.scope !== 'current') q.set('scope', t.scope);
  const qs = q.toString();
  window.history.replaceState(null, '', qs ? `?${qs}` : window.location.pathname);
}

// ---- catalog --------------------------------------------------------------------------------

async function loadCatalog() {
  try {
    const c = await getJSON('/v1/catalog');
    if (Array.isArray(c.windows) && c.windows.length) state.windows = [...c.windows].sort((a, b) => a.sizeMs - b.sizeMs);
    state.metrics = c.metrics ?? [];
    tid('pipeline').textContent = c.pipeline ?? '–';
    tid('watermark').textContent = c.watermark > 0 ? fmtTime(c.watermark) : '–';
    setError('catalog', null);
  } catch (err) {
    setError('catalog', err);
  }
}

function windowSizeMs(name) {
  return state.windows.find((w) => w.name === name)?.sizeMs ?? DEFAULT_WINDOWS.find((w) => w.name === name)?.sizeMs;
}

// ---- series view ----------------------------------------------------------------------------

let rateChart;
let pctChart;

function setStreamStatus(s) {
  const el = tid('stream-status');
  el.textContent = s;
  el.dataset.state = s;
}

/** A point from a live result (SSE or /v1/latest). */
function pointOfResult(r) {
  return { start: r.start, count: r.count, rate: r.rate, p50: r.p50, p95: r.p95, p99: r.p99, final: r.final, revision: r.revision, emittedAt: r.emittedAt ?? 0, source: 'live' };
}

/** A point from a QuestDB row (/v1/series): a fired window, rate derived from the window length. */
function pointOfRow(row, sizeMs) {
  return { start: row.ts, count: row.count, rate: sizeMs ? row.count / (sizeMs / 1000) : null, p50: row.p50, p95: row.p95, p99: row.p99, final: true, revision: -Infinity, emittedAt: 0, source: 'history' };
}

/**
 * Merges a live result into the series: the same window start replaces the point, except that a
 * partial never replaces a fired window, and an older result never replaces a newer one.
 */
function applyResult(r) {
  const s = state.series;
  if (r.metric !== s.metric || r.key !== s.key || r.window !== s.window) return;
  const p = pointOfResult(r);
  const old = s.points.get(p.start);
  if (old) {
    if (p.final) {
      if (old.final && old.revision > p.revision) return;
    } else if (old.final || old.emittedAt > p.emittedAt) return;
  }
  s.points.set(p.start, p);
  scheduleRender();
}

/** History fills windows the live results have not covered (live is never older). */
function applyHistory(rows) {
  const s = state.series;
  const size = windowSizeMs(s.window);
  for (const row of rows) if (!s.points.has(row.ts)) s.points.set(row.ts, pointOfRow(row, size));
  scheduleRender();
}

let renderTimer = 0;
function scheduleRender() {
  if (!renderTimer) renderTimer = setTimeout(renderSeries, 50);
}

function setReadout(name, value, text = fmt(value)) {
  const el = tid(name);
  el.textContent = text;
  if (value === null || value === undefined) delete el.dataset.value;
  else el.dataset.value = String(value);
}

function renderSeries() {
  renderTimer = 0;
  const s = state.series;
  const all = [...s.points.values()].sort((a, b) => a.start - b.start);
  // Keep the last 15 minutes (by window start, relative to the newest).
  if (all.length) {
    const horizon = all[all.length - 1].start - HISTORY_MS;
    while (all.length && all[0].start < horizon) s.points.delete(all.shift().start);
  }
  const xs = all.map((p) => p.start / 1000);
  rateChart.set(xs, all.map((p) => p.rate));
  pctChart.set(xs, all.map((p) => p.p50), all.map((p) => p.p95), all.map((p) => p.p99));

  const last = all[all.length - 1];
  setReadout('points-count', all.length);
  setReadout('latest-start', last?.start, last ? fmtTime(last.start) : '–');
  const st = tid('latest-state');
  st.textContent = !last ? '–' : !last.final ? 'partial' : last.revision > 0 ? `final (rev ${last.revision})` : 'final';
  st.dataset.state = !last ? '' : last.final ? 'final' : 'partial';
  setReadout('latest-count', last?.count);
  setReadout('latest-rate', last?.rate);
  setReadout('latest-p50', last?.p50);
  setReadout('latest-p95', last?.p95);
  setReadout('latest-p99', last?.p99);
}

async function loadHistory(gen) {
  const s = state.series;
  const q = { metric: s.metric, key: s.key, window: s.window };
  const [series, latest] = await Promise.allSettled([
    getJSON('/v1/series', { ...q, from: Date.now() - HISTORY_MS }),
    getJSON('/v1/latest', q),
  ]);
  if (gen !== s.gen) return;
  if (latest.status === 'fulfilled') for (const r of latest.value.results ?? []) applyResult(r);
  if (series.status === 'fulfilled') applyHistory(series.value.points ?? []);
  const failed = [series, latest].find((x) => x.status === 'rejected');
  setError('series', failed ? failed.reason : null);
}

function closeStream() {
  const s = state.series;
  if (s.es) {
    s.es.close();
    s.es = null;
  }
}

/** Subscribes to the live results of the selected series (the stream opens before history loads, so nothing falls in between). */
function openStream(gen) {
  const s = state.series;
  const es = new EventSource(apiUrl('/v1/stream', { metric: s.metric, key: s.key, window: s.window }));
  s.es = es;
  let readyBefore = false;
  setStreamStatus('connecting');
  es.addEventListener('ready', () => {
    if (gen !== s.gen) return;
    s.retry = 0;
    setStreamStatus('live');
    setError('stream', null);
    // After a reconnect, results may have been missed: fill them from history and the live view.
    if (readyBefore) loadHistory(gen).catch(() => undefined);
    readyBefore = true;
  });
  es.addEventListener('result', (e) => {
    if (gen !== s.gen) return;
    try {
      applyResult(JSON.parse(e.data));
    } catch {
      /* a malformed message changes nothing */
    }
  });
  es.addEventListener('error', (e) => {
    if (gen !== s.gen) return;
    if (e.data) {
      // The server cut us off (too slow): start over with history.
      let why = 'stream closed by the server';
      try {
        why = JSON.parse(e.data).message ?? why;
      } catch {
        /* keep the default */
      }
      setError('stream', why);
      restartStream(gen, 1000);
      return;
    }
    if (es.readyState === EventSource.CLOSED) {
      // Refused (e.g. 401/403/400): ask the API what is wrong, then retry with backoff.
      setStreamStatus('closed');
      getJSON('/v1/latest', { metric: s.metric, key: s.key, window: s.window })
        .then(() => setError('stream', 'live stream refused'))
        .catch((err) => setError('stream', err));
      restartStream(gen, Math.min(30_000, 1000 * 2 ** s.retry++));
    } else {
      setStreamStatus('reconnecting');
    }
  });
}

function restartStream(gen, delay) {
  closeStream();
  setTimeout(() => {
    if (gen !== state.series.gen) return;
    openStream(gen);
    loadHistory(gen).catch(() => undefined);
  }, delay);
}

/** (Re)starts the series view for the current selection: stream first, then history and latest. */
function startSeries() {
  const s = state.series;
  const gen = ++s.gen;
  closeStream();
  s.points = new Map();
  s.retry = 0;
  syncUrl();
  renderSeries();
  if (!s.metric || !s.key || !s.window) {
    setStreamStatus('idle');
    return;
  }
  openStream(gen);
  loadHistory(gen).catch((err) => setError('series', err));
}

async function loadKeys() {
  const s = state.series;
  if (!s.metric) return;
  try {
    const a = await getJSON('/v1/top', { metric: s.metric, window: s.window, by: 'count', k: 50 });
    const list = $('keys');
    list.replaceChildren(
      ...(a.entries ?? []).map((e) => {
        const o = document.createElement('option');
        o.value = e.key;
        return o;
      }),
    );
    // No key chosen yet: chart the busiest one.
    if (!s.key && a.entries?.length) {
      s.key = a.entries[0].key;
      $('key').value = s.key;
      startSeries();
    }
  } catch {
    /* the datalist is a convenience; the top-K panel reports errors */
  }
}

// ---- top-K view -----------------------------------------------------------------------------

function setTopStatus(s) {
  const el = tid('top-status');
  el.textContent = s;
  el.dataset.state = s;
}

function topRow(tbody, i) {
  let tr = tbody.children[i];
  if (tr && tr.dataset.testid === 'top-row') return tr;
  tr = document.createElement('tr');
  tr.dataset.testid = 'top-row';
  const cells = [
    ['rank', 'top-rank'],
    ['key', 'top-key'],
    ['num by', 'top-value'],
    ['num', 'top-count'],
    ['num', 'top-rate'],
    ['num', 'top-p99'],
  ];
  for (const [cls, id] of cells) {
    const td = document.createElement('td');
    td.className = cls;
    td.dataset.testid = id;
    if (cls === 'key') td.appendChild(document.createElement('button')).type = 'button';
    tr.appendChild(td);
  }
  tbody.insertBefore(tr, tbody.children[i] ?? null);
  return tr;
}

function setCell(td, value, text = fmt(value)) {
  if (td.textContent !== text) td.textContent = text;
  td.dataset.value = value === null || value === undefined ? '' : String(value);
}

function renderTop(a) {
  const t = state.top;
  const tbody = $('top-body');
  const entries = a?.entries ?? [];
  $('top-by-head').textContent = `by ${t.by}`;
  // Rows are updated in place (not rebuilt), so a click is never lost to a refresh.
  [...tbody.querySelectorAll('tr:not([data-testid="top-row"])')].forEach((r) => r.remove());
  entries.forEach((e, i) => {
    const tr = topRow(tbody, i);
    tr.dataset.key = e.key;
    tr.classList.toggle('selected', e.key === state.series.key && t.metric === state.series.metric && t.window === state.series.window);
    const [rank, key, value, count, rate, p99] = tr.children;
    setCell(rank, i + 1, String(i + 1));
    const btn = key.firstChild;
    if (btn.textContent !== e.key) btn.textContent = e.key;
    btn.title = `chart ${e.key}`;
    key.dataset.value = e.key;
    setCell(value, e[t.by]);
    setCell(count, e.count);
    setCell(rate, e.rate);
    setCell(p99, e.p99);
  });
  while (tbody.querySelectorAll('tr[data-testid="top-row"]').length > entries.length) tbody.lastElementChild.remove();
  if (!entries.length) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = 6;
    td.className = 'empty';
    td.textContent = t.metric ? 'no keys in this window yet' : 'pick a metric';
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
  const partial = entries.some((e) => !e.final);
  tid('top-meta').textContent = a
    ? `window ${a.start == null ? '–' : fmtTime(a.start)} · ${!entries.length ? 'no results' : partial ? 'open (partial)' : 'fired'} · ${a.candidates ?? 0} keys ranked by ${t.by} ${t.order === 'asc' ? '(lowest first)' : ''}`.trim()
    : '–';
}

async function refreshTop() {
  const t = state.top;
  // One call at a time; a change while one is out re-runs right after it.
  if (t.inFlight) {
    t.again = true;
    return;
  }
  clearTimeout(t.timer);
  if (!t.metric) {
    renderTop(null);
    setTopStatus('idle');
  } else {
    t.inFlight = true;
    const asked = `${t.metric}|${t.window}|${t.by}|${t.k}|${t.order}|${t.scope}`;
    try {
      const a = await getJSON('/v1/top', { metric: t.metric, window: t.window, by: t.by, k: t.k, order: t.order, scope: t.scope });
      if (asked === `${t.metric}|${t.window}|${t.by}|${t.k}|${t.order}|${t.scope}`) {
        renderTop(a);
        setTopStatus('ok');
        setError('top', null);
      }
    } catch (err) {
      setTopStatus('error');
      setError('top', err);
    } finally {
      t.inFlight = false;
    }
  }
  if (t.again) {
    t.again = false;
    refreshTop();
    return;
  }
  t.timer = setTimeout(refreshTop, TOP_REFRESH_MS);
}

// ---- wiring ---------------------------------------------------------------------------------

function selectSeries(metric, key, window) {
  const s = state.series;
  const changed = metric !== s.metric || key !== s.key || window !== s.window;
  const metricChanged = metric !== s.metric || window !== s.window;
  s.metric = metric;
  s.key = key;
  s.window = window;
  $('metric').value = metric;
  $('key').value = key;
  $('window').value = window;
  if (state.top.follow && (state.top.metric !== metric || state.top.window !== window)) {
    state.top.metric = metric;
    state.top.window = window;
    renderPickers();
    refreshTop();
  }
  if (metricChanged) loadKeys();
  if (changed) startSeries();
}

function bind() {
  $('series-form').addEventListener('submit', (e) => e.preventDefault());
  $('top-form').addEventListener('submit', (e) => e.preventDefault());
  $('metric').addEventListener('change', () => selectSeries($('metric').value, state.series.key, state.series.window));
  $('window').addEventListener('change', () => selectSeries(state.series.metric, state.series.key, $('window').value));
  const key = $('key');
  const commitKey = () => {
    const v = key.value.trim();
    if (v !== state.series.key) selectSeries(state.series.metric, v, state.series.window);
  };
  key.addEventListener('change', commitKey);
  key.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') commitKey();
  });
  // Picking from the datalist fires `input` (not `change` until blur): take exact matches at once.
  key.addEventListener('input', () => {
    if ([...$('keys').options].some((o) => o.value === key.value)) commitKey();
  });

  const t = state.top;
  const onTop = () => {
    t.metric = $('top-metric').value;
    t.window = $('top-window').value;
    t.follow = t.metric === state.series.metric && t.window === state.series.window;
    t.by = $('top-by').value;
    t.order = $('top-order').value;
    t.scope = $('top-scope').value;
    t.k = clampK(Number($('top-k').value));
    syncUrl();
    refreshTop();
  };
  for (const id of ['top-metric', 'top-window', 'top-by', 'top-order', 'top-scope', 'top-k']) $(id).addEventListener('change', onTop);

  $('top-body').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-testid="top-row"]');
    if (!tr?.dataset.key) return;
    selectSeries(t.metric, tr.dataset.key, t.window);
    if (window.matchMedia('(max-width: 1100px)').matches) document.querySelector('.series').scrollIntoView({ behavior: 'smooth' });
  });
}

async function main() {
  initToken();
  if (typeof window.uPlot !== 'function') {
    setError('assets', 'uPlot did not load (/assets/uplot.iife.min.js)');
    return;
  }
  rateChart = liveChart($('chart-rate'), [{ label: 'rate /s', stroke: '#5aa9ff', fill: 'rgba(90,169,255,0.12)' }]);
  pctChart = liveChart($('chart-pct'), [
    { label: 'p50', stroke: '#3fb950' },
    { label: 'p95', stroke: '#d29922' },
    { label: 'p99', stroke: '#f85149' },
  ]);
  fillSelect($('top-by'), RANK_FIELDS, state.top.by);
  $('top-order').value = state.top.order;
  $('top-scope').value = state.top.scope;
  $('top-k').value = String(state.top.k);
  bind();

  await loadCatalog();
  const s = state.series;
  const windows = state.windows.map((w) => w.name);
  if (!windows.includes(s.window)) s.window = windows[0];
  if (!s.metric) s.metric = metricNames()[0] ?? '';
  const t = state.top;
  if (t.follow) {
    t.metric = s.metric;
    t.window = s.window;
  } else {
    t.metric ||= s.metric;
    if (!windows.includes(t.window)) t.window = s.window;
  }
  renderPickers();
  $('key').value = s.key;
  startSeries();
  refreshTop();
  loadKeys();

  setInterval(async () => {
    await loadCatalog();
    if (!state.series.metric && state.metrics.length) selectSeries(metricNames()[0], state.series.key, state.series.window);
    renderPickers();
  }, CATALOG_REFRESH_MS);
  setInterval(loadKeys, KEYS_REFRESH_MS);
}

// Read-only view of what the charts hold, for debugging from the console (and the tests).
window.weirDashboard = {
  selection: () => ({ metric: state.series.metric, key: state.series.key, window: state.series.window }),
  points: () => [...state.series.points.values()].sort((a, b) => a.start - b.start).map((p) => ({ ...p })),
};

main().catch((err) => setError('page', err));
