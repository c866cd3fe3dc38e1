// Sign-in: none (local cloud) or the Cognito hosted UI (authorization code + PKCE). The ID token goes in the
// Authorization header of every API call (UserApi's Cognito authorizer reads it there).
import type { AppConfig, CognitoConfig } from "./config";

const TOKEN_KEY = "storyflow.id_token";
const VERIFIER_KEY = "storyflow.pkce_verifier";
const STATE_KEY = "storyflow.oauth_state";

interface Claims {
  exp?: number;
  email?: string;
  "cognito:username"?: string;
}

function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

function decodeClaims(token: string): Claims | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(json) as Claims;
  } catch {
    return null;
  }
}

function redirectUri(): string {
  return `${location.origin}${location.pathname}`;
}

export class Auth {
  constructor(private readonly config: AppConfig) {}

  get required(): boolean {
    return this.config.auth === "cognito";
  }

  private get cognito(): CognitoConfig {
    if (!this.config.cognito) throw new Error("no cognito configuration");
    return this.config.cognito;
  }

  /** The ID token while it is valid (null: sign in first, or no sign-in at all). */
  token(): string | null {
    if (!this.required) return null;
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return null;
    const exp = decodeClaims(token)?.exp ?? 0;
    if (exp * 1000 < Date.now() + 30_000) {
      sessionStorage.removeItem(TOKEN_KEY);
      return null;
    }
    return token;
  }

  user(): string | null {
    const token = this.token();
    if (!token) return null;
    const claims = decodeClaims(token);
    return claims?.email ?? claims?.["cognito:username"] ?? "signed in";
  }

  forget(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  }

  /** Send the browser to the hosted UI's sign-in page. */
  async signIn(): Promise<void> {
    const verifier = randomString();
    const state = randomString();
    sessionStorage.setItem(VERIFIER_KEY, verifier);
    sessionStorage.setItem(STATE_KEY, state);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    const query = new URLSearchParams({
      response_type: "code",
      client_id: this.cognito.clientId,
      redirect_uri: redirectUri(),
      scope: (this.cognito.scopes ?? ["openid", "email"]).join(" "),
      state,
      code_challenge_method: "S256",
      code_challenge: base64url(digest),
    });
    location.assign(`${this.cognito.domain}/oauth2/authorize?${query}`);
  }

  signOut(): void {
    this.forget();
    const query = new URLSearchParams({ client_id: this.cognito.clientId, logout_uri: redirectUri() });
    location.assign(`${this.cognito.domain}/logout?${query}`);
  }

  /** Back from the hosted UI with ?code=...: trade it for tokens (then drop it from the address bar). */
  async completeSignIn(): Promise<string | null> {
    if (!this.required) return null;
    const params = new URLSearchParams(location.search);
    const code = params.get("code");
    const error = params.get("error_description") ?? params.get("error");
    if (!code && !error) return null;
    history.replaceState(null, "", `${location.pathname}${location.hash}`);
    if (error) return `Sign-in failed: ${error}`;
    const verifier = sessionStorage.getItem(VERIFIER_KEY);
    if (!verifier || params.get("state") !== sessionStorage.getItem(STATE_KEY)) {
      return "Sign-in failed: the answer does not match this browser's request; sign in again.";
    }
    sessionStorage.removeItem(VERIFIER_KEY);
    sessionStorage.removeItem(STATE_KEY);
    const response = await fetch(`${this.cognito.domain}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: this.cognito.clientId,
        code: code ?? "",
        redirect_uri: redirectUri(),
        code_verifier: verifier,
      }),
    });
    if (!response.ok) return `Sign-in failed: the token endpoint answered HTTP ${response.status}.`;
    const tokens = (await response.json()) as { id_token?: string };
    if (!tokens.id_token) return "Sign-in failed: no ID token in the answer.";
    sessionStorage.setItem(TOKEN_KEY, tokens.id_token);
    return null;
  }
}
