#!/usr/bin/env node
// A V8 CPU profile (.cpuprofile, as `node --cpu-prof` writes it) as a self-contained SVG flame graph:
//
//   node bench/flamegraph.mjs <profile.cpuprofile>... [-o out.svg] [--min-percent 0.5] [--idle] [--title text]
//
// Each input gets <input without .cpuprofile>.svg beside it unless -o names the output (one
// input only; `-o -` writes to stdout). Stacks are merged by function name + file:line (V8 keeps
// a node per call site and column; a flame graph wants one box per function in a given stack),
// widths are sample time (the time from each sample to the next, which is what the samples stand
// for), frames below --min-percent of the total are left out, and `(idle)` (the event loop
// waiting, most of a server's life) is left out of the graph unless --idle is given; the title
// says how much there was. Hovering a frame shows its full name, place, total and self time.
//
// Hand-written rather than a dependency: the npm packages that draw flame graphs (0x,
// flamebearer, @clinic/flame) profile the process themselves and/or write HTML apps; this needs
// only the profile node already writes, and an SVG a browser or an image viewer shows as is.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const repoRoot = path.resolve(import.meta.dirname, '..');

const WIDTH = 1200;
const FRAME_H = 16;
const PAD = 10;
const HEADER_H = 52; // title, subtitle, legend
const FONT_PX = 11;
const CHAR_W = 6.6; // average advance of an 11 px monospace glyph, for fitting labels

/** Sample time (µs) of each profile node id, from the samples and their time deltas. */
export function selfTimes(profile) {
  const times = new Map();
  const { samples = [], timeDeltas = [] } = profile;
  if (samples.length) {
    // timeDeltas[i] is the time from sample i-1 to sample i; sample i stands for the time until the next.
    let t = profile.startTime;
    const stamps = samples.map((_, i) => (t += timeDeltas[i] ?? 0));
    samples.forEach((id, i) => {
      const next = i + 1 < stamps.length ? stamps[i + 1] : profile.endTime;
      times.set(id, (times.get(id) ?? 0) + Math.max(0, next - stamps[i]));
    });
  } else {
    // Older profiles have hit counts only: spread the profile's duration evenly over the hits.
    const hits = profile.nodes.reduce((n, node) => n + (node.hitCount ?? 0), 0);
    const each = hits ? (profile.endTime - profile.startTime) / hits : 0;
    for (const node of profile.nodes) if (node.hitCount) times.set(node.id, node.hitCount * each);
  }
  return times;
}

/** Where a function is, short: repo-relative, node_modules/<pkg>/…, node:internal, or nothing (native). */
function shortPlace({ url, lineNumber }) {
  if (!url) return '';
  let p = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
  const nm = p.lastIndexOf('/node_modules/');
  if (nm >= 0) p = p.slice(nm + 1);
  else if (p.startsWith(repoRoot + path.sep)) p = path.relative(repoRoot, p);
  return `${p}:${lineNumber + 1}`; // V8's lines are 0-based
}

/** Frame colours by where the code is: the lesson of a flame graph is usually "whose code is this". */
const CATEGORIES = [
  { name: 'ferry (dist/, src/)', hue: 18, test: (f) => /^(dist|src)\//.test(f.place) },
  { name: 'node_modules', hue: 45, test: (f) => f.place.startsWith('node_modules/') },
  { name: 'node: built-ins', hue: 200, test: (f) => f.place.startsWith('node:') },
  { name: 'native, V8, GC, other', hue: 0, sat: 0, test: () => true },
];

const categoryOf = (frame) => CATEGORIES.find((c) => c.test(frame));

function colour(frame) {
  const c = categoryOf(frame);
  // A stable small variation per function, so neighbours of the same colour stay apart.
  let h = 0;
  for (const ch of frame.name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  const light = 55 + (h % 20);
  return `hsl(${c.hue + (h % 12)}, ${c.sat ?? 75}%, ${light}%)`;
}

/**
 * The merged tree: { name, place, self, total, children: Map }, keyed by name + file:line under
 * each parent. `(idle)` is left out unless `idle`; its time is returned separately.
 */
export function mergeTree(profile, { idle = false } = {}) {
  const times = selfTimes(profile);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const isChild = new Set(profile.nodes.flatMap((n) => n.children ?? []));
  const rootNode = profile.nodes.find((n) => !isChild.has(n.id));
  const root = { name: 'all', place: '', self: 0, total: 0, children: new Map() };
  let idleUs = 0;
  // Iterative: JS stacks can be deep enough to matter for recursion.
  const stack = (rootNode.children ?? []).map((id) => [id, root]);
  while (stack.length) {
    const [id, parent] = stack.pop();
    const node = byId.get(id);
    const { functionName } = node.callFrame;
    if (functionName === '(idle)' && !idle) {
      idleUs += times.get(id) ?? 0;
      continue;
    }
    const name = functionName || '(anonymous)';
    const place = shortPlace(node.callFrame);
    const key = `${name}\u0000${place}`;
    let merged = parent.children.get(key);
    if (!merged) {
      merged = { name, place, self: 0, total: 0, children: new Map() };
      parent.children.set(key, merged);
    }
    merged.self += times.get(id) ?? 0;
    for (const child of node.children ?? []) stack.push([child, merged]);
  }
  root.self += times.get(rootNode.id) ?? 0;
  const sum = (f) => (f.total = f.self + [...f.children.values()].reduce((n, c) => n + sum(c), 0));
  sum(root);
  return { root, idleUs };
}

const escapeXml = (s) =>
  s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]);

const ms = (us) => (us / 1000).toFixed(us < 10_000 ? 1 : 0);

/** The label that fits in `width` px: name and place, the name alone, cut with …, or nothing. */
function fitLabel(frame, width) {
  const max = Math.floor((width - 6) / CHAR_W);
  if (max < 3) return '';
  const full = frame.place ? `${frame.name} ${frame.place}` : frame.name;
  if (full.length <= max) return full;
  if (frame.name.length <= max) return frame.name;
  return `${frame.name.slice(0, max - 1)}…`;
}

/**
 * The SVG document. Frames narrower than `minPercent` of the total are left out (with their
 * children); the root ("all") is at the bottom, callees above their callers.
 */
export function flameGraphSvg(profile, { title = 'CPU profile', minPercent = 0.5, idle = false } = {}) {
  const { root, idleUs } = mergeTree(profile, { idle });
  const minUs = (root.total * minPercent) / 100;
  const scale = root.total ? (WIDTH - 2 * PAD) / root.total : 0;
  // Lay out first (depth, x, width), so the height is known before anything is written.
  const boxes = [];
  let elided = 0;
  const place = (frame, depth, x) => {
    boxes.push({ frame, depth, x, w: frame.total * scale });
    // Children from the parent's left edge; the gap on the right is its self time. A child left out
    // keeps its place as a gap, so the others stay where their time puts them.
    let cx = x;
    const children = [...frame.children.values()].sort(
      (a, b) => a.name.localeCompare(b.name) || a.place.localeCompare(b.place),
    );
    for (const child of children) {
      if (child.total < minUs) elided += 1;
      else place(child, depth + 1, cx);
      cx += child.total * scale;
    }
  };
  place(root, 0, PAD);
  const depth = Math.max(...boxes.map((b) => b.depth)) + 1;
  const height = HEADER_H + depth * FRAME_H + 2 * PAD;
  const y = (d) => height - PAD - (d + 1) * FRAME_H;

  const samples = profile.samples?.length ?? 0;
  const durationMs = (profile.endTime - profile.startTime) / 1000;
  const subtitle =
    `${samples} samples over ${durationMs.toFixed(0)} ms; ` +
    (idle ? `(idle) included (${ms(idleUs)} ms)` : `${ms(idleUs)} ms (idle) not shown`) +
    `; ${elided} frames under ${minPercent}% left out; merged by function + file:line`;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="ui-monospace, Menlo, Consolas, monospace" font-size="${FONT_PX}">`,
    `<rect width="100%" height="100%" fill="#fdfdf8"/>`,
    `<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(`${title}: ${ms(root.total)} ms`)}</text>`,
    `<text x="${WIDTH / 2}" y="36" text-anchor="middle" fill="#555">${escapeXml(subtitle)}</text>`,
  ];
  // Legend: one swatch per kind of code.
  let lx = PAD;
  for (const c of CATEGORIES) {
    out.push(
      `<rect x="${lx}" y="42" width="10" height="10" fill="hsl(${c.hue}, ${c.sat ?? 75}%, 62%)"/>`,
      `<text x="${lx + 14}" y="51" fill="#333">${escapeXml(c.name)}</text>`,
    );
    lx += Math.round(24 + c.name.length * CHAR_W);
  }
  for (const { frame, depth: d, x, w } of boxes) {
    const pct = root.total ? ((frame.total / root.total) * 100).toFixed(2) : '0';
    const tip = `${frame.name}${frame.place ? ` ${frame.place}` : ''}\n${ms(frame.total)} ms (${pct}%), self ${ms(frame.self)} ms`;
    const fill = frame === root ? 'hsl(0, 0%, 80%)' : colour(frame);
    const label = fitLabel(frame, w);
    out.push(
      `<g><title>${escapeXml(tip)}</title>` +
        `<rect x="${x.toFixed(2)}" y="${y(d)}" width="${Math.max(w - 0.5, 0.1).toFixed(2)}" height="${FRAME_H - 1}" fill="${fill}" rx="1"/>` +
        (label ? `<text x="${(x + 3).toFixed(2)}" y="${y(d) + FRAME_H - 4}">${escapeXml(label)}</text>` : '') +
        `</g>`,
    );
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      'min-percent': { type: 'string', default: '0.5' },
      idle: { type: 'boolean', default: false },
      title: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    console.error(
      'usage: node bench/flamegraph.mjs <profile.cpuprofile>... [-o out.svg|-] [--min-percent 0.5] [--idle] [--title text]',
    );
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  if (values.output && positionals.length > 1) throw new Error('-o takes one input profile');
  const minPercent = Number(values['min-percent']);
  if (!Number.isFinite(minPercent) || minPercent < 0)
    throw new Error(`--min-percent ${values['min-percent']}: not a number >= 0`);
  for (const input of positionals) {
    const profile = JSON.parse(readFileSync(input, 'utf8'));
    if (!Array.isArray(profile.nodes)) throw new Error(`${input}: not a V8 CPU profile (no "nodes")`);
    const title = values.title ?? path.basename(input);
    const svg = flameGraphSvg(profile, { title, minPercent, idle: values.idle });
    if (values.output === '-') process.stdout.write(svg);
    else {
      const output = values.output ?? `${input.replace(/\.cpuprofile$/, '')}.svg`;
      writeFileSync(output, svg);
      console.error(`${input} -> ${output}`);
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    main();
  } catch (err) {
    console.error(`flamegraph: ${err.message}`);
    process.exitCode = 1;
  }
}
