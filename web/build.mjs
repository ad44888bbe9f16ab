// Bundle the notebook page (src/main.js and what it imports, CSS included) into
// ../broker/static/, where the service serves it at /static/. The output is
// generated: it is not committed (see ../docs/notebook.md).
//
//   node build.mjs            one build (npm run build)
//   node build.mjs --watch    rebuild on every change (npm run watch)
import * as esbuild from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const outdir = fileURLToPath(new URL('../broker/static/', import.meta.url));
const watch = process.argv.includes('--watch');

const options = {
  entryPoints: {
    notebook: fileURLToPath(new URL('src/main.js', import.meta.url)),
    // the teacher's page at /class (docs/classroom.md)
    class: fileURLToPath(new URL('src/class/main.js', import.meta.url)),
  },
  bundle: true,
  format: 'iife',
  target: ['es2020'],
  minify: !watch,
  sourcemap: 'linked',
  legalComments: 'linked',
  outdir,
  assetNames: 'fonts/[name]-[hash]',
  loader: { '.woff2': 'file', '.woff': 'file', '.ttf': 'file' },
  logLevel: 'warning',
};

rmSync(outdir, { recursive: true, force: true });
if (watch) {
  const context = await esbuild.context(options);
  await context.watch();
  console.log(`watching; writing ${outdir}`);
} else {
  const result = await esbuild.build({ ...options, metafile: true });
  const files = Object.keys(result.metafile.outputs).length;
  console.log(`built ${files} files into ${outdir}`);
}
