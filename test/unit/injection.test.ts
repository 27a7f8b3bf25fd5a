// Table-driven tests of the pure injection pieces the golden cases do not isolate.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fastJsonPatch from 'fast-json-patch';
import { ClusterStore } from '../../src/cluster/store.ts';
import { envOps, injectPod, jsonEqual, MAX_MCP_SERVERS_BYTES, operatorLeftovers, type EnvVar } from '../../src/injection/inject.ts';
import { pointer } from '../../src/injection/jsonpatch.ts';
import { mcpServersJson, tokenEnvName } from '../../src/injection/names.ts';
import { MAX_CONNECTORS_PER_AGENT, resolveConnectors, type Skip } from '../../src/injection/resolve.ts';
import { parseConnectorRef } from '../../src/references/references.ts';
import type { Connector } from '../../src/model/objects.ts';

describe('tokenEnvName', () => {
  for (const [name, env] of [
    ['github', 'CONNECTOR_GITHUB_TOKEN'],
    ['my-git.hub', 'CONNECTOR_MY_GIT_HUB_TOKEN'],
    ['a.b-c.d', 'CONNECTOR_A_B_C_D_TOKEN'],
    ['x9', 'CONNECTOR_X9_TOKEN'],
  ] as const) {
    test(`${name} -> ${env}`, () => assert.equal(tokenEnvName(name), env));
  }
});

describe('parseConnectorRef', () => {
  const cases: [string, { namespace: string; name: string } | undefined][] = [
    ['github', { namespace: 'team-a', name: 'github' }],
    ['platform/linear', { namespace: 'platform', name: 'linear' }],
    ['', undefined],
    ['/x', undefined],
    ['x/', undefined],
    ['a/b/c', undefined],
  ];
  for (const [ref, want] of cases) test(JSON.stringify(ref), () => assert.deepEqual(parseConnectorRef(ref, 'team-a'), want));
});

describe('pointer', () => {
  test('escapes ~ and / in segments (RFC 6901)', () => {
    assert.equal(pointer('metadata', 'annotations', 'komputer.ai/injected-connectors'), '/metadata/annotations/komputer.ai~1injected-connectors');
    assert.equal(pointer('a~b'), '/a~0b');
  });
});

describe('envOps', () => {
  const want: EnvVar[] = [
    { name: 'CONNECTOR_GITHUB_TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
    { name: 'KOMPUTER_MCP_SERVERS', value: '{}' },
  ];
  const apply = (env: unknown) => {
    const pod = { spec: { containers: [{ name: 'a', ...(env === undefined ? {} : { env }) }] } };
    const ops = envOps(env, '/spec/containers/0', want);
    assert.ok(Array.isArray(ops));
    return { ops, env: (fastJsonPatch.applyPatch(pod, ops as fastJsonPatch.Operation[], true, false).newDocument as typeof pod).spec.containers[0]! as { env?: unknown } };
  };
  test('no env: one add of the whole list', () => {
    const r = apply(undefined);
    assert.equal(r.ops.length, 1);
    assert.deepEqual(r.env.env, want);
  });
  test('user vars keep their order and stay first; new vars are appended', () => {
    const r = apply([{ name: 'A', value: '1' }, { name: 'B', value: '$(A)' }]);
    assert.deepEqual(r.env.env, [{ name: 'A', value: '1' }, { name: 'B', value: '$(A)' }, ...want]);
  });
  test('same-named vars are replaced in place and later duplicates removed', () => {
    const r = apply([{ name: 'KOMPUTER_MCP_SERVERS', value: 'old' }, { name: 'A', value: '1' }, { name: 'KOMPUTER_MCP_SERVERS', value: 'dup' }, { name: 'CONNECTOR_GITHUB_TOKEN', value: 'literal' }, { name: 'CONNECTOR_GITHUB_TOKEN', value: 'dup2' }]);
    assert.deepEqual(r.env.env, [want[1], { name: 'A', value: '1' }, want[0]]);
    assert.ok(r.ops.every((o) => !JSON.stringify(o).includes('literal') && !JSON.stringify(o).includes('dup')));
  });
  test('already correct: no ops', () => {
    assert.deepEqual(envOps([{ name: 'X', value: 'y' }, ...want], '/spec/containers/0', want), []);
  });
  test('an entry with extra fields is not equal and gets replaced', () => {
    const ops = envOps([{ name: 'KOMPUTER_MCP_SERVERS', value: '{}', valueFrom: { fieldRef: { fieldPath: 'x' } } }], '/spec/containers/0', [want[1]!]);
    assert.deepEqual(ops, [{ op: 'replace', path: '/spec/containers/0/env/0', value: want[1] }]);
  });
  test('env that is not a list is reported, not patched', () => {
    assert.equal(typeof envOps({ A: 1 }, '/spec/containers/0', want), 'string');
  });
});

describe('jsonEqual', () => {
  test('structural', () => {
    assert.ok(jsonEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }));
    assert.ok(!jsonEqual({ a: 1 }, { a: 1, b: undefined }));
    assert.ok(!jsonEqual([1], { 0: 1 }));
  });
});

function connector(name: string, namespace = 'team-a', extra: Partial<Connector> = {}): Connector {
  return { namespace, name, service: name, url: `https://${name}.example/mcp`, authType: 'token', authSecretKeyRef: { name: `${name}-token`, key: 'token' }, sharedWith: [], ...extra };
}

describe('resolveConnectors', () => {
  test('token var collisions between distinct names are refused, first kept', () => {
    const s = new ClusterStore();
    s.putConnector(connector('my-git'));
    s.putConnector(connector('my.git'));
    const r = resolveConnectors({ namespace: 'team-a', name: 'a', connectors: ['my-git', 'my.git'], officeManager: undefined }, s);
    assert.deepEqual(r.attachments.map((a) => a.ref), ['my-git']);
    assert.match(r.skipped[0]!.reason, /CONNECTOR_MY_GIT_TOKEN collides with my-git/);
  });
  test('a connector without a token gets no tokenEnv and no authType when unset', () => {
    const s = new ClusterStore();
    s.putConnector(connector('open', 'team-a', { authSecretKeyRef: undefined, authType: undefined }));
    const r = resolveConnectors({ namespace: 'team-a', name: 'a', connectors: ['open'], officeManager: undefined }, s);
    assert.equal(mcpServersJson(r.attachments), '{"open":{"type":"http","url":"https://open.example/mcp"}}');
  });
  test('a secret ref without a name is skipped, never injected as an invalid pod', () => {
    const s = new ClusterStore();
    s.putConnector(connector('bad', 'team-a', { authSecretKeyRef: { name: '', key: 'token' } }));
    const r = resolveConnectors({ namespace: 'team-a', name: 'a', connectors: ['bad'], officeManager: undefined }, s);
    assert.equal(r.attachments.length, 0);
    assert.match(r.skipped[0]!.reason, /needs both name and key/);
  });
  test('missing office manager is reported; own connectors still attached', () => {
    const s = new ClusterStore();
    s.putConnector(connector('github'));
    const r = resolveConnectors({ namespace: 'team-a', name: 'a', connectors: ['github'], officeManager: 'boss' }, s);
    assert.equal(r.attachments.length, 1);
    assert.match(r.skipped[0]!.reason, /office manager agent team-a\/boss not found/);
  });
  test('authType and headerName are copied as the operator does: empty ones left out, unknown values kept (no crash)', () => {
    const s = new ClusterStore();
    s.putConnector(connector('empty', 'team-a', { authType: '', headerName: '' }));
    s.putConnector(connector('odd', 'team-a', { authType: 'none', headerName: 'X-Odd' }));
    const r = resolveConnectors({ namespace: 'team-a', name: 'a', connectors: ['odd', 'empty'], officeManager: undefined }, s);
    assert.equal(
      mcpServersJson(r.attachments),
      '{"empty":{"type":"http","url":"https://empty.example/mcp","tokenEnv":"CONNECTOR_EMPTY_TOKEN"},"odd":{"type":"http","url":"https://odd.example/mcp","tokenEnv":"CONNECTOR_ODD_TOKEN","authType":"none","headerName":"X-Odd"}}',
    );
  });
  test('a disabled connector is skipped with how to re-enable it; one later with the same name is then used', () => {
    const s = new ClusterStore();
    s.putConnector(connector('github', 'team-a', { disabled: true }));
    s.putConnector(connector('github', 'shared', { sharedWith: ['team-a'] }));
    const r = resolveConnectors({ namespace: 'team-a', name: 'a', connectors: ['github', 'shared/github'], officeManager: undefined }, s);
    assert.deepEqual(r.attachments.map((a) => a.ref), ['shared/github']);
    assert.deepEqual(r.skipped, [
      {
        ref: 'github',
        reason: 'it is disabled (spec.disabled: true); set spec.disabled: false on the connector to re-enable it',
        kind: 'disabled',
        entry: undefined,
        refused: { name: 'github', token: { name: 'CONNECTOR_GITHUB_TOKEN', secretKeyRef: { name: 'github-token', key: 'token' } } },
      },
    ]);
  });
  test('across namespaces, missing and not shared are one message (and a disabled unshared one reads the same)', () => {
    const s = new ClusterStore();
    s.putConnector(connector('private', 'owner', { sharedWith: ['team-b'] }));
    s.putConnector(connector('paused', 'owner', { sharedWith: ['team-b'], disabled: true }));
    const r = resolveConnectors({ namespace: 'team-a', name: 'a', connectors: ['owner/private', 'owner/paused', 'owner/absent'], officeManager: undefined }, s);
    assert.equal(r.attachments.length, 0);
    assert.deepEqual(new Set(r.skipped.map((x) => x.reason)), new Set(['not found in namespace owner, or not shared with namespace team-a (its owner shares it with the komputer.ai/shared-with-namespaces annotation)']));
    assert.deepEqual(r.skipped.map((x) => x.kind), ['not-visible', 'not-visible', 'not-visible']);
    // What the operator would have written is known for the two that exist (to take it
    // out of the pod), never for the absent one, and none of it is in the reasons.
    assert.deepEqual(r.skipped.map((x) => x.refused?.token), [
      { name: 'CONNECTOR_PRIVATE_TOKEN', secretKeyRef: { name: 'private-token-from-owner', key: 'token' } },
      { name: 'CONNECTOR_PAUSED_TOKEN', secretKeyRef: { name: 'paused-token-from-owner', key: 'token' } },
      undefined,
    ]);
  });
  test(`at most ${MAX_CONNECTORS_PER_AGENT} connectors per agent`, () => {
    const s = new ClusterStore();
    const names = Array.from({ length: MAX_CONNECTORS_PER_AGENT + 3 }, (_, i) => `c${i}`);
    for (const n of names) s.putConnector(connector(n));
    const r = resolveConnectors({ namespace: 'team-a', name: 'a', connectors: names, officeManager: undefined }, s);
    assert.equal(r.attachments.length, MAX_CONNECTORS_PER_AGENT);
    assert.equal(r.skipped.length, 3);
  });
});

describe('injectPod bounds', () => {
  test('the connector config is bounded in size; the rest is skipped with a warning', () => {
    const s = new ClusterStore();
    s.putNamespace({ name: 'team-a', labels: { 'komputer.ai/connector-injection': 'enabled' } });
    const names = Array.from({ length: 40 }, (_, i) => `c${i}`);
    for (const n of names) s.putConnector(connector(n, 'team-a', { url: `https://example.com/${'x'.repeat(1500)}` }));
    s.putAgent({ namespace: 'team-a', name: 'a', connectors: names, officeManager: undefined });
    const pod = { metadata: { labels: { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': 'a' } }, spec: { containers: [{ name: 'c' }] } };
    const out = injectPod(pod, 'team-a', s);
    const env = (out.patch[0] as { value: { name: string; value?: string }[] }).value;
    const servers = env.find((e) => e.name === 'KOMPUTER_MCP_SERVERS')!.value!;
    assert.ok(servers.length <= MAX_MCP_SERVERS_BYTES);
    assert.ok(out.warnings.some((w) => w.includes(`exceed ${MAX_MCP_SERVERS_BYTES} bytes`)));
  });
});

describe('operatorLeftovers: only what the operator wrote for a refused connector goes', () => {
  const refused: Skip[] = [
    { ref: 'other/unshared', reason: 'r', kind: 'not-visible', entry: undefined, refused: { name: 'unshared', token: { name: 'CONNECTOR_UNSHARED_TOKEN', secretKeyRef: { name: 'unshared-token-from-other', key: 'token' } } } },
    { ref: 'slack', reason: 'r', kind: 'disabled', entry: undefined, refused: { name: 'slack', token: undefined } },
    { ref: 'gone', reason: 'r', kind: 'missing', entry: undefined, refused: undefined },
  ];
  const operators = { name: 'CONNECTOR_UNSHARED_TOKEN', valueFrom: { secretKeyRef: { name: 'unshared-token-from-other', key: 'token' } } };
  const kept: EnvVar[] = [{ name: 'KOMPUTER_MCP_SERVERS', value: '{}' }];
  const cases: [string, unknown[], readonly EnvVar[], number[]][] = [
    ['the operator\'s reference', [{ name: 'A', value: '1' }, operators], kept, [1]],
    ['every copy of it', [operators, { name: 'B', value: '2' }, operators], kept, [0, 2]],
    ['a literal under that name stays', [{ name: 'CONNECTOR_UNSHARED_TOKEN', value: 'mine' }], kept, []],
    ['another Secret stays', [{ name: 'CONNECTOR_UNSHARED_TOKEN', valueFrom: { secretKeyRef: { name: 'unshared-token', key: 'token' } } }], kept, []],
    ['another key stays', [{ name: 'CONNECTOR_UNSHARED_TOKEN', valueFrom: { secretKeyRef: { name: 'unshared-token-from-other', key: 'other' } } }], kept, []],
    ['optional: true is not how the operator writes it', [{ name: 'CONNECTOR_UNSHARED_TOKEN', valueFrom: { secretKeyRef: { name: 'unshared-token-from-other', key: 'token', optional: true } } }], kept, []],
    ['value and valueFrom together is not the operator\'s', [{ ...operators, value: 'x' }], kept, []],
    ['a name this service writes is left to envOps', [operators], [{ name: 'CONNECTOR_UNSHARED_TOKEN', valueFrom: { secretKeyRef: { name: 'x', key: 'y' } } }], []],
    ['a config of refused servers goes when nothing is injected', [{ name: 'KOMPUTER_MCP_SERVERS', value: '{"unshared":{},"slack":{}}' }], [], [0]],
    ['a config naming any other server stays', [{ name: 'KOMPUTER_MCP_SERVERS', value: '{"unshared":{},"mine":{}}' }], [], []],
    ['a config that is not JSON stays', [{ name: 'KOMPUTER_MCP_SERVERS', value: 'not json' }], [], []],
    ['an empty config stays', [{ name: 'KOMPUTER_MCP_SERVERS', value: '{}' }], [], []],
    ['a missing connector names nothing to remove', [{ name: 'KOMPUTER_MCP_SERVERS', value: '{"gone":{}}' }], [], []],
    ['env that is not a list', 'nope' as unknown as unknown[], [], []],
  ];
  for (const [name, env, desired, indices] of cases) {
    test(name, () => assert.deepEqual(operatorLeftovers(env, refused, desired).indices, indices));
  }
  test('envOps removes them with its own duplicates, highest index first', () => {
    const env = [{ name: 'X', value: '1' }, operators, { name: 'X', value: '2' }];
    const ops = envOps(env, '/spec/containers/0', [{ name: 'X', value: '1' }], [1]);
    assert.deepEqual(ops, [
      { op: 'remove', path: '/spec/containers/0/env/2' },
      { op: 'remove', path: '/spec/containers/0/env/1' },
    ]);
  });
});
