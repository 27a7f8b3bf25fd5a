// The node teardown's iptables parsing: which rules it deletes and which chains it removes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kubeIptablesCleanup } from '../e2e/harness/node.ts';

test('KUBE- chains and every rule jumping to one are found; other rules and chains are left alone', () => {
  const text = [
    '-P INPUT ACCEPT',
    '-N KUBE-FIREWALL',
    '-N KUBE-SERVICES',
    '-N DOCKER-USER',
    '-A INPUT -m comment --comment "kubernetes service portals" -m conntrack --ctstate NEW -j KUBE-SERVICES',
    '-A INPUT -j KUBE-FIREWALL',
    '-A INPUT -s 10.0.0.0/8 -j ACCEPT',
    '-A DOCKER-USER -j RETURN',
    '-A KUBE-SERVICES -d 10.211.0.10/32 -j KUBE-SVC-ABC',
    '',
  ].join('\n');
  const { deletes, chains } = kubeIptablesCleanup(text);
  assert.deepEqual(chains, ['KUBE-FIREWALL', 'KUBE-SERVICES']);
  assert.deepEqual(deletes, [
    ['INPUT', '-m', 'comment', '--comment', 'kubernetes service portals', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'KUBE-SERVICES'],
    ['INPUT', '-j', 'KUBE-FIREWALL'],
    ['KUBE-SERVICES', '-d', '10.211.0.10/32', '-j', 'KUBE-SVC-ABC'],
  ]);
});

test('a table without KUBE- state needs nothing', () => {
  assert.deepEqual(kubeIptablesCleanup('-P INPUT ACCEPT\n-A INPUT -j ACCEPT\n'), { deletes: [], chains: [] });
  assert.deepEqual(kubeIptablesCleanup(''), { deletes: [], chains: [] });
});
