import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent, Connector } from '../../../src/model/objects.ts';
import type { ClusterView } from '../../../src/model/view.ts';
import { evaluateAgent, invalidRefReason } from '../../../src/policy/agent.ts';
import { BUILTIN_POLICY } from '../../../src/policy/incompatible.ts';

function connector(namespace: string, name: string, over: Partial<Connector> = {}): Connector {
  return { namespace, name, service: name, url: `https://${name}.example/mcp`, authType: undefined, authSecretKeyRef: { name: `${name}-tok`, key: 'token' }, sharedWith: [], ...over };
}

function agent(connectors: string[], over: Partial<Agent> = {}): Agent {
  return { namespace: 'team-a', name: 'bot', connectors, officeManager: undefined, ...over };
}

function view(connectors: Connector[], agents: Agent[] = []): ClusterView {
  return {
    namespace: (name) => ({ name, labels: {} }),
    connector: (ns, name) => connectors.find((c) => c.namespace === ns && c.name === name),
    agent: (ns, name) => agents.find((a) => a.namespace === ns && a.name === name),
    policy: () => BUILTIN_POLICY,
  };
}

const cluster = view(
  [
    connector('team-a', 'github'),
    connector('team-a', 'slack'),
    connector('team-a', 'my-git'),
    connector('team-a', 'my.git'),
    connector('shared', 'github', { sharedWith: ['team-a'] }),
    connector('shared', 'linear', { sharedWith: ['*'] }),
    connector('private', 'notion', { sharedWith: ['team-b'] }),
    connector('team-a', 'broken', { authSecretKeyRef: { name: '', key: 'k' } }),
    connector('team-a', 'paused', { disabled: true }),
    connector('team-a', 'paused-too', { disabled: true }),
    connector('shared', 'paused', { sharedWith: ['team-a'], disabled: true }),
    connector('private', 'paused', { sharedWith: ['team-b'], disabled: true }),
  ],
  [agent(['slack', 'shared/linear'], { name: 'manager' }), agent(['Bad/Ref/X'], { name: 'bad-manager' }), agent(['paused'], { name: 'paused-manager' })],
);

describe('invalidRefReason', () => {
  const cases: [string, string | undefined][] = [
    ['github', undefined],
    ['shared/github', undefined],
    ['my.git', undefined],
    ['', 'is empty'],
    ['/github', 'is not "name" or "namespace/name"'],
    ['shared/', 'is not "name" or "namespace/name"'],
    ['a/b/c', 'is not "name" or "namespace/name"'],
    ['GitHub', 'has a name that is not a valid Kubernetes name (lower-case letters, digits, "-", ".")'],
    [' github', 'has a name that is not a valid Kubernetes name (lower-case letters, digits, "-", ".")'],
    ['Shared/github', 'has a namespace that is not a valid namespace name'],
    ['my.ns/github', 'has a namespace that is not a valid namespace name'],
  ];
  for (const [ref, want] of cases) {
    it(`${JSON.stringify(ref)} -> ${want ?? 'valid'}`, () => assert.equal(invalidRefReason(ref, 'team-a'), want));
  }
});

describe('evaluateAgent', () => {
  const table: [string, Agent, { allowed: boolean; message?: RegExp; warnings: RegExp[] }][] = [
    ['all resolvable', agent(['github', 'shared/linear']), { allowed: true, warnings: [] }],
    ['no connectors', agent([]), { allowed: true, warnings: [] }],
    ['own namespace written qualified', agent(['team-a/github']), { allowed: true, warnings: [] }],
    ['duplicates are dropped silently', agent(['github', 'github', 'team-a/github']), { allowed: true, warnings: [] }],
    ['missing connector warns', agent(['nope']), { allowed: true, warnings: [/^connector nope: connector not found in namespace team-a/] }],
    ['missing cross-namespace connector warns', agent(['other/nope']), { allowed: true, warnings: [/^connector other\/nope: not found in namespace other, or not shared with namespace team-a \(/] }],
    ['not shared warns', agent(['private/notion']), { allowed: true, warnings: [/^connector private\/notion: not found in namespace private, or not shared with namespace team-a \(/] }],
    ['same name from two namespaces warns', agent(['github', 'shared/github']), { allowed: true, warnings: [/^connector shared\/github: its name collides with github/] }],
    ['same token variable warns', agent(['my-git', 'my.git']), { allowed: true, warnings: [/^connector my\.git: its token variable CONNECTOR_MY_GIT_TOKEN collides with my-git/] }],
    ['unusable secret ref warns', agent(['broken']), { allowed: true, warnings: [/^connector broken: spec\.authSecretKeyRef needs both name and key/] }],
    ['manager connectors are checked too', agent(['github'], { officeManager: 'manager' }), { allowed: true, warnings: [] }],
    ['missing manager warns', agent(['github'], { officeManager: 'ghost' }), { allowed: true, warnings: [/^spec\.officeManager: office manager agent team-a\/ghost not found/] }],
    ["manager's invalid ref warns, does not deny", agent(['github'], { officeManager: 'bad-manager' }), { allowed: true, warnings: [/^connector Bad\/Ref\/X: not a valid reference/] }],
    ['empty ref denies', agent(['github', '']), { allowed: false, message: /^spec\.connectors\[1\] is empty\. Use "name" \(same namespace\) or "namespace\/name"\.$/, warnings: [] }],
    ['two slashes deny', agent(['a/b/c']), { allowed: false, message: /^spec\.connectors\[0\] "a\/b\/c" is not "name" or "namespace\/name"/, warnings: [] }],
    ['invalid name denies', agent(['GitHub']), { allowed: false, message: /^spec\.connectors\[0\] "GitHub" has a name that is not a valid Kubernetes name/, warnings: [] }],
    ['deny still warns about the rest', agent(['a/b/c', 'nope']), { allowed: false, message: /"a\/b\/c"/, warnings: [/^connector nope: connector not found/] }],
    ['a disabled connector denies a CREATE', agent(['github', 'paused']), { allowed: false, message: /^spec\.connectors: connector "paused" is disabled and cannot be newly attached\. Fix: re-enable it with spec\.disabled: false on the connector, or remove it from spec\.connectors\.$/, warnings: [] }],
    ['a disabled connector written with its own namespace is refused once, not also warned', agent(['team-a/paused', 'paused']), { allowed: false, message: /^spec\.connectors: connector "team-a\/paused" is disabled and cannot be newly attached\./, warnings: [] }],
    ['several disabled connectors are named', agent(['paused', 'paused-too', 'shared/paused']), { allowed: false, message: /^spec\.connectors: connectors "paused", "paused-too", "shared\/paused" are disabled/, warnings: [] }],
    ['a disabled connector in a namespace that does not share it reads as missing', agent(['private/paused']), { allowed: true, warnings: [/^connector private\/paused: not found in namespace private, or not shared with namespace team-a \(/] }],
    ["a manager's disabled connector warns (the agent does not reference it)", agent(['github'], { officeManager: 'paused-manager' }), { allowed: true, warnings: [/^connector paused: it is disabled \(spec\.disabled: true\); set spec\.disabled: false/] }],
    ['many invalid refs are summarised', agent(['', '/', 'a/b/c', 'X', 'Y']), { allowed: false, message: /spec\.connectors\[2\] .*; and 2 more\./, warnings: [] }],
  ];
  for (const [name, input, want] of table) {
    it(name, () => {
      const v = evaluateAgent(input, cluster);
      assert.equal(v.allowed, want.allowed, v.message);
      if (want.message) assert.match(v.message ?? '', want.message);
      else assert.equal(v.message, undefined);
      assert.equal(v.warnings.length, want.warnings.length, v.warnings.join(' | '));
      want.warnings.forEach((p, i) => assert.match(v.warnings[i] ?? '', p));
      for (const text of [v.message ?? '', ...v.warnings]) assert.ok(text.length <= 250, text);
    });
  }

  it('"not found" and "not shared" across namespaces are one message', () => {
    const text = (ref: string, ns: string): string => evaluateAgent(agent([ref]), cluster).warnings[0]!.replace(ref, 'REF').replace(`namespace ${ns},`, 'namespace NS,');
    assert.equal(text('private/notion', 'private'), text('private/nothing', 'private'));
    assert.equal(text('private/paused', 'private'), text('private/nothing', 'private'));
  });

  it('an UPDATE keeps existing references to a disabled connector, refuses new ones', () => {
    const old = agent(['github', 'team-a/paused']);
    const kept = evaluateAgent(agent(['paused', 'github', 'slack']), cluster, old);
    assert.equal(kept.allowed, true, kept.message);
    assert.deepEqual(kept.warnings, ['connector paused: it is disabled (spec.disabled: true); set spec.disabled: false on the connector to re-enable it']);
    const added = evaluateAgent(agent(['github', 'paused', 'paused-too']), cluster, old);
    assert.equal(added.allowed, false);
    assert.match(added.message ?? '', /^spec\.connectors: connector "paused-too" is disabled/);
    assert.deepEqual(added.warnings, ['connector paused: it is disabled (spec.disabled: true); set spec.disabled: false on the connector to re-enable it']);
  });

  it('caps the number of warnings', () => {
    const refs = Array.from({ length: 20 }, (_, i) => `missing-${i}`);
    const v = evaluateAgent(agent(refs), cluster);
    assert.equal(v.allowed, true);
    assert.equal(v.warnings.length, 8);
    assert.equal(v.warnings[7], 'and 13 more connector problems');
  });

  it('clips a very long reference in the denial', () => {
    const v = evaluateAgent(agent([`a/b/${'x'.repeat(1000)}`]), cluster);
    assert.equal(v.allowed, false);
    assert.ok((v.message ?? '').length <= 250);
  });
});
