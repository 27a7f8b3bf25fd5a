// Loads cluster objects from a file (YAML or JSON; several documents, or a `List`) into a
// ClusterStore, for the CLI and `serve --state`. Errors are one line, naming the document.

import { readFileSync } from 'node:fs';
import { Composer, Parser } from 'yaml';
import { AGENT_KIND, CONNECTOR_KIND, POLICY_CONFIGMAP_NAME } from '../config/names.ts';
import { POLICY_CONFIGMAP_KEY } from '../policy/incompatible.ts';
import { decodeAgent, decodeConnector, decodeNamespace, DecodeError, isObject, type JsonObject } from '../model/objects.ts';
import { PolicyHolder } from '../policy/holder.ts';
import { ClusterStore } from './store.ts';

export class StateError extends Error {
  override name = 'StateError';
}

/** Objects of a kind the store does not hold (ConfigMaps, Secrets...), for other consumers. */
export interface LoadedState {
  readonly store: ClusterStore;
  readonly others: JsonObject[];
}

/** Parses YAML or JSON text into the top-level objects it holds, flattening `List`s. */
export function parseObjects(text: string, source: string): JsonObject[] {
  const out: JsonObject[] = [];
  forEachObject(text, source, (obj) => out.push(obj));
  return out;
}

/**
 * Calls `visit` for every top-level object, one document at a time, so a state file with
 * 100,000 objects never holds more than one parsed document beside the decoded records.
 * JSON (a single object or List) goes through JSON.parse, which is far cheaper than YAML.
 */
export function forEachObject(text: string, source: string, visit: (obj: JsonObject) => void): void {
  const emit = (value: unknown, i: number): void => {
    if (value === null || value === undefined) return;
    if (!isObject(value)) throw new StateError(`${source}: document ${i + 1} is not an object`);
    if (Array.isArray(value.items) && typeof value.kind === 'string' && value.kind.endsWith('List')) {
      value.items.forEach((item: unknown, j: number) => {
        if (!isObject(item)) throw new StateError(`${source}: document ${i + 1} item ${j + 1} is not an object`);
        visit(item);
      });
    } else {
      visit(value);
    }
  };
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined; // not one JSON document (e.g. JSON documents separated by ---): YAML below
    }
    if (value !== undefined) {
      emit(value, 0);
      return;
    }
  }
  let i = 0;
  for (const doc of new Composer({ uniqueKeys: false }).compose(new Parser().parse(text), true)) {
    const err = doc.errors[0];
    if (err) throw new StateError(`${source}: document ${i + 1} is not valid YAML/JSON: ${err.message.split('\n')[0]}`);
    emit(doc.toJS({ maxAliasCount: 100 }), i);
    i++;
  }
}

export function loadState(text: string, source: string): LoadedState {
  const store = new ClusterStore();
  const others: JsonObject[] = [];
  forEachObject(text, source, (obj) => {
    try {
      switch (obj.kind) {
        case 'Namespace':
          store.putNamespace(decodeNamespace(obj));
          break;
        case CONNECTOR_KIND:
          store.putConnector(decodeConnector(obj, 'default'));
          break;
        case AGENT_KIND:
          store.putAgent(decodeAgent(obj, 'default'));
          break;
        default:
          if (typeof obj.kind !== 'string') throw new StateError(`${source}: an object has no kind`);
          others.push(obj);
      }
    } catch (e) {
      if (e instanceof DecodeError) throw new StateError(`${source}: ${e.message}`);
      throw e;
    }
  });
  const state = { store, others };
  // The state's policy ConfigMap is in force for its view, as the watch makes it for the server's.
  const holder = new PolicyHolder();
  holder.apply(policyTextFromState(state));
  const policy = holder.current;
  store.policySource = () => policy;
  return state;
}

export function loadStateFile(path: string): LoadedState {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new StateError(`cannot read state file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return loadState(text, path);
}

/** The admin's policy text from a ConfigMap object, if it is the policy ConfigMap. */
export function policyTextOf(obj: JsonObject): string | undefined {
  if (obj.kind !== 'ConfigMap' || !isObject(obj.metadata) || obj.metadata.name !== POLICY_CONFIGMAP_NAME) return undefined;
  const data = isObject(obj.data) ? obj.data : {};
  const text = data[POLICY_CONFIGMAP_KEY];
  return typeof text === 'string' ? text : undefined;
}

/** The policy ConfigMap's text among loaded objects (the state file's equivalent of the watch). */
export function policyTextFromState(state: LoadedState): string | undefined {
  for (const obj of state.others) {
    const text = policyTextOf(obj);
    if (text !== undefined) return text;
  }
  return undefined;
}
