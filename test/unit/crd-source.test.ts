// Which CRDs the e2e harness installs (resolveCrdSource), on a faked file layout: the
// override, the platform's beside the repository, the project's own component as fallback
// or on request, and the errors that must not fall back silently.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crdSourceLine, nodeCrdFs, resolveCrdSource, type CrdFs } from '../e2e/harness/paths.ts';

const ROOT = '/src/repo';
const PLATFORM = '/src/shared/upstream/crds';
const PROJECT = '/src/repo/manifests/components/crds';

const COMPONENT = `apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
  - komputerconnectors.yaml
  - komputeragents.yaml
`;

/** A layout of files (path -> content); directories are the parents of those. */
function fakeFs(files: Record<string, string>): CrdFs {
  const dirs = new Set<string>();
  for (const file of Object.keys(files)) {
    for (let dir = file.slice(0, file.lastIndexOf('/')); dir !== ''; dir = dir.slice(0, dir.lastIndexOf('/'))) dirs.add(dir);
  }
  return {
    exists: (p) => p in files || dirs.has(p),
    list: (dir) => Object.keys(files).filter((f) => f.startsWith(`${dir}/`) && !f.slice(dir.length + 1).includes('/')).map((f) => f.slice(dir.length + 1)),
    read: (p) => {
      const content = files[p];
      if (content === undefined) throw new Error(`ENOENT ${p}`);
      return content;
    },
  };
}

const project: Record<string, string> = {
  [`${PROJECT}/kustomization.yaml`]: COMPONENT,
  [`${PROJECT}/komputerconnectors.yaml`]: 'kind: CustomResourceDefinition',
  [`${PROJECT}/komputeragents.yaml`]: 'kind: CustomResourceDefinition',
};
const platform: Record<string, string> = {
  [`${PLATFORM}/komputer.komputer.ai_komputerconnectors.yaml`]: 'kind: CustomResourceDefinition',
  [`${PLATFORM}/komputer.komputer.ai_komputeragents.yaml`]: 'kind: CustomResourceDefinition',
  [`${PLATFORM}/README.md`]: 'not a manifest',
};

describe('resolveCrdSource', () => {
  test("the platform's beside the repository, every YAML file in name order", () => {
    const source = resolveCrdSource({}, fakeFs({ ...project, ...platform }), { root: ROOT });
    assert.equal(source.kind, 'platform');
    assert.equal(source.dir, PLATFORM);
    assert.deepEqual(source.files, [`${PLATFORM}/komputer.komputer.ai_komputeragents.yaml`, `${PLATFORM}/komputer.komputer.ai_komputerconnectors.yaml`]);
    assert.equal(crdSourceLine(source), `CRDs: the platform's, from ${PLATFORM}`);
  });

  test("no ../shared: the project's component, only the files its kustomization lists, in its order", () => {
    const source = resolveCrdSource({}, fakeFs(project), { root: ROOT });
    assert.equal(source.kind, 'project');
    assert.equal(source.dir, PROJECT);
    assert.deepEqual(source.files, [`${PROJECT}/komputerconnectors.yaml`, `${PROJECT}/komputeragents.yaml`]);
    assert.equal(
      crdSourceLine(source),
      "CRDs: ../shared/upstream/crds not found beside the repository; using the project's own component manifests/components/crds (set KOMPUTER_CRD_DIR to use the platform's)",
    );
  });

  test('KOMPUTER_CRD_DIR wins over both', () => {
    const source = resolveCrdSource({ KOMPUTER_CRD_DIR: '/elsewhere/crds' }, fakeFs({ ...project, ...platform, '/elsewhere/crds/c.yml': 'x' }), { root: ROOT });
    assert.equal(source.kind, 'platform');
    assert.equal(source.dir, '/elsewhere/crds');
    assert.deepEqual(source.files, ['/elsewhere/crds/c.yml']);
    assert.equal(crdSourceLine(source), "CRDs: the platform's, from /elsewhere/crds (KOMPUTER_CRD_DIR)");
  });

  test("KOMPUTER_CRD_DIR naming the project's component is the project's, kustomization not applied", () => {
    const source = resolveCrdSource({ KOMPUTER_CRD_DIR: PROJECT }, fakeFs({ ...project, ...platform }), { root: ROOT });
    assert.equal(source.kind, 'project');
    assert.ok(!source.files.some((f) => f.endsWith('kustomization.yaml')));
  });

  test('an empty KOMPUTER_CRD_DIR counts as unset', () => {
    assert.equal(resolveCrdSource({ KOMPUTER_CRD_DIR: '' }, fakeFs({ ...project, ...platform }), { root: ROOT }).kind, 'platform');
  });

  test('KOMPUTER_CRD_DIR that does not exist: a clear error, no fallback', () => {
    assert.throws(() => resolveCrdSource({ KOMPUTER_CRD_DIR: '/nowhere' }, fakeFs({ ...project, ...platform }), { root: ROOT }), /KOMPUTER_CRD_DIR=\/nowhere does not exist/);
  });

  test("use: 'project' takes the project's whatever exists beside the repository or is set", () => {
    const source = resolveCrdSource({ KOMPUTER_CRD_DIR: PLATFORM }, fakeFs({ ...project, ...platform }), { root: ROOT, use: 'project' });
    assert.equal(source.kind, 'project');
    assert.equal(source.dir, PROJECT);
    assert.deepEqual(source.files, [`${PROJECT}/komputerconnectors.yaml`, `${PROJECT}/komputeragents.yaml`]);
    assert.equal(crdSourceLine(source), "CRDs: the project's own component manifests/components/crds (asked for with crds: 'project')");
  });

  test('a platform directory without YAML files is an error, not a silent fallback', () => {
    assert.throws(() => resolveCrdSource({}, fakeFs({ ...project, [`${PLATFORM}/README.md`]: '' }), { root: ROOT }), /no CRD files/);
  });

  test('a kustomization that would change the files, or lists a missing one, is refused', () => {
    const patched = { ...project, [`${PROJECT}/kustomization.yaml`]: `${COMPONENT}patches:\n  - path: p.yaml\n` };
    assert.throws(() => resolveCrdSource({}, fakeFs(patched), { root: ROOT }), /has patches/);
    const missing = { ...project };
    delete missing[`${PROJECT}/komputeragents.yaml`];
    assert.throws(() => resolveCrdSource({}, fakeFs(missing), { root: ROOT }), /resource komputeragents\.yaml not found/);
  });
});

test("the real layout: the project's component lists exactly its two CRD files", () => {
  const source = resolveCrdSource({}, nodeCrdFs, { use: 'project' });
  assert.deepEqual(
    source.files.map((f) => f.slice(source.dir.length + 1)),
    ['komputerconnectors.yaml', 'komputeragents.yaml'],
  );
});
