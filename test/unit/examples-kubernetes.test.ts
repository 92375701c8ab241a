// examples/kubernetes: the manifests parse, agree with each other, with the image (Dockerfile)
// and with the config they carry, and that config loads with the environment the pod gets.
// Nothing here talks to a cluster: these are the mistakes that would only show once applied.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.js';

const DIR = new URL('../../examples/kubernetes/', import.meta.url);
const read = (file: string): string => readFileSync(new URL(file, DIR), 'utf8');
const MANIFESTS = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');

/** The parts of the Kubernetes objects the checks read. */
interface Port {
  name?: string;
  containerPort?: number;
}
interface Probe {
  httpGet?: { path?: string; port?: string | number };
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath?: string } };
}
interface Container {
  name: string;
  ports?: Port[];
  env?: EnvVar[];
  envFrom?: { secretRef?: { name?: string } }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  securityContext?: { readOnlyRootFilesystem?: boolean; runAsNonRoot?: boolean };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
}
interface ConfigMap extends Manifest {
  data?: Record<string, string>;
}
interface Secret extends Manifest {
  stringData?: Record<string, string>;
}
interface Deployment extends Manifest {
  spec: {
    replicas?: number;
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        terminationGracePeriodSeconds?: number;
        securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
        containers: Container[];
        volumes?: { name: string; configMap?: { name: string }; emptyDir?: object }[];
      };
    };
  };
}
interface Service extends Manifest {
  spec: { selector?: Record<string, string>; ports?: { port: number; targetPort?: string | number }[] };
}
interface PodDisruptionBudget extends Manifest {
  spec: { selector?: { matchLabels?: Record<string, string> }; maxUnavailable?: number; minAvailable?: number };
}

/** Every file's documents, each checked to parse. */
const objects: Manifest[] = MANIFESTS.flatMap((file) =>
  parseAllDocuments(read(file)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message}`);
    return doc.toJS() as Manifest;
  }),
);

/** The one object of `kind`, read as `T`. */
function one<T extends Manifest>(kind: string): T {
  const found = objects.filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0] as T;
}

const deployment = one<Deployment>('Deployment');
const pod = deployment.spec.template.spec;
const podLabels = deployment.spec.template.metadata.labels;
const container = pod.containers[0] as Container;
const configMap = one<ConfigMap>('ConfigMap');
const secret = one<Secret>('Secret');

/** The container port a probe or a Service names, by name or by number. */
function containerPort(port: string | number | undefined): number | undefined {
  if (typeof port === 'number') return container.ports?.some((p) => p.containerPort === port) ? port : undefined;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** The environment the pod gets: the Secret's keys, and the Deployment's own variables (a pod name for the downward API's). */
function podEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...secret.stringData };
  for (const v of container.env ?? []) {
    env[v.name] = v.value ?? (v.valueFrom?.fieldRef?.fieldPath === 'metadata.name' ? 'pulumiscale-7d4b9c8f6d-x2k9q' : undefined);
  }
  return env;
}

/** Where the image's command reads its config (the Dockerfile's CMD). */
function imageConfigPath(): string {
  const cmd = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8')
    .split('\n')
    .find((line) => line.startsWith('CMD'));
  const args = JSON.parse(cmd?.slice('CMD'.length).trim() ?? '[]') as string[];
  return args[args.indexOf('--config') + 1] ?? '';
}

const configFile = imageConfigPath();
const configText = configMap.data?.[path.basename(configFile)];
const config = parseConfig(configText ?? '', { file: 'configmap.yaml', baseDir: path.dirname(configFile), env: podEnvironment() });

describe('examples/kubernetes', () => {
  it.each(MANIFESTS)('%s is one Kubernetes object with its apiVersion, kind and name', (file) => {
    const docs = parseAllDocuments(read(file));
    expect(docs).toHaveLength(1);
    const o = docs[0]?.toJS() as Partial<Manifest>;
    expect([typeof o.apiVersion, typeof o.kind, typeof o.metadata?.name]).toEqual(['string', 'string', 'string']);
  });

  it('kustomization.yaml lists every manifest of the folder, and nothing else', () => {
    const k = parseAllDocuments(read('kustomization.yaml'))[0]?.toJS() as { resources?: string[] };
    expect([...(k.resources ?? [])].sort()).toEqual([...MANIFESTS].sort());
  });

  it('the ConfigMap holds a config that loads with the environment the pod gets', () => {
    expect(configText).toBeTypeOf('string');
    expect(config.store).toMatchObject({ driver: 'postgres', url: secret.stringData?.DATABASE_URL, replicaId: 'pulumiscale-7d4b9c8f6d-x2k9q' });
  });

  it('the ConfigMap is mounted where the image reads its config', () => {
    const volume = pod.volumes?.find((v) => v.configMap?.name === configMap.metadata.name);
    const mount = container.volumeMounts?.find((m) => m.name === volume?.name);
    expect(mount?.mountPath).toBe(path.dirname(configFile));
  });

  it('the container takes its environment from the Secret', () => {
    expect(container.envFrom?.map((e) => e.secretRef?.name)).toContain(secret.metadata.name);
  });

  it('runs 3 replicas', () => {
    expect(deployment.spec.replicas).toBe(3);
  });

  it('the grace period outlasts the drain timeout plus the cancel grace', () => {
    const graceMs = (pod.terminationGracePeriodSeconds ?? 30) * 1000;
    expect(graceMs).toBeGreaterThan(config.engine.drainTimeout + config.engine.cancelGrace);
  });

  it.each([
    ['liveness', '/healthz', container.livenessProbe],
    ['readiness', '/readyz', container.readinessProbe],
  ])('the %s probe asks %s on the port of server.port', (_kind, route, probe) => {
    expect(probe?.httpGet?.path).toBe(route);
    expect(containerPort(probe?.httpGet?.port)).toBe(config.server.port);
  });

  it('the Service selects the pods and sends to the port of server.port', () => {
    const service = one<Service>('Service');
    expect(podLabels).toMatchObject(service.spec.selector ?? { missing: 'selector' });
    const targets = (service.spec.ports ?? []).map((p) => containerPort(p.targetPort ?? p.port));
    expect(targets).toEqual([config.server.port]);
  });

  it('the PodDisruptionBudget selects the pods and lets exactly one go at a time', () => {
    const pdb = one<PodDisruptionBudget>('PodDisruptionBudget');
    expect(podLabels).toMatchObject(pdb.spec.selector?.matchLabels ?? { missing: 'selector' });
    const replicas = deployment.spec.replicas ?? 1;
    const allowed = pdb.spec.maxUnavailable ?? replicas - (pdb.spec.minAvailable ?? replicas);
    expect(allowed).toBe(1);
  });

  it('runs as a non-root user with a read-only root, /tmp and PULUMI_HOME on writable volumes', () => {
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    expect(pod.securityContext?.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext?.readOnlyRootFilesystem).toBe(true);
    const emptyDirs = new Set((pod.volumes ?? []).filter((v) => v.emptyDir !== undefined).map((v) => v.name));
    const writable = (container.volumeMounts ?? []).filter((m) => emptyDirs.has(m.name)).map((m) => m.mountPath);
    const pulumiHome = container.env?.find((v) => v.name === 'PULUMI_HOME')?.value;
    expect(writable.sort()).toEqual(['/tmp', pulumiHome].sort());
  });
});
