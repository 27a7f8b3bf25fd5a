// Output of `komputer-webhook check`: one line per result for people, one JSON document for
// machines. Both carry the same results, in the same order.

import { endpointProblem, runChecks } from '../check/checks.ts';
import type { CheckSettings } from '../check/snapshot.ts';
import { exitCodeOf, summaryOf, type CheckResult, type CheckStatus } from '../check/types.ts';
import { parseDuration, SERVE_DEFAULTS } from '../config/config.ts';
import { CliError } from './io.ts';

export interface CheckReport {
  readonly context: string;
  readonly server: string;
  readonly service: string;
  readonly results: readonly CheckResult[];
}

const LABEL: Record<CheckStatus, string> = { ok: 'ok', skipped: 'skipped', warning: 'warning', error: 'error' };

/**
 * `STATUS  ID  MESSAGE` per result, the remedy on the same line after ` -- fix: ` for
 * warnings and errors; a header naming the cluster and a summary line with the exit code.
 */
export function formatText(report: CheckReport): string {
  const idWidth = Math.max(...report.results.map((r) => r.id.length), 0);
  const statusWidth = Math.max(...Object.values(LABEL).map((l) => l.length));
  const lines = [`komputer-webhook check: context ${report.context} (${report.server}), service ${report.service}`];
  for (const r of report.results) {
    const fix = r.remedy !== undefined ? ` -- fix: ${r.remedy}` : '';
    lines.push(`${LABEL[r.status].padEnd(statusWidth)}  ${r.id.padEnd(idWidth)}  ${r.message}${fix}`);
  }
  const s = summaryOf(report.results);
  const code = exitCodeOf(report.results);
  lines.push(`${s.error} error(s), ${s.warning} warning(s), ${s.ok} ok, ${s.skipped} skipped: ${code === 0 ? (s.warning > 0 ? 'healthy, with warnings' : 'healthy') : 'errors found'} (exit ${code})`);
  return lines.join('\n') + '\n';
}

/** `{context, server, service, healthy, exitCode, summary, checks: [{id, status, message, remedy?, subject?}]}` */
export function formatJson(report: CheckReport): string {
  const code = exitCodeOf(report.results);
  return (
    JSON.stringify(
      {
        context: report.context,
        server: report.server,
        service: report.service,
        healthy: code === 0,
        exitCode: code,
        summary: summaryOf(report.results),
        checks: report.results,
      },
      null,
      2,
    ) + '\n'
  );
}

export interface CheckFlags {
  kubeconfig?: string;
  context?: string;
  output?: string;
  serviceNamespace?: string;
  serviceName?: string;
  webhookConfigName?: string;
  leaseName?: string;
  deployment?: string;
  certSecretName?: string;
  endpoint?: string;
  timeout?: string;
}

/**
 * `check`: gather (read-only), judge, print; returns the exit code (0, or 1 when an error was
 * found). Unusable input (kubeconfig, context, unreachable API server) throws CliError (exit 2).
 */
export async function checkCommand(flags: CheckFlags, write: (text: string) => void): Promise<0 | 1> {
  const settings: CheckSettings = {
    serviceNamespace: flags.serviceNamespace ?? SERVE_DEFAULTS.serviceNamespace,
    serviceName: flags.serviceName ?? SERVE_DEFAULTS.serviceName,
    webhookConfigName: flags.webhookConfigName ?? SERVE_DEFAULTS.webhookConfigName,
    leaseName: flags.leaseName ?? SERVE_DEFAULTS.leaseName,
    deploymentName: flags.deployment ?? flags.serviceName ?? SERVE_DEFAULTS.serviceName,
    certSecretName: flags.certSecretName ?? SERVE_DEFAULTS.certSecretName,
    ...(flags.endpoint !== undefined ? { endpoint: flags.endpoint } : {}),
  };
  if (settings.endpoint !== undefined) {
    const problem = endpointProblem(settings.endpoint);
    if (problem) throw new CliError(problem);
  }
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(flags.timeout ?? '10s', '--timeout');
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
  // Loaded here: @kubernetes/client-node is heavy, and the offline commands do not need it.
  const { gather, CheckInputError } = await import('../check/gather.ts');
  let gathered;
  try {
    gathered = await gather({ kubeconfig: flags.kubeconfig, context: flags.context, settings, timeoutMs });
  } catch (e) {
    if (e instanceof CheckInputError) throw new CliError(e.message);
    throw e;
  }
  const results = runChecks(gathered.snapshot);
  const report: CheckReport = { context: gathered.context, server: gathered.server, service: `${settings.serviceNamespace}/${settings.serviceName}`, results };
  write(flags.output === 'json' ? formatJson(report) : formatText(report));
  return exitCodeOf(results);
}
