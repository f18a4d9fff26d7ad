// Connections (admin): who is connected, to which node, with which
// subscriptions; disconnect one (it is closed with 4010 and does not
// reconnect by itself).
import { useState } from 'preact/hooks';
import type { ConnectionEntry } from '../../protocol/api.js';
import { ago } from '../format.js';
import { usePolling } from '../live.js';
import { api, ApiError } from '../session.js';

type Entry = ConnectionEntry;

export function Connections() {
  const [entries, setEntries] = useState<Entry[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

  usePolling(
    async () => {
      try {
        const body = await api<{ connections: Entry[] }>('/ws/connections');
        setEntries(body.connections);
        setError(null);
      } catch (err) {
        setError(
          err instanceof ApiError && err.code === 'PERMISSION_DENIED'
            ? 'This view needs an admin token (websocket:admin).'
            : err instanceof ApiError
              ? `${err.code}: ${err.message}`
              : String(err),
        );
      }
    },
    3000,
    [tick],
  );

  const disconnect = async (entry: Entry) => {
    try {
      await api(`/ws/connections/${encodeURIComponent(entry.connection_id)}`, { method: 'DELETE' });
      setNotice(`Closed ${entry.user_id}'s connection ${entry.connection_id.slice(0, 8)}…`);
    } catch (err) {
      setNotice(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
    }
    setTick((n) => n + 1);
  };

  return (
    <section aria-labelledby="conn-title">
      <div class="toolbar">
        <h1 id="conn-title">Connections</h1>
        <span class="muted">{entries.length} open</span>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      <div class="table-wrap">
        <table class="table" data-testid="connections">
          <thead>
            <tr>
              <th scope="col">user</th>
              <th scope="col">session</th>
              <th scope="col">node</th>
              <th scope="col">connected</th>
              <th scope="col">subscriptions</th>
              <th scope="col">last ping</th>
              <th scope="col">
                <span class="sr-only">actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.connection_id}>
                <td>{e.user_id}</td>
                <td class="mono">{e.session_id}</td>
                <td class="mono">{e.node_id}</td>
                <td>{ago(e.connected_at)}</td>
                <td>
                  {e.subscriptions.length === 0 ? (
                    <span class="muted">none</span>
                  ) : (
                    <ul class="subs">
                      {e.subscriptions.map((s) => (
                        <li key={`${s.type}-${s.agent_id}`}>
                          {s.type}
                          {s.agent_id ? ` / ${s.agent_id}` : ' / all agents'}
                          {s.filters ? <span class="muted"> {JSON.stringify(s.filters)}</span> : null}
                        </li>
                      ))}
                    </ul>
                  )}
                </td>
                <td>{e.last_ping ? ago(e.last_ping) : '–'}</td>
                <td>
                  <button type="button" class="danger" onClick={() => void disconnect(e)} aria-label={`Disconnect ${e.user_id} (session ${e.session_id})`}>
                    Disconnect
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
