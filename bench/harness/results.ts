// What a scenario hands back to the orchestrator: tables ready to print and
// to render as markdown, the target checks, and chart points. Saved as JSON
// (bench/results/latest.json), merged scenario by scenario.
import { cpus, totalmem, release } from 'node:os';
import type { Kind } from './wire.js';

export interface Machine {
  cpu: string;
  cores: number;
  ramGiB: number;
  node: string;
  os: string;
}

export interface Table {
  title: string;
  head: string[];
  rows: string[][];
  /** Lines printed under the table (what the figures are). */
  notes?: string[];
}

export interface Check {
  target: string;
  value: string;
  ok: boolean;
}

export interface ChartPoint {
  kind: Kind;
  subscribers: number;
  /** Capacity, deliveries/s (median of runs). */
  deliveries: number;
  /** p99 at the fixed rate, ms (median of runs). */
  p99: number;
}

export interface ScenarioResult {
  name: string;
  title: string;
  date: string;
  command: string;
  runs: number;
  quick: boolean;
  machine: Machine;
  /** Wall time of the scenario, s. */
  seconds: number;
  tables: Table[];
  checks: Check[];
  chart?: { fixedRates: Record<string, number>; points: ChartPoint[] };
}

export interface ResultsFile {
  scenarios: Record<string, ScenarioResult>;
}

export function machine(): Machine {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    ramGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    os: `${process.platform} ${release()}`,
  };
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
export const ms = (n: number): string => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n)} ms` : '–');
export const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;

/** "median (run1 / run2 / run3)" — the median first, every run's figure after it. */
export function runs(values: number[], fmt: (n: number) => string): string {
  if (values.length <= 1) return values.length ? fmt(values[0]!) : '–';
  return `${fmt(median(values))} (${values.map(fmt).join(' / ')})`;
}

export function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)}×` : '–';
}
