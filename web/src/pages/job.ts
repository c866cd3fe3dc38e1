// One job: live status, stage and progress, its error and cause when it failed, cancel, and its outputs played
// in the page (video with a one-eye / full side-by-side toggle; audio with its VTT subtitles) and downloaded.
// A story lists its scenes with their child jobs (linked, with their status) and, once finished, regenerates a
// scene; a child links back to its story.
import { ApiFailure, type Job, type JobOutputs, type WorkflowInfo, unwrap } from "../api/client";
import { type Context, PROGRESS_UNITS, describeFailure, notice, statusBadge } from "../app";
import { clear, formatTime, h } from "../dom";
import { showFieldError } from "../form";

const FINISHED = new Set(["completed", "failed", "cancelled"]);

export async function jobPage(root: HTMLElement, ctx: Context, _params: URLSearchParams, id?: string): Promise<void> {
  const jobId = id ?? "";
  const heading = h("h1", { tabindex: -1 }, "Job ", h("code", {}, jobId));
  const message = h("div", { "aria-live": "polite" });
  const summary = h("dl", { class: "job-summary" });
  const stages = h("ol", { class: "stages", "aria-label": "Stages" });
  const progress = h("progress", { id: "job-progress", max: 1, value: 0 });
  const progressLabel = h("label", { for: "job-progress" }, "Progress");
  const progressText = h("span", { class: "muted", id: "job-progress-text" });
  const progressBox = h("div", { class: "job-progress", hidden: true }, progressLabel, progress, progressText);
  const errorBox = h("section", { class: "job-error", hidden: true, "aria-labelledby": "job-error-title" });
  const cancel = h("button", { type: "button", class: "danger", hidden: true }, "Cancel job");
  const outputs = h("section", { class: "outputs", hidden: true, "aria-labelledby": "outputs-title" });
  const parent = h("p", { class: "parent", id: "job-parent", hidden: true });
  const followed = h("div", { class: "followed", "aria-live": "polite" }); // a regenerate's note (kept by refreshes)
  const scenes = h("section", { class: "scenes", id: "job-scenes", hidden: true, "aria-labelledby": "scenes-title" });
  root.append(
    heading,
    parent,
    message,
    h("div", { class: "status-line" }, h("span", { id: "job-status" }), cancel),
    followed,
    summary,
    stages,
    progressBox,
    errorBox,
    scenes,
    outputs,
  );

  let known: WorkflowInfo[] = [];
  try {
    known = await ctx.workflows();
  } catch {
    known = []; // the page works without them (no stage list, outputs typed by extension)
  }
  let workflow: WorkflowInfo | undefined;
  let shownOutputs = false;
  let lastStatus = "";
  let scenesShown = ""; // what the Scenes section was built for (rebuilt only when that changes)
  const childStatus = new Map<string, string>(); // child job id -> its last status read
  let childIds: string[] = []; // the story's current children
  let regenerating: number | null = null; // the revision a regenerate started, until it finishes
  const settled = (childId: string): boolean => {
    const status = childStatus.get(childId) ?? "";
    return FINISHED.has(status) || status === "missing";
  };

  const render = (job: Job): void => {
    workflow ??= known.find((w) => w.kind === job.kind);
    const status = document.getElementById("job-status");
    if (status) {
      clear(status);
      status.append("Status: ", statusBadge(job.status));
    }
    clear(summary);
    const rows: [string, string][] = [
      ["Kind", job.kind],
      ["Stage", job.stage ?? "—"],
      ["Created", formatTime(job.created_at)],
      ["Updated", formatTime(job.updated_at)],
      ["Completed", formatTime(job.completed_at)],
    ];
    if (job.kind === "story" || job.revision) rows.push(["Revision", String(job.revision ?? 0)]);
    for (const [term, value] of rows) summary.append(h("dt", {}, term), h("dd", {}, value));
    const request = Object.entries(job.request ?? {}).filter(([key]) => key !== "kind");
    if (request.length) {
      summary.append(
        h("dt", {}, "Request"),
        h("dd", {}, h("code", { class: "request" }, request.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("  "))),
      );
    }
    renderStages(job);
    const { done, total } = job.progress ?? { done: 0, total: 0 };
    progressBox.hidden = !total;
    if (total) {
      progress.max = total;
      progress.value = done;
      progressText.textContent = `${done} of ${total} ${PROGRESS_UNITS[job.kind] ?? "items"}`;
    }
    cancel.hidden = FINISHED.has(job.status);
    errorBox.hidden = !job.error;
    if (job.error) {
      clear(errorBox);
      errorBox.append(
        h("h2", { id: "job-error-title" }, "Error"),
        h("p", { class: "error-name" }, job.error.error),
        job.error.cause ? h("pre", { class: "cause" }, job.error.cause) : h("p", { class: "muted" }, "No cause recorded."),
      );
    }
    if (job.parent_id && parent.hidden) {
      parent.append(
        "Part of story ",
        h("a", { href: `#/jobs/${encodeURIComponent(job.parent_id)}`, "aria-label": `Parent story ${job.parent_id}` }, h("code", {}, job.parent_id)),
      );
      parent.hidden = false;
    }
    renderScenes(job);
    if (regenerating !== null && (job.revision ?? 0) >= regenerating && FINISHED.has(job.status)) {
      clear(followed);
      followed.appendChild(notice(job.status === "completed" ? "ok" : "error", `Revision ${job.revision} is ${job.status}.`));
      regenerating = null;
    }
    if (job.status === "completed" && !shownOutputs) {
      shownOutputs = true;
      void showOutputs(job);
    }
    if (job.status !== lastStatus && FINISHED.has(job.status)) {
      document.title = `${job.status} · ${job.job_id} · storyflow`;
    }
    lastStatus = job.status;
  };

  const renderStages = (job: Job): void => {
    clear(stages);
    const names = workflow?.stages ?? [];
    stages.hidden = names.length === 0;
    const current = job.stage ? names.indexOf(job.stage) : -1;
    names.forEach((name, index) => {
      let state = "todo";
      const optional = workflow?.optional_stages?.[name];
      // A stage its request did not ask for (a story's "stereo" without `stereo`) is skipped, not done.
      if (optional !== undefined && !job.request?.[optional]) state = "skipped";
      else if (job.status === "completed" || index < current) state = "done";
      else if (index === current) state = FINISHED.has(job.status) ? job.status : "current";
      stages.appendChild(h("li", { class: `stage ${state}`, "aria-current": state === "current" ? "step" : undefined }, name));
    });
  };

  // The Scenes section: each scene's text and its child jobs (links, with their status, updated in place), and
  // a Regenerate form per scene once the story is completed or failed. Rebuilt only when the story's plan,
  // revision or finished state changes, so what is typed into a Regenerate form survives the refresh.
  const renderScenes = (job: Job): void => {
    const children = job.children ?? [];
    const planned = job.scenes ?? [];
    const count = Math.max(planned.length, ...children.map((child) => (child.scene ?? -1) + 1));
    const canRegenerate = job.kind === "story" && (job.status === "completed" || job.status === "failed");
    const shape = JSON.stringify([job.revision, canRegenerate, planned, children]);
    childIds = children.map((child) => child.job_id);
    void refreshChildren();
    if (shape === scenesShown) return;
    scenesShown = shape;
    clear(scenes);
    scenes.hidden = children.length === 0 && planned.length === 0;
    if (scenes.hidden) return;
    scenes.append(h("h2", { id: "scenes-title" }, "Scenes"));
    const list = h("ol", { class: "scene-list" });
    for (let index = 0; index < count; index += 1) {
      const scene = planned[index];
      const titleId = `scene-${index}-title`;
      const item = h(
        "li",
        { class: "scene", dataset: { scene: String(index) }, "aria-labelledby": titleId },
        h("h3", { id: titleId }, `Scene ${index + 1}`),
        scene ? h("p", { class: "scene-text" }, scene.text) : h("p", { class: "muted" }, "Not planned yet."),
        scene?.visual_prompt ? h("p", { class: "muted scene-visual" }, "Shows: ", scene.visual_prompt) : null,
        childLinks(children.filter((child) => child.scene === index), `Jobs of scene ${index + 1}`),
      );
      if (canRegenerate && scene) item.appendChild(regenerateForm(job, index));
      list.appendChild(item);
    }
    scenes.appendChild(list);
    const whole = children.filter((child) => child.scene === null || child.scene === undefined);
    if (whole.length) scenes.append(h("h3", {}, "Whole story"), childLinks(whole, "Jobs of the whole story"));
  };

  const childLinks = (children: NonNullable<Job["children"]>, label: string): HTMLElement =>
    h(
      "ul",
      { class: "children", "aria-label": label },
      children.map((child) =>
        h(
          "li",
          { dataset: { jobId: child.job_id } },
          h("a", { href: `#/jobs/${encodeURIComponent(child.job_id)}`, class: "child-link" }, `${child.kind} `, h("code", {}, child.job_id)),
          " ",
          h("span", { class: "child-status" }, childStatus.has(child.job_id) ? statusBadge(childStatus.get(child.job_id) ?? "") : h("span", { class: "muted" }, "…")),
        ),
      ),
    );

  /** Read the children not known to be finished and update their status badges (one read at a time). */
  let reading = false;
  const refreshChildren = async (): Promise<void> => {
    if (reading) return;
    reading = true;
    await Promise.all(
      childIds
        .filter((childId) => !settled(childId))
        .map(async (childId) => {
          try {
            const child = await unwrap(ctx.api.GET("/jobs/{job_id}", { params: { path: { job_id: childId } } }));
            childStatus.set(childId, child.status);
          } catch (error) {
            if (!(error instanceof ApiFailure && error.status === 404)) return; // unknown ("…") until the next read
            childStatus.set(childId, "missing");
          }
          for (const slot of scenes.querySelectorAll<HTMLElement>(`li[data-job-id="${CSS.escape(childId)}"] .child-status`)) {
            clear(slot);
            slot.appendChild(statusBadge(childStatus.get(childId) ?? ""));
          }
        }),
    );
    reading = false;
  };
  const childrenPending = (): boolean => childIds.some((childId) => !settled(childId));

  const regenerateForm = (job: Job, index: number): HTMLElement => {
    const prefix = `regen-${index}`;
    const field = (name: string, label: string, rows: number): HTMLElement =>
      h(
        "div",
        { class: "field", dataset: { field: name } },
        h("label", { for: `${prefix}-${name}` }, label, h("span", { class: "muted" }, " (optional)")),
        h("textarea", { id: `${prefix}-${name}`, name, rows, "aria-describedby": `${prefix}-${name}-error` }),
        h("p", { id: `${prefix}-${name}-error`, class: "error", hidden: true }),
      );
    const button = h("button", { type: "submit", class: "secondary" }, `Regenerate scene ${index + 1}`);
    const said = h("div", { class: "messages", "aria-live": "polite" });
    const form = h(
      "form",
      { novalidate: true },
      h(
        "fieldset",
        {},
        h("legend", {}, `Regenerate scene ${index + 1}`),
        h("p", { class: "help" }, "Makes this scene's narration and clip again (empty: the same text, a new take), then composes the story again."),
        field("text", "New text", 3),
        field("visual_prompt", "New visual prompt", 2),
        h("div", { class: "actions" }, button),
        said,
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void (async () => {
        showFieldError(form, null, null);
        clear(said);
        const body: { text?: string; visual_prompt?: string } = {};
        for (const name of ["text", "visual_prompt"] as const) {
          const value = form.querySelector<HTMLTextAreaElement>(`textarea[name="${name}"]`)?.value.trim() ?? "";
          if (value) body[name] = value;
        }
        button.disabled = true;
        try {
          const accepted = await unwrap(
            ctx.api.POST("/jobs/{job_id}/scenes/{scene}/regenerate", {
              params: { path: { job_id: job.job_id, scene: index } },
              body,
            }),
          );
          regenerating = (job.revision ?? 0) + 1;
          clear(followed);
          followed.appendChild(
            notice("ok", `Scene ${index + 1} is being regenerated: the story is ${accepted.status} again, at revision ${(job.revision ?? 0) + 1}.`),
          );
          follow(); // the story runs again: follow it to its new revision's end
        } catch (error) {
          const failure = error instanceof ApiFailure ? error : null;
          // the API names the body's field (`text`) or, for a path parameter, e.g. `scene`
          const named = failure?.field ? failure.field.replace(/^body\./, "") : null;
          const marked = showFieldError(form, named, failure?.message ?? null);
          const status = failure?.status ? `HTTP ${failure.status}` : "Failed";
          said.appendChild(
            notice("error", `Could not regenerate scene ${index + 1}. ${status}: ${failure?.message ?? describeFailure(error)}`, failure?.field && !marked ? `field: ${failure.field}` : undefined),
          );
          button.disabled = false;
        }
      })();
    });
    // folded away until asked for (summary: keyboard-operable, Enter/Space opens it)
    return h("details", { class: "regenerate" }, h("summary", {}, `Regenerate scene ${index + 1}…`), form);
  };

  const showOutputs = async (job: Job): Promise<void> => {
    try {
      const links = await unwrap(ctx.api.GET("/jobs/{job_id}/outputs", { params: { path: { job_id: job.job_id } } }));
      renderOutputs(outputs, links, job, workflow);
    } catch (error) {
      outputs.hidden = false;
      outputs.appendChild(notice("error", "Could not get the download links.", describeFailure(error)));
    }
  };

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    clear(message);
    try {
      render(await unwrap(ctx.api.POST("/jobs/{job_id}/cancel", { params: { path: { job_id: jobId } } })));
      message.appendChild(notice("ok", "The job is cancelled."));
    } catch (error) {
      message.appendChild(notice("error", "Could not cancel the job.", describeFailure(error)));
    } finally {
      cancel.disabled = false;
    }
  });

  let stopped = false;
  /** Follow the job again (after a regenerate): live refresh until it finishes, and its new outputs then. */
  const follow = (): void => {
    stopped = false;
    shownOutputs = false;
    lastStatus = "";
    clear(outputs);
    outputs.hidden = true;
    for (const [childId, status] of childStatus) if (status !== "completed") childStatus.delete(childId);
  };
  ctx.every(1, async () => {
    if (stopped) {
      if (childrenPending()) await refreshChildren(); // a failed story's children may still be stopping
      return;
    }
    try {
      const job = await unwrap(ctx.api.GET("/jobs/{job_id}", { params: { path: { job_id: jobId } } }));
      clear(message);
      render(job);
      if (FINISHED.has(job.status)) stopped = true; // a finished job no longer changes
    } catch (error) {
      clear(message);
      const missing = error instanceof ApiFailure && (error.status === 404 || error.status === 400);
      message.appendChild(notice("error", missing ? "No such job." : "Could not read the job.", describeFailure(error)));
      if (missing) stopped = true;
    }
  });
}

function mediaType(name: string, workflow: WorkflowInfo | undefined): string {
  const declared = workflow?.outputs.find((o) => o.name === name)?.media_type;
  if (declared) return declared;
  const ext = name.split(".").pop()?.toLowerCase() ?? "";
  const byExt: Record<string, string> = {
    mp4: "video/mp4",
    webm: "video/webm",
    wav: "audio/wav",
    mp3: "audio/mpeg",
    vtt: "text/vtt",
    srt: "application/x-subrip",
    json: "application/json",
  };
  return byExt[ext] ?? "application/octet-stream";
}

function renderOutputs(section: HTMLElement, links: JobOutputs, job: Job, workflow: WorkflowInfo | undefined): void {
  clear(section);
  section.hidden = false;
  section.appendChild(h("h2", { id: "outputs-title" }, "Outputs"));
  const entries = Object.entries(links.outputs);
  const vtt = entries.find(([name]) => mediaType(name, workflow) === "text/vtt");
  const layout = typeof job.request?.layout === "string" ? job.request.layout : null; // stereo: full|half SBS
  let audioShown = false; // one player for the narration (its other formats are downloads)
  for (const [name, url] of entries) {
    const type = mediaType(name, workflow);
    const description = workflow?.outputs.find((o) => o.name === name)?.description;
    const figure = h("figure", { class: "output" });
    if (type.startsWith("video/")) {
      figure.appendChild(videoPlayer(name, url, layout));
    } else if (type.startsWith("audio/") && !audioShown) {
      audioShown = true;
      const audio = h("audio", { controls: true, preload: "metadata", src: url, crossorigin: vtt ? "anonymous" : undefined });
      if (vtt) audio.appendChild(h("track", { kind: "subtitles", src: vtt[1], srclang: "en", label: "Subtitles", default: true }));
      figure.appendChild(audio);
      if (vtt) figure.appendChild(h("p", { class: "cue", "aria-live": "polite" }));
      if (vtt) wireCues(audio, figure);
    } else if (type === "text/vtt" || type.startsWith("text/") || type.endsWith("json") || type.endsWith("subrip")) {
      // shown as a download only (the audio player shows the VTT)
    }
    figure.appendChild(
      h(
        "figcaption",
        {},
        h("a", { href: url, download: name, class: "download" }, `Download ${name}`),
        description ? ` — ${description}` : null,
        h("span", { class: "muted" }, ` (${type})`),
      ),
    );
    section.appendChild(figure);
  }
  section.appendChild(h("p", { class: "muted" }, `Links expire in ${Math.round(links.expires_in / 60)} min.`));
}

function videoPlayer(name: string, url: string, layout: string | null): HTMLElement {
  const video = h("video", { controls: true, preload: "metadata", playsinline: true, src: url, "aria-label": name });
  const frame = h("div", { class: "player sbs-full" }, video);
  if (!layout) return frame;
  // Side-by-side 3D: both eyes (the file as it is) or the left eye alone, at its own aspect ratio.
  const group = h("div", { class: "eye-toggle", role: "radiogroup", "aria-label": "View" });
  const options: [string, string][] = [
    ["sbs", "Side by side (both eyes)"],
    ["left", "Left eye only"],
  ];
  const apply = (mode: string): void => {
    frame.classList.toggle("one-eye", mode === "left");
    frame.classList.toggle("sbs-full", mode !== "left");
    if (mode === "left" && video.videoWidth && video.videoHeight) {
      // full SBS: each eye is half the frame at the source's aspect; half SBS: each eye is squeezed to half
      const eyeWidth = layout === "half" ? video.videoWidth : video.videoWidth / 2;
      frame.style.aspectRatio = `${eyeWidth} / ${video.videoHeight}`;
    } else {
      frame.style.aspectRatio = "";
    }
  };
  options.forEach(([value, label], index) => {
    const id = `eye-${name.replace(/\W/g, "-")}-${value}`;
    const radio = h("input", { type: "radio", name: `eye-${name}`, id, value, checked: index === 0 });
    radio.addEventListener("change", () => apply(value));
    group.append(h("span", { class: "radio" }, radio, h("label", { for: id }, label)));
  });
  video.addEventListener("loadedmetadata", () => {
    const checked = group.querySelector<HTMLInputElement>("input:checked");
    apply(checked?.value ?? "sbs");
  });
  return h("div", {}, group, frame, h("p", { class: "muted" }, `Layout: ${layout} side-by-side.`));
}

function wireCues(audio: HTMLAudioElement, figure: HTMLElement): void {
  const cue = figure.querySelector<HTMLElement>(".cue");
  const track = audio.textTracks[0];
  if (!cue || !track) return;
  track.mode = "hidden";
  track.addEventListener("cuechange", () => {
    const active = track.activeCues?.[0] as VTTCue | undefined;
    cue.textContent = active?.text ?? "";
  });
}
