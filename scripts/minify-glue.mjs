// Trunk's post_build hook (Trunk.toml): in a release build, makes the seam between the wasm and
// its JS glue small, then writes the new files' hashes into index.html's integrity attributes.
//
// 1. The names across the seam: wasm-bindgen names each import `__wbg_<name>_<16 hex digits>`
//    and each closure export after its symbol hash; they are in both files, and hex digits do not
//    compress. binaryen's `--minify-imports-and-exports-and-modules` renames them `a`, `b`, … in
//    the wasm and prints what it renamed; the glue gets the same names here. Every old name must
//    be found where wasm-bindgen writes it, or the build fails: a glue this script does not
//    understand is never shipped half renamed.
// 2. The glue minified with terser: trunk 0.21.14's own minifier cannot parse wasm-bindgen
//    0.2.108's glue (`export { … as default }`: it warns "Failed to minify JS … KeywordDefault"
//    and ships it as it is).
//
// Debug builds stay as they are.
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The features rustc's wasm32 target enables and trunk's wasm-opt keeps.
const FEATURES = ['bulk-memory', 'nontrapping-float-to-int', 'sign-ext', 'mutable-globals',
  'reference-types', 'multivalue'].map((f) => `--enable-${f}`);

const sri = (bytes) => `sha384-${crypto.createHash('sha384').update(bytes).digest('base64')}`;
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const property = (name) => (/^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name));

/// Replaces every match of `pattern` in `text` by `to`, and fails unless there was one at least.
function renameAll(text, pattern, to, what) {
  let found = 0;
  const out = text.replace(pattern, (...m) => { found += 1; return to(...m); });
  if (found === 0) throw new Error(`minify-glue: ${what} is not in the glue`);
  return out;
}

/// Renames the seam's names in the wasm (in place) and returns the glue with the same names.
function renameSeam(wasmFile, glue) {
  const out = `${wasmFile}.min`;
  const run = spawnSync(path.join(root, 'node_modules/.bin/wasm-opt'),
    [wasmFile, ...FEATURES, '--minify-imports-and-exports-and-modules', '-o', out],
    { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`minify-glue: wasm-opt failed: ${run.stderr}`);
  const renamed = JSON.parse(run.stdout);
  const modules = [...new Set(WebAssembly.Module.imports(new WebAssembly.Module(fs.readFileSync(out)))
    .map((i) => i.module))];
  const oldModules = [...new Set(renamed.imports.map(([module]) => module))];
  if (modules.length !== 1 || oldModules.length !== 1) {
    throw new Error(`minify-glue: one import module expected, found ${oldModules} → ${modules}`);
  }
  // The import object: `"./x_bg.js": import0`, whose entries read `    name: function(`.
  glue = renameAll(glue, new RegExp(`${escape(JSON.stringify(oldModules[0]))}(?=: import0\\b)`, 'g'),
    () => JSON.stringify(modules[0]), `the import module ${oldModules[0]}`);
  for (const [, from, to] of renamed.imports) {
    glue = renameAll(glue, new RegExp(`(\\n\\s+)${escape(from)}(?=: function\\b)`, 'g'),
      (_, indent) => `${indent}${property(to)}`, `the import ${from}`);
  }
  // The exports: read as `wasm.name` (the instance's exports object is `wasm`).
  for (const [from, to] of renamed.exports) {
    const pattern = new RegExp(`\\bwasm\\.${escape(from)}\\b`, 'g');
    // Some exports (a start function, a version marker) the glue never reads: nothing to rename.
    if (!pattern.test(glue)) continue;
    glue = glue.replace(pattern, property(to) === to ? `wasm.${to}` : `wasm[${property(to)}]`);
  }
  fs.renameSync(out, wasmFile);
  return glue;
}

if (process.env.TRUNK_PROFILE === 'release') {
  const dir = process.env.TRUNK_STAGING_DIR;
  const htmlFile = path.join(dir, 'index.html');
  let html = fs.readFileSync(htmlFile, 'utf8');
  const files = fs.readdirSync(dir);
  for (const name of files.filter((n) => n.endsWith('_bg.wasm'))) {
    const wasmFile = path.join(dir, name);
    const glueFile = path.join(dir, name.replace(/_bg\.wasm$/, '.js'));
    const wasmBefore = fs.readFileSync(wasmFile);
    const glueBefore = fs.readFileSync(glueFile, 'utf8');
    // The page loads each file only if its hash matches: files trunk did not hash are left alone.
    if (!html.includes(sri(wasmBefore)) || !html.includes(sri(glueBefore))) continue;
    const renamed = renameSeam(wasmFile, glueBefore);
    const { code } = await minify(renamed, { module: true, compress: true, mangle: true });
    fs.writeFileSync(glueFile, code);
    html = html.replace(sri(wasmBefore), sri(fs.readFileSync(wasmFile)))
      .replace(sri(glueBefore), sri(code));
  }
  fs.writeFileSync(htmlFile, html);
}
