// Shared by the scripts in tests/node/: the pinned packages come from GOFTGU_TEST_NODE_DIR's
// node_modules (`bash .ci/node` installs them into target/node-tools), not from this folder.
import { createRequire } from 'node:module';
import { join } from 'node:path';

const dir = process.env.GOFTGU_TEST_NODE_DIR;
if (!dir) {
  console.error('GOFTGU_TEST_NODE_DIR is not set (bash .ci/node installs the tools and prints it)');
  process.exit(2);
}

/** `require` from the tools' node_modules. */
export const need = createRequire(join(dir, 'package.json'));

/** The script's one argument, the server's base URL (`http://127.0.0.1:<port>`), and the rest. */
export function args(usage) {
  const [base, ...rest] = process.argv.slice(2);
  if (!base) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  return [base.replace(/\/$/, ''), ...rest];
}

/** Prints the script's report: one JSON document on stdout. */
export function report(value) {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** What a failed fetch says, with its cause (undici puts the socket error there). */
export function describeError(error) {
  const cause = error && error.cause;
  return {
    name: error && error.name,
    message: String(error && error.message),
    cause: cause ? { name: cause.name, code: cause.code, message: String(cause.message) } : null,
  };
}

/** Fails the script when `promise` takes longer than `ms`. */
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
