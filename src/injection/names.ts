// How connector names become env var names and MCP config, exactly as the agent runtime reads them.

import type { Connector, SecretKeyRef } from '../model/objects.ts';
import { goJsonObject, goJsonString } from './gojson.ts';

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

/** One server entry of `KOMPUTER_MCP_SERVERS`, keyed by `name`; empty fields are left out. */
export interface ServerEntry {
  readonly name: string;
  readonly url: string;
  readonly tokenEnv?: string | undefined;
  readonly authType?: string | undefined;
  readonly headerName?: string | undefined;
}

/**
 * The `KOMPUTER_MCP_SERVERS` value exactly as the platform's operator writes it (SPEC.md,
 * "The exact bytes"): Go's json.Marshal of a map of structs, so keys sorted bytewise, each
 * entry `{type, url, tokenEnv?, authType?, headerName?}` in that field order with empty
 * fields omitted (Go's omitempty), and Go's HTML-safe escaping.
 */
export function serversJson(entries: readonly ServerEntry[]): string {
  const members: [string, string][] = [];
  for (const e of entries) {
    let entry = `{"type":"http","url":${goJsonString(e.url)}`;
    if (e.tokenEnv) entry += `,"tokenEnv":${goJsonString(e.tokenEnv)}`;
    if (e.authType) entry += `,"authType":${goJsonString(e.authType)}`;
    if (e.headerName) entry += `,"headerName":${goJsonString(e.headerName)}`;
    members.push([e.name, entry + '}']);
  }
  return goJsonObject(members);
}

/** The server entry an attachment becomes: `headerName` whenever the connector sets it, as the operator does. */
export function serverEntry(a: Attachment): ServerEntry {
  const c = a.connector;
  return { name: c.name, url: c.url, tokenEnv: a.tokenRef ? tokenEnvName(c.name) : undefined, authType: c.authType, headerName: c.headerName };
}

export function mcpServersJson(attachments: readonly Attachment[]): string {
  return serversJson(attachments.map(serverEntry));
}
