// The job list: one status at a time, newest first, paginated with the API's `next` token, refreshed live.
import { type Job, type JobStatus, STATUSES, unwrap } from "../api/client";
import { type Context, PROGRESS_UNITS, describeFailure, notice, statusBadge } from "../app";
import { clear, formatTime, h } from "../dom";

const PAGE_SIZE = 20;

export async function jobsPage(root: HTMLElement, ctx: Context, params: URLSearchParams): Promise<void> {
  const requested = params.get("status") as JobStatus | null;
  const status: JobStatus = requested && STATUSES.includes(requested) ? requested : "running";
  const tokens: (string | null)[] = [null]; // tokens[i] = the `next` that fetches page i
  let page = 0;
  let nextToken: string | null = null;

  const tabs = h(
    "div",
    { class: "tabs", role: "group", "aria-label": "Status" },
    STATUSES.map((value) =>
      h("a", { href: `#/jobs?status=${value}`, class: "tab", "aria-current": value === status ? "page" : undefined }, value),
    ),
  );
  const live = h("input", { type: "checkbox", id: "live", checked: true });
  const updated = h("span", { class: "muted", "aria-live": "off" });
  const message = h("div", { "aria-live": "polite" });
  const body = h("tbody");
  const table = h(
    "table",
    { class: "jobs" },
    h("caption", { class: "visually-hidden" }, `Jobs ${status}, newest first`),
    h(
      "thead",
      {},
      h("tr", {}, ["Job", "Kind", "Status", "Stage", "Progress", status === "completed" ? "Completed" : "Created"].map((t) => h("th", { scope: "col" }, t))),
    ),
    body,
  );
  const previous = h("button", { type: "button", class: "secondary", disabled: true }, "Previous page");
  const next = h("button", { type: "button", class: "secondary", disabled: true }, "Next page");
  const pageLabel = h("span", { class: "muted" });
  root.append(
    h("h1", { tabindex: -1 }, "Jobs"),
    tabs,
    h("div", { class: "toolbar" }, h("label", { class: "inline" }, live, " Live refresh"), updated),
    message,
    h("div", { class: "table-wrap" }, table),
    h("nav", { class: "pager", "aria-label": "Pages" }, previous, pageLabel, next),
  );

  const row = (job: Job): HTMLElement => {
    const { done, total } = job.progress ?? { done: 0, total: 0 };
    const progress = total
      ? `${done}/${total} ${PROGRESS_UNITS[job.kind] ?? "items"}`
      : "—";
    return h(
      "tr",
      { dataset: { jobId: job.job_id } },
      h("td", { "data-label": "Job" }, h("a", { href: `#/jobs/${encodeURIComponent(job.job_id)}` }, job.job_id)),
      h("td", { "data-label": "Kind" }, job.kind),
      h("td", { "data-label": "Status" }, statusBadge(job.status)),
      h("td", { "data-label": "Stage" }, job.stage ?? "—"),
      h("td", { "data-label": "Progress" }, progress),
      h("td", { "data-label": status === "completed" ? "Completed" : "Created" }, formatTime(status === "completed" ? job.completed_at : job.created_at)),
    );
  };

  const load = async (): Promise<void> => {
    try {
      const result = await unwrap(
        ctx.api.GET("/jobs", { params: { query: { status, limit: PAGE_SIZE, next: tokens[page] ?? undefined } } }),
      );
      clear(message);
      clear(body);
      if (result.items.length === 0) {
        body.appendChild(h("tr", {}, h("td", { colspan: 6, class: "empty" }, `No ${status} jobs.`)));
      }
      for (const job of result.items) body.appendChild(row(job));
      nextToken = result.next ?? null;
      next.disabled = !nextToken;
      previous.disabled = page === 0;
      pageLabel.textContent = `Page ${page + 1}`;
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      clear(message);
      message.appendChild(notice("error", `Could not list ${status} jobs.`, describeFailure(error)));
    }
  };

  next.addEventListener("click", () => {
    if (!nextToken) return;
    tokens[page + 1] = nextToken;
    page += 1;
    void load();
  });
  previous.addEventListener("click", () => {
    if (page === 0) return;
    page -= 1;
    void load();
  });
  ctx.every(3, () => (live.checked || !body.firstChild ? load() : undefined));
}
