// The images the node suites run, for harness code: build them (cached per input hash; a cold
// first build prints progress on stderr) and the names pods use. The archives are OCI archives
// whose org.opencontainers.image.ref.name is the full name, so
//   ctr -n k8s.io [--address <sock>] images import <archive>
// stores them under exactly these names (pods: imagePullPolicy Never or IfNotPresent).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const IMAGES = {
  /** The project's Dockerfile on the local base (`npm run image`). */
  webhook: 'localhost/komputer-connector-webhook:dev',
  /** test/image/agent-runtime: reads KOMPUTER_MCP_SERVERS and calls each server with its token. */
  agent: 'localhost/komputer-test-agent:dev',
  /** test/image/fake-mcp: records header names and SHA-256 digests per request (GET /_records), port 8080. */
  fakeMcp: 'localhost/komputer-fake-mcp:dev',
} as const;

export interface BuiltImage { readonly name: string; readonly archive: string }

const buildScript = fileURLToPath(new URL('./build.sh', import.meta.url));

/** Builds (or finds cached) `app` (the webhook), `fixtures` (agent + fake MCP) or `all`. */
export function buildImages(which: 'app' | 'fixtures' | 'all' = 'all', env: NodeJS.ProcessEnv = process.env): Promise<BuiltImage[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [buildScript, which], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) { reject(new Error(`test/image/build.sh ${which} failed (exit ${code}); its output is above`)); return; }
      resolve(out.trim().split('\n').filter(Boolean).map((line) => {
        const [name, archive] = line.split(' ');
        return { name: name!, archive: archive! };
      }));
    });
  });
}

/** Arguments for `ctr` that import an archive into the namespace the kubelet's CRI uses. */
export function ctrImportArgs(archive: string, address?: string): string[] {
  return [...(address ? ['--address', address] : []), '-n', 'k8s.io', 'images', 'import', archive];
}
