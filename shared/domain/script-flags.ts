import { flagName } from './hyperparameters';

/**
 * Hyperparameters checked against the flags a script declares (read statically from its
 * argparse calls): a key whose `--flag` the script would refuse is caught before an instance is
 * paid for, with the declared flag it most likely meant.
 */

/** The flags a script declares, as argparse would match them. */
export interface ScriptFlags {
  /** Every option string, e.g. `--batch-size`, `-b`. */
  flags: readonly string[];
  /** argparse accepts an unambiguous prefix of a long flag (`--hid` for `--hidden`) unless `allow_abbrev=False`. */
  allowAbbrev: boolean;
}

/** A hyperparameter the script would refuse. */
export interface UnknownHyperparameter {
  key: string;
  /** The flag it becomes, e.g. `--lr-rate`. */
  flag: string;
  /** The declared flag it most likely meant, when one is close. */
  suggestion?: string;
}

/** Whether argparse would take `flag` (`--x`) as one of `declared`. */
function accepts(flag: string, script: ScriptFlags): boolean {
  if (script.flags.includes(flag)) return true;
  if (!script.allowAbbrev) return false;
  // argparse resolves a prefix only when exactly one long flag starts with it.
  return script.flags.filter((f) => f.startsWith('--') && f.startsWith(flag)).length === 1;
}

/** Edit distance (insertions, deletions, substitutions). */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** `lr-rate` and `lr` share the word `lr`; `batch_size` and `batch-size` are the same words. */
function words(name: string): string[] {
  return name.replace(/^-+/, '').toLowerCase().split(/[-_]+/).filter((w) => w !== '');
}

/**
 * The declared long flag closest to `flag`, or undefined when none is close: a typo (a small
 * edit distance), or a flag that shares the first word (`--lr-rate` → `--lr`, `--epoch-count` → `--epochs`).
 */
export function closestFlag(flag: string, declared: readonly string[]): string | undefined {
  const name = flag.replace(/^-+/, '');
  const [first] = words(flag);
  const scored = declared
    .filter((d) => d.startsWith('--'))
    .map((d) => {
      const distance = editDistance(name.toLowerCase().replaceAll('_', '-'), d.slice(2).toLowerCase().replaceAll('_', '-'));
      const other = words(d)[0];
      // `lr` and `lr`, `epoch` and `epochs`: the same leading word, or one a stem of the other.
      const sharesFirstWord = first !== undefined && other !== undefined && Math.min(first.length, other.length) >= 2 && (first.startsWith(other) || other.startsWith(first));
      return { d, distance, close: distance <= Math.max(1, Math.floor(name.length / 3)) || sharesFirstWord };
    })
    .filter((s) => s.close)
    .sort((a, b) => a.distance - b.distance || a.d.localeCompare(b.d));
  return scored[0]?.d;
}

/** The hyperparameters whose flags the script does not declare, in the order given. */
export function unknownHyperparameters(hyperparameters: Readonly<Record<string, string>>, script: ScriptFlags): UnknownHyperparameter[] {
  const unknown: UnknownHyperparameter[] = [];
  for (const key of Object.keys(hyperparameters)) {
    const flag = `--${flagName(key)}`;
    if (accepts(flag, script)) continue;
    const suggestion = closestFlag(flag, script.flags);
    unknown.push(suggestion === undefined ? { key, flag } : { key, flag, suggestion });
  }
  return unknown;
}

/** "unknown hyperparameter lr_rate: the script has no --lr-rate; did you mean --lr?" */
export function describeUnknown(item: UnknownHyperparameter, declared: readonly string[]): string {
  const head = `unknown hyperparameter ${item.key}: the script has no ${item.flag}`;
  if (item.suggestion === undefined) {
    const longFlags = declared.filter((d) => d.startsWith('--'));
    return `${head} (its flags: ${longFlags.length === 0 ? 'none' : longFlags.join(', ')})`;
  }
  // `--batch_size` can never be reached: every key becomes a flag with dashes.
  const underscores = item.suggestion.includes('_') ? ` (hyperparameter keys become flags with dashes, so ${item.suggestion} cannot be set by one: rename it ${item.suggestion.replaceAll('_', '-')} in the script)` : '';
  return `${head}; did you mean ${item.suggestion}?${underscores}`;
}
