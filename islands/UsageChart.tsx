// Credits used per UTC day over the last 30 days. The server renders the numbers as a table
// (readable without JavaScript and by screen readers); in the browser uPlot draws the chart.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import type { UsageDay } from "../components/types.ts";

export type UsageChartProps = { usage: UsageDay[] };

function drawChart(container: HTMLElement, usage: UsageDay[]): uPlot {
  const xs = usage.map((day) => Date.parse(`${day.day}T00:00:00Z`) / 1000);
  const ys = usage.map((day) => day.used);
  const width = Math.max(280, container.clientWidth);
  return new uPlot(
    {
      width,
      height: 200,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(5, max)] } },
      legend: { show: false },
      series: [
        {},
        {
          label: "Credits used",
          stroke: "#0172ad",
          fill: "rgba(1, 114, 173, 0.25)",
          paths: uPlot.paths.bars?.({ size: [0.8, 40] }),
        },
      ],
      axes: [{}, { label: "credits" }],
    },
    [xs, ys],
    container,
  );
}

export function UsageChart({ usage }: UsageChartProps) {
  const canvasHolder = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const holder = canvasHolder.current;
    if (!holder) return;
    const chart = drawChart(holder, usage);
    const resize = () => chart.setSize({ width: Math.max(280, holder.clientWidth), height: 200 });
    globalThis.addEventListener("resize", resize);
    return () => {
      globalThis.removeEventListener("resize", resize);
      chart.destroy();
    };
  }, [usage]);
  const total = usage.reduce((sum, day) => sum + day.used, 0);
  return (
    <figure>
      <div
        ref={canvasHolder}
        class="chart"
        role="img"
        aria-label={`Bar chart of credits used per day; ${total} in 30 days`}
      />
      <figcaption>{total} credits used in the last 30 days (UTC days).</figcaption>
      <details>
        <summary>Usage per day as a table</summary>
        <table id="usage-table">
          <thead>
            <tr>
              <th scope="col">Day</th>
              <th scope="col" class="number">Credits used</th>
            </tr>
          </thead>
          <tbody>
            {usage.filter((day) => day.used > 0).map((day) => (
              <tr key={day.day} data-day={day.day}>
                <td>{day.day}</td>
                <td class="number">{day.used}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
