// A build of Ferry from an earlier commit (by default 2b9bf12, "the foundation": before the file
// registry, events and processing), for the ferry-foundation variants. Built once per commit into
// bench/.cache/foundation-<commit>/ and reused by later runs:
//
//   git archive <commit> | tar -x     (no worktree left registered, the checkout is untouched)
//   npm ci --ignore-scripts --no-audit --no-fund
//   npm run build
//
// The build happens in a staging directory next to the cache and is renamed into place only when
// it succeeded, so an interrupted build is never mistaken for a finished one. What is kept is what
// running it needs: dist/, node_modules/, package.json and package-lock.json; the sources are
// removed so that tools run over the repo (eslint, prettier, tsc) have nothing of it to check.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const benchDir = path.resolve(import.meta.dirname, '..');
const repoRoot = path.resolve(benchDir, '..');

export const DEFAULT_FOUNDATION_REF = '2b9bf12';

/** What stays in the cache: enough to run `node dist/cli.js serve`. */
const KEEP = new Set(['dist', 'node_modules', 'package.json', 'package-lock.json', 'BUILD-INFO.json']);

function git(args) {
  return execFileSync('git', ['-C', repoRoot, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** `ref` as a full commit hash; throws a readable error if the repository doesn't have it. */
export function resolveCommit(ref) {
  try {
    return git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  } catch {
    throw new Error(`BENCH_FOUNDATION_REF=${ref}: no such commit in ${repoRoot}`);
  }
}

/** Run a command, its output to our stderr (progress), failing with the command line. */
function run(cmd, args, cwd, env = process.env) {
  const r = spawnSync(cmd, args, { cwd, env, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited with ${r.signal ?? r.status}`);
}

/**
 * Directory of a built Ferry for `ref`: { dir, cli, commit, reused, buildS }. Builds it first if the
 * cache doesn't have it (about a minute with a warm npm cache). `cacheRoot` defaults to bench/.cache.
 */
export function ensureFoundationBuild({ ref = DEFAULT_FOUNDATION_REF, cacheRoot, log = console.error } = {}) {
  const commit = resolveCommit(ref);
  const short = commit.slice(0, 7);
  const root = cacheRoot ?? path.join(benchDir, '.cache');
  const dir = path.join(root, `foundation-${short}`);
  const cli = path.join(dir, 'dist', 'cli.js');
  const infoFile = path.join(dir, 'BUILD-INFO.json');
  if (existsSync(cli) && existsSync(infoFile)) {
    const info = JSON.parse(readFileSync(infoFile, 'utf8'));
    if (info.commit === commit) return { dir, cli, commit, reused: true, buildS: null, info };
    log(`  ${dir} holds ${info.commit}, not ${commit}: building again`);
  }

  const t0 = Date.now();
  mkdirSync(root, { recursive: true });
  // Staging dirs of builds that were killed (their process is gone) are removed.
  for (const entry of readdirSync(root)) {
    const m = /^\.staging-foundation-[0-9a-f]+-(\d+)$/.exec(entry);
    if (m && !isAlive(Number(m[1]))) rmSync(path.join(root, entry), { recursive: true, force: true });
  }
  const stage = path.join(root, `.staging-foundation-${short}-${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage);
  try {
    log(`building Ferry at ${short} (the foundation) in ${path.relative(repoRoot, stage)}…`);
    // git archive | tar -x, with the pipe's failure on either side reported.
    const archive = spawnSync('git', ['-C', repoRoot, 'archive', '--format=tar', commit], {
      maxBuffer: 1 << 30,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (archive.status !== 0) throw new Error(`git archive ${commit} exited with ${archive.status}`);
    const untar = spawnSync('tar', ['-x', '-C', stage], {
      input: archive.stdout,
      stdio: ['pipe', 'inherit', 'inherit'],
    });
    if (untar.status !== 0) throw new Error(`tar -x exited with ${untar.status}`);
    // No lifecycle scripts: none of Ferry's dependencies needs one (native code comes as
    // prebuilt optional packages), and `pretest`-style hooks must not run here.
    run('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], stage);
    run('npm', ['run', 'build'], stage);
    if (!existsSync(path.join(stage, 'dist', 'cli.js'))) throw new Error(`the build of ${short} made no dist/cli.js`);
    for (const entry of readdirSync(stage)) {
      if (!KEEP.has(entry)) rmSync(path.join(stage, entry), { recursive: true, force: true });
    }
    const info = {
      commit,
      subject: git(['log', '-1', '--format=%s', commit]),
      builtAt: new Date().toISOString(),
      node: process.version,
      npm: execFileSync('npm', ['--version'], { encoding: 'utf8' }).trim(),
      commands: [`git archive ${commit} | tar -x`, 'npm ci --ignore-scripts --no-audit --no-fund', 'npm run build'],
    };
    writeFileSync(path.join(stage, 'BUILD-INFO.json'), JSON.stringify(info, null, 2) + '\n');
    rmSync(dir, { recursive: true, force: true });
    renameSync(stage, dir);
    const buildS = (Date.now() - t0) / 1000;
    log(`  built in ${buildS.toFixed(0)} s: ${path.relative(repoRoot, dir)}`);
    return { dir, cli, commit, reused: false, buildS, info };
  } catch (err) {
    rmSync(stage, { recursive: true, force: true });
    throw err;
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}
