// Submit forms: one per kind this stack runs (GET /workflows `deployed`), built from its request schema. A kind
// that takes an upload gets a file input; the file goes straight to the presigned POST with a progress bar.
import { ApiFailure, type JobRequest, type WorkflowInfo, unwrap, uploadFile } from "../api/client";
import { type Context, describeFailure, notice } from "../app";
import { clear, formatBytes, h } from "../dom";
import { type Schema, SchemaForm, showFieldError } from "../form";

export async function submitPage(root: HTMLElement, ctx: Context, _params: URLSearchParams, kind?: string): Promise<void> {
  root.appendChild(h("h1", { tabindex: -1 }, "Submit a job"));
  let workflows: WorkflowInfo[];
  try {
    workflows = (await ctx.workflows()).filter((w) => w.deployed);
  } catch (error) {
    root.appendChild(notice("error", "Could not read the workflows of this stack.", describeFailure(error)));
    return;
  }
  if (workflows.length === 0) {
    root.appendChild(notice("info", "This stack runs no workflow yet."));
    return;
  }
  const chosen = workflows.find((w) => w.kind === kind) ?? workflows[0];
  if (!chosen) return;
  root.appendChild(
    h(
      "div",
      { class: "tabs", role: "group", "aria-label": "Kind" },
      workflows.map((w) =>
        h("a", { href: `#/submit/${w.kind}`, class: "tab", "aria-current": w.kind === chosen.kind ? "page" : undefined }, w.kind),
      ),
    ),
  );
  root.appendChild(renderForm(chosen, ctx));
}

function renderForm(workflow: WorkflowInfo, ctx: Context): HTMLElement {
  const prefix = `f-${workflow.kind}`;
  const schemaForm = new SchemaForm(workflow.request_schema as Schema, prefix);
  const message = h("div", { class: "messages", "aria-live": "polite" });
  const upload = workflow.upload;
  const required = upload?.required ?? false;
  const fileId = `${prefix}-file`;
  // A field whose choices are content types picks the upload's type (video: image_upload); choosing a file
  // of one of those types sets it, so an optional upload is asked for by choosing a file.
  const typeField = upload ? uploadTypeField(workflow.request_schema as Schema, upload.content_type) : null;
  const accept = typeField ? typeField.types.join(",") : upload?.content_type;
  const file = upload
    ? h("input", { id: fileId, name: "file", type: "file", accept, required, "aria-describedby": `${fileId}-help ${fileId}-error` })
    : null;
  const progress = h("progress", { max: 100, value: 0, id: `${prefix}-progress`, "aria-label": "Upload progress" });
  const progressText = h("span", { class: "muted", "aria-live": "polite" });
  const progressBox = h("div", { class: "upload-progress", hidden: true }, h("label", { for: `${prefix}-progress` }, "Upload"), progress, progressText);
  const submit = h("button", { type: "submit" }, upload ? "Upload and submit" : "Submit");
  const form = h(
    "form",
    { class: "job-form", novalidate: true, "aria-describedby": `${prefix}-summary` },
    h("p", { id: `${prefix}-summary`, class: "summary" }, workflow.summary),
    file
      ? h(
          "div",
          { class: "field", dataset: { field: "file" } },
          h("label", { for: fileId }, "File", required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : " (optional)"),
          file,
          h("p", { id: `${fileId}-help`, class: "help" }, `${accept}, at most ${formatBytes(upload?.max_bytes ?? 0)}.`),
          h("p", { id: `${fileId}-error`, class: "error", hidden: true }),
        )
      : null,
    schemaForm.element,
    h("div", { class: "actions" }, submit),
    progressBox,
    message,
  );

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void send();
  });

  const fail = (error: unknown): void => {
    const field = error instanceof ApiFailure ? error.field : null;
    const text = error instanceof ApiFailure ? error.message : describeFailure(error);
    const marked = showFieldError(form, field, text);
    clear(message);
    const status = error instanceof ApiFailure && error.status ? `HTTP ${error.status}` : "Failed";
    message.appendChild(notice("error", `${status}: ${text}`, marked || !field ? undefined : `field: ${field}`));
  };

  async function send(): Promise<void> {
    showFieldError(form, null, null);
    clear(message);
    const body: Record<string, unknown> = { kind: workflow.kind, ...schemaForm.value() };
    const chosen = file?.files?.[0];
    if (upload && file && (chosen || required)) {
      if (!chosen) {
        fail(new ApiFailure(0, "Choose a file to upload.", "file"));
        return;
      }
      if (typeField && typeField.types.includes(chosen.type)) body[typeField.name] = chosen.type;
      if (upload.max_bytes && chosen.size > upload.max_bytes) {
        fail(new ApiFailure(0, `The file is ${formatBytes(chosen.size)}; the limit is ${formatBytes(upload.max_bytes)}.`, "file"));
        return;
      }
      if ("max_upload_bytes" in ((workflow.request_schema as Schema).properties ?? {})) {
        body.max_upload_bytes = Math.max(1, chosen.size); // the presigned POST then accepts exactly this file
      }
    }
    submit.disabled = true;
    try {
      const accepted = await unwrap(
        ctx.api.POST("/jobs", {
          body: body as JobRequest,
          params: { header: { "idempotency-key": crypto.randomUUID() } },
        }),
      );
      if (accepted.upload && !chosen) {
        throw new ApiFailure(0, `Job ${accepted.job_id} waits for a file: choose one and submit again.`, "file");
      }
      if (upload && chosen && accepted.upload) {
        progressBox.hidden = false;
        const total = chosen.size;
        progressText.textContent = `0 of ${formatBytes(total)}`;
        await uploadFile(accepted.upload, chosen, ({ loaded, total: all }) => {
          const percent = all ? Math.round((loaded / all) * 100) : 0;
          progress.value = percent;
          progress.dataset.loaded = String(loaded);
          progressText.textContent = `${percent}% (${formatBytes(loaded)} of ${formatBytes(all)})`;
        });
        progressText.textContent = `Uploaded ${formatBytes(total)}.`;
      }
      message.appendChild(notice("ok", `Job ${accepted.job_id} is ${accepted.status}.`));
      ctx.go(`#/jobs/${encodeURIComponent(accepted.job_id)}`);
    } catch (error) {
      fail(error);
    } finally {
      submit.disabled = false;
    }
  }

  return form;
}

function uploadTypeField(schema: Schema, contentType: string): { name: string; types: string[] } | null {
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const options = [property, ...(property.anyOf ?? [])];
    for (const option of options) {
      const values = option.enum?.filter((value): value is string => typeof value === "string") ?? [];
      if (values.length && values.every((value) => value.includes("/")) && values.includes(contentType)) {
        return { name, types: values };
      }
    }
  }
  return null;
}
