// The dashboard's shell: config, sign-in, the hash router and each page's lifecycle (timers stop on leave).
import "./style.css";
import { makeApi } from "./api/client";
import { type Context, type Page, describeFailure, notice, workflowLoader } from "./app";
import { Auth } from "./auth";
import { type AppConfig, loadConfig } from "./config";
import { clear, h } from "./dom";
import { backendPage } from "./pages/backend";
import { jobPage } from "./pages/job";
import { jobsPage } from "./pages/jobs";
import { submitPage } from "./pages/submit";

const main = document.getElementById("main") as HTMLElement;
const user = document.getElementById("user") as HTMLElement;

interface Route {
  name: string;
  page: Page;
  id?: string;
  params: URLSearchParams;
}

function parseRoute(hash: string): Route {
  const [path = "", query = ""] = hash.replace(/^#\/?/, "").split("?", 2);
  const params = new URLSearchParams(query);
  const [first = "", second] = path.split("/").map((part) => decodeURIComponent(part));
  if (first === "jobs" && second) return { name: "job", page: jobPage, id: second, params };
  if (first === "submit") return { name: "submit", page: submitPage, id: second, params };
  if (first === "backend") return { name: "backend", page: backendPage, params };
  return { name: "jobs", page: jobsPage, params };
}

function signInScreen(auth: Auth, problem: string | null): void {
  clear(main);
  const button = h("button", { type: "button" }, "Sign in");
  button.addEventListener("click", () => void auth.signIn());
  main.append(
    h("h1", { tabindex: -1 }, "Sign in"),
    problem ? notice("error", problem) : "",
    h("p", {}, "The dashboard uses your account in this stack's user pool."),
    button,
  );
  button.focus();
}

function showUser(auth: Auth): void {
  clear(user);
  const name = auth.user();
  if (!auth.required) {
    user.append(h("span", { class: "muted" }, "local · no sign-in"));
  } else if (name) {
    const out = h("button", { type: "button", class: "link" }, "Sign out");
    out.addEventListener("click", () => auth.signOut());
    user.append(h("span", {}, name), " ", out);
  }
}

async function start(): Promise<void> {
  let config: AppConfig;
  try {
    config = await loadConfig();
  } catch (error) {
    clear(main);
    main.append(notice("error", "The dashboard could not start.", describeFailure(error)));
    return;
  }
  const auth = new Auth(config);
  const problem = await auth.completeSignIn().catch((error: unknown) => describeFailure(error));
  const api = makeApi(config.apiBase, () => auth.token(), () => {
    auth.forget();
    signInScreen(auth, "Your session has ended; sign in again.");
  });
  const workflows = workflowLoader(api);
  let leave: AbortController | null = null;

  const render = async (): Promise<void> => {
    leave?.abort();
    leave = new AbortController();
    const signal = leave.signal;
    showUser(auth);
    if (auth.required && !auth.token()) {
      signInScreen(auth, problem);
      return;
    }
    const route = parseRoute(location.hash);
    for (const link of document.querySelectorAll<HTMLAnchorElement>("[data-nav]")) {
      const active = link.dataset.nav === (route.name === "job" ? "jobs" : route.name);
      if (active) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const ctx: Context = {
      api,
      workflows,
      signal,
      go: (target) => {
        location.hash = target;
      },
      every: (seconds, tick) => {
        let timer = 0;
        const run = async (): Promise<void> => {
          if (signal.aborted) return;
          if (document.visibilityState !== "hidden") await tick();
          if (!signal.aborted) timer = window.setTimeout(() => void run(), seconds * 1000);
        };
        signal.addEventListener("abort", () => window.clearTimeout(timer));
        void run();
      },
    };
    clear(main);
    const page = h("div", { class: `page page-${route.name}` });
    main.appendChild(page);
    await route.page(page, ctx, route.params, route.id);
    if (!signal.aborted) page.querySelector<HTMLElement>("h1")?.focus({ preventScroll: true });
  };

  window.addEventListener("hashchange", () => void render());
  await render();
}

void start();
