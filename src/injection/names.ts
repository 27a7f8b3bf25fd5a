// How connector names become env var names and MCP config, exactly as the agent runtime reads them.

import type { Connector, SecretKeyRef } from '../model/objects.ts';

/** `my-git.hub` -> `CONNECTOR_MY_GIT_HUB_TOKEN` (SPEC.md). */
export function tokenEnvName(connectorName: string): string {
  return `CONNECTOR_${connectorName.toUpperCase().replace(/[-.]/g, '_')}_TOKEN`;
}

/** The Secret the platform mirrors a cross-namespace connector's token into. */
export function mirroredSecretName(secretName: string, sourceNamespace: string): string {
  return `${secretName}-from-${sourceNamespace}`;
}

/** One attached connector as the pod will see it. */
export interface Attachment {
  /** How it was referenced, qualified when it lives in another namespace. */
  readonly ref: string;
  readonly connector: Connector;
  /** The Secret key to reference from the pod's own namespace, if the connector has a token. */
  readonly tokenRef: SecretKeyRef | undefined;
}

/**
 * The `KOMPUTER_MCP_SERVERS` value: a JSON object keyed by connector name, in attachment
 * order, each `{type, url, tokenEnv?, authType?}` in that key order.
 */
export function mcpServersJson(attachments: readonly Attachment[]): string {
  const servers: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const a of attachments) {
    const entry: Record<string, string> = { type: 'http', url: a.connector.url };
    if (a.tokenRef) entry.tokenEnv = tokenEnvName(a.connector.name);
    if (a.connector.authType !== undefined) entry.authType = a.connector.authType;
    servers[a.connector.name] = entry;
  }
  return JSON.stringify(servers);
}
