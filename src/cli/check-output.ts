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
  /** `--wait` (true: the default deadline) or `--wait=DURATION`. */
  wait?: string | boolean;
}

/** `--wait` without a duration. */
export const DEFAULT_WAIT = '2m';
/** Pause between attempts of `--wait`. */
export const WAIT_INTERVAL_MS = 2_000;

export interface WaitDeps {
  /** Progress lines of `--wait` (stderr). */
  readonly progress: (text: string) => void;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

const REAL_WAIT: WaitDeps = {
  progress: (text) => process.stderr.write(text),
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * `check --wait[=DURATION]`: runs `attempt` until it reports healthy (exit 0) or the deadline
 * passes, pausing `intervalMs` between attempts and saying on stderr why each one was not
 * healthy. A CliError (the API server not reachable yet, say) is retried too. Returns the
 * last report's exit code (printed by the caller), or rethrows the last CliError when no
 * attempt produced a report at the deadline.
 */
export async function untilHealthy<T extends { code: 0 | 1 }>(
  attempt: () => Promise<T>,
  why: (result: T) => string,
  waitMs: number,
  deps: WaitDeps = REAL_WAIT,
  intervalMs = WAIT_INTERVAL_MS,
): Promise<T> {
  const deadline = deps.now() + waitMs;
  for (let n = 1; ; n++) {
    let result: T | undefined;
    let failure: CliError | undefined;
    try {
      result = await attempt();
    } catch (e) {
      if (!(e instanceof CliError)) throw e;
      failure = e;
    }
    if (result !== undefined && result.code === 0) {
      if (n > 1) deps.progress(`check --wait: healthy at attempt ${n}\n`);
      return result;
    }
    const left = deadline - deps.now();
    const reason = result !== undefined ? why(result) : failure!.message;
    if (left <= 0) {
      deps.progress(`check --wait: not healthy after ${formatMs(waitMs)} (${n} attempt(s)): ${reason}\n`);
      if (result !== undefined) return result;
      throw failure!;
    }
    const pause = Math.min(intervalMs, left);
    deps.progress(`check --wait: attempt ${n}: ${reason}; retrying in ${formatMs(pause)} (${formatMs(left)} left)\n`);
    await deps.sleep(pause);
  }
}

function formatMs(ms: number): string {
  return ms >= 60_000 && ms % 60_000 === 0 ? `${ms / 60_000}m` : `${Math.ceil(ms / 1000)}s`;
}

/**
 * `check`: gather (read-only), judge, print; returns the exit code (0, or 1 when an error was
 * found). Unusable input (kubeconfig, context, unreachable API server) throws CliError (exit 2).
 */
export async function checkCommand(flags: CheckFlags, write: (text: string) => void, waitDeps: WaitDeps = REAL_WAIT): Promise<0 | 1> {
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
  let waitMs: number | undefined;
  try {
    timeoutMs = parseDuration(flags.timeout ?? '10s', '--timeout');
    if (flags.wait !== undefined && flags.wait !== false) waitMs = parseDuration(flags.wait === true ? DEFAULT_WAIT : flags.wait, '--wait');
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
  // Loaded here: @kubernetes/client-node is heavy, and the offline commands do not need it.
  const { gather, CheckInputError } = await import('../check/gather.ts');
  const once = async (): Promise<{ code: 0 | 1; report: CheckReport }> => {
    let gathered;
    try {
      gathered = await gather({ kubeconfig: flags.kubeconfig, context: flags.context, settings, timeoutMs });
    } catch (e) {
      if (e instanceof CheckInputError) throw new CliError(e.message);
      throw e;
    }
    const results = runChecks(gathered.snapshot);
    return { code: exitCodeOf(results), report: { context: gathered.context, server: gathered.server, service: `${settings.serviceNamespace}/${settings.serviceName}`, results } };
  };
  const { code, report } =
    waitMs === undefined
      ? await once()
      : await untilHealthy(
          once,
          (r) => {
            const errors = r.report.results.filter((x) => x.status === 'error');
            return `${errors.length} error(s): ${errors.map((x) => x.id).join(', ')}`;
          },
          waitMs,
          waitDeps,
        );
  write(flags.output === 'json' ? formatJson(report) : formatText(report));
  return code;
}
