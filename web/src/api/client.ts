// The dashboard's API client: openapi-fetch over the types generated from docs/openapi.json
// (src/api/schema.d.ts, `npm run generate`; a test fails when it drifts). No hand-written API calls.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Job = Schemas["Job"];
export type JobStatus = Schemas["JobStatus"];
export type JobKind = Schemas["JobKind"];
export type JobPage = Schemas["JobPage"];
export type JobAccepted = Schemas["JobAccepted"];
export type JobOutputs = Schemas["JobOutputs"];
export type UploadTicket = Schemas["UploadTicket"];
export type WorkflowInfo = Schemas["WorkflowInfo"];
export type BackendStatus = Schemas["BackendStatus"];
export type JobRequest = NonNullable<
  paths["/jobs"]["post"]["requestBody"]
>["content"]["application/json"];

export const STATUSES: JobStatus[] = ["queued", "running", "completed", "failed", "cancelled"];

/** A 4xx/5xx answer of the API: its `{message, field}` body, or what went wrong on the way. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field: string | null = null,
  ) {
    super(message);
  }
}

export type Api = ReturnType<typeof createClient<paths>>;

export function makeApi(baseUrl: string, token: () => string | null, onUnauthorized: () => void): Api {
  const client = createClient<paths>({ baseUrl });
  const auth: Middleware = {
    onRequest({ request }) {
      const value = token();
      if (value) request.headers.set("Authorization", value);
      return request;
    },
    onResponse({ response }) {
      if (response.status === 401) onUnauthorized();
      return response;
    },
  };
  client.use(auth);
  return client;
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The answer's data, or an ApiFailure carrying the API's message and field. */
export async function unwrap<T>(call: Promise<Answer<T>>): Promise<T> {
  let answer: Answer<T>;
  try {
    answer = await call;
  } catch (error) {
    throw new ApiFailure(0, `The API could not be reached (${(error as Error).message}).`);
  }
  if (answer.data !== undefined && answer.response.ok) return answer.data;
  const body = answer.error as { message?: unknown; field?: unknown } | undefined;
  const message =
    typeof body?.message === "string" ? body.message : `HTTP ${answer.response.status} ${answer.response.statusText}`;
  const field = typeof body?.field === "string" ? body.field : null;
  throw new ApiFailure(answer.response.status, message, field);
}

export interface UploadProgress {
  loaded: number;
  total: number;
}

/** Send a file to a presigned POST with XMLHttpRequest, for its upload progress events. */
export function uploadFile(
  ticket: UploadTicket,
  file: File,
  onProgress: (progress: UploadProgress) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(ticket.fields)) form.append(name, value);
    form.append("file", file); // S3 reads every field after `file` as part of the file: it goes last
    const xhr = new XMLHttpRequest();
    xhr.open("POST", ticket.url);
    xhr.upload.addEventListener("progress", (event) => {
      onProgress({ loaded: event.loaded, total: event.lengthComputable ? event.total : file.size });
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress({ loaded: file.size, total: file.size });
        resolve();
      } else {
        const code = /<Code>([^<]+)<\/Code>/.exec(xhr.responseText)?.[1];
        const detail = /<Message>([^<]+)<\/Message>/.exec(xhr.responseText)?.[1];
        reject(new ApiFailure(xhr.status, `Upload refused (HTTP ${xhr.status}${code ? ` ${code}` : ""})${detail ? `: ${detail}` : ""}`, "file"));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiFailure(0, "The upload could not reach storage.", "file")));
    xhr.addEventListener("abort", () => reject(new ApiFailure(0, "The upload was cancelled.", "file")));
    xhr.send(form);
  });
}
