// Trunk's post_build hook (Trunk.toml): in a release build, minifies wasm-bindgen's JS glue with
// terser and writes the minified file's hash into index.html's integrity attribute. Trunk 0.21.14's
// own minifier cannot parse the glue of wasm-bindgen 0.2.108 (`export { … as default }`: it warns
// "Failed to minify JS … KeywordDefault" and ships the glue as it is). Debug builds stay as they are.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { minify } from 'terser';

if (process.env.TRUNK_PROFILE === 'release') {
  const dir = process.env.TRUNK_STAGING_DIR;
  const htmlFile = path.join(dir, 'index.html');
  const sri = (text) => `sha384-${crypto.createHash('sha384').update(text).digest('base64')}`;
  let html = fs.readFileSync(htmlFile, 'utf8');
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.js'))) {
    const file = path.join(dir, name);
    const glue = fs.readFileSync(file, 'utf8');
    // The page loads the glue only if its hash matches: a glue trunk did not hash is left alone.
    if (!html.includes(sri(glue))) continue;
    const { code } = await minify(glue, { module: true, compress: true, mangle: true });
    fs.writeFileSync(file, code);
    html = html.replace(sri(glue), sri(code));
  }
  fs.writeFileSync(htmlFile, html);
}
