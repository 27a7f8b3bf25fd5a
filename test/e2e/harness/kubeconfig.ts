// Minimal token kubeconfigs (admin and the service's own service account).

import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';

export interface KubeconfigOptions {
  readonly server: string;
  /** PEM of the CA that signed the API server's serving certificate. */
  readonly caCert: string;
  readonly token: string;
  readonly user: string;
  /** Default namespace of the context. */
  readonly namespace?: string;
}

export function renderKubeconfig(options: KubeconfigOptions): string {
  const context: Record<string, string> = { cluster: 'komputer-e2e', user: options.user };
  if (options.namespace !== undefined) context['namespace'] = options.namespace;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'komputer-e2e',
        cluster: {
          server: options.server,
          'certificate-authority-data': Buffer.from(options.caCert).toString('base64'),
        },
      },
    ],
    users: [{ name: options.user, user: { token: options.token } }],
    contexts: [{ name: 'komputer-e2e', context }],
    'current-context': 'komputer-e2e',
  });
}

export async function writeKubeconfig(path: string, options: KubeconfigOptions): Promise<string> {
  await writeFile(path, renderKubeconfig(options), { mode: 0o600 });
  return path;
}
