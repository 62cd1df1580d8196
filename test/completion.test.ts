/**
 * `ddmq completion bash|zsh|fish` and the man page, both made from the command table:
 * the scripts parse in their shells and complete commands, options, values and queues;
 * the man page renders without a warning and documents every command and option.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { COMMANDS } from '../src/cli/commands/index.js';
import { parseFlags } from '../src/cli/completion/model.js';
import { CLI, REPO, tempDir } from './helpers.js';

const ddmq = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
/** Under CI every shell must be there (.ci/run installs them); elsewhere a missing one skips its test. */
const need = (cmd: string) => (has(cmd) || process.env.CI ? undefined : `${cmd} is not installed`);

function script(shell: string): string {
  const r = ddmq('completion', shell);
  assert.equal(r.status, 0, r.stderr);
  const file = join(tempDir(), `ddmq.${shell}`);
  fs.writeFileSync(file, r.stdout);
  return file;
}

/** A root with the queues tasks, tasks-failed and other, and a folder that is no queue. */
function root(): string {
  const dir = join(tempDir(), 'root');
  assert.equal(ddmq('create', '-f', dir, 'tasks,tasks-failed,other', '-s').status, 0);
  fs.mkdirSync(join(dir, 'not-a-queue'));
  return dir;
}

/** What bash's completion function offers for `words`, completing the last one. */
function bashComplete(file: string, words: string[], cwd?: string): string[] {
  const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('bash', ['-c', `source "$1"; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _ddmq; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', file], {
    encoding: 'utf8',
    cwd,
  });
  assert.equal(r.status, 0, r.stderr);
  return [...new Set(r.stdout.split('\n').filter((l) => l !== ''))].sort();
}

/** What fish offers for the command line `line`. */
function fishComplete(file: string, line: string, cwd?: string): string[] {
  const r = spawnSync('fish', ['-c', 'source $argv[1]; complete -C $argv[2]', file, line], { encoding: 'utf8', cwd });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t')[0]!).sort();
}

describe('ddmq completion', () => {
  it('is a command of the table: ddmq json runs it too, and an unknown shell is refused', () => {
    const viaJson = ddmq('json', '{"cmd": "completion", "shell": "bash"}');
    assert.equal(viaJson.status, 0, viaJson.stderr);
    assert.equal(viaJson.stdout, ddmq('completion', 'bash').stdout);
    const bad = ddmq('completion', 'tcsh');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /bash, zsh, fish/);
    assert.equal(ddmq('json', '{"cmd": "completion", "shell": "tcsh"}').status, 2);
  });

  it('bash: the script parses, and completes commands, options, --format values and the queues of the root', { skip: need('bash') }, () => {
    const file = script('bash');
    assert.equal(spawnSync('bash', ['-n', file]).status, 0);
    const r = root();
    assert.deepEqual(bashComplete(file, ['ddmq', 'pub']), ['publish']);
    assert.deepEqual(bashComplete(file, ['ddmq', 'publish', '--pri']), ['--priority']);
    assert.deepEqual(bashComplete(file, ['ddmq', 'view', '--format', '']), ['json', 'plain', 'table', 'yaml']);
    assert.deepEqual(bashComplete(file, ['ddmq', 'completion', '']), ['bash', 'fish', 'zsh']);
    // The value of -p is no argument: the word after the root is the queue.
    assert.deepEqual(bashComplete(file, ['ddmq', 'publish', '-p', '5', r, 't']), ['tasks', 'tasks-failed']);
    assert.deepEqual(bashComplete(file, ['ddmq', 'view', r, 'tasks,o']), ['tasks,other']);
    assert.deepEqual(bashComplete(file, ['ddmq', 'redrive', r, 'tasks-failed', '--to', '']), ['other', 'tasks', 'tasks-failed']);
    assert.deepEqual(bashComplete(file, ['ddmq', 'view', join(r, 'ta')]), [join(r, 'tasks'), join(r, 'tasks-failed')]);
    assert.ok(bashComplete(file, ['ddmq', 'work', r, 'tasks', '--', 'ech']).includes('echo'));
  });

  it('bash and fish: folder names in the root are never run, and only queue names are offered', { skip: need('bash') ?? need('fish') }, () => {
    // Anyone who can write a shared root can name a folder so; completing there must not run it.
    const r = root();
    const here = tempDir(); // the shells run here: what a name would run writes here
    for (const name of ['$(touch ran-1)', '`touch ran-2`', 'a b', '*']) {
      fs.mkdirSync(join(r, name));
      fs.writeFileSync(join(r, name, 'ddmq.yaml'), '{}\n');
    }
    assert.deepEqual(bashComplete(script('bash'), ['ddmq', 'consume', r, ''], here), ['other', 'tasks', 'tasks-failed']);
    assert.deepEqual(fishComplete(script('fish'), `ddmq consume ${r} `, here), ['other', 'tasks', 'tasks-failed']);
    assert.deepEqual(fs.readdirSync(here), [], 'nothing was run');
  });

  it('bash: every command and every option of the table is offered', { skip: need('bash') }, () => {
    const file = script('bash');
    assert.deepEqual(bashComplete(file, ['ddmq', '']), [...COMMANDS.map((c) => c.name), '--help', '--version', '-h', '-v'].sort());
    for (const c of COMMANDS) {
      const offered = bashComplete(file, ['ddmq', c.name, '-']);
      for (const o of c.options) {
        const { short, long } = parseFlags(o.flags);
        for (const flag of [short, long]) if (flag) assert.ok(offered.includes(flag), `${c.name} ${flag}`);
      }
    }
  });

  it('zsh: the script parses, and registers _ddmq for ddmq under compinit', { skip: need('zsh') }, () => {
    const file = script('zsh');
    assert.equal(spawnSync('zsh', ['-n', file]).status, 0);
    const r = spawnSync('zsh', ['-f', '-c', 'autoload -U compinit; compinit -u -D; source $1; print -r -- $_comps[ddmq]', 'zsh', file], { encoding: 'utf8' });
    assert.equal(r.stderr, '');
    assert.equal(r.stdout.trim(), '_ddmq');
    const text = fs.readFileSync(file, 'utf8');
    for (const c of COMMANDS) assert.match(text, new RegExp(`\\n    ${c.name}\\)\\n      _arguments`), c.name);
  });

  it('fish: the script parses, and completes commands, options, --format values and the queues of the root', { skip: need('fish') }, () => {
    const file = script('fish');
    assert.equal(spawnSync('fish', ['-n', file]).status, 0);
    const r = root();
    assert.deepEqual(fishComplete(file, 'ddmq pub'), ['publish']);
    assert.deepEqual(fishComplete(file, 'ddmq publish --pri'), ['--priority']);
    assert.deepEqual(fishComplete(file, 'ddmq view --format '), ['json', 'plain', 'table', 'yaml']);
    assert.deepEqual(fishComplete(file, `ddmq publish -p 5 ${r} t`), ['tasks', 'tasks-failed']);
    assert.deepEqual(fishComplete(file, `ddmq view ${r} tasks,o`), ['tasks,other']);
    assert.deepEqual(fishComplete(file, 'ddmq completion '), ['bash', 'fish', 'zsh']);
  });
});

describe('the man page', () => {
  it('is built into dist/ddmq.1, package.json\'s "man", as ddmq man prints it', () => {
    const pkg = JSON.parse(fs.readFileSync(join(REPO, 'package.json'), 'utf8'));
    // An array: npm links man pages on a global install only from an array.
    assert.deepEqual(pkg.man, ['./dist/ddmq.1']);
    const r = ddmq('man');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readFileSync(join(REPO, 'dist', 'ddmq.1'), 'utf8'), r.stdout);
  });

  it('renders without a warning, and documents every command, argument and option of the table', { skip: need('groff') }, () => {
    const page = join(REPO, 'dist', 'ddmq.1');
    const lint = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', page], { encoding: 'utf8' });
    assert.equal(lint.status, 0);
    assert.equal(lint.stderr, '');
    // -Tascii: an escaped minus renders as "-", so flags read as typed.
    const text = spawnSync('groff', ['-man', '-Tascii', '-P-cbou', '-rLL=200n', page], { encoding: 'utf8' }).stdout;
    const sections = text.split(/\n {3}(?=\S)/);
    for (const c of COMMANDS) {
      const section = sections.find((s) => s.startsWith(`${c.name}\n`));
      assert.ok(section, `a section for ${c.name}`);
      assert.ok(section.includes(c.summary), `${c.name}: its summary`);
      for (const a of c.args) assert.ok(section.includes(a.key) && section.includes(a.description), `${c.name}: ${a.key}`);
      for (const o of c.options) {
        const { short, long } = parseFlags(o.flags);
        for (const flag of [short, long]) if (flag) assert.match(section, new RegExp(`(^|[\\s,])${flag}\\b`, 'm'), `${c.name}: ${flag}`);
        assert.ok(section.includes(o.description.slice(0, 30)), `${c.name}: the description of ${o.flags}`);
      }
    }
    assert.match(text, /EXIT STATUS[\s\S]*143/);
  });
});
