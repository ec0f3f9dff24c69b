/**
 * Putting argv into shell text. The agent runs commands through bash, so every argument that
 * reaches a command line goes through `shellQuote`: inside single quotes a POSIX shell expands
 * nothing — no `$()`, backticks, `$VAR`, globs, `~` or history — and the only character that
 * needs care is the single quote itself.
 */

/**
 * Words made only of these characters mean the same quoted or not; `=`, `%`, `~`, `#` and
 * glob characters are left out because their meaning depends on where the word stands.
 */
const PLAIN_WORD = /^[A-Za-z0-9_@+:,./-]+$/;

/** Quotes one argument for a POSIX shell: `it's` → `'it'\''s'`, empty → `''`; plain words stay bare. */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new RangeError('a shell argument cannot contain a NUL character');
  if (PLAIN_WORD.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** Quotes each argument and joins them with spaces into one shell command line. */
export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}
