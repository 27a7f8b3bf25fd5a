// Where things are, resolved from this file so the harness works from any cwd.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The repository root (test/e2e/harness -> ../../..). */
export const repoRoot = path.resolve(here, '..', '..', '..');

/** The Kubernetes release pinned in test/controlplane/versions.env. */
export const pinnedK8sVersion = /^K8S_VERSION=(\S+)/m.exec(readFileSync(path.join(repoRoot, 'test', 'controlplane', 'versions.env'), 'utf8'))?.[1] ?? '';

/**
 * Built control-plane binaries (kube-apiserver, kubectl, etcd): bin/, or bin/<version> when
 * K8S_VERSION names another release (test/controlplane/build.sh); KOMPUTER_BIN_DIR overrides.
 */
export const binDir = path.resolve(
  process.env['KOMPUTER_BIN_DIR'] ??
    (process.env['K8S_VERSION'] && process.env['K8S_VERSION'] !== pinnedK8sVersion ? path.join(repoRoot, 'bin', process.env['K8S_VERSION']) : path.join(repoRoot, 'bin')),
);

/**
 * The platform's CRDs, from shared/ beside the repository (never copied into it).
 * KOMPUTER_CRD_DIR overrides, e.g. when shared/ lives elsewhere.
 */
export const crdDir = path.resolve(
  process.env['KOMPUTER_CRD_DIR'] ?? path.join(repoRoot, '..', 'shared', 'upstream', 'crds'),
);

/** The service's entry point, built by `npm run build` (KOMPUTER_E2E_SERVICE_ENTRY overrides). */
export const serviceEntryPoint = path.resolve(
  process.env['KOMPUTER_E2E_SERVICE_ENTRY'] ?? path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'),
);

/** Kept logs of the last run of each environment (git-ignored). */
export const logsRoot = path.join(repoRoot, '.e2e', 'logs');

export function bin(name: 'kube-apiserver' | 'kubectl' | 'etcd'): string {
  return path.join(binDir, name);
}
