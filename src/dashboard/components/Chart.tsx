// A uPlot chart that follows its container's width and redraws when its data
// changes (no rebuild). `markers` draws coloured ticks on the time axis
// (pattern alerts, predictions) with a uPlot draw hook. The legend shows the
// latest values while the cursor is off the plot, the hovered ones on it.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface Marker {
  /** Seconds since the epoch. */
  t: number;
  /** CSS colour. */
  color: string;
  /** 'bar': a tick from the bottom; 'dot': a circle at the top. */
  shape: 'bar' | 'dot';
}

export interface ChartProps {
  /** [x (s), ...series] */
  data: uPlot.AlignedData;
  series: Array<{ label: string; stroke: string; scale?: string; width?: number; dash?: number[] }>;
  height?: number;
  /** y range per scale (default y: auto). */
  ranges?: Record<string, [number, number]>;
  markers?: readonly Marker[];
  label: string;
}

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const time = (s: number) => new Date(s * 1000).toLocaleTimeString(undefined, { hour12: false });

/** The last value that is not null (a gap or a missing rate): what the legend shows off the plot. */
function lastValue(values: ArrayLike<number | null | undefined> | undefined): number | null {
  if (!values) return null;
  for (let i = values.length - 1; i >= 0; i--) {
    const v = values[i];
    if (v !== null && v !== undefined) return v;
  }
  return null;
}

/**
 * A legend value: uPlot calls `series.value` with `idx` null when the cursor
 * leaves the plot and after every setData while it is off it (its default
 * then shows `--`); that case shows the series' latest value instead.
 */
function legendValue(format: (v: number) => string): uPlot.Series.Value {
  return (u: uPlot, raw: number | null, seriesIdx: number, idx: number | null) => {
    const v = idx === null ? lastValue(u.data[seriesIdx]) : raw;
    return v === null || v === undefined ? '--' : format(v);
  };
}

/** Canvas needs real colours: `var(--x)` is resolved against the page's theme. */
function resolveColor(color: string): string {
  const m = /^var\((--[\w-]+)\)$/.exec(color);
  return m ? cssVar(m[1]!) : color;
}

export function Chart({ data, series, height = 220, ranges = {}, markers = [], label }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const markerRef = useRef(markers);
  markerRef.current = markers;
  // The theme is part of the shape: canvas colours are resolved when the chart is built.
  const shape = JSON.stringify({ series, ranges, height, theme: document.documentElement.dataset['theme'] ?? '' });

  useEffect(() => {
    const el = box.current!;
    const axisColor = cssVar('--muted');
    const gridColor = cssVar('--grid');
    const scales: uPlot.Scales = { x: { time: true } };
    for (const [key, range] of Object.entries(ranges)) scales[key] = { range };
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      scales,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      axes: [
        {
          stroke: axisColor,
          grid: { stroke: gridColor },
          ticks: { stroke: gridColor },
          space: 90,
          // Wall-clock time, whole seconds (short windows would otherwise label milliseconds);
          // ticks within one second show their second once.
          values: (_u: uPlot, splits: number[]) =>
            splits.map((s, i) => {
              const text = time(s);
              return i > 0 && Math.floor(splits[i - 1]!) === Math.floor(s) ? '' : text;
            }),
        },
        { stroke: axisColor, grid: { stroke: gridColor }, ticks: { stroke: gridColor }, size: 44 },
      ],
      series: [
        { value: legendValue(time) },
        ...series.map((s) => ({
          label: s.label,
          value: legendValue((v) => number.format(v)),
          stroke: resolveColor(s.stroke),
          width: s.width ?? 2,
          scale: s.scale ?? 'y',
          points: { show: false },
          ...(s.dash ? { dash: s.dash } : {}),
        })),
      ],
      hooks: {
        draw: [
          (u: uPlot) => {
            const ctx = u.ctx;
            const { top, height: h } = u.bbox;
            ctx.save();
            for (const m of markerRef.current) {
              const x = Math.round(u.valToPos(m.t, 'x', true));
              if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
              ctx.fillStyle = m.color;
              ctx.strokeStyle = m.color;
              if (m.shape === 'bar') ctx.fillRect(x - 1, top + h - 14 * devicePixelRatio, 3 * devicePixelRatio, 14 * devicePixelRatio);
              else {
                ctx.beginPath();
                ctx.arc(x, top + 6 * devicePixelRatio, 4 * devicePixelRatio, 0, Math.PI * 2);
                ctx.fill();
              }
            }
            ctx.restore();
          },
        ],
      },
    };
    const u = new uPlot(opts, data, el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Rebuilt only when the chart's shape changes; data flows in below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data, markers]);

  // data-points: how many x values the chart holds (the System view's browser test reads it).
  return <div class="chart" ref={box} role="img" aria-label={label} data-points={data[0]?.length ?? 0} />;
}
