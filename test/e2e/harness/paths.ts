// Where things are, resolved from this file so the harness works from any cwd.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

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
 * The platform's CRDs, from shared/ beside the repository (never copied into it), and the
 * project's own minimal ones (a kustomize Component, for clusters without the platform).
 */
function crdDirs(root: string): { platform: string; project: string } {
  return { platform: path.join(root, '..', 'shared', 'upstream', 'crds'), project: path.join(root, 'manifests', 'components', 'crds') };
}

export const platformCrdDir = crdDirs(repoRoot).platform;
export const projectCrdDir = crdDirs(repoRoot).project;

export type CrdSourceKind = 'platform' | 'project';

/** Which CRDs a run installs, and why those. */
export interface CrdSource {
  readonly kind: CrdSourceKind;
  readonly dir: string;
  /** Absolute paths of the files to apply, in order. */
  readonly files: readonly string[];
  /** One sentence for the log and for crds.txt. */
  readonly why: string;
}

/** The little file access resolveCrdSource needs, so tests can fake the layout. */
export interface CrdFs {
  exists(file: string): boolean;
  /** File names (not paths) in a directory. */
  list(dir: string): readonly string[];
  read(file: string): string;
}

export const nodeCrdFs: CrdFs = {
  exists: (file) => existsSync(file),
  list: (dir) => readdirSync(dir),
  read: (file) => readFileSync(file, 'utf8'),
};

const KUSTOMIZATION_NAMES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
// Keys that leave the listed files as they are; anything else (patches, labels, ...) would
// change what kustomize renders, and applying only `resources` would silently differ.
const PLAIN_KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'metadata', 'resources']);

/**
 * The files to apply from a CRD directory: those its kustomization lists under
 * `resources` (the kustomization itself is no manifest), else every *.yaml / *.yml.
 */
function crdFiles(dir: string, fs: CrdFs): string[] {
  const kustomization = KUSTOMIZATION_NAMES.map((name) => path.join(dir, name)).find((file) => fs.exists(file));
  if (kustomization === undefined) {
    const files = fs
      .list(dir)
      .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
      .sort()
      .map((f) => path.join(dir, f));
    if (files.length === 0) throw new Error(`no CRD files (*.yaml, *.yml) in ${dir}`);
    return files;
  }
  const parsed: unknown = parse(fs.read(kustomization));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${kustomization} is not a YAML mapping`);
  const extra = Object.keys(parsed).filter((key) => !PLAIN_KUSTOMIZATION_KEYS.has(key));
  if (extra.length > 0) throw new Error(`${kustomization} has ${extra.join(', ')}; the harness applies only the files under resources, which would ignore them`);
  const resources: unknown = (parsed as Record<string, unknown>)['resources'];
  if (!Array.isArray(resources) || resources.length === 0) throw new Error(`${kustomization} lists no resources`);
  return resources.map((resource: unknown) => {
    if (typeof resource !== 'string' || !/\.ya?ml$/.test(resource)) throw new Error(`${kustomization}: resource ${JSON.stringify(resource)} is not a YAML file`);
    const file = path.resolve(dir, resource);
    if (!fs.exists(file)) throw new Error(`${kustomization}: resource ${resource} not found (${file})`);
    return file;
  });
}

/**
 * Which CRDs to install: KOMPUTER_CRD_DIR if set (it must exist); else the platform's
 * beside the repository if there; else the project's own component, so a lone clone still
 * runs. `use: 'project'` takes the project's whatever else exists (for behaviour the
 * platform's published CRDs lack).
 */
export function resolveCrdSource(
  env: Readonly<Record<string, string | undefined>>,
  fs: CrdFs = nodeCrdFs,
  options: { readonly root?: string; readonly use?: 'default' | 'project' } = {},
): CrdSource {
  const root = options.root ?? repoRoot;
  const { platform: platformDir, project: projectDir } = crdDirs(path.resolve(root));
  const projectName = path.relative(root, projectDir);
  if (options.use === 'project') {
    return { kind: 'project', dir: projectDir, files: crdFiles(projectDir, fs), why: `the project's own component ${projectName} (asked for with crds: 'project')` };
  }
  const override = env['KOMPUTER_CRD_DIR'];
  if (override !== undefined && override !== '') {
    const dir = path.resolve(override);
    if (!fs.exists(dir)) throw new Error(`KOMPUTER_CRD_DIR=${override} does not exist; point it at a directory of CRD YAML files, or unset it to use ${platformDir} or else ${projectDir}`);
    // The project's own component named explicitly is still the project's.
    if (dir === projectDir) {
      return { kind: 'project', dir, files: crdFiles(dir, fs), why: `the project's own component ${projectName}, from ${dir} (KOMPUTER_CRD_DIR)` };
    }
    return { kind: 'platform', dir, files: crdFiles(dir, fs), why: `the platform's, from ${dir} (KOMPUTER_CRD_DIR)` };
  }
  if (fs.exists(platformDir)) {
    return { kind: 'platform', dir: platformDir, files: crdFiles(platformDir, fs), why: `the platform's, from ${platformDir}` };
  }
  return {
    kind: 'project',
    dir: projectDir,
    files: crdFiles(projectDir, fs),
    why: `../shared/upstream/crds not found beside the repository; using the project's own component ${projectName} (set KOMPUTER_CRD_DIR to use the platform's)`,
  };
}

/** The line the harness prints (and keeps in crds.txt) about a run's CRDs. */
export function crdSourceLine(source: CrdSource): string {
  return `CRDs: ${source.why}`;
}

/** The service's entry point, built by `npm run build` (KOMPUTER_E2E_SERVICE_ENTRY overrides). */
export const serviceEntryPoint = path.resolve(
  process.env['KOMPUTER_E2E_SERVICE_ENTRY'] ?? path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'),
);

/** Kept logs of the last run of each environment (git-ignored). */
export const logsRoot = path.join(repoRoot, '.e2e', 'logs');

export function bin(name: 'kube-apiserver' | 'kubectl' | 'etcd'): string {
  return path.join(binDir, name);
}

/**
 * Test tools built by test/tools/build.sh (helm, ...): bin/, or KOMPUTER_BIN_DIR like the
 * control plane (never bin/<version>: they do not depend on the Kubernetes release).
 */
export const toolsBinDir = path.resolve(process.env['KOMPUTER_BIN_DIR'] ?? path.join(repoRoot, 'bin'));

/** A tool test/tools/build.sh builds into toolsBinDir; throws, naming its npm script, when missing. */
function toolBinary(name: string, built: string): string {
  const file = path.join(toolsBinDir, name);
  if (!existsSync(file)) {
    const where = toolsBinDir.startsWith(`${repoRoot}${path.sep}`) ? path.relative(repoRoot, toolsBinDir) : toolsBinDir;
    throw new Error(`${file} is missing: run \`npm run tools:${name}\` first (builds ${built} from test/tools/${name} into ${where}/)`);
  }
  return file;
}

/** The helm binary (`npm run tools:helm`); throws, naming that script, when it is missing. */
export function helmBinary(): string {
  return toolBinary('helm', 'helm v4');
}

/**
 * The Prometheus server (`npm run tools:prometheus`), from the same pin as promtool; throws,
 * naming that script, when it is missing.
 */
export function prometheusBinary(): string {
  return toolBinary('prometheus', 'the Prometheus server');
}
