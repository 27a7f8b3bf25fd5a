import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalPath, canonicalUrl, isClusterInternalHost } from '../../../src/policy/url.ts';

const NOTION = 'mcp.notion.com/mcp';

// Every spelling of the Notion endpoint must land on the same key.
const sameAsNotion: [string, string][] = [
  ['plain', 'https://mcp.notion.com/mcp'],
  ['upper scheme and host, trailing dot, slash, query, fragment', 'HTTPS://MCP.NOTION.COM./mcp/?x=1#f'],
  ['explicit default port', 'https://mcp.notion.com:443/mcp'],
  ['user-info', 'https://user:pw@mcp.notion.com/mcp'],
  ['percent-encoded unreserved (lower-case escape)', 'https://mcp.notion.com/%6dcp'],
  ['percent-encoded unreserved (upper-case escape)', 'https://mcp.notion.com/%6D%63%70'],
  ['http (scheme-insensitive key)', 'http://mcp.notion.com/mcp'],
  ['http with its default port', 'http://mcp.notion.com:80/mcp'],
  ['surrounding whitespace', '  https://mcp.notion.com/mcp \n'],
  ['backslashes', 'https:\\\\mcp.notion.com\\mcp'],
  ['doubled slashes', 'https://mcp.notion.com//mcp//'],
  ['dot segments', 'https://mcp.notion.com/x/../mcp/.'],
  ['encoded dot segments', 'https://mcp.notion.com/x/%2E%2e/mcp'],
  ['percent-encoded host', 'https://mcp.%6Eotion.com/mcp'],
  ['full-width letters (IDNA mapping)', 'https://ｍｃｐ.ｎｏｔｉｏｎ.ｃｏｍ/mcp'],
  ['embedded tab', 'https://mcp.no\ttion.com/mcp'],
  ['empty user-info', 'https://@mcp.notion.com/mcp'],
  ['two trailing dots', 'https://mcp.notion.com../mcp'],
];

const differentFromNotion: [string, string, string][] = [
  ['host containing the listed host', 'https://mcp.notion.com.evil.example/mcp', 'mcp.notion.com.evil.example/mcp'],
  ['suffix lookalike', 'https://evilmcp.notion.com/mcp', 'evilmcp.notion.com/mcp'],
  ['prefix lookalike', 'https://mcp.notion.co/mcp', 'mcp.notion.co/mcp'],
  ['other port', 'https://mcp.notion.com:8443/mcp', 'mcp.notion.com:8443/mcp'],
  ['https on port 80 is not the default', 'https://mcp.notion.com:80/mcp', 'mcp.notion.com:80/mcp'],
  ['path case matters', 'https://mcp.notion.com/MCP', 'mcp.notion.com/MCP'],
  ['longer path', 'https://mcp.notion.com/mcpx', 'mcp.notion.com/mcpx'],
  ['encoded slash stays encoded (upper-cased)', 'https://mcp.notion.com/%2fmcp', 'mcp.notion.com/%2Fmcp'],
  ['dotless i is another host (punycode)', 'https://mcp.notıon.com/mcp', 'mcp.xn--noton-p4a.com/mcp'],
];

describe('canonicalUrl', () => {
  for (const [name, raw] of sameAsNotion) {
    it(`same key: ${name}`, () => {
      const r = canonicalUrl(raw);
      assert.ok(r.ok, `expected ok for ${JSON.stringify(raw)}`);
      assert.equal(r.url.key, NOTION);
      assert.equal(r.url.host, 'mcp.notion.com');
      assert.equal(r.url.path, '/mcp');
    });
  }

  for (const [name, raw, key] of differentFromNotion) {
    it(`different key: ${name}`, () => {
      const r = canonicalUrl(raw);
      assert.ok(r.ok);
      assert.equal(r.url.key, key);
      assert.notEqual(r.url.key, NOTION);
    });
  }

  it('exposes scheme, effective port and user-info presence', () => {
    const cases: [string, { scheme: string; port: number; hasUserInfo: boolean; host: string }][] = [
      ['https://mcp.notion.com/mcp', { scheme: 'https', port: 443, hasUserInfo: false, host: 'mcp.notion.com' }],
      ['HTTP://Svc.NS.svc:8080/mcp', { scheme: 'http', port: 8080, hasUserInfo: false, host: 'svc.ns.svc' }],
      ['https://user:pw@mcp.notion.com/mcp', { scheme: 'https', port: 443, hasUserInfo: true, host: 'mcp.notion.com' }],
      ['https://user@mcp.notion.com/mcp', { scheme: 'https', port: 443, hasUserInfo: true, host: 'mcp.notion.com' }],
      ['https://:pw@mcp.notion.com/mcp', { scheme: 'https', port: 443, hasUserInfo: true, host: 'mcp.notion.com' }],
      ['https://[::1]:8080/x', { scheme: 'https', port: 8080, hasUserInfo: false, host: '[::1]' }],
      ['http://0x7f.1/x', { scheme: 'http', port: 80, hasUserInfo: false, host: '127.0.0.1' }],
    ];
    for (const [raw, want] of cases) {
      const r = canonicalUrl(raw);
      assert.ok(r.ok, raw);
      const { scheme, port, hasUserInfo, host } = r.url;
      assert.deepEqual({ scheme, port, hasUserInfo, host }, want, raw);
    }
  });

  it('keeps the port in the key only when it is not the default', () => {
    const r = canonicalUrl('http://mcp.ns.svc.cluster.local:8080/');
    assert.ok(r.ok);
    assert.equal(r.url.key, 'mcp.ns.svc.cluster.local:8080/');
  });

  const rejected: [string, string, RegExp][] = [
    ['ftp scheme', 'ftp://mcp.notion.com/mcp', /scheme ftp: .*only http:\/\/ and https:\/\//],
    ['websocket scheme', 'wss://mcp.notion.com/mcp', /scheme wss:/],
    ['not a url', 'not a url', /not a valid absolute URL/],
    ['empty', '', /is empty/],
    ['blank', '   ', /is empty/],
    ['relative path', '/mcp', /not a valid absolute URL/],
    ['bad port', 'https://mcp.notion.com:99999/mcp', /not a valid absolute URL/],
    ['encoded slash in host', 'https://mcp.notion.com%2Fevil/x', /not a valid absolute URL/],
  ];
  for (const [name, raw, reason] of rejected) {
    it(`rejects: ${name}`, () => {
      const r = canonicalUrl(raw);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, reason);
    });
  }

  it('never echoes the input in a reason (user:pass@host parses with "user" as scheme)', () => {
    for (const raw of ['s3cr3t:x@host/y', 'secrettoken://host', 'https://exa mple.com/SECRETPATH']) {
      const r = canonicalUrl(raw);
      assert.equal(r.ok, false, raw);
      if (!r.ok) {
        for (const part of ['s3cr3t', 'secrettoken', 'SECRETPATH', 'exa mple']) assert.ok(!r.reason.includes(part), `${raw} -> ${r.reason}`);
      }
    }
  });
});

describe('canonicalPath', () => {
  const cases: [string, string][] = [
    ['/', '/'],
    ['', '/'],
    ['//', '/'],
    ['/mcp/', '/mcp'],
    ['/%7e%5F%2d%2E', '/~_-.'],
    ['/a%2fb', '/a%2Fb'],
    ['/%c3%a9', '/%C3%A9'],
    ['/%zz', '/%zz'],
    ['/a//b///c/', '/a/b/c'],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} -> ${JSON.stringify(want)}`, () => assert.equal(canonicalPath(input), want));
  }
});

describe('isClusterInternalHost', () => {
  const cases: [string, boolean][] = [
    ['my-mcp', true],
    ['localhost', true],
    ['app.localhost', true],
    ['mcp.team-a.svc', true],
    ['mcp.team-a.svc.cluster.local', true],
    ['node.cluster.local', true],
    ['10.1.2.3', true],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['172.32.0.1', false],
    ['192.168.1.1', true],
    ['127.0.0.1', true],
    ['169.254.1.1', true],
    ['100.64.0.1', true],
    ['100.128.0.1', false],
    ['8.8.8.8', false],
    ['[::1]', true],
    ['[fd12:3456::1]', true],
    ['[fe80::1]', true],
    ['[fc::1]', false],
    ['[2001:db8::1]', false],
    ['[::ffff:a00:1]', true],
    ['[::ffff:808:808]', false],
    ['mcp.notion.com', false],
    ['svc.evil.example', false],
    ['cluster.local.evil.example', false],
  ];
  for (const [host, want] of cases) {
    it(`${host} -> ${want}`, () => assert.equal(isClusterInternalHost(host), want));
  }
});
