// The checks of `komputer-webhook check`, pure: a snapshot of listed objects and probe
// results in, one result per line out. Every rule about connectors, agents and pods is the
// server's own code: the cluster view is a ClusterStore filled by the server's decoders,
// the policy is a PolicyHolder fed the ConfigMap's text (the server's parser), denials come
// from evaluateConnector, counts from computeAll/statusEquals (the controller's functions),
// references from resolveConnectors, and stale pods from injectPod (see stale.ts).

import { X509Certificate } from 'node:crypto';
import { computeAll, statusEquals, type AttachmentStatus } from '../attachments/counts.ts';
import { policyTextOf } from '../cluster/state-file.ts';
import { ClusterStore } from '../cluster/store.ts';
import { AGENT_PLURAL, CONNECTOR_PLURAL, GROUP, INJECTION_ENABLED, LABEL_INJECTION, POLICY_CONFIGMAP_NAME, VERSION } from '../config/names.ts';
import { isInjectionEnabled } from '../injection/detect.ts';
import { FINDINGS } from '../injection/findings.ts';
import { agentLine, connectorRefs, resolveConnectors } from '../injection/resolve.ts';
import { parseConnectorRef, visibleConnector } from '../references/references.ts';
import { decodeAgent, decodeConnector, decodeNamespace, isObject, objectKey, type Connector, type JsonObject } from '../model/objects.ts';
import { PolicyHolder, type PolicyStatus } from '../policy/holder.ts';
import { POLICY_CONFIGMAP_KEY } from '../policy/incompatible.ts';
import { evaluateConnector } from '../policy/verdict.ts';
import type { DryRunProbe, Fetched, Snapshot, TlsProbe } from './snapshot.ts';
import { stalePods } from './stale.ts';
import type { CheckId, CheckResult, CheckStatus } from './types.ts';
import {
  AGENT_POD_LABELS,
  bundleNames,
  chainVerifies,
  commonName,
  conditionExclusions,
  connectorProbeEvidence,
  coversHost,
  describeTarget,
  EXPECTED_PATHS,
  judgeProbe,
  namespaceExclusion,
  POD_WEBHOOK,
  podProbeEvidence,
  ruleCovers,
  selects,
  serviceHost,
  urlEndpoint,
  VALIDATING_WEBHOOK,
  webhooksOf,
  type WebhookEntry,
} from './webhooks.ts';

const DAY_MS = 86_400_000;

function result(id: CheckId, status: CheckStatus, message: string, remedy?: string, subject?: string): CheckResult {
  return { id, status, message, ...(remedy !== undefined && status !== 'ok' && status !== 'skipped' ? { remedy } : {}), ...(subject !== undefined ? { subject } : {}) };
}

/** `a, b, c and 4 more` */
function listed(items: readonly string[], max = 8): string {
  if (items.length <= max) return items.join(', ');
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function duration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 2 * 86_400) return `${Math.round(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

function nameOf(obj: JsonObject): { namespace: string; name: string } {
  const md = isObject(obj.metadata) ? obj.metadata : {};
  return { namespace: typeof md.namespace === 'string' ? md.namespace : '', name: typeof md.name === 'string' ? md.name : '' };
}

// --- the cluster view ------------------------------------------------------------------------

interface Inventory {
  readonly store: ClusterStore;
  /** Enabled namespaces (the server's isInjectionEnabled), sorted. */
  readonly enabled: string[];
  readonly terminating: Set<string>;
  readonly policy: PolicyHolder;
  readonly policyStatus: PolicyStatus;
  /** Reads that failed, by what: the checks that need them say so. */
  readonly missing: Map<string, string>;
}

function inventory(s: Snapshot): Inventory {
  const store = new ClusterStore();
  const missing = new Map<string, string>();
  const terminating = new Set<string>();
  const each = (what: string, f: Fetched<readonly JsonObject[]>, put: (o: JsonObject) => void): void => {
    if (!f.ok) {
      missing.set(what, f.reason);
      return;
    }
    for (const o of f.value) {
      try {
        put(o);
      } catch {
        // an object the decoders refuse is one the server's caches skip too
      }
    }
  };
  each('namespaces', s.namespaces, (o) => {
    const ns = decodeNamespace(o);
    store.putNamespace(ns);
    const md = isObject(o.metadata) ? o.metadata : {};
    if (typeof md.deletionTimestamp === 'string' || (isObject(o.status) && o.status.phase === 'Terminating')) terminating.add(ns.name);
  });
  each('connectors', s.connectors, (o) => store.putConnector(decodeConnector(o)));
  each('agents', s.agents, (o) => store.putAgent(decodeAgent(o)));
  if (!s.pods.ok) missing.set('pods', s.pods.reason);
  const policy = new PolicyHolder();
  const cm = s.policyConfigMap.ok ? s.policyConfigMap.value : undefined;
  const policyStatus = policy.apply(cm ? policyTextOf({ ...cm, kind: 'ConfigMap' }) : undefined);
  store.policySource = () => policy.current;
  const enabled = [...store.namespaces.values()].filter((n) => isInjectionEnabled(n)).map((n) => n.name).sort();
  return { store, enabled, terminating, policy, policyStatus, missing };
}

function cannotList(id: CheckId, inv: Inventory, needs: readonly string[]): CheckResult | undefined {
  const failed = needs.filter((n) => inv.missing.has(n));
  if (failed.length === 0) return undefined;
  return result(id, 'error', `cannot judge: ${failed.map((n) => `listing ${n} failed (${inv.missing.get(n)})`).join('; ')}`, `run check as a user who can list ${failed.join(', ')} in every namespace`);
}

// --- webhook configurations ------------------------------------------------------------------

type ConfigKind = 'mutating' | 'validating';
const KIND_NAME: Record<ConfigKind, string> = { mutating: 'MutatingWebhookConfiguration', validating: 'ValidatingWebhookConfiguration' };
const HOOK: Record<ConfigKind, string> = { mutating: POD_WEBHOOK, validating: VALIDATING_WEBHOOK };
const CONFIG_ID: Record<ConfigKind, CheckId> = { mutating: 'webhook-config/mutating', validating: 'webhook-config/validating' };

function configOf(s: Snapshot, kind: ConfigKind): JsonObject | undefined {
  const f = kind === 'mutating' ? s.mutating : s.validating;
  return f.ok ? f.value : undefined;
}

/** The project's webhook in a configuration, if the configuration and the webhook exist. */
function hookOf(s: Snapshot, kind: ConfigKind): WebhookEntry | undefined {
  return webhooksOf(configOf(s, kind)).find((w) => w.name === HOOK[kind]);
}

const INSTALL_REMEDY = 'install it: kubectl apply --server-side -k manifests/base (or the Helm chart)';

function checkConfig(s: Snapshot, kind: ConfigKind): CheckResult[] {
  const id = CONFIG_ID[kind];
  const what = `${KIND_NAME[kind]} ${s.settings.webhookConfigName}`;
  const f = kind === 'mutating' ? s.mutating : s.validating;
  if (!f.ok) return [result(id, 'error', `cannot read ${what}: ${f.reason}`, `run check as a user who can get ${kind}webhookconfigurations`)];
  const does = kind === 'mutating' ? 'no agent pod gets its connectors' : 'connectors and agents are not validated';
  if (!f.value) return [result(id, 'error', `${what} not found: ${does}`, INSTALL_REMEDY)];
  const all = webhooksOf(f.value);
  const hook = all.find((w) => w.name === HOOK[kind]);
  if (!hook) {
    return [result(id, 'error', `${what} has no webhook ${HOOK[kind]} (it has: ${all.map((w) => w.name).join(', ') || 'none'}): ${does}`, `re-apply manifests/base/webhooks.yaml (${INSTALL_REMEDY.slice('install it: '.length)})`)];
  }
  const problems: CheckResult[] = [];
  const expectedPath = EXPECTED_PATHS[kind];
  const reapply = 're-apply manifests/base/webhooks.yaml, or pass --service-namespace/--service-name/--webhook-config-name when this install uses other names';
  if (hook.url !== undefined) {
    const ep = urlEndpoint(hook.url);
    if (!ep) problems.push(result(id, 'error', `${hook.name} calls ${JSON.stringify(hook.url)}, which is not an https:// URL`, reapply));
    else if (ep.path !== expectedPath) problems.push(result(id, 'error', `${hook.name} calls path ${ep.path} of ${ep.endpoint}; the service serves it on ${expectedPath}`, `set clientConfig.url to https://${ep.endpoint}${expectedPath}`));
  } else if (hook.service) {
    const svc = hook.service;
    if (svc.namespace !== s.settings.serviceNamespace || svc.name !== s.settings.serviceName) {
      problems.push(result(id, 'error', `${hook.name} calls service ${svc.namespace}/${svc.name}, not ${s.settings.serviceNamespace}/${s.settings.serviceName}`, reapply));
    } else if (svc.path !== expectedPath) {
      problems.push(result(id, 'error', `${hook.name} calls path ${svc.path} of service ${svc.namespace}/${svc.name}; the service serves it on ${expectedPath}`, `set clientConfig.service.path to ${expectedPath} (${reapply})`));
    }
  } else {
    problems.push(result(id, 'error', `${hook.name} has neither clientConfig.url nor clientConfig.service`, reapply));
  }
  if (hook.caBundle === '') {
    problems.push(result(id, 'error', `${hook.name} has no caBundle: the API server cannot verify the service's private CA`, 'self-managed certificates: the leader fills it within seconds (see lease/leader and the service log); cert-manager: check the cainjector annotation of the configuration'));
  }
  if (kind === 'mutating') {
    if (!ruleCovers(hook, '', 'v1', 'pods', 'CREATE')) problems.push(result(id, 'error', `${hook.name} has no rule for pod CREATE: no agent pod is injected`, reapply));
    if (!ruleCovers(hook, '', 'v1', 'pods/ephemeralcontainers', 'UPDATE')) {
      problems.push(result(id, 'warning', `${hook.name} has no rule for pods/ephemeralcontainers UPDATE: members added to a running squad get no connectors`, reapply));
    }
  } else {
    const missing = [CONNECTOR_PLURAL, AGENT_PLURAL].flatMap((r) => ['CREATE', 'UPDATE'].filter((op) => !ruleCovers(hook, GROUP, VERSION, r, op)).map((op) => `${r} ${op}`));
    if (missing.length > 0) problems.push(result(id, 'error', `${hook.name} has no rule for ${missing.join(', ')}: those requests are not validated`, reapply));
  }
  if (problems.length > 0) return problems;
  return [result(id, 'ok', `${what}: ${hook.name} calls ${describeTarget(hook)}`)];
}

// --- TLS, probes, health, certificate -------------------------------------------------------

/** The probe for where a webhook sends requests (its URL, or --endpoint for a Service). */
function probeFor(s: Snapshot, hook: WebhookEntry): TlsProbe | undefined {
  if (hook.url !== undefined) {
    const ep = urlEndpoint(hook.url);
    return ep ? s.tls.find((p) => p.endpoint === ep.endpoint) : undefined;
  }
  return s.settings.endpoint !== undefined ? s.tls.find((p) => p.endpoint === s.settings.endpoint) : undefined;
}

function apiServerReaches(s: Snapshot): boolean {
  return s.podProbe !== undefined && judgeProbe(s.podProbe, podProbeEvidence).kind === 'reached';
}

function unreachableHere(s: Snapshot, id: CheckId, endpoint: string, error: string): CheckResult {
  if (apiServerReaches(s)) {
    return result(id, 'warning', `cannot connect to ${endpoint} from this machine (${error}), although the API server reaches the webhook`, `run check where ${endpoint} is reachable, or pass --endpoint host:port (for example through kubectl port-forward)`);
  }
  return result(id, 'error', `cannot connect to ${endpoint}: ${error}`, 'is the service running and listening there? See service/health, service/replicas and the service log');
}

function checkTls(s: Snapshot): CheckResult[] {
  const id: CheckId = 'webhook/tls';
  const hooks = (['mutating', 'validating'] as const).map((k) => hookOf(s, k)).filter((h): h is WebhookEntry => h !== undefined);
  if (hooks.length === 0) return [result(id, 'skipped', 'no webhook to connect to (see webhook-config/*)')];
  const byProbe = new Map<TlsProbe, WebhookEntry[]>();
  for (const h of hooks) {
    const p = probeFor(s, h);
    if (p) byProbe.set(p, [...(byProbe.get(p) ?? []), h]);
  }
  if (byProbe.size === 0) {
    const svc = hooks.find((h) => h.service)?.service;
    return [
      result(
        id,
        'skipped',
        `the webhooks call service ${svc ? `${svc.namespace}/${svc.name}` : '?'} inside the cluster: no direct TLS handshake from here (pass --endpoint host:port, e.g. through kubectl port-forward); the API server's own verification is webhook/admission`,
      ),
    ];
  }
  const out: CheckResult[] = [];
  for (const [probe, entries] of byProbe) {
    if (!probe.chain || probe.chain.length === 0) {
      out.push(unreachableHere(s, id, probe.endpoint, probe.error ?? 'no certificate served'));
      continue;
    }
    const found: CheckResult[] = [];
    const leaf = new X509Certificate(probe.chain[0]!);
    const failing = entries.filter((e) => e.caBundle !== '' && !chainVerifies(probe.chain!, e.caBundle));
    for (const bundle of new Set(failing.map((e) => e.caBundle))) {
      const names = failing.filter((e) => e.caBundle === bundle).map((e) => e.name);
      found.push(
        result(
          id,
          'error',
          `the certificate served at ${probe.endpoint} (issued by ${commonName(leaf.issuer)}) does not chain to the caBundle of ${names.join(' and ')} (${bundleNames(bundle)}): the API server refuses the connection`,
          "self-managed certificates: the leader restores the caBundle within seconds (see lease/leader); files or cert-manager: put the CA that issued the serving certificate into the caBundle (cert-manager's cainjector does), or serve a certificate from the CA in the caBundle",
        ),
      );
    }
    if (!coversHost(probe.chain[0]!, probe.serverName)) {
      found.push(
        result(id, 'error', `the certificate served at ${probe.endpoint} does not cover ${probe.serverName} (${leaf.subjectAltName ?? 'no subjectAltName'}): the API server refuses it`, `issue the serving certificate for ${probe.serverName} (self-managed: --cert-dns-names / --cert-ip-addresses)`),
      );
    }
    if (found.length === 0) found.push(result(id, 'ok', `the certificate served at ${probe.endpoint} chains to the caBundle of ${entries.map((e) => e.name).join(' and ')} and covers ${probe.serverName}`));
    out.push(...found);
  }
  return out;
}

/** What the API server's text most likely means, as a hint in the remedy. */
function tlsHint(text: string): string {
  if (/x509: certificate signed by unknown authority|failed to verify certificate/.test(text) && !/expired/.test(text)) return 'the caBundle does not hold the CA of the served certificate (see webhook/tls)';
  if (/expired|not yet valid/.test(text)) return 'the served certificate is outside its validity (see certificate/expiry)';
  if (/certificate is valid for|not valid for any names/.test(text)) return 'the served certificate does not cover the name the API server connects to';
  if (/connection refused|no endpoints|not found|no such host|no route/.test(text)) return 'the service is not running or not reachable (see service/health and service/replicas)';
  if (/deadline exceeded|timeout|Timeout/.test(text)) return 'the service did not answer in time (network policy? overloaded? see service/health)';
  return 'see the service log';
}

function shortReason(text: string): string {
  const i = text.indexOf('failed to call webhook: ');
  const tail = i >= 0 ? text.slice(i + 'failed to call webhook: '.length) : text;
  return tail.length > 200 ? `${tail.slice(0, 197)}...` : tail;
}

function checkProbe(s: Snapshot, kind: ConfigKind): CheckResult {
  const id: CheckId = kind === 'mutating' ? 'webhook/admission' : 'webhook/validation';
  const hook = hookOf(s, kind);
  const probe: DryRunProbe | undefined = kind === 'mutating' ? s.podProbe : s.connectorProbe;
  const object = kind === 'mutating' ? 'agent pod' : 'connector';
  if (!hook) return result(id, 'skipped', `no ${HOOK[kind]} webhook to probe (see ${CONFIG_ID[kind]})`);
  if (!probe) return result(id, 'skipped', `no enabled namespace that ${HOOK[kind]} selects: nowhere to send a dry-run ${object} (see namespaces/*)`);
  const verdict = judgeProbe(probe, kind === 'mutating' ? podProbeEvidence : connectorProbeEvidence);
  switch (verdict.kind) {
    case 'reached':
      return result(id, 'ok', `the API server called ${HOOK[kind]} for a dry-run ${object} in namespace ${probe.namespace} and trusted its certificate`);
    case 'failed':
      return result(id, 'error', `the API server cannot call ${HOOK[kind]}: ${shortReason(verdict.text)}`, `${tlsHint(verdict.text)}. The API server said: ${verdict.text}`);
    case 'not-called':
      return kind === 'mutating'
        ? result(id, 'error', `the API server admitted a dry-run agent pod in namespace ${probe.namespace} without calling ${HOOK[kind]}`, 'check its rules (pod CREATE), namespaceSelector and objectSelector: see webhook-config/mutating and namespaces/reachable')
        : result(
            id,
            'error',
            `the API server admitted a dry-run connector in namespace ${probe.namespace} without an answer from ${HOOK[kind]} (failurePolicy Ignore: it does not say why)`,
            'the API server\'s TLS error, if any, is in webhook/admission; see also webhook/tls, service/health and webhook-config/validating',
          );
    case 'inconclusive':
      return result(id, 'warning', `a dry-run ${object} in namespace ${probe.namespace} proved nothing: ${verdict.text}`, `run check as a user allowed to create ${kind === 'mutating' ? 'pods' : 'komputerconnectors'} there (a dry run stores nothing), or see the API server's message`);
  }
}

function statusMessage(body: string | undefined): string | undefined {
  if (!body) return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    return isObject(parsed) && parsed.kind === 'Status' && typeof parsed.message === 'string' ? parsed.message : undefined;
  } catch {
    return undefined;
  }
}

function checkHealth(s: Snapshot): CheckResult {
  const id: CheckId = 'service/health';
  const h = s.health;
  if (!h) return result(id, 'skipped', 'no webhook to ask (see webhook-config/*)');
  if (h.status === undefined) return unreachableHere(s, id, h.via, h.error ?? 'no answer');
  const body = (h.body ?? '').trim();
  if (h.status === 200) return result(id, 'ok', `ready (GET ${h.via}/readyz)`);
  const viaProxy = statusMessage(h.body);
  if (viaProxy !== undefined) {
    return result(id, 'error', `not reachable through the API server's service proxy (HTTP ${h.status}): ${viaProxy}`, 'no ready replica behind the Service? See service/replicas; kubectl -n NAMESPACE get endpointslices'.replace('NAMESPACE', s.settings.serviceNamespace));
  }
  return result(id, 'error', `${body.startsWith('not ready') ? body : `HTTP ${h.status}: ${body.slice(0, 200)}`} (GET ${h.via}/readyz)`, 'the reasons are the service\'s own readiness; see its log');
}

function certificateSource(s: Snapshot): { pem: string; where: string } | undefined {
  for (const p of s.tls) if (p.chain?.[0]) return { pem: p.chain[0], where: `served at ${p.endpoint}` };
  if (s.secretCertificate?.ok && s.secretCertificate.value) return { pem: s.secretCertificate.value, where: `in Secret ${s.settings.serviceNamespace}/${s.settings.certSecretName}` };
  return undefined;
}

/**
 * Expiry thresholds. Both certificate managers renew with 30 days left (self-managed: a third
 * of the 90-day default; the cert-manager overlay: renewBefore 720h), so less than 30 days
 * left means a renewal is overdue (warning), and less than 7 days leaves little time to fix
 * it before every agent pod in an enabled namespace is refused (error). A short-lived
 * certificate is judged on its own lifetime: a third of it (where the self-managed mode
 * renews) and a tenth of it, when those are shorter.
 */
export function expiryThresholds(lifetimeMs: number): { warnMs: number; errorMs: number } {
  return { warnMs: Math.min(30 * DAY_MS, lifetimeMs / 3), errorMs: Math.min(7 * DAY_MS, lifetimeMs / 10) };
}

function checkExpiry(s: Snapshot): CheckResult {
  const id: CheckId = 'certificate/expiry';
  const src = certificateSource(s);
  if (!src) {
    if (s.secretCertificate && !s.secretCertificate.ok) return result(id, 'skipped', `no certificate seen: no handshake, and Secret ${s.settings.serviceNamespace}/${s.settings.certSecretName} cannot be read (${s.secretCertificate.reason})`);
    return result(id, 'skipped', 'no certificate seen: no direct handshake (pass --endpoint) and no self-managed certificate Secret');
  }
  const cert = new X509Certificate(src.pem);
  const from = cert.validFromDate.getTime();
  const to = cert.validToDate.getTime();
  const now = s.now.getTime();
  const left = to - now;
  const { warnMs, errorMs } = expiryThresholds(to - from);
  const until = cert.validToDate.toISOString();
  const renew =
    'self-managed: the leader renews it (see lease/leader and the service log for "certificate sync failed"); cert-manager: kubectl describe certificate -n ' +
    `${s.settings.serviceNamespace}; files: replace tls.crt/tls.key (the service reloads them)`;
  if (from > now) return result(id, 'error', `the serving certificate (${src.where}) is not valid before ${cert.validFromDate.toISOString()}: the API server refuses it`, `check the clocks; ${renew}`);
  if (left <= 0) return result(id, 'error', `the serving certificate (${src.where}) expired at ${until} (${duration(left)} ago): the API server refuses it`, renew);
  if (left < errorMs) return result(id, 'error', `the serving certificate (${src.where}) expires in ${duration(left)}, at ${until}`, renew);
  if (left < warnMs) return result(id, 'warning', `the serving certificate (${src.where}) expires in ${duration(left)}, at ${until}: its renewal is overdue`, renew);
  return result(id, 'ok', `the serving certificate (${src.where}) is valid until ${until} (${duration(left)} left)`);
}

// --- in-cluster service: replicas, lease ------------------------------------------------------

function usesServices(s: Snapshot): boolean {
  return (['mutating', 'validating'] as const).some((k) => hookOf(s, k)?.service !== undefined);
}

function checkReplicas(s: Snapshot): CheckResult {
  const id: CheckId = 'service/replicas';
  const name = `${s.settings.serviceNamespace}/${s.settings.deploymentName}`;
  if (!usesServices(s)) {
    return result(id, 'skipped', hookOf(s, 'mutating') || hookOf(s, 'validating') ? 'the webhooks call a URL (the service runs outside the cluster): no Deployment to check' : 'no webhook configuration (see webhook-config/*)');
  }
  const d = s.deployment;
  if (!d) return result(id, 'skipped', `Deployment ${name} not read`);
  if (!d.ok) return result(id, 'error', `cannot read Deployment ${name}: ${d.reason}`, 'run check as a user who can get deployments in the service namespace');
  if (!d.value) return result(id, 'error', `Deployment ${name} not found, but the webhooks call a Service`, `${INSTALL_REMEDY}; or pass --deployment NAME when this install names it differently`);
  const spec = isObject(d.value.spec) ? d.value.spec : {};
  const status = isObject(d.value.status) ? d.value.status : {};
  const want = typeof spec.replicas === 'number' ? spec.replicas : 1;
  const ready = typeof status.readyReplicas === 'number' ? status.readyReplicas : 0;
  const debug = `kubectl -n ${s.settings.serviceNamespace} describe deploy/${s.settings.deploymentName}; kubectl -n ${s.settings.serviceNamespace} logs deploy/${s.settings.deploymentName}`;
  if (ready === 0) return result(id, 'error', `Deployment ${name}: 0 of ${want} replicas ready: agent pods in enabled namespaces are refused (failurePolicy Fail)`, debug);
  if (ready < want) return result(id, 'warning', `Deployment ${name}: ${ready} of ${want} replicas ready`, debug);
  if (want < 2) return result(id, 'warning', `Deployment ${name}: ${ready} of ${want} replica ready: a single replica makes agent pods wait whenever it restarts`, `kubectl -n ${s.settings.serviceNamespace} scale deploy/${s.settings.deploymentName} --replicas=2`);
  return result(id, 'ok', `Deployment ${name}: ${ready} of ${want} replicas ready`);
}

function checkLease(s: Snapshot): CheckResult {
  const id: CheckId = 'lease/leader';
  const name = `${s.settings.serviceNamespace}/${s.settings.leaseName}`;
  if (!s.lease.ok) return result(id, 'error', `cannot read Lease ${name}: ${s.lease.reason}`, 'run check as a user who can get leases in the service namespace');
  if (!s.lease.value) {
    return result(id, 'warning', `no Lease ${name}: no replica has run the attachment controller (connector counts are not kept)`, 'expected only with serve --no-controller --cert-mode files; otherwise see the service log ("lease acquire/renew failed")');
  }
  const spec = isObject(s.lease.value.spec) ? s.lease.value.spec : {};
  const holder = typeof spec.holderIdentity === 'string' ? spec.holderIdentity : '';
  const durationS = typeof spec.leaseDurationSeconds === 'number' ? spec.leaseDurationSeconds : 15;
  const renew = typeof spec.renewTime === 'string' ? Date.parse(spec.renewTime) : NaN;
  const start = usesServices(s) ? `kubectl -n ${s.settings.serviceNamespace} get pods; see service/replicas` : 'start the service';
  if (holder === '') return result(id, 'error', `Lease ${name} is held by no replica (released${Number.isNaN(renew) ? '' : ` ${duration(s.now.getTime() - renew)} ago`}): no replica runs the attachment controller`, `no replica is campaigning for it: ${start}`);
  if (Number.isNaN(renew)) return result(id, 'error', `Lease ${name} is held by ${holder} but has no renewTime`, 'see the service log');
  const age = s.now.getTime() - renew;
  // The API server's clock has a resolution of one second (its Date header).
  if (age > durationS * 1000 + 1000) {
    return result(id, 'error', `Lease ${name} is held by ${holder}, last renewed ${duration(age)} ago (lease duration ${durationS}s): that replica is gone or cannot reach the API server`, `another replica takes over after the lease duration; if none does, none is running: ${start}, and the service log`);
  }
  return result(id, 'ok', `Lease ${name} is held by ${holder}, renewed ${duration(Math.max(0, age))} ago (lease duration ${durationS}s)`);
}

function checkPolicy(s: Snapshot, inv: Inventory): CheckResult {
  const id: CheckId = 'policy/configmap';
  const name = `${s.settings.serviceNamespace}/${POLICY_CONFIGMAP_NAME}`;
  if (!s.policyConfigMap.ok) return result(id, 'error', `cannot read ConfigMap ${name}: ${s.policyConfigMap.reason}`, 'run check as a user who can get configmaps in the service namespace');
  const n = inv.policy.current.length;
  if (!s.policyConfigMap.value) return result(id, 'ok', `no ConfigMap ${name}: the built-in list is in force (${plural(n, 'entry', 'entries')})`);
  const st = inv.policyStatus;
  if (!st.valid) {
    return result(
      id,
      'error',
      `ConfigMap ${name} is invalid: ${st.reason}; the service keeps its last good list (a replica started since: the built-ins)`,
      `fix the entry and field named (kubectl -n ${s.settings.serviceNamespace} edit configmap ${POLICY_CONFIGMAP_NAME}); test it offline with komputer-webhook validate -f CONNECTOR.yaml --state CONFIGMAP.yaml`,
    );
  }
  if (st.source === 'builtin') {
    return result(id, 'warning', `ConfigMap ${name} has no key ${POLICY_CONFIGMAP_KEY}: the built-in list is in force`, `put the policy under data.${POLICY_CONFIGMAP_KEY} (see README, "Extending the list")`);
  }
  const fromConfig = inv.policy.current.filter((e) => e.source === 'config').length;
  return result(id, 'ok', `ConfigMap ${name} is valid: ${plural(n, 'entry', 'entries')} in force (${fromConfig} from the ConfigMap)`);
}

// --- namespaces ---------------------------------------------------------------------------------

function checkEnabled(inv: Inventory): CheckResult {
  const id: CheckId = 'namespaces/enabled';
  const failed = cannotList(id, inv, ['namespaces']);
  if (failed) return failed;
  if (inv.enabled.length === 0) {
    return result(id, 'warning', `no namespace is labelled ${LABEL_INJECTION}=${INJECTION_ENABLED}: the webhook acts nowhere`, `kubectl label namespace NAMESPACE ${LABEL_INJECTION}=${INJECTION_ENABLED}`);
  }
  return result(id, 'ok', `${plural(inv.enabled.length, 'namespace')} enabled: ${listed(inv.enabled)}`);
}

function checkReachable(s: Snapshot, inv: Inventory): CheckResult[] {
  const id: CheckId = 'namespaces/reachable';
  const failed = cannotList(id, inv, ['namespaces']);
  if (failed) return [failed];
  const pods = hookOf(s, 'mutating');
  const validate = hookOf(s, 'validating');
  if (!pods && !validate) return [result(id, 'skipped', 'no webhook configuration to judge against (see webhook-config/*)')];
  const out: CheckResult[] = [];
  if (pods && !AGENT_POD_LABELS.every((labels) => selects(pods.objectSelector, labels))) {
    out.push(result(id, 'error', `the objectSelector of ${POD_WEBHOOK} does not select agent pods (solo and squad labels, SPEC.md): no agent pod is injected in any namespace`, 'restore objectSelector: {matchExpressions: [{key: komputer.ai/squad, operator: Exists}]} (manifests/base/webhooks.yaml)'));
  }
  const unlabel = (ns: string): string => `remove the label (kubectl label namespace ${ns} ${LABEL_INJECTION}-), or change the webhook configuration`;
  for (const ns of inv.enabled) {
    const labels = inv.store.namespace(ns)?.labels ?? {};
    if (inv.terminating.has(ns)) {
      out.push(result(id, 'warning', `namespace ${ns} is enabled but terminating: no new pod is created there`, 'nothing to do once it is gone; if it is stuck, see kubectl get namespace ' + ns + ' -o yaml (status.conditions)', ns));
      continue;
    }
    // A webhook that does not exist is webhook-config/*'s finding, not repeated per namespace.
    const podWhy = pods ? namespaceExclusion(pods, ns, labels) : undefined;
    if (podWhy) {
      const always = ns === 'kube-system' || ns === s.settings.serviceNamespace ? ' (kube-system and the service\'s own namespace are never injected)' : '';
      out.push(result(id, 'error', `namespace ${ns} is enabled, but ${POD_WEBHOOK} never acts there: ${podWhy}${always}`, unlabel(ns), ns));
      continue;
    }
    const valWhy = validate ? namespaceExclusion(validate, ns, labels) : undefined;
    if (valWhy) out.push(result(id, 'warning', `namespace ${ns} is enabled, but ${VALIDATING_WEBHOOK} never acts there: ${valWhy}; connectors and agents there are not validated`, unlabel(ns), ns));
  }
  if (out.length > 0) return out;
  const notEvaluated = [...(pods ? conditionExclusions(pods).unevaluated : []), ...(validate ? conditionExclusions(validate).unevaluated : [])];
  const note = notEvaluated.length > 0 ? ` (match conditions not evaluated here: ${[...new Set(notEvaluated)].join(', ')})` : '';
  const by = [pods, validate].filter((h): h is WebhookEntry => h !== undefined).map((h) => h.name).join(' and ');
  return [result(id, 'ok', inv.enabled.length === 0 ? `no enabled namespace to judge${note}` : `every enabled namespace is selected by ${by}${note}`)];
}

// --- connectors ---------------------------------------------------------------------------------

function checkConnectorPolicy(inv: Inventory): CheckResult[] {
  const id: CheckId = 'connectors/policy';
  const failed = cannotList(id, inv, ['namespaces', 'connectors', 'agents']);
  if (failed) return [failed];
  // In scope: connectors in enabled namespaces (validated there), and connectors elsewhere
  // that agents in enabled namespaces get injected (a share from a namespace not enabled).
  const enabled = new Set(inv.enabled);
  const inScope = new Map<string, Connector>();
  for (const c of inv.store.connectors.values()) if (enabled.has(c.namespace)) inScope.set(objectKey(c.namespace, c.name), c);
  for (const a of inv.store.agents.values()) {
    if (!enabled.has(a.namespace)) continue;
    // Referenced and visible, whether injected or refused: the policy's verdict is the question here.
    for (const { ref, namespace } of connectorRefs(a, inv.store, [])) {
      const target = parseConnectorRef(ref, namespace);
      const c = target && visibleConnector(target, a.namespace, inv.store);
      if (c) inScope.set(objectKey(c.namespace, c.name), c);
    }
  }
  const source = !inv.policyStatus.valid ? 'the built-in list (the policy ConfigMap is invalid)' : inv.policyStatus.source === 'configmap' ? 'the built-in list and the policy ConfigMap' : 'the built-in list';
  const out: CheckResult[] = [];
  for (const [key, c] of [...inScope].sort(([a], [b]) => a.localeCompare(b))) {
    const v = evaluateConnector(c, inv.policy.current).violation;
    if (v === undefined) continue;
    // The verdict's cause and fix, as data (an entry's `instead`, a header name's remedy).
    const edit = `(kubectl -n ${c.namespace} edit komputerconnector ${c.name})`;
    const fix = v.fix ?? 'change it as the message says';
    const entry = v.entry === undefined ? '' : ` (policy entry ${v.entry}, action ${v.action})`;
    if (v.action === 'deny') out.push(result(id, 'error', `connector ${key} would be refused if created now: ${v.cause}`, `${fix} ${edit}; until then agents do not get it injected`, key));
    else out.push(result(id, 'warning', `connector ${key} violates the policy${entry}: ${v.cause}`, `${fix} ${edit}; agents get it injected until the entry moves to deny, and it cannot work`, key));
  }
  if (out.length > 0) return out;
  return [result(id, 'ok', `${plural(inScope.size, 'connector')} in use in enabled namespaces ${inScope.size === 1 ? 'complies' : 'comply'} with ${source}`)];
}

function showStatus(st: AttachmentStatus | undefined): string {
  return st ? `${st.attachedAgents} [${st.agentNames.join(', ')}]` : 'nothing';
}

function checkCounts(inv: Inventory): CheckResult[] {
  const id: CheckId = 'connectors/counts';
  const failed = cannotList(id, inv, ['connectors', 'agents']);
  if (failed) return [failed];
  const desired = computeAll(inv.store.connectors.values(), inv.store.agents.values());
  const out: CheckResult[] = [];
  for (const c of [...inv.store.connectors.values()].sort((a, b) => objectKey(a.namespace, a.name).localeCompare(objectKey(b.namespace, b.name)))) {
    const key = objectKey(c.namespace, c.name);
    const want = desired.get(key)!;
    if (statusEquals(c.status, want)) continue;
    out.push(
      result(
        id,
        'warning',
        `connector ${key}: status says ${showStatus(c.status)}, the controller computes ${showStatus(want)}`,
        'the leader rewrites it within seconds of a change; if it stays, see lease/leader and the service log (komputer_webhook_attachment_reconciles_total{result="error"})',
        key,
      ),
    );
  }
  if (out.length > 0) return out;
  return [result(id, 'ok', `${plural(inv.store.connectors.size, 'connector')} ${inv.store.connectors.size === 1 ? 'carries' : 'carry'} the counts the controller computes`)];
}

// --- agents ---------------------------------------------------------------------------------------

function checkReferences(inv: Inventory): CheckResult[] {
  const id: CheckId = 'agents/references';
  const failed = cannotList(id, inv, ['namespaces', 'connectors', 'agents']);
  if (failed) return [failed];
  const enabled = new Set(inv.enabled);
  const agents = [...inv.store.agents.values()].filter((a) => enabled.has(a.namespace)).sort((a, b) => objectKey(a.namespace, a.name).localeCompare(objectKey(b.namespace, b.name)));
  const out: CheckResult[] = [];
  for (const a of agents) {
    const key = objectKey(a.namespace, a.name);
    const { skipped, notes } = resolveConnectors(a, inv.store);
    // Keyed on the finding's kind: its severity and remedy come from the core's table.
    for (const f of [...skipped, ...notes]) {
      const spec = FINDINGS[f.kind];
      out.push(result(id, spec.severity, `agent ${key}: ${agentLine(f)}`, `${spec.remedy(f.ref, a.namespace)} (kubectl -n ${a.namespace} edit komputeragent ${a.name})`, key));
    }
  }
  if (out.length > 0) return out;
  return [result(id, 'ok', `${plural(agents.length, 'agent')} in enabled namespaces ${agents.length === 1 ? 'resolves' : 'resolve'} all ${agents.length === 1 ? 'its' : 'their'} connectors`)];
}

// --- pods -----------------------------------------------------------------------------------------

function checkStale(s: Snapshot, inv: Inventory): CheckResult[] {
  const id: CheckId = 'pods/stale';
  const failed = cannotList(id, inv, ['namespaces', 'connectors', 'agents', 'pods']);
  if (failed) return [failed];
  const pods = s.pods.ok ? s.pods.value : [];
  const enabled = new Set(inv.enabled);
  const judged = pods.filter((p) => enabled.has(nameOf(p).namespace));
  const out = stalePods(judged, inv.store).map((p) => {
    const parts = p.containers.map((c) => `container ${c.container} (agent ${c.agent}): ${c.changes.join(', ')}`);
    return result(
      id,
      'warning',
      `pod ${p.namespace}/${p.name} runs with connectors its agent no longer gets: ${parts.join('; ')}`,
      `restart it to pick up the change (running pods keep what they were given): kubectl -n ${p.namespace} delete pod ${p.name}`,
      `${p.namespace}/${p.name}`,
    );
  });
  if (out.length > 0) return out;
  return [result(id, 'ok', `${plural(judged.length, 'agent pod')} in enabled namespaces ${judged.length === 1 ? 'carries' : 'carry'} what ${judged.length === 1 ? 'its agent gets' : 'their agents get'} now`)];
}

// --- all ------------------------------------------------------------------------------------------

/** Every check over one snapshot, in the order of CHECKS. */
export function runChecks(s: Snapshot): CheckResult[] {
  const inv = inventory(s);
  return [
    ...checkConfig(s, 'mutating'),
    ...checkConfig(s, 'validating'),
    ...checkTls(s),
    checkProbe(s, 'mutating'),
    checkProbe(s, 'validating'),
    checkHealth(s),
    checkExpiry(s),
    checkReplicas(s),
    checkLease(s),
    checkPolicy(s, inv),
    checkEnabled(inv),
    ...checkReachable(s, inv),
    ...checkConnectorPolicy(inv),
    ...checkCounts(inv),
    ...checkReferences(inv),
    ...checkStale(s, inv),
  ];
}

// --- what the gathering needs to know (pure, so it is tested with the checks) ------------------

export interface ProbePlan {
  /** Endpoints for a TLS handshake, with the name the API server verifies. */
  readonly tls: readonly { readonly endpoint: string; readonly host: string; readonly port: number; readonly serverName: string }[];
  /** Where to GET /readyz: directly, or through the service proxy. */
  readonly health?: { readonly direct: { host: string; port: number; serverName: string; via: string } } | { readonly proxy: { namespace: string; name: string; port: number; via: string } };
  /** Namespaces for the dry-run probes (enabled, selected, not terminating). */
  readonly podProbeNamespace?: string;
  readonly connectorProbeNamespace?: string;
  /** Read the Deployment (an in-cluster install). */
  readonly deployment: boolean;
}

function splitEndpoint(endpoint: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(endpoint);
  if (!m) return undefined;
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
  return { host, port: Number(m[2]) };
}

/** Validates `--endpoint host:port`; returns a reason when it is not one. */
export function endpointProblem(endpoint: string): string | undefined {
  const e = splitEndpoint(endpoint);
  if (!e || e.port < 1 || e.port > 65535) return `--endpoint must be host:port (e.g. 127.0.0.1:8443), got ${JSON.stringify(endpoint)}`;
  return undefined;
}

/** What to probe, from the webhook configurations and namespaces already read. */
export function planProbes(s: Pick<Snapshot, 'settings' | 'mutating' | 'validating' | 'namespaces'>): ProbePlan {
  const hooks = { mutating: webhooksOf(s.mutating.ok ? s.mutating.value : undefined).find((w) => w.name === POD_WEBHOOK), validating: webhooksOf(s.validating.ok ? s.validating.value : undefined).find((w) => w.name === VALIDATING_WEBHOOK) };
  const tls: { endpoint: string; host: string; port: number; serverName: string }[] = [];
  const add = (endpoint: string, serverName: string): void => {
    const e = splitEndpoint(endpoint);
    if (e && !tls.some((t) => t.endpoint === endpoint)) tls.push({ endpoint, host: e.host, port: e.port, serverName });
  };
  let service: { namespace: string; name: string; port: number } | undefined;
  for (const h of [hooks.mutating, hooks.validating]) {
    if (!h) continue;
    if (h.url !== undefined) {
      const ep = urlEndpoint(h.url);
      if (ep) add(ep.endpoint, ep.host);
    } else if (h.service) {
      service ??= h.service;
      if (s.settings.endpoint !== undefined) add(s.settings.endpoint, serviceHost(h.service));
    }
  }
  const first = tls[0];
  const health = first
    ? { direct: { host: first.host, port: first.port, serverName: first.serverName, via: `https://${first.endpoint}` } }
    : service
      ? { proxy: { ...service, via: `the API server's proxy to service ${service.namespace}/${service.name}:${service.port}` } }
      : undefined;
  const namespaces = s.namespaces.ok ? s.namespaces.value : [];
  const candidates = namespaces
    .flatMap((o) => {
      try {
        const ns = decodeNamespace(o);
        const md = isObject(o.metadata) ? o.metadata : {};
        const terminating = typeof md.deletionTimestamp === 'string' || (isObject(o.status) && o.status.phase === 'Terminating');
        return isInjectionEnabled(ns) && !terminating ? [ns] : [];
      } catch {
        return [];
      }
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  const pick = (h: WebhookEntry | undefined): string | undefined => (h ? candidates.find((ns) => namespaceExclusion(h, ns.name, ns.labels) === undefined)?.name : undefined);
  const podNs = pick(hooks.mutating);
  const connNs = pick(hooks.validating);
  return {
    tls,
    ...(health ? { health } : {}),
    ...(podNs ? { podProbeNamespace: podNs } : {}),
    ...(connNs ? { connectorProbeNamespace: connNs } : {}),
    deployment: service !== undefined,
  };
}
