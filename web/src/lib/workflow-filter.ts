/** The workflows page's filter form, as typed by the user, to the API's WorkflowFilter. */
import type { RunState } from "./states";

export interface WorkflowFilterForm {
  state: RunState | "";
  submittedBy: string;
  project: string;
  /** `datetime-local` values (the user's local time), or "". */
  after: string;
  before: string;
}

export const EMPTY_FILTER: WorkflowFilterForm = { state: "", submittedBy: "", project: "", after: "", before: "" };

export interface WorkflowFilterInput {
  states?: RunState[];
  submittedBy?: string;
  project?: string;
  submittedAfter?: string;
  submittedBefore?: string;
}

/** A local date-time of the form to an ISO instant; undefined when empty or not a date. */
function instant(local: string): string | undefined {
  if (!local) return undefined;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

export function toWorkflowFilter(form: WorkflowFilterForm): WorkflowFilterInput {
  const filter: WorkflowFilterInput = {};
  if (form.state) filter.states = [form.state];
  if (form.submittedBy.trim()) filter.submittedBy = form.submittedBy.trim();
  if (form.project) filter.project = form.project;
  const after = instant(form.after);
  const before = instant(form.before);
  if (after) filter.submittedAfter = after;
  if (before) filter.submittedBefore = before;
  return filter;
}
