// The GraphQL-over-HTTP spec's own audit (graphql-http's auditServer) against <base>/graphql.
// Prints every audit's result; for the ones that did not pass, the reason and what the server
// answered. Exit 0 whenever the audit ran (the Rust test judges the results).
// Usage: node audit.mjs http://127.0.0.1:<port>
import { args, need, report } from './tools.mjs';

const { auditServer } = need('graphql-http');
const [base] = args('node audit.mjs <base url>');

const results = await auditServer({ url: `${base}/graphql` });
const counts = {};
const failures = [];
for (const result of results) {
  const level = result.name.split(' ')[0]; // MUST, SHOULD or MAY
  counts[level] ??= { ok: 0, failed: 0 };
  if (result.status === 'ok') {
    counts[level].ok += 1;
    continue;
  }
  counts[level].failed += 1;
  const answer = { status: null, contentType: null, body: null };
  try {
    answer.status = result.response.status;
    answer.contentType = result.response.headers.get('content-type');
    answer.body = (await result.response.text()).slice(0, 500);
  } catch {
    // The body was read by the audit already.
  }
  failures.push({ id: result.id, name: result.name, status: result.status, reason: result.reason, answer });
}
report({ total: results.length, counts, failures });
