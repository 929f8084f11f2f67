/* The usage page's charts: reads the json_script "usage-data" and draws four Chart.js charts. */
(function () {
  "use strict";

  // Choosing a date means "Dates below" (a named period ignores the dates).
  const form = document.querySelector("[data-testid=usage-period-form]");
  if (form) {
    const period = form.querySelector("select[name=period]");
    form.querySelectorAll("input[type=date]").forEach((input) => {
      input.addEventListener("change", () => {
        if (period) period.value = "custom";
      });
    });
  }

  const source = document.getElementById("usage-data");
  if (!source || typeof window.Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const styles = getComputedStyle(document.documentElement);
  const primary = styles.getPropertyValue("--pico-primary").trim() || "#0172ad";
  const muted = styles.getPropertyValue("--pico-muted-color").trim() || "#7b8495";
  const grid = styles.getPropertyValue("--pico-muted-border-color").trim() || "#e7eaf0";

  // Tells a waiting browser test (and anything else) that the chart has been drawn.
  const markRendered = {
    id: "markRendered",
    afterRender(chart) {
      chart.canvas.dataset.rendered = "1";
    },
  };

  function shortDay(iso) {
    const [year, month, day] = iso.split("-").map(Number);
    return new Date(Date.UTC(year, month - 1, day)).toLocaleDateString([], { month: "short", day: "numeric", timeZone: "UTC" });
  }

  function draw(testid, config) {
    const canvas = document.querySelector(`canvas[data-testid="${testid}"]`);
    if (!canvas) return;
    const horizontal = config.indexAxis === "y";
    const valueAxis = { beginAtZero: true, ticks: { color: muted, precision: config.integer ? 0 : undefined }, grid: { color: grid } };
    const labelAxis = { ticks: { color: muted, autoSkip: true, maxRotation: 0 }, grid: { display: false } };
    new window.Chart(canvas, {
      type: config.type,
      data: {
        labels: config.labels,
        datasets: [{
          label: config.label,
          data: config.values,
          backgroundColor: primary,
          borderColor: primary,
          borderWidth: config.type === "line" ? 2 : 0,
          pointRadius: config.values.length > 45 ? 0 : 3,
          maxBarThickness: 48,
        }],
      },
      options: {
        indexAxis: config.indexAxis || "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: { duration: 300 },
        plugins: { legend: { display: false } },
        scales: horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis },
      },
      plugins: [markRendered],
    });
  }

  const days = data.days.map(shortDay);
  draw("chart-minutes-per-day", { type: "bar", labels: days, values: data.minutes_per_day, label: "Minutes" });
  draw("chart-calls-per-day", { type: "line", labels: days, values: data.calls_per_day, label: "Calls", integer: true });
  draw("chart-minutes-per-agent", { type: "bar", indexAxis: "y", labels: data.agents, values: data.minutes_per_agent, label: "Minutes" });
  draw("chart-calls-per-agent", { type: "bar", indexAxis: "y", labels: data.agents, values: data.calls_per_agent, label: "Calls", integer: true });
})();
