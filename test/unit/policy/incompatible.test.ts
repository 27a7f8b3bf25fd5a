import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BUILTIN_POLICY,
  KNOWN_TOKEN_SERVICES,
  POLICY_CONFIGMAP_KEY,
  findEntry,
  findTokenService,
  mergePolicy,
  parsePolicyConfig,
  type PolicyConfig,
  type PolicyEntry,
} from '../../../src/policy/incompatible.ts';
import { canonicalUrl, type CanonicalUrl } from '../../../src/policy/url.ts';

function canon(raw: string): CanonicalUrl {
  const r = canonicalUrl(raw);
  assert.ok(r.ok, raw);
  return r.url;
}

function parsed(text: string): PolicyConfig {
  const r = parsePolicyConfig(text);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r.config;
}

function entry(over: Partial<PolicyEntry> & Pick<PolicyEntry, 'id' | 'key'>): PolicyEntry {
  return { service: over.id, url: `https://${over.key}`, match: 'exact', allowedAuthTypes: ['oauth'], why: 'w', instead: 'i', action: 'deny', source: 'config', ...over };
}

describe('built-in data', () => {
  it('has Notion and Atlassian Rovo with their canonical keys, oauth only, and SPEC texts', () => {
    assert.equal(POLICY_CONFIGMAP_KEY, 'incompatible.yaml');
    const byId = new Map(BUILTIN_POLICY.map((e) => [e.id, e]));
    const notion = byId.get('notion');
    const rovo = byId.get('atlassian-rovo');
    assert.ok(notion && rovo);
    assert.equal(notion.key, 'mcp.notion.com/mcp');
    assert.equal(rovo.key, 'mcp.atlassian.com/v1/mcp');
    for (const e of [notion, rovo]) {
      assert.deepEqual(e.allowedAuthTypes, ['oauth']);
      assert.equal(e.source, 'builtin');
      assert.match(e.instead, /spec\.authType: oauth/);
    }
    assert.match(notion.why, /invalid_token/);
    assert.match(rovo.why, /2 limited tools/);
  });

  it('known token services match their canonical spellings', () => {
    const cases: [string, string][] = [
      ['https://api.githubcopilot.com/mcp', 'github'],
      ['https://API.githubcopilot.com/mcp/', 'github'],
      ['https://mcp.google.com/a/gmail/mcp', 'gmail'],
      ['https://mcp.google.com/a/calendar/mcp/', 'google-calendar'],
      ['https://mcp.linear.app/mcp', 'linear'],
      ['https://mcp.slack.com:443/mcp', 'slack'],
    ];
    for (const [url, id] of cases) assert.equal(findTokenService(KNOWN_TOKEN_SERVICES, canon(url))?.id, id, url);
    assert.equal(findTokenService(KNOWN_TOKEN_SERVICES, canon('https://mcp.google.com/a/drive/mcp')), undefined);
  });
});

describe('findEntry', () => {
  const cases: [string, string | undefined][] = [
    ['https://mcp.notion.com/mcp', 'notion'],
    ['HTTPS://MCP.NOTION.COM./mcp/?x=1#f', 'notion'],
    ['https://mcp.notion.com:443/mcp', 'notion'],
    ['https://user:pw@mcp.notion.com/mcp', 'notion'],
    ['https://mcp.notion.com/%6dcp', 'notion'],
    ['http://mcp.notion.com/mcp', 'notion'],
    ['https://mcp.atlassian.com/v1/mcp/', 'atlassian-rovo'],
    ['https://mcp.notion.com.evil.example/mcp', undefined],
    ['https://evilmcp.notion.com/mcp', undefined],
    ['https://mcp.notion.com/mcp/sub', undefined], // exact by default
    ['https://mcp.atlassian.com/v1/sse', undefined],
  ];
  for (const [url, id] of cases) {
    it(`${url} -> ${id ?? 'no entry'}`, () => assert.equal(findEntry(BUILTIN_POLICY, canon(url))?.id, id));
  }

  it('prefix entries match sub-paths on a segment boundary only', () => {
    const list = [entry({ id: 'acme', key: 'mcp.acme.example/v1', match: 'prefix' }), entry({ id: 'whole-host', key: 'all.example/', match: 'prefix' })];
    const cases: [string, string | undefined][] = [
      ['https://mcp.acme.example/v1', 'acme'],
      ['https://mcp.acme.example/v1/mcp', 'acme'],
      ['https://mcp.acme.example/v1mcp', undefined],
      ['https://mcp.acme.example/v2/mcp', undefined],
      ['https://all.example/', 'whole-host'],
      ['https://all.example/anything/at/all', 'whole-host'],
      ['https://all.example:8443/x', undefined],
    ];
    for (const [url, id] of cases) assert.equal(findEntry(list, canon(url))?.id, id, url);
  });

  it('exact beats prefix, longer prefix beats shorter, earlier wins ties', () => {
    const list = [
      entry({ id: 'short', key: 'h.example/', match: 'prefix' }),
      entry({ id: 'long', key: 'h.example/a', match: 'prefix' }),
      entry({ id: 'exact', key: 'h.example/a/b' }),
      entry({ id: 'exact-dup', key: 'h.example/a/b' }),
    ];
    assert.equal(findEntry(list, canon('https://h.example/a/b'))?.id, 'exact');
    assert.equal(findEntry(list, canon('https://h.example/a/c'))?.id, 'long');
    assert.equal(findEntry(list, canon('https://h.example/z'))?.id, 'short');
  });
});

describe('parsePolicyConfig: good', () => {
  it('empty text and comments only give an empty config', () => {
    for (const text of ['', '   \n', '# nothing here\n', '{}', 'entries: []', 'entries:\ndisableBuiltins:\n']) {
      assert.deepEqual(parsed(text), { entries: [], disabled: [] }, JSON.stringify(text));
    }
  });

  it('parses a full YAML entry with defaults and canonical key', () => {
    const c = parsed(`
disableBuiltins: [atlassian-rovo]
entries:
  - id: acme
    service: Acme MCP
    url: " https://MCP.acme.example:443/mcp/ "
    why: Acme refuses personal tokens.
    instead: set spec.authType oauth
  - id: beta
    service: Beta
    url: https://beta.example/v1
    match: prefix
    allowedAuthTypes: [oauth, token, oauth]
    why: w
    instead: i
    enabled: true
`);
    assert.deepEqual(c.disabled, ['atlassian-rovo']);
    assert.equal(c.entries.length, 2);
    const [acme, beta] = c.entries;
    assert.deepEqual(acme, {
      id: 'acme',
      service: 'Acme MCP',
      url: 'https://MCP.acme.example:443/mcp/',
      key: 'mcp.acme.example/mcp',
      match: 'exact',
      allowedAuthTypes: ['oauth'],
      why: 'Acme refuses personal tokens.',
      instead: 'set spec.authType oauth',
      action: 'deny',
      source: 'config',
    });
    assert.equal(beta?.match, 'prefix');
    assert.deepEqual(beta?.allowedAuthTypes, ['oauth', 'token']);
  });

  it('reads action (deny, warn, audit; deny by default) and rejects any other, naming it', () => {
    const text = (action: string): string => `entries:\n  - {id: x, service: X, url: "https://x.example/mcp", why: w, instead: i, action: ${action}}\n`;
    for (const a of ['deny', 'warn', 'audit'] as const) assert.equal(parsed(text(a)).entries[0]?.action, a);
    const bad = parsePolicyConfig(text('enforce'));
    assert.equal(bad.ok, false);
    assert.match(bad.ok ? '' : bad.reason, /entries\[0\] \(id "x"\): action "enforce" is not one of deny, warn, audit/);
    const typed = parsePolicyConfig(text('[deny]'));
    assert.match(typed.ok ? '' : typed.reason, /action of that type is not one of deny, warn, audit/);
    for (const e of BUILTIN_POLICY) assert.equal(e.action, 'deny');
  });

  it('parses JSON too', () => {
    const c = parsed(JSON.stringify({ entries: [{ id: 'x', service: 'X', url: 'https://x.example/mcp', allowedAuthTypes: [], why: 'w', instead: 'i' }] }));
    assert.deepEqual(c.entries[0]?.allowedAuthTypes, []);
  });

  it('an entry with enabled: false needs only its id and disables that id', () => {
    const c = parsed('entries:\n  - id: notion\n    enabled: false\n');
    assert.deepEqual(c, { entries: [], disabled: ['notion'] });
  });
});

describe('parsePolicyConfig: broken', () => {
  const cases: [string, string, RegExp][] = [
    ['garbage YAML', 'entries: [1,\n  b: :', /^incompatible\.yaml is not valid YAML\/JSON: /],
    ['broken JSON', '{"entries": [', /is not valid YAML\/JSON/],
    ['duplicate keys', 'entries: []\nentries: []', /not valid YAML/],
    ['a list at top level', '- id: x', /must be a mapping/],
    ['a scalar at top level', 'hello', /must be a mapping/],
    ['unknown top-level field', 'entrys: []', /unknown field "entrys"/],
    ['entries not a list', 'entries: {id: x}', /entries must be a list/],
    ['entry not a mapping', 'entries: [notion]', /entries\[0\] must be a mapping/],
    ['missing id', 'entries: [{service: S, url: "https://a.example", why: w, instead: i}]', /entries\[0\]: id is required/],
    ['bad id', 'entries: [{id: "Not OK", service: S, url: "https://a.example", why: w, instead: i}]', /entries\[0\] \(id "Not OK"\): id is required/],
    ['unknown entry field (typo)', 'entries: [{id: a, service: S, url: "https://a.example", why: w, instead: i, allowedAuthType: [token]}]', /entries\[0\] \(id "a"\): unknown field "allowedAuthType"/],
    ['missing service', 'entries: [{id: a, url: "https://a.example", why: w, instead: i}]', /\(id "a"\): service is required/],
    ['empty why', 'entries: [{id: a, service: S, url: "https://a.example", why: "", instead: i}]', /\(id "a"\): why is required/],
    ['instead wrong type', 'entries: [{id: a, service: S, url: "https://a.example", why: w, instead: 3}]', /\(id "a"\): instead is required/],
    ['why too long', `entries: [{id: a, service: S, url: "https://a.example", why: "${'x'.repeat(161)}", instead: i}]`, /why is longer than 160/],
    ['missing url', 'entries: [{id: a, service: S, why: w, instead: i}]', /\(id "a"\): url is required/],
    ['url not http(s)', 'entries: [{id: a, service: S, url: "ftp://a.example", why: w, instead: i}]', /\(id "a"\): url uses scheme ftp:/],
    ['url unparseable', 'entries: [{id: a, service: S, url: "nope", why: w, instead: i}]', /\(id "a"\): url is not a valid absolute URL/],
    ['url with user-info', 'entries: [{id: a, service: S, url: "https://u:p@a.example", why: w, instead: i}]', /\(id "a"\): url must not contain user-info/],
    ['bad match', 'entries: [{id: a, service: S, url: "https://a.example", why: w, instead: i, match: regex}]', /match must be "exact" or "prefix"/],
    ['allowedAuthTypes a string', 'entries: [{id: a, service: S, url: "https://a.example", why: w, instead: i, allowedAuthTypes: oauth}]', /allowedAuthTypes must be a list/],
    ['allowedAuthTypes typo', 'entries: [{id: a, service: S, url: "https://a.example", why: w, instead: i, allowedAuthTypes: [oauht]}]', /allowedAuthTypes\[0\] must be one of token, oauth/],
    ['enabled not boolean (YAML 1.2 "no" is a string)', 'entries: [{id: notion, enabled: no}]', /enabled must be true or false/],
    ['disabled entry with a typo', 'entries: [{id: notion, enabled: false, servce: x}]', /unknown field "servce"/],
    ['duplicate id', 'entries: [{id: notion, enabled: false}, {id: notion, enabled: false}]', /entries\[1\]: id "notion" appears more than once/],
    ['disableBuiltins not a list', 'disableBuiltins: notion', /disableBuiltins must be a list/],
    ['disableBuiltins bad item', 'disableBuiltins: [notion, 3]', /disableBuiltins\[1\] must be an entry id/],
  ];
  for (const [name, text, reason] of cases) {
    it(name, () => {
      const r = parsePolicyConfig(text);
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.match(r.reason, reason);
        assert.ok(!r.reason.includes('\n'), 'reason is one line');
      }
    });
  }

  it('reports several problems at once, bounded', () => {
    const bad = Array.from({ length: 8 }, (_, i) => `  - {id: e${i}}`).join('\n');
    const r = parsePolicyConfig(`entries:\n${bad}\n`);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.match(r.reason, /entries\[0\] \(id "e0"\): service is required/);
      assert.match(r.reason, /and \d+ more$/);
    }
  });

  it('rejects oversized text without parsing it', () => {
    const r = parsePolicyConfig(`# ${'x'.repeat(300_000)}`);
    assert.equal(r.ok, false);
  });
});

describe('mergePolicy', () => {
  it('with an empty config is the built-ins', () => {
    assert.deepEqual(mergePolicy(BUILTIN_POLICY, { entries: [], disabled: [] }), [...BUILTIN_POLICY]);
  });

  it('an admin entry with a built-in id replaces it (e.g. allowing token)', () => {
    const c = parsed('entries:\n  - {id: notion, service: Notion (self-hosted proxy), url: "https://mcp.notion.com/mcp", allowedAuthTypes: [oauth, token], why: w, instead: i}\n');
    const list = mergePolicy(BUILTIN_POLICY, c);
    assert.equal(list.filter((e) => e.id === 'notion').length, 1);
    const notion = findEntry(list, canon('https://mcp.notion.com/mcp'));
    assert.equal(notion?.source, 'config');
    assert.deepEqual(notion?.allowedAuthTypes, ['oauth', 'token']);
    assert.ok(list.some((e) => e.id === 'atlassian-rovo'));
  });

  it('a built-in can be switched off by disableBuiltins or enabled: false', () => {
    for (const text of ['disableBuiltins: [notion]', 'entries: [{id: notion, enabled: false}]']) {
      const list = mergePolicy(BUILTIN_POLICY, parsed(text));
      assert.deepEqual(list.map((e) => e.id), ['atlassian-rovo'], text);
      assert.equal(findEntry(list, canon('https://mcp.notion.com/mcp')), undefined);
    }
  });

  it('ids that are not built in are ignored when disabling', () => {
    assert.deepEqual(mergePolicy(BUILTIN_POLICY, parsed('disableBuiltins: [gone-in-this-version]')), [...BUILTIN_POLICY]);
  });

  it('admin entries come first and win a tie with a built-in at the same URL', () => {
    const c = parsed('entries:\n  - {id: my-notion, service: Mine, url: "https://mcp.notion.com/mcp/", allowedAuthTypes: [token, oauth], why: w, instead: i}\n');
    const list = mergePolicy(BUILTIN_POLICY, c);
    assert.deepEqual(list.map((e) => e.id), ['my-notion', 'notion', 'atlassian-rovo']);
    assert.equal(findEntry(list, canon('https://mcp.notion.com/mcp'))?.id, 'my-notion');
  });

  it('a broken config leaves the caller with its last good list (parse only reports)', () => {
    let current = mergePolicy(BUILTIN_POLICY, parsed('disableBuiltins: []'));
    const r = parsePolicyConfig('disableBuiltins: [notion]\nentries: oops');
    if (r.ok) current = mergePolicy(BUILTIN_POLICY, r.config);
    assert.equal(r.ok, false);
    assert.ok(findEntry(current, canon('https://mcp.notion.com/mcp')));
  });
});
