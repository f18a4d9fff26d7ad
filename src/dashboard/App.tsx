// The console's frame: sign-in, the navigation, the connection banner
// (reconnecting, caught up, stopped), the theme switch, and the hash routes
// #/fleet, #/agent/{id}, #/system, #/connections.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { claimsOf, currentToken, signOut } from './session.js';
import { createClient, useLiveState, type LiveState } from './live.js';

import { Agent } from './views/Agent.js';
import { Connections } from './views/Connections.js';
import { Fleet } from './views/Fleet.js';
import { SignIn } from './views/SignIn.js';
import { System } from './views/System.js';

type Route = { view: 'fleet' } | { view: 'agent'; agentId: string } | { view: 'system' } | { view: 'connections' };
type Theme = 'system' | 'light' | 'dark';

function parseRoute(hash: string): Route {
  const agent = /^#\/agent\/(.+)$/.exec(hash);
  if (agent) return { view: 'agent', agentId: decodeURIComponent(agent[1]!) };
  if (hash === '#/system') return { view: 'system' };
  if (hash === '#/connections') return { view: 'connections' };
  return { view: 'fleet' };
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem('escai.theme') as Theme | null) ?? 'system');
  useEffect(() => {
    if (theme === 'system') delete document.documentElement.dataset['theme'];
    else document.documentElement.dataset['theme'] = theme;
    localStorage.setItem('escai.theme', theme);
  }, [theme]);
  const next: Record<Theme, Theme> = { system: 'light', light: 'dark', dark: 'system' };
  return [theme, () => setTheme((t) => next[t])];
}

export function App() {
  const [token, setToken] = useState(currentToken());
  const [stoppedReason, setStoppedReason] = useState<string | null>(null);
  if (!token) {
    return (
      <SignIn
        reason={stoppedReason}
        onSignedIn={() => {
          setStoppedReason(null);
          setToken(currentToken());
        }}
      />
    );
  }
  return (
    <Console
      token={token}
      onSignOut={(reason) => {
        signOut();
        setStoppedReason(reason);
        setToken(null);
      }}
    />
  );
}

function Console({ token, onSignOut }: { token: string; onSignOut: (reason: string | null) => void }) {
  const client = useMemo(() => createClient(token), [token]);
  useEffect(() => {
    client.connect();
    return () => client.close();
  }, [client]);
  const live = useLiveState(client);
  const route = useRoute();
  const [theme, cycleTheme] = useTheme();
  const who = claimsOf(token);

  // A refusal retrying cannot fix (an expired or revoked token) ends the session: back to sign-in.
  useEffect(() => {
    if (live.state === 'closed' && live.stopped) onSignOut(`Disconnected: ${live.stopped}`);
  }, [live.state, live.stopped, onSignOut]);

  return (
    <div class="frame">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="#/fleet">
          ESCAI <span>Realtime</span>
        </a>
        <nav aria-label="Views">
          <NavLink href="#/fleet" current={route.view === 'fleet' || route.view === 'agent'}>
            Fleet
          </NavLink>
          <NavLink href="#/system" current={route.view === 'system'}>
            System
          </NavLink>
          <NavLink href="#/connections" current={route.view === 'connections'}>
            Connections
          </NavLink>
        </nav>
        <div class="top-right">
          <ConnectionBadge live={live} />
          <button type="button" class="ghost" onClick={cycleTheme} aria-label={`Theme: ${theme}. Switch theme`}>
            {theme === 'dark' ? '☾' : theme === 'light' ? '☀' : '◐'}
          </button>
          <span class="muted who" title={`roles: ${(who.roles ?? []).join(', ')}`}>
            {who.sub ?? ''}
          </span>
          <button type="button" class="ghost" onClick={() => onSignOut(null)}>
            Sign out
          </button>
        </div>
      </header>
      <Banner live={live} />
      <main id="main" tabIndex={-1}>
        {route.view === 'fleet' && <Fleet client={client} connections={live.connections} />}
        {route.view === 'agent' && <Agent client={client} agentId={route.agentId} connections={live.connections} />}
        {route.view === 'system' && <System />}
        {route.view === 'connections' && <Connections />}
      </main>
    </div>
  );
}

function NavLink({ href, current, children }: { href: string; current: boolean; children: string }) {
  return (
    <a href={href} aria-current={current ? 'page' : undefined} class={current ? 'current' : ''}>
      {children}
    </a>
  );
}

function ConnectionBadge({ live }: { live: LiveState }) {
  const label = live.state === 'connected' ? 'live' : live.state === 'connecting' ? 'connecting' : live.state === 'closed' ? 'stopped' : 'reconnecting';
  return (
    <span class={`conn conn-${live.state}`} data-testid="connection-state" data-state={live.state}>
      <span class="dot" aria-hidden="true" /> {label}
    </span>
  );
}

/** A clear, announced notice while the server is away; the views catch up on their own when it returns. */
function Banner({ live }: { live: LiveState }) {
  const away = live.connections > 0 && live.state !== 'connected';
  const [caughtUp, setCaughtUp] = useState(false);
  const [seen, setSeen] = useState(live.connections);
  useEffect(() => {
    if (live.connections > 1 && live.connections !== seen) {
      setSeen(live.connections);
      setCaughtUp(true);
      const t = setTimeout(() => setCaughtUp(false), 4000);
      return () => clearTimeout(t);
    }
    return undefined;
  }, [live.connections, seen]);
  return (
    <div class="banner-slot" role="status" aria-live="polite">
      {away && (
        <div class="banner warn" data-testid="reconnecting">
          Reconnecting to the server{live.attempt > 0 ? ` (attempt ${live.attempt + 1})` : ''}…{' '}
          {live.lastClose ? <span class="muted">last close: {live.lastClose}</span> : null} What you see stays; missed events are replayed when it is back.
        </div>
      )}
      {!away && caughtUp && (
        <div class="banner ok" data-testid="caught-up">
          Back online: caught up.
        </div>
      )}
    </div>
  );
}
