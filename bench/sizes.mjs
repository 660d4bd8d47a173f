// Transfer sizes of a built dist/: raw, gzip (-9) and brotli (q11) per kind and in total.
//   node bench/sizes.mjs <dist dir>   → one JSON object
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const dir = process.argv[2];
const kinds = { wasm: /\.wasm$/, js: /\.js$/, css: /\.css$/, html: /\.html$/, other: /./ };
const totals = {};
for (const name of fs.readdirSync(dir)) {
  const bytes = fs.readFileSync(path.join(dir, name));
  const kind = Object.keys(kinds).find((k) => kinds[k].test(name));
  const raw = bytes.length;
  const gzip = zlib.gzipSync(bytes, { level: 9 }).length;
  const brotli = zlib.brotliCompressSync(bytes, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
  for (const key of [kind, 'total']) {
    totals[key] ??= { raw: 0, gzip: 0, brotli: 0 };
    totals[key].raw += raw; totals[key].gzip += gzip; totals[key].brotli += brotli;
  }
}
console.log(JSON.stringify(totals));
