// Narrow, decoded views of the cluster objects the decisions need. Untrusted JSON
// (AdmissionReview bodies, state files, watch events) is decoded here with explicit
// checks, so nothing downstream touches `unknown` or full API objects.

import { ANNOTATION_SHARED_WITH, LABEL_SQUAD } from '../config/names.ts';

export interface SecretKeyRef {
  readonly name: string;
  readonly key: string;
}

export interface Connector {
  readonly namespace: string;
  readonly name: string;
  readonly service: string;
  readonly url: string;
  /** As written on the object; undefined means the platform default (`token`). */
  readonly authType: string | undefined;
  /** The header that carries the token for `authType: header`; copied into the config whenever set. */
  readonly headerName?: string | undefined;
  readonly authSecretKeyRef: SecretKeyRef | undefined;
  /**
   * `spec.disabled: true`: never injected into a new pod. Only a JSON `true` counts: the
   * platform's published CRD does not list the field (an API server with it prunes it),
   * and anything else is what the platform's Go types would not read as disabled.
   */
  readonly disabled?: boolean;
  /** Namespaces this connector is shared with (annotation), `*` meaning all. */
  readonly sharedWith: readonly string[];
  /** The stored status, as observed (the attachment controller compares against it). */
  readonly status?: { readonly attachedAgents: number; readonly agentNames: readonly string[] } | undefined;
  readonly resourceVersion?: string | undefined;
}

export interface Agent {
  readonly namespace: string;
  readonly name: string;
  /** `spec.connectors` as written: `name` or `namespace/name`. */
  readonly connectors: readonly string[];
  readonly officeManager: string | undefined;
  /** The squad this agent belongs to (its `komputer.ai/squad` label), if any. */
  readonly squad?: string | undefined;
  /** metadata.uid (watch caches; absent in a state file or a CREATE request): Events on the agent name it. */
  readonly uid?: string | undefined;
  /** `status.taskStatus` as the platform's API worker writes it (absent: none reported yet). */
  readonly taskStatus?: string | undefined;
}

export interface NamespaceInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Absent where only labels were known (a state file written before annotations mattered). */
  readonly annotations?: Readonly<Record<string, string>>;
}

export type JsonObject = { [key: string]: unknown };

/** How namespaced objects are keyed everywhere: `namespace/name`. */
export function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** The inverse of objectKey; a key without a slash is a cluster-scoped name. */
export function splitKey(key: string): [namespace: string, name: string] {
  const i = key.indexOf('/');
  return i < 0 ? ['', key] : [key.slice(0, i), key.slice(i + 1)];
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A decoding failure: the message names the field so a user can fix their input. */
export class DecodeError extends Error {
  override name = 'DecodeError';
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function metadataOf(raw: JsonObject, what: string, allowGenerateName = false): { name: string; namespace: string | undefined; annotations: JsonObject; labels: JsonObject } {
  const md = raw.metadata;
  if (!isObject(md)) throw new DecodeError(`${what}: metadata is missing or not an object`);
  // At CREATE an object may have only generateName; the name is not needed to judge it.
  const name = str(md.name) || (allowGenerateName ? str(md.generateName) ?? '' : undefined);
  if (name === undefined || (!name && !allowGenerateName)) throw new DecodeError(`${what}: metadata.name is missing`);
  return {
    name,
    namespace: str(md.namespace),
    annotations: isObject(md.annotations) ? md.annotations : {},
    labels: isObject(md.labels) ? md.labels : {},
  };
}

function stringMap(obj: JsonObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj)) if (typeof v === 'string') out[k] = v;
  return out;
}

export function parseSharedWith(value: unknown): string[] {
  if (typeof value !== 'string') return [];
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * Decodes `{name, key}` leniently: a stored object with an empty name still decodes, so one
 * bad connector cannot break a cache; injection and policy check `isUsableSecretRef`.
 */
export function decodeSecretKeyRef(value: unknown): SecretKeyRef | undefined {
  if (!isObject(value)) return undefined;
  return { name: str(value.name) ?? '', key: str(value.key) ?? '' };
}

export function isUsableSecretRef(ref: SecretKeyRef): boolean {
  return ref.name.length > 0 && ref.key.length > 0;
}

/** Decodes a KomputerConnector; `defaultNamespace` fills a missing metadata.namespace (CREATE requests). */
export function decodeConnector(raw: unknown, defaultNamespace?: string, allowGenerateName = false): Connector {
  if (!isObject(raw)) throw new DecodeError('KomputerConnector must be an object');
  const md = metadataOf(raw, 'KomputerConnector', allowGenerateName);
  const namespace = md.namespace ?? defaultNamespace;
  if (!namespace) throw new DecodeError(`KomputerConnector ${md.name}: metadata.namespace is missing`);
  const spec = isObject(raw.spec) ? raw.spec : {};
  return {
    namespace,
    name: md.name,
    service: str(spec.service) ?? '',
    url: str(spec.url) ?? '',
    authType: str(spec.authType),
    headerName: str(spec.headerName),
    authSecretKeyRef: decodeSecretKeyRef(spec.authSecretKeyRef),
    disabled: spec.disabled === true,
    sharedWith: parseSharedWith(md.annotations[ANNOTATION_SHARED_WITH]),
    status: decodeAttachmentStatus(raw.status),
    resourceVersion: isObject(raw.metadata) ? str(raw.metadata.resourceVersion) : undefined,
  };
}

function decodeAttachmentStatus(status: unknown): Connector['status'] {
  if (!isObject(status)) return undefined;
  const n = status.attachedAgents;
  const names = Array.isArray(status.agentNames) ? status.agentNames.filter((x): x is string => typeof x === 'string') : [];
  return { attachedAgents: typeof n === 'number' && Number.isFinite(n) ? n : 0, agentNames: names };
}

export function decodeAgent(raw: unknown, defaultNamespace?: string, allowGenerateName = false): Agent {
  if (!isObject(raw)) throw new DecodeError('KomputerAgent must be an object');
  const md = metadataOf(raw, 'KomputerAgent', allowGenerateName);
  const namespace = md.namespace ?? defaultNamespace;
  if (!namespace) throw new DecodeError(`KomputerAgent ${md.name}: metadata.namespace is missing`);
  const spec = isObject(raw.spec) ? raw.spec : {};
  const connectors = Array.isArray(spec.connectors) ? spec.connectors.filter((c): c is string => typeof c === 'string') : [];
  const manager = str(spec.officeManager);
  const squad = md.labels[LABEL_SQUAD];
  const uid = isObject(raw.metadata) ? str(raw.metadata.uid) : undefined;
  const taskStatus = isObject(raw.status) ? str(raw.status.taskStatus) : undefined;
  return { namespace, name: md.name, connectors, officeManager: manager ? manager : undefined, ...(typeof squad === 'string' && squad !== '' ? { squad } : {}), ...(uid ? { uid } : {}), ...(taskStatus ? { taskStatus } : {}) };
}

export function decodeNamespace(raw: unknown): NamespaceInfo {
  if (!isObject(raw)) throw new DecodeError('Namespace must be an object');
  const md = metadataOf(raw, 'Namespace');
  const annotations = stringMap(md.annotations);
  return { name: md.name, labels: stringMap(md.labels), ...(Object.keys(annotations).length > 0 ? { annotations } : {}) };
}

/** `status.attachedAgents` as stored (0 when absent or malformed). */
export function attachedAgentsOf(raw: unknown): number {
  if (!isObject(raw) || !isObject(raw.status)) return 0;
  const n = raw.status.attachedAgents;
  return typeof n === 'number' && Number.isFinite(n) ? n : 0;
}
