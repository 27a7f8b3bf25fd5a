// Pure helpers over the webhook configurations as the API server stores them: decoding the
// fields `check` judges, label selectors, the simple match conditions the project ships, where
// the service is reached, and the dry-run probe objects with the evidence that a webhook
// answered them.

import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { chainsTo, parseCerts } from '../certs/bundle.ts';
import { GROUP, LABEL_AGENT_NAME, LABEL_MEMBER_PREFIX, LABEL_SQUAD, LABEL_SQUAD_NAME, VERSION, CONNECTOR_KIND } from '../config/names.ts';
import { PATHS } from '../admission/handlers.ts';
import { isObject, type JsonObject } from '../model/objects.ts';

/** The webhooks of manifests/base/webhooks.yaml (and the Helm chart). */
export const POD_WEBHOOK = 'pods.connectors.komputer.ai';
export const VALIDATING_WEBHOOK = 'validate.connectors.komputer.ai';

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] }[];
}

export interface Rule {
  readonly apiGroups: readonly string[];
  readonly apiVersions: readonly string[];
  readonly operations: readonly string[];
  readonly resources: readonly string[];
}

export interface ServiceRef {
  readonly namespace: string;
  readonly name: string;
  readonly path: string;
  readonly port: number;
}

export interface WebhookEntry {
  readonly name: string;
  readonly url?: string;
  readonly service?: ServiceRef;
  /** Decoded PEM; '' when the configuration has none. */
  readonly caBundle: string;
  readonly namespaceSelector: LabelSelector | undefined;
  readonly objectSelector: LabelSelector | undefined;
  readonly matchConditions: readonly { readonly name: string; readonly expression: string }[];
  readonly rules: readonly Rule[];
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function selectorOf(value: unknown): LabelSelector | undefined {
  if (!isObject(value)) return undefined;
  const labels = isObject(value.matchLabels) ? Object.fromEntries(Object.entries(value.matchLabels).filter((e): e is [string, string] => typeof e[1] === 'string')) : undefined;
  const exprs = Array.isArray(value.matchExpressions)
    ? value.matchExpressions.filter(isObject).map((e) => ({ key: typeof e.key === 'string' ? e.key : '', operator: typeof e.operator === 'string' ? e.operator : '', values: strings(e.values) }))
    : undefined;
  return { ...(labels ? { matchLabels: labels } : {}), ...(exprs ? { matchExpressions: exprs } : {}) };
}

/** The webhooks of a Mutating/ValidatingWebhookConfiguration, decoded leniently. */
export function webhooksOf(config: JsonObject | undefined): WebhookEntry[] {
  if (!config || !Array.isArray(config.webhooks)) return [];
  return config.webhooks.filter(isObject).map((w) => {
    const cc = isObject(w.clientConfig) ? w.clientConfig : {};
    const svc = isObject(cc.service) ? cc.service : undefined;
    const caBundle = typeof cc.caBundle === 'string' && cc.caBundle !== '' ? Buffer.from(cc.caBundle, 'base64').toString('utf8') : '';
    return {
      name: typeof w.name === 'string' ? w.name : '',
      ...(typeof cc.url === 'string' ? { url: cc.url } : {}),
      ...(svc
        ? {
            service: {
              namespace: typeof svc.namespace === 'string' ? svc.namespace : '',
              name: typeof svc.name === 'string' ? svc.name : '',
              path: typeof svc.path === 'string' ? svc.path : '/',
              port: typeof svc.port === 'number' ? svc.port : 443,
            },
          }
        : {}),
      caBundle,
      namespaceSelector: selectorOf(w.namespaceSelector),
      objectSelector: selectorOf(w.objectSelector),
      matchConditions: Array.isArray(w.matchConditions)
        ? w.matchConditions.filter(isObject).map((m) => ({ name: typeof m.name === 'string' ? m.name : '', expression: typeof m.expression === 'string' ? m.expression : '' }))
        : [],
      rules: Array.isArray(w.rules)
        ? w.rules.filter(isObject).map((r) => ({ apiGroups: strings(r.apiGroups), apiVersions: strings(r.apiVersions), operations: strings(r.operations), resources: strings(r.resources) }))
        : [],
    };
  });
}

/** Kubernetes label-selector semantics; an absent selector selects everything. */
export function selects(selector: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const value = labels[e.key];
    switch (e.operator) {
      case 'In':
        if (!has || !(e.values ?? []).includes(value!)) return false;
        break;
      case 'NotIn':
        if (has && (e.values ?? []).includes(value!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false; // the API server rejects other operators; nothing is selected by one
    }
  }
  return true;
}

/**
 * The namespaces a webhook's match conditions exclude, for the one form the project ships
 * (`request.namespace != 'name'`); other CEL expressions are returned as not evaluated.
 */
export function conditionExclusions(entry: WebhookEntry): { excluded: Map<string, string>; unevaluated: string[] } {
  const excluded = new Map<string, string>();
  const unevaluated: string[] = [];
  for (const c of entry.matchConditions) {
    const m = /^\s*request\.namespace\s*!=\s*(['"])([^'"]*)\1\s*$/.exec(c.expression);
    if (m) excluded.set(m[2]!, c.name);
    else unevaluated.push(c.name);
  }
  return { excluded, unevaluated };
}

/** Why a webhook does not act in a namespace with these labels, or undefined when it does. */
export function namespaceExclusion(entry: WebhookEntry, namespace: string, labels: Readonly<Record<string, string>>): string | undefined {
  // The API server sets kubernetes.io/metadata.name on every namespace; a snapshot of an old
  // object may lack it.
  const full = { 'kubernetes.io/metadata.name': namespace, ...labels };
  if (!selects(entry.namespaceSelector, full)) return `its namespaceSelector does not select it`;
  const cond = conditionExclusions(entry).excluded.get(namespace);
  if (cond !== undefined) return `its match condition ${cond} excludes it`;
  return undefined;
}

function covers(values: readonly string[], want: string): boolean {
  return values.includes('*') || values.includes(want);
}

/** Rule resources as the API server matches them: `*` is every resource, `pods/*` every subresource of pods. */
function resourceCovered(resources: readonly string[], resource: string): boolean {
  const [main, sub] = resource.split('/');
  return resources.some((r) => r === resource || r === '*/*' || (sub === undefined ? r === '*' : r === `${main}/*` || r === `*/${sub}`));
}

/** Does some rule of the webhook send this request? `resource` may be `pods/ephemeralcontainers`. */
export function ruleCovers(entry: WebhookEntry, group: string, version: string, resource: string, operation: string): boolean {
  return entry.rules.some((r) => covers(r.apiGroups, group) && covers(r.apiVersions, version) && covers(r.operations, operation) && resourceCovered(r.resources, resource));
}

/** The labels the platform's operator puts on agent pods (SPEC.md), for the objectSelector check. */
export const AGENT_POD_LABELS: readonly Readonly<Record<string, string>>[] = [
  { [LABEL_AGENT_NAME]: 'agent', [LABEL_SQUAD]: 'false', [`${LABEL_MEMBER_PREFIX}agent`]: 'true' },
  { [LABEL_SQUAD]: 'true', [LABEL_SQUAD_NAME]: 'squad', [`${LABEL_MEMBER_PREFIX}agent`]: 'true' },
];

export const EXPECTED_PATHS = { mutating: PATHS.mutatePods, validating: PATHS.validate } as const;

/** `host:port` of a webhook URL (port 443 when unset), and the host the API server verifies. */
export function urlEndpoint(url: string): { endpoint: string; host: string; port: number; path: string } | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'https:') return undefined;
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port ? Number(u.port) : 443;
  return { endpoint: `${u.hostname}:${port}`, host, port, path: u.pathname };
}

/** The DNS name the API server verifies for a Service reference. */
export function serviceHost(ref: Pick<ServiceRef, 'name' | 'namespace'>): string {
  return `${ref.name}.${ref.namespace}.svc`;
}

/** How the webhook describes where it sends requests, for messages. */
export function describeTarget(entry: WebhookEntry): string {
  if (entry.url !== undefined) return entry.url;
  if (entry.service) return `service ${entry.service.namespace}/${entry.service.name}:${entry.service.port}${entry.service.path}`;
  return '(no clientConfig)';
}

// --- certificates ---------------------------------------------------------------------------

/**
 * Does the served chain (leaf first) lead to a CA in the bundle? Each step uses the server's
 * own chainsTo (src/certs/bundle.ts), so `check` and the service's readiness agree.
 */
export function chainVerifies(chain: readonly string[], bundle: string): boolean {
  let current = chain[0];
  const rest = chain.slice(1);
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    if (chainsTo(current, bundle)) return true;
    const cert = new X509Certificate(current);
    const next = rest.find((pem) => {
      try {
        const issuer = new X509Certificate(pem);
        return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
      } catch {
        return false;
      }
    });
    current = next;
  }
  return false;
}

export function coversHost(certPem: string, host: string): boolean {
  const cert = new X509Certificate(certPem);
  return isIP(host) !== 0 ? cert.checkIP(host) !== undefined : cert.checkHost(host) !== undefined;
}

/** `CN=...` of a certificate's subject, for messages. */
export function commonName(subjectOrIssuer: string): string {
  const cn = subjectOrIssuer.split('\n').find((l) => l.startsWith('CN='));
  return cn ?? subjectOrIssuer.split('\n')[0] ?? '?';
}

export function bundleNames(bundle: string): string {
  const certs = parseCerts(bundle);
  return certs.length === 0 ? 'no certificate' : certs.map((c) => commonName(c.subject)).join(', ');
}

// --- the dry-run probes ---------------------------------------------------------------------

/** Name of the probe objects; also the agent the probe pod names (it does not exist). */
export const PROBE_NAME = 'komputer-webhook-check';
/** Host of the probe connector's URL (`.invalid` never resolves). */
export const PROBE_HOST = 'komputer-webhook-check.invalid';

/**
 * A solo agent pod for a server-side dry run (never stored). It names an agent that does not
 * exist, so the pod webhook always answers with a warning that proves it was called; it is
 * shaped to pass the `restricted` Pod Security level and a ResourceQuota that wants limits.
 */
export function probePod(namespace: string): JsonObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${PROBE_NAME}-`,
      namespace,
      labels: { [LABEL_SQUAD]: 'false', [LABEL_AGENT_NAME]: PROBE_NAME, [`${LABEL_MEMBER_PREFIX}${PROBE_NAME}`]: 'true' },
      annotations: { 'komputer.ai/check-probe': 'server-side dry run of komputer-webhook check; never stored' },
    },
    spec: {
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'agent',
          image: 'registry.k8s.io/pause:3.10',
          resources: { requests: { cpu: '1m', memory: '8Mi' }, limits: { cpu: '10m', memory: '16Mi' } },
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

/** A connector for a server-side dry run: plain http:// outside the cluster, so the validating webhook warns. */
export function probeConnector(namespace: string): JsonObject {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: CONNECTOR_KIND,
    metadata: { generateName: `${PROBE_NAME}-`, namespace },
    spec: { type: 'remote', service: PROBE_NAME, url: `http://${PROBE_HOST}/mcp` },
  };
}

export type ProbeVerdict =
  | { readonly kind: 'reached' }
  /** The API server tried and failed: its own text. */
  | { readonly kind: 'failed'; readonly text: string }
  /** Admitted without the webhook's answer (not called, or failurePolicy Ignore swallowed a failure). */
  | { readonly kind: 'not-called' }
  /** Refused before it proved anything (RBAC, a missing ServiceAccount, ...), or no answer at all. */
  | { readonly kind: 'inconclusive'; readonly text: string };

/** What a dry-run answer says about the webhook; `evidence` recognises its warning. */
export function judgeProbe(probe: { status?: number; message?: string; warnings: readonly string[]; error?: string }, evidence: (warning: string) => boolean): ProbeVerdict {
  if (probe.warnings.some(evidence)) return { kind: 'reached' };
  if (probe.status === undefined) return { kind: 'inconclusive', text: probe.error ?? 'no answer' };
  const text = probe.message ?? `HTTP ${probe.status}`;
  if (probe.status >= 400 && /failed calling webhook|failed to call webhook/.test(text)) return { kind: 'failed', text };
  if (probe.status < 300) return { kind: 'not-called' };
  return { kind: 'inconclusive', text };
}

export const podProbeEvidence = (w: string): boolean => w.includes(`agent ${PROBE_NAME}:`) || w.startsWith('connectors not injected: ');
export const connectorProbeEvidence = (w: string): boolean => w.includes(PROBE_HOST);
