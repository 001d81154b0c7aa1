/**
 * Problems found in configuration files. Every issue names the file and the line, and says in
 * words what was expected, e.g.
 *   /etc/ppp/pptpd-options:7: unknown option "requre-mppe-128" (did you mean "require-mppe-128"?)
 */
export type IssueSeverity = 'error' | 'warning' | 'note';

export interface ConfigIssue {
  severity: IssueSeverity;
  file: string;
  /** 1-based; 0 when the issue concerns the whole file (e.g. a keyword that is missing). */
  line: number;
  message: string;
}

/** Where a value came from, for messages. */
export interface SourceLocation {
  file: string;
  line: number;
}

/** "file:line: message" (or "file: message" for whole-file issues). */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}` : issue.file;
  return `${where}: ${issue.message}`;
}

export function formatLocation(at: SourceLocation): string {
  return at.line > 0 ? `${at.file}:${at.line}` : at.file;
}

/**
 * A configuration that cannot be used. Carries every error found (not only the first), and any
 * warnings collected before, so the operator can fix the file in one pass.
 */
export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    const errors = issues.filter((i) => i.severity === 'error');
    super(errors.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
  get errors(): ConfigIssue[] {
    return this.issues.filter((i) => i.severity === 'error');
  }
}

/** Collects issues for one parse; `finish()` throws ConfigError when any is an error. */
export class IssueList {
  readonly items: ConfigIssue[] = [];
  add(severity: IssueSeverity, at: SourceLocation, message: string): void {
    this.items.push({ severity, file: at.file, line: at.line, message });
  }
  error(at: SourceLocation, message: string): void {
    this.add('error', at, message);
  }
  warning(at: SourceLocation, message: string): void {
    this.add('warning', at, message);
  }
  note(at: SourceLocation, message: string): void {
    this.add('note', at, message);
  }
  hasErrors(): boolean {
    return this.items.some((i) => i.severity === 'error');
  }
  /** The non-error issues; throws ConfigError (with all issues) if there is an error. */
  finish(): ConfigIssue[] {
    if (this.hasErrors()) throw new ConfigError(this.items);
    return this.items;
  }
}

/** ` (did you mean "x"?)` when a known word is within a small edit distance, else ''. */
export function didYouMean(word: string, known: Iterable<string>): string {
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of known) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase(), bestDistance);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best === undefined ? '' : ` (did you mean "${best}"?)`;
}

/** Levenshtein distance with adjacent transpositions counted as one edit; stops early past `cap`. */
function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) >= cap) return cap;
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, prev2[j - 2]! + 1);
      }
      cur.push(v);
      rowMin = Math.min(rowMin, v);
    }
    if (rowMin >= cap) return cap;
    prev2 = prev;
    prev = cur;
  }
  return prev[b.length]!;
}
