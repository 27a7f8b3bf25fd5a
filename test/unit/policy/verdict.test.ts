import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Connector } from '../../../src/model/objects.ts';
import { BUILTIN_POLICY, mergePolicy, parsePolicyConfig } from '../../../src/policy/incompatible.ts';
import { effectiveAuthType, evaluateConnector, type Verdict } from '../../../src/policy/verdict.ts';

function connector(over: Partial<Connector> = {}): Connector {
  return {
    namespace: 'team-a',
    name: 'c1',
    service: 'x',
    url: 'https://mcp.example.com/mcp',
    authType: undefined,
    authSecretKeyRef: { name: 'tok', key: 'token' },
    sharedWith: [],
    ...over,
  };
}

/** Every message is short enough for a terminal and for Kubernetes' warning limit. */
function checkLengths(v: Verdict): void {
  if (v.message !== undefined) assert.ok(v.message.length <= 250, `message too long (${v.message.length}): ${v.message}`);
  for (const w of v.warnings) assert.ok(w.length <= 250, `warning too long (${w.length}): ${w}`);
}

function evaluate(over: Partial<Connector>, old?: Partial<Connector>, attachedAgents?: number): Verdict {
  const v = evaluateConnector(connector(over), BUILTIN_POLICY, old ? connector(old) : undefined, attachedAgents === undefined ? {} : { attachedAgents });
  checkLengths(v);
  return v;
}

describe('effectiveAuthType', () => {
  it('unset or empty means token', () => {
    assert.equal(effectiveAuthType({ authType: undefined }), 'token');
    assert.equal(effectiveAuthType({ authType: '' }), 'token');
    assert.equal(effectiveAuthType({ authType: 'oauth' }), 'oauth');
  });
});

describe('evaluateConnector: denials', () => {
  const denied: [string, Partial<Connector>, RegExp[]][] = [
    ['Notion, authType unset', { url: 'https://mcp.notion.com/mcp', authType: undefined }, [/^Notion rejects static tokens/, /invalid_token/, /set spec\.authType: oauth/, /Notion MCP server in-cluster and point spec\.url at it/]],
    ['Notion, authType empty', { url: 'https://mcp.notion.com/mcp', authType: '' }, [/^Notion rejects static tokens/]],
    ['Notion, authType token', { url: 'https://mcp.notion.com/mcp', authType: 'token' }, [/^Notion rejects static tokens/]],
    ['Notion respelled', { url: 'HTTPS://MCP.NOTION.COM./mcp/?x=1#f' }, [/^Notion rejects/]],
    ['Notion on explicit 443', { url: 'https://mcp.notion.com:443/mcp' }, [/^Notion rejects/]],
    ['Notion percent-encoded', { url: 'https://mcp.notion.com/%6dcp' }, [/^Notion rejects/]],
    ['Notion over http', { url: 'http://mcp.notion.com/mcp' }, [/^Notion rejects/]],
    ['Atlassian Rovo, token', { url: 'https://mcp.atlassian.com/v1/mcp', authType: 'token' }, [/^Atlassian Rovo rejects static tokens/, /2 limited tools/, /set spec\.authType: oauth/, /mcp-atlassian/]],
    ['unparseable URL', { url: 'not a url' }, [/^spec\.url is not a valid absolute URL/]],
    ['empty URL', { url: '' }, [/^spec\.url is empty/]],
    ['ftp URL', { url: 'ftp://mcp.example.com/mcp' }, [/^spec\.url uses scheme ftp: .*http/]],
    ['user-info on any host', { url: 'https://user:pw@mcp.example.com/mcp' }, [/must not contain a user name or password/, /spec\.authSecretKeyRef/]],
    ['user-info on Notion is reported as user-info, not Notion', { url: 'https://user:pw@mcp.notion.com/mcp' }, [/must not contain a user name or password/]],
    ['user name only', { url: 'https://ghp_abc@api.githubcopilot.com/mcp/' }, [/must not contain a user name or password/]],
    ['secret ref with empty name', { authSecretKeyRef: { name: '', key: 'token' } }, [/^spec\.authSecretKeyRef name is empty/, /namespace team-a/]],
    ['secret ref with empty key', { authSecretKeyRef: { name: 'tok', key: '' } }, [/^spec\.authSecretKeyRef key is empty/]],
    ['secret ref with both empty', { authSecretKeyRef: { name: '', key: '' } }, [/^spec\.authSecretKeyRef name and key are empty/]],
    ['unknown authType', { authType: 'bearer' }, [/^spec\.authType must be token, oauth or header \(unset means token\)\./]],
    ['authType none (sent by the platform\'s own tools) is refused with the fix', { authType: 'none' }, [/^spec\.authType must be token, oauth or header/, /use token and leave spec\.authSecretKeyRef unset\.$/]],
    ['header without headerName', { authType: 'header' }, [/^spec\.authType header needs spec\.headerName/, /Fix: set spec\.headerName/]],
    ['header with an empty headerName', { authType: 'header', headerName: '' }, [/^spec\.authType header needs spec\.headerName/]],
    ['header with a space in headerName', { authType: 'header', headerName: 'X API Key' }, [/^spec\.headerName "X API Key" is not an HTTP header name \(RFC 9110/]],
    ['header with a colon in headerName', { authType: 'header', headerName: 'X-API-Key:' }, [/is not an HTTP header name/]],
    ['header with non-ASCII headerName', { authType: 'header', headerName: 'X-Schlüssel' }, [/is not an HTTP header name/]],
    ['header naming Host', { authType: 'header', headerName: 'host' }, [/^spec\.headerName Host is set by the MCP client itself/, /Fix: use a header such as X-API-Key\.$/]],
    ['header naming Content-Length', { authType: 'header', headerName: 'CONTENT-LENGTH' }, [/^spec\.headerName Content-Length is set by the MCP client/]],
    ['header naming Content-Type', { authType: 'header', headerName: 'Content-Type' }, [/^spec\.headerName Content-Type/]],
    ['header naming Transfer-Encoding', { authType: 'header', headerName: 'transfer-encoding' }, [/^spec\.headerName Transfer-Encoding/]],
    ['header naming Connection', { authType: 'header', headerName: 'Connection' }, [/^spec\.headerName Connection/]],
    ['header at Notion (a static header token is not OAuth)', { authType: 'header', headerName: 'X-API-Key', url: 'https://mcp.notion.com/mcp' }, [/^Notion rejects static header tokens \(authType header\): /, /Fix: set spec\.authType: oauth/]],
  ];
  for (const [name, over, patterns] of denied) {
    it(name, () => {
      const v = evaluate(over);
      assert.equal(v.allowed, false);
      assert.ok(v.message);
      for (const p of patterns) assert.match(v.message, p);
      assert.deepEqual(v.warnings, []);
    });
  }

  it('does not echo the URL as written in any denial', () => {
    for (const url of ['https://user:pw@mcp.example.com/mcp', 'not a url', 'ftp://mcp.example.com/mcp', 'HTTPS://MCP.NOTION.COM./mcp/?x=1#f']) {
      const v = evaluate({ url });
      assert.ok(v.message && !v.message.includes(url), v.message);
    }
  });
});

describe('evaluateConnector: allowed', () => {
  const allowed: [string, Partial<Connector>][] = [
    ['Notion with oauth', { url: 'https://mcp.notion.com/mcp', authType: 'oauth' }],
    ['Atlassian Rovo with oauth', { url: 'https://mcp.atlassian.com/v1/mcp', authType: 'oauth' }],
    ['lookalike host is not Notion', { url: 'https://mcp.notion.com.evil.example/mcp' }],
    ['suffix lookalike is not Notion', { url: 'https://evilmcp.notion.com/mcp' }],
    ['another Notion path is not the listed endpoint', { url: 'https://mcp.notion.com/sse' }],
    ['GitHub with a token', { url: 'https://api.githubcopilot.com/mcp/' }],
    ['self-hosted Notion server in the cluster over http', { url: 'http://notion-mcp.tools.svc.cluster.local:8080/mcp', authSecretKeyRef: undefined }],
    ['no secret at an unknown service', { url: 'https://mcp.example.com/mcp', authSecretKeyRef: undefined }],
    ['header auth with X-API-Key', { authType: 'header', headerName: 'X-API-Key' }],
    ['header auth with a token made of every tchar', { authType: 'header', headerName: "!#$%&'*+-.^_`|~09azAZ" }],
    ['header auth with Authorization (sent verbatim, no Bearer)', { authType: 'header', headerName: 'Authorization' }],
  ];
  for (const [name, over] of allowed) {
    it(name, () => {
      const v = evaluate(over);
      assert.equal(v.allowed, true, v.message);
      assert.equal(v.message, undefined);
      assert.deepEqual(v.warnings, []);
    });
  }
});

describe('evaluateConnector: warnings', () => {
  it('plain http to a host outside the cluster', () => {
    const v = evaluate({ url: 'http://mcp.example.com/mcp' });
    assert.equal(v.allowed, true);
    assert.equal(v.warnings.length, 1);
    assert.match(v.warnings[0] ?? '', /plain http:\/\/ to mcp\.example\.com, outside the cluster.*Use https:\/\//);
  });

  const internal = ['http://my-mcp/mcp', 'http://localhost:3000/mcp', 'http://mcp.ns.svc/mcp', 'http://mcp.ns.svc.cluster.local/mcp', 'http://10.0.0.7:8080/mcp', 'http://192.168.1.2/mcp', 'http://[::1]:8080/mcp'];
  for (const url of internal) {
    it(`no http warning for cluster-internal ${url}`, () => assert.deepEqual(evaluate({ url }).warnings, []));
  }

  const tokenServices: [string, string][] = [
    ['https://api.githubcopilot.com/mcp/', 'GitHub MCP'],
    ['https://mcp.google.com/a/gmail/mcp', 'Gmail MCP'],
    ['https://mcp.google.com/a/calendar/mcp', 'Google Calendar MCP'],
    ['https://mcp.linear.app/mcp', 'Linear MCP'],
    ['https://mcp.slack.com/mcp/', 'Slack MCP'],
  ];
  for (const [url, service] of tokenServices) {
    it(`${service} without authSecretKeyRef`, () => {
      const v = evaluate({ url, authSecretKeyRef: undefined });
      assert.equal(v.allowed, true);
      assert.equal(v.warnings.length, 1);
      assert.match(v.warnings[0] ?? '', new RegExp(`^${service} needs a token .*spec\\.authSecretKeyRef is not set`));
    });
  }

  it('no missing-token warning for an oauth connector or when a secret is set', () => {
    assert.deepEqual(evaluate({ url: 'https://api.githubcopilot.com/mcp/', authSecretKeyRef: undefined, authType: 'oauth' }).warnings, []);
    assert.deepEqual(evaluate({ url: 'https://api.githubcopilot.com/mcp/' }).warnings, []);
  });

  it('custom token service list replaces the default', () => {
    const v = evaluateConnector(connector({ url: 'https://api.githubcopilot.com/mcp/', authSecretKeyRef: undefined }), BUILTIN_POLICY, undefined, { tokenServices: [] });
    assert.deepEqual(v.warnings, []);
  });

  const updates: [string, Partial<Connector>, Partial<Connector>, number | undefined, RegExp | undefined][] = [
    ['URL changed, 3 agents', { url: 'https://mcp.example.com/v2' }, { url: 'https://mcp.example.com/mcp' }, 3, /^spec\.url changed while 3 agents use this connector: .*restarted/],
    ['URL changed, 1 agent', { url: 'https://mcp.example.com/v2' }, { url: 'https://mcp.example.com/mcp' }, 1, /^spec\.url changed while 1 agent uses this connector/],
    ['scheme changed', { url: 'https://mcp.example.com/mcp' }, { url: 'http://mcp.example.com/mcp' }, 2, /^spec\.url changed/],
    ['old URL was unparseable', { url: 'https://mcp.example.com/mcp' }, { url: 'garbage' }, 2, /^spec\.url changed/],
    ['secret ref and authType changed', { authType: 'oauth', authSecretKeyRef: { name: 'tok2', key: 'token' } }, {}, 2, /^spec\.authType, spec\.authSecretKeyRef changed while 2 agents/],
    ['URL changed, no agents', { url: 'https://mcp.example.com/v2' }, { url: 'https://mcp.example.com/mcp' }, 0, undefined],
    ['URL changed, count unknown', { url: 'https://mcp.example.com/v2' }, { url: 'https://mcp.example.com/mcp' }, undefined, undefined],
    ['only respelled', { url: 'HTTPS://MCP.EXAMPLE.COM./mcp/' }, { url: 'https://mcp.example.com/mcp' }, 3, undefined],
    ['authType unset vs token is no change', { authType: 'token' }, { authType: undefined }, 3, undefined],
    ['nothing changed', {}, {}, 3, undefined],
    ['headerName changed', { authType: 'header', headerName: 'X-Key' }, { authType: 'header', headerName: 'X-API-Key' }, 2, /^spec\.headerName changed while 2 agents use this connector/],
    ['disabled while agents use it', { disabled: true }, {}, 3, /^spec\.disabled is now true while 3 agents use this connector: new pods will not get it, and running pods keep it until they are restarted\. Set spec\.disabled: false to re-enable it\.$/],
    ['disabled, no agents', { disabled: true }, {}, 0, undefined],
    ['already disabled', { disabled: true }, { disabled: true }, 3, undefined],
    ['re-enabled', {}, { disabled: true }, 3, undefined],
  ];
  for (const [name, now, old, agents, want] of updates) {
    it(`update: ${name}`, () => {
      const v = evaluate(now, old, agents);
      assert.equal(v.allowed, true);
      if (want) {
        assert.equal(v.warnings.length, 1, v.warnings.join(' | '));
        assert.match(v.warnings[0] ?? '', want);
      } else assert.deepEqual(v.warnings, []);
    });
  }

  it('headerName on another auth type is ignored by the runtime: warn', () => {
    for (const authType of [undefined, 'token', 'oauth']) {
      const v = evaluate({ authType, headerName: 'X-API-Key' });
      assert.equal(v.allowed, true, v.message);
      assert.deepEqual(v.warnings, [
        `spec.headerName is ignored because spec.authType is ${authType ?? 'token'}: the token is sent as Authorization: Bearer. Set spec.authType: header to send it in "X-API-Key" instead.`,
      ]);
    }
  });

  it('header auth without a secret sends an empty header: warn', () => {
    const v = evaluate({ authType: 'header', headerName: 'X-API-Key', authSecretKeyRef: undefined });
    assert.equal(v.allowed, true, v.message);
    assert.deepEqual(v.warnings, ['spec.authType is header but spec.authSecretKeyRef is not set, so agents send no X-API-Key value. Point authSecretKeyRef at the Secret key holding it.']);
  });

  it('several warnings together', () => {
    const v = evaluate({ url: 'http://api.githubcopilot.com/mcp/', authSecretKeyRef: undefined }, { url: 'https://api.githubcopilot.com/mcp/' }, 4);
    assert.equal(v.allowed, true);
    assert.equal(v.warnings.length, 3);
  });
});

describe('evaluateConnector: admin policy', () => {
  function policy(text: string) {
    const r = parsePolicyConfig(text);
    assert.ok(r.ok, r.ok ? '' : r.reason);
    return mergePolicy(BUILTIN_POLICY, r.config);
  }

  it('a disabled built-in no longer denies', () => {
    const v = evaluateConnector(connector({ url: 'https://mcp.notion.com/mcp' }), policy('disableBuiltins: [notion]'));
    assert.equal(v.allowed, true);
  });

  it('an override allowing token no longer denies', () => {
    const v = evaluateConnector(connector({ url: 'https://mcp.notion.com/mcp' }), policy('entries: [{id: notion, service: Notion, url: "https://mcp.notion.com/mcp", allowedAuthTypes: [token, oauth], why: w, instead: i}]'));
    assert.equal(v.allowed, true);
  });

  it('an admin prefix entry denies with its own texts', () => {
    const list = policy('entries: [{id: acme, service: Acme, url: "https://mcp.acme.example/", match: prefix, why: "Acme wants OAuth.", instead: "set spec.authType: oauth."}]');
    const v = evaluateConnector(connector({ url: 'https://mcp.acme.example/any/path' }), list);
    assert.equal(v.allowed, false);
    assert.equal(v.message, 'Acme rejects static tokens: Acme wants OAuth. Fix: set spec.authType: oauth.');
  });

  it('an entry may allow header auth, and then only header auth passes', () => {
    const list = policy('entries: [{id: keyed, service: Keyed, url: "https://keyed.example/mcp", allowedAuthTypes: [header], why: "it reads X-Keyed-Token only", instead: "set spec.authType: header and spec.headerName: X-Keyed-Token"}]');
    assert.equal(evaluateConnector(connector({ url: 'https://keyed.example/mcp', authType: 'header', headerName: 'X-Keyed-Token' }), list).allowed, true);
    const token = evaluateConnector(connector({ url: 'https://keyed.example/mcp' }), list);
    assert.equal(token.message, 'Keyed rejects static tokens: it reads X-Keyed-Token only. Fix: set spec.authType: header and spec.headerName: X-Keyed-Token.');
  });

  it('an entry allowing nothing denies oauth too', () => {
    const list = policy('entries: [{id: dead, service: Dead, url: "https://dead.example/mcp", allowedAuthTypes: [], why: "it was shut down", instead: "remove this connector"}]');
    const v = evaluateConnector(connector({ url: 'https://dead.example/mcp', authType: 'oauth' }), list);
    assert.equal(v.allowed, false);
    assert.match(v.message ?? '', /^Dead rejects authType oauth: it was shut down\. Fix: remove this connector\.$/);
  });
});

describe('evaluateConnector: canary', () => {
  const CANARY = 'CANARY-TOKEN-123';
  const urls = [
    `https://user:${CANARY}@host/x`,
    `https://user:${CANARY}@mcp.notion.com/mcp`,
    `http://user:${CANARY}@mcp.example.com/mcp`,
    `https://${CANARY}@api.githubcopilot.com/mcp/`,
    `${CANARY}:x@host/x`,
    `https://host/x?token=${CANARY}`,
    `http://mcp.example.com/mcp?token=${CANARY}`,
    `https://mcp.example.com/${CANARY}`,
  ];
  for (const url of urls) {
    it(`never leaks the token: ${url.replace(CANARY, '<canary>')}`, () => {
      const olds = [undefined, connector({ url: 'https://other.example/mcp' }), connector({ url: `https://u:${CANARY}@other.example/mcp` })];
      for (const old of olds) {
        for (const authSecretKeyRef of [undefined, { name: 'tok', key: 'token' }]) {
          const v = evaluateConnector(connector({ url, authSecretKeyRef }), BUILTIN_POLICY, old, { attachedAgents: 5 });
          checkLengths(v);
          for (const text of [v.message ?? '', ...v.warnings]) assert.ok(!text.includes(CANARY), text);
        }
      }
    });
  }
});

describe('evaluateConnector: an entry\'s action, and the violation as data', () => {
  const policyWith = (action: string) => {
    const r = parsePolicyConfig(`entries:\n  - {id: acme, service: Acme, url: "https://mcp.acme.example/mcp", why: Acme retired tokens, instead: set spec.authType oauth, action: ${action}}\n`);
    assert.ok(r.ok);
    return mergePolicy(BUILTIN_POLICY, r.config);
  };
  const acme = connector({ url: 'https://MCP.acme.example/mcp/' });
  it('deny: denied with the cause and the fix, and the same as data', () => {
    const v = evaluateConnector(acme, policyWith('deny'));
    assert.equal(v.allowed, false);
    assert.equal(v.message, 'Acme rejects static tokens: Acme retired tokens. Fix: set spec.authType oauth.');
    assert.deepEqual(v.violation, { entry: 'acme', action: 'deny', cause: 'Acme rejects static tokens: Acme retired tokens.', fix: 'set spec.authType oauth' });
  });
  it('warn: admitted with a warning naming the entry and the fix', () => {
    const v = evaluateConnector(acme, policyWith('warn'));
    checkLengths(v);
    assert.equal(v.allowed, true);
    assert.deepEqual(v.warnings, ['policy entry acme (action warn): Acme rejects static tokens: Acme retired tokens. Fix: set spec.authType oauth.']);
    assert.equal(v.violation?.action, 'warn');
  });
  it('audit: admitted silently, the violation still reported as data', () => {
    const v = evaluateConnector(acme, policyWith('audit'));
    assert.equal(v.allowed, true);
    assert.deepEqual(v.warnings, []);
    assert.equal(v.violation?.entry, 'acme');
    assert.equal(v.violation?.action, 'audit');
  });
  it('a compliant connector has no violation; a spec problem is one without an entry', () => {
    assert.equal(evaluateConnector(connector({ url: 'https://MCP.acme.example/mcp/', authType: 'oauth' }), policyWith('deny')).violation, undefined);
    const bad = evaluateConnector(connector({ authType: 'header', headerName: 'Host' }), BUILTIN_POLICY);
    assert.equal(bad.violation?.entry, undefined);
    assert.equal(bad.violation?.fix, 'use a header such as X-API-Key');
  });
});
