// A tiny confidence sparkline (SVG): values in [0, 1], newest on the right.
export function Sparkline({ values, label }: { values: readonly number[]; label: string }) {
  const w = 120;
  const h = 28;
  if (values.length < 2) return <svg class="spark" width={w} height={h} role="img" aria-label={`${label}: not enough data yet`} />;
  const step = w / (values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(h - 2 - Math.min(1, Math.max(0, v)) * (h - 4)).toFixed(1)}`).join(' ');
  const last = values[values.length - 1]!;
  return (
    <svg
      class="spark"
      width={w}
      height={h}
      viewBox={`0 0 ${w} ${h}`}
      preserveAspectRatio="none"
      role="img"
      aria-label={`${label}: ${Math.round(last * 100)}% now`}
    >
      <line x1="0" x2={w} y1={h / 2} y2={h / 2} class="spark-mid" />
      <polyline points={points} class="spark-line" vector-effect="non-scaling-stroke" />
    </svg>
  );
}
