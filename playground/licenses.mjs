// Prints LICENSES.txt for playground/assets/: the licence of every package npm installed from
// package-lock.json (the pinned packages and everything they depend on), in lockfile order, each
// with the licence files its package ships. Run by build-assets.sh with the install's directory.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2];
if (!root) throw new Error('usage: node licenses.mjs <dir with package-lock.json and node_modules>');
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
const LICENCE_FILE = /^(licen[cs]e|copying|notice)([.-].*)?$/i;

const out = [
  'Third-party software in the GraphiQL playground (GET /graphql) and its assets',
  '(/playground/assets/*), built by playground/build-assets.sh from playground/package-lock.json.',
  '',
  'graphiql.min.js and graphiql.min.css are the graphiql package\'s own prebuilt browser bundle',
  '(graphiql, @graphiql/*, graphql, graphql-ws, CodeMirror, markdown-it, Radix UI and the rest',
  'of its dependencies); react.production.min.js and react-dom.production.min.js come from the',
  'react and react-dom packages. Below: every package installed from the lockfile, its declared',
  'licence and the licence files it ships.',
  '',
];
const entries = Object.entries(lock.packages).filter(([path]) => path.startsWith('node_modules/'));
for (const [path, entry] of entries) {
  const dir = join(root, path);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const declared = pkg.license ?? entry.license ?? '(none declared)';
  out.push('='.repeat(78), `${pkg.name}@${pkg.version} (${declared})`, '='.repeat(78));
  const files = readdirSync(dir).filter((name) => LICENCE_FILE.test(name)).sort();
  if (files.length === 0) {
    out.push(`(the package ships no licence file; its package.json declares: ${declared})`, '');
  }
  for (const name of files) {
    const text = readFileSync(join(dir, name), 'utf8').replace(/\r\n/g, '\n').trimEnd();
    out.push(`--- ${name}`, text, '');
  }
}
process.stdout.write(out.join('\n') + '\n');
