// uPlot time-series charts for the dashboard (uPlot is loaded as a classic script: window.uPlot).
import { fmt } from './format.js';

const AXIS = { stroke: '#8b95a3', grid: { stroke: '#232a34', width: 1 }, ticks: { stroke: '#2a313c', width: 1 } };
const HEIGHT = 210;

const last = (arr) => (arr && arr.length ? arr[arr.length - 1] : null);
// With the cursor off the chart (idx null) the legend shows the newest point.
const timeLabel = (u, v, _s, idx) => {
  const x = idx == null ? last(u.data[0]) : v;
  return x == null ? '–' : new Date(x * 1000).toLocaleTimeString([], { hour12: false });
};
const valueLabel = (u, v, sidx, idx) => fmt(idx == null ? last(u.data[sidx]) : v);

/**
 * A live chart in `el`: `series` = [{label, stroke, fill?}], x in seconds (window start).
 * Returns {set(xs, ...ys), destroy()}; the chart follows the element's width.
 */
export function liveChart(el, series) {
  const uPlot = window.uPlot;
  const opts = {
    width: Math.max(200, el.clientWidth || 600),
    height: HEIGHT,
    pxAlign: 0,
    cursor: { drag: { x: true, y: false, setScale: true } },
    legend: { live: true },
    scales: { x: { time: true } },
    axes: [
      { ...AXIS, space: 70 },
      { ...AXIS, size: 64, values: (_u, vals) => vals.map((v) => fmt(v)) },
    ],
    series: [
      { label: 'window start', value: timeLabel },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.stroke,
        fill: s.fill,
        width: 2,
        spanGaps: false,
        points: { show: true, size: 5, stroke: s.stroke, fill: s.stroke },
        value: valueLabel,
      })),
    ],
  };
  const empty = document.createElement('div');
  empty.className = 'empty';
  empty.textContent = 'no data for this selection yet';
  const chart = new uPlot(opts, [[], ...series.map(() => [])], el);
  el.appendChild(empty);
  const ro = new ResizeObserver(() => {
    const w = Math.max(200, el.clientWidth);
    if (w !== chart.width) chart.setSize({ width: w, height: HEIGHT });
  });
  ro.observe(el);
  return {
    set(xs, ...ys) {
      empty.hidden = xs.length > 0;
      chart.setData([xs, ...ys]);
      if (chart.cursor.idx == null) chart.setLegend({ idx: null });
    },
    destroy() {
      ro.disconnect();
      chart.destroy();
      empty.remove();
    },
  };
}
