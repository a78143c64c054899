// mpmeter console: draws the usage chart from the JSON the page embeds
// (#usage-data), with Chart.js. Everything else is plain HTML and htmx.
(function () {
  'use strict';
  const palette = ['#0b5cad', '#d1495b', '#2a9d8f', '#e9a03b', '#6a4c93', '#3d5a80', '#8d6e63', '#c2185b', '#558b2f', '#00838f'];
  function drawUsage() {
    const canvas = document.getElementById('usage-chart');
    const data = document.getElementById('usage-data');
    if (!canvas || !data || !window.Chart) return;
    const d = JSON.parse(data.textContent);
    const chart = new window.Chart(canvas, {
      type: 'bar',
      data: {
        labels: d.labels,
        datasets: d.series.map((s, i) => ({ label: s.label, data: s.data, backgroundColor: palette[i % palette.length], stack: 'usage' })),
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        scales: { x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true } }, y: { stacked: true, beginAtZero: true, title: { display: true, text: 'quantity' } } },
        plugins: { legend: { position: 'bottom' } },
      },
    });
    // For tests and the curious: what the chart holds.
    canvas.dataset.series = String(d.series.length);
    canvas.dataset.total = String(d.series.reduce((n, s) => n + s.data.reduce((a, b) => a + b, 0), 0));
    window.mpmeterUsageChart = chart;
  }
  document.addEventListener('DOMContentLoaded', drawUsage);
})();
