/**
 * CSV as RFC 4180 describes it (CRLF line ends, fields with a comma, quote or line break quoted,
 * quotes doubled). Text that a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, tab, CR
 * first) gets a leading `'`: the names in it come from users and tools.
 */

export type CsvValue = string | number | boolean | null | undefined;

const FORMULA_START = /^[=+\-@\t\r]/;

export function csvField(value: CsvValue): string {
  if (value === null || value === undefined) return "";
  if (typeof value !== "string") return String(value);
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(header: readonly string[], rows: readonly (readonly CsvValue[])[]): string {
  return [header, ...rows].map((row) => row.map(csvField).join(",")).join("\r\n") + "\r\n";
}
