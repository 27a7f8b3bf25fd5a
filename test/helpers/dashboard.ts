// The Grafana dashboard (charts/komputer-connector-webhook/files/grafana-dashboard.json) as the
// tests read it: every PromQL expression it holds, and each one as Grafana sends it to
// Prometheus once its variables are interpolated. One reader for the unit test (promtool
// parses every query) and the live-Prometheus e2e test (every query returns series).

export interface Dashboard {
  readonly panels: readonly { readonly id: number; readonly type: string; readonly title: string; readonly targets?: readonly { readonly expr: string }[] }[];
  readonly templating: { readonly list: readonly { readonly name: string; readonly query?: unknown; readonly allValue?: string }[] };
}

export interface DashboardQuery {
  /** `panel "<title>" query <n>` or `variable <name>`. */
  readonly where: string;
  readonly expr: string;
}

/** A `label_values(<selector>, <label>)` query variable. */
export interface LabelValuesVariable {
  readonly name: string;
  readonly selector: string;
  readonly label: string;
}

/** The dashboard's query variables of the form label_values(<selector>, <label>). */
export function labelValuesVariables(dashboard: Dashboard): LabelValuesVariable[] {
  const out: LabelValuesVariable[] = [];
  for (const v of dashboard.templating.list) {
    const q = typeof v.query === 'object' && v.query !== null ? (v.query as { query?: string }).query : undefined;
    const m = q === undefined ? null : /^label_values\((.*),\s*([a-zA-Z_]+)\)$/.exec(q);
    if (m) out.push({ name: v.name, selector: m[1]!, label: m[2]! });
  }
  return out;
}

/** Every PromQL expression of the dashboard: panel targets and label_values() selectors. */
export function dashboardQueries(dashboard: Dashboard): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const p of dashboard.panels) for (const [i, t] of (p.targets ?? []).entries()) out.push({ where: `panel "${p.title}" query ${i + 1}`, expr: t.expr });
  for (const v of labelValuesVariables(dashboard)) out.push({ where: `variable ${v.name}`, expr: v.selector });
  return out;
}

export interface GrafanaVariables {
  /**
   * `$__rate_interval`: Grafana sends max($__interval + scrape interval, 4 x scrape interval);
   * default 1m, what it sends for a data source with its default 15 s scrape interval.
   */
  readonly rateInterval?: string;
  /** The namespaces selected in the `namespace` variable; default "All" (its allValue `.*`). */
  readonly namespaces?: readonly string[];
}

/**
 * Regex metacharacters escaped, inside a PromQL string, as Grafana's Prometheus data source
 * escapes a multi-value variable's values (namespace names never hold a backslash).
 */
function grafanaRegexEscape(value: string): string {
  return value.replace(/[$^*{}[\]'+?.()|]/g, '\\\\$&');
}

/**
 * A dashboard query as Grafana sends it to Prometheus: `$__rate_interval` replaced, and
 * `$namespace` (multi-value, with "All") as `.*` for All, the escaped value for one
 * namespace, `(a|b)` for several.
 */
export function grafanaToPromql(expr: string, vars: GrafanaVariables = {}): string {
  const selected = vars.namespaces;
  const namespace =
    selected === undefined ? '.*' : selected.length === 1 ? grafanaRegexEscape(selected[0]!) : `(${selected.map(grafanaRegexEscape).join('|')})`;
  return expr.replaceAll('$__rate_interval', vars.rateInterval ?? '1m').replaceAll('$namespace', namespace);
}
