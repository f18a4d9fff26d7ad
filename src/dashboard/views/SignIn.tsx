// Signing in: paste a token (or follow the link a dev server prints, which
// carries one in the URL fragment). Checked against the API before use.
import { useState } from 'preact/hooks';
import { api, ApiError, signIn } from '../session.js';

export function SignIn({ onSignedIn, reason }: { onSignedIn: () => void; reason: string | null }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(reason);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    signIn(token);
    try {
      await api('/api/v1/agents?limit=1');
      onSignedIn();
    } catch (err) {
      setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin" id="main">
      <h1>ESCAI Realtime</h1>
      <p>Watch what your agents think, live. Sign in with a token (roles researcher, developer or admin).</p>
      <form onSubmit={submit}>
        <label class="field">
          <span>Token</span>
          <textarea rows={5} value={token} onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)} required spellcheck={false} autocomplete="off" />
        </label>
        <button type="submit" disabled={busy || token.trim() === ''}>
          Sign in
        </button>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p class="muted small">
        A dev server (<code>npm start</code>) prints a link that signs you in. Otherwise mint a token where the server runs:{' '}
        <code>npx escai-realtime token --sub you --role researcher</code>. The token stays in this tab only.
      </p>
    </main>
  );
}
