#!/usr/bin/env node
// komputer-webhook: serve the admission webhook, or run its decisions offline.

import { hostname } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { serviceDnsNames } from '../certs/generate.ts';
import { parseDuration, parsePort, parsePositiveInt, REVOCATION_DEFAULTS, REVOCATION_MODES, SERVE_DEFAULTS, type RevocationMode, type ServeConfig } from '../config/config.ts';
import { createLogger } from '../logging/logger.ts';
import { startServer } from '../server/serve.ts';
import type { CheckFlags } from './check-output.ts';
import { CliError } from './io.ts';

// The offline commands (and the YAML printer and JSON Patch library they use) load only when
// one runs: `serve` never needs them, and each module is resident memory for a pod's life.
const commands = (): Promise<typeof import('./commands.ts')> => import('./commands.ts');

function fail(message: string): never {
  process.stderr.write(`komputer-webhook: ${message.split('\n')[0]}\n`);
  process.exit(2);
}

/** Commander's parsed `serve` flags: strings as typed, `controller` false with --no-controller. */
type ServeFlags = { [flag: string]: string | undefined } & { controller?: boolean; caBundleCheck?: boolean; mirrorSharedSecrets?: boolean; events?: boolean };

function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function certMode(value: string): 'files' | 'self' {
  if (value !== 'files' && value !== 'self') throw new CliError(`--cert-mode must be files or self, got ${JSON.stringify(value)}`);
  return value;
}

function revocationMode(value: string): RevocationMode {
  if (!(REVOCATION_MODES as readonly string[]).includes(value)) throw new CliError(`--revocation must be one of ${REVOCATION_MODES.join(', ')}, got ${JSON.stringify(value)}`);
  return value as RevocationMode;
}

async function serve(opts: ServeFlags): Promise<void> {
  const logger = createLogger();
  const namespace = opts.serviceNamespace ?? process.env.POD_NAMESPACE ?? SERVE_DEFAULTS.serviceNamespace;
  const config: ServeConfig = {
    certDir: opts.certDir ?? SERVE_DEFAULTS.certDir,
    host: opts.host ?? SERVE_DEFAULTS.host,
    port: parsePort(opts.port ?? String(SERVE_DEFAULTS.port), '--port'),
    metricsHost: opts.metricsHost ?? SERVE_DEFAULTS.metricsHost,
    metricsPort: parsePort(opts.metricsPort ?? String(SERVE_DEFAULTS.metricsPort), '--metrics-port'),
    kubeconfig: opts.kubeconfig,
    stateFile: opts.state,
    serviceNamespace: namespace,
    maxBodyBytes: parsePositiveInt(opts.maxBodyBytes ?? String(SERVE_DEFAULTS.maxBodyBytes), '--max-body-bytes'),
    certReloadMs: parsePositiveInt(opts.certReloadMs ?? String(SERVE_DEFAULTS.certReloadMs), '--cert-reload-ms'),
    drainMs: Number(opts.drainMs ?? SERVE_DEFAULTS.drainMs),
    controller: opts.controller !== false,
    leaseName: opts.leaseName ?? SERVE_DEFAULTS.leaseName,
    identity: opts.identity ?? process.env.POD_NAME ?? `${hostname()}-${process.pid}`,
    controllerQuietMs: Number(opts.controllerQuietMs ?? SERVE_DEFAULTS.controllerQuietMs),
    controllerMaxWaitMs: Number(opts.controllerMaxWaitMs ?? SERVE_DEFAULTS.controllerMaxWaitMs),
    resyncMs: parsePositiveInt(opts.resyncMs ?? String(SERVE_DEFAULTS.resyncMs), '--resync-ms'),
    // Unset: the environment decides (KOMPUTER_WATCH_TIMEOUT_SECONDS, KOMPUTER_EVENTS).
    ...(opts.watchTimeoutSeconds === undefined ? {} : { watchTimeoutSeconds: parsePositiveInt(opts.watchTimeoutSeconds, '--watch-timeout-seconds') }),
    ...(opts.events === false ? { events: false } : {}),
    certMode: certMode(opts.certMode ?? (opts.state ? 'files' : SERVE_DEFAULTS.certMode)),
    certSecretName: opts.certSecretName ?? SERVE_DEFAULTS.certSecretName,
    webhookConfigName: opts.webhookConfigName ?? SERVE_DEFAULTS.webhookConfigName,
    certDnsNames: opts.certDnsNames ? list(opts.certDnsNames) : serviceDnsNames(opts.serviceName ?? SERVE_DEFAULTS.serviceName, namespace),
    certIpAddresses: list(opts.certIpAddresses ?? ''),
    certValidityMs: parseDuration(opts.certValidity ?? '90d', '--cert-validity'),
    caValidityMs: parseDuration(opts.caValidity ?? '1825d', '--ca-validity'),
    checkCaBundle: opts.caBundleCheck !== false && !opts.state,
    clientCaFile: opts.clientCaFile,
    mirrorSharedSecrets: opts.mirrorSharedSecrets === true,
    revocation: revocationMode(opts.revocation ?? 'off'),
    revocationMaxConcurrent: parsePositiveInt(opts.revocationMaxConcurrent ?? String(REVOCATION_DEFAULTS.maxConcurrent), '--revocation-max-concurrent'),
    revocationMaxPerPass: parsePositiveInt(opts.revocationMaxPerPass ?? String(REVOCATION_DEFAULTS.maxPerPass), '--revocation-max-per-pass'),
  };
  const running = await startServer(config, logger);
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

export function buildProgram(): Command {
  const program = new Command('komputer-webhook')
    .description('Admission webhook that injects komputer.ai connectors into agent pods and validates connectors.')
    .exitOverride()
    .showHelpAfterError(false);

  program
    .command('serve')
    .description('Serve the admission webhook over HTTPS (metrics on a separate plain-HTTP port).')
    .option('--cert-dir <dir>', 'directory holding tls.crt and tls.key (reloaded when they change)', SERVE_DEFAULTS.certDir)
    .option('--host <addr>', 'address to listen on', SERVE_DEFAULTS.host)
    .option('--port <port>', 'HTTPS port', String(SERVE_DEFAULTS.port))
    .option('--metrics-host <addr>', 'address for the metrics listener', SERVE_DEFAULTS.metricsHost)
    .option('--metrics-port <port>', 'plain-HTTP port for /metrics, /healthz, /readyz', String(SERVE_DEFAULTS.metricsPort))
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)')
    .option('--state <file>', 'serve from a static state file instead of the API server (benchmarks, demos, air-gapped trials)')
    .option('--service-namespace <ns>', "the service's own namespace (default: $POD_NAMESPACE, else komputer-webhook-system)")
    .option('--max-body-bytes <n>', 'largest AdmissionReview body accepted', String(SERVE_DEFAULTS.maxBodyBytes))
    .option('--cert-reload-ms <ms>', 'how often the certificate files are checked for changes', String(SERVE_DEFAULTS.certReloadMs))
    .option('--drain-ms <ms>', 'on SIGTERM, keep serving this long (readiness false) before closing', String(SERVE_DEFAULTS.drainMs))
    .option('--cert-mode <mode>', 'self: keep a CA and certificate in a Secret, patch the caBundle (leader only); files: read --cert-dir (cert-manager, make certs). Default: self, or files with --state')
    .option('--cert-secret-name <name>', 'Secret (in the service namespace) holding the self-managed certificates', SERVE_DEFAULTS.certSecretName)
    .option('--webhook-config-name <name>', "name of this service's Mutating- and ValidatingWebhookConfiguration (caBundle)", SERVE_DEFAULTS.webhookConfigName)
    .option('--service-name <name>', 'Service name for the certificate DNS names <svc>, <svc>.<ns>, <svc>.<ns>.svc, <svc>.<ns>.svc.cluster.local', SERVE_DEFAULTS.serviceName)
    .option('--cert-dns-names <list>', 'comma-separated DNS names for the self-managed certificate (overrides --service-name)')
    .option('--cert-ip-addresses <list>', 'comma-separated IP SANs for the self-managed certificate (e.g. 127.0.0.1 for a local process)')
    .option('--cert-validity <duration>', 'self-managed serving certificate lifetime; renewed with a third left', '90d')
    .option('--ca-validity <duration>', 'self-managed CA lifetime; rotated with a third left, the old CA kept in the bundle', '1825d')
    .option('--no-ca-bundle-check', 'do not require (for readiness) that the served certificate chains to the webhook configurations\' caBundle')
    .option('--client-ca-file <file>', 'mutual TLS: require client certificates signed by this CA (the API server\'s admission client certificate)')
    .option('--mirror-shared-secrets', 'opt-in: keep <secret>-from-<ns> copies of shared connectors\' Secrets in the namespaces that use them (needs manifests/components/secret-mirroring)')
    .option('--revocation <mode>', 'restart (evict) running agent pods that hold a connector their agent should no longer get, while the agent is idle: off, opt-in (namespaces annotated komputer.ai/revoke-stale-pods: "true"), all (unless annotated "false")', 'off')
    .option('--revocation-max-concurrent <n>', 'agent pods restarting at once', String(REVOCATION_DEFAULTS.maxConcurrent))
    .option('--revocation-max-per-pass <n>', 'evictions one pass may start', String(REVOCATION_DEFAULTS.maxPerPass))
    .option('--no-controller', 'do not run the attachment controller (admission only)')
    .option('--lease-name <name>', 'Lease (in the service namespace) that elects the one replica running the controller', SERVE_DEFAULTS.leaseName)
    .option('--identity <id>', 'this replica in the lease (default: $POD_NAME, else host-pid)')
    .option('--controller-quiet-ms <ms>', 'write statuses once no agent/connector event arrived for this long', String(SERVE_DEFAULTS.controllerQuietMs))
    .option('--controller-max-wait-ms <ms>', '...or at the latest this long after the first pending event', String(SERVE_DEFAULTS.controllerMaxWaitMs))
    .option('--resync-ms <ms>', 'full recompute of every connector status, as a safety net', String(SERVE_DEFAULTS.resyncMs))
    .option('--watch-timeout-seconds <s>', 'server-side timeout of each cache watch; a server-ended watch is normal and resumes (default: $KOMPUTER_WATCH_TIMEOUT_SECONDS, else 300)')
    .option('--no-events', 'record no Events on KomputerAgents (default: on, unless $KOMPUTER_EVENTS=false)')
    .action(serve);

  program
    .command('review')
    .description('Read one AdmissionReview (JSON) on stdin and print the response the server would give.')
    .requiredOption('--state <file>', 'cluster objects (YAML or JSON): Namespaces, KomputerConnectors, KomputerAgents')
    .action(async (opts: { state?: string }) => {
      const { reviewCommand } = await commands();
      process.stdout.write(await reviewCommand(opts));
    });

  program
    .command('mutate')
    .description('Print the injected pod as YAML (stdout) and what was injected or skipped (stderr).')
    .addOption(new Option('-f, --file <pod.yaml>', 'the pod to inject').makeOptionMandatory())
    .requiredOption('--state <file>', 'cluster objects (YAML or JSON)')
    .option('-n, --namespace <ns>', "the pod's namespace (default: metadata.namespace, else default)")
    .option('--old <old-pod.yaml>', 'the pod before ephemeral containers were added: judge -f as a pods/ephemeralcontainers UPDATE (a member joining a running squad)')
    .action(async (opts: { file?: string; state?: string; namespace?: string; old?: string }) => {
      const { mutateCommand } = await commands();
      const out = mutateCommand(opts);
      process.stdout.write(out.yaml);
      process.stderr.write(out.summary);
    });

  program
    .command('validate')
    .description('Judge KomputerConnectors/KomputerAgents in a file as admission would; exit 1 when any is denied (for CI pipelines).')
    .addOption(new Option('-f, --file <file>', 'YAML or JSON with one or more objects').makeOptionMandatory())
    .option('--state <file>', 'cluster objects and the policy ConfigMap (default: built-in policy, empty cluster)')
    .action(async (opts: { file?: string; state?: string }) => {
      const { validateCommand } = await commands();
      const out = validateCommand(opts);
      process.stdout.write(out.report);
      if (out.denied) process.exitCode = 1;
    });

  program
    .command('counts')
    .description('Print the status.attachedAgents/agentNames the controller would write for every connector.')
    .requiredOption('--state <file>', 'cluster objects (YAML or JSON)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (opts: { state?: string; output?: string }) => {
      const { countsCommand } = await commands();
      process.stdout.write(countsCommand(opts));
    });

  program
    .command('check')
    .description('Check the webhook and what in the cluster needs attention (reads only; two server-side dry runs). One line per check; exit 1 when an error is found, 2 on unusable input.')
    .option('--kubeconfig <file>', 'kubeconfig (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)')
    .option('--context <name>', 'kubeconfig context (default: the current one)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--service-namespace <ns>', "the service's namespace (Lease, policy ConfigMap, Deployment)", SERVE_DEFAULTS.serviceNamespace)
    .option('--service-name <name>', 'the Service the webhook configurations must call', SERVE_DEFAULTS.serviceName)
    .option('--webhook-config-name <name>', 'name of the Mutating- and ValidatingWebhookConfiguration', SERVE_DEFAULTS.webhookConfigName)
    .option('--lease-name <name>', "the leader election Lease", SERVE_DEFAULTS.leaseName)
    .option('--deployment <name>', 'the Deployment of an in-cluster install (default: the service name)')
    .option('--cert-secret-name <name>', 'the self-managed certificate Secret (its tls.crt, for the expiry)', SERVE_DEFAULTS.certSecretName)
    .option('--endpoint <host:port>', 'reach the service directly for a TLS handshake (e.g. through kubectl port-forward) when the webhooks call a Service')
    .option('--timeout <duration>', 'per request and TLS handshake', '10s')
    .option('--wait [duration]', 'retry until healthy (exit 0) or DURATION has passed (default 2m), saying on stderr why each attempt was not; then print the last report')
    .action(async (opts: CheckFlags) => {
      const { checkCommand } = await import('./check-output.ts');
      process.exitCode = await checkCommand(opts, (text) => process.stdout.write(text));
    });

  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
      process.exit(2); // commander already printed the reason
    }
    if (e instanceof CliError) fail(e.message);
    fail(e instanceof Error ? e.message : String(e));
  }
}

await main(process.argv);
