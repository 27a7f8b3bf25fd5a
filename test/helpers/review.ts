// Builds AdmissionReview requests the way the API server sends them.

import { randomUUID } from 'node:crypto';
import type { JsonObject } from '../../src/model/objects.ts';

export function podReview(pod: JsonObject, namespace: string, options: { dryRun?: boolean; operation?: string; uid?: string; subResource?: string; oldObject?: JsonObject } = {}): JsonObject {
  const md = (pod.metadata ?? {}) as { name?: string };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: options.uid ?? randomUUID(),
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      ...(options.subResource ? { subResource: options.subResource, requestSubResource: options.subResource } : {}),
      name: md.name ?? '',
      namespace,
      operation: options.operation ?? 'CREATE',
      userInfo: { username: 'system:serviceaccount:komputer-system:komputer-operator', groups: ['system:serviceaccounts'] },
      object: pod,
      oldObject: options.oldObject ?? null,
      dryRun: options.dryRun ?? false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: (options.operation ?? 'CREATE') === 'CREATE' ? 'CreateOptions' : 'UpdateOptions' },
    },
  };
}

export function decodePatch(b64: string | undefined): unknown[] {
  if (!b64) return [];
  return JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as unknown[];
}
