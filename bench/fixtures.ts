// Benchmark inputs: a realistic agent Pod AdmissionReview (~8.6 KB, as the operator and the
// API server produce it) and cluster states of several sizes for `serve --state`.
// Deterministic: the same inputs every run, so runs compare.

export const BENCH_NAMESPACE = 'team-000';
export const BENCH_AGENT = 'researcher';
export const NAMESPACE_COUNT = 100;
export const INJECTION_LABEL = 'komputer.ai/connector-injection';

/** The connectors the benchmarked agent uses, as the state file defines them. */
export const BENCH_CONNECTORS = [
  { name: 'github', service: 'github', url: 'https://api.githubcopilot.com/mcp/', authType: 'token', secret: { name: 'github-token', key: 'token' } },
  { name: 'notion', service: 'notion', url: 'https://mcp.notion.com/mcp', authType: 'oauth', secret: { name: 'notion-oauth', key: 'oauth.json' } },
  { name: 'slack', service: 'slack', url: 'https://mcp.slack.com/mcp', authType: 'token', secret: { name: 'slack-token', key: 'xoxp' } },
] as const;

type Json = { [key: string]: unknown };

/** The env vars a correct webhook adds to the agent container for BENCH_CONNECTORS (SPEC.md). */
export function expectedInjectedEnv(): Json[] {
  const env: Json[] = [];
  const servers: Record<string, Json> = {};
  for (const c of BENCH_CONNECTORS) {
    const tokenEnv = `CONNECTOR_${c.name.toUpperCase().replace(/[-.]/g, '_')}_TOKEN`;
    env.push({ name: tokenEnv, valueFrom: { secretKeyRef: { name: c.secret.name, key: c.secret.key } } });
    servers[c.name] = { type: 'http', url: c.url, tokenEnv, authType: c.authType };
  }
  env.push({ name: 'KOMPUTER_MCP_SERVERS', value: JSON.stringify(servers) });
  return env;
}

function managedFields(): Json[] {
  const fieldsV1 = {
    'f:metadata': {
      'f:annotations': { '.': {}, 'f:komputer.ai/instructions-hash': {}, 'f:komputer.ai/model': {} },
      'f:labels': {
        '.': {},
        'f:app.kubernetes.io/managed-by': {},
        'f:app.kubernetes.io/name': {},
        'f:komputer.ai/agent-name': {},
        [`f:komputer.ai/member-${BENCH_AGENT}`]: {},
        'f:komputer.ai/squad': {},
      },
      'f:ownerReferences': { '.': {}, 'k:{"uid":"5f0c6f3e-2b7a-4d8e-9c61-0f4c2a9d7b13"}': {} },
    },
    'f:spec': {
      'f:containers': {
        'k:{"name":"agent"}': {
          '.': {},
          'f:args': {},
          'f:command': {},
          'f:env': {
            '.': {},
            'k:{"name":"AGENT_NAME"}': { '.': {}, 'f:name': {}, 'f:value': {} },
            'k:{"name":"ANTHROPIC_API_KEY"}': { '.': {}, 'f:name': {}, 'f:valueFrom': { '.': {}, 'f:secretKeyRef': {} } },
            'k:{"name":"MODEL"}': { '.': {}, 'f:name': {}, 'f:value': {} },
            'k:{"name":"WORKDIR"}': { '.': {}, 'f:name': {}, 'f:value': {} },
          },
          'f:image': {},
          'f:imagePullPolicy': {},
          'f:name': {},
          'f:ports': { '.': {}, 'k:{"containerPort":8080,"protocol":"TCP"}': { '.': {}, 'f:containerPort': {}, 'f:name': {}, 'f:protocol': {} } },
          'f:readinessProbe': { '.': {}, 'f:httpGet': { '.': {}, 'f:path': {}, 'f:port': {} }, 'f:periodSeconds': {} },
          'f:resources': { '.': {}, 'f:limits': { '.': {}, 'f:memory': {} }, 'f:requests': { '.': {}, 'f:cpu': {}, 'f:memory': {} } },
          'f:securityContext': { '.': {}, 'f:allowPrivilegeEscalation': {}, 'f:readOnlyRootFilesystem': {} },
          'f:volumeMounts': { '.': {}, 'k:{"mountPath":"/workspace"}': { '.': {}, 'f:mountPath': {}, 'f:name': {} } },
        },
        'k:{"name":"log-shipper"}': { '.': {}, 'f:env': {}, 'f:image': {}, 'f:name': {}, 'f:resources': {}, 'f:volumeMounts': {} },
      },
      'f:restartPolicy': {},
      'f:securityContext': { '.': {}, 'f:fsGroup': {}, 'f:runAsNonRoot': {} },
      'f:serviceAccountName': {},
      'f:volumes': { '.': {}, 'k:{"name":"workspace"}': { '.': {}, 'f:emptyDir': {}, 'f:name': {} }, 'k:{"name":"agent-config"}': { '.': {}, 'f:configMap': {}, 'f:name': {} } },
    },
  };
  return [{ manager: 'komputer-operator', operation: 'Update', apiVersion: 'v1', time: '2025-11-20T10:14:07Z', fieldsType: 'FieldsV1', fieldsV1 }];
}

function value(name: string, v: string): Json {
  return { name, value: v };
}

function secretRef(name: string, secret: string, key: string): Json {
  return { name, valueFrom: { secretKeyRef: { name: secret, key } } };
}

/** An agent pod as the platform's operator creates it, before injection. */
export function agentPod(): Json {
  const agentEnv: Json[] = [
    value('AGENT_NAME', BENCH_AGENT),
    value('AGENT_NAMESPACE', BENCH_NAMESPACE),
    value('MODEL', 'claude-sonnet-4-5'),
    value('WORKDIR', '/workspace'),
    value('PROMPT_FILE', '$(WORKDIR)/prompt.md'),
    value('MAX_TURNS', '200'),
    value('LOG_LEVEL', 'info'),
    value('KOMPUTER_API_URL', 'http://komputer-api.komputer-system.svc.cluster.local:8080'),
    value('KOMPUTER_EVENTS_TOPIC', 'agents.team-000.researcher'),
    value('HOME', '/workspace/home'),
    value('TZ', 'UTC'),
    secretRef('ANTHROPIC_API_KEY', 'anthropic-api-key', 'api-key'),
    secretRef('KOMPUTER_AGENT_TOKEN', 'researcher-agent-token', 'token'),
    { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
    { name: 'POD_IP', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } } },
    { name: 'MEMORY_LIMIT', valueFrom: { resourceFieldRef: { containerName: 'agent', resource: 'limits.memory', divisor: '1Mi' } } },
  ];
  const sidecarEnv: Json[] = [
    value('SHIP_TO', 'http://log-collector.observability.svc.cluster.local:4318'),
    value('SERVICE_NAME', 'komputer-agent'),
    value('BATCH_SIZE', '512'),
    { name: 'NODE_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'spec.nodeName' } } },
  ];
  const kubeApiAccess = 'kube-api-access-9xk2p';
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name: `${BENCH_AGENT}-pod`,
      namespace: BENCH_NAMESPACE,
      uid: '0b7c2a51-8e44-4c1d-a6f2-3d9e1b7c5a20',
      creationTimestamp: '2025-11-20T10:14:07Z',
      labels: {
        'app.kubernetes.io/managed-by': 'komputer-operator',
        'app.kubernetes.io/name': 'komputer-agent',
        'komputer.ai/agent-name': BENCH_AGENT,
        'komputer.ai/squad': 'false',
        [`komputer.ai/member-${BENCH_AGENT}`]: 'true',
      },
      annotations: {
        'komputer.ai/instructions-hash': 'sha256:6b1f0e2d9c8a7b4e3f5a1c0d2e9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a',
        'komputer.ai/model': 'claude-sonnet-4-5',
        'komputer.ai/created-by': 'system:serviceaccount:komputer-system:komputer-api',
        'komputer.ai/task-id': 'task-2025-11-20-0042-7f3c9a1e',
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '8080',
        'cluster-autoscaler.kubernetes.io/safe-to-evict': 'false',
        'kubectl.kubernetes.io/default-container': 'agent',
      },
      ownerReferences: [
        { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', name: BENCH_AGENT, uid: '5f0c6f3e-2b7a-4d8e-9c61-0f4c2a9d7b13', controller: true, blockOwnerDeletion: true },
      ],
      managedFields: managedFields(),
    },
    spec: {
      volumes: [
        { name: 'workspace', emptyDir: { sizeLimit: '10Gi' } },
        { name: 'agent-config', configMap: { name: `${BENCH_AGENT}-config`, defaultMode: 420 } },
        {
          name: kubeApiAccess,
          projected: {
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
              { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
            ],
            defaultMode: 420,
          },
        },
      ],
      containers: [
        {
          name: 'agent',
          image: 'ghcr.io/komputer-ai/agent:0.9.4',
          command: ['/usr/local/bin/komputer-agent'],
          args: ['--config', '/etc/komputer/agent.yaml', '--serve', ':8080'],
          ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
          env: agentEnv,
          resources: { limits: { memory: '4Gi' }, requests: { cpu: '500m', memory: '1Gi' } },
          volumeMounts: [
            { name: 'workspace', mountPath: '/workspace' },
            { name: 'agent-config', readOnly: true, mountPath: '/etc/komputer' },
            { name: kubeApiAccess, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' },
          ],
          readinessProbe: { httpGet: { path: '/healthz', port: 8080, scheme: 'HTTP' }, timeoutSeconds: 1, periodSeconds: 5, successThreshold: 1, failureThreshold: 3 },
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
        },
        {
          name: 'log-shipper',
          image: 'ghcr.io/komputer-ai/log-shipper:1.3.0',
          env: sidecarEnv,
          resources: { limits: { memory: '128Mi' }, requests: { cpu: '20m', memory: '64Mi' } },
          volumeMounts: [
            { name: 'workspace', readOnly: true, mountPath: '/workspace' },
            { name: kubeApiAccess, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' },
          ],
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
        },
      ],
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: `${BENCH_AGENT}-agent`,
      serviceAccount: `${BENCH_AGENT}-agent`,
      securityContext: { runAsNonRoot: true, fsGroup: 1000 },
      schedulerName: 'default-scheduler',
      imagePullSecrets: [{ name: 'ghcr-pull' }],
      nodeSelector: { 'kubernetes.io/os': 'linux', 'komputer.ai/pool': 'agents' },
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'node.kubernetes.io/instance-type', operator: 'In', values: ['m7i.xlarge', 'm7i.2xlarge', 'c7i.2xlarge'] }] }],
          },
        },
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 50, podAffinityTerm: { labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'komputer-agent' } }, topologyKey: 'kubernetes.io/hostname' } },
          ],
        },
      },
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'komputer-agent' } } },
      ],
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
      priorityClassName: 'komputer-agents',
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: { phase: 'Pending', qosClass: 'Burstable' },
  };
}

export const BENCH_UID = '3c1d7e0a-92f4-4b6b-8f15-7a2e9c4d1b60';

/** The AdmissionReview the API server sends for the pod's CREATE (as test/helpers/review.ts builds them). */
export function podReview(): Json {
  const pod = agentPod();
  return {
    kind: 'AdmissionReview',
    apiVersion: 'admission.k8s.io/v1',
    request: {
      uid: BENCH_UID,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: (pod.metadata as Json).name,
      namespace: BENCH_NAMESPACE,
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:komputer-system:komputer-operator',
        uid: 'c2a7d9e4-1f3b-4a6c-8d2e-9b0f1a3c5e7d',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:komputer-system', 'system:authenticated'],
        extra: { 'authentication.kubernetes.io/pod-name': ['komputer-operator-6d8f9c7b5-x2k4q'], 'authentication.kubernetes.io/pod-uid': ['7e3a1c9d-5b2f-4d8e-a6c1-0f9e8d7c6b5a'] },
      },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  };
}

const EXTRA_SERVICES = ['linear', 'gmail', 'calendar', 'jira', 'sentry', 'figma', 'stripe', 'datadog', 'pagerduty', 'zendesk'];

function connectorObject(namespace: string, name: string, service: string, url: string, authType: string, secret: { name: string; key: string }): Json {
  return {
    apiVersion: 'komputer.komputer.ai/v1alpha1',
    kind: 'KomputerConnector',
    metadata: { name, namespace },
    spec: { type: 'remote', service, displayName: `${service} (${namespace})`, url, authType, authSecretKeyRef: secret },
    status: { attachedAgents: 0, agentNames: [] },
  };
}

/**
 * A cluster: `namespaces` enabled namespaces, `connectors` connectors spread evenly over
 * them (each namespace has github/notion/slack, then others), `agents` agents spread over
 * the namespaces using 3 connectors each (every 10th a sub-agent with an office manager).
 * The benchmarked agent is the first agent, in BENCH_NAMESPACE, using github/notion/slack.
 * Returned as a JSON `List` (the state file format accepts it).
 */
export function clusterState(agents: number, connectors: number, namespaces = NAMESPACE_COUNT): string {
  const items: Json[] = [];
  for (let n = 0; n < namespaces; n++) {
    items.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: nsName(n), labels: { [INJECTION_LABEL]: 'enabled', 'kubernetes.io/metadata.name': nsName(n) } } });
  }
  const perNamespace = Math.max(BENCH_CONNECTORS.length, Math.floor(connectors / namespaces));
  const names: string[][] = [];
  for (let n = 0; n < namespaces; n++) {
    const ns = nsName(n);
    const here: string[] = [];
    for (const c of BENCH_CONNECTORS) {
      items.push(connectorObject(ns, c.name, c.service, c.url, c.authType, c.secret));
      here.push(c.name);
    }
    for (let i = BENCH_CONNECTORS.length; i < perNamespace; i++) {
      const service = EXTRA_SERVICES[i % EXTRA_SERVICES.length]!;
      const name = `${service}-${String(i).padStart(3, '0')}`;
      items.push(connectorObject(ns, name, service, `https://mcp.${service}.example.com/mcp/${i}`, 'token', { name: `${name}-token`, key: 'token' }));
      here.push(name);
    }
    names.push(here);
  }
  for (let i = 0; i < agents; i++) {
    const n = i % namespaces;
    const ns = nsName(n);
    const name = i === 0 ? BENCH_AGENT : `agent-${String(i).padStart(6, '0')}`;
    const here = names[n]!;
    const connectorsUsed = i === 0 ? BENCH_CONNECTORS.map((c) => c.name) : [0, 1, 2].map((k) => here[(i * 7 + k * 13) % here.length]!);
    const spec: Json = { model: 'claude-sonnet-4-5', instructions: `You are agent ${name}. Work on the tickets assigned to you.`, connectors: [...new Set(connectorsUsed)] };
    if (i !== 0 && i % 10 === 0 && i >= 2 * namespaces) spec.officeManager = `agent-${String(i - namespaces).padStart(6, '0')}`;
    items.push({ apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', metadata: { name, namespace: ns }, spec });
  }
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
}

function nsName(n: number): string {
  return `team-${String(n).padStart(3, '0')}`;
}

/**
 * agentPod() as a create body in `namespace`, with its name as a hole (`before + name + after`):
 * without what a create must not carry. `extraSpec` adds fields (e.g. schedulingGates, so the
 * stored pods never run on a node).
 */
export function podTemplate(namespace: string, extraSpec: Json = {}): { before: string; after: string } {
  const pod = agentPod() as Json & { metadata: Json; spec: Json };
  const md = pod.metadata;
  delete md.uid;
  delete md.creationTimestamp;
  delete md.managedFields;
  md.namespace = namespace;
  md.name = '\u0000NAME\u0000';
  // The Priority admission plugin computes these from the PriorityClass.
  delete pod.spec.priority;
  delete pod.spec.preemptionPolicy;
  delete pod.status;
  Object.assign(pod.spec, extraSpec);
  const text = JSON.stringify(pod);
  const at = text.indexOf('\\u0000NAME\\u0000');
  if (at < 0) throw new Error('pod template: no name hole');
  return { before: text.slice(0, at), after: text.slice(at + '\\u0000NAME\\u0000'.length) };
}
