// A form built from a request model's JSON schema (GET /workflows `request_schema`), so a new job kind gets a
// working form with no dashboard change. Known field names get niceties (textareas, hints); every input's
// `data-field` is the dotted path the API names in a 4xx (`scenes.0.prompt`), so a refusal highlights it.
import { h } from "./dom";

export type Schema = {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  $ref?: string;
  $defs?: Record<string, Schema>;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
};

interface Hint {
  textarea?: boolean; // unset: a textarea for long strings (maxLength > 500)
  rows?: number;
  hidden?: boolean;
  placeholder?: string;
  help?: string;
}

// Per-field niceties by field name (any kind); unknown fields get the generic widget of their type.
const HINTS: Record<string, Hint> = {
  prompt: { textarea: true, rows: 3, placeholder: "a lighthouse at dusk, waves breaking" },
  negative_prompt: { textarea: true, rows: 2 },
  text: { textarea: true, rows: 6, placeholder: "Once upon a time…" },
  narration: { textarea: true, rows: 3 },
  visual_prompt: { textarea: true, rows: 2, placeholder: "what the clip shows (empty: the text)" },
  music_uri: { textarea: false, placeholder: "s3://bucket/music.mp3" },
  seed: { help: "Empty: a random seed." },
  voice: { placeholder: "af_heart" },
  image_uri: { textarea: false, placeholder: "s3://bucket/key.png" },
  max_upload_bytes: { hidden: true }, // set from the chosen file's size
};

export interface FieldControl {
  path: string;
  read(): { present: boolean; value: unknown };
}

export class SchemaForm {
  readonly element: HTMLElement;
  private readonly root: Schema;
  private readonly controls: FieldControl[] = [];

  constructor(
    schema: Schema,
    private readonly idPrefix: string,
  ) {
    this.root = schema;
    this.element = h("div", { class: "fields" });
    this.renderObject(schema, "", this.element, this.controls);
  }

  /** The request body: every field the user filled in; empty optional fields are left to the defaults. */
  value(): Record<string, unknown> {
    return collect(this.controls);
  }

  private resolve(schema: Schema): Schema {
    let current = schema;
    for (let depth = 0; current.$ref && depth < 10; depth += 1) {
      const name = current.$ref.replace(/^#\/\$defs\//, "");
      current = { ...this.root.$defs?.[name], ...withoutRef(current) };
    }
    if (current.allOf?.length === 1 && current.allOf[0]) {
      current = { ...this.resolve(current.allOf[0]), ...withoutKey(current, "allOf") };
    }
    return current;
  }

  /** {schema, nullable}: `X | None` in pydantic is anyOf [X, {type: null}]. */
  private unwrap(schema: Schema): { schema: Schema; nullable: boolean } {
    const resolved = this.resolve(schema);
    const options = resolved.anyOf ?? resolved.oneOf;
    if (!options) return { schema: resolved, nullable: false };
    const real = options.filter((option) => option.type !== "null");
    const nullable = real.length < options.length;
    if (real.length === 1 && real[0]) {
      return { schema: { ...this.resolve(real[0]), ...withoutKey(withoutKey(resolved, "anyOf"), "oneOf") }, nullable };
    }
    return { schema: { ...resolved, type: "string" }, nullable };
  }

  private renderObject(schema: Schema, prefix: string, parent: HTMLElement, controls: FieldControl[]): void {
    const resolved = this.resolve(schema);
    const required = new Set(resolved.required ?? []);
    for (const [name, property] of Object.entries(resolved.properties ?? {})) {
      const hint = HINTS[name] ?? {};
      const path = prefix ? `${prefix}.${name}` : name;
      const { schema: field, nullable } = this.unwrap(property);
      if (field.const !== undefined) continue; // the discriminator (`kind`): fixed by the form itself
      if (hint.hidden && !prefix) continue;
      const isRequired = required.has(name) && !nullable && field.default === undefined;
      parent.appendChild(this.renderField(name, path, { ...property, ...field }, hint, isRequired, controls));
    }
  }

  private renderField(
    name: string,
    path: string,
    schema: Schema,
    hint: Hint,
    required: boolean,
    controls: FieldControl[],
  ): HTMLElement {
    const id = `${this.idPrefix}-${path.replace(/[^a-zA-Z0-9_-]/g, "-")}`;
    const title = schema.title ?? name;
    const helpText = [schema.description, hint.help, rangeText(schema)].filter(Boolean).join(" ");
    const helpId = `${id}-help`;
    const errorId = `${id}-error`;
    const describedBy = `${helpText ? helpId : ""} ${errorId}`.trim();
    const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    const wrap = h("div", { class: "field", dataset: { field: path } });

    if (type === "array" && schema.items) {
      wrap.classList.add("array");
      wrap.appendChild(this.renderArray(title, path, schema, id, helpText, controls));
      return wrap;
    }
    if (type === "object" && schema.properties) {
      const fieldset = h("fieldset", {}, h("legend", {}, title));
      const nested: FieldControl[] = [];
      this.renderObject(schema, path, fieldset, nested);
      controls.push({ path, read: () => ({ present: true, value: collect(nested) }) });
      wrap.appendChild(fieldset);
      return wrap;
    }

    let input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
    let read: () => { present: boolean; value: unknown };
    if (schema.enum) {
      const select = h("select", { id, name: path, "aria-describedby": describedBy });
      if (!required || schema.default === undefined) select.appendChild(h("option", { value: "" }, "—"));
      for (const option of schema.enum) {
        select.appendChild(h("option", { value: String(option), selected: option === schema.default }, String(option)));
      }
      input = select;
      read = () => ({ present: select.value !== "", value: schema.enum?.find((o) => String(o) === select.value) });
    } else if (type === "boolean") {
      const box = h("input", { id, name: path, type: "checkbox", "aria-describedby": describedBy });
      box.checked = schema.default === true;
      input = box;
      read = () => ({ present: true, value: box.checked });
      wrap.classList.add("check");
      wrap.append(box, h("label", { for: id }, title));
      if (helpText) wrap.appendChild(h("p", { id: helpId, class: "help" }, helpText));
      wrap.appendChild(h("p", { id: errorId, class: "error", hidden: true }));
      controls.push({ path, read });
      return wrap;
    } else if (type === "integer" || type === "number") {
      const number = h("input", {
        id,
        name: path,
        type: "number",
        inputmode: type === "integer" ? "numeric" : "decimal",
        step: type === "integer" ? "1" : "any",
        min: schema.minimum ?? schema.exclusiveMinimum,
        max: schema.maximum ?? schema.exclusiveMaximum,
        placeholder: schema.default !== undefined && schema.default !== null ? String(schema.default) : hint.placeholder,
        "aria-describedby": describedBy,
      });
      if (schema.default !== undefined && schema.default !== null) number.value = String(schema.default);
      input = number;
      read = () => ({ present: number.value.trim() !== "", value: Number(number.value) });
    } else {
      const text = (hint.textarea ?? (schema.maxLength ?? 0) > 500)
        ? h("textarea", { id, name: path, rows: path.includes(".") ? Math.min(hint.rows ?? 3, 3) : (hint.rows ?? 3), "aria-describedby": describedBy })
        : h("input", { id, name: path, type: "text", autocomplete: "off", "aria-describedby": describedBy });
      if (hint.placeholder) text.placeholder = hint.placeholder;
      if (schema.maxLength) text.maxLength = schema.maxLength;
      if (typeof schema.default === "string") text.value = schema.default;
      input = text;
      read = () => ({ present: text.value.trim() !== "", value: text.value });
    }
    if (required) {
      input.required = true;
      input.setAttribute("aria-required", "true");
    }
    wrap.append(h("label", { for: id }, title, required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null), input);
    if (helpText) wrap.appendChild(h("p", { id: helpId, class: "help" }, helpText));
    wrap.appendChild(h("p", { id: errorId, class: "error", hidden: true }));
    controls.push({ path, read });
    return wrap;
  }

  private renderArray(
    title: string,
    path: string,
    schema: Schema,
    id: string,
    helpText: string,
    controls: FieldControl[],
  ): HTMLElement {
    // A list of rows (each an object's fields, or one field), with add/remove buttons. It starts with
    // minItems rows (at least one); a row left empty is not sent, so an optional list whose rows are all empty
    // is left out (story: `prompt` instead of `scenes`). Rows are renumbered when one is removed, so the
    // paths a 4xx names (`scenes.1.text`) always match the row shown as scene 2.
    const item = this.resolve(schema.items ?? {});
    const isObject = item.type === "object" || item.properties !== undefined;
    const noun = singular(title);
    const fieldset = h("fieldset", { id, class: "array-items", "aria-describedby": helpText ? `${id}-help` : undefined }, h("legend", {}, title));
    if (helpText) fieldset.appendChild(h("p", { id: `${id}-help`, class: "help" }, helpText));
    const list = h("div", { class: "items" });
    interface Row {
      element: HTMLElement;
      legend: HTMLElement | null;
      remove: HTMLButtonElement;
      controls: FieldControl[];
      index: number;
    }
    const rows: Row[] = [];
    const max = schema.maxItems ?? 50;
    const min = Math.max(1, schema.minItems ?? 0);
    const add = h("button", { type: "button", class: "secondary add-item" }, `Add ${noun.toLowerCase()}`);
    const idOf = (index: number): string => `${this.idPrefix}-${`${path}.${index}`.replace(/[^a-zA-Z0-9_-]/g, "-")}`;
    const update = (): void => {
      rows.forEach((row, index) => {
        if (row.index !== index) renumber(row.element, `${path}.${row.index}`, `${path}.${index}`, idOf(row.index), idOf(index));
        row.index = index;
        if (row.legend) row.legend.textContent = `${noun} ${index + 1}`;
        row.remove.textContent = `Remove ${noun.toLowerCase()} ${index + 1}`;
        row.remove.disabled = rows.length <= min;
      });
      add.disabled = rows.length >= max;
    };
    const addRow = (focus: boolean): void => {
      const index = rows.length;
      const rowControls: FieldControl[] = [];
      const element = h(isObject ? "fieldset" : "div", { class: "item", dataset: { index: String(index) } });
      const legend = isObject ? h("legend", {}, `${noun} ${index + 1}`) : null;
      if (legend) element.appendChild(legend);
      if (isObject) {
        this.renderObject(item, `${path}.${index}`, element, rowControls);
      } else {
        element.appendChild(this.renderField(`${noun} ${index + 1}`, `${path}.${index}`, item, {}, true, rowControls));
      }
      const remove = h("button", { type: "button", class: "secondary remove-item" });
      const row: Row = { element, legend, remove, controls: rowControls, index };
      remove.addEventListener("click", () => {
        const at = rows.indexOf(row);
        if (at < 0 || rows.length <= min) return;
        rows.splice(at, 1);
        element.remove();
        update();
        // keep the keyboard where it was: the next row's remove button, else the add button
        (rows[at]?.remove ?? rows[at - 1]?.remove ?? add).focus();
      });
      element.appendChild(h("div", { class: "item-actions" }, remove));
      rows.push(row);
      list.appendChild(element);
      update();
      if (focus) element.querySelector<HTMLElement>("input, select, textarea")?.focus();
    };
    add.addEventListener("click", () => addRow(true));
    for (let count = 0; count < Math.min(min, max); count += 1) addRow(false);
    fieldset.append(list, h("div", { class: "item-actions" }, add));
    controls.push({
      path,
      read: () => {
        const values = rows
          .map((row) => collect(row.controls))
          .filter((value) => Object.keys(value).length > 0)
          .map((value) => (isObject ? value : Object.values(value)[0]));
        return values.length ? { present: true, value: values } : { present: false, value: undefined };
      },
    });
    return fieldset;
  }
}

/** "Scenes" → "Scene", "Entries" → "Entry": what one row of a list is called. */
function singular(title: string): string {
  if (/ies$/i.test(title)) return title.replace(/ies$/i, "y");
  if (/(ss|us)$/i.test(title)) return title;
  if (/s$/i.test(title)) return title.replace(/s$/i, "");
  return title ? `${title} item` : "Item";
}

/** Rewrite a row's paths and ids from its old index to its new one (data-field, name, id, for, aria-*). */
function renumber(row: HTMLElement, fromPath: string, toPath: string, fromId: string, toId: string): void {
  const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pathPattern = new RegExp(`^${escape(fromPath)}(?=\\.|$)`);
  const idPattern = new RegExp(`(^|\\s)${escape(fromId)}(?=-|\\s|$)`, "g");
  for (const element of [row, ...row.querySelectorAll<HTMLElement>("*")]) {
    if (element.dataset.field) element.dataset.field = element.dataset.field.replace(pathPattern, toPath);
    const named = element as HTMLInputElement;
    if (typeof named.name === "string" && named.name && "form" in element) named.name = named.name.replace(pathPattern, toPath);
    for (const attribute of ["id", "for", "aria-describedby", "aria-labelledby"]) {
      const value = element.getAttribute(attribute);
      if (value) element.setAttribute(attribute, value.replace(idPattern, `$1${toId}`));
    }
  }
  row.dataset.index = toPath.slice(toPath.lastIndexOf(".") + 1);
}

function withoutKey(schema: Schema, key: keyof Schema): Schema {
  const copy = { ...schema };
  delete copy[key];
  return copy;
}

function withoutRef(schema: Schema): Schema {
  return withoutKey(schema, "$ref");
}

function rangeText(schema: Schema): string {
  const low = schema.minimum ?? schema.exclusiveMinimum;
  const high = schema.maximum ?? schema.exclusiveMaximum;
  if (low === undefined && high === undefined) return "";
  const lowText = low === undefined ? "" : `${schema.exclusiveMinimum !== undefined ? ">" : "≥"} ${low}`;
  const highText = high === undefined ? "" : `${schema.exclusiveMaximum !== undefined ? "<" : "≤"} ${high}`;
  return `(${[lowText, highText].filter(Boolean).join(", ")})`;
}

function collect(controls: FieldControl[]): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const control of controls) {
    const { present, value } = control.read();
    if (present) body[control.path.split(".").pop() ?? control.path] = value;
  }
  return body;
}


/** Mark the field the API named (or clear every mark with null); returns whether it was found. */
export function showFieldError(container: HTMLElement, field: string | null, message: string | null): boolean {
  for (const marked of container.querySelectorAll<HTMLElement>(".field.invalid")) {
    marked.classList.remove("invalid");
    marked.querySelector("[aria-invalid]")?.removeAttribute("aria-invalid");
    const error = marked.querySelector<HTMLElement>(":scope > .error");
    if (error) {
      error.hidden = true;
      error.textContent = "";
    }
  }
  if (!field || !message) return false;
  let target: HTMLElement | null = null;
  for (let path = field; path; path = path.includes(".") ? path.slice(0, path.lastIndexOf(".")) : "") {
    target = container.querySelector<HTMLElement>(`.field[data-field="${CSS.escape(path)}"]`);
    if (target) break;
  }
  if (!target) return false;
  target.classList.add("invalid");
  const input = target.querySelector<HTMLElement>("input, select, textarea");
  input?.setAttribute("aria-invalid", "true");
  const error = target.querySelector<HTMLElement>(":scope > .error");
  if (error) {
    error.textContent = message;
    error.hidden = false;
  }
  input?.focus();
  return true;
}
