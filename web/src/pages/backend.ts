// The on-demand backend: GET /start starts it (once) or keeps it alive; GET /start?action=ping keeps it alive.
// Nothing is called on page load: opening the page never starts a task.
import { type BackendStatus, unwrap } from "../api/client";
import { type Context, describeFailure, notice } from "../app";
import { clear, h } from "../dom";

export function backendPage(root: HTMLElement, ctx: Context): void {
  const message = h("div", { "aria-live": "polite" });
  const details = h("dl", { class: "job-summary", id: "backend-status" });
  const start = h("button", { type: "button" }, "Start");
  const ping = h("button", { type: "button", class: "secondary" }, "Ping");
  const keepAlive = h("input", { type: "checkbox", id: "keep-alive" });
  let last: BackendStatus | null = null;
  root.append(
    h("h1", { tabindex: -1 }, "On-demand backend"),
    h(
      "p",
      {},
      "A Fargate task that runs while it is pinged and stops by itself after its lifetime. ",
      "Start it (or ping it) to see its status.",
    ),
    h("div", { class: "actions" }, start, ping, h("label", { class: "inline" }, keepAlive, " Keep alive (ping every 30 s)")),
    message,
    details,
  );

  const show = (status: BackendStatus): void => {
    last = status;
    clear(details);
    const expires = Math.max(0, Math.round(status.expires_at - Date.now() / 1000));
    const rows: [string, string][] = [
      ["Status", status.status],
      ["Message", status.message],
      ["Address", status.public_ip ?? "— (starting)"],
      ["Task", status.task_arn ?? "—"],
      ["Stops in", `${expires} s without a ping (at ${new Date(status.expires_at * 1000).toLocaleTimeString()})`],
    ];
    for (const [term, value] of rows) details.append(h("dt", {}, term), h("dd", {}, value));
  };

  const call = async (action: "start" | "ping"): Promise<void> => {
    start.disabled = ping.disabled = true;
    clear(message);
    try {
      const query = action === "ping" ? { action: "ping" } : {};
      const status = await unwrap(ctx.api.GET("/start", { params: { query } }));
      show(status);
      message.appendChild(notice("ok", action === "ping" ? "Pinged." : `Backend ${status.status}.`));
    } catch (error) {
      message.appendChild(notice("error", `Could not ${action} the backend.`, describeFailure(error)));
    } finally {
      start.disabled = ping.disabled = false;
    }
  };

  start.addEventListener("click", () => void call("start"));
  ping.addEventListener("click", () => void call("ping"));
  let ticks = 0;
  ctx.every(1, async () => {
    ticks += 1;
    if (keepAlive.checked && ticks % 30 === 0) await call("ping");
    else if (last) show(last); // the countdown
  });
}
