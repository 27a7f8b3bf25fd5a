// `komputer-webhook check`: the pure checks (snapshot -> results), table-driven; the probe plan;
// the stale-pod reasons; the text and JSON output; and bad input through the CLI (exit 2).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import fastJsonPatch from 'fast-json-patch';
import { generateCertificates, type GeneratedCertificates } from '../../src/certs/generate.ts';
import { expiryThresholds, planProbes, runChecks } from '../../src/check/checks.ts';
import { parseWarnings } from '../../src/check/gather.ts';
import type { Snapshot } from '../../src/check/snapshot.ts';
import { envChanges, stalePods } from '../../src/check/stale.ts';
import { CHECKS, exitCodeOf, type CheckResult } from '../../src/check/types.ts';
import { judgeProbe, podProbeEvidence, selects } from '../../src/check/webhooks.ts';
import { formatJson, formatText } from '../../src/cli/check-output.ts';
import { ClusterStore } from '../../src/cluster/store.ts';
import { injectPod } from '../../src/injection/inject.ts';
import { decodeAgent, decodeConnector, decodeNamespace, type JsonObject } from '../../src/model/objects.ts';

const DAY = 86_400_000;
const NOW = new Date('2026-08-01T12:00:00Z');
const API = 'komputer.komputer.ai/v1alpha1';
const NS = 'team-a';
const SYSTEM = 'komputer-webhook-system';

let certs: GeneratedCertificates;
let other: GeneratedCertificates;
const certAt = new Map<string, GeneratedCertificates>();

/** A serving certificate from the main CA, issued `issuedDaysAgo` before NOW for `days`. */
async function servingCert(issuedDaysAgo: number, days: number, names: { dns?: string[]; ip?: string[] } = { dns: ['localhost'], ip: ['127.0.0.1'] }): Promise<GeneratedCertificates> {
  const key = `${issuedDaysAgo}/${days}/${JSON.stringify(names)}`;
  let c = certAt.get(key);
  if (!c) {
    c = await generateCertificates({ dnsNames: names.dns ?? [], ipAddresses: names.ip ?? [], ca: { cert: certs.caCert, key: certs.caKey }, now: new Date(NOW.getTime() - issuedDaysAgo * DAY), backdateMs: 0, validityMs: days * DAY });
    certAt.set(key, c);
  }
  return c;
}

before(async () => {
  certs = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], now: new Date(NOW.getTime() - 10 * DAY), backdateMs: 0, caCommonName: 'check-ca' });
  other = await generateCertificates({ dnsNames: ['other.example'], caCommonName: 'other-ca' });
});

// --- cluster objects ---------------------------------------------------------------------------

function namespace(name: string, labels: Record<string, string> = {}, extra: JsonObject = {}): JsonObject {
  return { metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } }, ...extra };
}
const enabled = { 'komputer.ai/connector-injection': 'enabled' };

function connectorObj(ns: string, name: string, spec: JsonObject, status?: { attachedAgents: number; agentNames: string[] }, annotations?: Record<string, string>): JsonObject {
  return { apiVersion: API, kind: 'KomputerConnector', metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) }, spec: { type: 'remote', service: name, ...spec }, ...(status ? { status } : {}) };
}
function agentObj(ns: string, name: string, connectors: string[], extra: JsonObject = {}): JsonObject {
  return { apiVersion: API, kind: 'KomputerAgent', metadata: { name, namespace: ns }, spec: { connectors, ...extra } };
}
const GITHUB = { url: 'https://api.githubcopilot.com/mcp/', authSecretKeyRef: { name: 'gh', key: 'token' } };
const LINEAR = { url: 'https://mcp.linear.app/mcp', authSecretKeyRef: { name: 'lin', key: 'token' } };

function soloPod(ns: string, name: string, agent: string, extra: { metadata?: JsonObject; status?: JsonObject } = {}): JsonObject {
  return {
    metadata: { name, namespace: ns, labels: { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': agent, [`komputer.ai/member-${agent}`]: 'true' }, ...(extra.metadata ?? {}) },
    spec: { containers: [{ name: 'agent', image: 'agent:1', env: [{ name: 'MODEL', value: 'm' }] }] },
    ...(extra.status ? { status: extra.status } : {}),
  };
}

function storeOf(namespaces: readonly JsonObject[], connectors: readonly JsonObject[], agents: readonly JsonObject[]): ClusterStore {
  const s = new ClusterStore();
  for (const n of namespaces) s.putNamespace(decodeNamespace(n));
  for (const c of connectors) s.putConnector(decodeConnector(c));
  for (const a of agents) s.putAgent(decodeAgent(a));
  return s;
}

/** The pod as the server injects it against these objects (the state it was created in). */
function injected(pod: JsonObject, namespaces: readonly JsonObject[], connectors: readonly JsonObject[], agents: readonly JsonObject[]): JsonObject {
  const md = pod.metadata as { namespace: string };
  const outcome = injectPod(pod, md.namespace, storeOf(namespaces, connectors, agents));
  return fastJsonPatch.applyPatch(structuredClone(pod), outcome.patch as fastJsonPatch.Operation[], true, false).newDocument as JsonObject;
}

function webhookConfig(kind: 'mutating' | 'validating', clientConfig: JsonObject, overrides: JsonObject = {}): JsonObject {
  const selector = { matchLabels: enabled, matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', SYSTEM] }] };
  const conditions = [
    { name: 'exclude-kube-system', expression: "request.namespace != 'kube-system'" },
    { name: 'exclude-own-namespace', expression: `request.namespace != '${SYSTEM}'` },
  ];
  const hook =
    kind === 'mutating'
      ? {
          name: 'pods.connectors.komputer.ai',
          rules: [
            { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] },
            { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods/ephemeralcontainers'] },
          ],
          clientConfig,
          namespaceSelector: selector,
          objectSelector: { matchExpressions: [{ key: 'komputer.ai/squad', operator: 'Exists' }] },
          matchConditions: conditions,
        }
      : {
          name: 'validate.connectors.komputer.ai',
          rules: [{ apiGroups: ['komputer.komputer.ai'], apiVersions: ['v1alpha1'], operations: ['CREATE', 'UPDATE'], resources: ['komputerconnectors', 'komputeragents'] }],
          clientConfig,
          namespaceSelector: selector,
          matchConditions: conditions,
        };
  return { metadata: { name: 'komputer-connector-webhook' }, webhooks: [{ ...hook, ...overrides }] };
}

const urlConfig = (kind: 'mutating' | 'validating', path = kind === 'mutating' ? '/mutate/pods' : '/validate', bundle?: string): JsonObject => ({ url: `https://127.0.0.1:8443${path}`, caBundle: Buffer.from(bundle ?? certs.caCert).toString('base64') });
const serviceConfig = (kind: 'mutating' | 'validating', name = 'komputer-connector-webhook'): JsonObject => ({ service: { namespace: SYSTEM, name, path: kind === 'mutating' ? '/mutate/pods' : '/validate', port: 443 }, caBundle: Buffer.from(certs.caCert).toString('base64') });

interface World {
  namespaces: JsonObject[];
  connectors: JsonObject[];
  agents: JsonObject[];
  pods: JsonObject[];
}

function world(): World {
  const namespaces = [namespace(NS, enabled), namespace('kube-system'), namespace(SYSTEM), namespace('shared')];
  const connectors = [connectorObj(NS, 'github', GITHUB, { attachedAgents: 1, agentNames: ['researcher'] }), connectorObj(NS, 'linear', LINEAR, { attachedAgents: 1, agentNames: ['writer'] })];
  const agents = [agentObj(NS, 'researcher', ['github']), agentObj(NS, 'writer', ['linear'])];
  const pods = [injected(soloPod(NS, 'researcher-pod', 'researcher'), namespaces, connectors, agents), injected(soloPod(NS, 'writer-pod', 'writer'), namespaces, connectors, agents)];
  return { namespaces, connectors, agents, pods };
}

/** A healthy install served at https://127.0.0.1:8443 (as the e2e harness and `npm run dev`), with overrides. */
function snapshot(over: Partial<Snapshot> & { world?: World } = {}): Snapshot {
  const w = over.world ?? world();
  const base: Snapshot = {
    now: NOW,
    settings: { serviceNamespace: SYSTEM, serviceName: 'komputer-connector-webhook', webhookConfigName: 'komputer-connector-webhook', leaseName: 'komputer-connector-webhook', deploymentName: 'komputer-connector-webhook', certSecretName: 'komputer-connector-webhook-tls' },
    mutating: { ok: true, value: webhookConfig('mutating', urlConfig('mutating')) },
    validating: { ok: true, value: webhookConfig('validating', urlConfig('validating')) },
    namespaces: { ok: true, value: w.namespaces },
    connectors: { ok: true, value: w.connectors },
    agents: { ok: true, value: w.agents },
    pods: { ok: true, value: w.pods },
    policyConfigMap: { ok: true, value: undefined },
    lease: { ok: true, value: { spec: { holderIdentity: 'host-123', leaseDurationSeconds: 15, renewTime: new Date(NOW.getTime() - 1000).toISOString() } } },
    tls: [{ endpoint: '127.0.0.1:8443', serverName: '127.0.0.1', chain: [certs.cert] }],
    health: { via: 'https://127.0.0.1:8443', status: 200, body: 'ready\n' },
    podProbe: { namespace: NS, status: 201, warnings: [`agent komputer-webhook-check: KomputerAgent not found in namespace ${NS}, nothing injected for it`] },
    connectorProbe: { namespace: NS, status: 201, warnings: ['spec.url uses plain http:// to komputer-webhook-check.invalid, outside the cluster: the token and all tool traffic travel unencrypted. Use https://.'] },
  };
  const { world: _w, ...rest } = over;
  return { ...base, ...rest };
}

function notOk(results: readonly CheckResult[]): CheckResult[] {
  return results.filter((r) => r.status !== 'ok' && r.status !== 'skipped');
}

function show(results: readonly CheckResult[]): string {
  return results.map((r) => `${r.status} ${r.id} ${r.message}${r.remedy ? ` -- fix: ${r.remedy}` : ''}`).join('\n');
}

// --- the table --------------------------------------------------------------------------------

interface Case {
  readonly name: string;
  readonly snapshot: () => Promise<Snapshot> | Snapshot;
  /** Every non-ok/skipped result, as [id, status, message pattern]; nothing else may be non-ok. */
  readonly expect: readonly [string, CheckResult['status'], RegExp][];
  /** Extra ok/skipped lines that must be there. */
  readonly alsoOk?: readonly [string, CheckResult['status'], RegExp][];
}

const mutate = (w: World, f: (w: World) => void): World => {
  f(w);
  return w;
};

const cases: Case[] = [
  {
    name: 'a healthy install behind a URL: only ok and skipped lines',
    snapshot: () => snapshot(),
    expect: [],
    alsoOk: [
      ['webhook-config/mutating', 'ok', /^MutatingWebhookConfiguration komputer-connector-webhook: pods\.connectors\.komputer\.ai calls https:\/\/127\.0\.0\.1:8443\/mutate\/pods$/],
      ['webhook/tls', 'ok', /chains to the caBundle of pods\.connectors\.komputer\.ai and validate\.connectors\.komputer\.ai and covers 127\.0\.0\.1/],
      ['service/replicas', 'skipped', /the webhooks call a URL/],
      ['certificate/expiry', 'ok', /valid until/],
      ['policy/configmap', 'ok', /the built-in list is in force \(2 entries\)/],
      ['namespaces/enabled', 'ok', /^1 namespace enabled: team-a$/],
      ['pods/stale', 'ok', /^2 agent pods in enabled namespaces carry what their agents get now$/],
    ],
  },
  // webhook configurations
  { name: 'no MutatingWebhookConfiguration', snapshot: () => snapshot({ mutating: { ok: true, value: undefined }, podProbe: undefined }), expect: [['webhook-config/mutating', 'error', /not found: no agent pod gets its connectors/]] },
  { name: 'configuration unreadable', snapshot: () => snapshot({ validating: { ok: false, reason: 'forbidden: no' } }), expect: [['webhook-config/validating', 'error', /cannot read ValidatingWebhookConfiguration komputer-connector-webhook: forbidden/]] },
  {
    name: 'the pod webhook is missing from its configuration',
    snapshot: () => snapshot({ mutating: { ok: true, value: webhookConfig('mutating', urlConfig('mutating'), { name: 'other.example.com' }) }, podProbe: undefined }),
    expect: [['webhook-config/mutating', 'error', /has no webhook pods\.connectors\.komputer\.ai \(it has: other\.example\.com\)/]],
  },
  { name: 'a URL with the wrong path', snapshot: () => snapshot({ mutating: { ok: true, value: webhookConfig('mutating', urlConfig('mutating', '/validate')) } }), expect: [['webhook-config/mutating', 'error', /calls path \/validate of 127\.0\.0\.1:8443; the service serves it on \/mutate\/pods/]] },
  {
    name: 'a Service of another name',
    snapshot: () => snapshot({ mutating: { ok: true, value: webhookConfig('mutating', serviceConfig('mutating', 'someone-else')) }, deployment: { ok: true, value: deployment(2, 2) } }),
    expect: [['webhook-config/mutating', 'error', /calls service komputer-webhook-system\/someone-else, not komputer-webhook-system\/komputer-connector-webhook/]],
  },
  {
    name: 'no rule for pods/ephemeralcontainers: a warning',
    snapshot: () => snapshot({ mutating: { ok: true, value: webhookConfig('mutating', urlConfig('mutating'), { rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }] }) } }),
    expect: [['webhook-config/mutating', 'warning', /no rule for pods\/ephemeralcontainers UPDATE/]],
  },
  {
    name: 'wildcard rules cover everything',
    snapshot: () => snapshot({ mutating: { ok: true, value: webhookConfig('mutating', urlConfig('mutating'), { rules: [{ apiGroups: ['*'], apiVersions: ['*'], operations: ['*'], resources: ['*', '*/*'] }] }) } }),
    expect: [],
  },
  {
    name: 'the validating webhook does not cover agents',
    snapshot: () => snapshot({ validating: { ok: true, value: webhookConfig('validating', urlConfig('validating'), { rules: [{ apiGroups: ['komputer.komputer.ai'], apiVersions: ['v1alpha1'], operations: ['CREATE', 'UPDATE'], resources: ['komputerconnectors'] }] }) } }),
    expect: [['webhook-config/validating', 'error', /has no rule for komputeragents CREATE, komputeragents UPDATE/]],
  },
  {
    name: 'no caBundle',
    snapshot: () => snapshot({ validating: { ok: true, value: webhookConfig('validating', { url: 'https://127.0.0.1:8443/validate' }) } }),
    expect: [['webhook-config/validating', 'error', /validate\.connectors\.komputer\.ai has no caBundle/]],
  },
  // TLS
  {
    name: 'a caBundle from another CA',
    snapshot: () => snapshot({ mutating: { ok: true, value: webhookConfig('mutating', urlConfig('mutating', undefined, other.caCert)) } }),
    expect: [['webhook/tls', 'error', /the certificate served at 127\.0\.0\.1:8443 \(issued by CN=check-ca\) does not chain to the caBundle of pods\.connectors\.komputer\.ai \(CN=other-ca\)/]],
  },
  {
    name: 'a certificate that does not cover the host',
    snapshot: async () => snapshot({ tls: [{ endpoint: '127.0.0.1:8443', serverName: '127.0.0.1', chain: [(await servingCert(1, 90, { dns: ['webhook.example'] })).cert] }] }),
    expect: [['webhook/tls', 'error', /does not cover 127\.0\.0\.1 \(DNS:webhook\.example\)/]],
  },
  {
    name: 'no connection from here, but the API server reaches the webhook: a warning (twice: handshake and health)',
    snapshot: () => snapshot({ tls: [{ endpoint: '127.0.0.1:8443', serverName: '127.0.0.1', error: 'connect ECONNREFUSED 127.0.0.1:8443' }], health: { via: 'https://127.0.0.1:8443', error: 'connect ECONNREFUSED 127.0.0.1:8443' } }),
    expect: [
      ['webhook/tls', 'warning', /cannot connect to 127\.0\.0\.1:8443 from this machine \(connect ECONNREFUSED/],
      ['service/health', 'warning', /cannot connect to https:\/\/127\.0\.0\.1:8443 from this machine/],
    ],
    alsoOk: [['certificate/expiry', 'skipped', /no certificate seen/]],
  },
  // dry-run probes
  {
    name: "the API server's TLS error, verbatim in the remedy",
    snapshot: () =>
      snapshot({
        podProbe: { namespace: NS, status: 500, message: 'Internal error occurred: failed calling webhook "pods.connectors.komputer.ai": failed to call webhook: Post "https://127.0.0.1:8443/mutate/pods?timeout=5s": tls: failed to verify certificate: x509: certificate signed by unknown authority', warnings: [] },
      }),
    expect: [['webhook/admission', 'error', /^the API server cannot call pods\.connectors\.komputer\.ai: Post "https:\/\/127\.0\.0\.1:8443\/mutate\/pods\?timeout=5s": tls: failed to verify certificate: x509: certificate signed by unknown authority$/]],
  },
  { name: 'a dry-run pod admitted without the webhook', snapshot: () => snapshot({ podProbe: { namespace: NS, status: 201, warnings: [] } }), expect: [['webhook/admission', 'error', /admitted a dry-run agent pod in namespace team-a without calling/]] },
  { name: 'a dry-run pod refused by RBAC proves nothing', snapshot: () => snapshot({ podProbe: { namespace: NS, status: 403, message: 'pods is forbidden: User "x" cannot create resource "pods"', warnings: [] } }), expect: [['webhook/admission', 'warning', /proved nothing: pods is forbidden/]] },
  { name: 'the validating webhook does not answer (failurePolicy Ignore)', snapshot: () => snapshot({ connectorProbe: { namespace: NS, status: 201, warnings: [] } }), expect: [['webhook/validation', 'error', /without an answer from validate\.connectors\.komputer\.ai \(failurePolicy Ignore/]] },
  // health
  { name: 'not ready', snapshot: () => snapshot({ health: { via: 'https://127.0.0.1:8443', status: 503, body: 'not ready: caches not synced: agents\n' } }), expect: [['service/health', 'error', /^not ready: caches not synced: agents \(GET https:\/\/127\.0\.0\.1:8443\/readyz\)$/]] },
  // certificate expiry
  { name: 'a certificate with 20 days left: warning', snapshot: async () => snapshot({ tls: [{ endpoint: '127.0.0.1:8443', serverName: '127.0.0.1', chain: [(await servingCert(70, 90)).cert] }] }), expect: [['certificate/expiry', 'warning', /expires in 20d, at .*: its renewal is overdue/]] },
  { name: 'a certificate with 3 days left: error', snapshot: async () => snapshot({ tls: [{ endpoint: '127.0.0.1:8443', serverName: '127.0.0.1', chain: [(await servingCert(87, 90)).cert] }] }), expect: [['certificate/expiry', 'error', /expires in 3d, at /]] },
  { name: 'an expired certificate: error', snapshot: async () => snapshot({ tls: [{ endpoint: '127.0.0.1:8443', serverName: '127.0.0.1', chain: [(await servingCert(91, 90)).cert] }] }), expect: [['certificate/expiry', 'error', /expired at .* \(24h ago\): the API server refuses it/]] },
  {
    name: 'a short-lived certificate (2 days, half left) is judged on its lifetime: ok',
    snapshot: async () => snapshot({ tls: [{ endpoint: '127.0.0.1:8443', serverName: '127.0.0.1', chain: [(await servingCert(1, 2)).cert] }] }),
    expect: [],
    alsoOk: [['certificate/expiry', 'ok', /\(24h left\)/]],
  },
  // in-cluster: Service, Deployment, Secret
  {
    name: 'in-cluster, healthy: 2 of 2 replicas, the certificate from the Secret',
    snapshot: () => snapshot({ ...inCluster(), deployment: { ok: true, value: deployment(2, 2) } }),
    expect: [],
    alsoOk: [
      ['service/replicas', 'ok', /2 of 2 replicas ready/],
      ['webhook/tls', 'skipped', /no direct TLS handshake from here \(pass --endpoint/],
      ['certificate/expiry', 'ok', /in Secret komputer-webhook-system\/komputer-connector-webhook-tls\) is valid until/],
      ['service/health', 'ok', /ready \(GET the API server's proxy to service/],
    ],
  },
  { name: 'in-cluster: 0 replicas ready', snapshot: () => snapshot({ ...inCluster(), deployment: { ok: true, value: deployment(2, 0) } }), expect: [['service/replicas', 'error', /0 of 2 replicas ready/]] },
  { name: 'in-cluster: 1 of 2 replicas ready', snapshot: () => snapshot({ ...inCluster(), deployment: { ok: true, value: deployment(2, 1) } }), expect: [['service/replicas', 'warning', /1 of 2 replicas ready/]] },
  { name: 'in-cluster: no Deployment', snapshot: () => snapshot({ ...inCluster(), deployment: { ok: true, value: undefined } }), expect: [['service/replicas', 'error', /not found, but the webhooks call a Service/]] },
  {
    name: "in-cluster: the service proxy finds no endpoint",
    snapshot: () => snapshot({ ...inCluster(), deployment: { ok: true, value: deployment(2, 2) }, health: { via: 'proxy', status: 503, body: JSON.stringify({ kind: 'Status', message: 'no endpoints available for service "komputer-connector-webhook"' }) } }),
    expect: [['service/health', 'error', /not reachable through the API server's service proxy \(HTTP 503\): no endpoints available/]],
  },
  // lease
  { name: 'no Lease: a warning', snapshot: () => snapshot({ lease: { ok: true, value: undefined } }), expect: [['lease/leader', 'warning', /no Lease komputer-webhook-system\/komputer-connector-webhook/]] },
  { name: 'a released Lease', snapshot: () => snapshot({ lease: { ok: true, value: { spec: { holderIdentity: '', leaseDurationSeconds: 1, renewTime: new Date(NOW.getTime() - 60_000).toISOString() } } } }), expect: [['lease/leader', 'error', /held by no replica \(released 60s ago\)/]] },
  { name: 'a Lease not renewed for longer than its duration', snapshot: () => snapshot({ lease: { ok: true, value: { spec: { holderIdentity: 'gone-1', leaseDurationSeconds: 15, renewTime: new Date(NOW.getTime() - 47_000).toISOString() } } } }), expect: [['lease/leader', 'error', /held by gone-1, last renewed 47s ago \(lease duration 15s\)/]] },
  // policy
  {
    name: 'an invalid policy ConfigMap: the parser\'s reason',
    snapshot: () => snapshot({ policyConfigMap: { ok: true, value: { metadata: { name: 'komputer-connector-webhook-policy' }, data: { 'incompatible.yaml': 'entries:\n  - id: acme\n    allowedAuthType: [oauth]\n' } } } }),
    expect: [['policy/configmap', 'error', /is invalid: .*allowedAuthType/]],
  },
  { name: 'a policy ConfigMap without the key', snapshot: () => snapshot({ policyConfigMap: { ok: true, value: { metadata: { name: 'komputer-connector-webhook-policy' }, data: { 'policy.yaml': 'x' } } } }), expect: [['policy/configmap', 'warning', /has no key incompatible\.yaml/]] },
  {
    name: "an admin's entry makes an existing connector refused",
    snapshot: () =>
      snapshot({
        policyConfigMap: { ok: true, value: { metadata: { name: 'komputer-connector-webhook-policy' }, data: { 'incompatible.yaml': 'entries:\n  - id: linear\n    service: Linear\n    url: https://mcp.linear.app/mcp\n    why: tokens are gone\n    instead: use oauth\n' } } },
      }),
    expect: [
      ['connectors/policy', 'error', /^connector team-a\/linear would be refused if created now: Linear rejects static tokens: tokens are gone\.$/],
      // Refused at injection too: the agent does not get it, and its running pod still has it.
      ['agents/references', 'error', /^agent team-a\/writer: connector linear: policy entry linear refuses it: Linear rejects static tokens: tokens are gone\. Fix: use oauth$/],
      ['pods/stale', 'warning', /^pod team-a\/writer-pod runs with connectors its agent no longer gets: container agent \(agent writer\): linear removed$/],
    ],
    alsoOk: [['policy/configmap', 'ok', /3 entries in force \(1 from the ConfigMap\)/]],
  },
  // namespaces
  { name: 'no namespace enabled', snapshot: () => snapshot({ world: mutate(world(), (w) => (w.namespaces[0] = namespace(NS))), podProbe: undefined, connectorProbe: undefined }), expect: [['namespaces/enabled', 'warning', /no namespace is labelled komputer\.ai\/connector-injection=enabled/]] },
  {
    name: 'kube-system and the service namespace enabled: never selected',
    snapshot: () => snapshot({ world: mutate(world(), (w) => w.namespaces.push(namespace('kube-system', enabled), namespace(SYSTEM, enabled))) }),
    expect: [
      ['namespaces/reachable', 'error', /^namespace komputer-webhook-system is enabled, but pods\.connectors\.komputer\.ai never acts there: its namespaceSelector does not select it \(kube-system and the service's own namespace are never injected\)$/],
      ['namespaces/reachable', 'error', /^namespace kube-system is enabled, but pods\.connectors\.komputer\.ai never acts there/],
    ],
  },
  {
    name: 'a namespace excluded by a match condition only',
    snapshot: () => snapshot({ world: mutate(world(), (w) => w.namespaces.push(namespace('quiet', enabled))), mutating: { ok: true, value: webhookConfig('mutating', urlConfig('mutating'), { matchConditions: [{ name: 'not-quiet', expression: "request.namespace != 'quiet'" }, { name: 'cel', expression: 'object.metadata.labels.size() > 0' }] }) } }),
    expect: [['namespaces/reachable', 'error', /^namespace quiet is enabled, but pods\.connectors\.komputer\.ai never acts there: its match condition not-quiet excludes it$/]],
  },
  { name: 'a terminating enabled namespace', snapshot: () => snapshot({ world: mutate(world(), (w) => w.namespaces.push(namespace('leaving', enabled, { status: { phase: 'Terminating' } }))) }), expect: [['namespaces/reachable', 'warning', /^namespace leaving is enabled but terminating/]] },
  {
    name: 'the validating webhook selects another label',
    snapshot: () => snapshot({ validating: { ok: true, value: webhookConfig('validating', urlConfig('validating'), { namespaceSelector: { matchLabels: { validate: 'yes' } } }) }, connectorProbe: undefined }),
    expect: [['namespaces/reachable', 'warning', /^namespace team-a is enabled, but validate\.connectors\.komputer\.ai never acts there: its namespaceSelector does not select it; connectors and agents there are not validated$/]],
    alsoOk: [['webhook/validation', 'skipped', /no enabled namespace that validate\.connectors\.komputer\.ai selects/]],
  },
  {
    name: 'an objectSelector that misses agent pods',
    snapshot: () => snapshot({ mutating: { ok: true, value: webhookConfig('mutating', urlConfig('mutating'), { objectSelector: { matchLabels: { 'komputer.ai/squad': 'true' } } }) } }),
    expect: [['namespaces/reachable', 'error', /the objectSelector of pods\.connectors\.komputer\.ai does not select agent pods/]],
  },
  // connectors
  {
    name: 'a Notion token connector in an enabled namespace',
    snapshot: () => snapshot({ world: mutate(world(), (w) => w.connectors.push(connectorObj(NS, 'notion', { url: 'https://mcp.notion.com/mcp', authType: 'token' }, { attachedAgents: 0, agentNames: [] }))) }),
    expect: [['connectors/policy', 'error', /^connector team-a\/notion would be refused if created now: Notion rejects static tokens: /]],
  },
  {
    name: 'a Notion token connector elsewhere: out of scope unless an enabled agent gets it',
    snapshot: () => snapshot({ world: mutate(world(), (w) => w.connectors.push(connectorObj('shared', 'notion', { url: 'https://mcp.notion.com/mcp' }, { attachedAgents: 0, agentNames: [] }))) }),
    expect: [],
    alsoOk: [['connectors/policy', 'ok', /^2 connectors in use in enabled namespaces comply with the built-in list$/]],
  },
  {
    name: 'a shared Notion token connector injected into an enabled namespace',
    snapshot: () =>
      snapshot({
        world: mutate(world(), (w) => {
          w.connectors.push(connectorObj('shared', 'notion', { url: 'https://mcp.notion.com/mcp' }, { attachedAgents: 1, agentNames: ['team-a/reader'] }, { 'komputer.ai/shared-with-namespaces': NS }));
          w.agents.push(agentObj(NS, 'reader', ['shared/notion']));
        }),
      }),
    expect: [
      ['connectors/policy', 'error', /^connector shared\/notion would be refused if created now: Notion rejects static tokens/],
      ['agents/references', 'error', /^agent team-a\/reader: connector shared\/notion: policy entry notion refuses it: Notion rejects static tokens/],
    ],
  },
  {
    name: 'counts that differ from the truth, and a status never written',
    snapshot: () =>
      snapshot({
        world: mutate(world(), (w) => {
          w.connectors[0] = connectorObj(NS, 'github', GITHUB, { attachedAgents: 2, agentNames: ['gone', 'researcher'] });
          w.connectors.push(connectorObj(NS, 'fresh', GITHUB));
        }),
      }),
    expect: [
      ['connectors/counts', 'warning', /^connector team-a\/fresh: status says nothing, the controller computes 0 \[\]$/],
      ['connectors/counts', 'warning', /^connector team-a\/github: status says 2 \[gone, researcher\], the controller computes 1 \[researcher\]$/],
    ],
  },
  // agents
  {
    name: 'references that do not resolve, with the resolver\'s own reasons and kinds',
    snapshot: () =>
      snapshot({
        world: mutate(world(), (w) => {
          w.connectors.push(connectorObj('shared', 'wiki', LINEAR, { attachedAgents: 0, agentNames: [] }));
          w.connectors.push(connectorObj(NS, 'slack', { url: 'https://mcp.slack.com/mcp', disabled: true }, { attachedAgents: 1, agentNames: ['lost'] }));
          w.agents.push(agentObj(NS, 'lost', ['nowhere', 'shared/wiki', 'slack'], { officeManager: 'boss' }));
        }),
      }),
    expect: [
      ['agents/references', 'error', /^agent team-a\/lost: connector nowhere: connector not found in namespace team-a$/],
      ['agents/references', 'error', /^agent team-a\/lost: connector shared\/wiki: not found in namespace shared, or not shared with namespace team-a/],
      ['agents/references', 'warning', /^agent team-a\/lost: connector slack: it is disabled \(spec\.disabled: true\)/],
      ['agents/references', 'warning', /^agent team-a\/lost: office manager agent team-a\/boss not found/],
    ],
  },
  {
    name: 'two connectors of one name: a collision',
    snapshot: () =>
      snapshot({
        world: mutate(world(), (w) => {
          w.connectors.push(connectorObj('shared', 'github', GITHUB, { attachedAgents: 1, agentNames: ['team-a/researcher'] }, { 'komputer.ai/shared-with-namespaces': '*' }));
          w.agents[0] = agentObj(NS, 'researcher', ['github', 'shared/github']);
        }),
      }),
    expect: [['agents/references', 'error', /^agent team-a\/researcher: connector shared\/github: its name collides with github/]],
  },
  // pods
  {
    name: "a pod whose connector's URL and auth changed",
    snapshot: () => snapshot({ world: mutate(world(), (w) => (w.connectors[1] = connectorObj(NS, 'linear', { ...LINEAR, url: 'https://mcp.linear.app/v2/mcp', authType: 'oauth' }, { attachedAgents: 1, agentNames: ['writer'] }))) }),
    expect: [['pods/stale', 'warning', /^pod team-a\/writer-pod runs with connectors its agent no longer gets: container agent \(agent writer\): linear url, authType changed$/]],
  },
  {
    name: "a pod whose only connector was deleted (nothing resolves: injection adds nothing, but the pod still has it)",
    snapshot: () => snapshot({ world: mutate(world(), (w) => w.connectors.splice(1, 1)) }),
    expect: [
      ['pods/stale', 'warning', /^pod team-a\/writer-pod runs with connectors its agent no longer gets: container agent \(agent writer\): linear removed$/],
      ['agents/references', 'error', /^agent team-a\/writer: connector linear: connector not found/],
    ],
  },
  {
    name: 'a pod whose only connector was disabled',
    snapshot: () => snapshot({ world: mutate(world(), (w) => (w.connectors[1] = connectorObj(NS, 'linear', { ...LINEAR, disabled: true }, { attachedAgents: 1, agentNames: ['writer'] }))) }),
    expect: [
      ['pods/stale', 'warning', /^pod team-a\/writer-pod .*: linear removed$/],
      ['agents/references', 'warning', /^agent team-a\/writer: connector linear: it is disabled/],
    ],
  },
  {
    name: 'a connector added to the agent, and a token Secret that changed',
    snapshot: () =>
      snapshot({
        world: mutate(world(), (w) => {
          w.agents[0] = agentObj(NS, 'researcher', ['github', 'linear']);
          w.connectors[1] = connectorObj(NS, 'linear', LINEAR, { attachedAgents: 2, agentNames: ['researcher', 'writer'] });
          w.connectors[0] = connectorObj(NS, 'github', { ...GITHUB, authSecretKeyRef: { name: 'gh-2', key: 'token' } }, { attachedAgents: 1, agentNames: ['researcher'] });
        }),
      }),
    expect: [['pods/stale', 'warning', /^pod team-a\/researcher-pod .*\(agent researcher\): linear added, CONNECTOR_GITHUB_TOKEN now references another Secret key$/]],
  },
  {
    name: 'finished, deleted, opted-out and not-enabled pods are not judged',
    snapshot: () =>
      snapshot({
        world: mutate(world(), (w) => {
          w.namespaces.push(namespace('off'));
          w.agents.push(agentObj('off', 'researcher', ['github']));
          w.pods.push(
            soloPod(NS, 'done', 'researcher', { status: { phase: 'Succeeded' } }),
            soloPod(NS, 'going', 'researcher', { metadata: { deletionTimestamp: NOW.toISOString() } }),
            soloPod(NS, 'opted-out', 'researcher', { metadata: { annotations: { 'komputer.ai/inject-connectors': 'false' } } }),
            soloPod('off', 'elsewhere', 'researcher'),
          );
        }),
      }),
    expect: [],
  },
  {
    name: 'a pod created before the namespace was enabled needs a restart',
    snapshot: () => snapshot({ world: mutate(world(), (w) => w.pods.push(soloPod(NS, 'early', 'researcher'))) }),
    expect: [['pods/stale', 'warning', /^pod team-a\/early .*: github added$/]],
  },
  // reads that failed
  {
    name: 'connectors cannot be listed: the checks that need them say so',
    snapshot: () => snapshot({ connectors: { ok: false, reason: 'forbidden: no' } }),
    expect: [
      ['connectors/policy', 'error', /cannot judge: listing connectors failed \(forbidden: no\)/],
      ['connectors/counts', 'error', /cannot judge/],
      ['agents/references', 'error', /cannot judge/],
      ['pods/stale', 'error', /cannot judge/],
    ],
  },
];

function inCluster(): Partial<Snapshot> {
  return {
    mutating: { ok: true, value: webhookConfig('mutating', serviceConfig('mutating')) },
    validating: { ok: true, value: webhookConfig('validating', serviceConfig('validating')) },
    tls: [],
    health: { via: "the API server's proxy to service komputer-webhook-system/komputer-connector-webhook:443", status: 200, body: 'ready\n' },
    secretCertificate: { ok: true, value: certs.cert },
  };
}

function deployment(want: number, ready: number): JsonObject {
  return { spec: { replicas: want }, status: { readyReplicas: ready } };
}

describe('check: the pure checks', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const results = runChecks(await c.snapshot());
      for (const id of CHECKS.map((k) => k.id)) assert.ok(results.some((r) => r.id === id), `${id} reported:\n${show(results)}`);
      const bad = notOk(results);
      for (const [id, status, pattern] of c.expect) {
        const i = bad.findIndex((r) => r.id === id && r.status === status && pattern.test(r.message));
        assert.ok(i >= 0, `expected ${status} ${id} ${pattern}; got:\n${show(results)}`);
        assert.ok((bad[i]!.remedy ?? '').length > 0, `a remedy on ${show([bad[i]!])}`);
        bad.splice(i, 1);
      }
      assert.deepEqual(bad, [], `unexpected:\n${show(bad)}`);
      for (const [id, status, pattern] of c.alsoOk ?? []) assert.ok(results.some((r) => r.id === id && r.status === status && pattern.test(r.message)), `expected ${status} ${id} ${pattern}; got:\n${show(results)}`);
      assert.equal(exitCodeOf(results), c.expect.some(([, s]) => s === 'error') ? 1 : 0);
      for (const r of results) if (r.status === 'ok' || r.status === 'skipped') assert.equal(r.remedy, undefined, `no remedy on ${r.status}: ${show([r])}`);
    });
  }
});

describe('check: helpers', () => {
  test('expiry thresholds: 30 and 7 days for long-lived certificates, a third and a tenth of a short lifetime', () => {
    const table: [number, number, number][] = [
      [90 * DAY, 30 * DAY, 7 * DAY],
      [365 * DAY, 30 * DAY, 7 * DAY],
      [30 * DAY, 10 * DAY, 3 * DAY],
      [120_000, 40_000, 12_000],
    ];
    for (const [lifetime, warn, error] of table) assert.deepEqual(expiryThresholds(lifetime), { warnMs: warn, errorMs: error });
  });

  test('label selectors, as the API server evaluates them', () => {
    const labels = { a: '1', b: '2' };
    const table: [unknown, boolean][] = [
      [undefined, true],
      [{}, true],
      [{ matchLabels: { a: '1' } }, true],
      [{ matchLabels: { a: '2' } }, false],
      [{ matchExpressions: [{ key: 'c', operator: 'NotIn', values: ['x'] }] }, true],
      [{ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, false],
      [{ matchExpressions: [{ key: 'b', operator: 'In', values: ['2', '3'] }] }, true],
      [{ matchExpressions: [{ key: 'c', operator: 'In', values: ['2'] }] }, false],
      [{ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, true],
      [{ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, false],
      [{ matchExpressions: [{ key: 'a', operator: 'Gt' }] }, false],
    ];
    for (const [selector, want] of table) assert.equal(selects(selector as never, labels), want, JSON.stringify(selector));
  });

  test('probe verdicts', () => {
    const table: [Parameters<typeof judgeProbe>[0], string][] = [
      [{ status: 201, warnings: ['agent komputer-webhook-check: KomputerAgent not found in namespace a, nothing injected for it'] }, 'reached'],
      [{ status: 201, warnings: ['connectors not injected: namespace a is not enabled (komputer.ai/connector-injection=enabled is missing)'] }, 'reached'],
      [{ status: 403, message: 'violates PodSecurity', warnings: ['agent komputer-webhook-check: KomputerAgent not found'] }, 'reached'],
      [{ status: 500, message: 'failed calling webhook "pods.connectors.komputer.ai": x509', warnings: [] }, 'failed'],
      [{ status: 201, warnings: ['something else'] }, 'not-called'],
      [{ status: 403, message: 'forbidden', warnings: [] }, 'inconclusive'],
      [{ warnings: [], error: 'socket hang up' }, 'inconclusive'],
    ];
    for (const [probe, kind] of table) assert.equal(judgeProbe(probe, podProbeEvidence).kind, kind, JSON.stringify(probe));
  });

  test('Warning headers', () => {
    assert.deepEqual(parseWarnings(['299 - "one"', '299 - "two, with \\"quotes\\""']), ['one', 'two, with "quotes"']);
    assert.deepEqual(parseWarnings(['299 - "a", 299 - "b"']), ['a', 'b']);
  });

  test('the probe plan: URL webhooks, a Service with and without --endpoint, the probe namespace', () => {
    const url = planProbes(snapshot());
    assert.deepEqual(url.tls, [{ endpoint: '127.0.0.1:8443', host: '127.0.0.1', port: 8443, serverName: '127.0.0.1' }]);
    assert.deepEqual(url.health, { direct: { host: '127.0.0.1', port: 8443, serverName: '127.0.0.1', via: 'https://127.0.0.1:8443' } });
    assert.equal(url.deployment, false);
    assert.equal(url.podProbeNamespace, NS);
    assert.equal(url.connectorProbeNamespace, NS);

    const svc = planProbes(snapshot(inCluster()));
    assert.deepEqual(svc.tls, []);
    assert.deepEqual(svc.health, { proxy: { namespace: SYSTEM, name: 'komputer-connector-webhook', path: '/mutate/pods', port: 443, via: "the API server's proxy to service komputer-webhook-system/komputer-connector-webhook:443" } });
    assert.equal(svc.deployment, true);

    const base = snapshot(inCluster());
    const forwarded = planProbes({ ...base, settings: { ...base.settings, endpoint: '127.0.0.1:9443' } });
    assert.deepEqual(forwarded.tls, [{ endpoint: '127.0.0.1:9443', host: '127.0.0.1', port: 9443, serverName: 'komputer-connector-webhook.komputer-webhook-system.svc' }]);

    // The first enabled namespace (by name) that is selected and not terminating.
    const w = world();
    w.namespaces.push(namespace('aaa-leaving', enabled, { metadata: { name: 'aaa-leaving', deletionTimestamp: NOW.toISOString(), labels: { ...enabled } } }), namespace('kube-system', enabled), namespace('b-team', enabled));
    assert.equal(planProbes(snapshot({ world: w })).podProbeNamespace, 'b-team');
    assert.equal(planProbes(snapshot({ world: mutate(world(), (x) => (x.namespaces[0] = namespace(NS))) })).podProbeNamespace, undefined);
  });

  test('stale pods: squad members and ephemeral containers, judged per container', () => {
    const w = world();
    const squadAgents = [agentObj(NS, 'alpha', ['github'], {}), { ...agentObj(NS, 'beta', ['linear']), metadata: { name: 'beta', namespace: NS, labels: { 'komputer.ai/squad': 's1' } } }];
    const agents = [...w.agents, ...squadAgents];
    const squad: JsonObject = {
      metadata: { name: 'squad-pod', namespace: NS, labels: { 'komputer.ai/squad': 'true', 'komputer.ai/squad-name': 's1', 'komputer.ai/member-alpha': 'true' } },
      spec: { containers: [{ name: 'alpha', image: 'agent:1' }] },
    };
    const created = injected(squad, w.namespaces, w.connectors, agents);
    // beta joined later as an ephemeral container, with linear injected at the time.
    const view = storeOf(w.namespaces, w.connectors, agents);
    const linearEnv = (((injected(soloPod(NS, 'x', 'writer'), w.namespaces, w.connectors, agents).spec as JsonObject).containers as JsonObject[])[0]!.env as unknown[]).slice(1);
    const withMember = structuredClone(created);
    (withMember.spec as JsonObject).ephemeralContainers = [{ name: 'beta', image: 'agent:1', env: linearEnv }, { name: 'debugger', image: 'busybox' }];
    assert.deepEqual(stalePods([withMember], view), [], 'as created: current');

    const changed = storeOf(w.namespaces, w.connectors.map((c) => ((c.metadata as { name: string }).name === 'linear' ? connectorObj(NS, 'linear', { ...LINEAR, url: 'https://mcp.linear.app/v2' }) : c)), agents);
    assert.deepEqual(stalePods([withMember], changed), [{ namespace: NS, name: 'squad-pod', containers: [{ container: 'beta', agent: 'beta', changes: ['linear url changed'], revoked: [] }] }]);
  });

  test('env changes: added, removed, changed fields, token variables', () => {
    const mcp = (v: object): { name: string; value: string } => ({ name: 'KOMPUTER_MCP_SERVERS', value: JSON.stringify(v) });
    const tok = (name: string, secret: string): object => ({ name, valueFrom: { secretKeyRef: { name: secret, key: 'token' } } });
    const gh = { type: 'http', url: 'https://a/', tokenEnv: 'CONNECTOR_GH_TOKEN' };
    const table: [unknown[], unknown[], string[]][] = [
      [[], [], []],
      [[tok('CONNECTOR_GH_TOKEN', 's'), mcp({ gh })], [tok('CONNECTOR_GH_TOKEN', 's'), mcp({ gh })], []],
      [[], [tok('CONNECTOR_GH_TOKEN', 's'), mcp({ gh })], ['gh added']],
      [[tok('CONNECTOR_GH_TOKEN', 's'), mcp({ gh })], [], ['gh removed']],
      [[mcp({ gh })], [mcp({ gh: { ...gh, url: 'https://b/', headerName: 'X-K' } })], ['gh url, headerName changed']],
      [[tok('CONNECTOR_GH_TOKEN', 's'), mcp({ gh })], [tok('CONNECTOR_GH_TOKEN', 't'), mcp({ gh })], ['CONNECTOR_GH_TOKEN now references another Secret key']],
      [[{ name: 'A', value: '1' }, { name: 'A', value: '1' }], [{ name: 'A', value: '1' }], ['its connector variables differ from what a new pod gets']],
    ];
    // The token variables are the decision's own (never guessed from a name pattern).
    for (const [before, after, want] of table) assert.deepEqual(envChanges(before, after, ['CONNECTOR_GH_TOKEN']), want, JSON.stringify({ before, after }));
    // A variable the decision does not write is not called a token, whatever its name.
    assert.deepEqual(envChanges([tok('CONNECTOR_GH_TOKEN', 's')], [tok('CONNECTOR_GH_TOKEN', 't')], []), ['its connector variables differ from what a new pod gets']);
  });
});

// --- output ---------------------------------------------------------------------------------------

describe('check: output', () => {
  const results: CheckResult[] = [
    { id: 'webhook-config/mutating', status: 'ok', message: 'fine' },
    { id: 'service/replicas', status: 'skipped', message: 'not in a cluster' },
    { id: 'pods/stale', status: 'warning', message: 'pod a/b is stale', remedy: 'restart it', subject: 'a/b' },
    { id: 'agents/references', status: 'error', message: 'agent a/c: connector x: missing', remedy: 'create it', subject: 'a/c' },
  ];
  const report = { context: 'ctx', server: 'https://k:6443', service: `${SYSTEM}/komputer-connector-webhook`, results };

  test('text: one line per result, the remedy on non-ok lines, a summary with the exit code', () => {
    assert.equal(
      formatText(report),
      [
        'komputer-webhook check: context ctx (https://k:6443), service komputer-webhook-system/komputer-connector-webhook',
        'ok       webhook-config/mutating  fine',
        'skipped  service/replicas         not in a cluster',
        'warning  pods/stale               pod a/b is stale -- fix: restart it',
        'error    agents/references        agent a/c: connector x: missing -- fix: create it',
        '1 error(s), 1 warning(s), 1 ok, 1 skipped: errors found (exit 1)',
        '',
      ].join('\n'),
    );
    assert.match(formatText({ ...report, results: results.slice(0, 3) }), /0 error\(s\), 1 warning\(s\), 1 ok, 1 skipped: healthy, with warnings \(exit 0\)\n$/);
    assert.match(formatText({ ...report, results: results.slice(0, 2) }), /: healthy \(exit 0\)\n$/);
  });

  test('json: the same results, the summary and the exit code', () => {
    const parsed = JSON.parse(formatJson(report)) as Record<string, unknown>;
    assert.deepEqual(parsed, { context: 'ctx', server: 'https://k:6443', service: `${SYSTEM}/komputer-connector-webhook`, healthy: false, exitCode: 1, summary: { ok: 1, skipped: 1, warning: 1, error: 1 }, checks: results });
    assert.equal((JSON.parse(formatJson({ ...report, results: results.slice(0, 3) })) as { exitCode: number }).exitCode, 0, 'warnings alone exit 0');
  });
});

// --- bad input through the CLI ----------------------------------------------------------------------

describe('check: bad input exits 2 with one line, no stack trace', () => {
  const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
  const dir = mkdtempSync(join(tmpdir(), 'kcw-check-'));
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const kubeconfig = (server: string): string =>
    `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: "${server}"}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: here\n  context: {cluster: c, user: u}\ncurrent-context: here\n`;
  const unreachable = file('unreachable.yaml', kubeconfig('https://127.0.0.1:1'));
  const cases: [string, string[], NodeJS.ProcessEnv, RegExp][] = [
    ['a kubeconfig that does not exist', ['--kubeconfig', join(dir, 'nope.yaml')], {}, /^komputer-webhook: cannot read kubeconfig .*nope\.yaml: no such file\n$/],
    ['no kubeconfig at all', [], { KUBECONFIG: '', HOME: join(dir, 'empty-home') }, /^komputer-webhook: no kubeconfig: pass --kubeconfig FILE or set \$KUBECONFIG/],
    ['a kubeconfig that is not YAML', ['--kubeconfig', file('bad.yaml', 'clusters: [\n')], {}, /^komputer-webhook: cannot load kubeconfig .*bad\.yaml: /],
    ['a context that does not exist', ['--kubeconfig', unreachable, '--context', 'there'], {}, /^komputer-webhook: context "there" is not in the kubeconfig \(it has: here\)\n$/],
    ['an unreachable API server', ['--kubeconfig', unreachable], {}, /^komputer-webhook: cannot reach the API server https:\/\/127\.0\.0\.1:1 \(context here\): connect ECONNREFUSED/],
    ['a bad --endpoint', ['--kubeconfig', unreachable, '--endpoint', 'nohost'], {}, /^komputer-webhook: --endpoint must be host:port/],
    ['a bad --timeout', ['--kubeconfig', unreachable, '--timeout', 'soon'], {}, /^komputer-webhook: --timeout must be a duration/],
    ['a bad -o', ['--kubeconfig', unreachable, '-o', 'yaml'], {}, /invalid/],
  ];
  for (const [name, args, env, pattern] of cases) {
    test(name, () => {
      const r = spawnSync(process.execPath, [CLI, 'check', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
      assert.equal(r.stdout, '');
    });
  }
});
