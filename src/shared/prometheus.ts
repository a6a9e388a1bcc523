/** Declaring prom-client metrics whose values are read at scrape time, for the orchestrator and the agent alike. */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

type Read<T> = () => T | Promise<T>;

export interface MetricKit {
  registry: Registry;
  histogram(name: string, help: string, buckets: number[]): Histogram;
  /** A gauge set from `read` at each scrape. */
  gauge(name: string, help: string, read: Read<number>): Gauge;
  /** A gauge with one series per key of what `read` returns, labelled `label`. */
  gaugeBy(name: string, help: string, label: string, read: Read<Record<string, number>>): Gauge;
  /** A counter mirroring running totals kept elsewhere (by `label` when `read` returns a record). */
  totals(name: string, help: string, label: string | null, read: () => number | Record<string, number>): Counter;
}

/** A registry with prom-client's default process metrics, and the helpers above bound to it. */
export function createMetricKit(): MetricKit {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    histogram: (name, help, buckets) => new Histogram({ name, help, buckets, registers }),
    gauge: (name, help, read) =>
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          this.set(await read());
        },
      }),
    gaugeBy: (name, help, label, read) =>
      new Gauge({
        name,
        help,
        labelNames: [label],
        registers,
        async collect() {
          for (const [key, value] of Object.entries(await read())) this.set({ [label]: key }, value);
        },
      }),
    totals: (name, help, label, read) =>
      new Counter({
        name,
        help,
        labelNames: label === null ? [] : [label],
        registers,
        collect() {
          const value = read();
          this.reset();
          if (typeof value === "number") this.inc(value);
          else for (const [key, total] of Object.entries(value)) this.inc({ [label!]: key }, total);
        },
      }),
  };
}
