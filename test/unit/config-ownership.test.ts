/**
 * One owner per stack key, compared by what Pulumi compares (backend, project, stack) rather
 * than by how a config spells a folder; and the stack key the engine serialises on.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, targetsOf } from '../../src/config/load.js';

/** A folder holding two copies of project `web` (a, b) and a project `api` (c). */
function projects(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'ps-owners-'));
  for (const [dir, name] of [['a', 'web'], ['b', 'web'], ['c', 'api']]) {
    mkdirSync(path.join(root, dir ?? ''));
    writeFileSync(path.join(root, dir ?? '', 'Pulumi.yaml'), `name: ${name}\nruntime: yaml\n`);
  }
  return root;
}

function load(root: string, targets: string, pulumi = 'pulumi: { backendUrl: file://./state }') {
  return parseConfig(`${pulumi}\ntargets:\n${targets}`, { file: 'owners.yaml', baseDir: root, env: {} });
}

function problems(root: string, targets: string, pulumi?: string): string[] {
  try {
    load(root, targets, pulumi);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
}

const target = (name: string, dir: string, key = 'web:replicas', extra = '') =>
  `  ${name}: { workDir: ${dir}, stack: dev, configKey: ${key}, min: 1, max: 5${extra} }\n`;

describe('who owns a key', () => {
  it.each([
    { rule: 'two spellings of one folder own one stack', targets: target('x', './a') + target('y', 'a/'), owned: true },
    { rule: 'two folders of one project on one backend are one stack', targets: target('x', './a') + target('y', './b'), owned: true },
    { rule: 'two projects are two stacks', targets: target('x', './a') + target('y', './c'), owned: false },
    { rule: 'different keys of one stack are fine', targets: target('x', './a') + target('y', './b', 'web:workers'), owned: false },
    { rule: 'one folder on two backends is two stacks', targets: target('x', './a') + target('y', './a', 'web:replicas', ', env: { PULUMI_BACKEND_URL: "file:///elsewhere" }'), owned: false },
  ])('$rule', ({ targets, owned }) => {
    expect(problems(projects(), targets)).toEqual(owned ? ['targets.y.configKey: already owned by target x'] : []);
  });

  it('two inline targets may not share a project and stack', () => {
    const inline = (name: string, key: string) => `  ${name}: { inline: { project: settings }, stack: dev, configKey: ${key}, min: 1, max: 5 }\n`;
    expect(problems(projects(), inline('x', 'settings:a') + inline('y', 'settings:b'))).toEqual([
      'targets.y.inline: project and stack already used by inline target x',
    ]);
  });
});

describe('the stack key', () => {
  it('is the same for every spelling and copy of one project on one backend, and differs across projects', () => {
    const root = projects();
    const keys = targetsOf(load(root, target('x', './a') + target('y', './b', 'web:workers') + target('z', './c')), {}).map((t) => t.stackKey);
    expect(keys[0]).toBe(keys[1]);
    expect(keys[0]).not.toBe(keys[2]);
    expect(keys[0]).toBe(`file://${path.join(root, 'state')}#web/dev`);
  });
});
