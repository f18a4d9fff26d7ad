// Small formatting helpers shared by the views.

export function pct(value: number | null | undefined): string {
  return typeof value === 'number' ? `${Math.round(value * 100)}%` : '–';
}

export function fixed(value: unknown, digits = 2): string {
  return typeof value === 'number' ? value.toFixed(digits) : '–';
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export function clock(iso: string): string {
  return new Date(iso).toLocaleTimeString(undefined, { hour12: false });
}

/** The CSS class of a severity or risk level (colour scale in styles.css). */
export function levelClass(level: string | null | undefined): string {
  switch (level) {
    case 'critical':
      return 'lvl-critical';
    case 'high':
    case 'error':
      return 'lvl-high';
    case 'medium':
    case 'warning':
      return 'lvl-medium';
    case 'low':
      return 'lvl-low';
    default:
      return 'lvl-info';
  }
}

export function statusClass(status: string | null | undefined): string {
  switch (status) {
    case 'running':
      return 'st-running';
    case 'waiting':
      return 'st-waiting';
    case 'completed':
      return 'st-completed';
    case 'failed':
      return 'st-failed';
    default:
      return 'st-other';
  }
}
