// What every page gets: the API client, the registry (GET /workflows), messages, and a refresh timer that
// stops when the page is left.
import { type Api, ApiFailure, type WorkflowInfo, unwrap } from "./api/client";
import { h } from "./dom";

export interface Context {
  api: Api;
  workflows(): Promise<WorkflowInfo[]>;
  /** Run `tick` now and every `seconds` while the page is shown (and the tab is visible). */
  every(seconds: number, tick: () => Promise<void> | void): void;
  /** Navigate (hash route). */
  go(route: string): void;
  signal: AbortSignal;
}

export type Page = (root: HTMLElement, ctx: Context, params: URLSearchParams, id?: string) => Promise<void> | void;

/** A message box; role=alert for errors, so screen readers announce it. */
export function notice(kind: "error" | "info" | "ok", text: string, detail?: string): HTMLElement {
  return h(
    "div",
    { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("p", {}, text),
    detail ? h("pre", { class: "detail" }, detail) : null,
  );
}

export function describeFailure(error: unknown): string {
  if (error instanceof ApiFailure) {
    const where = error.field ? ` (field: ${error.field})` : "";
    return error.status ? `HTTP ${error.status}: ${error.message}${where}` : error.message;
  }
  return error instanceof Error ? error.message : String(error);
}

let cache: Promise<WorkflowInfo[]> | null = null;

export function workflowLoader(api: Api): () => Promise<WorkflowInfo[]> {
  return () => {
    cache ??= unwrap(api.GET("/workflows")).then((list) => list.items);
    cache.catch(() => {
      cache = null;
    });
    return cache;
  };
}

export function statusBadge(status: string): HTMLElement {
  return h("span", { class: `badge status-${status}` }, status);
}

// What a job's `progress` counts, by kind (unknown kinds: "items").
export const PROGRESS_UNITS: Record<string, string> = {
  stereo: "segments",
  video: "steps",
  tts: "sentences",
  story: "scenes",
};
