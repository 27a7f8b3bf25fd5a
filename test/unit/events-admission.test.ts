// Events through the HTTP app, as the server wires them: recorded after the response, never
// for a dry run, never carrying a secret value (canaries planted in a Secret, a connector
// annotation, an agent's spec and a pod's env), and the switch that turns them off.

import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { loadState } from '../../src/cluster/state-file.ts';
import { eventsEnabled } from '../../src/config/config.ts';
import type { EventBody } from '../../src/events/body.ts';
import { EventRecorder, RECORDER_DEFAULTS, type EventSink } from '../../src/events/recorder.ts';
import type { AgentEvent } from '../../src/injection/events.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { createApp } from '../../src/server/app.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { BUILTIN_POLICY } from '../../src/policy/incompatible.ts';
import { LogCapture } from '../helpers/server.ts';
import { podReview } from '../helpers/review.ts';

const CANARY_SECRET = 'ghp_UNITCANARYsecretData0123456789abcdefgh';
const CANARY_ANNOTATION = 'xoxp-UNITCANARYannotation0123456789abcdef';
const CANARY_SPEC = 'lin_api_UNITCANARYagentSpec0123456789abcd';
const CANARY_ENV = 'ghp_UNITCANARYpodEnvValue0123456789abcdefg';
const CANARIES = [CANARY_SECRET, CANARY_ANNOTATION, CANARY_SPEC, CANARY_ENV];

const STATE = `
apiVersion: v1
kind: Namespace
metadata: {name: team-a, labels: {komputer.ai/connector-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: owner}
---
apiVersion: v1
kind: Secret
metadata: {name: github-token, namespace: team-a}
data: {token: ${Buffer.from(CANARY_SECRET).toString('base64')}}
stringData: {plain: ${CANARY_SECRET}}
---
apiVersion: komputer.komputer.ai/v1alpha1
kind: KomputerConnector
metadata:
  name: github
  namespace: team-a
  annotations: {note: ${CANARY_ANNOTATION}}
spec: {type: remote, service: github, url: 'https://api.githubcopilot.com/mcp/', authType: token, authSecretKeyRef: {name: github-token, key: token}}
---
apiVersion: komputer.komputer.ai/v1alpha1
kind: KomputerConnector
metadata:
  name: slack
  namespace: team-a
  annotations: {note: ${CANARY_ANNOTATION}}
spec: {type: remote, service: slack, url: 'https://mcp.slack.com/mcp', authType: token, disabled: true, authSecretKeyRef: {name: github-token, key: token}}
---
apiVersion: komputer.komputer.ai/v1alpha1
kind: KomputerConnector
metadata:
  name: private
  namespace: owner
  annotations: {note: ${CANARY_ANNOTATION}}
spec: {type: remote, service: linear, url: 'https://mcp.linear.app/mcp', authType: token, authSecretKeyRef: {name: github-token, key: token}}
---
apiVersion: komputer.komputer.ai/v1alpha1
kind: KomputerAgent
metadata: {name: a, namespace: team-a, uid: 0b7c6f0e-0000-4000-8000-00000000000a}
spec:
  instructions: use ${CANARY_SPEC}
  connectors: [github, gone, slack, owner/private]
`;

const POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'a-pod', labels: { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': 'a', 'komputer.ai/member-a': 'true' } },
  spec: {
    containers: [
      {
        name: 'agent',
        image: 'i',
        env: [
          { name: 'MY_PAT', value: CANARY_ENV },
          { name: 'CONNECTOR_PRIVATE_TOKEN', valueFrom: { secretKeyRef: { name: 'github-token-from-owner', key: 'token' } } },
        ],
      },
    ],
  },
};

/** Keeps every body and patch it is sent, as JSON text. */
class CapturingSink implements EventSink {
  readonly sent: string[] = [];
  readonly bodies: EventBody[] = [];
  async create(body: EventBody): Promise<void> {
    this.sent.push(JSON.stringify(body));
    this.bodies.push(body);
  }
  async patch(ns: string, name: string, patch: unknown): Promise<'patched'> {
    this.sent.push(JSON.stringify({ ns, name, patch }));
    return 'patched';
  }
}

let server: Server;
let port: number;
let sink: CapturingSink;
let recorder: EventRecorder;
/** What the app handed to the recorder, and when (relative to the response). */
const handed: { events: readonly AgentEvent[] | undefined; responded: boolean }[] = [];
let current: import('node:http').ServerResponse | undefined;
const logs = new LogCapture();

function post(body: unknown): Promise<{ status: number; json: { response: { warnings?: string[] } } }> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = request({ host: '127.0.0.1', port, path: '/mutate/pods', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(t) as { response: { warnings?: string[] } } }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

before(async () => {
  const { store } = loadState(STATE, 'state.yaml');
  sink = new CapturingSink();
  recorder = new EventRecorder(sink, { ...RECORDER_DEFAULTS, instance: 'unit' });
  const app = createApp({
    context: { view: store, policy: () => BUILTIN_POLICY, events: true },
    logger: createLogger({ destination: logs }),
    metrics: createMetrics({ defaultMetrics: false }),
    maxBodyBytes: 1 << 20,
    readiness: () => ({ ready: true, reasons: [] }),
    events: {
      record(events) {
        // res.end() was called: the answer is written (handed to the socket) before this.
        handed.push({ events, responded: current?.writableEnded === true });
        recorder.record(events);
      },
    },
  });
  server = createServer(app);
  // The response in progress, to prove recording comes after it is written.
  server.prependListener('request', (_req, res) => (current = res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  await recorder.stop(100);
  await new Promise((r) => server.close(r));
});

async function waitForWrites(n: number): Promise<void> {
  for (let i = 0; i < 200 && sink.sent.length < n; i++) await new Promise((r) => setTimeout(r, 10));
}

describe('events through the app', () => {
  test('an admission hands its events over after the response; the warnings are the Warning notes', async () => {
    const res = await post(podReview(POD, 'team-a'));
    assert.equal(res.status, 200);
    const warnings = res.json.response.warnings ?? [];
    assert.equal(warnings.length, 3);
    assert.equal(handed.length, 1);
    assert.equal(handed[0]!.responded, true, 'the response was written before the events were handed over');
    await waitForWrites(4);
    const warningNotes = sink.bodies.filter((b) => b.type === 'Warning').map((b) => b.note);
    assert.deepEqual(warningNotes, warnings);
    assert.deepEqual(sink.bodies.map((b) => b.reason), ['ConnectorNotFound', 'ConnectorDisabled', 'ConnectorNotVisible', 'ConnectorsInjected']);
    assert.match(warnings[2]!, /removed CONNECTOR_PRIVATE_TOKEN, which the operator wrote for it/);
    for (const b of sink.bodies) assert.deepEqual(b.regarding, { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', namespace: 'team-a', name: 'a', uid: '0b7c6f0e-0000-4000-8000-00000000000a' });
  });

  test('a dry run records nothing', async () => {
    const before = handed.length;
    const writes = sink.sent.length;
    const res = await post(podReview(POD, 'team-a', { dryRun: true }));
    assert.equal(res.status, 200);
    assert.ok((res.json.response.warnings ?? []).length > 0);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(handed.length, before, 'not even handed to the recorder');
    assert.equal(sink.sent.length, writes);
  });

  test('canary: no Event body or patch, nor the log, carries a secret value (nor its base64)', async () => {
    // A second and third admission: the series patch goes through the sink too.
    await post(podReview(POD, 'team-a'));
    await post(podReview(POD, 'team-a'));
    await recorder.pump();
    assert.ok(sink.sent.length >= 4);
    const everything = sink.sent.join('\n') + '\n' + logs.text;
    for (const canary of CANARIES) {
      for (const form of [canary, Buffer.from(canary).toString('base64')]) assert.equal(everything.includes(form), false, `${form} must not appear`);
    }
  });
});

describe('the switch', () => {
  test('KOMPUTER_EVENTS: on by default, false/0/off turn it off, the config wins, nonsense is an error', () => {
    assert.equal(eventsEnabled({}, {}), true);
    for (const v of ['false', 'FALSE', '0', 'off', 'no']) assert.equal(eventsEnabled({}, { KOMPUTER_EVENTS: v }), false, v);
    for (const v of ['true', '1', 'on', '']) assert.equal(eventsEnabled({}, { KOMPUTER_EVENTS: v }), true, v);
    assert.equal(eventsEnabled({ events: true }, { KOMPUTER_EVENTS: 'false' }), true);
    assert.throws(() => eventsEnabled({}, { KOMPUTER_EVENTS: 'maybe' }), /KOMPUTER_EVENTS must be true or false/);
  });
});
