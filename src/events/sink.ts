// The recorder's API calls through @kubernetes/client-node's EventsV1Api: create, and the
// series patch (strategic merge, as client-go sends it). The recorder's abort signal reaches
// the HTTP request, so a timed-out write is cancelled, not left running.

import { EventsV1Api, PatchStrategy, setHeaderMiddleware, type EventsV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { EventSink } from './recorder.ts';

type Options = NonNullable<Parameters<EventsV1Api['createNamespacedEvent']>[1]>;

/** Per-call options: the request's Content-Type, and the recorder's abort signal on the request. */
function callOptions(contentType: string, signal: AbortSignal): Options {
  const header = setHeaderMiddleware('Content-Type', contentType);
  return {
    middleware: [
      {
        pre: (context) => {
          context.setSignal(signal);
          return header.pre(context);
        },
        post: (context) => header.post(context),
      },
    ],
    middlewareMergeStrategy: 'append',
  } as Options;
}

export function apiEventSink(kc: KubeConfig): EventSink & { writes: number } {
  const api = kc.makeApiClient(EventsV1Api);
  const sink = {
    writes: 0,
    async create(body, signal) {
      sink.writes++;
      // Times are MicroTime strings already: the client passes them through as they are.
      await api.createNamespacedEvent({ namespace: body.metadata.namespace, body: body as unknown as EventsV1Event }, callOptions('application/json', signal));
    },
    async patch(namespace, name, patch, signal) {
      sink.writes++;
      try {
        await api.patchNamespacedEvent({ namespace, name, body: patch }, callOptions(PatchStrategy.StrategicMergePatch, signal));
        return 'patched';
      } catch (e) {
        if ((e as { code?: unknown }).code === 404) return 'gone';
        throw e;
      }
    },
  } satisfies EventSink & { writes: number };
  return sink;
}
