// urql with its default options (@urql/core 6 sends a query as GET when its URL is short enough;
// 4 and 5 defaulted to POST)
// against <base>/graphql: a mutation (register), queries (me; a user by id, with variables) and a
// subscription (heartbeat) over graphql-ws at <base>/graphql/ws, the token in connectionParams.
// The only options given are the URL, the exchanges, fetchOptions for the Authorization header
// and `fetch`: the global fetch, wrapped to record each request's method. Prints what each
// operation returned and the requests made; exit 0 whenever the operations ran.
// Usage: node urql.mjs http://127.0.0.1:<port> <username>
import { args, need, report, within } from './tools.mjs';

const { Client, cacheExchange, fetchExchange, subscriptionExchange, gql } = need('@urql/core');
const { createClient } = need('graphql-ws');
const WebSocket = need('ws');

const [base, username] = args('node urql.mjs <base url> <username>');

const requests = [];
const recordingFetch = (input, init = {}) => {
  const url = new URL(String(input));
  requests.push({ method: init.method ?? 'GET', operationName: url.searchParams.get('operationName') ?? bodyName(init.body) });
  return fetch(input, init);
};
const bodyName = (body) => {
  try {
    return JSON.parse(body).operationName ?? null;
  } catch {
    return null;
  }
};

let token = null;
const sockets = createClient({
  url: `${base.replace(/^http/, 'ws')}/graphql/ws`,
  webSocketImpl: WebSocket,
  connectionParams: () => ({ Authorization: `Bearer ${token}` }),
});
const client = new Client({
  url: `${base}/graphql`,
  fetch: recordingFetch,
  fetchOptions: () => (token ? { headers: { Authorization: `Bearer ${token}` } } : {}),
  exchanges: [
    cacheExchange,
    fetchExchange,
    subscriptionExchange({
      forwardSubscription(request) {
        const input = { ...request, query: request.query || '' };
        return {
          subscribe(sink) {
            return { unsubscribe: sockets.subscribe(input, sink) };
          },
        };
      },
    }),
  ],
});

const plain = (result) => ({
  data: result.data ?? null,
  error: result.error ? { message: result.error.message.slice(0, 300), graphQLErrors: result.error.graphQLErrors.map((e) => e.message), networkError: result.error.networkError ? String(result.error.networkError).slice(0, 300) : null } : null,
});

const register = await within(10000, 'register', client.mutation(gql`
  mutation Register($input: RegisterInput!) {
    register(input: $input) { accessToken user { id username } }
  }
`, { input: { username, email: `${username}@example.com`, password: 'correct horse battery' } }).toPromise());
token = register.data?.register?.accessToken ?? null;
const userId = register.data?.register?.user?.id ?? null;

const me = await within(10000, 'me', client.query(gql`
  query Me { me { id username } }
`, {}).toPromise());

const user = await within(10000, 'user', client.query(gql`
  query User($id: ID!) { user(id: $id) { id username } }
`, { id: userId }).toPromise());

const heartbeats = [];
const subscriptionErrors = [];
await within(15000, 'heartbeat', new Promise((resolve) => {
  const { unsubscribe } = client.subscription(gql`
    subscription Heartbeat { heartbeat(intervalMs: 200, count: 3) }
  `, {}).subscribe((result) => {
    if (result.error) subscriptionErrors.push(plain(result).error);
    if (result.data) heartbeats.push(result.data.heartbeat);
    if (result.error || heartbeats.length >= 3) {
      unsubscribe();
      resolve();
    }
  });
}));
await sockets.dispose();

report({
  requests,
  register: plain(register),
  me: plain(me),
  user: plain(user),
  heartbeat: { values: heartbeats, errors: subscriptionErrors },
});
