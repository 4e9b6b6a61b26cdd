// The statistics page (office/stats.html): draws the two charts from #stats-data.
import { stackedBars, rateBars } from "./charts.js";

const data = JSON.parse(document.getElementById("stats-data").textContent);
const series = [
  { key: "on_time", label: "Đúng hạn", color: "#1e7b34" },
  { key: "late", label: "Trễ hạn", color: "#d97706" },
  { key: "in_progress", label: "Đang xử lý", color: "#3b6fd1" },
  { key: "overdue", label: "Quá hạn", color: "#b3261e" },
];
stackedBars(document.getElementById("chart-status"), data.rows, series);
rateBars(document.getElementById("chart-rate"), data.rows);
