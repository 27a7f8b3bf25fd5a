// The I/O of `komputer-webhook check`: reads from the API server of the current kubeconfig
// context, a TLS handshake with the webhook, its /readyz, and two server-side dry runs. It
// never writes: every request is a GET, except the two creates with `dryRun=All`, which the
// API server runs through admission (so it must call the webhooks) and then discards.
//
// Why the dry runs: the only party whose trust in the caBundle matters is the API server, and
// for a webhook behind a Service this machine often cannot connect to the service at all. A
// dry-run create of an agent pod in an enabled namespace makes the API server call the pod
// webhook exactly as for a real pod; its failure carries the API server's own TLS error
// (`x509: certificate signed by unknown authority`, `... has expired`), which the check
// reports verbatim. The pod names an agent that does not exist, so the webhook always
// answers with a warning: that warning is the proof it was called. The validating webhook
// has failurePolicy Ignore, so a failed call is not visible in the answer; a dry-run
// connector with a plain http:// URL outside the cluster makes it answer with a warning
// instead, and no warning means it was not reached. Health goes through the API server's
// service proxy for a Service (its proxy does not verify the backend's certificate, hence
// the dry runs), or straight to the URL when the webhooks call one.
//
// Requests go through @kubernetes/client-node's KubeConfig (credentials, exec plugins, CA),
// with node:https underneath so that the admission warnings (Warning headers) of a dry run
// and the API server's clock (Date header) are visible.

import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import path from 'node:path';
import { connect as tlsConnect, type DetailedPeerCertificate } from 'node:tls';
import { KubeConfig } from '@kubernetes/client-node';
import { shareDispatchers } from '../cluster/kubeconfig.ts';
import { AGENT_PLURAL, CONNECTOR_PLURAL, GROUP, LABEL_SQUAD, POLICY_CONFIGMAP_NAME, VERSION } from '../config/names.ts';
import { isObject, type JsonObject } from '../model/objects.ts';
import { planProbes } from './checks.ts';
import { failedRead, fetched, type CheckSettings, type DryRunProbe, type Fetched, type HealthProbe, type Snapshot, type TlsProbe } from './snapshot.ts';
import { probeConnector, probePod } from './webhooks.ts';

/** Unusable input (no kubeconfig, unknown context, unreachable API server): exit 2, one line. */
export class CheckInputError extends Error {
  override name = 'CheckInputError';
}

export interface GatherOptions {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  readonly settings: CheckSettings;
  /** Per request (and per TLS handshake). */
  readonly timeoutMs: number;
}

export interface Gathered {
  readonly snapshot: Snapshot;
  readonly context: string;
  readonly server: string;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** The kubeconfig as kubectl would pick it, with `context` made current; CheckInputError otherwise. */
export function loadKubeconfig(file: string | undefined, context: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (file) kc.loadFromFile(file);
    else {
      const fallback = path.join(homedir(), '.kube', 'config');
      if (!process.env.KUBECONFIG && !existsSync(fallback) && !existsSync(SERVICE_ACCOUNT_TOKEN)) {
        throw new CheckInputError(`no kubeconfig: pass --kubeconfig FILE or set $KUBECONFIG (${fallback} does not exist, and this is not a pod)`);
      }
      kc.loadFromDefault();
    }
  } catch (e) {
    if (e instanceof CheckInputError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const which = file ?? process.env.KUBECONFIG ?? '~/.kube/config';
    throw new CheckInputError(code === 'ENOENT' ? `cannot read kubeconfig ${which}: no such file` : `cannot load kubeconfig ${which}: ${firstLine(e)}`);
  }
  if (context !== undefined) {
    if (!kc.getContextObject(context)) {
      const names = kc.getContexts().map((c) => c.name);
      throw new CheckInputError(`context ${JSON.stringify(context)} is not in the kubeconfig (it has: ${names.join(', ') || 'none'})`);
    }
    kc.setCurrentContext(context);
  }
  if (!kc.getCurrentCluster()) throw new CheckInputError(`the kubeconfig's current context ${JSON.stringify(kc.getCurrentContext())} names no cluster (use --context)`);
  shareDispatchers(kc);
  return kc;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
}

interface Answer {
  readonly status: number;
  readonly text: string;
  readonly warnings: string[];
  readonly date: number | undefined;
}

/** `299 - "text"` values of Warning headers (RFC 9111 syntax, as the API server writes them). */
export function parseWarnings(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) for (const m of v.matchAll(/\d{3} \S+ "((?:[^"\\]|\\.)*)"/g)) out.push(m[1]!.replace(/\\(.)/g, '$1'));
  return out;
}

function readBody(res: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function statusMessageOf(text: string): string | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return isObject(v) && typeof v.message === 'string' ? v.message : undefined;
  } catch {
    return undefined;
  }
}

class Api {
  readonly server: string;
  private readonly kc: KubeConfig;
  private readonly timeoutMs: number;
  /** API server clock minus ours, from its Date header. */
  clockOffsetMs = 0;

  constructor(kc: KubeConfig, timeoutMs: number) {
    this.kc = kc;
    this.timeoutMs = timeoutMs;
    this.server = kc.getCurrentCluster()!.server.replace(/\/+$/, '');
  }

  async request(method: 'GET' | 'POST', apiPath: string, body?: unknown): Promise<Answer> {
    const url = new URL(this.server + apiPath);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const opts: RequestOptions & { headers: Record<string, string> } = {
      method,
      headers: { Accept: 'application/json', ...(payload ? { 'Content-Type': 'application/json' } : {}) },
      timeout: this.timeoutMs,
    };
    await this.kc.applyToHTTPSOptions(opts as never);
    const plain = url.protocol === 'http:';
    if (plain) delete opts.agent;
    return new Promise((resolve, reject) => {
      const req = (plain ? httpRequest : httpsRequest)(url, opts, (res) => {
        readBody(res, 64 * 1024 * 1024).then(
          (text) => {
            const dateHeader = res.headers.date;
            const date = dateHeader ? Date.parse(dateHeader) : NaN;
            resolve({ status: res.statusCode ?? 0, text, warnings: parseWarnings(res.headersDistinct['warning'] ?? []), date: Number.isNaN(date) ? undefined : date });
          },
          (e: unknown) => reject(new Error(firstLine(e))),
        );
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (e) => reject(new Error(firstLine(e))));
      req.end(payload);
    });
  }

  private failure(a: Answer): string {
    const message = statusMessageOf(a.text) ?? a.text.trim().slice(0, 200);
    return a.status === 403 ? `forbidden: ${message}` : `HTTP ${a.status}: ${message}`;
  }

  /** One object; undefined for 404. */
  async get(apiPath: string): Promise<Fetched<JsonObject | undefined>> {
    try {
      const a = await this.request('GET', apiPath);
      if (a.status === 404) return fetched(undefined);
      if (a.status !== 200) return failedRead(this.failure(a));
      const v: unknown = JSON.parse(a.text);
      return isObject(v) ? fetched(v) : failedRead('the answer is not an object');
    } catch (e) {
      return failedRead(firstLine(e));
    }
  }

  /** Every item of a list, page by page. `missing` explains a 404 (a resource not served). */
  async list(apiPath: string, query: Record<string, string>, missing: string): Promise<Fetched<readonly JsonObject[]>> {
    const items: JsonObject[] = [];
    let token: string | undefined;
    try {
      do {
        const q = new URLSearchParams({ ...query, limit: '500', ...(token ? { continue: token } : {}) });
        const a = await this.request('GET', `${apiPath}?${q.toString()}`);
        if (a.status === 404) return failedRead(missing);
        if (a.status !== 200) return failedRead(this.failure(a));
        const v: unknown = JSON.parse(a.text);
        if (!isObject(v) || !Array.isArray(v.items)) return failedRead('the answer is not a list');
        for (const i of v.items) if (isObject(i)) items.push(i);
        const md = isObject(v.metadata) ? v.metadata : {};
        token = typeof md.continue === 'string' && md.continue !== '' ? md.continue : undefined;
      } while (token);
    } catch (e) {
      return failedRead(firstLine(e));
    }
    return fetched(items);
  }

  /** A create with dryRun=All: admission runs, nothing is stored. */
  async dryRun(apiPath: string, namespace: string, body: JsonObject): Promise<DryRunProbe> {
    try {
      const a = await this.request('POST', `${apiPath}?dryRun=All&fieldManager=komputer-webhook-check`, body);
      const message = a.status >= 300 ? (statusMessageOf(a.text) ?? a.text.trim().slice(0, 500)) : undefined;
      return { namespace, status: a.status, ...(message !== undefined ? { message } : {}), warnings: a.warnings };
    } catch (e) {
      return { namespace, warnings: [], error: firstLine(e) };
    }
  }

  /** Connectivity and credentials, once, before anything else: CheckInputError when unusable. */
  async hello(context: string): Promise<void> {
    let a: Answer;
    try {
      a = await this.request('GET', '/version');
    } catch (e) {
      throw new CheckInputError(`cannot reach the API server ${this.server} (context ${context}): ${firstLine(e)}`);
    }
    if (a.status === 401) throw new CheckInputError(`the API server ${this.server} refused the credentials of context ${context} (HTTP 401 Unauthorized)`);
    if (a.status >= 500 || a.status === 0) throw new CheckInputError(`the API server ${this.server} answered HTTP ${a.status} to GET /version`);
    if (a.date !== undefined) this.clockOffsetMs = a.date + 500 - Date.now(); // Date has one-second resolution
  }
}

function pemOf(raw: Buffer): string {
  return new X509Certificate(raw).toString();
}

/** A TLS handshake without verification: what the service serves (judged by the checks). */
export function tlsProbe(target: { endpoint: string; host: string; port: number; serverName: string }, timeoutMs: number): Promise<TlsProbe> {
  return new Promise((resolve) => {
    let settled = false;
    const socket = tlsConnect({ host: target.host, port: target.port, rejectUnauthorized: false, ...(isIP(target.serverName) === 0 ? { servername: target.serverName } : {}) });
    const done = (p: Omit<TlsProbe, 'endpoint' | 'serverName'>): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve({ endpoint: target.endpoint, serverName: target.serverName, ...p });
    };
    socket.setTimeout(timeoutMs, () => done({ error: `no TLS handshake within ${timeoutMs} ms` }));
    socket.once('secureConnect', () => {
      const chain: string[] = [];
      const seen = new Set<string>();
      let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
      while (c?.raw && !seen.has(c.fingerprint256)) {
        seen.add(c.fingerprint256);
        chain.push(pemOf(c.raw));
        c = c.issuerCertificate;
      }
      done(chain.length > 0 ? { chain } : { error: 'the server presented no certificate' });
    });
    socket.once('error', (e) => done({ error: firstLine(e) }));
  });
}

/** GET https://host:port/readyz without verification (trust is webhook/tls's business). */
function directHealth(t: { host: string; port: number; serverName: string; via: string }, timeoutMs: number): Promise<HealthProbe> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      { host: t.host, port: t.port, path: '/readyz', method: 'GET', rejectUnauthorized: false, timeout: timeoutMs, ...(isIP(t.serverName) === 0 ? { servername: t.serverName } : {}), agent: false },
      (res) => {
        readBody(res, 16 * 1024).then(
          (body) => resolve({ via: t.via, status: res.statusCode ?? 0, body }),
          (e: unknown) => resolve({ via: t.via, error: firstLine(e) }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ via: t.via, error: firstLine(e) }));
    req.end();
  });
}

async function proxyHealth(api: Api, p: { namespace: string; name: string; port: number; via: string }): Promise<HealthProbe> {
  try {
    const a = await api.request('GET', `/api/v1/namespaces/${encodeURIComponent(p.namespace)}/services/https:${encodeURIComponent(p.name)}:${p.port}/proxy/readyz`);
    return { via: p.via, status: a.status, body: a.text.slice(0, 16 * 1024) };
  } catch (e) {
    return { via: p.via, error: firstLine(e) };
  }
}

async function secretCertificate(api: Api, s: CheckSettings): Promise<Fetched<string | undefined>> {
  const f = await api.get(`/api/v1/namespaces/${encodeURIComponent(s.serviceNamespace)}/secrets/${encodeURIComponent(s.certSecretName)}`);
  if (!f.ok) return f;
  // Only the public certificate is kept; the keys in the same Secret are dropped at once.
  const data = f.value && isObject(f.value.data) ? f.value.data : {};
  const crt = data['tls.crt'];
  return fetched(typeof crt === 'string' && crt !== '' ? Buffer.from(crt, 'base64').toString('utf8') : undefined);
}

/** Reads and probes everything the checks judge. */
export async function gather(options: GatherOptions): Promise<Gathered> {
  const kc = loadKubeconfig(options.kubeconfig, options.context);
  const context = kc.getCurrentContext();
  const api = new Api(kc, options.timeoutMs);
  await api.hello(context);
  const s = options.settings;
  const ns = encodeURIComponent(s.serviceNamespace);
  const custom = (plural: string): string => `/apis/${GROUP}/${VERSION}/${plural}`;
  const crdMissing = (plural: string): string => `the API server does not serve ${plural}.${GROUP} (are the platform's CRDs installed?)`;
  const [mutating, validating, namespaces, connectors, agents, pods, policyConfigMap, lease] = await Promise.all([
    api.get(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${encodeURIComponent(s.webhookConfigName)}`),
    api.get(`/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${encodeURIComponent(s.webhookConfigName)}`),
    api.list('/api/v1/namespaces', {}, 'namespaces are not served'),
    api.list(custom(CONNECTOR_PLURAL), {}, crdMissing(CONNECTOR_PLURAL)),
    api.list(custom(AGENT_PLURAL), {}, crdMissing(AGENT_PLURAL)),
    // Agent pods only: the label the pod webhook's objectSelector keys on.
    api.list('/api/v1/pods', { labelSelector: LABEL_SQUAD }, 'pods are not served'),
    api.get(`/api/v1/namespaces/${ns}/configmaps/${encodeURIComponent(POLICY_CONFIGMAP_NAME)}`),
    api.get(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${encodeURIComponent(s.leaseName)}`),
  ]);
  const plan = planProbes({ settings: s, mutating, validating, namespaces });
  const health = plan.health;
  const [tls, healthProbe, deployment, podProbe, connectorProbe] = await Promise.all([
    Promise.all(plan.tls.map((t) => tlsProbe(t, options.timeoutMs))),
    health === undefined ? Promise.resolve(undefined) : 'direct' in health ? directHealth(health.direct, options.timeoutMs) : proxyHealth(api, health.proxy),
    plan.deployment ? api.get(`/apis/apps/v1/namespaces/${ns}/deployments/${encodeURIComponent(s.deploymentName)}`) : Promise.resolve(undefined),
    plan.podProbeNamespace === undefined ? Promise.resolve(undefined) : api.dryRun(`/api/v1/namespaces/${encodeURIComponent(plan.podProbeNamespace)}/pods`, plan.podProbeNamespace, probePod(plan.podProbeNamespace)),
    plan.connectorProbeNamespace === undefined
      ? Promise.resolve(undefined)
      : api.dryRun(`/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(plan.connectorProbeNamespace)}/${CONNECTOR_PLURAL}`, plan.connectorProbeNamespace, probeConnector(plan.connectorProbeNamespace)),
  ]);
  // No handshake showed the certificate (a Service, no --endpoint): the self-managed Secret holds it.
  const sawCertificate = tls.some((t) => t.chain && t.chain.length > 0);
  const secretCert = !sawCertificate && plan.deployment ? await secretCertificate(api, s) : undefined;
  const snapshot: Snapshot = {
    now: new Date(Date.now() + api.clockOffsetMs),
    settings: s,
    mutating,
    validating,
    namespaces,
    connectors,
    agents,
    pods,
    policyConfigMap,
    lease,
    ...(deployment ? { deployment } : {}),
    ...(secretCert ? { secretCertificate: secretCert } : {}),
    tls,
    ...(healthProbe ? { health: healthProbe } : {}),
    ...(podProbe ? { podProbe } : {}),
    ...(connectorProbe ? { connectorProbe } : {}),
  };
  return { snapshot, context, server: api.server };
}
