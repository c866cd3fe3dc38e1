// The runtime configuration, read from ./config.json next to index.html: written at deploy time (the
// stack's UserApiUrl and Cognito app client) and served by `storyflow local up` (the local API, no sign-in).

export interface CognitoConfig {
  /** The hosted UI's base URL, e.g. https://myteam.auth.eu-west-1.amazoncognito.com */
  domain: string;
  clientId: string;
  scopes?: string[];
}

export interface AppConfig {
  apiBase: string;
  auth: "none" | "cognito";
  cognito?: CognitoConfig;
  stage?: string;
}

export async function loadConfig(): Promise<AppConfig> {
  const response = await fetch("./config.json", { cache: "no-store" });
  if (!response.ok) {
    throw new Error(`config.json: HTTP ${response.status} (the dashboard is not configured for a stack)`);
  }
  const config = (await response.json()) as Partial<AppConfig>;
  if (typeof config.apiBase !== "string") throw new Error("config.json has no apiBase");
  const auth = config.auth === "cognito" ? "cognito" : "none";
  if (auth === "cognito" && (!config.cognito?.domain || !config.cognito.clientId)) {
    throw new Error("config.json: cognito sign-in needs cognito.domain and cognito.clientId");
  }
  return { ...config, apiBase: config.apiBase.replace(/\/+$/, ""), auth } as AppConfig;
}
