/** Prometheus text format (0.0.4), for the hub's and the gateway's /metrics. */
export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

const labelValue = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** One metric in the Prometheus text format (0.0.4): help, type and samples. A metric with no samples is left out. */
export function metric(name: string, type: 'gauge' | 'counter', help: string, samples: readonly Sample[]): string {
  if (samples.length === 0) return '';
  const labels = (set: Record<string, string> | undefined) =>
    set && Object.keys(set).length
      ? `{${Object.entries(set)
          .map(([k, v]) => `${k}="${labelValue(v)}"`)
          .join(',')}}`
      : '';
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${samples
    .map((s) => `${name}${labels(s.labels)} ${s.value}`)
    .join('\n')}\n`;
}
