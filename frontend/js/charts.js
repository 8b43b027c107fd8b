// Charts for the dashboard, drawn by Chart.js (served by the app itself at /vendor/chart.umd.min.js, see
// webcare/frontend.py), each with the same numbers as a table beside it for screen readers and for reading
// them exactly. The library loads when a chart is first shown, so the inbox never waits for it.
import { fill, h } from "./dom.js";
import { language, t } from "./i18n.js";

const LIBRARY = "/vendor/chart.umd.min.js";
/** Told apart by hue and lightness both; each meets 3:1 against white. */
export const PALETTE = ["#0b5cad", "#b3235d", "#1a6b36", "#8a5300", "#5b3d99", "#00707a", "#a13a00", "#4d5660"];

let loading = null;

/** Chart.js, once its script has loaded; null when it cannot be had (then the tables carry the numbers). */
export function loadChartLibrary() {
  if (window.Chart) return Promise.resolve(window.Chart);
  loading ??= new Promise((resolve) => {
    const script = h("script", { src: LIBRARY, onload: () => resolve(window.Chart || null),
      onerror: () => { loading = null; resolve(null); } });
    document.head.appendChild(script);
  }).then((Chart) => {
    if (Chart) {
      Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
      Chart.defaults.color = "#555e68";
      Chart.defaults.animation = false;
    }
    return Chart;
  });
  return loading;
}

// Durations: seconds in, words out ("45 s", "12 min", "2.5 h", "3 days").

function unitFormat(unit, digits) {
  return new Intl.NumberFormat(language(), { style: "unit", unit, unitDisplay: unit === "day" ? "long" : "short",
    maximumFractionDigits: digits });
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const s = Math.abs(seconds);
  if (s < 90) return unitFormat("second", 0).format(Math.round(s));
  if (s < 90 * 60) return unitFormat("minute", s < 600 ? 1 : 0).format(s / 60);
  if (s < 48 * 3600) return unitFormat("hour", 1).format(s / 3600);
  return unitFormat("day", 1).format(s / 86400);
}

/** A step for a duration axis up to `max` seconds that lands on whole minutes, hours or days. */
function durationStep(max) {
  const steps = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 432000, 604800];
  const wanted = Math.max(max, 60) / 5;
  return steps.find((step) => step >= wanted) || 1209600;
}

export function formatCount(n) {
  if (n === null || n === undefined) return "–";
  return new Intl.NumberFormat(language()).format(n);
}

/**
 * One chart in a <figure>: a heading, the canvas (role img, named), and a table of the same numbers.
 *   new ChartFigure({ name: "first-response", title: () => t(...), type: "line", values: "duration",
 *                     stacked: false, horizontal: false, rowHeader: () => t("dash.day") })
 *   figure.set({ labels: [...], datasets: [{ label, data, color }] })
 * `data` are the API's own numbers (seconds for durations, counts), null where there is none.
 */
export class ChartFigure {
  constructor(options) {
    this.options = options;
    this.chart = null;
    this.data = { labels: [], datasets: [] };
    this.heading = h("h2", { class: "card-title", id: `chart-${options.name}-title` });
    this.canvas = h("canvas", { role: "img" });
    this.empty = h("p", { class: "chart-empty", hidden: true });
    this.summary = h("summary");
    this.table = h("div", { class: "table-wrap" });
    this.details = h("details", { class: "chart-table" }, this.summary, this.table);
    this.el = h("figure", { class: `card chart-card chart-${options.name}`, dataset: { chart: options.name },
      "aria-labelledby": this.heading.id },
    this.heading, h("div", { class: `chart-box${options.horizontal ? " chart-box-tall" : ""}` }, this.canvas),
    this.empty, this.details);
    this.relabel();
  }

  relabel() {
    this.heading.textContent = this.options.title();
    this.summary.textContent = t("chart.table");
    this.canvas.setAttribute("aria-label", `${this.options.title()}. ${t("chart.see_table")}`);
    this.empty.textContent = t("chart.empty");
  }

  /** Draw with Chart.js from now on (null: the library is not there; the table opens instead). */
  attach(Chart) {
    this.Chart = Chart;
    if (!Chart) {
      this.details.open = true;
      this.canvas.parentElement.hidden = true;
    }
    this.draw();
  }

  set(data) {
    this.data = data;
    this.draw();
  }

  draw() {
    const { labels, datasets } = this.data;
    const nothing = !datasets.some((d) => d.data.some((v) => v !== null && v !== undefined && v !== 0));
    this.empty.hidden = !nothing;
    fill(this.table, this.tableEl());
    if (!this.Chart) return;
    const config = this.config();
    if (this.chart) {
      this.chart.data = config.data;
      this.chart.options = config.options;
      this.chart.update();
    } else {
      this.chart = new this.Chart(this.canvas, config);
    }
  }

  config() {
    const { type, values, stacked, horizontal } = this.options;
    const format = values === "duration" ? formatDuration : formatCount;
    const max = Math.max(0, ...this.data.datasets.flatMap((d) => d.data.filter((v) => typeof v === "number")));
    const valueAxis = {
      // An empty chart still gets a sensible axis (an hour, or a count of 4) rather than one of a few seconds.
      beginAtZero: true, stacked: Boolean(stacked), suggestedMax: max ? undefined : values === "duration" ? 3600 : 4,
      ticks: { callback: (v) => (v === 0 ? "0" : format(v)), precision: 0,
        ...(values === "duration" ? { stepSize: durationStep(max) } : {}) },
    };
    const labelAxis = { stacked: Boolean(stacked), ticks: { autoSkip: true, maxRotation: 0 } };
    return {
      type,
      data: {
        labels: this.data.labels,
        datasets: this.data.datasets.map((d) => ({
          label: d.label, data: d.data, borderColor: d.color, backgroundColor: d.color,
          pointRadius: 3, spanGaps: true, tension: 0.2, borderWidth: 2, maxBarThickness: 28,
        })),
      },
      options: {
        locale: language(), responsive: true, maintainAspectRatio: false,
        indexAxis: horizontal ? "y" : "x",
        interaction: { mode: "index", intersect: false },
        scales: horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${format(item.raw)}` } },
        },
      },
    };
  }

  tableEl() {
    const { labels, datasets } = this.data;
    const format = this.options.values === "duration" ? formatDuration : formatCount;
    return h("table", { class: "figures" },
      h("caption", { class: "sr-only" }, this.options.title()),
      h("thead", null, h("tr", null, h("th", { scope: "col" }, this.options.rowHeader()),
        datasets.map((d) => h("th", { scope: "col" }, d.label)))),
      h("tbody", null, labels.map((label, i) => h("tr", null, h("th", { scope: "row" }, label),
        datasets.map((d) => h("td", { dataset: { value: d.data[i] ?? "" } }, format(d.data[i])))))));
  }

  destroy() {
    this.chart?.destroy();
    this.chart = null;
  }
}
