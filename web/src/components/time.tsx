import { formatTime, utcTitle } from "../lib/format";

/** A time in the user's locale, with UTC on hover. */
export function Time({ value }: { value: string | null | undefined }) {
  return value ? (
    <time dateTime={value} title={utcTitle(value)}>
      {formatTime(value)}
    </time>
  ) : (
    <>—</>
  );
}
