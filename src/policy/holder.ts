// The policy in force: built-ins merged with the admin's ConfigMap, keeping the last good
// list when a new config does not parse. Pure state, no I/O: the watch feeds it text.

import { BUILTIN_POLICY, mergePolicy, parsePolicyConfig, type PolicyList } from './incompatible.ts';

export type PolicyStatus = { readonly valid: true; readonly source: 'builtin' | 'configmap' } | { readonly valid: false; readonly reason: string };

export class PolicyHolder {
  private list: PolicyList = BUILTIN_POLICY;
  private state: PolicyStatus = { valid: true, source: 'builtin' };

  get current(): PolicyList {
    return this.list;
  }

  get status(): PolicyStatus {
    return this.state;
  }

  /** Applies the ConfigMap's text; undefined (no ConfigMap, or no key) means built-ins only. */
  apply(text: string | undefined): PolicyStatus {
    if (text === undefined) {
      this.list = BUILTIN_POLICY;
      this.state = { valid: true, source: 'builtin' };
      return this.state;
    }
    const parsed = parsePolicyConfig(text);
    if (!parsed.ok) {
      this.state = { valid: false, reason: parsed.reason };
      return this.state; // the last good list stays in force
    }
    this.list = mergePolicy(BUILTIN_POLICY, parsed.config);
    this.state = { valid: true, source: 'configmap' };
    return this.state;
  }
}
