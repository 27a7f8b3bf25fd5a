// Certificates on a real API server (issue 6): the serving certificate is replaced without
// a restart and without a single failed agent pod, in both modes; readiness says when the
// served certificate does not chain to the caBundle the API server holds.
//
//   files mode (cert-manager style; how the harness starts the service): new tls.crt/tls.key
//     from the same CA are picked up while pods are being created;
//   readiness: an unrelated caBundle makes /readyz answer 503 with the reason, and it
//     recovers once the bundle is restored;
//   self mode (--cert-mode self): the service replaces the harness's caBundle with its own
//     CA, fills its Secret, is trusted by the API server, renews the serving certificate
//     and rotates its CA while pods are being created, and restores a tampered caBundle.
//
// Measured figures are printed as `[e2e ...] FIGURE ...` lines.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateCertificates } from '../../src/certs/generate.ts';
import { startEnvironment, stopEnvironment, type Environment, type WebhookService } from './harness/index.ts';
import { freePort } from './harness/ports.ts';
import { log } from './harness/log.ts';
import { httpGet, httpsGet } from './harness/webhook.ts';
import { adminClients, chainsToBundle, connectorObject, agentObject, fingerprints, metric, pollUntil, sleep, servedCertificate, type Clients } from './fixtures/cluster.ts';
import { setWebhookBundles as setBundlesOfEveryWebhook } from './fixtures/webhook-configs.ts';

const NAMESPACE = 'cert-pods';
const AGENT = 'worker';
const SECRET = 'komputer-connector-webhook-tls';
const WEBHOOK_CONFIG = 'komputer-connector-webhook';
const INJECTED = 'komputer.ai/injected-connectors';
const RELOAD_MS = 500;

let env: Environment;
let clients: Clients;
const figures: string[] = [];
function figure(text: string): void {
  figures.push(text);
  log(`FIGURE ${text}`);
}

before(async () => {
  env = await startEnvironment({ serviceArgs: ['--cert-reload-ms', String(RELOAD_MS)] });
  clients = adminClients(env.kubeconfig);
  await env.createNamespace(NAMESPACE, { enabled: true });
  await env.apply([connectorObject({ namespace: NAMESPACE, name: 'github', sharedWith: [] }), agentObject({ namespace: NAMESPACE, name: AGENT, connectors: ['github'] })]);
});
after(async () => {
  if (figures.length > 0) log(`figures:\n  ${figures.join('\n  ')}`);
  await stopEnvironment();
});

// --- agent pods in a loop ------------------------------------------------------------------

interface LoopResult {
  readonly created: number;
  readonly failed: number;
  readonly notInjected: number;
  readonly errors: string[];
  readonly ms: number;
}

/** Creates agent pods back to back (`workers` in flight) until stopped. */
function podLoop(workers = 2): { stop(): Promise<LoopResult>; readonly created: number } {
  let stopping = false;
  let created = 0;
  let failed = 0;
  let notInjected = 0;
  const errors: string[] = [];
  const started = Date.now();
  const body = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: `${AGENT}-`, labels: { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': AGENT, [`komputer.ai/member-${AGENT}`]: 'true' } },
    spec: { containers: [{ name: 'agent', image: 'busybox' }] },
  };
  const worker = async (): Promise<void> => {
    while (!stopping) {
      try {
        const pod = await clients.core.createNamespacedPod({ namespace: NAMESPACE, body });
        created++;
        const env0 = pod.spec?.containers[0]?.env ?? [];
        if (pod.metadata?.annotations?.[INJECTED] !== 'github' || !env0.some((e) => e.name === 'KOMPUTER_MCP_SERVERS')) notInjected++;
      } catch (error) {
        failed++;
        const detail = (error as { body?: unknown }).body;
        if (errors.length < 5) errors.push(`${new Date().toISOString()} ${typeof detail === 'string' ? detail.slice(0, 300) : error instanceof Error ? error.message : String(error)}`);
      }
    }
  };
  const running = Promise.all(Array.from({ length: workers }, worker));
  return {
    get created() {
      return created;
    },
    async stop() {
      stopping = true;
      await running;
      return { created, failed, notInjected, errors, ms: Date.now() - started };
    },
  };
}

async function createOnePod(): Promise<{ injected: boolean }> {
  const loop = podLoop(1);
  await pollUntil('one pod', async () => ({ ok: loop.created > 0 }), { timeoutMs: 10_000, intervalMs: 20 });
  const r = await loop.stop();
  return { injected: r.notInjected === 0 && r.failed === 0 };
}

// --- cluster state ---------------------------------------------------------------------------

async function webhookBundles(): Promise<string[]> {
  const out: string[] = [];
  for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
    const config = JSON.parse((await env.kubectl(['get', kind, WEBHOOK_CONFIG, '-o', 'json'])).stdout) as { webhooks: { clientConfig: { caBundle?: string } }[] };
    for (const w of config.webhooks) out.push(Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8'));
  }
  return out;
}

async function setWebhookBundles(bundlePem: string): Promise<void> {
  await setBundlesOfEveryWebhook(env, WEBHOOK_CONFIG, bundlePem);
}

/** One mutating webhook, and two validating ones (connectors in enabled namespaces; shared connectors). */
const WEBHOOK_COUNT = 3;

async function secretData(): Promise<Record<string, string>> {
  const secret = JSON.parse((await env.kubectl(['get', 'secret', SECRET, '-n', env.serviceNamespace, '-o', 'json'])).stdout) as { data?: Record<string, string> };
  return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

async function readyz(metricsPort: number): Promise<{ status: number; body: string }> {
  return httpGet(`http://127.0.0.1:${metricsPort}/readyz`);
}

async function reloads(metricsPort: number): Promise<number> {
  return (await metric(metricsPort, 'komputer_webhook_certificate_reloads_total', { result: 'loaded' })) ?? 0;
}

// --- files mode --------------------------------------------------------------------------------

describe('files mode (cert-manager style)', () => {
  test('a new pair in the cert dir is served without a restart and without failed pod creations', async () => {
    const service = env.service;
    assert.ok(service);
    const initial = await servedCertificate(service.port);
    assert.equal(initial.fingerprint256, fingerprintOf(env.certs.cert), 'serves the harness certificate');
    const reloadsBefore = await reloads(service.metricsPort);

    const next = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ca: { cert: env.certs.caCert, key: env.certs.caKey } });
    const loop = podLoop();
    await sleep(1_000);
    // As a mounted Secret changes: each file replaced atomically, the key first, so for a
    // moment the key does not match the certificate (the service must keep the old pair).
    let replacedAt = 0;
    for (const [file, content] of [['tls.key', next.key], ['tls.crt', next.cert]] as const) {
      await writeFile(path.join(service.certDir, `.${file}.new`), content, { mode: 0o600 });
      await rename(path.join(service.certDir, `.${file}.new`), path.join(service.certDir, file));
      replacedAt = Date.now();
      if (file === 'tls.key') await sleep(RELOAD_MS * 1.5); // the mismatched moment lasts a few polls
    }
    const servedMs = await pollUntil('the new certificate to be served', async () => ({ ok: (await servedCertificate(service.port)).fingerprint256 === fingerprintOf(next.cert) }), { timeoutMs: 15_000, intervalMs: 100 });
    await sleep(2_000); // and pods keep being created with it
    const result = await loop.stop();
    figure(`files mode: new pair served ${servedMs} ms after tls.crt was replaced (poll ${RELOAD_MS} ms); ${result.created} pods created in ${result.ms} ms, ${result.failed} failed, ${result.notInjected} not injected`);
    assert.ok(replacedAt > 0);
    assert.equal(result.failed, 0, `failed creations: ${result.errors.join(' | ')}`);
    assert.equal(result.notInjected, 0);
    assert.ok(result.created > 10, `pods were created during the change (${result.created})`);
    assert.ok((await reloads(service.metricsPort)) > reloadsBefore, 'certificate_reloads_total{result="loaded"} moved');
    assert.equal((await httpsGet(`${service.url}/readyz`, env.certs.caCert)).status, 200);
  });

  test('an expired certificate in the cert dir is not served as if all were well', async () => {
    const service = env.service;
    assert.ok(service);
    const good = await servedCertificate(service.port);
    const hourAgo = new Date(Date.now() - 3_600_000);
    const expired = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ca: { cert: env.certs.caCert, key: env.certs.caKey }, now: hourAgo, backdateMs: 0, validityMs: 600_000 });
    assert.ok(new X509Certificate(expired.cert).validToDate.getTime() < Date.now());
    const files = ['tls.key', 'tls.crt'] as const;
    const saved = await Promise.all(files.map((f) => readFile(path.join(service.certDir, f), 'utf8')));
    try {
      for (const [file, content] of [['tls.key', expired.key], ['tls.crt', expired.cert]] as const) {
        await writeFile(path.join(service.certDir, `.${file}.new`), content, { mode: 0o600 });
        await rename(path.join(service.certDir, `.${file}.new`), path.join(service.certDir, file));
      }
      await sleep(RELOAD_MS * 4);
      const served = await servedCertificate(service.port);
      const ready = await readyz(service.metricsPort);
      figure(`files mode, expired pair written: served ${served.fingerprint256 === good.fingerprint256 ? 'the last good certificate' : served.fingerprint256 === fingerprintOf(expired.cert) ? 'the EXPIRED certificate' : 'another certificate'}; /readyz ${ready.status} ${ready.body.trim()}`);
      // Either the last good pair stays in force (as for a key that does not match), or the
      // replica says it is not ready: never an expired certificate behind a ready replica.
      if (served.fingerprint256 === fingerprintOf(expired.cert)) assert.equal(ready.status, 503, 'serving an expired certificate, yet /readyz says ready');
      else assert.equal(served.fingerprint256, good.fingerprint256);
    } finally {
      for (const [i, file] of files.entries()) {
        await writeFile(path.join(service.certDir, `.${file}.new`), saved[i]!, { mode: 0o600 });
        await rename(path.join(service.certDir, `.${file}.new`), path.join(service.certDir, file));
      }
      await pollUntil('the good certificate again', async () => ({ ok: (await servedCertificate(service.port)).fingerprint256 === good.fingerprint256 && (await readyz(service.metricsPort)).status === 200 }), { timeoutMs: 15_000, intervalMs: 100 });
    }
  });

  test('readiness fails with a reason when the caBundle does not hold the CA of the served certificate, and recovers', async () => {
    const service = env.service;
    assert.ok(service);
    assert.equal((await readyz(service.metricsPort)).status, 200);
    const unrelated = await generateCertificates({ dnsNames: ['unrelated.example'], caCommonName: 'unrelated-ca' });
    const original = await webhookBundles();
    assert.ok(original.every((b) => b === env.certs.caCert));
    await setWebhookBundles(unrelated.caCert);
    let body = '';
    const failMs = await pollUntil(
      '/readyz to fail',
      async () => {
        const r = await readyz(service.metricsPort);
        body = r.body;
        return { ok: r.status === 503, detail: `${r.status} ${r.body}` };
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    assert.match(body, /does not chain to the caBundle/);
    const viaTls = await httpsGet(`${service.url}/readyz`, env.certs.caCert);
    assert.equal(viaTls.status, 503, 'the HTTPS /readyz agrees');
    // The files mode never touches the webhook configurations: the bundle stays as the admin set it.
    assert.deepEqual(await webhookBundles(), Array<string>(WEBHOOK_COUNT).fill(unrelated.caCert));

    await setWebhookBundles(env.certs.caCert);
    const recoverMs = await pollUntil('/readyz to recover', async () => ({ ok: (await readyz(service.metricsPort)).status === 200 }), { timeoutMs: 15_000, intervalMs: 100 });
    figure(`readiness: 503 ${failMs} ms after the caBundle was replaced ("${body.trim()}"), 200 again ${recoverMs} ms after it was restored`);
    // The API server trusts the service again (its webhook client picks up the restored bundle).
    await pollUntil('an injected agent pod', async () => ({ ok: (await createOnePod()).injected }), { timeoutMs: 15_000, intervalMs: 250 });
  });
});

// --- self-managed mode ---------------------------------------------------------------------------

describe('self-managed mode (--cert-mode self)', () => {
  let self: WebhookService;
  let firstCa = '';

  async function startSelf(name: string, args: readonly string[]): Promise<WebhookService> {
    const port = env.service?.port;
    assert.ok(port !== undefined);
    const created = await env.createService({
      name,
      port, // where the webhook configurations point
      metricsPort: await freePort(),
      serviceArgs: ['--cert-mode', 'self', '--cert-ip-addresses', '127.0.0.1', '--cert-reload-ms', String(RELOAD_MS), '--identity', name, ...args],
      readyProbe: 'metrics',
    });
    await created.start();
    return created;
  }

  test('replaces the caBundle with its own CA, fills its Secret, and the API server trusts it', async () => {
    await env.service?.stop(); // the files-mode service (releases the lease)
    assert.equal((await secretData())['tls.crt'], undefined, 'the shipped Secret is empty');
    assert.ok((await webhookBundles()).every((b) => b === env.certs.caCert), 'the harness CA to begin with');

    const started = Date.now();
    self = await startSelf('self', ['--cert-validity', '2m', '--ca-validity', '150s']);
    const readyMs = Date.now() - started;

    const data = await secretData();
    for (const k of ['tls.crt', 'tls.key', 'ca.crt', 'ca.key', 'ca-bundle.crt']) assert.ok(data[k], `Secret has ${k}`);
    firstCa = data['ca.crt']!;
    assert.ok(chainsToBundle(data['tls.crt']!, data['ca.crt']!), 'tls.crt is issued by ca.crt');
    assert.ok(new X509Certificate(data['tls.crt']!).checkIP('127.0.0.1'), 'covers 127.0.0.1');

    const bundles = await webhookBundles();
    assert.equal(bundles.length, WEBHOOK_COUNT, 'one mutating and two validating webhooks');
    for (const b of bundles) {
      assert.equal(b, data['ca-bundle.crt'], 'the caBundle is the Secret\'s bundle');
      assert.ok(fingerprints(b).includes(fingerprintOf(firstCa)), 'the caBundle holds the service\'s CA');
      assert.ok(!fingerprints(b).includes(fingerprintOf(env.certs.caCert)), 'the harness CA was replaced');
    }
    const served = await servedCertificate(self.port);
    assert.equal(served.fingerprint256, fingerprintOf(data['tls.crt']!), 'serves the Secret\'s certificate');
    assert.ok(chainsToBundle(served.pem, bundles[0]!));
    assert.ok(!chainsToBundle(served.pem, env.certs.caCert));

    assert.equal((await readyz(self.metricsPort)).status, 200);
    assert.equal((await httpsGet(`${self.url}/readyz`, bundles[0]!)).status, 200, 'HTTPS /readyz, verified with the new bundle');
    const injectedMs = await pollUntil('an injected agent pod', async () => ({ ok: (await createOnePod()).injected }), { timeoutMs: 15_000, intervalMs: 250 });
    figure(`self mode: ready ${readyMs} ms after start (Secret filled, caBundle patched); first injected pod ${injectedMs} ms later`);
  });

  test('the serving certificate is renewed and the CA rotated with zero failed pod creations', async () => {
    const first = await servedCertificate(self.port);
    // When both are due (a third of each lifetime left), from the certificates themselves.
    const dueAt = (c: { validFrom: Date; validTo: Date }): number => c.validTo.getTime() - (c.validTo.getTime() - c.validFrom.getTime()) / 3;
    const ca = new X509Certificate(firstCa);
    const lastDue = Math.max(dueAt(first), dueAt({ validFrom: new Date(ca.validFrom), validTo: new Date(ca.validTo) }));
    const budgetMs = Math.max(0, lastDue - Date.now()) + 20_000;
    log(`certificate due for renewal at ${new Date(dueAt(first)).toISOString()}, CA at ${new Date(lastDue).toISOString()}: waiting up to ${budgetMs} ms`);
    const loop = podLoop();
    const started = Date.now();
    const seen = new Set([first.fingerprint256]);
    let caRotated = 0;
    let renewed = 0;
    // --cert-validity 2m: the certificate is renewed with a third of its lifetime left;
    // --ca-validity 150s: the CA is rotated (staged in the bundle, then used) likewise.
    await pollUntil(
      'a certificate renewal and a CA rotation',
      async () => {
        const now = await servedCertificate(self.port);
        if (!seen.has(now.fingerprint256)) {
          seen.add(now.fingerprint256);
          log(`served certificate changed after ${Date.now() - started} ms (issuer ${now.issuer.replaceAll('\n', ',')}, valid until ${now.validTo.toISOString()})`);
          if (chainsToBundle(now.pem, firstCa)) renewed = renewed || Date.now() - started;
          else caRotated = caRotated || Date.now() - started;
        }
        return { ok: renewed > 0 && caRotated > 0, detail: `renewed=${renewed} caRotated=${caRotated} certificates seen=${seen.size}` };
      },
      { timeoutMs: budgetMs, intervalMs: 250 },
    );
    await sleep(3_000); // pods keep being created with the new certificate
    const result = await loop.stop();
    const data = await secretData();
    const bundles = await webhookBundles();
    figure(
      `self mode rotation: certificate renewed after ${renewed} ms, CA rotated after ${caRotated} ms; ${seen.size} certificates served; ${result.created} pods created in ${result.ms} ms, ${result.failed} failed, ${result.notInjected} not injected`,
    );
    assert.equal(result.failed, 0, `failed creations: ${result.errors.join(' | ')}`);
    assert.equal(result.notInjected, 0);
    assert.ok(result.created > 10);
    assert.notEqual(fingerprintOf(data['ca.crt']!), fingerprintOf(firstCa), 'a new CA');
    for (const b of bundles) {
      assert.equal(b, data['ca-bundle.crt']);
      assert.ok(fingerprints(b).includes(fingerprintOf(data['ca.crt']!)), 'the bundle holds the new CA');
      assert.ok(fingerprints(b).includes(fingerprintOf(firstCa)), 'and still the old one (not expired yet)');
    }
    assert.equal((await servedCertificate(self.port)).fingerprint256, fingerprintOf(data['tls.crt']!));
    assert.equal((await readyz(self.metricsPort)).status, 200);
  });

  test('the leader restores a tampered caBundle', async () => {
    const unrelated = await generateCertificates({ dnsNames: ['unrelated.example'], caCommonName: 'unrelated-ca' });
    const want = (await secretData())['ca-bundle.crt'];
    await setWebhookBundles(unrelated.caCert);
    const ms = await pollUntil(
      'the caBundle to be restored',
      async () => {
        const b = await webhookBundles();
        return { ok: b.every((x) => x === want), detail: `${b.length} bundles` };
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    await pollUntil('/readyz', async () => ({ ok: (await readyz(self.metricsPort)).status === 200 }), { timeoutMs: 15_000, intervalMs: 100 });
    await pollUntil('an injected agent pod', async () => ({ ok: (await createOnePod()).injected }), { timeoutMs: 15_000, intervalMs: 250 });
    figure(`self mode: tampered caBundle restored after ${ms} ms`);
  });

  test('a short --cert-validity (40s) serves a valid certificate and renews it without failed pod creations', async () => {
    await self.stop();
    // Start over from an empty Secret, as on a fresh install.
    await env.kubectl(['patch', 'secret', SECRET, '-n', env.serviceNamespace, '--type=json', '-p', JSON.stringify([{ op: 'remove', path: '/data' }])]);
    const short = await startSelf('self-40s', ['--cert-validity', '40s']);
    const first = await servedCertificate(short.port);
    const issuedAt = Date.now();
    log(`served: valid ${first.validFrom.toISOString()} .. ${first.validTo.toISOString()} (now ${new Date().toISOString()})`);
    const loop = podLoop();
    let changedMs = 0;
    let current = first;
    try {
      await pollUntil(
        'a renewal',
        async () => {
          current = await servedCertificate(short.port);
          if (current.fingerprint256 !== first.fingerprint256) changedMs ||= Date.now() - issuedAt;
          return { ok: changedMs > 0 };
        },
        { timeoutMs: 45_000, intervalMs: 250 },
      );
      await sleep(3_000);
    } finally {
      const result = await loop.stop();
      figure(
        `self mode, 40s certificates: first served valid ${first.validFrom.toISOString()}..${first.validTo.toISOString()} at ${new Date(issuedAt).toISOString()}; renewed after ${changedMs} ms; ${result.created} pods created in ${result.ms} ms, ${result.failed} failed${result.errors[0] ? ` (first: ${result.errors[0]})` : ''}`,
      );
      assert.ok(first.validTo.getTime() > issuedAt + 20_000, `the first certificate must be valid for (most of) 40s from issuance, expires ${first.validTo.toISOString()}`);
      assert.ok(changedMs >= 15_000, `renewed with a third of 40s left, not at once (after ${changedMs} ms)`);
      assert.equal(result.failed, 0, `failed creations: ${result.errors.join(' | ')}`);
      assert.equal(result.notInjected, 0);
    }
    assert.ok(current.validTo.getTime() > Date.now(), 'the served certificate is not expired');
  });
});
