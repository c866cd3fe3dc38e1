// One job: live status, stage and progress, its error and cause when it failed, cancel, and its outputs played
// in the page (video with a one-eye / full side-by-side toggle; audio with its VTT subtitles) and downloaded.
import { ApiFailure, type Job, type JobOutputs, type WorkflowInfo, unwrap } from "../api/client";
import { type Context, PROGRESS_UNITS, describeFailure, notice, statusBadge } from "../app";
import { clear, formatTime, h } from "../dom";

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
  root.append(
    heading,
    message,
    h("div", { class: "status-line" }, h("span", { id: "job-status" }), cancel),
    summary,
    stages,
    progressBox,
    errorBox,
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
      if (job.status === "completed" || index < current) state = "done";
      else if (index === current) state = FINISHED.has(job.status) ? job.status : "current";
      stages.appendChild(h("li", { class: `stage ${state}`, "aria-current": state === "current" ? "step" : undefined }, name));
    });
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
  ctx.every(1, async () => {
    if (stopped) return;
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
